import json
import shlex
from pathlib import Path

import pytest
from conftest import nslib_cli, shared_run, toc_notebooks

from nslib.cli import main
from nslib.runner import load_notebook, run_hash

ENV_KEYS = {"python", "torch", "nslib", "git_commit", "device", "dtype", "threads", "platform", "hardware"}
HARDWARE_KEYS = {"cpu_capability", "cpu_capability_requested", "cpu_model", "isa", "blas", "torch", "threads",
                 "cuda_device", "cuda_capability", "key"}
TOP_KEYS = {"notebook", "profile", "parameters", "verdicts", "metrics", "env", "elapsed_s"}
STEM = "nonsmooth-convex-dynamics"


@pytest.mark.parametrize("args,name", [
    (["-p", "no_such_param", "1"], "no_such_param"),
    (["-p", "steps", "many"], "steps"),
    (["-p", "steps", "2.5"], "steps"),
    (["-p", "lrs", "[0.1, -1.0]"], "lrs"),
    (["-p", "device", "tpu"], "device"),
    (["-p", "optimizers", "['sgd', 'lbfgs']"], "optimizers"),
    (["-p", "window", "501"], "window"),
])
def test_bad_parameters_exit_2_before_any_run(capsys, tmp_path, args, name):
    status = main(["run", STEM, "--profile", "quick", "--out", str(tmp_path), *args])
    out, err = capsys.readouterr()
    assert status == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{name}'" in lines[0] and "allowed" in lines[0]
    assert out == ""
    assert not any(tmp_path.iterdir()), "a run directory was left behind"


def test_unknown_notebook_and_profile_exit_2(capsys, tmp_path):
    assert main(["run", "no-such-notebook", "--out", str(tmp_path)]) == 2
    assert "no-such-notebook" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_refusal_from_a_real_process_is_one_line_on_stderr_and_imports_no_heavy_library(tmp_path):
    """The true process: exit status, stdout empty, one line on stderr; and validation never imports torch,
    matplotlib, scikit-learn or a finding (what made a refusal take 4-8 s)."""
    proc = nslib_cli("run", STEM, "-p", "seed", "-1", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "'seed'" in proc.stderr
    probe = ("import sys; from nslib.cli import main\n"
             f"assert main(['run', {STEM!r}, '-p', 'seed', '-1', '--out', {str(tmp_path)!r}]) == 2\n"
             "assert main(['list']) == 0 and main(['params', 'l1-paradox']) == 0\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'sklearn', 'seaborn',"
             " 'scipy', 'pandas', 'papermill') or m.startswith('nslib.findings.')\n"
             "        or m.startswith('nslib.tools.') and m != 'nslib.tools._datasets')  # sizes only, torch-free\n"
             "print(heavy)")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def _no_nan(text: str) -> dict:
    def bad(c):
        raise AssertionError(f"non-finite {c} in results.json")

    return json.loads(text, parse_constant=bad)


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_quick_run_writes_results_with_declared_claims(quick_run, stem):
    proc, out = quick_run(stem)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_absolute() and run_dir.is_dir()
    info = load_notebook(stem)
    assert run_dir == (out / stem / run_hash("quick", info.resolve("quick"))).resolve()
    assert sorted(p.name for p in run_dir.iterdir()) == ["notebook.ipynb", "results.json"]
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name], "temporary folders left behind"
    res = _no_nan((run_dir / "results.json").read_text())
    assert set(res) == TOP_KEYS and set(res["env"]) == ENV_KEYS
    assert set(res["env"]["hardware"]) == HARDWARE_KEYS and res["env"]["hardware"]["threads"] == res["env"]["threads"]
    assert res["notebook"] == stem and res["profile"] == "quick"
    assert list(res["verdicts"]) == list(info.claims)
    for cid, v in res["verdicts"].items():
        assert cid == cid.lower() and " " not in cid and "_" not in cid
        assert v["holds"] in (True, False, None) and v["criterion"] and isinstance(v["measured"], dict)
        assert v["status"] in ("holds", "does not hold", "inconclusive")
        assert _dict_valued(v) == [], f"{cid}: measured values that are dicts (a group belongs in per_group)"
    assert res["parameters"] == info.resolve("quick")


