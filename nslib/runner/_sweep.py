"""Parameter sweeps: ``python -m nslib sweep NOTEBOOK --grid NAME=V1,V2 ...``.

Every grid point is validated before anything runs; each point runs as its own ``python -m nslib run``
process (isolating environment and kernel), in a local thread pool or on a Dask cluster.
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._cli import parse_overrides, run_hash
from ._notebooks import NotebookInfo, load_notebook
from ._params import ParamError, parse_cli_value
from ._results import RESULTS_FILE

__all__ = ["cmd_sweep", "parse_grid"]


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
    return grid


def _sweep_one(stem: str, profile: str, params: dict[str, Any], out: str) -> str:
    """Run one grid point in a fresh process (isolates env and kernel); return its run directory."""
    cmd = [sys.executable, "-m", "nslib", "run", stem, "--profile", profile, "--out", out]
    for k, v in params.items():
        cmd += ["-p", k, repr(v) if isinstance(v, list) else str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "run failed")
    return proc.stdout.strip().splitlines()[-1]


def cmd_sweep(args) -> int:
    """Validate the whole grid, run every point, write a CSV of points and verdicts; print its path."""
    info = load_notebook(args.notebook)
    if args.workers < 1:
        raise ParamError(f"--workers {args.workers}: allowed is an integer >= 1")
    base = parse_overrides(info, args.p or [])
    grid = parse_grid(info, args.grid or [])
    clash = sorted(set(base) & set(grid))
    if clash:
        raise ParamError(f"parameter {clash[0]!r} is given with both -p and --grid: allowed is one of the two")
    names = list(grid)
    points = [dict(base, **dict(zip(names, combo))) for combo in itertools.product(*grid.values())]
    for pt in points:
        info.resolve(args.profile, pt)  # validate the whole grid before anything runs
    out = str(Path(args.out).resolve())
    if args.scheduler:
        from distributed import Client  # the `dist` extra

        with Client(args.scheduler) as client:
            futures = client.map(_sweep_one, [info.stem] * len(points), [args.profile] * len(points),
                                 points, [out] * len(points), pure=False)
            dirs = client.gather(futures)  # a failed point raises RuntimeError -> exit 1
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            dirs = list(pool.map(lambda pt: _sweep_one(info.stem, args.profile, pt, out), points))
    table = Path(out) / info.stem / f"sweep-{run_hash(args.profile, {'grid': grid, 'base': base})}.csv"
    with open(table, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names + list(info.claims) + ["run_dir"])
        for pt, d in zip(points, dirs):
            res = json.loads((Path(d) / RESULTS_FILE).read_text())
            writer.writerow([pt[n] for n in names] + [res["verdicts"][c]["holds"] for c in info.claims] + [d])
    print(table.read_text(), file=sys.stderr)
    print(table)
    return 0
