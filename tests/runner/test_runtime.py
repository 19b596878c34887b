from pathlib import Path

import pytest
import torch

import nslib


def test_device_resolution():
    assert nslib.runner.resolve_device("cpu") == torch.device("cpu")
    assert nslib.runner.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="allowed"):
        nslib.runner.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            nslib.runner.resolve_device("cuda")


def test_dtype_resolution():
    assert nslib.runner.resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="float64"):
        nslib.runner.resolve_dtype("float8")


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("NSLIB_THREADS", "1")
    assert nslib.runner.set_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("NSLIB_THREADS", "zero")
    with pytest.raises(ValueError, match="NSLIB_THREADS"):
        nslib.runner.set_threads()


def test_seeding_reproduces_draws():
    nslib.runner.seed_everything(7)
    a = torch.randn(5)
    nslib.runner.seed_everything(7)
    assert torch.equal(a, torch.randn(5))


def test_a_dtype_the_device_cannot_compute_is_a_clear_error():
    from nslib.runner import ParamError, check_dtypes

    def probe(dt, dev):
        if dt == torch.bfloat16:
            raise RuntimeError("not implemented for 'BFloat16'")
    check_dtypes(["float32"], "cpu", probe)
    with pytest.raises(ParamError, match=r"dtype 'bfloat16' cannot be computed on device 'cpu'"):
        check_dtypes(["float32", torch.bfloat16], "cpu", probe)
    with pytest.raises(ParamError, match="float8"):
        check_dtypes(["float8"], "cpu")


def test_hardware_names_what_low_precision_numbers_depend_on(monkeypatch):
    """Checked against independent readings: /proc/cpuinfo for the model and flags, torch's own build report for
    BLAS and oneDNN, torch's dispatcher for the kernel set."""
    import re

    from nslib.runner._runtime import ISA_FLAGS, hardware, hardware_text

    hw = hardware("cpu")
    assert hw["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert hw["threads"] == torch.get_num_threads() and hw["torch"] == torch.__version__
    assert hw["cuda_device"] is None and hw["cuda_capability"] is None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        text = cpuinfo.read_text()
        flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())
        assert hw["isa"] == [f for f in ISA_FLAGS if f in flags]
        model = re.search(r"^model name\s*:(.*)$", text, re.M)
        assert hw["cpu_model"] == (model.group(1).strip() if model else hw["cpu_model"])
    if "BLAS_INFO=mkl" in torch.__config__.show():
        assert hw["blas"].startswith("mkl")
    assert re.fullmatch(r"[0-9a-f]{10}", hw["key"]) and hardware("cpu")["key"] == hw["key"]  # stable in a process
    line = hardware_text(hw)
    assert hw["cpu_capability"] in line and hw["cpu_model"] in line and "\n" not in line
    assert hardware_text(None) == "hardware not recorded"


def test_kernel_support_follows_the_cpu_flags(monkeypatch):
    from nslib.runner import _runtime

    monkeypatch.setattr(_runtime, "_cpuinfo", lambda: ("x", frozenset({"avx2", "fma"})))
    monkeypatch.setattr(_runtime.platform, "machine", lambda: "x86_64")
    support = _runtime.kernel_support()
    assert support["default"] is None and support["avx2"] is None
    assert support["avx512"].startswith("this CPU lacks avx512f")
    monkeypatch.setattr(_runtime, "_cpuinfo", lambda: ("x", frozenset()))
    assert _runtime.kernel_support()["avx2"] == "this CPU lacks avx2, fma"


@pytest.mark.notebook
def test_a_quick_notebook_runs_under_two_kernel_sets_and_each_record_names_its_own(tmp_path):
    """Portability: torch forced onto its default (unvectorised) kernels and left to pick its own; both runs complete,
    and each results.json says which kernels torch actually used (asked of torch inside the notebook's kernel)."""
    import json
    import os
    import subprocess
    import sys

    stem = "abs-smooth-clarke"
    base = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    own = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         capture_output=True, text=True, env=base).stdout.strip()
    records = {}
    for name, extra in (("forced default", {"ATEN_CPU_CAPABILITY": "default"}), ("torch's own", {})):
        proc = subprocess.run([sys.executable, "-m", "nslib", "run", stem, "--profile", "quick", "--out",
                               str(tmp_path / name.replace(" ", "-").replace("'", ""))], capture_output=True,
                              text=True, env=dict(base, NSLIB_THREADS="1", **extra), timeout=600)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        records[name] = json.loads((Path(proc.stdout.strip().splitlines()[-1]) / "results.json").read_text())
    forced, native = records["forced default"]["env"]["hardware"], records["torch's own"]["env"]["hardware"]
    assert forced["cpu_capability"] == "DEFAULT" and forced["cpu_capability_requested"] == "default"
    assert native["cpu_capability"] == own and native["cpu_capability_requested"] is None
    assert (forced["key"] == native["key"]) == (own == "DEFAULT")
    assert set(records["forced default"]["verdicts"]) == set(records["torch's own"]["verdicts"])
