"""The shared statistics against independent references: scipy's binomial test interval and t distribution, and
values computed by hand."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest, t

from nslib.tools.stats import loglog_slope, spearman, t_half_width, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (55, 100), (1, 391)])
def test_wilson_interval_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_interval_edges_and_refusals():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)  # 0 of 10: at most about 28%
    assert wilson_interval(5, 10, 0.99)[0] < wilson_interval(5, 10, 0.95)[0]
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(11, 10)


def test_t_half_width_is_student_t_times_the_standard_error():
    v = [0.90, 0.91, 0.93]
    by_hand = t.ppf(0.975, 2) * np.std(v, ddof=1) / math.sqrt(3)
    assert t_half_width(v) == pytest.approx(by_hand)
    # three seeds: 4.3 standard errors (the tabulated t_{2, 0.975} = 4.303), not the 1.96 of a normal approximation
    assert t_half_width(v) == pytest.approx(4.3027 * np.std(v, ddof=1) / math.sqrt(3), rel=1e-4)
    assert t_half_width(v, 0.99) == pytest.approx(9.9248 * np.std(v, ddof=1) / math.sqrt(3), rel=1e-4)
    assert t_half_width([0.5]) == math.inf and t_half_width([0.5, float("nan")]) == math.inf
    assert t_half_width([0.25, 0.25, 0.25]) == 0.0


def test_loglog_slope_and_spearman():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert loglog_slope(x, 3 * x ** -1.5) == pytest.approx(-1.5)
    assert math.isnan(loglog_slope(x, [1, 0, 1, 1]))
    assert spearman(x, [1, 2, 3, 5]) == pytest.approx(1.0) and math.isnan(spearman(x, [1, 1, 1, 1]))
