"""The criteria of nonsmooth-convex-dynamics on constructed trajectories: where they must hold, come out
false, or (preconditions failing) be inconclusive."""

import numpy as np
import pandas as pd
import pytest

from nslib.findings import nonsmooth_convex_dynamics as ncd
from nslib.tools.dynamics import StepSizeRuns
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

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
    assert v.state == HOLDS and set(v.groups) == {"abs", "l1"} and v.groups["abs"].measured["period_mode"] == 2
    assert v.groups["abs"].measured["abs_max_rel_dev_from_lr_over_2"] < 1e-12
    assert v.groups["l1"].measured["min_gap_over_lr"] == pytest.approx(2.5) and v.groups["l1"].measured["runs"] == 12


def test_cycle_not_converge_fails_when_a_run_converges():
    trajs = cycles()
    trajs["l1"].gap[1, 2, :] = 1e-20 * np.exp(-np.arange(T) / 50)
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v.state == DOES_NOT_HOLD and v.groups["l1"].state == DOES_NOT_HOLD and v.groups["abs"].state == HOLDS
    assert v.groups["l1"].measured["fraction_not_converged"] == pytest.approx(11 / 12)


def test_cycle_not_converge_fails_when_abs_gap_is_not_half_the_step():
    trajs = cycles()
    trajs["abs"].gap[...] *= 1.01
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v.state == DOES_NOT_HOLD and v.groups["abs"].state == DOES_NOT_HOLD
    assert v.groups["abs"].measured["abs_max_rel_dev_from_lr_over_2"] == pytest.approx(0.01)


def test_kink_landings_are_set_apart_not_counted_as_convergence():
    trajs = cycles()
    trajs["l1"].gap[0, 0, 200:] = 0.0
    trajs["l1"].kink_landing_at[0, 0] = 200
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v.state == HOLDS and v.groups["l1"].measured["kink_landings"] == 1
    # every run landing on a kink leaves nothing to judge: inconclusive, never holds
    trajs["abs"].kink_landing_at[...] = 200
    v = ncd.cycle_not_converge(trajs, window=100, c=0.1)
    assert v.state == INCONCLUSIVE and v.reason == "abs: every run landed exactly on a kink"


def test_gap_linear_in_step():
    good = {"abs": cycling("abs", LRS, LRS / 2)}
    dimin = {"abs": cycling("abs", [1.0], [0.01], "invsqrt")}
    v = ncd.gap_linear_in_step(good, dimin, 100)
    assert v.state == HOLDS and v.groups["abs"].measured["slope"] == pytest.approx(1.0) and v.measured["lr0"] == 1.0
    assert v.groups["abs"].measured["constant_over_diminishing_gap"] == pytest.approx(50.0)
    quadratic_rate = {"abs": cycling("abs", LRS, LRS ** 2)}
    v = ncd.gap_linear_in_step(quadratic_rate, dimin, 100)
    assert v.state == DOES_NOT_HOLD and v.groups["abs"].measured["slope"] == pytest.approx(2.0)
    weak = {"abs": cycling("abs", [1.0], [0.25], "invsqrt")}  # only 2x smaller than lr0/2
    v = ncd.gap_linear_in_step(good, weak, 100)
    assert v.state == DOES_NOT_HOLD and v.groups["abs"].measured["constant_over_diminishing_gap"] == pytest.approx(2.0)


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


def _counter_summary(exact_gap: float, reached: int):
    """Rows of the flat-bottomed functions: at each of two lrs, 4 runs, ``reached`` of them at f* exactly with a late
    gap ``exact_gap`` (0: they stayed), the others with a late gap of lr."""
    rows = []
    for o in ncd.COUNTEREXAMPLES:
        for lr in (0.1, 1.0):
            for s in range(4):
                hit = s < reached
                rows.append({"objective": o, "lr": lr, "start": s, "late_gap": exact_gap if hit else lr,
                             "exact_min_at": 10 if hit else -1, "kink_landing_at": -1})
    return pd.DataFrame(rows)


