"""The criteria of nonsmooth-convex-dynamics on constructed trajectories: where they must hold, come out
false, or (preconditions failing) be inconclusive."""

import numpy as np
import pandas as pd
import pytest

from nslib.findings import nonsmooth_convex_dynamics as ncd
from nslib.tools.dynamics import StepSizeRuns

LRS = np.array([0.01, 0.1, 1.0])
S, T = 4, 400


def cycling(name, lrs, level, schedule="constant"):
    """A trajectory in a 2-cycle: x alternates between a and a - lr, the gap between a and lr - a with mean
    ``level`` per lr (an array), so f rises every other step."""
    lrs = np.asarray(lrs, float)
    L = len(lrs)
    a = np.asarray(level, float)[:, None, None] * np.ones((L, S, T))
    wiggle = 0.25 * a * np.where(np.arange(T) % 2, 1.0, -1.0)
    gap = a + wiggle
    x = np.where(np.arange(64) % 2, 0.3, -0.7) * lrs[:, None, None] * np.ones((L, S, 64))
    neg = np.full((L, S), -1)
    return StepSizeRuns(name, "sgd", schedule, lrs, gap, x[..., None], neg, neg.copy(), neg.copy())


def cycles():
    return {"abs": cycling("abs", LRS, LRS / 2), "l1": cycling("l1", LRS, LRS * 2.5)}


def test_cycle_not_converge_holds_on_cycles():
    v = ncd.cycle_not_converge(cycles(), window=100, c=0.1)
    assert v["holds"] is True and v["measured"]["per_group"]["abs"]["period_mode"] == 2


def test_cycle_not_converge_fails_when_a_run_converges():
    trajs = cycles()
    trajs["l1"].gap[1, 2, :] = 1e-20 * np.exp(-np.arange(T) / 50)
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v["holds"] is False and v["measured"]["per_group"]["l1"]["holds"] is False


def test_cycle_not_converge_fails_when_abs_gap_is_not_half_the_step():
    trajs = cycles()
    trajs["abs"].gap[...] *= 1.01
    assert ncd.cycle_not_converge(trajs, window=100, c=0.1)["holds"] is False


def test_kink_landings_are_set_apart_not_counted_as_convergence():
    trajs = cycles()
    trajs["l1"].gap[0, 0, 200:] = 0.0
    trajs["l1"].kink_landing_at[0, 0] = 200
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v["holds"] is True and v["measured"]["per_group"]["l1"]["kink_landings"] == 1


def test_gap_linear_in_step():
    good = {"abs": cycling("abs", LRS, LRS / 2)}
    dimin = {"abs": cycling("abs", [1.0], [0.01], "invsqrt")}
    assert ncd.gap_linear_in_step(good, dimin, 100)["holds"] is True
    quadratic_rate = {"abs": cycling("abs", LRS, LRS ** 2)}
    assert ncd.gap_linear_in_step(quadratic_rate, dimin, 100)["holds"] is False
    weak = {"abs": cycling("abs", [1.0], [0.25], "invsqrt")}  # only 2x smaller than lr0/2
    assert ncd.gap_linear_in_step(good, weak, 100)["holds"] is False


def huber_runs(d=0.1):
    lrs = np.array([0.05, 0.1, 0.4, 0.8])
    level = np.where(lrs > 2 * d, (lrs - d) / 2, 0.0)
    huber = cycling("huber", lrs, level)
    qlrs = np.array([0.1, 0.3])
    quad = cycling("quadratic", qlrs, [1e-30, 1.0])
    quad.gap[1, :, 0] = 1.0
    quad.gap[1, :, 1:] = np.inf
    quad.diverged_at[1] = 1
    return huber, quad


def test_huber_criterion():
    huber, quad = huber_runs()
    assert ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)["holds"] is True
    huber.gap[3, 0] *= 1.2
    assert ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)["holds"] is False
    huber, quad = huber_runs()
    huber.gap[0, 1] = 1e-3
    assert ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)["holds"] is False
    huber, quad = huber_runs()
    quad.gap[1] = 1e-3  # the quadratic beyond 2/L does not diverge
    quad.diverged_at[1] = -1
    assert ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)["holds"] is False


def _behaviour(rms_smooth: str):
    rows = []
    for opt, smooth_b in (("sgd", "converges"), ("rmsprop", rms_smooth)):
        for lr in (0.01, 0.1):
            rows += [{"optimizer": opt, "objective": "quadratic", "lr": lr, "behaviour": smooth_b},
                     {"optimizer": opt, "objective": "abs", "lr": lr, "behaviour": "stalls"}]
    return pd.DataFrame(rows)


def test_adaptive_optimizers_differ():
    pairs = [("quadratic", "abs")]
    v = ncd.adaptive_optimizers_differ(_behaviour("stalls"), pairs)
    assert v["holds"] is False and v["measured"]["per_group"]["sgd"]["holds"] is True
    assert ncd.adaptive_optimizers_differ(_behaviour("converges"), pairs)["holds"] is True


@pytest.mark.parametrize("names", [("hinge", "dead-zone")])
def test_counterexample_table_counts_exact_minima(names):
    summary = pd.DataFrame([{"objective": n, "lr": 0.1, "exact_min_at": s} for n in names for s in (10, 30, -1)])
    t = ncd.counterexample_table(summary, names)
    assert t.loc[0.1, ("reached_zero", "hinge")] == "2/3" and t.loc[0.1, ("median_step", "hinge")] == 20.0


# ---------------------------------------------------------------------------------------- inconclusive states

