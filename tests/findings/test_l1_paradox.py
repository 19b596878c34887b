import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import Lasso

from nslib.findings import l1_paradox as l1
from nslib.findings.l1_paradox import exact_lasso, fista, lasso_kkt_violation, lasso_objective, make_problems, run_ngdm
from nslib.tools.data import load
from nslib.tools.sparsity import sparsity
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE


@pytest.fixture(scope="module")
def prob():
    return make_problems(40, 60, 5, 0.5, [0, 1], [0.05, 0.2, 1.0])


def test_exact_reference_satisfies_kkt_to_1e_8(prob):
    W, viol = exact_lasso(prob)
    assert viol.max() <= 1e-8
    # recompute independently in numpy for one case
    X, y = prob.X[1].numpy(), prob.y[1].numpy()
    g = X.T @ (y - X @ W[1, 1]) / len(y)
    on = W[1, 1] != 0
    assert np.abs(g[on] - 0.2 * np.sign(W[1, 1][on])).max() <= 1e-8 and np.abs(g[~on]).max() <= 0.2 + 1e-8


def test_kkt_check_detects_a_wrong_solution(prob):
    W, _ = exact_lasso(prob)
    X, y = prob.X[0].numpy(), prob.y[0].numpy()
    assert lasso_kkt_violation(X, y, W[0, 1] * 1.01, 0.2) > 1e-4


LAM = torch.tensor([0.3], dtype=torch.float64)


def test_objective_is_sklearn_lasso_with_alpha_lambda(prob):
    X, y = prob.X[0].numpy(), prob.y[0].numpy()
    w = np.random.default_rng(0).normal(size=60)
    F = lasso_objective(prob.X[:1], prob.y[:1], torch.tensor(w)[None, None, :], LAM)
    direct = np.sum((y - X @ w) ** 2) / (2 * len(y)) + 0.3 * np.abs(w).sum()
    assert float(F) == pytest.approx(direct, rel=1e-12)
    # and sklearn's minimiser of alpha = 0.3 minimises it: perturbations only increase F
    m = Lasso(alpha=0.3, fit_intercept=False, tol=1e-12, max_iter=10**6).fit(X, y)
    F0 = float(lasso_objective(prob.X[:1], prob.y[:1], torch.tensor(m.coef_)[None, None, :], LAM))
    for _ in range(5):
        d = 1e-3 * np.random.default_rng(_).normal(size=60)
        Fd = float(lasso_objective(prob.X[:1], prob.y[:1], torch.tensor(m.coef_ + d)[None, None, :],
                                   LAM))
        assert Fd >= F0


def test_fista_matches_the_exact_solution(prob):
    W, _ = exact_lasso(prob)
    Wf = fista(prob, 3000)
    np.testing.assert_allclose(Wf, W, atol=1e-6)
    assert l1.support_jaccard(Wf, W).min() == 1.0


@pytest.mark.parametrize("method", l1.NGDM_METHODS)
def test_every_solver_runs_and_lowers_the_objective(prob, method):
    r = run_ngdm(prob, method, steps=300, window=50)
    assert r.W.shape == (2, 3, 60) and not r.diverged.any()
    F = lasso_objective(prob.X, prob.y, torch.tensor(r.W), prob.lams)
    F0 = lasso_objective(prob.X, prob.y, torch.zeros(2, 3, 60, dtype=torch.float64), prob.lams)
    # at the smallest lambda every solver must improve on w = 0 (at large lambda w = 0 is nearly optimal and
    # a constant-step subgradient iterate can end above it, which is part of the finding)
    assert (F[:, 0] < F0[:, 0]).all()


def test_prox_sgd_produces_exact_zeros_and_subgradient_none(prob):
    prox = run_ngdm(prob, "prox-sgd", steps=300, window=50)
    sub = run_ngdm(prob, "subgradient", steps=300, window=50)
    assert (prox.W == 0).sum() > 0 and (sub.W == 0).sum() == 0


def test_unknown_method_and_bad_k():
    with pytest.raises(ValueError, match="method"):
        run_ngdm(make_problems(10, 5, 2, 0.1, [0], [0.1]), "lbfgs", steps=10)
    with pytest.raises(ValueError, match="k"):
        make_problems(10, 5, 6, 0.1, [0], [0.1])


