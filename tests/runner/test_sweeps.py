"""Sweeps as an experimenter uses them: on a LocalCluster, resumed, with a failing point, with the parent killed;
and collect's table against the results.json files it reads."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, insert_after_parameters, nslib_cli

STEM = "abs-smooth-clarke"  # the fastest notebook (seconds at the quick profile)


def _table(proc) -> pd.DataFrame:
    return pd.read_csv(Path(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.notebook
def test_four_points_on_a_two_worker_local_cluster_then_collect(tmp_path):
    out = tmp_path / "runs"
    proc = nslib_cli("sweep", STEM, "--profile", "quick", "--grid", "seed=0,1", "--grid", "n_points=1,2",
                     "--scheduler", "local:2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = _table(proc)
    assert len(t) == 4 and sorted(zip(t.seed, t.n_points)) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert "4/4" in proc.stderr  # the progress bar reached the end
    proc = nslib_cli("collect", str(out), "--to", str(tmp_path / "all.csv"))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == 4 and {"param.seed", "param.n_points", "env.torch", "elapsed_s"} <= set(table.columns)
    for _, row in table.iterrows():
        res = json.loads((Path(row["run_dir"]) / "results.json").read_text())
        assert row["param.seed"] == res["parameters"]["seed"]
        assert row["param.n_points"] == res["parameters"]["n_points"]
        for cid, v in res["verdicts"].items():
            assert row[f"verdict.{cid}"] == v["status"]
    proc = nslib_cli("collect", str(tmp_path / "nothing-here"))
    assert proc.returncode == 2 and "allowed" in proc.stderr


@pytest.mark.notebook
def test_a_rerun_skips_complete_points_and_a_point_equals_the_direct_run(tmp_path, quick_run):
    out = str(tmp_path)
    first = nslib_cli("sweep", STEM, "--profile", "quick", "--grid", "seed=0", "--out", out)
    assert first.returncode == 0, first.stderr[-2000:]
    done = Path(_table(first).run_dir[0])
    direct, _ = quick_run(STEM)  # the quick profile is seed 0: the same run, made in another process
    results = [json.loads((Path(d) / "results.json").read_text()) for d in (done, direct.stdout.split()[-1])]
    for r in results:
        r.pop("elapsed_s")
    assert results[0] == results[1]
    stamp = (done / "results.json").stat().st_mtime_ns
    second = nslib_cli("sweep", STEM, "--profile", "quick", "--grid", "seed=0,1", "--out", out)
    assert second.returncode == 0 and "1 of 2 points already complete" in second.stderr
    assert (done / "results.json").stat().st_mtime_ns == stamp  # not run again
    assert len(_table(second)) == 2


@pytest.mark.notebook
def test_a_failing_point_is_reported_while_the_others_complete(tmp_path, broken_notebooks):
    insert_after_parameters(broken_notebooks / f"{STEM}.ipynb", "if seed == 1:\n    raise ValueError('boom at seed 1')")
    proc = nslib_cli("sweep", STEM, "--profile", "quick", "--grid", "seed=0,1", "--out", str(tmp_path))
    assert proc.returncode == 1
    failures = [ln for ln in proc.stderr.splitlines() if "failed" in ln and ln.startswith("nslib: point")]
    assert len(failures) == 1 and "'seed': 1" in failures[0] and "boom at seed 1" in failures[0]
    t = _table(proc)
    assert list(t.seed) == [0]


@pytest.mark.notebook
def test_a_killed_sweep_leaves_no_worker_running(tmp_path):
    env = dict(os.environ, NSLIB_THREADS="1", PYTHONWARNINGS="ignore")
    parent = subprocess.Popen([sys.executable, "-m", "nslib", "sweep", "edge-of-stability-networks", "--profile",
                               "quick", "--grid", "seed=0,1", "--out", str(tmp_path)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def workers():
        ps = subprocess.run(["ps", "-ewwo", "pid,args"], capture_output=True, text=True).stdout
        return [ln for ln in ps.splitlines() if "nslib run edge-of-stability-networks" in ln and str(tmp_path) in ln]

    folder = tmp_path / "edge-of-stability-networks"

    def half_written():
        return [p for p in folder.iterdir() if ".tmp-" in p.name] if folder.exists() else []

    deadline = time.time() + 90
    while not (workers() and half_written()) and time.time() < deadline:
        time.sleep(0.5)
    assert workers() and half_written(), "the sweep never got its workers running"
    time.sleep(2)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 30
    while workers() and time.time() < deadline:
        time.sleep(0.5)
    assert not workers(), "orphan workers kept running after the sweep was killed"
    time.sleep(1)
    assert not half_written(), "a killed worker left a half-written run"
