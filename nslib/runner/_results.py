"""A run's record: parameters, verdicts, metrics and environment, written to results.json."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._notebooks import load_notebook
from ._params import ParamError
from ._runs import RESULTS_FILE
from ._runtime import check_dtypes, resolve_device, seed_everything, set_threads

__all__ = ["STATES", "RecordedVerdict", "Run", "combine_verdicts", "default_results_dir", "inconclusive", "start",
           "to_json_safe", "verdict"]


def default_results_dir() -> Path:
    """Where results go without ``$NSLIB_RUN_DIR`` (book builds, interactive use): git ignores it."""
    return Path(__file__).resolve().parents[2] / "_results"


def to_json_safe(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays to JSON types; NaN/inf become null.

    In a dict, a non-finite value at key ``k`` becomes ``null`` and ``k + "_nonfinite"`` records
    which ("nan", "inf" or "-inf"), so a reader sees why the number is missing.
    """
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            safe = to_json_safe(v)
            out[str(k)] = safe
            if safe is None and _nonfinite(v):
                out[f"{k}_nonfinite"] = _nonfinite(v)
        return out
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return [to_json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to results.json: convert it first")


def _nonfinite(v: Any) -> str | None:
    if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
        return "nan" if math.isnan(float(v)) else ("inf" if float(v) > 0 else "-inf")
    return None


#: The three states of a verdict, as results.json spells them.
STATES = ("holds", "does not hold", "inconclusive")


def verdict(holds: bool, criterion: str, **measured: Any) -> dict:
    """A decided verdict: whether the claim holds by ``criterion``, with the measured values behind it."""
    holds = bool(holds)
    return {"holds": holds, "status": STATES[0] if holds else STATES[1], "criterion": criterion,
            "measured": to_json_safe(measured)}


def inconclusive(criterion: str, reason: str, **measured: Any) -> dict:
    """The run cannot decide the claim: ``reason`` names the precondition that failed (never "does not hold")."""
    return {"holds": None, "status": STATES[2], "criterion": criterion, "reason": reason,
            "measured": to_json_safe(measured)}


def combine_verdicts(groups: Mapping[str, dict], criterion: str, **measured: Any) -> dict:
    """One verdict from per-group outcomes ``{group: {"state": True | False | reason, "measured": {...}}}`` (a
    claim judged per net, per activation, per dataset): any False decides 'does not hold', else any reason makes it
    'inconclusive' (the reasons joined, each named by its group), else 'holds'. The groups' own states and
    measured values go into ``measured["per_group"]``."""
    status = lambda s: s if isinstance(s, str) else (STATES[0] if s else STATES[1])
    per_group = {k: {**v["measured"], "holds": v["state"] if isinstance(v["state"], bool) else None,
                     "status": status(v["state"])} for k, v in groups.items()}
    if not groups:
        return inconclusive(criterion, "no group was run", **measured)
    if any(v["state"] is False for v in groups.values()):
        return verdict(False, criterion, per_group=per_group, **measured)
    reasons = [f"{k}: {v['state']}" for k, v in groups.items() if isinstance(v["state"], str)]
    if reasons:
        return inconclusive(criterion, "; ".join(reasons), per_group=per_group, **measured)
    return verdict(True, criterion, per_group=per_group, **measured)


class RecordedVerdict(dict):
    """A recorded verdict: the results.json dict (read it as before), shown on a page as a one-row table of claim,
    state, criterion and reason instead of the raw dict."""

    def __init__(self, claim_id: str, result: Mapping[str, Any]):
        super().__init__(result)
        self.claim_id = claim_id

    def summary(self) -> str:
        """One line: the claim, its state, and the reason when it is inconclusive."""
        reason = f" ({self['reason']})" if self.get("status") == STATES[2] and self.get("reason") else ""
        return f"{self.claim_id}: {self.get('status')}{reason}"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.summary())

    def _repr_html_(self) -> str:
        import html

        cells = [self.claim_id, self.get("status", ""), self.get("criterion", ""), self.get("reason", "")]
        head = "".join(f"<th>{h}</th>" for h in ("claim", "state", "criterion", "reason"))
        row = "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in cells)
        return f"<table><thead><tr>{head}</tr></thead><tbody><tr>{row}</tbody></table>"


def _git_commit() -> str | None:
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
        self.verdicts: dict[str, dict] = {}
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
            f"dtype {self.dtype} | torch threads {self.threads}"
        )

    def use_dtype(self, *dtypes) -> None:
        """Declare the dtype(s) the page computes in (names or torch dtypes), for results.json's ``env.dtype``."""
        names = [str(d).removeprefix("torch.") for d in dtypes]
        self.dtype = ", ".join(dict.fromkeys(names))

    def record_verdict(self, claim_id: str, result: dict) -> RecordedVerdict:
        """Store a verdict (from :func:`verdict` or :func:`inconclusive`) under a declared claim id; return it as a
        :class:`RecordedVerdict`, which a cell ending in it shows as a small table, never as a raw dict."""
        if claim_id not in self.claims:
            raise KeyError(f"claim {claim_id!r} is not declared in the notebook metadata: {list(self.claims)}")
        self.verdicts[claim_id] = result
        return RecordedVerdict(claim_id, result)

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
            "verdicts": {k: self.verdicts[k] for k in self.claims},
            "metrics": to_json_safe(self.metrics),
            "env": self.env(),
            "elapsed_s": round(time.perf_counter() - self._t0, 3),
        }

    def env(self) -> dict:
        """Where the numbers come from: versions, commit, device, dtype, threads, platform (results.json's ``env``)."""
        return {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "nslib": _nslib_version(),
            "git_commit": _git_commit(),
            "device": str(self.device),
            "dtype": self.dtype or str(torch.get_default_dtype()).removeprefix("torch."),
            "threads": self.threads,
            "platform": platform.platform(),
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
    from .. import __version__

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