def test_unsettled_runs_make_cycle_not_converge_inconclusive_not_false():
    trajs = cycles()
    # one run still descending through the late window: no rises, halves differ by far more than 10%
    trajs["l1"].gap[0, 1, :] = np.linspace(1.0, 0.01, T)
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v["holds"] is None and v["status"] == "inconclusive"
    assert "l1" in v["reason"] and "lr=0.01" in v["reason"] and v["measured"]["unsettled"] == {"l1": {"lr=0.01": 1}}


def test_gap_linear_in_step_is_the_same_for_a_reversed_list():
    rev = LRS[::-1].copy()
    dimin = {"abs": cycling("abs", [1.0], [0.01], "invsqrt")}
    up = ncd.gap_linear_in_step({"abs": cycling("abs", LRS, LRS / 2)}, dimin, 100)
    down = ncd.gap_linear_in_step({"abs": cycling("abs", rev, rev / 2)}, dimin, 100)
    assert up["holds"] is True and down["holds"] is True
    assert up["measured"]["per_group"]["abs"]["constant_over_diminishing_gap"] == pytest.approx(
        down["measured"]["per_group"]["abs"]["constant_over_diminishing_gap"])
    wrong_start = {"abs": cycling("abs", [0.01], [0.0001], "invsqrt")}
    assert ncd.gap_linear_in_step({"abs": cycling("abs", LRS, LRS / 2)}, wrong_start, 100)["status"] == "inconclusive"
    unsettled = {"abs": cycling("abs", LRS, LRS / 2)}
    unsettled["abs"].gap[2, 0, :] = np.linspace(2.0, 0.5, T)
    assert ncd.gap_linear_in_step(unsettled, dimin, 100)["status"] == "inconclusive"


def test_huber_grid_that_misses_2d_is_inconclusive():
    huber, quad = huber_runs()
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.5, curvature=10.0)  # 2d = 1: every lr below
    assert v["status"] == "inconclusive" and "straddle 2d" in v["reason"]
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1,
                                           curvature=1.0)  # 2/L = 2: both quadratic lrs below
    assert v["status"] == "inconclusive" and "2/L" in v["reason"]


def test_a_claim_about_an_optimizer_not_run_is_inconclusive():
    beh = _behaviour("stalls")
    v = ncd.adaptive_optimizers_differ(beh[beh.optimizer == "sgd"], [("quadratic", "abs")])
    assert v["status"] == "inconclusive" and "rmsprop was not run" in v["reason"]


def test_late_gap_scaling_reads_the_slope():
    lrs = [0.01, 0.1]
    beh = pd.DataFrame([{"optimizer": "rmsprop", "objective": o, "lr": lr, "behaviour": "stalls",
                         "median_late_gap": g(lr)} for o, g in (("quadratic", lambda x: 10 * x * x / 8),
                                                                ("abs", lambda x: x / 2)) for lr in lrs])
    t = ncd.late_gap_scaling(beh)
    assert t.loc["quadratic", "rmsprop"] == pytest.approx(2.0) and t.loc["abs", "rmsprop"] == pytest.approx(1.0)


def test_a_settled_run_that_converges_decides_even_beside_unsettled_ones():
    trajs = cycles()
    trajs["l1"].gap[0, 1, :] = np.linspace(1.0, 0.01, T)  # unsettled
    trajs["abs"].gap[2, 0, :] = 0.0  # settled at f = f*, without landing on a kink: a converged run
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v["holds"] is False and v["status"] == "does not hold"


def test_huber_below_2d_that_has_not_converged_yet_is_inconclusive():
    huber, quad = huber_runs()
    huber.gap[0, 0, :] = 1e-3 * np.exp(-np.arange(T) / 100)  # still shrinking below 2d: not decided
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v["status"] == "inconclusive" and "lr=0.05" in v["reason"]


def test_a_quadratic_too_close_to_2_over_l_to_blow_up_is_inconclusive():
    huber, quad = huber_runs()
    near = cycling("quadratic", [0.1, 0.2001], [1e-30, 1.0])  # |1 - lr L| = 1.001: 1.001^798 is about 2
    v = ncd.huber_unstable_beyond_2_over_l(huber, near, 100, huber_width=0.1, curvature=10.0)
    assert v["status"] == "inconclusive" and "too close to 2/L" in v["reason"]


def test_unsettled_twin_cases_bound_the_fraction():
    beh = _behaviour("stalls")  # rmsprop differs in 0 of 2 cases
    beh.loc[(beh.optimizer == "rmsprop") & (beh.objective == "abs") & (beh.lr == 0.01), "behaviour"] = "unsettled"
    v = ncd.adaptive_optimizers_differ(beh, [("quadratic", "abs")])
    assert v["status"] == "inconclusive" and "between 0% and 50%" in v["reason"]
    v = ncd.adaptive_optimizers_differ(beh, [("quadratic", "abs")], min_fraction=0.6)
    assert v["holds"] is False  # even if the open case differed, 50% < 60%


def test_a_too_short_window_never_refutes():
    """``-p steps 10 -p window 4`` gave 'does not hold' from halves of 2 steps: a window whose halves hold fewer than
    MIN_SETTLE_HALF iterates judges nothing, so a run that converged there is not evidence either way."""
    from nslib.tools.dynamics import MIN_SETTLE_HALF

    trajs = cycles()
    trajs["l1"].gap[1, 2, :] = 1e-20 * np.exp(-np.arange(T) / 50)  # refutes at a long enough window (test above)
    short = 2 * MIN_SETTLE_HALF - 4  # halves of MIN_SETTLE_HALF - 2
    v = ncd.cycle_not_converge(trajs, window=short, c=0.1)
    assert v["holds"] is None and v["status"] == "inconclusive" and "too short" in v["reason"]
    assert ncd.cycle_not_converge(trajs, window=2 * MIN_SETTLE_HALF, c=0.1)["holds"] is False
