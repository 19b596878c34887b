"""Convex test objectives for optimizer dynamics, batched over starts: ``f(x)`` maps (S, d) -> (S,).

Each objective knows its minimum value ``fmin``, whether it is differentiable at its minimisers,
and ``at_kink(x)``: whether an iterate sits exactly on a point of non-differentiability, so that
an exact landing there (where autograd's abs'(0) = 0 keeps it still) can be told apart from
convergence of the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .data import separable_classification

__all__ = ["OBJECTIVES", "Objective", "make_objective"]


@dataclass(frozen=True)
class Objective:
    """A batched convex objective with its minimum and kink test."""

    name: str
    dim: int
    f: Callable[[torch.Tensor], torch.Tensor]
    fmin: float
    smooth_at_min: bool  # differentiable at (or flat around) every minimiser
    at_kink: Callable[[torch.Tensor], torch.Tensor]
    lipschitz_grad: float | None = None  # L of the gradient, where it exists
    note: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


def _never(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)


def _hinge_parts(X, y):
    def margins(w):  # (S, d) -> (S, n)
        return (w @ X.T) * y

    return margins


def _regularised_hinge_min(X: torch.Tensor, y: torch.Tensor, mu: float) -> float:
    """min_w mean(max(0, 1 - y x.w)) + mu/2 ||w||^2, as a QP in (w, xi) solved by scipy to 1e-12."""
    from scipy.optimize import minimize

    Xn, yn = X.numpy(), y.numpy()
    n, d = Xn.shape

    def obj(z):
        return 0.5 * mu * z[:d] @ z[:d] + z[d:].mean()

    def jac(z):
        return np.concatenate([mu * z[:d], np.full(n, 1.0 / n)])

    A = np.hstack([yn[:, None] * Xn, np.eye(n)])  # y x.w + xi >= 1
    cons = [{"type": "ineq", "fun": lambda z: A @ z - 1.0, "jac": lambda z: A}]
    bounds = [(None, None)] * d + [(0.0, None)] * n
    res = minimize(obj, np.zeros(d + n), jac=jac, constraints=cons, bounds=bounds,
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    w = res.x[:d]
    return float(np.maximum(0.0, 1.0 - yn * (Xn @ w)).mean() + 0.5 * mu * w @ w)


def make_objective(name: str, dim: int = 1, huber_width: float = 0.1, curvature: float = 10.0,
                   hinge_mu: float = 0.1, data_seed: int = 0) -> Objective:
    """Build objective ``name`` (one of :data:`OBJECTIVES`)."""
    if name == "abs":
        return Objective("abs", 1, lambda x: x[:, 0].abs(), 0.0, False, lambda x: x[:, 0] == 0,
                         note="|x|")
    if name == "l1":
        return Objective("l1", dim, lambda x: x.abs().sum(1), 0.0, False, lambda x: (x == 0).any(1),
                         note=f"||x||_1 in {dim} dims")
    if name == "max-affine":
        # three pieces meeting at the minimiser 0: slopes -1 and 1/2 there, a third piece further out
        def f(x):
            t = x[:, 0]
            return torch.stack([-t, 0.5 * t, 2 * t - 1], 1).amax(1)

        return Objective("max-affine", 1, f, 0.0, False, lambda x: (x[:, 0] == 0) | (x[:, 0] == 2 / 3),
                         note="max(-x, x/2, 2x - 1)")
    if name in ("hinge-l2", "hinge"):
        X, y = separable_classification(seed=data_seed)
        margins = _hinge_parts(X, y)
        if name == "hinge":
            return Objective("hinge", X.shape[1], lambda w: torch.relu(1 - margins(w)).mean(1), 0.0, True,
                             lambda w: (margins(w) == 1).any(1),
                             note="mean hinge loss on separable data (flat at its minimisers)")
        mu = hinge_mu
        return Objective(
            "hinge-l2", X.shape[1],
            lambda w: torch.relu(1 - margins(w)).mean(1) + 0.5 * mu * (w * w).sum(1),
            _regularised_hinge_min(X, y, mu), False, lambda w: (margins(w) == 1).any(1),
            note=f"mean hinge + {mu}/2 ||w||^2 on separable data",
        )
    if name == "dead-zone":
        return Objective("dead-zone", 1, lambda x: torch.relu(x[:, 0].abs() - 1), 0.0, True,
                         lambda x: x[:, 0].abs() == 1, note="max(0, |x| - 1), flat on [-1, 1]")
    if name == "huber":
        d = huber_width

        def f(x):
            a = x[:, 0].abs()
            return torch.where(a <= d, x[:, 0] ** 2 / (2 * d), a - d / 2)

        return Objective("huber", 1, f, 0.0, True, _never, lipschitz_grad=1 / d,
                         note=f"Huber of width {d}: C^1, gradient {1 / d:g}-Lipschitz")
    if name == "quadratic":
        L = curvature
        return Objective("quadratic", 1, lambda x: 0.5 * L * x[:, 0] ** 2, 0.0, True, _never,
                         lipschitz_grad=L, note=f"{L:g}/2 x^2")
    if name == "smooth-abs":
        d = huber_width  # sqrt(x^2 + d^2) - d: smooth twin of |x|, gradient 1/d-Lipschitz
        return Objective("smooth-abs", 1, lambda x: torch.sqrt(x[:, 0] ** 2 + d * d) - d, 0.0, True, _never,
                         lipschitz_grad=1 / d, note=f"sqrt(x^2 + {d}^2) - {d}")
    if name in ("l1-regression", "smooth-l1-regression"):
        rng = np.random.default_rng(data_seed)
        X = torch.tensor(rng.normal(size=(30, 5)))
        w_true = torch.tensor(rng.normal(size=5))
        y = X @ w_true  # noise-free: f* = 0 at w_true, where every residual is zero at once

        def resid(w):
            return w @ X.T - y

        if name == "l1-regression":
            return Objective(name, 5, lambda w: resid(w).abs().mean(1), 0.0, False,
                             lambda w: (resid(w) == 0).any(1), note="mean |Xw - y| (noise-free)")
        d = huber_width
        return Objective(name, 5, lambda w: (torch.sqrt(resid(w) ** 2 + d * d) - d).mean(1), 0.0, True, _never,
                         lipschitz_grad=float(torch.linalg.matrix_norm(X, 2) ** 2 / (30 * d)),
                         note=f"mean sqrt((Xw - y)^2 + {d}^2) - {d}")
    raise ValueError(f"objective = {name!r}: allowed is one of {', '.join(OBJECTIVES)}")


#: Objective names accepted by :func:`make_objective`.
OBJECTIVES = ("abs", "l1", "max-affine", "hinge-l2", "hinge", "dead-zone", "huber", "quadratic", "smooth-abs",
              "l1-regression", "smooth-l1-regression")
