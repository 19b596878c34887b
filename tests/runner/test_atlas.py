"""The verdict atlas: its points, its fingerprint, its table against a direct run, and what the pages glue."""

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import toc_notebooks

from nslib import atlas
from nslib.runner._runs import RESULTS_FILE, run_notebook

STEM = "abs-smooth-clarke"


def test_points_cover_every_seed_then_each_variation_at_the_first_seeds():
    points = atlas.atlas_points("maxpool-jacobians")
    seeds = [s for v, s, _ in points if v == "none"]
    assert seeds == list(range(5))
    varied = [(v, s) for v, s, _ in points if v != "none"]
    assert varied == [("float16 training", 0), ("reversed betas", 0)]  # variation_seeds: 1
    assert all(o["seed"] == s for _, s, o in points)


def test_a_changed_finding_module_marks_only_its_own_page_stale(tmp_path, monkeypatch):
    before = {s: atlas.fingerprint(s) for s in (STEM, "l1-paradox")}
    assert before[STEM] == atlas.fingerprint(STEM)  # deterministic
    copy = tmp_path / "abs_smooth_clarke.py"
    shutil.copy(atlas._finding_module_path(STEM), copy)
    source = copy.read_text()
    real = atlas._finding_module_path
    monkeypatch.setattr(atlas, "_finding_module_path", lambda stem: copy if stem == STEM else real(stem))
    # prose is not code: a comment or a reworded docstring leaves the atlas fresh
    copy.write_text(source.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert atlas.fingerprint(STEM) == before[STEM]
    copy.write_text(source + "\nCHANGED = 1\n")
    assert atlas.fingerprint(STEM) != before[STEM]
    assert atlas.fingerprint("l1-paradox") == before["l1-paradox"]


@pytest.mark.notebook
def test_the_atlas_rows_equal_a_direct_run_and_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    """Two points of the machinery at the quick scale: the table's states are the direct run's; a second call runs
    nothing new."""
    monkeypatch.setenv("NSLIB_ATLAS_DIR", str(tmp_path / "atlas"))
    monkeypatch.setenv("NSLIB_ATLAS_RUNS", str(tmp_path / "runs"))
    points = [("none", 0, {"seed": 0}), ("one tie per layer", 0, {"ties_per_layer": 1, "seed": 0})]
    monkeypatch.setattr(atlas, "atlas_points", lambda stem, profile="book": points)
    args = argparse.Namespace(workers=2, scheduler=None)
    table, _ = atlas.compute(STEM, args, profile="quick")
    rows = pd.read_csv(table, keep_default_na=False)
    for variation, _seed, overrides in points:
        direct = json.loads((run_notebook(STEM, "quick", overrides, out=tmp_path / "direct") / RESULTS_FILE)
                            .read_text())
        got = rows[rows.variation == variation].set_index("claim").state.to_dict()
        assert got == {c: v["status"] for c, v in direct["verdicts"].items()}
    manifest = json.loads((tmp_path / "atlas" / "manifest.json").read_text())
    assert manifest[STEM]["fingerprint"] == atlas.fingerprint(STEM) and manifest[STEM]["points_computed"] == 2
    assert atlas.atlas_status(STEM) == "stale"  # a quick-scale table never stands for the book's atlas
    capsys.readouterr()
    atlas.compute(STEM, args, profile="quick")
    assert "2 of 2 points already computed" in capsys.readouterr().err


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_an_atlas_point_of_every_notebook_reproduces_its_direct_run(stem, tmp_path, monkeypatch, quick_run):
    """One point per notebook, at the quick scale, through the atlas machinery in its own process: every claim's state
    and measured scalars equal those of the notebook's quick run made independently (the quick profile is seed 0)."""
    monkeypatch.setenv("NSLIB_ATLAS_DIR", str(tmp_path / "atlas"))
    monkeypatch.setenv("NSLIB_ATLAS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(atlas, "atlas_points", lambda stem, profile="book": [("none", 0, {"seed": 0})])
    monkeypatch.setattr(atlas, "kernel_points", lambda stem: ([], []))  # the kernels variation has its own test
    table, _ = atlas.compute(stem, argparse.Namespace(workers=1, scheduler=None), profile="quick")
    rows = pd.read_csv(table, keep_default_na=False).set_index("claim")
    proc, _ = quick_run(stem)
    assert proc.returncode == 0, proc.stderr[-3000:]
    direct = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / RESULTS_FILE).read_text())
    assert sorted(rows.index) == sorted(direct["verdicts"])
    for claim, v in direct["verdicts"].items():
        assert rows.loc[claim, "state"] == v["status"], claim
        assert json.loads(rows.loc[claim, "measured"]) == atlas._scalars(v.get("measured", {})), claim


