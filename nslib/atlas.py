"""The verdict atlas: where each claim holds, over seeds and the variations a reader would try.

Each notebook declares, beside its profiles in ``metadata.nslib``, an ``atlas``::

    "atlas": {"seeds": [0, 1, ..., 9],                      # >= 10 where the book profile costs <= 2 minutes, else >= 5
              "variation_seeds": 3,                          # each variation runs at the first 3 of them
              "variations": {"reversed grid": {"etas": [...]}, "smaller nets": {"width": 16}}}

``python -m nslib atlas [STEM ...]`` runs every point (the book profile with ``seed`` and a variation's overrides)
through the sweep machinery (resumable, local workers or Dask) and writes, per notebook, one tidy table
``atlas/<stem>.csv`` (one row per point and claim: variation, seed, state, reason, the claim's scalar measured
values, the overrides, the run hash) and ``atlas/manifest.json`` (per notebook: the code fingerprint, the commit,
the points and their cost). The fingerprint hashes what decides the results: the notebook's code cells and
metadata, its finding module, and nslib's tools, runner and verdicts; a notebook whose fingerprint changed is
recomputed, the others are not. ``--status`` says, per notebook, fresh, stale or missing.

The pages read it: :func:`atlas_texts` gives, per claim, its distribution over the seeds and whether a variation
changes it (the scorecard shows those), and :func:`plot_atlas` draws the grid of claims x seeds and variations
that each page's "Where the verdict changes" section shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["ATLAS_DIR", "MANIFEST", "STATES", "atlas_points", "atlas_reasons", "atlas_status", "atlas_texts",
           "cmd_atlas", "compute", "distribution_text", "fingerprint", "page_seconds", "plot_atlas", "read_atlas"]

#: Where the committed tables and the manifest live, under the repository root.
ATLAS_DIR = "atlas"
MANIFEST = "manifest.json"
#: The verdict states, in the order the grid's colours are listed.
STATES = ("holds", "does not hold", "inconclusive")
#: Runs of the atlas (executed notebooks), kept out of git: they are the cache a rerun resumes from.
_RUNS = Path("_build") / "atlas-runs"
_BASELINE = "none"  # the variation name of the plain book profile


def _root() -> Path:
    from .runner._notebooks import notebooks_dir

    return notebooks_dir().resolve().parent


def _finding_module_path(stem: str) -> Path:
    return _root() / "nslib" / "findings" / f"{stem.replace('-', '_')}.py"


def fingerprint(stem: str) -> str:
    """A hash of what decides the notebook's results: its code cells and ``metadata.nslib``, its finding module,
    and every source file of nslib's tools and runner and of ``nslib/verdicts.py``. Prose edits do not change it."""
    root = _root()
    nb = json.loads((root / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            h.update("".join(cell["source"]).encode())
    meta = dict(nb.get("metadata", {}).get("nslib", {}))
    meta.pop("atlas", None)  # the atlas's own declaration says which points, not what they compute
    h.update(json.dumps(meta, sort_keys=True).encode())
    files = [("finding", _finding_module_path(stem)), ("verdicts", root / "nslib" / "verdicts.py")]
    for part in ("tools", "runner"):
        files += [(f"{part}/{p.name}", p) for p in sorted((root / "nslib" / part).glob("*.py"))]
    for label, path in files:
        h.update(label.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def atlas_points(stem: str, profile: str = "book") -> list[tuple[str, int, dict[str, Any]]]:
    """``(variation, seed, overrides)`` for every point of the notebook's declared atlas: every seed with no
    variation, then each variation at the first ``variation_seeds`` seeds. A declaration that is missing or names
    an unknown parameter raises ParamError."""
    from .runner._notebooks import load_notebook
    from .runner._params import ParamError

    info = load_notebook(stem)
    nb = json.loads(info.path.read_text(encoding="utf-8"))
    decl = nb.get("metadata", {}).get("nslib", {}).get("atlas")
    if not decl or not decl.get("seeds"):
        raise ParamError(f"notebook {stem!r} declares no atlas: allowed is metadata.nslib.atlas with seeds and "
                         f"variations")
    seeds = [int(s) for s in decl["seeds"]]
    points = [(_BASELINE, s, {"seed": s}) for s in seeds]
    for name, overrides in decl.get("variations", {}).items():
        for s in seeds[: int(decl.get("variation_seeds", len(seeds)))]:
            points.append((name, s, {**overrides, "seed": s}))
    for _, _, overrides in points:
        info.resolve(profile, overrides)  # every point validated before anything runs
    return points


def _atlas_dir() -> Path:
    """``atlas/`` under the repository root; ``NSLIB_ATLAS_DIR`` points elsewhere (the tests use it)."""
    return Path(os.environ.get("NSLIB_ATLAS_DIR") or _root() / ATLAS_DIR)


def _manifest_path() -> Path:
    return _atlas_dir() / MANIFEST


def _read_manifest() -> dict:
    try:
        return json.loads(_manifest_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def page_seconds(stem: str) -> float | None:
    """The mean page time of one atlas point (one run of the ``book`` profile), from the committed manifest; None
    when the notebook has no atlas entry. Measured by whoever computed the atlas, often under load: a guide to which
    pages are long, not a benchmark."""
    entry = _read_manifest().get(stem) or {}
    cost, points = entry.get("cost_s"), entry.get("points_computed") or entry.get("points")
    return float(cost) / points if cost and points else None


def atlas_status(stem: str) -> str:
    """``fresh`` (its table exists and was computed from the ``book`` profile by the current code), ``stale`` (the
    code changed since) or ``missing``."""
    entry = _read_manifest().get(stem)
    if entry is None or not (_atlas_dir() / f"{stem}.csv").is_file():
        return "missing"
    fresh = entry.get("fingerprint") == fingerprint(stem) and entry.get("profile", "book") == "book"
    return "fresh" if fresh else "stale"


def _scalars(measured: dict) -> dict:
    return {k: v for k, v in measured.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _write_table(stem: str, rows: list[dict]) -> Path:
    path = _atlas_dir() / f"{stem}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["variation", "seed", "claim", "state", "reason", "measured",
                                                "overrides", "run_hash"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def _update_manifest(stem: str, entry: dict) -> None:
    manifest = _read_manifest()
    manifest[stem] = entry
    path = _manifest_path()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def compute(stem: str, args, profile: str = "book") -> tuple[Path, float]:
    """Run the notebook's missing atlas points (resuming from the runs cache of the current fingerprint), write its
    table and manifest entry; return the table's path and the seconds the points took (their ``elapsed_s``). The
    atlas is the ``book`` profile's; another ``profile`` (the tests use ``quick``) runs the same machinery smaller."""
    from .runner._notebooks import load_notebook
    from .runner._runs import RESULTS_FILE, run_hash
    from .runner._sweep import _complete, _run_points, _sweep_one

    info = load_notebook(stem)
    points = atlas_points(stem, profile)
    fp = fingerprint(stem)
    out = (Path(os.environ.get("NSLIB_ATLAS_RUNS") or _root() / _RUNS) / fp / profile).resolve()
    params = [info.resolve(profile, overrides) for _, _, overrides in points]
    dirs = [out / stem / run_hash(profile, p) for p in params]
    todo = [i for i, d in enumerate(dirs) if not _complete(d, info.claims)]
    print(f"nslib: atlas {stem}: {len(points) - len(todo)} of {len(points)} points already computed", file=sys.stderr)
    outcome = _run_points([points[i][2] for i in todo], lambda pt: _sweep_one(stem, profile, pt, str(out)), args)
    failed = [points[todo[j]] for j, v in outcome.items() if isinstance(v, Exception)]
    for (variation, seed, _), exc in zip(failed, [v for v in outcome.values() if isinstance(v, Exception)]):
        print(f"nslib: atlas {stem}: point {variation!r} seed {seed} failed: {exc}", file=sys.stderr)
    rows, cost = [], 0.0
    for (variation, seed, overrides), d in zip(points, dirs):
        if not _complete(d, info.claims):
            continue
        res = json.loads((d / RESULTS_FILE).read_text(encoding="utf-8"))
        cost += float(res.get("elapsed_s") or 0.0)
        shown = {k: v for k, v in overrides.items() if k != "seed"}
        for claim in info.claims:
            v = res["verdicts"][claim]
            rows.append({"variation": variation, "seed": seed, "claim": claim, "state": v["status"],
                         "reason": v.get("reason") or "", "measured": json.dumps(_scalars(v.get("measured", {}))),
                         "overrides": json.dumps(shown, sort_keys=True), "run_hash": d.name})
    table = _write_table(stem, rows)
    from .runner._results import _git_commit

    _update_manifest(stem, {"fingerprint": fp, "commit": _git_commit(), "profile": profile, "points": len(points),
                            "points_computed": len(points) - len(failed), "cost_s": round(cost, 1),
                            "computed": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    return table, cost


def cmd_atlas(args) -> int:
    """``python -m nslib atlas``: compute (or with ``--status`` report) the atlas of the notebooks named, or of all
    that declare one. Exit 1 when ``--status`` finds a notebook not fresh or a point failed."""
    from .runner._notebooks import available_notebooks
    from .runner._params import ParamError

    declared = [s for s in available_notebooks() if _declares(s)]
    stems = args.notebooks or declared
    unknown = [s for s in stems if s not in available_notebooks()]
    if unknown:
        raise ParamError(f"notebook {unknown[0]!r} is unknown: allowed is one of {', '.join(available_notebooks())}")
    if args.status:
        states = {s: atlas_status(s) for s in stems}
        for s, st in states.items():
            print(f"{s:32s} {st}")
        return 0 if all(st == "fresh" for st in states.values()) else 1
    total, ok = 0.0, True
    for stem in stems:
        if atlas_status(stem) == "fresh" and not args.force:
            print(f"nslib: atlas {stem}: fresh, skipped", file=sys.stderr)
            continue
        table, cost = compute(stem, args)
        entry = _read_manifest()[stem]
        ok &= entry["points_computed"] == entry["points"]
        total += cost
        print(table)
    print(f"nslib: atlas computed in {total / 60:.1f} min of page time (on {args.workers} worker(s) the wall time is "
          f"about that divided by the workers); on a cluster: --scheduler tcp://HOST:8786", file=sys.stderr)
    return 0 if ok else 1


def _declares(stem: str) -> bool:
    from .runner._notebooks import load_notebook

    nb = json.loads(load_notebook(stem).path.read_text(encoding="utf-8"))
    return bool(nb.get("metadata", {}).get("nslib", {}).get("atlas"))


# ------------------------------------------------------------------------------------------------- on the pages

def read_atlas(stem: str):
    """The notebook's atlas table as a DataFrame (empty when there is none)."""
    import pandas as pd

    path = _atlas_dir() / f"{stem}.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["variation", "seed", "claim", "state", "reason", "measured", "overrides",
                                     "run_hash"])
    return pd.read_csv(path, keep_default_na=False, dtype={"reason": str, "state": str})


def distribution_text(table, claim: str) -> str:
    """"holds at 9 of 10 seeds, inconclusive at 1", and whether a variation changes the state."""
    base = table[(table.claim == claim) & (table.variation == _BASELINE)]
    if base.empty:
        return "no atlas yet"
    counts = Counter(base.state)
    ordered = sorted(counts, key=lambda st: (-counts[st], STATES.index(st)))
    text = f"{ordered[0]} at {counts[ordered[0]]} of {len(base)} seeds"
    text += "".join(f", {st} at {counts[st]}" for st in ordered[1:])
    varied = table[(table.claim == claim) & (table.variation != _BASELINE)]
    changed = sorted({v for v, sub in varied.groupby("variation")
                      for seed, st in zip(sub.seed, sub.state)
                      if st != dict(zip(base.seed, base.state)).get(seed, st)})
    if changed:
        text += "; changes with: " + ", ".join(changed)
    return text


def atlas_texts(run) -> dict[str, str]:
    """What a page glues from its atlas (:func:`nslib.glue.glue_verdicts` glues it): per claim,
    ``atlas-<claim id>``, its distribution over the atlas' seeds and the variations that change it (the scorecard
    shows it); and ``atlas-status``, a sentence saying whether the atlas matches the current code. When it does, the
    seed's row with no variation must equal the page's own verdicts on the book profile: a mismatch is an error."""
    stem = run.notebook
    status = atlas_status(stem)
    table = read_atlas(stem) if status != "missing" else None
    texts = {f"atlas-{claim}": distribution_text(table, claim) if table is not None else "no atlas yet"
             for claim in run.verdicts}
    texts["atlas-status"] = {
        "fresh": "The atlas below was computed by the code that built this page.",
        "stale": (f"THE ATLAS BELOW IS STALE: the code changed since it was computed. Refresh it with: python -m "
                  f"nslib atlas {stem}"),
        "missing": f"NO ATLAS HAS BEEN COMPUTED FOR THIS PAGE YET: run python -m nslib atlas {stem}",
    }[status]
    if status == "fresh" and run.profile == "book":
        base = table[(table.variation == _BASELINE) & (table.seed == int(run.params.get("seed", 0)))]
        for claim, v in run.verdicts.items():
            row = base[base.claim == claim]
            if len(row) and row.state.iloc[0] != v.state:
                raise RuntimeError(f"the atlas of {stem} says {claim!r} {row.state.iloc[0]} at seed "
                                   f"{run.params.get('seed', 0)}, this run {v.state}: with matching code they must "
                                   f"agree")
    return texts


def plot_atlas(stem: str):
    """Claims (rows) x atlas points (columns: every seed, then each variation's seeds), coloured by state; the
    reasons of the inconclusive points are listed below the figure by :func:`atlas_reasons`."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from .figures import PALETTE

    table = read_atlas(stem)
    if table.empty:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no atlas yet: python -m nslib atlas {stem}", ha="center", va="center")
        return fig
    cols = list(dict.fromkeys(zip(table.variation, table.seed)))
    claims = list(dict.fromkeys(table.claim))
    code = {s: i for i, s in enumerate(STATES)}
    grid = [[code.get(table[(table.claim == c) & (table.variation == v) & (table.seed == s)].state.iloc[0], 2)
             if len(table[(table.claim == c) & (table.variation == v) & (table.seed == s)]) else float("nan")
             for v, s in cols] for c in claims]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(cols) + 3), 0.45 * len(claims) + 1.6))
    cmap = ListedColormap([PALETTE[2], PALETTE[3], "#bbbbbb"])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=2.5, aspect="auto")
    ax.set_yticks(range(len(claims)), claims)
    ax.set_xticks(range(len(cols)), [f"seed {s}" if v == _BASELINE else f"{v}\nseed {s}" for v, s in cols],
                  rotation=60, ha="right", fontsize="x-small")
    for i, st in enumerate(STATES):
        ax.plot([], [], "s", color=cmap(i), label=st)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Verdict per claim at each seed and variation")
    fig.tight_layout()
    return fig


def atlas_reasons(stem: str):
    """The inconclusive points of the atlas, one line each: claim, variation, seed, reason."""
    table = read_atlas(stem)
    rows = table[table.state == "inconclusive"][["claim", "variation", "seed", "reason"]].reset_index(drop=True)
    if rows.empty:  # a page shows a sentence, not pandas' "Empty DataFrame"
        note = "no atlas yet" if table.empty else "no point of the atlas is inconclusive"
        return rows.reindex([0]).assign(claim="-", variation="-", seed="-", reason=note)
    return rows
