"""Small statistics the verdicts share: log-log slopes of rates, Spearman rank correlations, the Wilson interval of a
share and the Student-t half-width of a mean over a few seeds."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["loglog_slope", "spearman", "t_half_width", "wilson_interval"]


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


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (two-sided, ``confidence``) of the share k/n; (0, 1) when n = 0 (nothing measured)."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"k = {k}, n = {n}: allowed are 0 <= k <= n")
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the exact ends at k = 0 and k = n (the formula gives them up to rounding)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def t_half_width(values, confidence: float = 0.95) -> float:
    """Half-width of the two-sided Student-t interval (``confidence``) of the mean of ``values``: t_{n-1} x s /
    sqrt(n), with s the sample standard deviation (ddof 1); inf with fewer than 2 values or a non-finite one. Over 3
    seeds t is 4.30 at 95%, not the 1.96 (or 2) of a normal approximation."""
    v = np.asarray(values, float)
    if len(v) < 2 or not np.all(np.isfinite(v)):
        return math.inf
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