def test_all_convex_nonsmooth_unstable_is_refuted_by_a_flat_bottom_that_converges():
    cycle = ncd.cycle_not_converge(cycles(), 100, c=0.1)
    assert cycle.state == HOLDS
    v = ncd.all_convex_nonsmooth_unstable(cycle, _counter_summary(0.0, 4), c=0.1)
    assert v.state == DOES_NOT_HOLD and v.groups["hinge"].state == DOES_NOT_HOLD
    assert v.groups["abs"].state == HOLDS and v.groups["hinge"].measured["lrs_all_runs_exact"] == [0.1, 1.0]
    v = ncd.all_convex_nonsmooth_unstable(cycle, _counter_summary(0.0, 0), c=0.1)  # none converges: all unstable
    assert v.state == HOLDS
    v = ncd.all_convex_nonsmooth_unstable(cycle, _counter_summary(0.0, 2), c=0.1)  # half of them: not yet decided
    assert v.state == INCONCLUSIVE and "2 of 4 runs" not in v.reason and "4 of 8 runs" in v.reason


def test_eos_lipschitz_convex_differentiable():
    huber, _ = huber_runs()
    v = ncd.eos_lipschitz_convex_differentiable(huber, 100, huber_width=0.1, c=0.1)
    assert v.state == HOLDS and v.measured["lrs_above"] == [0.4, 0.8]
    assert v.measured["min_gap_over_lr_above"] == pytest.approx(0.375)
    huber.gap[3, 0] = 1e-12 * (1 + 0.1 * (np.arange(huber.gap.shape[-1]) % 2))  # one run beyond 2d converges
    v = ncd.eos_lipschitz_convex_differentiable(huber, 100, huber_width=0.1, c=0.1)
    assert v.state == DOES_NOT_HOLD
    huber, _ = huber_runs()
    v = ncd.eos_lipschitz_convex_differentiable(huber, 100, huber_width=1.0, c=0.1)  # no lr above 2d = 2
    assert v.state == INCONCLUSIVE and "no Huber step size lies above" in v.reason
    huber.gap[2, 1] *= np.linspace(3, 1, huber.gap.shape[-1])  # still falling at lr 0.4
    v = ncd.eos_lipschitz_convex_differentiable(huber, 100, huber_width=0.1, c=0.1)
    assert v.state == INCONCLUSIVE and "not settled" in v.reason


def test_huber_criterion():
    huber, quad = huber_runs()
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v.state == HOLDS and v.measured["max_rel_dev_above"] < 1e-12 and v.measured["lrs_above_2d"] == [0.4, 0.8]
    huber.gap[3, 0] *= 1.2
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v.state == DOES_NOT_HOLD and v.measured["max_rel_dev_above"] == pytest.approx(0.2)
    huber, quad = huber_runs()
    huber.gap[0, 1] = 1e-3
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v.state == DOES_NOT_HOLD and v.measured["huber_below_ok"] is False
    huber, quad = huber_runs()
    quad.gap[1] = 1e-3  # the quadratic beyond 2/L does not diverge
    quad.diverged_at[1] = -1
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v.state == DOES_NOT_HOLD and v.measured["quad_fraction_diverged_above"] == 0.0


def _behaviour(rms_smooth: str, smooth_power: float = 1.0):
    """SGD converges on the quadratic and stalls on |x|; RMSProp is ``rms_smooth`` on the quadratic, with a late gap
    ~ lr^``smooth_power`` there, and stalls on |x| with a late gap lr / 2."""
    rows = []
    for opt, smooth_b in (("sgd", "converges"), ("rmsprop", rms_smooth)):
        for lr in (0.01, 0.1):
            rows += [{"optimizer": opt, "objective": "quadratic", "lr": lr, "behaviour": smooth_b,
                      "median_late_gap": 1e-20 if smooth_b == "converges" else 1.25 * lr ** smooth_power},
                     {"optimizer": opt, "objective": "abs", "lr": lr, "behaviour": "stalls", "median_late_gap": lr / 2}]
    return pd.DataFrame(rows)