def test_prox_training_gives_exact_zeros_and_curve_area():
    data = load("digits", seed=0, n_train=200)
    net = l1.train_l1_mlp(data, 0.01, "prox", hidden=8, epochs=3, lr=0.1, batch_size=32, seed=0)
    assert sparsity(net) > 0
    with pytest.raises(ValueError, match="method"):
        l1.train_l1_mlp(data, 0.01, "magic", hidden=8, epochs=1, lr=0.1, batch_size=32, seed=0)


# ------------------------------------------------------------------------------------- criteria on constructed data

LAMS = [0.1, 0.3, 1.0, 2.0]


def table(columns: dict, seeds=3):
    """A solution table: ``columns[method][name]`` is a (seed, lambda) array or a scalar."""
    rows = []
    for m, cols in columns.items():
        for s in range(seeds):
            for j, lam in enumerate(LAMS):
                rows.append({"method": m, "seed": s, "lambda": lam,
                             **{c: (np.asarray(v, float)[s, j] if np.ndim(v) else v) for c, v in cols.items()}})
    return pd.DataFrame(rows)


def test_ngdm_no_exact_zeros():
    exact = {"zeros": np.full((3, 4), 190)}
    ok = table({"exact": exact, "subgradient": {"zeros": 0}, "adam": {"zeros": 0}, "prox-sgd": {"zeros": 150}})
    v = l1.ngdm_no_exact_zeros(ok, p=200, k=10, judged=("subgradient", "adam"))
    assert v.state == HOLDS and set(v.groups) == {"subgradient", "adam", "exact"}
    assert v.groups["adam"].measured["fraction_runs_without_zeros"] == 1.0
    assert v.groups["exact"].measured["min_zeros"] == 190 and v.measured["p_minus_k"] == 190
    # a solver the claim does not judge is measured by the same test and reported, never combined
    assert set(v.reported) == {"prox-sgd"} and v.reported["prox-sgd"].state == DOES_NOT_HOLD
    assert v.reported["prox-sgd"].measured["median_zeros"] == 150.0
    bad = table({"exact": exact, "subgradient": {"zeros": 0}, "adam": {"zeros": 5}})
    v = l1.ngdm_no_exact_zeros(bad, p=200, k=10, judged=("subgradient", "adam"))
    assert v.state == DOES_NOT_HOLD and v.groups["adam"].state == DOES_NOT_HOLD
    assert v.groups["subgradient"].state == HOLDS and "adam" in v.reading()
    dense = np.full((3, 4), 190)
    dense[1, 2] = 0  # an exact solution without zeros breaks the contrast
    t = table({"exact": {"zeros": dense}, "subgradient": {"zeros": 0}, "adam": {"zeros": 0}})
    v = l1.ngdm_no_exact_zeros(t, p=200, k=10, judged=("subgradient", "adam"))
    assert v.state == INCONCLUSIVE and v.groups["exact"].state == INCONCLUSIVE  # a failed premise, not a refutation
    assert v.groups["exact"].measured["fraction_runs_without_zeros"] == pytest.approx(1 / 12)


def test_ngdm_l1_grows_with_lambda():
    exact = np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))
    rising = np.tile([10.0, 9.0, 12.0, 20.0], (3, 1))
    ok = table({"exact": {"l1": exact}, "subgradient": {"l1": rising}, "adam": {"l1": exact}})
    v = l1.ngdm_l1_grows_with_lambda(ok, lambda_star=0.3)
    assert v.state == HOLDS and v.measured["lambda_star_measured"] == 0.3
    assert v.measured["lams_past_lambda_star"] == [0.3, 1.0, 2.0]
    assert set(v.groups) == {"subgradient", "exact"} and v.groups["subgradient"].measured[
        "fraction_seeds_increasing"] == 1.0
    # only the claim's method is judged: adam's falling norm is reported beside it
    assert set(v.reported) == {"adam"} and v.reported["adam"].state == DOES_NOT_HOLD
    assert l1.rising_solvers(v) == ["subgradient"]
    falling = table({"exact": {"l1": exact}, "subgradient": {"l1": exact}})
    v = l1.ngdm_l1_grows_with_lambda(falling, lambda_star=0.3)
    assert v.state == DOES_NOT_HOLD and v.groups["subgradient"].state == DOES_NOT_HOLD
    assert v.groups["subgradient"].measured["median_spearman"] == -1.0 and l1.rising_solvers(v) == []
    flat_exact = table({"exact": {"l1": rising}, "subgradient": {"l1": rising}})
    v = l1.ngdm_l1_grows_with_lambda(flat_exact, lambda_star=0.3)
    assert v.state == INCONCLUSIVE and v.groups["exact"].state == INCONCLUSIVE  # a failed premise, not a refutation
    assert v.groups["subgradient"].state == HOLDS and v.groups["exact"].measured["largest_change"] == 8.0


