import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

import nslib
from nslib import exact_lasso, fista, lasso_kkt_violation, lasso_objective, make_problems, run_ngdm


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
    assert nslib.support_jaccard(Wf, W).min() == 1.0


@pytest.mark.parametrize("method", nslib.NGDM_METHODS)
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


def test_magnitude_prune_reaches_the_target_and_keeps_the_largest():
    net = nslib.mlp([4, 5, 3], "relu")
    before = torch.cat([w.detach().abs().flatten() for w in nslib.penalised_weights(net)])
    nslib.magnitude_prune(net, 0.5)
    assert nslib.sparsity(net) == pytest.approx(0.5, abs=1 / 35)
    after = torch.cat([w.detach().abs().flatten() for w in nslib.penalised_weights(net)])
    kept = after != 0
    assert before[kept].min() >= before[~kept].max()


def test_prox_training_gives_exact_zeros_and_curve_area():
    data = nslib.load_digits(seed=0, n_train=200)
    net = nslib.train_l1_mlp(data, 0.01, "prox", hidden=8, epochs=3, lr=0.1, batch_size=32, seed=0)
    assert nslib.sparsity(net) > 0
    assert nslib.curve_area([0.0, 1.0], [1.0, 0.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="method"):
        nslib.train_l1_mlp(data, 0.01, "magic", hidden=8, epochs=1, lr=0.1, batch_size=32, seed=0)