def test_adaptive_optimizers_differ():
    pairs = [("quadratic", "abs")]
    v = ncd.adaptive_optimizers_differ(_behaviour("stalls"), pairs)  # same class, same scaling in lr
    assert v.state == DOES_NOT_HOLD and set(v.groups) == {"rmsprop"} and set(v.reported) == {"sgd"}
    # sgd differs in every case: reported as holding, never combined into the claim about rmsprop
    assert v.reported["sgd"].state == HOLDS and v.reported["sgd"].measured["fraction_differs_min"] == 1.0
    assert v.groups["rmsprop"].measured["fraction_differs_max"] == 0.0 and v.groups["rmsprop"].measured["cases"] == 1
    assert v.groups["rmsprop"].measured["compared"][0] == "quadratic vs abs at lr=0.01: stalls / stalls"
    assert v.groups["rmsprop"].measured["pairs"] == ["quadratic vs abs: same class, same scaling (lr^1.00 vs lr^1.00)"]
    v = ncd.adaptive_optimizers_differ(_behaviour("converges"), pairs)
    assert v.state == HOLDS and v.groups["rmsprop"].measured["fraction_differs_min"] == 1.0
    table = ncd.adaptive_table(v)
    assert list(table.index) == ["rmsprop", "sgd"] and table.loc["rmsprop", "share of twin pairs that differ"] == "100%"
    assert table.loc["sgd", "judged"] == False  # noqa: E712 (a numpy bool)


def test_adaptive_optimizers_differ_by_the_scaling_of_the_stall():
    """RMSProp stalls on both twins (same class), but its late gap scales as lr^2 on the smooth one and lr on |x|:
    that is behaving differently, and the verdict says so (the page's prose and the verdict agree)."""
    v = ncd.adaptive_optimizers_differ(_behaviour("stalls", smooth_power=2.0), [("quadratic", "abs")])
    assert v.state == HOLDS
    assert v.groups["rmsprop"].measured["pairs"] == ["quadratic vs abs: both stall, late gap ~ lr^2.00 vs lr^1.00"]
    # a gap of 0.4 in the slopes is below the half-way line between 1 and 2: the same scaling
    v = ncd.adaptive_optimizers_differ(_behaviour("stalls", smooth_power=1.4), [("quadratic", "abs")])
    assert v.state == DOES_NOT_HOLD
    # one stalling step on the smooth side: the scaling cannot be compared, and the classes agree: open
    beh = _behaviour("stalls", smooth_power=2.0)
    beh = beh[~((beh.optimizer == "rmsprop") & (beh.objective == "quadratic") & (beh.lr == 0.1))]
    v = ncd.adaptive_optimizers_differ(beh, [("quadratic", "abs")])
    assert v.state == INCONCLUSIVE and "too few stalling steps" in v.reason


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
    assert v.holds is None and v.state == INCONCLUSIVE and v.groups["abs"].state == HOLDS
    assert v.reason.startswith("l1: the late window has not settled") and "at lr=0.01 (1 start):" in v.reason
    assert v.groups["l1"].measured["unsettled"] == 1 and v.groups["l1"].measured["unsettled_lrs"] == [0.01]