def test_ngdm_l1_grows_is_inconclusive_when_the_grid_stops_before_lambda_star():
    exact = np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))
    rising = np.tile([10.0, 9.0, 12.0, 20.0], (3, 1))
    v = l1.ngdm_l1_grows_with_lambda(table({"exact": {"l1": exact}, "subgradient": {"l1": rising}}), lambda_star=1.0)
    assert v.state == INCONCLUSIVE and v.holds is None and "lambda*" in v.reason
    assert v.groups["subgradient"].state == INCONCLUSIVE and v.groups["exact"].state == HOLDS


def test_predicted_crossover_from_the_exact_path():
    # one seed, p = 4: the exact norm falls 3, 2, 1, 0 with 1, 2, 3, 4 zero coordinates; lr = 1
    W = np.zeros((1, 4, 4))
    for j in range(4):
        W[0, j, : 3 - j] = 1.0
    lams = [0.5, 1.0, 2.0, 4.0]
    pred = l1.predicted_l1(W, lams, lr=1.0)
    np.testing.assert_allclose(pred[0], [3 + 0.25, 2 + 1.0, 1 + 3.0, 0 + 8.0])
    assert l1.crossover(lams, pred) == 1.0


def test_a_diverged_or_missing_solver_makes_its_claims_inconclusive():
    zeros_ok = {"exact": {"zeros": np.full((3, 4), 190)}, "subgradient": {"zeros": 0}}
    t = table({**zeros_ok, "sgd": {"zeros": 0}})
    t["diverged"] = (t.method == "sgd") & (t["lambda"] == 2.0)
    v = l1.ngdm_no_exact_zeros(t, p=200, k=10, judged=("subgradient", "sgd"))
    assert v.state == INCONCLUSIVE and "sgd: diverged at lambda 2" in v.reason
    assert v.groups["sgd"].state == INCONCLUSIVE and v.groups["subgradient"].state == HOLDS
    v = l1.ngdm_no_exact_zeros(table(zeros_ok), p=200, k=10, judged=("subgradient", "adam"))
    assert v.state == INCONCLUSIVE and "adam: was not run" in v.reason
    # a judged solver that does not hold decides the claim, whatever a diverged one would have done
    t = table({**zeros_ok, "sgd": {"zeros": 0}, "adam": {"zeros": 3}})
    t["diverged"] = t.method == "sgd"
    assert l1.ngdm_no_exact_zeros(t, p=200, k=10, judged=("subgradient", "sgd", "adam")).state == DOES_NOT_HOLD
    grow = np.tile([0.1, 0.3, 1.0, 4.0], (3, 1))
    t = table({"exact": {"gap": 0.0}, "subgradient": {"gap": grow}})
    t["diverged"] = t.method == "subgradient"
    v = l1.objective_gap_grows(t)
    assert v.state == INCONCLUSIVE and "subgradient: diverged" in v.reason
    v = l1.objective_gap_grows(t, claim_method="sgd")
    assert v.state == INCONCLUSIVE and "sgd: was not run" in v.reason
    assert v.reported["subgradient"].state == INCONCLUSIVE  # the diverged solver, reported
    l1_table = table({"exact": {"l1": np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))}, "subgradient": {"l1": 1.0}})
    v = l1.ngdm_l1_grows_with_lambda(l1_table, lambda_star=0.3, claim_method="sgd")
    assert v.state == INCONCLUSIVE and "sgd: was not run" in v.reason and v.measured["lambda_star_measured"] is None


def test_run_ngdm_reports_divergence_as_a_result():
    prob = make_problems(20, 10, 2, 0.1, [0], [0.1])
    run = run_ngdm(prob, "sgd", steps=300, lr_scale=20.0, batch_size=2, window=50)
    assert run.diverged.all()
    assert not run_ngdm(prob, "subgradient", steps=300, lr_scale=0.5, window=50).diverged.any()


