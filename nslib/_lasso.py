"""The L1-penalised linear model solved exactly and by deep-learning solvers (finding *l1-paradox*).

Objective, for every solver: F(w) = (1/2n)||y - Xw||^2 + lam * ||w||_1, which is scikit-learn's
``Lasso(alpha=lam, fit_intercept=False)``. (``MSELoss + lam * ||w||_1`` is this objective with alpha =
lam / 2: a factor that silently changes every number.) Runs are batched over seeds (one dataset each)
and the lambda grid: ``W`` has shape (S, Lam, p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._data import sparse_regression
from ._train import make_optimizer, make_scheduler

__all__ = ["LassoProblem", "make_problems", "lasso_objective", "lasso_kkt_violation", "exact_lasso", "fista",
           "run_ngdm", "NGDM_METHODS", "support_jaccard", "solution_table", "by_seed_and_lambda",
           "soft_threshold"]

NGDM_METHODS = ("subgradient", "sgd", "adam", "rmsprop", "prox-sgd", "diminishing", "uv")


@dataclass
class LassoProblem:
    """S datasets (one per seed), stacked: X (S, n, p), y (S, n), true weights (S, p), and L per seed."""

    X: torch.Tensor
    y: torch.Tensor
    w_true: torch.Tensor
    lams: torch.Tensor  # (Lam,)

    @property
    def smoothness(self) -> torch.Tensor:
        """L_s = largest eigenvalue of X^T X / n per dataset: the gradient Lipschitz constant of the LS part."""
        n = self.X.shape[1]
        return torch.linalg.matrix_norm(self.X, ord=2) ** 2 / n


def make_problems(n: int, p: int, k: int, noise: float, seeds, lams) -> LassoProblem:
    """Sparse regression datasets for each seed (see :func:`nslib.sparse_regression`) and the lambda grid."""
    data = [sparse_regression(n, p, k, noise, seed=int(s)) for s in seeds]
    return LassoProblem(torch.stack([d[0] for d in data]), torch.stack([d[1] for d in data]),
                        torch.stack([d[2] for d in data]), torch.tensor(lams, dtype=torch.float64))


def lasso_objective(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, lams: torch.Tensor) -> torch.Tensor:
    """F for every (dataset, lambda): X (S, n, p), y (S, n), W (S, Lam, p) -> (S, Lam)."""
    n = X.shape[-2]
    resid = y[:, None, :] - torch.einsum("snp,slp->sln", X, W)
    return (resid * resid).sum(-1) / (2 * n) + lams * W.abs().sum(-1)


def lasso_kkt_violation(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> float:
    """Sup-norm violation of the Lasso optimality conditions: g = X^T(y - Xw)/n must equal lam*sign(w_j)
    where w_j != 0 and satisfy |g_j| <= lam where w_j = 0."""
    g = X.T @ (y - X @ w) / len(y)
    on = w != 0
    v_on = np.abs(g[on] - lam * np.sign(w[on])).max(initial=0.0)
    v_off = np.maximum(np.abs(g[~on]) - lam, 0.0).max(initial=0.0)
    return float(max(v_on, v_off))


def exact_lasso(prob: LassoProblem, kkt_tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's coordinate descent to tol 1e-12, checked against the KKT conditions: (W*, violations).

    Raises if any solution violates KKT by more than ``kkt_tol``: the reference must be exact.
    """
    from sklearn.linear_model import Lasso

    S, L, p = prob.X.shape[0], len(prob.lams), prob.X.shape[2]
    W = np.zeros((S, L, p))
    viol = np.zeros((S, L))
    for s in range(S):
        X, y = prob.X[s].numpy(), prob.y[s].numpy()
        for j, lam in enumerate(prob.lams.tolist()):
            m = Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=1_000_000).fit(X, y)
            W[s, j] = m.coef_
            viol[s, j] = lasso_kkt_violation(X, y, m.coef_, lam)
    if viol.max() > kkt_tol:
        raise RuntimeError(f"exact Lasso violates KKT by {viol.max():.2e} > {kkt_tol:g}")
    return W, viol


