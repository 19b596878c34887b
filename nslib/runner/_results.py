"""A run's record: parameters, verdicts, metrics and environment, written to results.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._jsonsafe import to_json_safe
from ..verdicts import Verdict
from ._notebooks import load_notebook
from ._params import ParamError
from ._runs import RESULTS_FILE
from ._runtime import check_dtypes, hardware, resolve_device, seed_everything, set_threads

__all__ = ["Run", "default_results_dir", "git_commit", "start"]


def default_results_dir() -> Path:
    """Where results go without ``$NSLIB_RUN_DIR`` (book builds, interactive use): git ignores it."""
    return Path(__file__).resolve().parents[2] / "_results"


def git_commit() -> str | None:
    """The commit of the checkout nslib runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Run:
    """A notebook run: checked parameters, resolved device, and the results it will record."""

    def __init__(self, notebook: str, params: dict[str, Any], profile: str):
        self.notebook = notebook
        self.params = params
        self.profile = profile
        self.threads = set_threads()
        self.device = resolve_device(params.get("device", "auto"))
        # the dtype the page computes in: its `dtype` parameter, else what the page declares with use_dtype()
        self.dtype: str | None = str(params["dtype"]) if "dtype" in params else None
        self.verdicts: dict[str, Verdict] = {}
        self.metrics: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        info = load_notebook(notebook)
        self.claims = info.claims

    @property
    def run_dir(self) -> Path:
        env = os.environ.get("NSLIB_RUN_DIR")
        return Path(env) if env else default_results_dir() / self.notebook

    def describe(self) -> str:
        """One line: device, dtype, threads and profile, for the set-up cell."""
        return (
            f"notebook {self.notebook} | profile {self.profile} | device {self.device} | "
            f"dtype {self.dtype} | torch threads {self.threads} | CPU kernels "
            f"{torch.backends.cpu.get_cpu_capability()}"
        )

    def use_dtype(self, *dtypes) -> None:
        """Declare the dtype(s) the page computes in (names or torch dtypes), for results.json's ``env.dtype``."""
        names = [str(d).removeprefix("torch.") for d in dtypes]
        self.dtype = ", ".join(dict.fromkeys(names))

    def record_verdict(self, claim_id: str, result: Mapping) -> Verdict:
        """Store a :class:`~nslib.verdicts.Verdict` (or its results.json form) under a declared claim id and return
        it: a cell ending in it shows a small table, never a raw dict."""
        if claim_id not in self.claims:
            raise KeyError(f"claim {claim_id!r} is not declared in the notebook metadata: {list(self.claims)}")
        self.verdicts[claim_id] = result if isinstance(result, Verdict) else Verdict.from_json(result)
        return self.verdicts[claim_id]

    def record_metric(self, name: str, value: Any) -> None:
        self.metrics[name] = value

    def results(self) -> dict:
        """The results.json content (every declared claim must have a verdict)."""
        missing = [c for c in self.claims if c not in self.verdicts]
        if missing:
            raise RuntimeError(f"no verdict recorded for declared claims: {missing}")
        return {
            "notebook": self.notebook,
            "profile": self.profile,
            "parameters": to_json_safe(self.params),
            "verdicts": {k: self.verdicts[k].to_json() for k in self.claims},
            "metrics": to_json_safe(self.metrics),
            "env": self.env(),
            "elapsed_s": round(time.perf_counter() - self._t0, 3),
        }

    def env(self) -> dict:
        """Where the numbers come from: versions, commit, device, dtype, threads, platform and the hardware
        (:func:`nslib.runner._runtime.hardware`: CPU kernels as used, CPU model and features, BLAS, CUDA device),
        results.json's ``env``."""
        return {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nslib": _nslib_version(),
            "git_commit": git_commit(),
            "device": str(self.device),
            "dtype": self.dtype or str(torch.get_default_dtype()).removeprefix("torch."),
            "threads": self.threads,
            "platform": platform.platform(),
            "hardware": hardware(self.device),
        }

    def save(self) -> Path:
        """Write results.json atomically into the run directory and return its path."""
        data = self.results()
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
        folder = self.run_dir
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".results-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); a result is as readable as its notebook
        target = folder / RESULTS_FILE
        os.replace(tmp, target)
        return target


def _nslib_version() -> str:
    from .._version import __version__

    return __version__


def start(notebook: str, namespace: Mapping[str, Any], dtypes=(), probe=None) -> Run:
    """Check the parameters found in ``namespace`` against the notebook's declaration; return a Run.

    Called from the notebook's check cell as ``run = nslib.start("stem", globals())``. A bad value
    raises ParamError naming the parameter, the value and what is allowed, before any compute.
    ``dtypes`` names the precision(s) a page without a ``dtype`` parameter computes in (see
    :meth:`Run.use_dtype`); each is checked on the run's device with ``probe(dtype, device)`` (default: a tiny linear
    layer forward and backward, see :func:`check_dtypes`), so that a precision the device cannot compute is refused
    here, naming the dtype and the device.
    """
    info = load_notebook(notebook)
    given = {name: namespace[name] for name in info.specs if name in namespace}
    missing = [n for n in info.specs if n not in namespace]
    if missing:
        raise ParamError(f"parameters {missing} are not defined: run the parameters cell first")
    params = info.resolve("book", given)
    profile = os.environ.get("NSLIB_PROFILE")
    if not profile:
        defaults = info.resolve("book")
        profile = "book" if params == defaults else "custom"
    if "seed" in params:
        seed_everything(params["seed"])
    run = Run(notebook, params, profile)
    if dtypes:
        check_dtypes(dtypes, run.device, probe)
        run.use_dtype(*dtypes)
    print(run.describe(), file=sys.stdout)
    return run


