"""Parameter sweeps and their tables: ``python -m nslib sweep NOTEBOOK --grid NAME=V1,V2 ...`` and
``python -m nslib collect DIR``.

Every grid point is validated before anything runs; each point runs as its own ``python -m nslib run`` process
(isolating environment and kernel), in local worker threads or on a Dask cluster (``--scheduler tcp://...`` or
``local:N`` for a LocalCluster on loopback). A sweep is resumable: a point whose run directory already holds a
complete ``results.json`` is skipped. A failed point is reported with its error while the others complete. A worker
process dies with its parent (``PR_SET_PDEATHSIG`` on Linux), so a killed sweep leaves no orphan running.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._notebooks import NotebookInfo, load_notebook
from ._params import ParamError, parse_cli_value, parse_overrides
from ._runs import RESULTS_FILE, check_machine, make_out_folder, run_hash

__all__ = ["check_workers", "cmd_collect", "cmd_sweep", "collect", "is_complete", "parse_grid", "run_points",
           "sweep_one"]


def parse_grid(info: NotebookInfo, grids: Sequence[str]) -> dict[str, list[Any]]:
    """``name=v1,v2`` (``;`` separates values of list-typed parameters)."""
    grid: dict[str, list[Any]] = {}
    for item in grids:
        if "=" not in item:
            raise ParamError(f"--grid {item!r}: allowed is NAME=V1,V2,...")
        name, values = item.split("=", 1)
        spec = info.spec(name)
        if name in grid:
            raise ParamError(f"parameter {name!r} is given twice with --grid: allowed is once, with all its values")
        sep = ";" if spec.is_list else ","
        grid[name] = [parse_cli_value(spec, v.strip()) for v in values.split(sep) if v.strip()]
        if not grid[name]:
            raise ParamError(f"--grid {item!r} has no value: allowed is NAME=V1,V2,... with at least one value")
        hashes = [run_hash("grid", {"v": v}) for v in grid[name]]  # 0 and 0.0, -0.0 and 0.0: one run each
        if len(set(hashes)) < len(hashes):
            twice = next(v for v, h in zip(grid[name], hashes) if hashes.count(h) > 1)
            raise ParamError(f"--grid {item!r} repeats the value {twice!r}, which would run the same point twice: "
                             f"allowed is distinct values")
    return grid


def is_complete(run_dir: Path, claims) -> bool:
    """A finished run: its results.json parses and has every declared verdict."""
    try:
        res = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return set(claims) <= set(res.get("verdicts", {}))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker may outlive a killed parent
        pass


def sweep_one(stem: str, profile: str, params: dict[str, Any], out: str,
              env: dict[str, str | None] | None = None) -> str:
    """Run one grid point in a fresh process (isolates env and kernel), with ``env`` added to its environment (the
    kernel inherits it: ``ATEN_CPU_CAPABILITY`` for the atlas's kernels variation; None removes a variable); return its
    run directory."""
    cmd = [sys.executable, "-m", "nslib", "run", stem, "--profile", profile, "--out", out]
    for k, v in params.items():
        cmd += ["-p", k, repr(v) if isinstance(v, list) else str(v)]
    environ = None
    if env:  # a value None removes the variable
        environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent, env=environ)
    if proc.returncode != 0:
        ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("nslib:")]
        raise RuntimeError((ours or proc.stderr.strip().splitlines() or ["run failed"])[-1].removeprefix("nslib: "))
    return proc.stdout.strip().splitlines()[-1]


def run_points(todo: list[dict], run, args) -> dict[int, str | Exception]:
    """Run ``run(point)`` for every point, locally or on Dask, with a progress bar; errors are results."""
    from tqdm import tqdm  # plain tqdm on stderr

    results: dict[int, str | Exception] = {}
    bar = tqdm(total=len(todo), desc="sweep", unit="point", file=sys.stderr, disable=not todo)

    def done(i, value):
        results[i] = value
        bar.update(1)
        bar.set_postfix(failed=sum(isinstance(v, Exception) for v in results.values()), refresh=False)

    try:
        if args.scheduler:
            from distributed import Client, LocalCluster, as_completed  # the `dist` extra

            if args.scheduler.startswith("local:"):
                cluster = LocalCluster(n_workers=int(args.scheduler.removeprefix("local:")), threads_per_worker=1,
                                       host="127.0.0.1", dashboard_address=None, processes=True)
                client = Client(cluster)
            else:
                try:
                    cluster, client = None, Client(args.scheduler, timeout="20s")
                except (OSError, ValueError, TypeError) as exc:
                    raise ParamError(f"--scheduler {args.scheduler!r}: cannot connect ({str(exc).splitlines()[0]}): "
                                     f"allowed is the address of a running Dask scheduler, or local:N") from None
            try:
                futures = {client.submit(run, pt, pure=False): i for i, pt in enumerate(todo)}
                for fut in as_completed(futures):
                    try:
                        done(futures[fut], fut.result())
                    except Exception as exc:  # noqa: BLE001 - a failed point is a result of the sweep
                        done(futures[fut], exc)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                futures = {pool.submit(run, pt): i for i, pt in enumerate(todo)}
                for fut in as_completed(futures):
                    try:
                        done(futures[fut], fut.result())
                    except Exception as exc:  # noqa: BLE001
                        done(futures[fut], exc)
    finally:
        bar.close()
    return results


def max_local_workers() -> int:
    """The most local worker processes a sweep may start: two per core (each runs one single-threaded kernel; more
    only queue for the cores and multiply the memory)."""
    return 2 * (os.cpu_count() or 1)


def check_workers(args) -> None:
    """Refuse, before any folder, bar or process, a ``--workers`` or ``--scheduler local:N`` this machine cannot run,
    a malformed ``--scheduler``, and a scheduler address nobody answers at (tried for a few seconds)."""
    limit = max_local_workers()
    if args.workers < 1 or args.workers > limit:
        raise ParamError(f"--workers {args.workers}: allowed is an integer from 1 to {limit} (two per core of this "
                         f"machine's {os.cpu_count()}); beyond one machine, use --scheduler tcp://HOST:8786")
    sched = args.scheduler
    if sched is None:
        return
    if not (re.fullmatch(r"local:[1-9]\d*", sched) or re.fullmatch(r"\w+://\S+", sched)):
        raise ParamError(f"--scheduler {sched!r}: allowed is local:N with N >= 1, or an address such as "
                         f"tcp://host:8786")
    if sched.startswith("local:"):
        n = int(sched.removeprefix("local:"))
        if n > limit:
            raise ParamError(f"--scheduler {sched!r}: {n} local workers; allowed is local:N with N from 1 to {limit} "
                             f"(two per core of this machine's {os.cpu_count()})")
        return
    try:
        from distributed import Client  # the `dist` extra
    except ImportError:
        raise ParamError(f"--scheduler {sched!r} needs the package distributed (pip install -e '.[dist]'): allowed "
                         f"without it is --workers N") from None
    try:
        Client(sched, timeout="5s").close()
    except (OSError, ValueError, TypeError, TimeoutError) as exc:
        raise ParamError(f"--scheduler {sched!r}: cannot connect ({(str(exc).splitlines() or [type(exc).__name__])[0]})"
                         f": allowed is the address of a running Dask scheduler, or local:N") from None


def cmd_sweep(args) -> int:
    """Validate the whole grid, run every point not yet complete, write a CSV of points and verdicts; print its
    path. Exit 1 if a point failed (each failure is reported on its own line)."""
    info = load_notebook(args.notebook)
    check_workers(args)
    base = parse_overrides(info, args.p or [])
    grid = parse_grid(info, args.grid or [])
    clash = sorted(set(base) & set(grid))
    if clash:
        raise ParamError(f"parameter {clash[0]!r} is given with both -p and --grid: allowed is one of the two")
    names = list(grid)
    points = [dict(base, **dict(zip(names, combo))) for combo in itertools.product(*grid.values())]
    out = Path(args.out).resolve()
    # validates every point before anything runs; data_dir made absolute, as the run itself will
    resolved = [check_machine(info.resolve(args.profile, pt)) for pt in points]
    dirs = [out / info.stem / run_hash(args.profile, params) for params in resolved]
    make_out_folder(out, info.stem)
    todo = [i for i, d in enumerate(dirs) if not is_complete(d, info.claims)]
    if len(todo) < len(points):
        print(f"nslib: {len(points) - len(todo)} of {len(points)} points already complete, skipped", file=sys.stderr)

    def run(pt):
        return sweep_one(info.stem, args.profile, pt, str(out))

    outcome = run_points([points[i] for i in todo], run, args)
    failed = {todo[j]: exc for j, exc in outcome.items() if isinstance(exc, Exception)}
    for i, exc in sorted(failed.items()):
        print(f"nslib: point {points[i]} failed: {exc}", file=sys.stderr)
    table = out / info.stem / f"sweep-{run_hash(args.profile, {'grid': grid, 'base': base})}.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names + list(info.claims) + ["run_dir"])
        for i, (pt, d) in enumerate(zip(points, dirs)):
            if i in failed:
                continue
            res = json.loads((d / RESULTS_FILE).read_text())
            writer.writerow([pt[n] for n in names] + [res["verdicts"][c]["status"] for c in info.claims] + [d])
    print(table)
    return 1 if failed else 0


def _flat(prefix: str, value: Any, row: dict) -> None:
    """Scalars as columns; nested dicts flattened with dots; lists kept as their JSON text."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, row)
    elif isinstance(value, list):
        row[prefix] = json.dumps(value)
    else:
        row[prefix] = value


def _read_results(path: Path) -> dict | None:
    """A results.json as a dict, None when it is being written or is not JSON; ParamError when it is JSON of the
    wrong shape (not an object, or verdicts/parameters/metrics/env that are not objects)."""
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(res, dict):
        raise ParamError(f"collect: {path} holds a JSON {type(res).__name__}, not a results.json object: allowed are "
                         f"folders of runs written by python -m nslib run or sweep")
    for key in ("parameters", "verdicts", "metrics", "env"):
        if not isinstance(res.get(key, {}), dict) or (key == "verdicts" and not all(
                isinstance(v, dict) for v in res.get(key, {}).values())):
            raise ParamError(f"collect: {path} has {key!r} that is not an object of the results.json format: "
                             f"allowed are folders of runs written by python -m nslib run or sweep")
    return res


def collect(folder: str | Path):
    """Every ``results.json`` under ``folder`` as one tidy table (a pandas DataFrame), one row per run: notebook,
    profile, run_dir, ``param.<name>``, ``verdict.<claim id>`` (its state), ``metric.<name>``, ``env.<key>``,
    elapsed_s."""
    import pandas as pd

    rows = []
    for path in sorted(Path(folder).rglob(RESULTS_FILE)):
        if any(part.startswith(".") for part in path.relative_to(folder).parts[:-1]):
            continue  # a run still being written, or debris
        res = _read_results(path)
        if res is None:
            continue
        row = {"notebook": res.get("notebook"), "profile": res.get("profile"), "run_dir": str(path.parent)}
        for k, v in res.get("parameters", {}).items():
            _flat(f"param.{k}", v, row)
        for cid, v in res.get("verdicts", {}).items():
            row[f"verdict.{cid}"] = v.get("status")
        for k, v in res.get("metrics", {}).items():
            _flat(f"metric.{k}", v, row)
        for k, v in res.get("env", {}).items():
            row[f"env.{k}"] = v
        row["elapsed_s"] = res.get("elapsed_s")
        rows.append(row)
    return pd.DataFrame(rows)


def _parquet_engine() -> str | None:
    import importlib.util

    return next((m for m in ("pyarrow", "fastparquet") if importlib.util.find_spec(m) is not None), None)


def cmd_collect(args) -> int:
    """``python -m nslib collect DIR [--to FILE]``: write the table (CSV, or Parquet by extension); print its path."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise ParamError(f"collect {str(folder)!r}: allowed is a folder holding runs (e.g. the --out of a sweep)")
    target = Path(args.to) if args.to else folder / "results.csv"
    if target.suffix not in (".csv", ".parquet"):
        raise ParamError(f"--to {str(target)!r}: allowed is a file ending in .csv or .parquet")
    if target.is_dir() or not target.parent.is_dir():
        raise ParamError(f"--to {str(target)!r}: {'it is a folder' if target.is_dir() else 'its folder does not exist'}"
                         f": allowed is a file in an existing folder")
    if target.suffix == ".parquet" and _parquet_engine() is None:
        raise ParamError(f"--to {str(target)!r}: writing Parquet needs the package pyarrow (or fastparquet), which is "
                         f"not installed: pip install pyarrow, or allowed here is --to FILE.csv")
    table = collect(folder)
    if table.empty:
        raise ParamError(f"collect {str(folder)!r}: no results.json found under it")
    try:
        if target.suffix == ".parquet":
            table.to_parquet(target, index=False)
        else:
            table.to_csv(target, index=False)
    except OSError as exc:
        raise ParamError(f"--to {str(target)!r}: cannot write it ({exc.strerror or exc}): allowed is a file you can "
                         f"write") from None
    print(f"nslib: {len(table)} runs collected", file=sys.stderr)
    print(target.resolve())
    return 0
