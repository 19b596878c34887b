"""The command line: ``python -m nslib run|sweep|collect|list|params|audit`` (sweeps and collect live in
:mod:`._sweep`; ``audit`` runs :func:`nslib.tools.kinks.audit` on a saved model).

``run`` validates every parameter before a kernel starts, executes the notebook with papermill
into a temporary folder, and moves it into place as ``DIR/<stem>/<hash>/`` (atomically replacing
an earlier run with the same parameters). The last line on stdout is the absolute run directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._notebooks import PROFILES, NotebookInfo, available_notebooks, load_notebook
from ._params import ParamError, parse_cli_value
from ._results import RESULTS_FILE

__all__ = ["main", "parse_overrides", "run_hash", "run_notebook"]

log = logging.getLogger("nslib")


def _canonical(value: Any) -> Any:
    """-0.0 reads as 0.0 (the same run); lists element by element."""
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def run_hash(profile: str, params: dict[str, Any]) -> str:
    """Short hash of the resolved parameters and the profile: the run's folder name."""
    blob = json.dumps({"profile": profile, "parameters": _canonical(params)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _execute(info: NotebookInfo, params: dict[str, Any], profile: str, target: Path) -> None:
    import papermill as pm

    env_keys = {"NSLIB_RUN_DIR": str(target.parent), "NSLIB_PROFILE": profile}
    old = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)  # the kernel inherits the environment; the path never enters the hash
    try:
        for attempt in range(3):
            try:
                pm.execute_notebook(
                    str(info.path),
                    str(target),
                    parameters=params,
                    cwd=str(info.path.parent),
                    progress_bar=False,
                    log_output=False,
                    kernel_name="python3",
                )
                return
            except (RuntimeError, OSError) as exc:
                # parallel runs can race on kernel ports; anything else is re-raised at once
                if "kernel" not in str(exc).lower() or attempt == 2:
                    raise
                log.warning("kernel start failed (%s); retrying", exc)
                time.sleep(1 + attempt)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _clean_debris(folder: Path) -> None:
    """Remove the temporary folders of runs killed before they could clean up (their process is gone)."""
    for p in folder.glob(".*.*-*"):
        kind, _, pid = p.name.rpartition("-")
        if p.is_dir() and pid.isdigit() and kind.endswith((".tmp", ".old")) and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


class CellError(RuntimeError):
    """A notebook cell raised: the message names the cell and the error, and where the executed notebook is kept."""


def run_notebook(stem: str, profile: str = "book", overrides: dict[str, Any] | None = None,
                 out: str | Path = "runs") -> Path:
    """Validate, execute and place one run; return its absolute run directory.

    A failing cell raises :class:`CellError`; the executed notebook is kept as ``OUT/<stem>/failed/<hash>.ipynb``."""
    info = load_notebook(stem)
    params = info.resolve(profile, overrides)
    final = (Path(out) / info.stem / run_hash(profile, params)).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_debris(final.parent)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            _execute(info, params, profile, tmp / "notebook.ipynb")
        except Exception as exc:
            if type(exc).__name__ != "PapermillExecutionError":
                raise
            failed = final.parent / "failed" / f"{final.name}.ipynb"
            failed.parent.mkdir(exist_ok=True)
            os.replace(tmp / "notebook.ipynb", failed)
            evalue = str(getattr(exc, "evalue", "")).strip().splitlines()
            raise CellError(f"cell {getattr(exc, 'exec_count', '?')} (index {getattr(exc, 'cell_index', '?')}) "
                            f"raised {getattr(exc, 'ename', 'an error')}: {evalue[0] if evalue else ''}; "
                            f"the executed notebook is kept at {failed}") from None
        if not (tmp / RESULTS_FILE).is_file():
            raise RuntimeError(f"notebook {stem!r} finished without writing {RESULTS_FILE} (missing run.save()?)")
        trash = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def parse_overrides(info: NotebookInfo, pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs -> {name: value}, each parsed by its declared type; a name given twice is refused."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        if name in out:
            raise ParamError(f"parameter {name!r} is given twice with -p: allowed is once per run")
        out[name] = parse_cli_value(info.spec(name), text)
    return out


def _cmd_list(_args) -> int:
    for stem in available_notebooks():
        try:
            info = load_notebook(stem)
        except (SyntaxError, ParamError) as exc:  # one broken notebook must not hide the others
            print(f"nslib: {_notebook_error(stem, exc)}", file=sys.stderr)
            continue
        print(f"{stem}: profiles book{''.join(', ' + p for p in info.profiles)}")
        for cid, text in info.claims.items():
            print(f"  {cid}: {text}")
    return 0


def _cmd_params(args) -> int:
    info = load_notebook(args.notebook)
    names = list(info.specs)
    w = max(len(n) for n in names) if names else 4
    for name, spec in info.specs.items():
        prof = "; ".join(f"{p}={info.profiles[p][name]!r}" for p in info.profiles if name in info.profiles[p])
        print(f"{name:<{w}}  {spec.type:<12} default={spec.default!r}")
        print(f"{'':<{w}}  {spec.help}")
        print(f"{'':<{w}}  allowed: {spec.allowed()}" + (f"; profiles: {prof}" if prof else ""))
    if info.paper_cost:
        print(f"paper profile cost: {info.paper_cost}")
    return 0


def _terminate(_signum, _frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a sweep's parent died) cleans up like Ctrl-C: no half-written run


def _cmd_run(args) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    info = load_notebook(args.notebook)
    overrides = parse_overrides(info, args.p or [])
    try:
        path = run_notebook(info.stem, args.profile, overrides, args.out)  # validates before any kernel starts
    except ParamError:
        raise  # reported by main() with exit code 2, not as a failed run
    except CellError as exc:
        print(f"nslib: run of {info.stem!r} failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - report and fail with a clear status
        print(f"nslib: run of {info.stem!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _cmd_audit(args) -> int:
    import pandas as pd
    import torch

    from ..tools.kinks import audit, audit_inputs, load_model
    from ._runtime import resolve_dtype, set_threads

    set_threads()
    try:
        shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape else None
    except ValueError:
        raise ParamError(f"--input-shape {args.input_shape!r}: allowed is comma-separated positive integers") from None
    try:
        dtype = resolve_dtype(args.dtype)
        batches = audit_inputs(shape, args.dataset, args.batch_size, args.batches, dtype, args.seed)
        model = load_model(args.model).to(dtype)
    except (ValueError, FileNotFoundError) as exc:
        raise ParamError(str(exc)) from None
    with torch.no_grad():
        table = audit(model, *batches)
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(table.to_string(index=False) if len(table) else "no kinked operation ran")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the option and what is allowed (exit 2), not a usage dump."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # '--profil quick' is a typo to report, not --profile
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"nslib: {message}\n")


def _notebook_error(stem: str, exc: Exception) -> str:
    where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
    msg = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return f"notebook {stem!r} cannot be read{where}: {msg}"


def _take_pairs(argv: list[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Take every ``-p NAME VALUE`` and ``--grid SPEC`` out of ``argv`` before argparse sees it, so that values such
    as ``-inf``, ``-1e3`` or ``-5e-324`` are read as values, never as options."""
    rest, pairs, grids, i = [], [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "-p":
            if len(argv) - i < 3:
                raise ParamError("option -p needs a NAME and a VALUE: allowed is -p NAME VALUE")
            pairs.append((argv[i + 1], argv[i + 2]))
            i += 3
        elif a == "--grid":
            if i + 1 >= len(argv):
                raise ParamError("option --grid needs a value: allowed is --grid NAME=V1,V2,...")
            grids.append(argv[i + 1])
            i += 2
        elif a.startswith("--grid="):
            grids.append(a.split("=", 1)[1])
            i += 1
        else:
            rest.append(a)
            i += 1
    return rest, pairs, grids


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m nslib", description="Run the nslib book's notebooks.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the notebooks, their profiles and claims")
    pp = sub.add_parser("params", help="show a notebook's parameters, allowed values and profiles")
    pp.add_argument("notebook")
    for name, hlp in (("run", "run one notebook"), ("sweep", "run a notebook over a parameter grid")):
        sp = sub.add_parser(name, help=hlp)
        sp.add_argument("notebook", help="file stem, e.g. nonsmooth-convex-dynamics")
        sp.add_argument("--profile", default="book", choices=PROFILES)
        sp.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="override a parameter")
        sp.add_argument("--out", default="runs", help="output folder (default: ./runs)")
    au = sub.add_parser("audit", help="count exact kink hits per layer of a model (nslib.tools.kinks.audit)")
    au.add_argument("model", help="a file saved with torch.save(model, path), or package.module:factory")
    au.add_argument("--input-shape", default=None, help="shape of one sample, e.g. 64 or 1,28,28")
    au.add_argument("--dataset", default=None, choices=("digits", "mnist1d"), help="audit on training samples")
    au.add_argument("--batch-size", type=int, default=128)
    au.add_argument("--batches", type=int, default=10, help="batches audited (default 10)")
    au.add_argument("--dtype", default="float32", help="float16, bfloat16, float32 or float64 (default float32)")
    au.add_argument("--seed", type=int, default=0, help="seed of the random inputs or the data split")
    bt = sub.add_parser("book-times", help="execution time of each page of the last book build")
    bt.add_argument("--cache", default="_build/.jupyter_cache", help="the book's jupyter cache")
    bt.add_argument("--since", type=float, default=None, help="epoch seconds the build began (marks pages run now)")
    pc = sub.add_parser("publish-config", help="the book's config with repository and launch buttons")
    pc.add_argument("repo_url", help="https://HOST/OWNER/REPO, or empty for no buttons")
    pc.add_argument("--config", default="_config.yml")
    pc.add_argument("--out", default="_build/_config.publish.yml")
    co = sub.add_parser("collect", help="gather every results.json under a folder into one table")
    co.add_argument("folder", help="a folder holding runs, e.g. the --out of a sweep")
    co.add_argument("--to", default=None, help="table file, .csv or .parquet (default: FOLDER/results.csv)")
    sw = sub.choices["sweep"]
    sw.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="values to sweep (';' for lists)")
    sw.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m nslib``; returns the exit status (2 for bad input)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        rest, pairs, grids = _take_pairs(list(sys.argv[1:] if argv is None else argv))
    except ParamError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 2
    try:
        args = _parser().parse_args(rest)
    except SystemExit as exc:  # argparse's own exits: --help (0) and the one-line errors of _Parser (2)
        return int(exc.code or 0)
    if pairs and args.cmd not in ("run", "sweep") or grids and args.cmd != "sweep":
        print(f"nslib: {'-p' if pairs else '--grid'} is not an option of {args.cmd!r}", file=sys.stderr)
        return 2
    if args.cmd in ("run", "sweep"):
        args.p = pairs
    if args.cmd == "sweep":
        args.grid = grids
    try:
        from ._book import cmd_book_times, cmd_publish_config
        from ._sweep import cmd_collect, cmd_sweep

        handler = {"list": _cmd_list, "params": _cmd_params, "run": _cmd_run, "sweep": cmd_sweep,
                   "audit": _cmd_audit, "collect": cmd_collect, "book-times": cmd_book_times,
                   "publish-config": cmd_publish_config}[args.cmd]
        return handler(args)
    except ParamError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 2
    except SyntaxError as exc:  # a notebook whose parameters cell or metadata cannot be read
        print(f"nslib: {_notebook_error(getattr(args, 'notebook', '?'), exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nslib: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"nslib: {exc}", file=sys.stderr)
        return 1
