"""Every verdict criterion of the book, one function each, computed from measured arrays.

Each returns :func:`nslib.verdict` output: ``holds``, the criterion in words, and the measured
values behind it. Criteria are fixed here, before any result is seen; tests feed each one
constructed data on which it must come out false.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._results import verdict

__all__ = [
    "adaptive_optimizers_differ",
    "cycle_not_converge",
    "gap_linear_in_step",
    "huber_unstable_beyond_2_over_l",
    "loglog_slope",
    "not_yet_measured",
]


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (NaN if any value is non-positive or non-finite)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(x > 0)):
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def not_yet_measured(what: str) -> dict:
    """A declared claim whose experiment is not built yet: recorded as not holding, and said so."""
    return verdict(False, f"not yet measured: {what}")


def cycle_not_converge(late_gaps: Mapping[str, np.ndarray], lrs, landed: Mapping[str, np.ndarray],
                       increases: Mapping[str, np.ndarray], periods: Mapping[str, np.ndarray],
                       c: float, abs_name: str = "abs", abs_rtol: float = 1e-6) -> dict:
    """Constant-step GD does not converge on objectives non-differentiable at their minimiser.

    Per objective, arrays are (L, S) over step sizes ``lrs`` and starts. Runs that landed exactly
    on a kink are set apart. Holds when, for every objective and every other run, the late mean
    gap is >= c * lr and f still rises in the late window; and for |x| the gap is lr/2 to ``abs_rtol``.
    """
    lrs = np.asarray(lrs, float)
    per_group, ok = {}, True
    for name, gap in late_gaps.items():
        gap = np.asarray(gap, float)
        keep = ~np.asarray(landed[name], bool)
        thresh = c * lrs[:, None] * np.ones_like(gap)
        not_conv = np.where(np.isfinite(gap), gap >= thresh, True)[keep]
        oscillates = (np.asarray(increases[name]) > 0)[keep]
        per = np.asarray(periods[name])[keep]
        group_ok = bool(not_conv.all() and oscillates.all())
        entry = {
            "runs": int(keep.size), "kink_landings": int((~keep).sum()),
            "fraction_not_converged": float(not_conv.mean()) if not_conv.size else None,
            "fraction_oscillating": float(oscillates.mean()) if oscillates.size else None,
            "min_gap_over_lr": float(np.nanmin((gap / lrs[:, None])[keep])) if keep.any() else None,
            "period_mode": int(np.bincount(per).argmax()) if per.size else None,
            "fraction_exact_cycle": float((per > 0).mean()) if per.size else None,
        }
        if name == abs_name and keep.any():
            rel = np.abs(gap / (lrs[:, None] / 2) - 1)[keep]
            entry["abs_max_rel_dev_from_lr_over_2"] = float(np.nanmax(rel))
            group_ok = group_ok and bool(np.nanmax(rel) <= abs_rtol)
        entry["holds"] = group_ok
        ok = ok and group_ok and keep.any()
        per_group[name] = entry
    return verdict(
        ok,
        f"for every objective non-differentiable at its minimiser and every run not landing exactly on "
        f"a kink: late mean gap >= {c:g} x lr and f still rises in the late window; for |x| the gap "
        f"equals lr/2 within {abs_rtol:g} (relative)",
        per_group=per_group,
    )


def gap_linear_in_step(lrs, median_gaps: Mapping[str, np.ndarray], diminishing_ratio: Mapping[str, float],
                       lo: float = 0.9, hi: float = 1.1, min_ratio: float = 10.0) -> dict:
    """Late mean gap grows linearly in the step: log-log slope in [lo, hi] for every objective,
    and diminishing steps lr0/sqrt(k) end with a gap >= ``min_ratio`` times smaller than constant lr0."""
    per_group, ok = {}, True
    for name, g in median_gaps.items():
        s = loglog_slope(lrs, g)
        r = float(diminishing_ratio[name])
        good = bool(lo <= s <= hi) and bool(r >= min_ratio)
        per_group[name] = {"slope": s, "constant_over_diminishing_gap": r, "holds": good}
        ok = ok and good
    return verdict(
        ok,
        f"log-log slope of the median late mean gap against lr within [{lo:g}, {hi:g}] for every "
        f"objective, and diminishing steps lr0/sqrt(k) reach a late gap >= {min_ratio:g}x smaller than lr0",
        per_group=per_group,
    )


def huber_unstable_beyond_2_over_l(lrs, late_gaps, huber_width: float, quad_lrs, quad_diverged,
                                   quad_curvature: float, rtol: float = 0.05, zero_below: float = 1e-10) -> dict:
    """Huber of width d (gradient 1/d-Lipschitz): for lr > 2d the late mean gap is (lr - d)/2 within
    ``rtol`` for every start; for lr < 2d it falls below ``zero_below``; the quadratic with curvature L
    diverges for every start when lr > 2/L and for none when lr < 2/L.

    ``late_gaps`` is (L, S) for the Huber runs; ``quad_diverged`` is (Lq, S) booleans.
    """
    lrs, g = np.asarray(lrs, float), np.asarray(late_gaps, float)
    d = huber_width
    above, below = lrs > 2 * d, lrs < 2 * d
    pred = (lrs - d) / 2
    with np.errstate(divide="ignore", invalid="ignore"):  # lr = d predicts 0; NaN runs stay NaN
        rel = np.abs(g / pred[:, None] - 1)
    above_ok = bool(above.any() and np.all(np.isfinite(rel[above])) and np.nanmax(rel[above]) <= rtol)
    below_ok = bool(below.any() and np.all(g[below] < zero_below))
    qlrs, qd = np.asarray(quad_lrs, float), np.asarray(quad_diverged, bool)
    qa, qb = qlrs > 2 / quad_curvature, qlrs < 2 / quad_curvature
    quad_ok = bool(qa.any() and qb.any() and qd[qa].all() and not qd[qb].any())
    return verdict(
        above_ok and below_ok and quad_ok,
        f"Huber width d: for every lr > 2d the late mean gap is (lr - d)/2 within {rtol:.0%} for every start, "
        f"for every lr < 2d it is < {zero_below:g}; the quadratic (L = {quad_curvature:g}) diverges for "
        f"every start when lr > 2/L and for none when lr < 2/L",
        max_rel_dev_above=float(np.nanmax(rel[above])) if above.any() else None,
        max_gap_below=float(np.max(g[below])) if below.any() else None,
        lrs_above_2d=lrs[above].tolist(), lrs_below_2d=lrs[below].tolist(),
        quad_fraction_diverged_above=float(qd[qa].mean()) if qa.any() else None,
        quad_fraction_diverged_below=float(qd[qb].mean()) if qb.any() else None,
        huber_above_ok=above_ok, huber_below_ok=below_ok, quadratic_ok=quad_ok,
    )


def adaptive_optimizers_differ(behaviour_frame, twin_pairs, claim_optimizer: str = "rmsprop",
                               min_fraction: float = 0.5) -> dict:
    """Does an optimizer behave differently on differentiable and non-differentiable twins?

    Per optimizer: the fraction of (twin pair, lr) where its behaviour class (converges / stalls /
    diverges) differs between the smooth and the non-smooth twin. ``holds`` answers the paper's
    sentence for ``claim_optimizer``: it behaves differently in >= ``min_fraction`` of them.
    """
    b = behaviour_frame.set_index(["optimizer", "objective", "lr"])["behaviour"]
    per_group = {}
    for opt in behaviour_frame.optimizer.unique():
        diffs, total = 0, 0
        detail = {}
        for smooth, rough in twin_pairs:
            for lr in sorted(behaviour_frame.lr.unique()):
                bs, br = b.get((opt, smooth, lr)), b.get((opt, rough, lr))
                if bs is None or br is None or br == "lands on kink":
                    continue
                total += 1
                diffs += int(bs != br)
                detail[f"{smooth} vs {rough} @ lr={lr:g}"] = f"{bs} / {br}"
        frac = diffs / total if total else None
        per_group[opt] = {"fraction_differs": frac, "pairs": total, "holds": bool(frac is not None and
                                                                               frac >= min_fraction),
                          "detail": detail}
    holds = per_group.get(claim_optimizer, {}).get("holds", False)
    return verdict(
        holds,
        f"{claim_optimizer} behaves differently (converges vs stalls vs diverges, median late gap of runs "
        f"that do not land on a kink) on the smooth and the non-smooth twin in >= {min_fraction:.0%} of "
        f"(twin pair, lr) cases; other optimizers in per_group",
        per_group=per_group,
    )


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(y) == 0 or not np.all(np.isfinite(y)):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def ngdm_no_exact_zeros(exact_zeros, ngdm_zeros: Mapping[str, np.ndarray], p: int, k: int,
                        min_fraction: float = 0.8, judged=("subgradient", "sgd", "adam", "rmsprop")) -> dict:
    """Each judged NGDM returns no exact zero in >= ``min_fraction`` of (seed, lambda) runs, while the exact
    Lasso solution has exact zeros in every run. How sparse the exact solution is (about p - k zeros) is
    reported in ``measured``, not gated: it depends on lambda, and the claim is about the NGDMs."""
    exact_zeros = np.asarray(exact_zeros)
    exact_ok = bool(np.all(exact_zeros > 0))
    per_group = {}
    for name, z in ngdm_zeros.items():
        frac = float(np.mean(np.asarray(z) == 0))
        per_group[name] = {"fraction_runs_without_zeros": frac, "median_zeros": float(np.median(z)),
                           "holds": frac >= min_fraction, "judged": name in judged}
    ok = exact_ok and all(per_group[m]["holds"] for m in judged if m in per_group)
    return verdict(ok, f"each of {', '.join(judged)} has no exact zero in >= {min_fraction:.0%} of (seed, lambda) "
                       f"runs, while the exact solution has exact zeros in every run",
                   exact_min_zeros=int(exact_zeros.min()), exact_median_zeros=float(np.median(exact_zeros)),
                   p_minus_k=p - k, exact_ok=exact_ok, per_group=per_group)


def ngdm_l1_grows_with_lambda(lams, l1: Mapping[str, np.ndarray], exact_l1, min_fraction: float = 0.8,
                              claim_method: str = "subgradient") -> dict:
    """On the upper half of the lambda grid (lambda >= median), Spearman(lambda, ||w||_1) > 0 in >=
    ``min_fraction`` of seeds for ``claim_method``, while the exact path's L1 norm is non-increasing."""
    lams = np.asarray(lams, float)
    upper = lams >= np.median(lams)
    exact_l1 = np.asarray(exact_l1, float)
    exact_ok = bool(np.all(np.diff(exact_l1[:, np.argsort(lams)], axis=1) <= 1e-9))
    per_group = {}
    for name, norms in l1.items():
        rho = np.array([_spearman(lams[upper], row[upper]) for row in np.asarray(norms, float)])
        frac = float(np.mean(rho > 0))
        per_group[name] = {"fraction_seeds_increasing": frac, "median_spearman": float(np.nanmedian(rho))
                           if np.isfinite(rho).any() else None, "holds": frac >= min_fraction}
    ok = exact_ok and per_group.get(claim_method, {}).get("holds", False)
    return verdict(ok, f"on lambda >= median of the grid, Spearman(lambda, ||w||_1) > 0 in >= {min_fraction:.0%} "
                       f"of seeds for {claim_method}, while the exact L1 norm is non-increasing in lambda",
                   exact_path_non_increasing=exact_ok, upper_lams=lams[upper].tolist(), per_group=per_group)


