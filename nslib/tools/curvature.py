"""Curvature of a loss at a point: Hessian-vector products with :mod:`torch.func` over the full batch, extreme
Hessian eigenvalues and eigenvectors by Lanczos (scipy's ``eigsh`` on a ``LinearOperator``), and the dense
Hessian for small models (the reference the Lanczos values are tested against).

``f`` is any function of one flat parameter vector, e.g. :func:`nslib.tools.models.flat_loss`. Any float dtype,
CPU or CUDA: products are computed in ``theta``'s dtype and device; Lanczos itself runs in float64 on the CPU.
At a ReLU kink autodiff returns the Hessian of the piece it differentiates (ReLU'' = 0): the curvature of the
smooth piece the point lies on, not a generalised Hessian.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

with warnings.catch_warnings():  # torch.func.jvp imports this torch-internal module, which still uses the
    warnings.simplefilter("ignore", DeprecationWarning)  # deprecated torch.jit.script: keep that out of pages
    import torch._decomp.decompositions_for_jvp  # noqa: F401

__all__ = ["WHICH", "Eigen", "eigen", "extremes", "hessian", "hvp", "sharpness"]

#: ``which`` values of :func:`eigen`: the algebraically largest or smallest eigenvalues.
WHICH = ("largest", "smallest")


def hvp(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> H(theta) v`` for the Hessian of scalar ``f`` at ``theta``, forward-over-reverse (``jvp`` of
    ``grad``): one product costs about two gradient evaluations, and H is never formed."""
    g = torch.func.grad(f)
    theta = theta.detach()
    return lambda v: torch.func.jvp(g, (theta,), (v.to(theta.dtype),))[1]


def hessian(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor) -> torch.Tensor:
    """The dense Hessian (P x P) of ``f`` at ``theta``: for small models and tests only (P^2 memory)."""
    return torch.func.hessian(f)(theta.detach())


@dataclass
class Eigen:
    """Extreme eigenpairs: ``values`` (k,) in decreasing order for ``largest``, increasing for ``smallest``;
    ``vectors`` (P, k) in ``theta``'s dtype and device, unit norm; ``products``: Hessian-vector products used."""

    values: np.ndarray
    vectors: torch.Tensor
    products: int


def eigen(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, k: int = 1, which: str = "largest", *,
          tol: float = 1e-8, maxiter: int | None = None, seed: int = 0) -> Eigen:
    """The ``k`` algebraically largest (or smallest) Hessian eigenvalues of ``f`` at ``theta`` and their vectors,
    by implicitly restarted Lanczos on Hessian-vector products.

    ``tol`` is ARPACK's relative accuracy of the eigenvalues; the start vector is drawn from ``seed`` so that a run
    is reproducible. Raises ``ValueError`` for a bad ``k``/``which`` and scipy's ``ArpackNoConvergence`` when
    ``maxiter`` restarts do not converge (a caller that judges a claim turns it into an inconclusive verdict).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    P = int(theta.numel())
    if which not in WHICH:
        raise ValueError(f"which = {which!r}: allowed is one of {', '.join(WHICH)}")
    if not 1 <= k < P:
        raise ValueError(f"k = {k}: allowed is 1 <= k < {P} (the number of parameters)")
    if not theta.is_floating_point():
        raise ValueError(f"theta has dtype {theta.dtype}: allowed is a floating-point dtype")
    product = hvp(f, theta)
    count = 0

    def matvec(v: np.ndarray) -> np.ndarray:
        nonlocal count
        count += 1
        v = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), device=theta.device)
        return product(v).detach().to("cpu", torch.float64).numpy()

    op = LinearOperator((P, P), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(P)
    vals, vecs = eigsh(op, k=k, which="LA" if which == "largest" else "SA", tol=tol, maxiter=maxiter, v0=v0)
    order = np.argsort(-vals if which == "largest" else vals)
    vectors = torch.as_tensor(vecs[:, order], dtype=theta.dtype, device=theta.device)
    return Eigen(vals[order], vectors, count)


def sharpness(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, **kwargs) -> float:
    """The top Hessian eigenvalue lambda_max(theta) (the "sharpness" of Edge-of-Stability studies)."""
    return float(eigen(f, theta, 1, "largest", **kwargs).values[0])


def extremes(f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, **kwargs) -> tuple[float, float]:
    """``(lambda_max, lambda_min)`` of the Hessian of ``f`` at ``theta``."""
    return (float(eigen(f, theta, 1, "largest", **kwargs).values[0]),
            float(eigen(f, theta, 1, "smallest", **kwargs).values[0]))
