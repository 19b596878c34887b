"""Small statistics the verdicts share: log-log slopes of rates and Spearman rank correlations."""

from __future__ import annotations

import numpy as np

__all__ = ["loglog_slope", "spearman"]


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN if any value is non-positive or non-finite)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(x > 0)):
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def spearman(x, y) -> float:
    """Spearman rank correlation of x and y; NaN when y is constant, non-finite or has fewer than 2 points."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(y) == 0 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(spearmanr(x, y).statistic)