def _dict_valued(verdict: dict, where: str = "") -> list[str]:
    """Every measured entry of a results.json verdict, its groups' included, that is not a scalar or a flat list."""
    bad = []
    for key, value in verdict.get("measured", {}).items():
        if key == "per_group":
            for name, entry in value.items():
                group = {"measured": {k: x for k, x in entry.items() if k not in ("holds", "status", "reason",
                                                                                    "judged")}}
                bad += _dict_valued(group, f"{where}{name}/")
        elif isinstance(value, dict) or (isinstance(value, list) and any(isinstance(x, (list, dict)) for x in value)):
            bad.append(where + key)
    return bad


def test_the_dict_check_finds_a_dict_in_a_group():
    ok = {"measured": {"x": 1, "per_group": {"relu": {"rise": 2.0, "holds": True, "status": "holds"}}}}
    bad = {"measured": {"x": {"a": 1}, "per_group": {"relu": {"e": [[1]], "holds": True, "status": "holds"}}}}
    assert _dict_valued(ok) == [] and _dict_valued(bad) == ["x", "relu/e"]


def test_list_and_params_commands(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert STEM in out and "cycle-not-converge" in out
    assert main(["params", STEM]) == 0
    out = capsys.readouterr().out
    assert "allowed:" in out and "lrs" in out


@pytest.mark.parametrize("args,name", [
    (["-p", "lams", "[0.1, 0.0]"], "lams"),
    (["-p", "k", "300"], "k"),
    (["-p", "optimizers", "['sgd', 'lbfgs']"], "optimizers"),
])
def test_l1_paradox_bad_input_exit_2(capsys, tmp_path, args, name):
    status = main(["run", "l1-paradox", "--profile", "quick", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{name}'" in lines[0]
    assert not any(tmp_path.iterdir())


def test_sweep_validates_the_whole_grid_first(capsys, tmp_path):
    status = main(["sweep", "abs-smooth-clarke", "--profile", "quick", "--grid", "seed=0,-1", "--out", str(tmp_path)])
    assert status == 2 and "'seed'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("stem,args,names", [
    ("nonsmooth-convex-dynamics", ["-p", "lrs", "[0.1]"], ["lrs"]),
    ("nonsmooth-convex-dynamics", ["-p", "steps", "10", "-p", "window", "2"], ["window"]),
    ("l1-paradox", ["-p", "lams", "[0.5, 0.5]"], ["lams"]),
    ("relu-prime-at-zero", ["-p", "widths", "[16, 64]"], ["widths"]),
    ("relu-prime-at-zero", ["-p", "alphas", "[1.0, 2.0]"], ["alphas"]),
])
def test_values_that_can_never_give_an_answer_are_refused(capsys, tmp_path, stem, args, names):
    status = main(["run", stem, "--profile", "quick", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert all(f"'{n}'" in err for n in names) and not any(tmp_path.iterdir())


SMALLEST = {  # the smallest sizes and shortest grids each notebook accepts
    "nonsmooth-convex-dynamics": shlex.split("-p lrs '[0.1, 0.2]' -p steps 12 -p window 4 -p n_starts 1 "
                                             "-p huber_lrs '[0.1]' -p quad_lrs '[0.1]' -p twin_lrs '[0.1]' "
                                             "-p optimizers \"['sgd']\""),
    "l1-paradox": shlex.split("-p lams '[0.5, 1.0]' -p n_seeds 1 -p steps 10 -p window 1 -p p 2 -p k 1 -p n 2 "
                              "-p prune_seeds 1 -p prune_lams '[0.01, 0.02]' -p prune_epochs 1 -p prune_hidden 1 "
                              "-p optimizers \"['adam']\""),
    "relu-prime-at-zero": shlex.split("-p n_train 64 -p width 1 -p depth 1 -p batch_size 64 -p n_inits 1 "
                                      "-p dtypes \"['float64']\" -p sweep_dtypes \"['float64']\" -p widths '[1, 2, 3]' "
                                      "-p depths '[1, 2, 3]' -p batch_sizes '[64]' -p rate_inits 1 -p train_width 1 "
                                      "-p train_steps 1 -p alphas '[0.0, 1.0]' -p optimizers \"['adam']\" "
                                      "-p batch_norms '[True]' -p n_seeds 2"),
    "abs-smooth-clarke": shlex.split("-p n_points 1 -p ties_per_layer 0 -p sizes '[1, 1, 1]' -p alphas '[0.0]' "
                                     "-p n_samples 1"),
    "relu-vs-smooth-convergence": shlex.split("-p toy_samples 2 -p toy_features 1 -p toy_lrs '[0.1, 0.2]' "
                                              "-p toy_betas '[1.0]' -p toy_seeds 1 -p toy_steps 100 -p toy_window 4 "
                                              "-p n_train 10 -p width 1 -p depths '[1]' "
                                              "-p activations \"['relu', 'gelu']\" -p net_betas '[1.0]' "
                                              "-p net_lrs '[0.1]' -p net_seeds 3 -p net_steps 10"),
    "maxpool-jacobians": shlex.split("-p n_train 64 -p zone_dtypes \"['float64']\" -p zone_batches 1 -p batch_size 1 "
                                     "-p betas '[0.0, 1.0]' -p train_dtypes \"['float64']\" -p optimizers \"['adam']\" "
                                     "-p batch_norms '[True]' -p n_seeds 1 -p steps 1"),
}


def _smallest_run(shared_dir, stem, copy):
    return shared_run(shared_dir, f"smallest-{stem}-{copy}", "run", stem, "--profile", "quick",
                      *SMALLEST.get(stem, []))


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_smallest_accepted_run_finishes_with_a_well_formed_results_json(shared_dir, stem):
    proc, _ = _smallest_run(shared_dir, stem, "a")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = _no_nan((Path(proc.stdout.strip().splitlines()[-1]) / "results.json").read_text())
    assert list(res["verdicts"]) == list(load_notebook(stem).claims)
    for v in res["verdicts"].values():
        assert v["status"] in ("holds", "does not hold", "inconclusive")
        assert v["holds"] is {"holds": True, "does not hold": False, "inconclusive": None}[v["status"]]
        assert (v["status"] == "inconclusive") == ("reason" in v)


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_same_seed_same_results(shared_dir, stem):
    """Two separate processes (each with its own hash seed and kernel) give the same results.json, but for
    elapsed_s. Checked at each notebook's smallest accepted size: every cell and the same code paths run as at
    the quick size, and whatever breaks reproducibility (an unseeded draw, set or dict order, a non-deterministic
    kernel) shows at any size, at a fraction of the cost of a second quick run. The quick size itself is checked
    across processes by the sweep tests (a sweep point against the direct run)."""
    (p1, _), (p2, _) = _smallest_run(shared_dir, stem, "a"), _smallest_run(shared_dir, stem, "b")
    assert p1.returncode == 0 and p2.returncode == 0, (p1.stderr[-1000:], p2.stderr[-1000:])
    r1, r2 = (json.loads((Path(p.stdout.strip().splitlines()[-1]) / "results.json").read_text())
              for p in (p1, p2))
    r1.pop("elapsed_s"), r2.pop("elapsed_s")
    assert r1 == r2


def test_audit_command_prints_the_table_and_refuses_bad_input(capsys, tmp_path):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0, -1.0]))  # two exact zeros per sample, whatever the input
    torch.save(model, tmp_path / "m.pt")
    assert main(["audit", str(tmp_path / "m.pt"), "--input-shape", "3", "--batch-size", "5", "--batches", "2"]) == 0
    out = capsys.readouterr().out
    row = [ln.split() for ln in out.splitlines() if "ReLU" in ln][0]
    assert row[:6] == ["1", "ReLU", "relu", "corner", "40", "20"]
    for bad, word in ((["--input-shape", "3,x"], "input-shape"), (["--dtype", "float8"], "dtype"), ([], "input-shape")):
        assert main(["audit", str(tmp_path / "m.pt"), *bad]) == 2
        out, err = capsys.readouterr()
        assert word in err and out == ""
    assert main(["audit", "nslib.findings.relu_prime_at_zero:small_cnn", "--dataset", "digits", "--batches", "1"]) == 0
    assert "MaxPool2d" in capsys.readouterr().out


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_no_cell_of_an_executed_page_shows_a_raw_value(quick_run, stem):
    """hide-input hides a cell's code, not its output: a plumbing cell ending in a dict, tuple, list or string would
    print it on the page. Every displayed result is a table, a figure or a readable summary."""
    proc, _ = quick_run(stem)
    assert proc.returncode == 0, proc.stderr[-2000:]
    nb = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "notebook.ipynb").read_text())
    raw = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = "".join(data.get("text/plain", "")).lstrip()
            if out.get("output_type") == "execute_result" and set(data) == {"text/plain"} and text[:1] in "{(['\"":
                raw.append(f"cell {i}: {text[:80]}")
    assert raw == [], f"{stem} shows raw values: {raw}"