def _table(states_by_seed, varied=None):
    columns = ["variation", "seed", "claim", "state", "reason"]
    rows = [{"variation": "none", "seed": s, "claim": "c", "state": st, "reason": ""}
            for s, st in enumerate(states_by_seed)]
    rows += [{"variation": "v", "seed": s, "claim": "c", "state": st, "reason": ""}
             for s, st in enumerate(varied or [])]
    return pd.DataFrame(rows, columns=columns)


def test_distribution_text_counts_seeds_and_names_the_variations_that_change_a_state():
    text = atlas.distribution_text(_table(["holds"] * 9 + ["inconclusive"]), "c")
    assert text == "holds at 9 of 10 seeds, inconclusive at 1"
    text = atlas.distribution_text(_table(["holds"] * 3, varied=["holds", "does not hold"]), "c")
    assert text == "holds at 3 of 3 seeds; changes with: v"
    assert atlas.distribution_text(_table([]), "c") == "no atlas yet"


def test_the_atlas_names_the_groups_that_decided_and_counts_a_seed_independent_claim_once():
    table = _table(["does not hold", "does not hold", "holds"])
    table["groups"] = [json.dumps({"relu ce": "does not hold", "tanh ce": "holds"}),
                       json.dumps({"relu ce": "does not hold", "tanh ce": "does not hold"}),
                       json.dumps({"relu ce": "holds", "tanh ce": "holds"})]
    assert dict(atlas.deciding_groups(table, "does not hold")) == {"relu ce": 2, "tanh ce": 1}
    assert not atlas.deciding_groups(table, "holds")  # no group decides a "holds" alone
    assert atlas.distribution_text(table, "c") == \
        "does not hold at 2 of 3 seeds (decided by relu ce (2), tanh ce (1)), holds at 1"
    same = _table(["holds"] * 4)
    assert atlas.distribution_text(same, "c", deterministic=True) == \
        "holds (the same computation at every seed: counted once)"
    assert "declared seed-independent, yet the seeds differ" in \
        atlas.distribution_text(_table(["holds", "inconclusive"]), "c", deterministic=True)


HERE = {"key": "hw-here", "cpu_model": "CPU A", "cpu_capability": "AVX2", "isa": ["avx2"], "blas": "mkl",
        "torch": "2", "threads": 1}


def _page_run(seed=0, verdict_holds=True, hardware=HERE, **params):
    from nslib.verdicts import Verdict

    verdict = (Verdict.undecided("criterion", "a reason") if verdict_holds is None
               else Verdict.decided(verdict_holds, "criterion"))
    return argparse.Namespace(notebook=STEM, profile="book", params={"seed": seed, **params}, verdicts={"c": verdict},
                              env=lambda: {"hardware": hardware})


@pytest.fixture(autouse=True)
def _strict_as_in_the_book_build(monkeypatch):
    monkeypatch.setenv(atlas.STRICT_ENV, "1")


def _fresh_atlas(monkeypatch, states_by_seed, hardware_key, kernels=()):
    """A constructed fresh atlas of one claim ``c`` whose rows carry the run hashes of the book profile at each seed
    (as the real machinery writes them), computed on ``hardware_key``; ``kernels``: (kernel set, state) rows at
    seed 0."""
    from nslib.runner._runs import run_hash

    table = _table(states_by_seed)
    table["run_hash"] = [run_hash("book", {"seed": s}) for s in table.seed]
    table["hardware"], table["kernels"] = hardware_key, "avx2"
    extra = pd.DataFrame([{"variation": f"kernels {k}", "seed": 0, "claim": "c", "state": st, "reason": "",
                           "run_hash": run_hash("book", {"seed": 0}), "hardware": "hw-forced", "kernels": k}
                          for k, st in kernels], columns=table.columns)
    table = pd.concat([table, extra], ignore_index=True)
    monkeypatch.setattr(atlas, "atlas_status", lambda stem: "fresh")
    monkeypatch.setattr(atlas, "read_atlas", lambda stem: table)
    monkeypatch.setattr(atlas, "_read_manifest", lambda: {STEM: {"hardware": {"hw-there": "CPU B, AVX512 kernels"}}})


