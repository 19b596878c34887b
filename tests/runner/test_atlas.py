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
    copy.write_text(copy.read_text() + "\n# a change\n")
    real = atlas._finding_module_path
    monkeypatch.setattr(atlas, "_finding_module_path", lambda stem: copy if stem == STEM else real(stem))
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


def test_a_fresh_atlas_that_disagrees_with_the_page_fails_the_build(monkeypatch):
    from nslib.verdicts import Verdict

    monkeypatch.setattr(atlas, "atlas_status", lambda stem: "fresh")
    monkeypatch.setattr(atlas, "read_atlas", lambda stem: _table(["does not hold"]))
    run = argparse.Namespace(notebook=STEM, profile="book", params={"seed": 0},
                             verdicts={"c": Verdict.decided(True, "criterion")})
    with pytest.raises(RuntimeError, match="with matching code they must agree"):
        atlas.atlas_texts(run)
    monkeypatch.setattr(atlas, "read_atlas", lambda stem: _table(["holds"]))
    texts = atlas.atlas_texts(run)  # agreeing: nothing raised
    assert texts == {"atlas-c": "holds at 1 of 1 seeds", "atlas-status": "The atlas below was computed by the code "
                                                                          "that built this page."}