def soft_threshold(W: torch.Tensor, t) -> torch.Tensor:
    """Proximal map of t * ||.||_1: sign(W) * max(|W| - t, 0)."""
    return torch.sign(W) * torch.clamp(W.abs() - t, min=0.0)


def fista(prob: LassoProblem, steps: int) -> np.ndarray:
    """Accelerated proximal gradient (step 1/L, soft-thresholding) in torch, float64: W (S, Lam, p)."""
    X, y, lams = prob.X, prob.y, prob.lams
    n = X.shape[1]
    step = (1.0 / prob.smoothness)[:, None, None]
    W = torch.zeros(X.shape[0], len(lams), X.shape[2], dtype=torch.float64)
    Z, t = W.clone(), 1.0
    for _ in range(steps):
        grad = -torch.einsum("snp,sln->slp", X, y[:, None, :] - torch.einsum("snp,slp->sln", X, Z)) / n
        W_new = soft_threshold(Z - step * grad, step * lams[None, :, None])
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        Z = W_new + ((t - 1) / t_new) * (W_new - W)
        W, t = W_new, t_new
    return W.numpy()


@dataclass
class NgdmRun:
    """Final iterates and what the late window showed, for one method."""

    method: str
    W: np.ndarray  # (S, Lam, p) final iterate
    lr: float  # one step size for every dataset and lambda
    late_max_abs: np.ndarray  # (S, Lam, p) max |w_j| over the late window
    subgrad_norm: np.ndarray  # (S, Lam) ||subgradient|| at the final iterate (sign(0) = 0)
    diverged: np.ndarray  # (S, Lam) bool


