"""Each criterion on constructed data: once where it must hold, and where it must come out false."""

import numpy as np
import pandas as pd

import nslib

LRS = np.array([0.01, 0.1, 1.0])


def _cycle_inputs():
    S = 4
    late = {"abs": np.tile(LRS[:, None] / 2, (1, S)), "l1": np.tile(LRS[:, None] * 2.5, (1, S))}
    landed = {k: np.zeros((3, S), bool) for k in late}
    rises = {k: np.full((3, S), 50.0) for k in late}
    periods = {k: np.full((3, S), 2) for k in late}
    return late, landed, rises, periods


def test_cycle_not_converge_holds_on_cycles():
    late, landed, rises, periods = _cycle_inputs()
    assert nslib.cycle_not_converge(late, LRS, landed, rises, periods, c=0.1)["holds"] is True


def test_cycle_not_converge_fails_when_a_run_converges():
    late, landed, rises, periods = _cycle_inputs()
    late["l1"][1, 2] = 1e-20
    rises["l1"][1, 2] = 0.0
    v = nslib.cycle_not_converge(late, LRS, landed, rises, periods, c=0.1)
    assert v["holds"] is False and v["measured"]["per_group"]["l1"]["holds"] is False


def test_cycle_not_converge_fails_when_abs_gap_is_not_half_the_step():
    late, landed, rises, periods = _cycle_inputs()
    late["abs"] = late["abs"] * 1.01
    assert nslib.cycle_not_converge(late, LRS, landed, rises, periods, c=0.1)["holds"] is False


def test_kink_landings_are_set_apart_not_counted_as_convergence():
    late, landed, rises, periods = _cycle_inputs()
    late["l1"][0, 0], rises["l1"][0, 0], landed["l1"][0, 0] = 0.0, 0.0, True
    v = nslib.cycle_not_converge(late, LRS, landed, rises, periods, c=0.1)
    assert v["holds"] is True and v["measured"]["per_group"]["l1"]["kink_landings"] == 1


def test_gap_linear_in_step():
    good = {"abs": LRS / 2}
    assert nslib.gap_linear_in_step(LRS, good, {"abs": 50.0})["holds"] is True
    assert nslib.gap_linear_in_step(LRS, {"abs": LRS ** 2}, {"abs": 50.0})["holds"] is False
    assert nslib.gap_linear_in_step(LRS, good, {"abs": 2.0})["holds"] is False
    assert nslib.loglog_slope(LRS, 3 * LRS ** 1.5) == __import__("pytest").approx(1.5)


def _huber_inputs():
    d, lrs = 0.1, np.array([0.05, 0.1, 0.4, 0.8])
    late = np.zeros((4, 3))
    late[2:] = ((lrs[2:] - d) / 2)[:, None]
    qlrs = np.array([0.1, 0.3])
    qdiv = np.array([[False] * 3, [True] * 3])
    return lrs, late, d, qlrs, qdiv


def test_huber_criterion():
    lrs, late, d, qlrs, qdiv = _huber_inputs()
    assert nslib.huber_unstable_beyond_2_over_l(lrs, late, d, qlrs, qdiv, 10.0)["holds"] is True
    bad = late.copy()
    bad[3, 0] *= 1.2
    assert nslib.huber_unstable_beyond_2_over_l(lrs, bad, d, qlrs, qdiv, 10.0)["holds"] is False
    bad = late.copy()
    bad[0, 1] = 1e-3
    assert nslib.huber_unstable_beyond_2_over_l(lrs, bad, d, qlrs, qdiv, 10.0)["holds"] is False
    assert nslib.huber_unstable_beyond_2_over_l(lrs, late, d, qlrs, ~qdiv, 10.0)["holds"] is False


def _behaviour(rms_smooth: str):
    rows = []
    for opt, smooth_b in (("sgd", "converges"), ("rmsprop", rms_smooth)):
        for lr in (0.01, 0.1):
            rows += [{"optimizer": opt, "objective": "quadratic", "lr": lr, "behaviour": smooth_b},
                     {"optimizer": opt, "objective": "abs", "lr": lr, "behaviour": "stalls"}]
    return pd.DataFrame(rows)


