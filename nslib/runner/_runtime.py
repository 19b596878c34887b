"""Where and how a run computes: threads, device, dtype, seeds and deterministic algorithms."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import random
import re

import numpy as np
import torch

__all__ = ["DTYPES", "KERNEL_SETS", "check_dtypes", "hardware", "hardware_text", "kernel_support", "resolve_device",
           "resolve_dtype", "seed_everything", "set_threads"]

#: Float dtypes by name, as parameters and results.json spell them.
DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}

_threads_set: int | None = None


def set_threads() -> int:
    """Set torch's intra-op threads once per process (``$NSLIB_THREADS``, default 1) and return it.

    Reductions differ with the thread count, so results are reproducible for equal counts; two
    threads on a loaded 2-core machine also run several times slower than one.
    """
    global _threads_set
    raw = os.environ.get("NSLIB_THREADS", "1")
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"NSLIB_THREADS = {raw!r}: allowed is a positive integer") from None
    if _threads_set != n:
        torch.set_num_threads(n)
        _threads_set = n
    return n


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device = 'cuda' but no CUDA device is available: use 'auto' or 'cpu'")
        return torch.device("cuda")
    raise ValueError(f"device = {name!r}: allowed is one of auto, cpu, cuda")


def resolve_dtype(name: str) -> torch.dtype:
    """Map a dtype name (float16, bfloat16, float32, float64) to the torch dtype."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype = {name!r}: allowed is one of {', '.join(DTYPES)}") from None


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed python, numpy and torch; switch on deterministic algorithms; return a CPU generator."""
    if deterministic:
        # cuBLAS needs this before CUDA starts to be deterministic; harmless on the CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _linear_probe(dtype: torch.dtype, device: torch.device) -> None:
    w = torch.ones(2, 2, dtype=dtype, device=device, requires_grad=True)
    torch.nn.functional.linear(torch.ones(1, 2, dtype=dtype, device=device), w).sum().backward()


def check_dtypes(dtypes, device, probe=None) -> None:
    """Raise :class:`ParamError` naming the dtype and the device when ``probe(dtype, device)`` fails there (by
    default a tiny linear layer forward and backward): a page refuses, before any compute, a precision its device
    cannot run. ``dtypes`` are names or torch dtypes."""
    from ._params import ParamError

    for d in dict.fromkeys(dtypes):
        name = str(d).removeprefix("torch.")
        try:
            dt = resolve_dtype(name)
        except ValueError as exc:
            raise ParamError(str(exc)) from None
        try:
            (probe or _linear_probe)(dt, torch.device(device))
        except (RuntimeError, TypeError, NotImplementedError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ParamError(f"dtype {name!r} cannot be computed on device {str(device)!r} ({first}); drop it "
                             f"from the dtype lists or choose another device") from None


# ------------------------------------------------------------------------------------------------------ hardware
#: The CPU kernel sets torch can be told to use with ``ATEN_CPU_CAPABILITY`` on x86, least to most vectorised.
KERNEL_SETS = ("default", "avx2", "avx512")
#: The CPU features (as /proc/cpuinfo names them) that change which low-precision kernels run, and how they round.
ISA_FLAGS = ("f16c", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16", "amx_int8")
#: What torch checks before it dispatches to a kernel set (aten's cpu capability detection); torch does *not* check
#: it when ATEN_CPU_CAPABILITY asks for a set, so a set whose features this CPU lacks would die on an illegal
#: instruction.
_KERNEL_NEEDS = {"default": (), "avx2": ("avx2", "fma"), "avx512": ("avx512f", "avx512bw", "avx512vl", "avx512dq",
                                                                    "fma")}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    """The CPU's model name and feature flags, from /proc/cpuinfo (Linux); elsewhere the platform's processor name
    and no flags."""
    model, flags = platform.processor() or platform.machine(), frozenset()
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return model, flags
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    f = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return (m.group(1).strip() if m else model), frozenset(f.group(1).split() if f else ())


def kernel_support() -> dict[str, str | None]:
    """For each of :data:`KERNEL_SETS`: None when this CPU can run it, else why not (the features it lacks). On a
    machine whose flags cannot be read, only ``default`` is known to run."""
    _, flags = _cpuinfo()
    out: dict[str, str | None] = {}
    for name, needs in _KERNEL_NEEDS.items():
        if platform.machine().lower() not in ("x86_64", "amd64") and name != "default":
            out[name] = f"not an x86 CPU ({platform.machine()})"
            continue
        missing = [n for n in needs if n not in flags]
        out[name] = f"this CPU lacks {', '.join(missing)}" if missing else None
    return out


@functools.lru_cache(maxsize=1)
def _blas() -> str:
    """The BLAS and oneDNN builds torch reports (``torch.__config__.show()``), in a few words."""
    shown = torch.__config__.show()
    parts = []
    blas = re.search(r"BLAS_INFO=(\w+)", shown)
    if blas:
        parts.append(blas.group(1))
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", shown)
    if mkl:
        parts[-1:] = [f"{parts[-1] if parts else 'mkl'} {mkl.group(1)}"]
    dnn = re.search(r"MKL-DNN v([\d.]+)", shown)
    if dnn and torch.backends.mkldnn.is_available():
        parts.append(f"oneDNN {dnn.group(1)}")
    return ", ".join(parts) or "unknown"


def hardware(device: str | torch.device = "cpu") -> dict:
    """What a run's numbers depend on beyond its code and parameters (results.json's ``env.hardware``): the CPU kernel
    set torch actually dispatches to (and the one ``ATEN_CPU_CAPABILITY`` asked for), the CPU model and the features
    that change low-precision kernels, the BLAS/oneDNN build, torch's version and thread count, and the CUDA device
    and its capability when ``device`` is cuda. ``key`` is a short hash of all of it: two runs with the same key ran
    the same arithmetic, so the same code and parameters must give the same results there."""
    model, flags = _cpuinfo()
    info = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_capability_requested": os.environ.get("ATEN_CPU_CAPABILITY") or None,
        "cpu_model": model,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "blas": _blas(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda_device": None,
        "cuda_capability": None,
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["cuda_device"] = torch.cuda.get_device_name(index)
        info["cuda_capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
    ident = {k: v for k, v in info.items() if k != "cpu_capability_requested"}  # what was used, not what was asked
    info["key"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]
    return info


def hardware_text(hw: dict | None) -> str:
    """One short line for a page: "AMD EPYC, torch's AVX2 kernels (CPU: avx2, fma, f16c), mkl 2024.2, oneDNN 3.12.0,
    1 thread" (plus the CUDA device when there is one); "hardware not recorded" for a record made before nslib
    recorded it."""
    if not hw:
        return "hardware not recorded"
    isa = [f for f in hw.get("isa", []) if f in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile")]
    asked = hw.get("cpu_capability_requested")
    kernels = f"torch's {hw.get('cpu_capability')} kernels" + (" (forced)" if asked else "")
    text = (f"{hw.get('cpu_model')}, {kernels} (CPU has {', '.join(isa) or 'no AVX2'}), {hw.get('blas')}, torch "
            f"{hw.get('torch')}, {hw.get('threads')} thread(s)")
    if hw.get("cuda_device"):
        text = f"{hw['cuda_device']} (CUDA capability {hw['cuda_capability']}) with " + text
    return text
