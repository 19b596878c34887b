"""What results.json can hold: JSON types only, NaN and inf turned into null with a note of which."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["to_json_safe"]


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
    torch = sys.modules.get("torch")  # an object can be a tensor only once torch is imported
    if torch is not None and isinstance(obj, torch.Tensor):
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
