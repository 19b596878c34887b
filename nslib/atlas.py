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
recomputed, the others are not. ``--status`` says, per notebook, fresh, incomplete (points failed), stale or missing.

The pages read it: :func:`atlas_texts` gives, per claim, its distribution over the seeds and whether a variation
changes it (the scorecard shows those), and :func:`plot_atlas` draws the grid of claims x seeds and variations
that each page's "Where the verdict changes" section shows.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .verdicts import STATES

__all__ = ["ATLAS_DIR", "MANIFEST", "atlas_points", "atlas_reasons", "atlas_status", "atlas_texts",
           "cmd_atlas", "compare_with_atlas", "compute", "deciding_groups", "distribution_text", "fingerprint",
           "kernel_points",
           "kernels_text", "page_seconds", "plot_atlas", "read_atlas"]

#: Where the committed tables and the manifest live, under the repository root.
ATLAS_DIR = "atlas"
#: The manifest's file name in :data:`ATLAS_DIR`: per notebook, the fingerprint, commit, points, cost and hardware.
MANIFEST = "manifest.json"
#: Runs of the atlas (executed notebooks), kept out of git: they are the cache a rerun resumes from.
_RUNS = Path("_build") / "atlas-runs"
_BASELINE = "none"  # the variation name of the plain book profile
#: Set to "1" by ``python -m nslib book-execute``: in the book build, a page that disagrees with the atlas point of the
#: same parameters, code and hardware fails; a reader's own run (a notebook, ``nslib run``) says so on the page instead.
STRICT_ENV = "NSLIB_ATLAS_STRICT"
#: The table's columns: ``hardware`` is the point's :func:`nslib.runner._runtime.hardware` key, ``kernels`` the CPU
#: kernel set torch used there (what the manifest's ``hardware`` describes in words).
#: ``groups`` the state of each group the claim was judged on (JSON, {group: state}; empty for a claim judged whole).
_COLUMNS = ("variation", "seed", "claim", "state", "reason", "groups", "measured", "overrides", "run_hash", "hardware",
            "kernels")


def _root() -> Path:
    from .runner._notebooks import notebooks_dir

    return notebooks_dir().resolve().parent


def _finding_module_path(stem: str) -> Path:
    return _root() / "nslib" / "findings" / f"{stem.replace('-', '_')}.py"


#: The runner's files that decide what a run computes (parameter resolution, profiles, seeding and threads, the
#: record). The others (``_runs``, ``_sweep``) only launch, place and schedule runs, like the command line
#: (:mod:`nslib.cli`): a change there cannot change a number, so it does not mark every atlas stale.
_RUNNER_DECIDES = ("_notebooks.py", "_params.py", "_results.py", "_runtime.py")