def test_on_the_same_hardware_a_page_that_disagrees_with_its_atlas_point_is_non_determinism(monkeypatch):
    """It fails the book build (book-execute sets the strict flag); a reader's own run shows it on the page."""
    _fresh_atlas(monkeypatch, ["does not hold"], "hw-here")
    monkeypatch.delenv(atlas.STRICT_ENV, raising=False)
    texts = atlas.atlas_texts(_page_run())
    assert texts["atlas-hardware"].startswith("WARNING") and "'c' holds here, does not hold in the atlas" in \
        texts["atlas-hardware"]
    monkeypatch.setenv(atlas.STRICT_ENV, "1")
    with pytest.raises(RuntimeError, match="not deterministic"):
        atlas.atlas_texts(_page_run())
    _fresh_atlas(monkeypatch, ["holds"], "hw-here")
    texts = atlas.atlas_texts(_page_run())  # agreeing: nothing raised
    assert texts["atlas-c"] == "holds at 1 of 1 seeds"
    assert "same hardware" in texts["atlas-hardware"] and "agree on every claim" in texts["atlas-hardware"]


def test_on_other_hardware_a_difference_is_shown_never_raised(monkeypatch):
    for other in ("hw-there", ""):  # another machine, and a row computed before hardware was recorded
        _fresh_atlas(monkeypatch, ["inconclusive"], other)
        texts = atlas.atlas_texts(_page_run())
        assert texts["atlas-c"] == ("inconclusive at 1 of 1 seeds; depends on the hardware here (CPU kernels, BLAS, "
                                    "torch build): holds on this page's, inconclusive at the atlas point")
        assert "They differ: 'c' holds here, inconclusive in the atlas" in texts["atlas-hardware"]
        assert "CPU A" in texts["atlas-hardware"]
        assert ("CPU B, AVX512 kernels" if other else "hardware not recorded") in texts["atlas-hardware"]


def test_a_page_is_compared_with_the_point_of_its_own_parameters_only(monkeypatch):
    """Seed 1's row is not seed 0's; a reader's own parameters at seed 0 are no atlas point: nothing raises, whatever
    the states (the bug of a rerun with -p lrs ... crashing at seed 0)."""
    _fresh_atlas(monkeypatch, ["holds", "does not hold"], "hw-here")
    texts = atlas.atlas_texts(_page_run(seed=0))
    assert "agree on every claim" in texts["atlas-hardware"]
    with pytest.raises(RuntimeError, match="at seed 1"):
        atlas.atlas_texts(_page_run(seed=1))
    texts = atlas.atlas_texts(_page_run(seed=1, n_points=7))
    assert "no point of the atlas" in texts["atlas-hardware"]
    assert texts["atlas-c"] == "holds at 1 of 2 seeds, does not hold at 1"


def test_the_kernels_variation_is_reported_and_never_taken_for_the_page_point(monkeypatch):
    _fresh_atlas(monkeypatch, ["holds"], "hw-here", kernels=[("default", "inconclusive")])
    texts = atlas.atlas_texts(_page_run())  # the forced-kernels row has the page's hash, yet is no mismatch
    assert "agree on every claim" in texts["atlas-hardware"]
    assert texts["atlas-kernels"] == ("with torch's default kernels at seed 0, 'c' inconclusive (against holds with "
                                      "the avx2 kernels)")
    assert texts["atlas-c"] == "holds at 1 of 1 seeds; changes with: kernels default"
    forced = {**HERE, "key": "hw-forced", "cpu_capability": "DEFAULT"}  # a page built with ATEN_CPU_CAPABILITY=default
    with pytest.raises(RuntimeError, match="not deterministic"):  # meets the point of its own kernels, which differs
        atlas.atlas_texts(_page_run(hardware=forced))
    texts = atlas.atlas_texts(_page_run(verdict_holds=None, hardware=forced))  # agreeing with it: nothing raised
    assert "atlas point seed 0 (kernels default)" in texts["atlas-hardware"] and "agree" in texts["atlas-hardware"]