def test_objective_gap_grows():
    grow = np.tile([0.1, 0.3, 1.0, 4.0], (5, 1))
    flat = np.tile([0.1, 0.12, 0.15, 0.18], (5, 1))  # increasing but by less than 2x
    v = l1.objective_gap_grows(table({"exact": {"gap": 0.0}, "subgradient": {"gap": grow}, "adam": {"gap": flat}}, 5))
    assert v.state == HOLDS and set(v.groups) == {"subgradient"} and set(v.reported) == {"adam"}
    sub = v.groups["subgradient"].measured
    assert sub["fraction_seeds"] == 1.0 and sub["median_gap_first"] == 0.1 and sub["median_gap_last"] == 4.0
    assert v.reported["adam"].state == DOES_NOT_HOLD  # reported, not combined
    v = l1.objective_gap_grows(table({"exact": {"gap": 0.0}, "subgradient": {"gap": flat}}, 5))
    assert v.state == DOES_NOT_HOLD and v.groups["subgradient"].measured["fraction_seeds"] == 0.0


def test_prox_recovers_support():
    W = np.zeros((5, 4, 6))
    W[..., :2] = 1.0
    v = l1.prox_recovers_support(W.copy(), W)
    assert v.state == HOLDS and v.measured["min_jaccard"] == 1.0
    Wp = W.copy()
    Wp[:2, 1, 2] = 0.1  # an extra non-zero: Jaccard 2/3 on two seeds of five
    v = l1.prox_recovers_support(Wp, W)
    assert v.state == DOES_NOT_HOLD and v.measured["fraction_seeds"] == 0.6
    assert v.measured["min_jaccard"] == pytest.approx(2 / 3)


def test_pruning_threshold_worse():
    areas = pd.DataFrame({"area_threshold": [0.5, 0.61, 0.7], "area_prox": [0.6, 0.7, 0.81]})
    v = l1.pruning_threshold_worse(areas)
    assert v.state == HOLDS and v.measured["ci_low"] > 0 and v.measured["seeds"] == 3
    assert v.measured["mean_area_difference"] == pytest.approx(0.1)
    assert v.measured["max_abs_area_difference"] == pytest.approx(0.11) and v.measured["area_prox"] == [0.6, 0.7, 0.81]
    better = areas.rename(columns={"area_threshold": "area_prox", "area_prox": "area_threshold"})
    v = l1.pruning_threshold_worse(better)  # thresholding prunes better, beyond the spread
    assert v.state == DOES_NOT_HOLD and v.measured["ci_high"] < 0
    same = pd.DataFrame({"area_threshold": [0.6, 0.7, 0.8], "area_prox": [0.6, 0.7, 0.8]})
    v = l1.pruning_threshold_worse(same)  # a tie is a tie, not a loss
    assert v.state == INCONCLUSIVE and "contains 0" in v.reason
    # signs 2 of 3 in one direction, within the spread: the old sign count said "does not hold"
    mixed = pd.DataFrame({"area_threshold": [0.501, 0.456, 0.535], "area_prox": [0.502, 0.457, 0.534]})
    v = l1.pruning_threshold_worse(mixed)
    assert v.state == INCONCLUSIVE and "over 3 seeds contains 0" in v.reason
    v = l1.pruning_threshold_worse(areas.iloc[:1])
    assert v.state == INCONCLUSIVE and "one seed" in v.reason


def test_area_text_reads_the_interval():
    v = l1.pruning_threshold_worse(pd.DataFrame({"area_threshold": [0.5, 0.61, 0.7], "area_prox": [0.6, 0.7, 0.81]}))
    assert l1._area_text(v) == ("at equal sparsity the mean paired difference of the areas (proximal minus "
                                "thresholded) is 0.1, 14.22% of the area, with a 95% interval over 3 seeds of "
                                "[0.075, 0.12]")


def test_paired_interval_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 0.1, 7), rng.normal(0.9, 0.1, 7)
    mean, lo, hi = l1.paired_interval(a, b)
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert mean == pytest.approx(np.mean(a - b)) and lo == pytest.approx(ref.low) and hi == pytest.approx(ref.high)


def test_pruning_curves_take_a_split_per_seed():
    splits = {s: load("digits", seed=s, n_train=100) for s in (1, 2)}
    f = l1.pruning_curves(splits, [0.003, 0.01], [1, 2], hidden=4, epochs=1, lr=0.1)
    assert list(f.seed.unique()) == [1, 2] and len(f) == 4


def test_prox_support_is_inconclusive_while_the_solver_has_not_converged():
    W = np.zeros((5, 4, 6))
    W[..., :2] = 1.0
    v = l1.prox_recovers_support(W.copy(), W, kkt=np.full((5, 4), 1e-3))
    assert v.state == INCONCLUSIVE and "KKT" in v.reason and v.measured["max_kkt_violation"] == 1e-3
    assert l1.prox_recovers_support(W.copy(), W, kkt=np.full((5, 4), 1e-9)).state == HOLDS