def objective_gap_grows(lams, gaps: Mapping[str, np.ndarray], min_fraction: float = 0.8, ratio: float = 2.0,
                        claim_method: str = "subgradient") -> dict:
    """F(w_NGDM) - F* grows with lambda: per seed Spearman(lambda, gap) > 0 and the gap at the largest
    lambda >= ``ratio`` x the gap at the smallest, in >= ``min_fraction`` of seeds (``claim_method``)."""
    lams = np.asarray(lams, float)
    order = np.argsort(lams)
    per_group = {}
    for name, g in gaps.items():
        g = np.asarray(g, float)[:, order]
        rho = np.array([_spearman(lams[order], row) for row in g])
        with np.errstate(divide="ignore", invalid="ignore"):
            grow = g[:, -1] >= ratio * g[:, 0]
        ok_seed = (rho > 0) & grow
        per_group[name] = {"fraction_seeds": float(ok_seed.mean()), "min_gap": float(np.nanmin(g)),
                           "median_gap_first": float(np.median(g[:, 0])), "median_gap_last": float(np.median(g[:, -1])),
                           "holds": float(ok_seed.mean()) >= min_fraction}
    ok = per_group.get(claim_method, {}).get("holds", False)
    return verdict(ok, f"for {claim_method}: Spearman(lambda, F(w) - F*) > 0 and the gap at the largest lambda >= "
                       f"{ratio:g}x the gap at the smallest, in >= {min_fraction:.0%} of seeds",
                   per_group=per_group)


