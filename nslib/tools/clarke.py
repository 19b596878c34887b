"""Clarke generalised gradients of abs-smooth functions written as torch code.

A function is written as ``f(x, k)`` where ``x`` is a flat float64 tensor of variables and every kink goes
through ``k.relu(z)`` or ``k.abs(z)``. The tools evaluate it in two modes:

- as an AD library would (:func:`ad_gradient`): one derivative value at 0 for every kink;
- piece by piece (:func:`clarke_set_exact`): for every sign pattern of the pre-activations that are exactly 0
  at the point, the gradient of that smooth piece, kept only if the pattern is *realised on an open set*
  arbitrarily close to the point. The Clarke set is the convex hull of those gradients. Counting every pattern
  consistent at the point instead would give conv{0, 1, 2} for relu(x) - relu(-x), whose Clarke set is {1}.

Realisation is decided to first order by a linear program: pattern s is realised if some direction h makes
s_i <grad z_i, h> > 0 for every tied pre-activation z_i (gradients taken on the pattern's own pieces). This is
exact for functions piecewise linear in x, and whenever the tied gradients are linearly independent (LIKQ:
then every pattern is realised). Otherwise a rejected pattern could still live in a cusp, and the tool
raises rather than guess.

:func:`likq` checks the linear independence kink qualification at a point (Griewank & Walther 2016): every
``k.relu(z)`` / ``k.abs(z)`` argument is a switching variable of the abs-normal form, the *active* ones are those
exactly 0 at the point, and LIKQ holds when their gradients, taken with |.|'(0) = 0 at the active kinks
(relu'(0) = 1/2, since relu(z) = (z + |z|)/2), are linearly independent. Under LIKQ every sign pattern of the
active switches is realised next to the point, and AD with any derivative in [-1, 1] for |.|'(0) (in [0, 1] for
relu'(0)), chosen per kink, returns a point of the Clarke set: its output is multi-affine in those choices, so it
lies in the hull of the realised pieces' gradients.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog

from .kinks import Kinks

__all__ = ["CLOSED_FORMS", "LIKQ", "LIKQ_RTOL", "MIN_TOL", "ClarkeSet", "InconclusiveError", "ad_gradient",
           "clarke_set_exact", "clarke_set_sampled", "hull_distance", "in_hull", "likq"]


class InconclusiveError(ValueError):
    """The first-order realisability test cannot decide (kink gradients linearly dependent, not piecewise linear)."""


def _grad(f: Callable, x0: torch.Tensor, kinks: Kinks) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of ``f(x, kinks)`` at ``x0`` and the leaf ``x`` (its graph kept for the kink gradients)."""
    x = x0.detach().clone().requires_grad_(True)
    out = f(x, kinks)
    (g,) = torch.autograd.grad(out, x, retain_graph=True)
    return g, x


def ad_gradient(f: Callable, x0: torch.Tensor, relu0: float = 0.0, abs0: float = 0.0,
                pattern: list[torch.Tensor] | None = None) -> np.ndarray:
    """What backward-mode AD returns at ``x0`` when every kink uses the same derivative at 0, or, with
    ``pattern``, the side (+1 / -1) chosen at each kink site (e.g. a different choice per sample)."""
    g, _ = _grad(f, x0, Kinks({"relu": relu0, "abs": abs0}, pattern=pattern))
    return g.numpy().copy()


@dataclass
class ClarkeSet:
    """Vertices (gradients of the realised pieces) whose convex hull is the Clarke set at a point."""

    vertices: np.ndarray  # (r, d)
    n_ties: int
    patterns_realised: int
    patterns_total: int


def _tied(kinks: Kinks) -> list[tuple[int, int]]:
    return [(s, int(j)) for s, z in enumerate(kinks.sites) for j in torch.nonzero(z.detach().flatten() == 0).flatten()]