def test_gap_linear_in_step_is_the_same_for_a_reversed_list():
    rev = LRS[::-1].copy()
    dimin = {"abs": cycling("abs", [1.0], [0.01], "invsqrt")}
    up = ncd.gap_linear_in_step({"abs": cycling("abs", LRS, LRS / 2)}, dimin, 100)
    down = ncd.gap_linear_in_step({"abs": cycling("abs", rev, rev / 2)}, dimin, 100)
    assert up.state == HOLDS and down.state == HOLDS
    assert up.groups["abs"].measured["constant_over_diminishing_gap"] == pytest.approx(
        down.groups["abs"].measured["constant_over_diminishing_gap"])
    wrong_start = {"abs": cycling("abs", [0.01], [0.0001], "invsqrt")}
    v = ncd.gap_linear_in_step({"abs": cycling("abs", LRS, LRS / 2)}, wrong_start, 100)
    assert v.state == INCONCLUSIVE and "lr0 = 0.01" in v.reason
    unsettled = {"abs": cycling("abs", LRS, LRS / 2)}
    unsettled["abs"].gap[2, 0, :] = np.linspace(2.0, 0.5, T)
    v = ncd.gap_linear_in_step(unsettled, dimin, 100)
    assert v.state == INCONCLUSIVE and v.reason.startswith("abs: the late window has not settled")
    one = ncd.gap_linear_in_step({"abs": cycling("abs", [1.0, 1.0], [0.5, 0.5])}, dimin, 100)
    assert one.state == INCONCLUSIVE and "two distinct step sizes" in one.reason and one.measured["lrs"] == [1.0, 1.0]


def test_huber_grid_that_misses_2d_is_inconclusive():
    huber, quad = huber_runs()
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.5, curvature=10.0)  # 2d = 1: every lr below
    assert v.state == INCONCLUSIVE and "straddle 2d = 1" in v.reason and v.measured["lrs_above_2d"] == []
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1,
                                           curvature=1.0)  # 2/L = 2: both quadratic lrs below
    assert v.state == INCONCLUSIVE and "2/L = 2" in v.reason and v.measured["quad_lrs_below"] == [0.1, 0.3]


def test_a_claim_about_an_optimizer_not_run_is_inconclusive():
    beh = _behaviour("stalls")
    v = ncd.adaptive_optimizers_differ(beh[beh.optimizer == "sgd"], [("quadratic", "abs")])
    assert v.state == INCONCLUSIVE and v.reason == "rmsprop: was not run (optimizers run: sgd)"
    assert v.reported["sgd"].state == HOLDS  # what was run is still shown


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
    assert v.state == DOES_NOT_HOLD and v.holds is False
    assert v.groups["abs"].state == DOES_NOT_HOLD and v.groups["l1"].state == INCONCLUSIVE


def test_huber_below_2d_that_has_not_converged_yet_is_inconclusive():
    huber, quad = huber_runs()
    huber.gap[0, 0, :] = 1e-3 * np.exp(-np.arange(T) / 100)  # still shrinking below 2d: not decided
    v = ncd.huber_unstable_beyond_2_over_l(huber, quad, 100, huber_width=0.1, curvature=10.0)
    assert v.state == INCONCLUSIVE and "Huber: the late window has not settled" in v.reason
    assert "lr=0.05 (1 start)" in v.reason and v.measured["unsettled_runs"] == 1


def test_a_quadratic_too_close_to_2_over_l_to_blow_up_is_inconclusive():
    huber, quad = huber_runs()
    near = cycling("quadratic", [0.1, 0.2001], [1e-30, 1.0])  # |1 - lr L| = 1.001: 1.001^798 is about 2
    v = ncd.huber_unstable_beyond_2_over_l(huber, near, 100, huber_width=0.1, curvature=10.0)
    assert v.state == INCONCLUSIVE and "too close to 2/L" in v.reason and "0.2001" in v.reason


def test_unsettled_twin_cases_bound_the_fraction():
    beh = _behaviour("stalls")  # rmsprop: same class and scaling on the pair
    beh.loc[(beh.optimizer == "rmsprop") & (beh.objective == "abs") & (beh.lr == 0.01), "behaviour"] = "unsettled"
    v = ncd.adaptive_optimizers_differ(beh, [("quadratic", "abs")])
    assert v.state == INCONCLUSIVE and v.reason.startswith("rmsprop: 1 of 1 twin pairs are open")
    assert "1 of 2 steps have not settled" in v.reason and v.groups["rmsprop"].measured["unsettled_cases"] == 1
    assert ncd.adaptive_table(v).loc["rmsprop", "share of twin pairs that differ"] == "0% to 100%"
    pairs = [("quadratic", "abs"), ("huber", "abs2")]
    beh2 = pd.concat([beh, beh[beh.objective == "quadratic"].assign(objective="huber", behaviour="stalls"),
                      beh[beh.objective == "abs"].assign(objective="abs2", behaviour="stalls")])
    v = ncd.adaptive_optimizers_differ(beh2, pairs, min_fraction=0.6)
    assert v.state == DOES_NOT_HOLD  # huber: same; even if the open pair differed, 1 of 2 pairs < 60%