def prox_recovers_support(jaccard, threshold: float = 0.95, min_fraction: float = 0.8) -> dict:
    """Proximal gradient reaches the exact support: Jaccard >= ``threshold`` at every lambda, in >=
    ``min_fraction`` of seeds. ``jaccard`` is (S, Lam)."""
    j = np.asarray(jaccard, float)
    per_seed = np.all(j >= threshold, axis=1)
    return verdict(float(per_seed.mean()) >= min_fraction,
                   f"Jaccard index of the proximal solution's support against the exact one >= {threshold:g} at "
                   f"every lambda, in >= {min_fraction:.0%} of seeds",
                   fraction_seeds=float(per_seed.mean()), min_jaccard=float(j.min()))


def pruning_threshold_worse(area_threshold, area_prox, min_fraction: float = 0.8) -> dict:
    """The area under test accuracy against sparsity is smaller for magnitude thresholding (after
    subgradient SGD) than for proximal SGD, in >= ``min_fraction`` of seeds."""
    a, b = np.asarray(area_threshold, float), np.asarray(area_prox, float)
    worse = a < b
    return verdict(float(worse.mean()) >= min_fraction,
                   f"area under accuracy-vs-sparsity smaller for thresholding than for proximal SGD in >= "
                   f"{min_fraction:.0%} of seeds",
                   fraction_seeds=float(worse.mean()), area_threshold=a.tolist(), area_prox=b.tolist(),
                   max_abs_area_difference=float(np.max(np.abs(a - b))))


