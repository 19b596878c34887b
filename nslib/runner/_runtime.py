"""Where and how a run computes: threads, device, dtype, seeds and deterministic algorithms."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["DTYPES", "check_dtypes", "resolve_device", "resolve_dtype", "seed_everything", "set_threads"]

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