def clarke_set_exact(f: Callable, x0: torch.Tensor, *, piecewise_linear: bool = False, max_ties: int = 12,
                     tol: float = 1e-12) -> ClarkeSet:
    """The Clarke subdifferential of ``f`` at ``x0`` from the patterns realised on open sets near ``x0``."""
    x0 = x0.to(torch.float64)
    probe = Kinks()
    _grad(f, x0, probe)
    ties = _tied(probe)
    m = len(ties)
    if m > max_ties:
        raise ValueError(f"{m} pre-activations are exactly 0 at the point: 2^{m} patterns exceed max_ties = {max_ties}")
    shapes = [z.shape for z in probe.sites]
    verts = []
    for signs in itertools.product((1.0, -1.0), repeat=m):
        pattern = [torch.zeros(sh, dtype=torch.float64).flatten() for sh in shapes]
        for (s, j), sg in zip(ties, signs):
            pattern[s][j] = sg
        pattern = [p.view(sh) for p, sh in zip(pattern, shapes)]
        kinks = Kinks(pattern=pattern)
        g, x = _grad(f, x0, kinks)
        if m:
            rows = []
            for (s, j), sg in zip(ties, signs):
                (gz,) = torch.autograd.grad(kinks.sites[s].flatten()[j], x, retain_graph=True, allow_unused=True)
                gz = torch.zeros_like(x) if gz is None else gz
                rows.append(sg * gz.detach().numpy())
            A = np.array(rows)
            if piecewise_linear:
                # a tied argument with zero gradient is identically 0 on this piece (nested kinks, dead units):
                # its side does not restrict the piece, and the strict LP would reject it for nothing
                scale = max(1.0, float(np.abs(A).max()))
                A = A[np.abs(A).max(axis=1) > 1e-13 * scale]
            if len(A) and not _strictly_feasible(A, tol):
                if not piecewise_linear and np.linalg.matrix_rank(A, tol=1e-10) < m:
                    raise InconclusiveError(
                        "a sign pattern fails the first-order test while the kink gradients are linearly dependent: "
                        "it could still be realised in a cusp. Pass piecewise_linear=True if f is piecewise linear "
                        "in x, or move the point")
                continue
        verts.append(g.detach().numpy().copy())
    if not verts:
        # the Clarke set of a locally Lipschitz function is never empty: no realised piece means a tool failure
        raise RuntimeError(f"no sign pattern of the {m} tied pre-activations was found realised at this point; "
                           "the exact Clarke set cannot be empty (is f written with k.relu / k.abs throughout?)")
    V = np.unique(np.round(np.array(verts), 14), axis=0)
    return ClarkeSet(V, m, len(verts), 2 ** m)


#: Relative tolerance of the rank in :func:`likq`: a singular value counts when above LIKQ_RTOL times the largest.
LIKQ_RTOL = 1e-10


@dataclass
class LIKQ:
    """The linear independence kink qualification at a point: the active switching variables, the Jacobian of
    those switches (one row each, |.|'(0) = 0 at active kinks), its singular values and rank."""

    holds: bool
    n_active: int
    rank: int
    jacobian: np.ndarray  # (n_active, d)
    singular_values: np.ndarray
    active: list[tuple[int, int]]  # (kink site, flat index) of each active switch, in evaluation order

    @property
    def smallest_singular_value(self) -> float:
        """How far the active gradients are from dependence (0 when fewer independent directions than switches)."""
        if not self.n_active:
            return float("inf")
        sv = np.zeros(self.n_active)
        sv[:len(self.singular_values)] = self.singular_values[:self.n_active]
        return float(sv.min())


def likq(f: Callable, x0: torch.Tensor, *, rtol: float = LIKQ_RTOL) -> LIKQ:
    """Does LIKQ hold for ``f(x, k)`` at ``x0``? The active switching variables are the kink arguments (every
    ``k.relu`` / ``k.abs`` element) exactly 0 at ``x0``; their gradients in ``x`` are taken as in the abs-normal
    form, with |.|'(0) = 0 (relu'(0) = 1/2) at every active kink upstream; LIKQ holds when these ``n_active``
    gradients have rank ``n_active`` (singular values above ``rtol`` times the largest). No active switch: holds
    (f is smooth near ``x0``)."""
    if not rtol > 0:
        raise ValueError(f"rtol = {rtol!r}: allowed is > 0")
    x0 = x0.to(torch.float64)
    kinks = Kinks({"relu": 0.5, "abs": 0.0})
    _, x = _grad(f, x0, kinks)
    active = _tied(kinks)
    d = x.numel()
    rows = []
    for s, j in active:
        (gz,) = torch.autograd.grad(kinks.sites[s].flatten()[j], x, retain_graph=True, allow_unused=True)
        rows.append(np.zeros(d) if gz is None else gz.detach().numpy().ravel().copy())
    J = np.array(rows, dtype=float).reshape(len(active), d)
    sv = np.linalg.svd(J, compute_uv=False) if len(active) else np.zeros(0)
    rank = int((sv > rtol * sv[0]).sum()) if len(sv) and sv[0] > 0 else 0
    return LIKQ(rank == len(active), len(active), rank, J, sv, active)