def fingerprint(stem: str) -> str:
    """A hash of what decides the notebook's results: its code cells and ``metadata.nslib``, its finding module,
    every source file of nslib's tools, ``nslib/verdicts.py``, ``nslib/_jsonsafe.py`` and the runner's files that
    decide what a run computes (:data:`_RUNNER_DECIDES`), each read as code (:func:`_code_of`: docstrings and
    comments left out). Prose edits, in the notebook or in a docstring, do not change it."""
    root = _root()
    nb = json.loads((root / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            h.update("".join(cell["source"]).encode())
    meta = dict(nb.get("metadata", {}).get("nslib", {}))
    meta.pop("atlas", None)  # the atlas's own declaration says which points, not what they compute
    h.update(json.dumps(meta, sort_keys=True).encode())
    files = [("finding", _finding_module_path(stem)), ("verdicts", root / "nslib" / "verdicts.py"),
             ("jsonsafe", root / "nslib" / "_jsonsafe.py")]
    files += [(f"tools/{p.name}", p) for p in sorted((root / "nslib" / "tools").glob("*.py"))]
    files += [(f"runner/{name}", root / "nslib" / "runner" / name) for name in _RUNNER_DECIDES]
    for label, path in files:
        h.update(label.encode())
        h.update(_code_of(path).encode())
    return h.hexdigest()[:16]


def _code_of(path: Path) -> str:
    """A Python file as its code alone: the syntax tree without docstrings, written back (comments do not survive
    a parse), so that rewording a docstring or a comment leaves the fingerprint as it was."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None),
                                                                       ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def atlas_points(stem: str, profile: str = "book") -> list[tuple[str, int, dict[str, Any]]]:
    """``(variation, seed, overrides)`` for every point of the notebook's declared atlas: every seed with no
    variation, then each variation at the first ``variation_seeds`` seeds. A declaration that is missing or names
    an unknown parameter raises ParamError."""
    from .runner._notebooks import load_notebook
    from .runner._params import ParamError

    info = load_notebook(stem)
    decl = info.atlas
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


def _declaration(stem: str) -> dict:
    from .runner._notebooks import load_notebook

    return copy.deepcopy(load_notebook(stem).atlas or {})


def _torch_default_kernels() -> str:
    """The kernel set torch picks on this CPU when nothing forces one (asked of a fresh interpreter, since this
    process may have ``ATEN_CPU_CAPABILITY`` set), lower case."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         capture_output=True, text=True, env=env, timeout=120)
    return out.stdout.strip().lower() or "unknown"


def kernel_points(stem: str) -> tuple[list[tuple[str, int, dict[str, Any], dict[str, str]]], list[dict]]:
    """The CPU-kernels variation a page whose verdicts rest on low-precision rounding declares
    (``"kernels": ["default", "avx2", "avx512"]`` in its atlas): at the first seed, one point per kernel set, run
    with ``ATEN_CPU_CAPABILITY`` set for its kernel. Returns ``(variation, seed, overrides, env)`` for the sets this
    machine can run, and, for the others, ``{"variation", "seed", "reason"}``: a set this CPU lacks the features for
    (torch would die on an illegal instruction) and the set torch already picks here (the baseline is that point)."""
    from .runner._runtime import KERNEL_SETS, kernel_support

    decl = _declaration(stem)
    asked = decl.get("kernels") or []
    unknown = [k for k in asked if k not in KERNEL_SETS]
    if unknown:
        from .runner._params import ParamError

        raise ParamError(f"notebook {stem!r}: atlas kernels {unknown}: allowed are {', '.join(KERNEL_SETS)}")
    if not asked:
        return [], []
    seed = int(decl["seeds"][0])
    support, own = kernel_support(), _torch_default_kernels()
    points, skipped = [], []
    for name in asked:
        variation = f"kernels {name}"
        if support.get(name):
            skipped.append({"variation": variation, "seed": seed, "reason": support[name]})
        elif name == own:
            reason = f"torch runs the {name} kernels on this CPU unforced: the baseline is this point"
            skipped.append({"variation": variation, "seed": seed, "reason": reason})
        else:
            points.append((variation, seed, {"seed": seed}, {"ATEN_CPU_CAPABILITY": name}))
    return points, skipped


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
    """``fresh`` (its table exists and was computed from the ``book`` profile by the current code, every point),
    ``incomplete`` (the same, but some points failed: a rerun of ``python -m nslib atlas`` computes only those),
    ``stale`` (the code changed since) or ``missing``."""
    entry = _read_manifest().get(stem)
    if entry is None or not (_atlas_dir() / f"{stem}.csv").is_file():
        return "missing"
    if entry.get("fingerprint") != fingerprint(stem) or entry.get("profile", "book") != "book":
        return "stale"
    if entry.get("points_computed", entry.get("points")) != entry.get("points"):
        return "incomplete"
    # a declaration that gained seeds or variations since (it is outside the fingerprint): those points are missing
    table = read_atlas(stem)
    have = {(str(v), int(s)) for v, s in zip(table["variation"], table["seed"])}
    declared = {(v, s) for v, s, _ in atlas_points(stem)}
    return "fresh" if declared <= have else "incomplete"


def _scalars(measured: dict) -> dict:
    return {k: v for k, v in measured.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _group_states(measured: dict) -> str:
    """The judged groups' states of a results.json verdict's ``measured`` (:meth:`nslib.verdicts.Verdict.to_json`)."""
    groups = {k: g["status"] for k, g in (measured.get("per_group") or {}).items() if g.get("judged", True)}
    return json.dumps(groups) if groups else ""


def _write_table(stem: str, rows: list[dict]) -> Path:
    path = _atlas_dir() / f"{stem}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(_COLUMNS))
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
    atlas is the ``book`` profile's; another ``profile`` (the tests use ``quick``) runs the same machinery smaller.
    The kernels variation (:func:`kernel_points`) runs with its ``ATEN_CPU_CAPABILITY`` and is checked: a point where
    torch used other kernels than it was told to fails."""
    from .runner._notebooks import load_notebook
    from .runner._results import git_commit
    from .runner._runs import RESULTS_FILE, run_hash
    from .runner._runtime import hardware_text
    from .runner._sweep import is_complete, run_points, sweep_one

    info = load_notebook(stem)
    kernels, skipped = kernel_points(stem)
    # the plain points run with the kernels torch picks unforced, whatever this process was started with
    points = [(v, s, o, {"ATEN_CPU_CAPABILITY": None}) for v, s, o in atlas_points(stem, profile)] + kernels
    fp = fingerprint(stem)
    out = (Path(os.environ.get("NSLIB_ATLAS_RUNS") or _root() / _RUNS) / fp / profile).resolve()
    outs = [out / f"kernels-{env['ATEN_CPU_CAPABILITY']}" if env.get("ATEN_CPU_CAPABILITY") else out
            for _, _, _, env in points]
    dirs = [o / stem / run_hash(profile, info.resolve(profile, overrides)) for o, (_, _, overrides, _) in
            zip(outs, points)]
    # two declared points may resolve to the same parameters (a variation that repeats a profile's value): one run
    todo = [i for i, d in enumerate(dirs) if not is_complete(d, info.claims) and d not in dirs[:i]]
    print(f"nslib: atlas {stem}: {len(points) - len(todo)} of {len(points)} points already computed", file=sys.stderr)
    for sk in skipped:
        print(f"nslib: atlas {stem}: point {sk['variation']!r} skipped: {sk['reason']}", file=sys.stderr)
    outcome = run_points(todo, lambda i: sweep_one(stem, profile, points[i][2], str(outs[i]), env=points[i][3]),
                          args)
    errors = {todo[j]: v for j, v in outcome.items() if isinstance(v, Exception)}
    rows, cost, machines = [], 0.0, {}
    for i, ((variation, seed, overrides, env), d) in enumerate(zip(points, dirs)):
        if i in errors:
            continue
        if not is_complete(d, info.claims):  # written elsewhere or not at all: a failed point, never a silent gap
            errors[i] = RuntimeError(f"no complete results.json in {d}")
            continue
        res = json.loads((d / RESULTS_FILE).read_text(encoding="utf-8"))
        hw = res.get("env", {}).get("hardware") or {}
        used = str(hw.get("cpu_capability", "")).lower()
        if env.get("ATEN_CPU_CAPABILITY") and used != env["ATEN_CPU_CAPABILITY"]:
            errors[i] = RuntimeError(f"asked for the {env['ATEN_CPU_CAPABILITY']} kernels, torch used {used or '?'}")
            continue
        cost += float(res.get("elapsed_s") or 0.0) if d not in dirs[:i] else 0.0  # a repeated point ran once
        if hw:
            machines[hw["key"]] = hardware_text(hw)
        shown = {k: v for k, v in overrides.items() if k != "seed"}
        for claim in info.claims:
            v = res["verdicts"][claim]
            rows.append({"variation": variation, "seed": seed, "claim": claim, "state": v["status"],
                         "reason": v.get("reason") or "", "groups": _group_states(v.get("measured", {})),
                         "measured": json.dumps(_scalars(v.get("measured", {}))),
                         "overrides": json.dumps(shown, sort_keys=True), "run_hash": d.name,
                         "hardware": hw.get("key", ""), "kernels": used})
    for i, exc in sorted(errors.items()):
        print(f"nslib: atlas {stem}: point {points[i][0]!r} seed {points[i][1]} failed: {exc}", file=sys.stderr)
    table = _write_table(stem, rows)
    _update_manifest(stem, {"fingerprint": fp, "commit": git_commit(), "profile": profile, "points": len(points),
                            "points_computed": len(points) - len(errors), "cost_s": round(cost, 1),
                            "hardware": machines, "skipped": skipped,
                            "computed": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    return table, cost


def cmd_atlas(args) -> int:
    """``python -m nslib atlas``: compute (or with ``--status`` report) the atlas of the notebooks named, or of all
    that declare one. Exit 1 when ``--status`` finds a notebook not fresh or a point failed."""
    from .runner._notebooks import available_notebooks
    from .runner._params import ParamError
    from .runner._sweep import check_workers

    if not args.status:
        check_workers(args)
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
    return bool(_declaration(stem))


# ------------------------------------------------------------------------------------------------- on the pages

def read_atlas(stem: str):
    """The notebook's atlas table as a DataFrame (empty when there is none); a table written before the atlas recorded
    hardware has empty ``hardware`` and ``kernels`` columns."""
    import pandas as pd

    path = _atlas_dir() / f"{stem}.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(_COLUMNS))
    table = pd.read_csv(path, keep_default_na=False, dtype={"reason": str, "state": str, "groups": str,
                                                             "hardware": str, "kernels": str})
    for column in _COLUMNS:
        if column not in table:
            table[column] = ""
    return table


def _group_states_of(cell: str) -> dict[str, str]:
    """The ``groups`` cell of a row: {group: state} (empty for a claim judged whole or a table without groups)."""
    try:
        return json.loads(cell) if cell else {}
    except (TypeError, json.JSONDecodeError):
        return {}


def deciding_groups(rows, state: str) -> Counter:
    """Over atlas rows (one claim), how many points in ``state`` each group was in that state: the groups that
    decided a "does not hold" or an "inconclusive" (a "holds" needs every group, so no group decides it alone)."""
    counts: Counter = Counter()
    if state == STATES[0]:
        return counts
    cells = rows["groups"] if "groups" in rows else [""] * len(rows)
    for st, cell in zip(rows.state, cells):
        if st == state:
            counts.update(g for g, gs in _group_states_of(cell).items() if gs == state)
    return counts


def _deciders_text(rows, state: str) -> str:
    counts = deciding_groups(rows, state)
    if not counts:
        return ""
    shown = [f"{g} ({n})" for g, n in counts.most_common(4)]
    more = f" and {len(counts) - 4} more" if len(counts) > 4 else ""
    return f" (decided by {', '.join(shown)}{more})"


def distribution_text(table, claim: str, deterministic: bool = False) -> str:
    """"does not hold at 7 of 10 seeds (decided by relu ce (7)), holds at 3", and whether a variation changes the
    state. A ``deterministic`` claim (the same computation at every seed) is stated once, not counted per seed."""
    base = table[(table.claim == claim) & (table.variation == _BASELINE)]
    if base.empty:
        return "no atlas yet"
    counts = Counter(base.state)
    ordered = sorted(counts, key=lambda st: (-counts[st], STATES.index(st)))
    if deterministic and len(counts) == 1:
        text = f"{ordered[0]} (the same computation at every seed: counted once)"
    else:
        text = f"{ordered[0]} at {counts[ordered[0]]} of {len(base)} seeds" + _deciders_text(base, ordered[0])
        text += "".join(f", {st} at {counts[st]}" + _deciders_text(base, st) for st in ordered[1:])
        if deterministic:
            text += " (declared seed-independent, yet the seeds differ)"
    varied = table[(table.claim == claim) & (table.variation != _BASELINE)]
    changed = sorted({v for v, sub in varied.groupby("variation")
                      for seed, st in zip(sub.seed, sub.state)
                      if st != dict(zip(base.seed, base.state)).get(seed, st)})
    if changed:
        text += "; changes with: " + ", ".join(changed)
    return text


def _run_hardware(run) -> dict:
    env = run.env() if callable(getattr(run, "env", None)) else {}
    return env.get("hardware") or {}


def compare_with_atlas(run, table) -> dict:
    """The page's run against the atlas point of the *same resolved parameters* (the run hash of the ``book``
    profile: the default page is seed 0's point, a reader's run at seed 3 is seed 3's): ``{"point": False}`` when
    the parameters are no atlas point (a reader's own run: nothing to compare); else ``{"point": True, "same_hardware":
    ..., "differ": {claim: (page state, atlas state)}, "page_hardware": ..., "atlas_hardware": ...}``. Among the
    points of those parameters, the one computed on the page's own hardware is taken when there is one (a page built
    with ``ATEN_CPU_CAPABILITY=default`` meets the kernels variation's point of the same kernels); else the plain
    point (never a kernels variation's: the same parameters on purpose forced onto other kernels)."""
    from .runner._runs import run_hash

    own = run_hash("book", run.params)
    hw = _run_hardware(run)
    same = table[(table.run_hash == own) & (table.hardware == hw.get("key", "")) & (table.hardware != "")]
    rows = same if len(same) else table[(table.run_hash == own) & ~table.variation.str.startswith("kernels ")]
    if rows.empty:
        return {"point": False}
    atlas_key = str(rows.hardware.iloc[0])
    differ = {}
    for claim, v in run.verdicts.items():
        row = rows[rows.claim == claim]
        if len(row) and row.state.iloc[0] != v.state:
            differ[claim] = (v.state, row.state.iloc[0])
    manifest = _read_manifest().get(run.notebook, {}).get("hardware", {})
    return {"point": True, "seed": int(rows.seed.iloc[0]), "variation": rows.variation.iloc[0],
            "same_hardware": bool(atlas_key) and atlas_key == hw.get("key"), "differ": differ,
            "page_hardware": hw, "atlas_hardware": manifest.get(atlas_key, "hardware not recorded")}


def kernels_text(table) -> str:
    """What the atlas's kernels variation shows, for the page: per kernel set run, the claims whose state differs
    from the baseline at that seed (or that none does)."""
    varied = table[table.variation.str.startswith("kernels ")]
    if varied.empty:
        return "no kernels variation has been computed for this page"
    parts = []
    for variation, sub in varied.groupby("variation", sort=False):
        seed = int(sub.seed.iloc[0])
        base = table[(table.variation == _BASELINE) & (table.seed == seed)]
        base_state = dict(zip(base.claim, base.state))
        base_kernels = base.kernels.iloc[0] if len(base) and base.kernels.iloc[0] else "unforced"
        changed = [f"'{c}' {st} (against {base_state[c]} with the {base_kernels} kernels)"
                   for c, st in zip(sub.claim, sub.state) if c in base_state and base_state[c] != st]
        name = variation.removeprefix("kernels ")
        parts.append(f"with torch's {name} kernels at seed {seed}, " +
                     ("; ".join(changed) if changed else "every claim as with the baseline's kernels"))
    return "; ".join(parts)


def _skipped_text(stem: str) -> str:
    skipped = _read_manifest().get(stem, {}).get("skipped") or []
    return "; ".join(f"{sk['variation']} not run ({sk['reason']})" for sk in skipped)


def _differences(differ: dict) -> str:
    """"'c' holds here, inconclusive in the atlas; ..." from :func:`compare_with_atlas`'s ``differ``."""
    return "; ".join(f"'{c}' {page} here, {atl} in the atlas" for c, (page, atl) in differ.items())


def atlas_texts(run) -> dict[str, str]:
    """What a page glues from its atlas (:func:`nslib.glue.glue_verdicts` glues it): per claim, ``atlas-<claim id>``,
    its distribution over the atlas' seeds and the variations that change it (the scorecard shows it), with "depends
    on the hardware here" when this page's run differs from the atlas point of the same parameters computed on
    other hardware; ``atlas-status``, whether the atlas matches the current code; ``atlas-hardware``, how this run
    compares with that point and on which hardware each was computed; ``atlas-kernels``, what the kernels variation
    shows.

    Like is compared with like only: the atlas point of the same resolved parameters (never another seed's row, never
    a reader's own parameters) computed by the same code. On the same hardware (the same
    :func:`~nslib.runner._runtime.hardware` key) the two must agree: a mismatch is non-determinism (or something the
    record does not name), and raises in the book build (:data:`STRICT_ENV`), while a reader's own run shows it on the
    page. On other hardware a difference is information about the machine, never an error."""
    from .runner._runtime import hardware_text

    stem = run.notebook
    status = atlas_status(stem)
    table = read_atlas(stem) if status != "missing" else None
    from .runner._notebooks import load_notebook

    fixed = set(load_notebook(stem).deterministic_claims)
    texts = {f"atlas-{claim}": distribution_text(table, claim, claim in fixed) if table is not None
             else "no atlas yet" for claim in run.verdicts}
    texts["atlas-status"] = {
        "fresh": "The atlas below was computed by the code that built this page.",
        "incomplete": (f"The atlas below was computed by the code that built this page, but some of its points "
                       f"failed and are missing: python -m nslib atlas {stem} computes them."),
        "stale": (f"THE ATLAS BELOW IS STALE: the code changed since it was computed. Refresh it with: python -m "
                  f"nslib atlas {stem}"),
        "missing": f"NO ATLAS HAS BEEN COMPUTED FOR THIS PAGE YET: run python -m nslib atlas {stem}",
    }[status]
    here = hardware_text(_run_hardware(run))
    texts["atlas-kernels"] = kernels_text(table) if table is not None else "no atlas yet"
    skipped = _skipped_text(stem)
    if skipped and table is not None:
        texts["atlas-kernels"] += f"; {skipped}"
    if status == "stale":
        for claim in run.verdicts:
            texts[f"atlas-{claim}"] += " (stale atlas: computed by older code)"
    if status not in ("fresh", "incomplete"):
        texts["atlas-hardware"] = (f"This page was computed on {here}; it is not compared with the atlas, which "
                                   f"{'is stale' if status == 'stale' else 'is missing'}.")
        return texts
    cmp = compare_with_atlas(run, table)
    if not cmp["point"]:
        texts["atlas-hardware"] = (f"This page was computed on {here}, with parameters that are no point of the atlas "
                                   f"(a rerun of one's own): there is nothing to compare it with.")
        return texts
    where = f"the atlas point seed {cmp['seed']}" + (f" ({cmp['variation']})" if cmp["variation"] != _BASELINE else "")
    if cmp["same_hardware"]:
        if cmp["differ"]:
            claim, (page, atl) = next(iter(cmp["differ"].items()))
            message = (f"the atlas of {stem} says {claim!r} {atl} at seed {cmp['seed']}, this run {page}, with the "
                       f"same parameters, code and hardware ({here}): the run is not deterministic")
            if os.environ.get(STRICT_ENV) == "1":  # the book build: a page must not disagree with its own atlas
                raise RuntimeError(message)
            listed = _differences(cmp["differ"])
            texts["atlas-hardware"] = (f"WARNING: this page's run and {where} have the same parameters, code and "
                                       f"hardware record ({here}), yet they differ: {listed}. Something this record "
                                       f"does not name changed the arithmetic (library versions, BLAS or oneDNN "
                                       f"settings), or the run is not deterministic.")
            for c, (p, a) in cmp["differ"].items():
                texts[f"atlas-{c}"] += f"; this run {p}, the atlas point of the same parameters and hardware {a}"
            return texts
        texts["atlas-hardware"] = (f"This page's run and {where} (the same parameters) were computed on the same "
                                   f"hardware ({here}) and agree on every claim.")
        return texts
    if not cmp["differ"]:
        texts["atlas-hardware"] = (f"This page was computed on {here}; {where} (the same parameters) on "
                                   f"{cmp['atlas_hardware']}. They agree on every claim.")
        return texts
    listed = _differences(cmp["differ"])
    texts["atlas-hardware"] = (f"This page was computed on {here}; {where} (the same parameters and code) on "
                               f"{cmp['atlas_hardware']}. They differ: {listed}. Same code and parameters, other "
                               f"arithmetic: these verdicts depend on the machine (its CPU kernels, BLAS or torch "
                               f"build), and the page says so; the build goes on.")
    for claim, (page, atl) in cmp["differ"].items():
        texts[f"atlas-{claim}"] += (f"; depends on the hardware here (CPU kernels, BLAS, torch build): {page} on "
                                    f"this page's, {atl} at the atlas point")
    return texts


def plot_atlas(stem: str):
    """Claims (rows) x atlas points (columns: every seed, then each variation's seeds), coloured by state; a cell
    judged per group that does not hold (or is inconclusive) carries "k/n", the number of its n groups in that state
    (:func:`atlas_reasons` names them). A claim declared seed-independent says so on its row."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from .figures import MAX_WIDTH, PALETTE
    from .runner._notebooks import load_notebook

    table = read_atlas(stem)
    if table.empty:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no atlas yet: python -m nslib atlas {stem}", ha="center", va="center")
        return fig
    fixed = set(load_notebook(stem).deterministic_claims)
    cols = list(dict.fromkeys(zip(table.variation, table.seed)))
    claims = list(dict.fromkeys(table.claim))
    code = {s: i for i, s in enumerate(STATES)}
    cells = {(c, v, s): row for c, v, s, row in zip(table.claim, table.variation, table.seed, table.itertuples())}
    grid = [[code.get(cells[(c, v, s)].state, 2) if (c, v, s) in cells else float("nan") for v, s in cols]
            for c in claims]
    # as wide as the page allows (MAX_WIDTH), the cells narrowing when a page declares many points
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH, max(6.0, 0.42 * len(cols) + 3)), 0.45 * len(claims) + 1.6))
    cmap = ListedColormap([PALETTE[2], PALETTE[3], "#bbbbbb"])
    ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=2.5, aspect="auto")
    for i, c in enumerate(claims):
        for j, (v, s) in enumerate(cols):
            row = cells.get((c, v, s))
            groups = _group_states_of(row.groups) if row is not None else {}
            if row is not None and groups and row.state != STATES[0]:
                k = sum(gs == row.state for gs in groups.values())
                ax.text(j, i, f"{k}/{len(groups)}", ha="center", va="center", fontsize=5.5, color="white")
    ax.set_yticks(range(len(claims)), [f"{c}\n(seed-independent)" if c in fixed else c for c in claims],
                  fontsize="small")
    ax.set_xticks(range(len(cols)), [f"seed {s}" if v == _BASELINE else f"{v}\nseed {s}" for v, s in cols],
                  rotation=60, ha="right", fontsize="x-small")
    for i, st in enumerate(STATES):
        ax.plot([], [], "s", color=cmap(i), label=st)
    ax.legend(frameon=False, fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3)
    ax.set_title("Verdict per claim at each seed and variation (k/n: groups in that state)", pad=28)
    fig.tight_layout()
    return fig


def atlas_reasons(stem: str):
    """Every point of the atlas where a claim does not hold or is inconclusive, one line each: claim, variation,
    seed, state, the groups that decided it, and the whole reason (a styled table: pandas' plain display cuts text
    at 50 characters)."""
    table = read_atlas(stem)
    rows = table[table.state != STATES[0]].copy()
    rows["decided by"] = [", ".join(g for g, gs in _group_states_of(cell).items() if gs == st) or "—"
                          for st, cell in zip(rows.state, rows.groups)]
    rows["reason"] = [r or "—" for r in rows.reason]
    rows["variation"] = rows.variation.replace(_BASELINE, "book profile")  # the CSV's "none" reads as missing
    rows = rows[["claim", "variation", "seed", "state", "decided by", "reason"]].reset_index(drop=True)
    if rows.empty:  # a page shows a sentence, not pandas' "Empty DataFrame"
        note = "no atlas yet" if table.empty else "every claim holds at every point of the atlas"
        rows = rows.reindex([0]).assign(claim="—", variation="—", seed="—", state="—", **{"decided by": "—"},
                                        reason=note)
    return rows.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "normal"})
