"""The GPU evidence committed under ``evidence/`` (written by ``python -m nslib device-check``,
:mod:`nslib.devicecheck`), as the pages read it: one sentence per page, never recomputed."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["OUTPUT_FILE", "evidence_text"]

#: The file ``device-check`` writes into its ``--out`` folder.
OUTPUT_FILE = "device-check.json"

_ROOT = Path(__file__).resolve().parent.parent


def _evidence_reports(root: Path | None = None) -> list[dict]:
    """Every committed ``evidence/**/device-check.json`` measured on CUDA at full size, oldest first."""
    folder = (root or _ROOT) / "evidence"
    reports = []
    for path in sorted(folder.glob("**/" + OUTPUT_FILE)):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if report.get("environment", {}).get("device") == "cuda" and report.get("size") == "full":
            reports.append(report)
    return sorted(reports, key=lambda r: r["environment"].get("date", ""))


def evidence_text(stem: str, root: Path | None = None) -> str:
    """One sentence for a page: what the newest committed GPU run says about it ("measured on <device>, <date>, nslib
    <commit>: ..."), or that there is none yet."""
    reports = _evidence_reports(root)
    if not reports:
        return ("none yet: no GPU run has been committed under evidence/ (python -m nslib device-check, whenever a "
                "GPU is at hand)")
    r = reports[-1]
    env = r["environment"]
    parts = []
    quick = r.get("notebooks", {}).get("quick_profiles", {}).get(stem)
    if quick is not None:
        parts.append("the quick profile " + ("passed on cuda" if quick["passed"]
                                             else f"failed on cuda ({quick.get('error', '')})"))
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
    head = f"measured on {env.get('device_name')}, {env.get('date')}, nslib {str(env.get('git_commit') or '')[:12]}"
    return head + ": " + ("; ".join(parts) if parts else "nothing that concerns this page")
