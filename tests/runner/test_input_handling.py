"""Input handling of the command line, as a hostile user tries it: every refusal is exit 2 with one line on stderr
naming the parameter or option and what is allowed, before any kernel starts and without a run directory."""

import os

import pytest
from conftest import edit_notebook, insert_after_parameters, nslib_cli

from nslib.runner import main, run_hash

STEM = "nonsmooth-convex-dynamics"


def _refused(capsys, tmp_path, *argv, words=()):
    argv = list(argv)
    if argv[0] in ("run", "sweep") and len(argv) > 1:
        argv[2:2] = ["--out", str(tmp_path)]
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not any(tmp_path.iterdir()), "a run directory was left behind"
    return err[0]


@pytest.mark.parametrize("argv, words", [
    (["run", STEM, "-p", "seed", "0", "-p", "seed", "1"], ["'seed'", "twice"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--grid", "seed=2"], ["'seed'", "twice"]),
    (["sweep", STEM, "-p", "seed", "1", "--grid", "seed=2,3"], ["'seed'", "-p and --grid"]),
    (["run", STEM, "-p", "start_scale", "-inf"], ["'start_scale'", "-inf", "allowed"]),  # read as a value
    (["run", STEM, "-p", "seed", "-1e3"], ["'seed'", "-1e3", "allowed"]),
    (["run", "l1-paradox", "-p", "noise", "-5e-324"], ["'noise'", "allowed"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--workers", "0"], ["--workers 0", "allowed"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--workers", "-1"], ["--workers -1", "allowed"]),
    (["sweep", STEM, "--grid", "seed="], ["seed=", "at least one value"]),
    (["sweep", STEM, "--grid", "seed=0", "--scheduler", "local:0"], ["--scheduler 'local:0'", "allowed"]),
    (["sweep", STEM, "--grid", "seed=0", "--scheduler", "myhost"], ["--scheduler 'myhost'", "tcp://"]),
    (["run", STEM, "--profile", "huge"], ["--profile", "huge", "quick"]),
    (["run", STEM, "--no-such-option"], ["--no-such-option"]),
    (["run", STEM, "--profil", "quick"], ["--profil"]),  # no abbreviations: a typo is an error
    (["run", STEM, "-p", "seed"], ["-p", "NAME VALUE"]),
    (["run"], ["notebook"]),
    (["frobnicate"], ["frobnicate", "run"]),
])
def test_refusals_are_one_line_exit_2(capsys, tmp_path, argv, words):
    _refused(capsys, tmp_path, *argv, words=words)


def test_cross_parameter_messages_name_only_the_rule_parameters(capsys, tmp_path):
    line = _refused(capsys, tmp_path, "run", STEM, "-p", "steps", "10", "-p", "window", "12")
    assert "'window'" in line and "'steps'" in line
    assert "'n'" not in line and "'p'" not in line and "'n_starts'" not in line  # no substring matches


def test_negative_zero_is_the_same_run():
    assert run_hash("book", {"x": -0.0, "xs": [-0.0, 1.0]}) == run_hash("book", {"x": 0.0, "xs": [0.0, 1.0]})
    assert run_hash("book", {"x": 1e-300}) != run_hash("book", {"x": 0.0})


@pytest.mark.parametrize("breakage, words", [
    ("parameters", ["line 1", "only annotated assignments"]),
    ("constraint", ["constraint", "stepz"]),
    ("clause", ["'steps'", "{inn [10, 100]}"]),
    ("json", ["not valid JSON", "line"]),
])
def test_a_broken_notebook_is_one_line_and_list_survives_it(capsys, tmp_path, broken_notebooks, breakage, words):
    path = broken_notebooks / f"{STEM}.ipynb"
    if breakage == "json":
        path.write_text(path.read_text()[:200])
    else:
        def edit(nb):
            cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
            src = "".join(cell["source"])
            if breakage == "parameters":
                cell["source"] = "import os\n" + src
            elif breakage == "clause":
                cell["source"] = src.replace("{in [10, 10000000]}", "{inn [10, 100]}")
            else:
                nb["metadata"]["nslib"]["constraints"]["window < stepz"] = "a typo"
        edit_notebook(path, edit)
    status = main(["params", STEM])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and STEM in err[0] and all(w in err[0] for w in words), err
    assert main(["list"]) == 0  # the other notebooks are still listed
    out = capsys.readouterr()
    assert "l1-paradox" in out.out and STEM in out.err


@pytest.mark.notebook
def test_a_failing_cell_is_one_line_keeps_the_notebook_and_debris_of_killed_runs_is_cleaned(tmp_path,
                                                                                          broken_notebooks):
    stem = "abs-smooth-clarke"
    insert_after_parameters(broken_notebooks / f"{stem}.ipynb", "raise ValueError('boom: a deliberate failure')")
    out = tmp_path / "out"
    killed = out / stem / ".0123456789ab.tmp-999999999"  # left by a run killed with SIGKILL (no such process)
    killed.mkdir(parents=True)
    live = out / stem / f".0123456789ab.tmp-{os.getpid()}"  # a run still going: left alone
    live.mkdir()
    proc = nslib_cli("run", stem, "--profile", "quick", "--out", str(out))
    assert proc.returncode == 1 and proc.stdout == ""
    ours = [ln for ln in proc.stderr.splitlines() if ln.startswith("nslib:")]
    assert len(ours) == 1 and "ValueError: boom: a deliberate failure" in ours[0] and "cell" in ours[0]
    kept = list((out / stem / "failed").glob("*.ipynb"))
    assert len(kept) == 1 and str(kept[0]) in ours[0]
    assert "deliberate failure" in kept[0].read_text()
    assert not killed.exists() and live.exists()
    assert sorted(p.name for p in (out / stem).iterdir()) == [live.name, "failed"]