def test_kernel_points_skip_what_the_cpu_cannot_run_and_what_torch_already_runs(monkeypatch):
    from nslib.runner import _runtime

    monkeypatch.setattr(atlas, "_declaration", lambda stem: {"seeds": [3, 4], "kernels": ["default", "avx2",
                                                                                          "avx512"]})
    monkeypatch.setattr(_runtime, "kernel_support", lambda: {"default": None, "avx2": None,
                                                             "avx512": "this CPU lacks avx512f"})
    monkeypatch.setattr(atlas, "_torch_default_kernels", lambda: "avx2")
    points, skipped = atlas.kernel_points("relu-prime-at-zero")
    assert points == [("kernels default", 3, {"seed": 3}, {"ATEN_CPU_CAPABILITY": "default"})]
    assert [(s["variation"], s["reason"]) for s in skipped] == [
        ("kernels avx2", "torch runs the avx2 kernels on this CPU unforced: the baseline is this point"),
        ("kernels avx512", "this CPU lacks avx512f")]


def test_pages_on_low_precision_declare_the_kernels_variation():
    for stem in ("relu-prime-at-zero", "maxpool-jacobians"):
        assert atlas._declaration(stem).get("kernels") == ["default", "avx2", "avx512"], stem


def test_a_table_written_before_hardware_was_recorded_still_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("NSLIB_ATLAS_DIR", str(tmp_path))
    (tmp_path / f"{STEM}.csv").write_text("variation,seed,claim,state,reason,measured,overrides,run_hash\n"
                                          "none,0,c,holds,,{},{},abc\n")
    table = atlas.read_atlas(STEM)
    assert list(table.hardware) == [""] and list(table.kernels) == [""]


@pytest.mark.notebook
def test_a_rerun_with_a_parameter_of_ones_own_at_seed_0_never_meets_the_atlas_check(tmp_path):
    """A fresh atlas whose seed-0 row contradicts every claim (on this machine's very hardware): the page's book
    profile with a changed parameter is no atlas point, so it completes with a well-formed results.json."""
    import subprocess
    import sys

    from nslib.runner import load_notebook
    from nslib.runner._runs import run_hash

    info = load_notebook(STEM)
    folder = tmp_path / "atlas"
    folder.mkdir()
    probe = subprocess.run([sys.executable, "-c", "import torch, json; torch.set_num_threads(1); from nslib.runner."
                            "_runtime import hardware; print(json.dumps(hardware()))"], capture_output=True, text=True)
    key = json.loads(probe.stdout)["key"]
    rows = [{"variation": "none", "seed": 0, "claim": c, "state": "does not hold", "reason": "", "measured": "{}",
             "overrides": "{}", "run_hash": run_hash("book", info.resolve("book", {"seed": 0})), "hardware": key,
             "kernels": ""} for c in info.claims]
    pd.DataFrame(rows).to_csv(folder / f"{STEM}.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({STEM: {"fingerprint": atlas.fingerprint(STEM),
                                                             "profile": "book", "hardware": {key: "here"}}}))
    import os

    env = dict(os.environ, NSLIB_ATLAS_DIR=str(folder), NSLIB_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "nslib", "run", STEM, "-p", "n_points", "150", "--out",
                           str(tmp_path / "runs")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / RESULTS_FILE).read_text())
    assert set(res["verdicts"]) == set(info.claims) and res["parameters"]["n_points"] == 150
    assert res["env"]["hardware"]["key"] == key  # the same machine: only the parameters set it apart
    glued = json.dumps(json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "notebook.ipynb").read_text()))
    assert "no point of the atlas" in glued  # the check ran in the kernel, read this atlas, and found no point


