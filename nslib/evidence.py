"""The evidence committed under ``evidence/``, from GPUs and from CPUs at each kernel set (written by ``python -m
nslib device-check``, :mod:`nslib.devicecheck`), as the pages read it: one sentence per page, never recomputed."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["OUTPUT_FILE", "evidence_text", "newest_by_machine"]

#: The file ``device-check`` writes into its ``--out`` folder.
OUTPUT_FILE = "device-check.json"

_ROOT = Path(__file__).resolve().parent.parent


def _evidence_reports(root: Path | None = None) -> list[dict]:
    """Every committed ``evidence/**/device-check.json`` at full size (a GPU's, or a CPU's at one kernel set), oldest
    first; tiny smoke runs are no evidence."""
    folder = (root or _ROOT) / "evidence"
    reports = []
    for path in sorted(folder.glob("**/" + OUTPUT_FILE)):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if report.get("environment", {}).get("device") in ("cuda", "cpu") and report.get("size") == "full":
            reports.append(report)
    return sorted(reports, key=lambda r: r["environment"].get("date", ""))


def _machine(r: dict) -> tuple:
    """Which machine a report speaks for: the GPU, or the CPU model with the kernel set torch used."""
    env = r["environment"]
    hw = env.get("hardware") or {}
    return env.get("device"), env.get("device_name"), hw.get("cpu_capability")


def newest_by_machine(part: str, root: Path | None = None) -> dict[tuple, dict]:
    """The newest full report per machine ((device, device name, CPU kernels) -> report) whose ``part`` (a section of
    device-check's output, e.g. ``"maxpool"``) ran; what a page reads to comment on the committed evidence."""
    newest = {}
    for r in _evidence_reports(root):
        if r.get(part, {}).get("ok"):
            newest[_machine(r)] = r
    return newest


def _parts(r: dict, stem: str) -> list[str]:
    device = r["environment"].get("device")
    parts = []
    quick = r.get("notebooks", {}).get("quick_profiles", {}).get(stem)
    if quick is not None:
        parts.append("the quick profile " + (f"passed on {device}" if quick["passed"]
                                             else f"failed on {device} ({quick.get('error', '')})"))
    if stem == "relu-prime-at-zero" and r.get("volume", {}).get("ok"):
        parts.append("volumes on MNIST (784-256x3, batch 256): " + ", ".join(
            f"{v['dtype']} {v['volume']:.2f} [{v['ci_low']:.2f}, {v['ci_high']:.2f}] of {v['n_inits']} inits"
            for v in r["volume"]["rows"]))
    if stem == "maxpool-jacobians" and r.get("maxpool", {}).get("ok"):
        by_beta: dict[float, list[float]] = {}
        for x in r["maxpool"]["rows"]:
            by_beta.setdefault(x["beta"], []).append(x["accuracy"])
        parts.append("LeNet-5 at float16 on MNIST, mean test accuracy: " + ", ".join(
            f"beta {b:g} {sum(a) / len(a):.3f}" for b, a in sorted(by_beta.items())))
    return parts


def evidence_text(stem: str, root: Path | None = None) -> str:
    """What the committed evidence says about a page, one clause per machine (the newest report of each: every GPU,
    and every CPU at each kernel set, GPUs first), each with its hardware, date and commit ("measured on <device>,
    <date>, nslib <commit>: ..."), or that there is none yet."""
    newest: dict[tuple, dict] = {}
    for r in _evidence_reports(root):
        newest[_machine(r)] = r  # oldest first: the last one of a machine stays
    if not newest:
        return ("none yet: no full device-check has been committed under evidence/ (python -m nslib device-check, "
                "on a GPU whenever one is at hand, and on a CPU at each kernel set it runs)")
    clauses = []
    for (device, name, kernels), r in sorted(newest.items(), key=lambda kv: (kv[0][0] != "cuda", str(kv[0]))):
        env = r["environment"]
        where = name if device == "cuda" else f"CPU {name} with torch's {kernels or 'unrecorded'} kernels"
        parts = _parts(r, stem)
        clauses.append(f"measured on {where}, {env.get('date')}, nslib {str(env.get('git_commit') or '')[:12]}: "
                       + ("; ".join(parts) if parts else "nothing that concerns this page"))
    return ". ".join(c if i == 0 else c[0].upper() + c[1:] for i, c in enumerate(clauses))