def test_a_too_short_window_never_refutes():
    """``-p steps 10 -p window 4`` gave 'does not hold' from halves of 2 steps: a window whose halves hold fewer than
    MIN_SETTLE_HALF iterates judges nothing, so a run that converged there is not evidence either way."""
    from nslib.tools.dynamics import MIN_SETTLE_HALF

    trajs = cycles()
    trajs["l1"].gap[1, 2, :] = 1e-20 * np.exp(-np.arange(T) / 50)  # refutes at a long enough window (test above)
    short = 2 * MIN_SETTLE_HALF - 4  # halves of MIN_SETTLE_HALF - 2
    v = ncd.cycle_not_converge(trajs, window=short, c=0.1)
    assert v.holds is None and v.state == INCONCLUSIVE and "too short" in v.reason and v.measured["window"] == short
    assert ncd.cycle_not_converge(trajs, window=2 * MIN_SETTLE_HALF, c=0.1).state == DOES_NOT_HOLD
    dimin = {n: cycling(n, [1.0], [0.01], "invsqrt") for n in trajs}
    assert "too short" in ncd.gap_linear_in_step(trajs, dimin, short).reason


def test_a_settled_objective_off_the_slope_decides_beside_an_unsettled_one():
    """The one per-group rule: an objective whose settled runs give a slope of 2 refutes "linear in the step",
    whatever an unsettled objective would have shown."""
    dimin = {n: cycling(n, [1.0], [0.01], "invsqrt") for n in ("abs", "l1")}
    trajs = {"abs": cycling("abs", LRS, LRS ** 2), "l1": cycling("l1", LRS, LRS / 2)}
    trajs["l1"].gap[0, 1, :] = np.linspace(1.0, 0.01, T)  # unsettled
    v = ncd.gap_linear_in_step(trajs, dimin, 100)
    assert v.state == DOES_NOT_HOLD and v.groups["abs"].state == DOES_NOT_HOLD
    assert v.groups["l1"].state == INCONCLUSIVE


def _summary(rises=25.0, reached=True):
    rows = [{"objective": o, "lr": 0.1, "start": 0, "late_gap": 0.05, "period": 2, "rises_per_100": rises,
             "kink_landing_at": -1, "exact_min_at": 10 if reached else -1} for o in ncd.NONSMOOTH + ncd.COUNTEREXAMPLES]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("state", [HOLDS, DOES_NOT_HOLD, INCONCLUSIVE])