@pytest.mark.notebook
def test_the_kernels_variation_reaches_the_kernel_and_is_recorded_as_used(tmp_path, monkeypatch):
    """One point forced onto torch's default kernels through the atlas machinery (quick scale): torch inside the
    notebook's kernel used them, the row says so, and its hardware key differs from the unforced point's unless this
    CPU's own set is the default one; a point whose kernels torch did not use fails instead of being recorded."""
    monkeypatch.setenv("NSLIB_ATLAS_DIR", str(tmp_path / "atlas"))
    monkeypatch.setenv("NSLIB_ATLAS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(atlas, "atlas_points", lambda stem, profile="book": [("none", 0, {"seed": 0})])
    skipped = [{"variation": "kernels avx512", "seed": 0, "reason": "a reason"}]
    monkeypatch.setattr(atlas, "kernel_points", lambda stem: (
        [("kernels default", 0, {"seed": 0}, {"ATEN_CPU_CAPABILITY": "default"})], skipped))
    table, _ = atlas.compute(STEM, argparse.Namespace(workers=2, scheduler=None), profile="quick")
    rows = pd.read_csv(table, keep_default_na=False, dtype=str)
    forced, plain = rows[rows.variation == "kernels default"], rows[rows.variation == "none"]
    assert set(forced.kernels) == {"default"} and len(forced) == len(plain)
    own = atlas._torch_default_kernels()
    assert set(plain.kernels) == {own}
    assert (set(forced.hardware) == set(plain.hardware)) == (own == "default")
    manifest = json.loads((tmp_path / "atlas" / "manifest.json").read_text())[STEM]
    assert manifest["skipped"] == skipped and set(manifest["hardware"]) == set(rows.hardware)
    assert manifest["points_computed"] == manifest["points"] == 2


def test_an_atlas_with_failed_points_is_incomplete_and_is_completed_without_force(tmp_path, monkeypatch):
    monkeypatch.setenv("NSLIB_ATLAS_DIR", str(tmp_path))
    (tmp_path / f"{STEM}.csv").write_text(",".join(atlas._COLUMNS) + "\n")
    entry = {"fingerprint": atlas.fingerprint(STEM), "profile": "book", "points": 16, "points_computed": 12}
    (tmp_path / "manifest.json").write_text(json.dumps({STEM: entry}))
    assert atlas.atlas_status(STEM) == "incomplete"
    computed = []
    monkeypatch.setattr(atlas, "compute", lambda stem, args, profile="book": computed.append(stem) or (
        tmp_path / f"{stem}.csv", 0.0))
    atlas.cmd_atlas(argparse.Namespace(notebooks=[STEM], status=False, force=False, workers=1, scheduler=None))
    assert computed == [STEM]
    (tmp_path / "manifest.json").write_text(json.dumps({STEM: {**entry, "points_computed": 16}}))
    row = {c: "" for c in atlas._COLUMNS} | {"variation": "none", "seed": "0", "claim": "c", "state": "holds"}
    (tmp_path / f"{STEM}.csv").write_text(",".join(atlas._COLUMNS) + "\n" + ",".join(row[c] for c in atlas._COLUMNS)
                                          + "\n")
    monkeypatch.setattr(atlas, "atlas_points", lambda stem, profile="book": [("none", 0, {"seed": 0})])
    assert atlas.atlas_status(STEM) == "fresh"
    # a declaration that gained a seed (outside the fingerprint) leaves that point missing: incomplete, not fresh
    monkeypatch.setattr(atlas, "atlas_points", lambda stem, profile="book": [("none", 0, {"seed": 0}),
                                                                              ("none", 1, {"seed": 1})])
    assert atlas.atlas_status(STEM) == "incomplete"


def test_a_stale_atlas_is_marked_in_every_scorecard_cell(monkeypatch):
    _fresh_atlas(monkeypatch, ["holds"], "hw-here")
    monkeypatch.setattr(atlas, "atlas_status", lambda stem: "stale")
    texts = atlas.atlas_texts(_page_run(verdict_holds=False))  # never compared: no raise
    assert texts["atlas-c"] == "holds at 1 of 1 seeds (stale atlas: computed by older code)"
    assert "not compared" in texts["atlas-hardware"]


@pytest.mark.parametrize("stem", toc_notebooks())
def test_a_fresh_atlas_holds_the_point_of_the_default_page(stem):
    """The page finds its atlas point by the run hash of its resolved parameters (nslib/runner/_runs.py, outside the
    fingerprint): a fresh table must hold the baseline row of the default parameters at the first seed, or every page
    would silently say "no point of the atlas"."""
    from nslib.runner import load_notebook
    from nslib.runner._runs import run_hash

    if atlas.atlas_status(stem) not in ("fresh", "incomplete"):
        pytest.skip(f"the atlas of {stem} is {atlas.atlas_status(stem)}")
    info = load_notebook(stem)
    seed = atlas._declaration(stem)["seeds"][0]
    table = atlas.read_atlas(stem)
    base = table[(table.variation == "none") & (table.seed == seed)]
    assert set(base.run_hash) == {run_hash("book", info.resolve("book", {"seed": seed}))}


def test_the_atlas_reasons_name_the_book_profile_not_none(monkeypatch):
    table = _table(["holds", "inconclusive"], varied=["does not hold"])
    table["groups"] = json.dumps({})
    table.loc[table.state == "inconclusive", "reason"] = "a reason"
    monkeypatch.setattr(atlas, "read_atlas", lambda stem: table)
    rows = atlas.atlas_reasons(STEM).data
    assert list(rows.variation) == ["book profile", "v"] and list(rows.reason) == ["a reason", "—"]