def test_adaptive_optimizers_differ():
    pairs = [("quadratic", "abs")]
    v = nslib.adaptive_optimizers_differ(_behaviour("stalls"), pairs)
    assert v["holds"] is False and v["measured"]["per_group"]["sgd"]["holds"] is True
    assert nslib.adaptive_optimizers_differ(_behaviour("converges"), pairs)["holds"] is True


def test_not_yet_measured_never_holds():
    assert nslib.not_yet_measured("x")["holds"] is False


LAMS = [0.1, 0.3, 1.0, 2.0]


def test_ngdm_no_exact_zeros():
    exact = np.full((3, 4), 190)
    ok = {"subgradient": np.zeros((3, 4)), "adam": np.zeros((3, 4))}
    assert nslib.ngdm_no_exact_zeros(exact, ok, p=200, k=10, judged=("subgradient", "adam"))["holds"] is True
    bad = dict(ok, adam=np.full((3, 4), 5))
    assert nslib.ngdm_no_exact_zeros(exact, bad, p=200, k=10, judged=("subgradient", "adam"))["holds"] is False
    dense_exact = np.full((3, 4), 190)
    dense_exact[1, 2] = 0  # an exact solution without zeros breaks the contrast
    assert nslib.ngdm_no_exact_zeros(dense_exact, ok, p=200, k=10, judged=("subgradient", "adam"))["holds"] is False


def test_ngdm_l1_grows_with_lambda():
    exact = np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))
    rising = np.tile([10.0, 9.0, 12.0, 20.0], (3, 1))
    assert nslib.ngdm_l1_grows_with_lambda(LAMS, {"subgradient": rising}, exact)["holds"] is True
    assert nslib.ngdm_l1_grows_with_lambda(LAMS, {"subgradient": exact}, exact)["holds"] is False
    assert nslib.ngdm_l1_grows_with_lambda(LAMS, {"subgradient": rising}, rising)["holds"] is False


def test_objective_gap_grows():
    grow = np.tile([0.1, 0.3, 1.0, 4.0], (5, 1))
    assert nslib.objective_gap_grows(LAMS, {"subgradient": grow})["holds"] is True
    flat = np.tile([0.1, 0.12, 0.15, 0.18], (5, 1))  # increasing but by less than 2x
    assert nslib.objective_gap_grows(LAMS, {"subgradient": flat})["holds"] is False


def test_prox_recovers_support():
    assert nslib.prox_recovers_support(np.ones((5, 4)))["holds"] is True
    j = np.ones((5, 4))
    j[:2, 1] = 0.9
    assert nslib.prox_recovers_support(j)["holds"] is False


def test_pruning_threshold_worse():
    assert nslib.pruning_threshold_worse([0.5, 0.6, 0.7], [0.6, 0.7, 0.8])["holds"] is True
    assert nslib.pruning_threshold_worse([0.6, 0.7, 0.8], [0.6, 0.7, 0.8])["holds"] is False


def test_single_sample_clarke():
    inside = {0.0: np.zeros(5), 1.0: np.zeros(5)}
    assert nslib.single_sample_clarke(inside, np.array([0, 0.5, 0, 0, 0]))["holds"] is True
    assert nslib.single_sample_clarke(inside, np.zeros(5))["holds"] is False  # control never outside
    bad = {**inside, 0.5: np.array([0, 0, 1e-3, 0, 0])}
    assert nslib.single_sample_clarke(bad, np.array([0, 0.5, 0, 0, 0]))["holds"] is False


def test_batch_needs_agnostic_choice():
    ag = {0.0: np.zeros(3), 1.0: np.zeros(3)}
    assert nslib.batch_needs_agnostic_choice(ag, np.array([0, -2.0, 0]))["holds"] is True
    assert nslib.batch_needs_agnostic_choice(ag, np.zeros(3))["holds"] is False
    assert nslib.batch_needs_agnostic_choice({0.0: np.array([0, 1e-3, 0])}, np.array([0, -2.0, 0]))["holds"] is False


def test_kakade_lee_counterexample():
    assert nslib.kakade_lee_counterexample(0.0, [[1.0]])["holds"] is True
    assert nslib.kakade_lee_counterexample(1.0, [[1.0]])["holds"] is False
    assert nslib.kakade_lee_counterexample(0.0, [[0.0], [1.0]])["holds"] is False