def test_page_texts_read_whole_in_every_state(state):
    trajs = cycles()
    dimin = {n: cycling(n, [1.0], [0.01], "invsqrt") for n in trajs}
    huber, quad = huber_runs()
    beh = _behaviour("converges")
    if state == DOES_NOT_HOLD:
        trajs["abs"].gap[...] *= 1.01
        beh = _behaviour("stalls")
    window = 100 if state != INCONCLUSIVE else 8  # too short a window: nothing can be judged
    verdicts = {"cycle-not-converge": ncd.cycle_not_converge(trajs, window, c=0.1),
                "gap-linear-in-step": ncd.gap_linear_in_step(trajs, dimin, window),
                "huber-unstable-beyond-2-over-l": ncd.huber_unstable_beyond_2_over_l(
                    huber, quad, window, huber_width=0.1, curvature=10.0),
                "adaptive-optimizers-differ": ncd.adaptive_optimizers_differ(
                    beh if state != INCONCLUSIVE else beh[beh.optimizer == "sgd"], [("quadratic", "abs")])}
    verdicts["all-convex-nonsmooth-unstable"] = ncd.all_convex_nonsmooth_unstable(
        verdicts["cycle-not-converge"], _counter_summary(0.0, {HOLDS: 0, DOES_NOT_HOLD: 4, INCONCLUSIVE: 2}[state]),
        c=0.1)
    verdicts["eos-lipschitz-convex-differentiable"] = ncd.eos_lipschitz_convex_differentiable(
        huber, window, huber_width=0.1, c=0.1)
    assert {v.state for v in verdicts.values()} <= {state, HOLDS}
    twins = pd.DataFrame({"optimizer": ["rmsprop"] * 3 + ["sgd"]})
    texts = ncd.page_texts(verdicts, summary=_summary(rises=25.0 if state == HOLDS else 0.0,
                                                      reached=state == HOLDS),
                           landings={"rmsprop/abs": 1}, twins=twins, dim=1, steps=4000)
    for key, text in texts.items():
        assert text and not any(bad in text for bad in ("n/a", "nan", "None", "  ", " ;", " .")), (key, text)
    assert texts["rms-landings"] == "here 1 of its 3 runs did" and texts["steps"] == "4,000" and texts["dim"] == "2"
    if state == HOLDS:
        assert texts["abs"].startswith("for |x| the late gap is η/2 within a relative")
        assert texts["slopes"] == "log-log slopes abs 1.000, l1 1.000"
        assert texts["adaptive"] == "rmsprop 100%, sgd 100% (reported)"
        assert texts["hinge-oscillation"].startswith("its loss still rises in 25 of every 100")
        assert texts["counter"].startswith("every run") and texts["counter-all"] == "every"
    elif state == INCONCLUSIVE:
        assert texts["abs"] == "no settled run on |x| was judged" and texts["slopes"] == "no slope was computed"
        assert texts["huber"] == "no deviation from (η - d)/2 was measured"
        assert texts["adaptive"] == "sgd 100% (reported)"
    else:
        assert texts["counter"].startswith("not every run") and "stopped oscillating" in texts["hinge-oscillation"]
        # abs (kinked) converged by the gap test and the flat-bottomed ones reached f* exactly: each said as it is
        assert texts["v1"].startswith("does not hold as worded: hinge, dead-zone reached f = f* exactly and stayed "
                                      "there at some constant step; on abs ")
        assert texts["v1"].endswith("and the narrower reading (cycle-not-converge) fails with it")


def test_v1_text_names_how_each_refuting_function_converged():
    from nslib.verdicts import Verdict

    flat_only = Verdict.combine({"abs": Verdict.from_state(True), "hinge": Verdict.from_state(False)}, "c")
    text = ncd._v1_text(flat_only)
    assert text.startswith("does not hold as worded: hinge reached f = f* exactly and stayed there")
    assert text.endswith("not the narrower reading (functions non-differentiable at their minimiser) judged next")
    assert ncd._v1_text(Verdict.combine({"abs": Verdict.from_state(True)}, "c")).startswith("holds on every")
    assert ncd._v1_text(None) == "was not judged in this run"


def test_v1_text_says_which_part_of_the_cycle_test_a_kinked_function_failed():
    from nslib.verdicts import Verdict

    converged = Verdict.from_state(False, fraction_not_converged=0.5, fraction_oscillating=1.0)
    missed = Verdict.from_state(False, fraction_not_converged=1.0, fraction_oscillating=1.0,
                                abs_max_rel_dev_from_lr_over_2=0.01)
    text = ncd._v1_text(Verdict.combine({"l1": converged, "abs": missed}, "c"))
    assert text == ("does not hold as worded: on l1 a settled run converged; on abs its late gap missed eta/2. This "
                    "refutes the universal wording of the paper's own claim, and the narrower reading "
                    "(cycle-not-converge) fails with it")
