import json
import shlex
from pathlib import Path

import pytest
from conftest import nslib_cli, toc_notebooks

from nslib.runner import load_notebook, run_hash

ENV_KEYS = {"python", "torch", "nslib", "git_commit", "device", "dtype", "threads", "platform"}
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
def test_bad_parameters_exit_2_before_any_run(tmp_path, args, name):
    proc = nslib_cli("run", STEM, "--profile", "quick", "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{name}'" in lines[0] and "allowed" in lines[0]
    assert proc.stdout == ""
    assert not any(tmp_path.iterdir()), "a run directory was left behind"


def test_unknown_notebook_and_profile_exit_2(tmp_path):
    proc = nslib_cli("run", "no-such-notebook", "--out", str(tmp_path))
    assert proc.returncode == 2 and "no-such-notebook" in proc.stderr
    assert not any(tmp_path.iterdir())


def _no_nan(text: str) -> dict:
    def bad(c):
        raise AssertionError(f"non-finite {c} in results.json")

    return json.loads(text, parse_constant=bad)


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_quick_run_writes_results_with_declared_claims(quick_runs, stem):
    proc, out = quick_runs[stem][0]
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_absolute() and run_dir.is_dir()
    info = load_notebook(stem)
    assert run_dir == (out / stem / run_hash("quick", info.resolve("quick"))).resolve()
    assert sorted(p.name for p in run_dir.iterdir()) == ["notebook.ipynb", "results.json"]
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name], "temporary folders left behind"
    res = _no_nan((run_dir / "results.json").read_text())
    assert set(res) == TOP_KEYS and set(res["env"]) == ENV_KEYS
    assert res["notebook"] == stem and res["profile"] == "quick"
    assert list(res["verdicts"]) == list(info.claims)
    for cid, v in res["verdicts"].items():
        assert cid == cid.lower() and " " not in cid and "_" not in cid
        assert v["holds"] in (True, False, None) and v["criterion"] and isinstance(v["measured"], dict)
        assert v["status"] in ("holds", "does not hold", "inconclusive")
    assert res["parameters"] == info.resolve("quick")


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_same_seed_same_results(quick_runs, stem):
    (p1, _), (p2, _) = quick_runs[stem]
    assert p1.returncode == 0 and p2.returncode == 0
    r1, r2 = (json.loads((Path(p.stdout.strip().splitlines()[-1]) / "results.json").read_text())
              for p in (p1, p2))
    r1.pop("elapsed_s"), r2.pop("elapsed_s")
    assert r1 == r2


def test_list_and_params_commands():
    proc = nslib_cli("list")
    assert proc.returncode == 0 and STEM in proc.stdout and "cycle-not-converge" in proc.stdout
    proc = nslib_cli("params", STEM)
    assert proc.returncode == 0 and "allowed:" in proc.stdout and "lrs" in proc.stdout


@pytest.mark.parametrize("args,name", [
    (["-p", "lams", "[0.1, 0.0]"], "lams"),
    (["-p", "k", "300"], "k"),
    (["-p", "optimizers", "['sgd', 'lbfgs']"], "optimizers"),
])
def test_l1_paradox_bad_input_exit_2(tmp_path, args, name):
    proc = nslib_cli("run", "l1-paradox", "--profile", "quick", "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{name}'" in lines[0]
    assert not any(tmp_path.iterdir())


@pytest.mark.notebook
def test_sweep_runs_every_grid_point_and_writes_a_table(tmp_path):
    proc = nslib_cli("sweep", "abs-smooth-clarke", "--profile", "quick", "--grid", "seed=0,1", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = Path(proc.stdout.strip().splitlines()[-1])
    lines = table.read_text().strip().splitlines()
    assert lines[0].startswith("seed,") and len(lines) == 3
    assert len([d for d in (tmp_path / "abs-smooth-clarke").iterdir() if d.is_dir()]) == 2


def test_sweep_validates_the_whole_grid_first(tmp_path):
    proc = nslib_cli("sweep", "abs-smooth-clarke", "--profile", "quick", "--grid", "seed=0,-1", "--out", str(tmp_path))
    assert proc.returncode == 2 and "'seed'" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("stem,args,names", [
    ("nonsmooth-convex-dynamics", ["-p", "lrs", "[0.1]"], ["lrs"]),
    ("nonsmooth-convex-dynamics", ["-p", "steps", "10", "-p", "window", "2"], ["window"]),
    ("l1-paradox", ["-p", "lams", "[0.5, 0.5]"], ["lams"]),
    ("relu-prime-at-zero", ["-p", "widths", "[16, 64]"], ["widths"]),
    ("relu-prime-at-zero", ["-p", "alphas", "[1.0, 2.0]"], ["alphas"]),
])
def test_values_that_can_never_give_an_answer_are_refused(tmp_path, stem, args, names):
    proc = nslib_cli("run", stem, "--profile", "quick", "--out", str(tmp_path), *args)
    assert proc.returncode == 2, proc.stderr
    assert all(f"'{n}'" in proc.stderr for n in names) and not any(tmp_path.iterdir())


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


@pytest.mark.notebook
@pytest.mark.parametrize("stem", toc_notebooks())
def test_smallest_accepted_run_finishes_with_a_well_formed_results_json(tmp_path, stem):
    proc = nslib_cli("run", stem, "--profile", "quick", "--out", str(tmp_path), *SMALLEST.get(stem, []))
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = _no_nan((Path(proc.stdout.strip().splitlines()[-1]) / "results.json").read_text())
    assert list(res["verdicts"]) == list(load_notebook(stem).claims)
    for v in res["verdicts"].values():
        assert v["status"] in ("holds", "does not hold", "inconclusive")
        assert v["holds"] is {"holds": True, "does not hold": False, "inconclusive": None}[v["status"]]
        assert (v["status"] == "inconclusive") == ("reason" in v)


def test_audit_command_prints_the_table_and_refuses_bad_input(tmp_path):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0, -1.0]))  # two exact zeros per sample, whatever the input
    torch.save(model, tmp_path / "m.pt")
    proc = nslib_cli("audit", str(tmp_path / "m.pt"), "--input-shape", "3", "--batch-size", "5", "--batches", "2")
    assert proc.returncode == 0, proc.stderr
    row = [ln.split() for ln in proc.stdout.splitlines() if "ReLU" in ln][0]
    assert row[:6] == ["1", "ReLU", "relu", "corner", "40", "20"]
    for bad, word in ((["--input-shape", "3,x"], "input-shape"), (["--dtype", "float8"], "dtype"), ([], "input-shape")):
        proc = nslib_cli("audit", str(tmp_path / "m.pt"), *bad)
        assert proc.returncode == 2 and word in proc.stderr and proc.stdout == ""
    proc = nslib_cli("audit", "nslib.findings.relu_prime_at_zero:small_cnn", "--dataset", "digits", "--batches", "1")
    assert proc.returncode == 0 and "MaxPool2d" in proc.stdout
