"""Every benchmark runs: each script in benchmarks/ at its tiny size (``--tiny``, seconds), in its own process, must
exit 0 and end its stdout with one bare, finite, positive number (the figure it exists for). Speed itself is measured
by running them at full size, never asserted here."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_the_benchmarks_folder_is_found():
    assert len(BENCHMARKS) >= 5


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_each_benchmark_runs_at_its_tiny_size_and_prints_its_figure_last(script):
    env = dict(os.environ, NSLIB_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    value = float(last)  # one bare number, nothing else on the line
    assert math.isfinite(value) and value > 0, last