def test_kkt_violations_vanish_at_the_exact_solution_and_not_at_zero(prob):
    W, viol = exact_lasso(prob)
    np.testing.assert_allclose(l1.kkt_violations(prob, W), viol)
    assert l1.kkt_violations(prob, np.zeros_like(W)).max() > 1e-3  # w = 0 is not optimal at the small lambda


def test_pruning_without_a_sparsity_range_or_training_is_inconclusive():
    flat = pd.DataFrame({"area_threshold": [0.0, 0.0], "area_prox": [0.0, 0.0], "sparsity_span": [0.0, 0.01],
                         "min_unpruned_accuracy": [0.9, 0.9]})
    v = l1.pruning_threshold_worse(flat)
    assert v.state == INCONCLUSIVE and "span" in v.reason and "0.000" in v.reason
    untrained = flat.assign(sparsity_span=[0.5, 0.5], area_threshold=[0.04, 0.05], area_prox=[0.05, 0.05],
                            min_unpruned_accuracy=[0.1, 0.9])
    v = l1.pruning_threshold_worse(untrained)
    assert v.state == INCONCLUSIVE and "did not train" in v.reason
    one_point = pd.DataFrame({"area_threshold": [np.nan], "area_prox": [np.nan]})
    v = l1.pruning_threshold_worse(one_point)
    assert v.state == INCONCLUSIVE and "no area" in v.reason and v.measured["max_abs_area_difference"] is None


# ------------------------------------------------------------------------------------------------ the page's prose

def _page_verdicts(zeros=0, sub_l1=None, diverged=False):
    exact_l1 = np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))
    t = table({"exact": {"zeros": 190, "l1": exact_l1, "gap": 0.0},
               "subgradient": {"zeros": zeros, "l1": np.tile([10.0, 9.0, 12.0, 20.0], (3, 1)) if sub_l1 is None
                               else sub_l1, "gap": np.tile([0.1, 0.3, 1.0, 4.0], (3, 1))},
               "adam": {"zeros": 0, "l1": exact_l1, "gap": 0.1}})
    t["diverged"] = diverged & (t.method == "subgradient")
    W = np.zeros((3, 4, 6))
    W[..., :2] = 1.0
    return {"ngdm-no-exact-zeros": l1.ngdm_no_exact_zeros(t, 200, 10, judged=("subgradient", "adam")),
            "ngdm-l1-grows-with-lambda": l1.ngdm_l1_grows_with_lambda(t, 0.3),
            "objective-gap-grows": l1.objective_gap_grows(t),
            "prox-recovers-support": l1.prox_recovers_support(W, W),
            "pruning-threshold-worse": l1.pruning_threshold_worse(
                pd.DataFrame({"area_threshold": [np.nan], "area_prox": [np.nan]}))}, t


@pytest.mark.parametrize("case", [{}, {"zeros": 3, "sub_l1": np.tile([10.0, 8.0, 5.0, 1.0], (3, 1))},
                                  {"diverged": True}])
def test_page_texts_read_whole_in_every_state(case):
    verdicts, t = _page_verdicts(**case)
    t = t.assign(jaccard=1.0)
    runs = {"subgradient": l1.NgdmRun("subgradient", np.zeros((3, 4, 6)), 0.05, np.zeros((3, 4, 6)),
                                      np.zeros((3, 4)), np.zeros((3, 4), bool))}
    texts = l1.page_texts(verdicts, kkt=np.array([1e-9]), solvers=runs,
                          solutions=pd.concat([t, t[t.method == "adam"].assign(method="uv"),
                                               t[t.method == "adam"].assign(method="prox-sgd")]),
                          lams=LAMS, n=40, p=200, k=10)
    for key, text in texts.items():
        assert text and not any(bad in text for bad in ("n/a", "nan", "None", "  ", " ;", " .")), (key, text)
    assert "the curves have no area to compare" == texts["area"]
    assert texts["densest"] == "the densest exact solution here has 10 non-zeros and 190 zeros, at λ = 0.1"
    assert texts["uv-zeros"] == "none at λ = 2 in this run, median over seeds"
    assert texts["growth"].startswith("the predicted λ* is 0.3") and "adam 0%" in texts["growth"]
    if case.get("zeros"):
        assert texts["rising"] == "none" and texts["falling"] == "subgradient, adam"
        assert texts["zeros"].startswith("subgradient GD had no exact zero in 0% of its")
    else:
        assert texts["rising"] == "subgradient" and texts["falling"] == "adam"