def run_ngdm(prob: LassoProblem, method: str, *, steps: int, lr_scale: float = 0.5, adaptive_lr: float = 1e-2,
             batch_size: int = 10, window: int = 1000, seed: int = 0) -> NgdmRun:
    """One deep-learning-style solver on every (dataset, lambda) at once, at one step size.

    ``subgradient``: full-batch GD with autograd's subgradient (sign(0) = 0), lr = lr_scale / max_s L_s
    (one lr for every dataset and lambda); ``sgd``: the same with minibatches; ``adam`` / ``rmsprop``:
    full batch at ``adaptive_lr``; ``prox-sgd``: minibatch gradient step on the smooth part, then
    soft-thresholding at lr * lam; ``diminishing``: subgradient GD with lr_k = lr / sqrt(k + 1); ``uv``:
    w = u * v with penalty (lam/2)(||u||^2 + ||v||^2), full-batch GD (smooth, so plain gradients).
    """
    if method not in NGDM_METHODS:
        raise ValueError(f"method = {method!r}: allowed is one of {', '.join(NGDM_METHODS)}")
    X, y, lams = prob.X, prob.y, prob.lams
    S, n, p = X.shape
    L = len(lams)
    adaptive = method in ("adam", "rmsprop")
    lr = adaptive_lr if adaptive else float(lr_scale / prob.smoothness.max())
    gen = torch.Generator().manual_seed(seed)
    if method == "uv":
        # random signs break the u <-> v symmetry (u = v would keep w = u^2 >= 0 forever)
        U = torch.nn.Parameter(0.1 * torch.randn(S, L, p, generator=gen, dtype=torch.float64))
        V = torch.nn.Parameter(0.1 * torch.randn(S, L, p, generator=gen, dtype=torch.float64))
        params = [U, V]
    else:
        W = torch.nn.Parameter(torch.zeros(S, L, p, dtype=torch.float64))
        params = [W]
    opt = make_optimizer({"adam": "adam", "rmsprop": "rmsprop"}.get(method, "sgd"), params, lr=lr)
    sched = make_scheduler(opt, "invsqrt" if method == "diminishing" else "constant")
    stochastic = method in ("sgd", "prox-sgd")
    late_max = torch.zeros(S, L, p, dtype=torch.float64)
    lam3 = lams[None, :, None]

    def weights() -> torch.Tensor:
        return U * V if method == "uv" else W

    for t in range(steps):
        if stochastic:
            idx = torch.randint(0, n, (batch_size,), generator=gen)
            Xb, yb = X[:, idx, :], y[:, idx]
        else:
            Xb, yb = X, y
        Wt = weights()
        resid = yb[:, None, :] - torch.einsum("snp,slp->sln", Xb, Wt)
        loss = (resid * resid).sum(-1) / (2 * Xb.shape[1])
        if method == "uv":
            loss = loss + 0.5 * lams * (U * U + V * V).sum(-1)
        elif method != "prox-sgd":
            loss = loss + lams * Wt.abs().sum(-1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if sched is not None:
            sched.step()
        with torch.no_grad():
            if method == "prox-sgd":
                W.copy_(soft_threshold(W, lr * lam3))
            if t >= steps - window:
                torch.maximum(late_max, weights().abs(), out=late_max)
    with torch.no_grad():
        Wf = weights()
        g = -torch.einsum("snp,sln->slp", X, y[:, None, :] - torch.einsum("snp,slp->sln", X, Wf)) / n
        g = g + lam3 * torch.sign(Wf)
    Wn = Wf.detach().numpy().copy()
    return NgdmRun(method, Wn, lr, late_max.numpy(), torch.linalg.vector_norm(g, dim=-1).numpy(),
                   ~np.isfinite(Wn).all(-1))


def support_jaccard(W: np.ndarray, W_ref: np.ndarray) -> np.ndarray:
    """Jaccard index of the exact-non-zero sets of W and W_ref along the last axis (1 when both are empty)."""
    a, b = W != 0, W_ref != 0
    inter, union = (a & b).sum(-1), (a | b).sum(-1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def solution_table(prob: LassoProblem, runs: dict[str, NgdmRun], W_exact: np.ndarray, seeds) -> pd.DataFrame:
    """One row per (method, seed, lambda): exact and near zeros, L1 norm, objective gap, the constant-step
    floor lr * ||subgradient||^2 / 2, and the support's Jaccard index against the exact solution."""
    F_exact = lasso_objective(prob.X, prob.y, torch.tensor(W_exact), prob.lams).numpy()
    lams = prob.lams.tolist()
    rows = []
    sols = {m: (r.W, r.lr, r.subgrad_norm) for m, r in runs.items()}
    sols["exact"] = (W_exact, float("nan"), np.full(F_exact.shape, np.nan))
    for m, (W, lr, gnorm) in sols.items():
        F = lasso_objective(prob.X, prob.y, torch.tensor(W), prob.lams).numpy()
        jac = support_jaccard(W, W_exact)
        for s, seed in enumerate(seeds):
            for j, lam in enumerate(lams):
                rows.append({"method": m, "lr": lr, "seed": seed, "lambda": lam,
                             "zeros": int((W[s, j] == 0).sum()), "near_zeros": int((np.abs(W[s, j]) < 1e-12).sum()),
                             "l1": float(np.abs(W[s, j]).sum()), "gap": float(F[s, j] - F_exact[s, j]),
                             "bound": lr * gnorm[s, j] ** 2 / 2, "jaccard": float(jac[s, j])})
    return pd.DataFrame(rows)


def by_seed_and_lambda(table: pd.DataFrame, column: str, methods, seeds, lams) -> dict[str, np.ndarray]:
    """``column`` of :func:`solution_table` as one (seed, lambda) array per method, for the verdicts."""
    return {m: table[table.method == m].pivot(index="seed", columns="lambda", values=column)
            .loc[list(seeds), list(lams)].to_numpy() for m in methods}