def single_sample_clarke(distances: Mapping[float, np.ndarray], control_distances, tol: float = 1e-9) -> dict:
    """AD with ReLU'(0) = alpha lies in the exact Clarke set at every kinked point for every tested alpha in
    [0, 1] (sup-norm distance <= tol), while the negative control falls outside at one point at least."""
    per_group = {}
    ok = True
    for alpha, d in distances.items():
        d = np.asarray(d, float)
        frac = float(np.mean(d <= tol))
        per_group[f"alpha={alpha:g}"] = {"fraction_inside": frac, "max_distance": float(d.max()), "holds": frac == 1.0}
        ok = ok and frac == 1.0
    c = np.asarray(control_distances, float)
    control_out = bool(np.any(c > tol))
    return verdict(ok and control_out,
                   f"for every alpha tested, AD lies within sup-norm {tol:g} of the exact Clarke set at 100% of the "
                   f"points; the negative control lies outside at >= 1 point",
                   control_fraction_outside=float(np.mean(c > tol)), control_max_distance=float(c.max()),
                   points=int(len(c)), per_group=per_group)


def batch_needs_agnostic_choice(agnostic: Mapping[float, np.ndarray], per_sample: np.ndarray,
                                tol: float = 1e-12) -> dict:
    """The Clarke set of the batch loss is {0}: AD must return 0 (sup norm <= tol) for every agnostic
    choice (all samples take the same ReLU'(0)) and a non-zero vector for the per-sample choice."""
    ag = {f"alpha={a:g}": float(np.abs(np.asarray(g, float)).max()) for a, g in agnostic.items()}
    ps = float(np.abs(np.asarray(per_sample, float)).max())
    ok = all(v <= tol for v in ag.values()) and ps > tol
    return verdict(ok, f"AD is in the Clarke set {{0}} (sup norm <= {tol:g}) for every agnostic choice and "
                       "outside it for the per-sample choice",
                   agnostic_sup_norm=ag, per_sample_sup_norm=ps, per_sample_gradient=np.asarray(per_sample).tolist())


def kakade_lee_counterexample(ad_value: float, clarke_vertices, tol: float = 1e-9) -> dict:
    """relu(x) - relu(-x) = x: the installed AD returns 0 at x = 0 while the Clarke set is {1}."""
    V = np.asarray(clarke_vertices, float)
    clarke_is_one = V.shape == (1, 1) and abs(V[0, 0] - 1.0) <= tol
    ok = bool(ad_value == 0.0 and clarke_is_one)
    return verdict(ok, "AD of relu(x) - relu(-x) at x = 0 is 0, and the exact Clarke set there is {1}",
                   ad_value=float(ad_value), clarke_vertices=V.ravel().tolist())