# HiGHS resolves feasibility to 1e-7 by default, which would blur a membership tolerance of 1e-9: solve to its
# tightest settings (1e-10), and let in_hull refuse tolerances below what the LP can deliver.
_LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
#: The smallest membership tolerance :func:`in_hull` accepts (10x the LP's feasibility tolerance).
MIN_TOL = 1e-9


def _strictly_feasible(A: np.ndarray, tol: float) -> bool:
    """Is there h in [-1, 1]^d with A h > 0 (componentwise)? LP: maximise eps s.t. A h >= eps."""
    m, d = A.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0  # maximise eps
    A_ub = np.hstack([-A, np.ones((m, 1))])  # eps - A h <= 0
    bounds = [(-1, 1)] * d + [(None, 1)]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(m), bounds=bounds, method="highs", options=_LP_OPTIONS)
    scale = max(1.0, float(np.abs(A).max()))
    return bool(res.status == 0 and -res.fun > tol * scale)


def clarke_set_sampled(f: Callable, x0: torch.Tensor, *, n: int = 200, radius: float = 1e-6,
                       seed: int = 0) -> np.ndarray:
    """Gradients at ``n`` random points within ``radius`` (sup norm) of ``x0``: an INNER estimate of the
    Clarke set. A vector outside their hull may still be in the Clarke set (inconclusive); inside is evidence."""
    g = torch.Generator().manual_seed(seed)
    x0 = x0.to(torch.float64)
    out = []
    for _ in range(n):
        x = x0 + radius * (2 * torch.rand(x0.shape, generator=g, dtype=torch.float64) - 1)
        out.append(ad_gradient(f, x))
    return np.unique(np.round(np.array(out), 12), axis=0)


def hull_distance(g: np.ndarray, vertices: np.ndarray) -> float:
    """Sup-norm distance from ``g`` to conv(vertices), by linear programming (0 inside)."""
    V = np.atleast_2d(vertices)
    r, d = V.shape
    # variables: lambda (r), t; minimise t s.t. -t <= V^T lambda - g <= t, lambda >= 0, sum lambda = 1
    c = np.zeros(r + 1)
    c[-1] = 1.0
    A_ub = np.vstack([np.hstack([V.T, -np.ones((d, 1))]), np.hstack([-V.T, -np.ones((d, 1))])])
    b_ub = np.concatenate([g, -g])
    A_eq = np.hstack([np.ones((1, r)), np.zeros((1, 1))])
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=[(0, None)] * r + [(0, None)],
                  method="highs", options=_LP_OPTIONS)
    if res.status != 0:
        raise RuntimeError(f"hull-distance LP failed: {res.message}")
    return float(res.fun)


def in_hull(g: np.ndarray, vertices: np.ndarray, tol: float = 1e-9) -> bool:
    """``g`` in conv(vertices) up to sup-norm distance ``tol`` (relative to max(1, |g|_inf)); ``tol`` >= MIN_TOL."""
    if not tol >= MIN_TOL:
        raise ValueError(f"tol = {tol!r}: allowed is >= {MIN_TOL:g} (the LP solves to 1e-10)")
    return hull_distance(np.asarray(g, float), vertices) <= tol * max(1.0, float(np.abs(g).max()))


def _max2(x: torch.Tensor, k: Kinks) -> torch.Tensor:
    """max(x, y) written with one kink: y + relu(x - y)."""
    return x[1] + k.relu(x[0] - x[1])


def _corner3(x: torch.Tensor, k: Kinks) -> torch.Tensor:
    """max(x, y, -x - y): three linear pieces meeting at the origin."""
    m = _max2(x, k)
    return m + k.relu(-x[0] - x[1] - m)


#: Functions with known Clarke sets at the origin: name -> (f(x, k), dimension, vertices of the set in closed form).
CLOSED_FORMS = {
    "|x| at 0": (lambda x, k: k.abs(x).sum(), 1, [[-1.0], [1.0]]),
    "max(x, y) at 0": (_max2, 2, [[1.0, 0.0], [0.0, 1.0]]),
    "relu(x) - relu(-x) at 0": (lambda x, k: (k.relu(x) - k.relu(-x)).sum(), 1, [[1.0]]),
    "max(x, y, -x-y) at 0": (_corner3, 2, [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
}
