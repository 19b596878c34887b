"""Clarke generalised gradients of abs-smooth functions written as torch code (finding *abs-smooth-clarke*).

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
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linprog

from ._models import KinkFn

__all__ = ["Kinks", "ad_gradient", "clarke_set_exact", "clarke_set_sampled", "hull_distance", "in_hull",
           "ClarkeSet", "InconclusiveError", "dense_relu_loss", "n_params", "kinked_point", "kink_survey",
           "clarke_distances"]


class InconclusiveError(ValueError):
    """The first-order realisability test cannot decide (kink gradients linearly dependent, not piecewise linear)."""


class Kinks:
    """The kink operations handed to ``f``: records every pre-activation and applies a derivative at 0.

    ``choice`` maps a kink kind to the derivative used at exact zeros ('relu' -> ReLU'(0), 'abs' -> |.|'(0)),
    unless ``pattern`` gives one per tied element: a list (per site) of tensors of +1 / -1 / 0 (not tied).
    """

    def __init__(self, choice: dict[str, float] | None = None, pattern: list[torch.Tensor] | None = None):
        self.choice = {"relu": 0.0, "abs": 0.0, **(choice or {})}
        self.pattern = pattern
        self.sites: list[torch.Tensor] = []
        self.kinds: list[str] = []

    def _apply(self, z: torch.Tensor, kind: str) -> torch.Tensor:
        i = len(self.sites)
        self.sites.append(z)
        self.kinds.append(kind)
        slope: float | torch.Tensor = self.choice[kind]
        if self.pattern is not None and i < len(self.pattern):
            s = self.pattern[i].to(z.dtype)
            # side +1: the piece where z > 0; side -1: where z < 0
            slope = (s > 0).to(z.dtype) if kind == "relu" else s
        return KinkFn.apply(z, kind, slope)

    def relu(self, z: torch.Tensor) -> torch.Tensor:
        return self._apply(z, "relu")

    def abs(self, z: torch.Tensor) -> torch.Tensor:
        return self._apply(z, "abs")


def _grad(f: Callable, x0: torch.Tensor, kinks: Kinks) -> tuple[torch.Tensor, torch.Tensor, Kinks]:
    x = x0.detach().clone().requires_grad_(True)
    out = f(x, kinks)
    (g,) = torch.autograd.grad(out, x, retain_graph=True)
    return g, x, kinks


def ad_gradient(f: Callable, x0: torch.Tensor, relu0: float = 0.0, abs0: float = 0.0,
                pattern: list[torch.Tensor] | None = None) -> np.ndarray:
    """What backward-mode AD returns at ``x0`` when every kink uses the same derivative at 0, or, with
    ``pattern``, the side (+1 / -1) chosen at each kink site (e.g. a different choice per sample)."""
    g, _, _ = _grad(f, x0, Kinks({"relu": relu0, "abs": abs0}, pattern=pattern))
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
        g, x, kinks = _grad(f, x0, Kinks(pattern=pattern))
        if m:
            rows = []
            for (s, j), sg in zip(ties, signs):
                (gz,) = torch.autograd.grad(kinks.sites[s].flatten()[j], x, retain_graph=True, allow_unused=True)
                gz = torch.zeros_like(x) if gz is None else gz
                rows.append(sg * gz.detach().numpy())
            A = np.array(rows)
            if not _strictly_feasible(A, tol):
                if not piecewise_linear and np.linalg.matrix_rank(A, tol=1e-10) < m:
                    raise InconclusiveError(
                        "a sign pattern fails the first-order test while the kink gradients are linearly dependent: "
                        "it could still be realised in a cusp. Pass piecewise_linear=True if f is piecewise linear "
                        "in x, or move the point")
                continue
        verts.append(g.detach().numpy().copy())
    V = np.unique(np.round(np.array(verts), 14), axis=0)
    return ClarkeSet(V, m, len(verts), 2 ** m)


def _strictly_feasible(A: np.ndarray, tol: float) -> bool:
    """Is there h in [-1, 1]^d with A h > 0 (componentwise)? LP: maximise eps s.t. A h >= eps."""
    m, d = A.shape
    c = np.zeros(d + 1)
    c[-1] = -1.0  # maximise eps
    A_ub = np.hstack([-A, np.ones((m, 1))])  # eps - A h <= 0
    bounds = [(-1, 1)] * d + [(None, 1)]
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(m), bounds=bounds, method="highs")
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
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"hull-distance LP failed: {res.message}")
    return float(res.fun)


def in_hull(g: np.ndarray, vertices: np.ndarray, tol: float = 1e-9) -> bool:
    """``g`` in conv(vertices) up to sup-norm distance ``tol`` (relative to max(1, |g|_inf))."""
    return hull_distance(np.asarray(g, float), vertices) <= tol * max(1.0, float(np.abs(g).max()))


def n_params(sizes) -> int:
    """Number of weights and biases of a dense net with layer widths ``sizes``."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def dense_relu_loss(sizes, X: torch.Tensor, Y: torch.Tensor) -> Callable:
    """f(theta, k): summed squared loss of a dense ReLU net with biases, theta the flat parameter vector
    (per layer: W row-major, then b). ``X`` (N, sizes[0]) and ``Y`` (N, sizes[-1])."""
    def f(theta: torch.Tensor, k: Kinks) -> torch.Tensor:
        h, pos = X, 0
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            W = theta[pos:pos + a * b].view(b, a)
            pos += a * b
            bias = theta[pos:pos + b]
            pos += b
            h = h @ W.T + bias
            if i < len(sizes) - 2:
                h = k.relu(h)
        return ((h - Y) ** 2).sum()

    return f


def clarke_distances(sizes, ties_per_layer: int, n_points: int, seed: int, alphas):
    """For ``n_points`` kinked points (seeds seed, seed + 1, ...): the sup-norm distance, relative to
    max(1, |g|), of AD's output with ReLU'(0) = alpha to the exact Clarke set, for every alpha. One row each."""
    import pandas as pd

    rows = []
    for i in range(n_points):
        f, theta = kinked_point(sizes, ties_per_layer, seed + i)
        cs = clarke_set_exact(f, theta)
        for a in alphas:
            g = ad_gradient(f, theta, relu0=a)
            rows.append({"point": i, "alpha": a, "ties": cs.n_ties, "vertices": len(cs.vertices),
                         "distance": hull_distance(g, cs.vertices) / max(1.0, float(np.abs(g).max()))})
    return pd.DataFrame(rows)


def kinked_point(sizes, ties_per_layer: int, seed: int):
    """A dense ReLU net's parameters and one integer sample at which ``ties_per_layer`` pre-activations of every
    hidden layer are exactly 0 (integer weights and data, biases solved for): returns (f, theta0, ties)."""
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.integers(-2, 3, size=(1, sizes[0])), dtype=torch.float64)
    Y = torch.tensor(rng.integers(-2, 3, size=(1, sizes[-1])), dtype=torch.float64)
    parts, h = [], X
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = torch.tensor(rng.integers(-2, 3, size=(b, a)), dtype=torch.float64)
        pre = (h @ W.T)[0]
        bias = torch.tensor(rng.integers(-2, 3, size=b), dtype=torch.float64)
        hidden = i < len(sizes) - 2
        if hidden:
            tied = rng.choice(b, size=min(ties_per_layer, b), replace=False)
            bias[tied] = -pre[tied]  # integers: the pre-activation is exactly 0
            untied = np.setdiff1d(np.arange(b), tied)
            clash = untied[(pre[untied] + bias[untied] == 0).numpy()]
            bias[clash] += 1  # keep the other units off their kink
        parts += [W.flatten(), bias]
        h = h @ W.T + bias
        if hidden:
            h = h.clamp_min(0)
    return dense_relu_loss(sizes, X, Y), torch.cat(parts)


def _survey_cases():
    """(operation, input shown, function of a leaf tensor, Clarke set vertices in closed form)."""
    F = torch.nn.functional
    z, nz = 0.0, -0.0
    return [
        ("abs(x)", "x = 0", [z], lambda x: x.abs().sum(), [[-1.0], [1.0]]),
        ("abs(x)", "x = -0.0", [nz], lambda x: x.abs().sum(), [[-1.0], [1.0]]),
        ("relu(x)", "x = 0", [z], lambda x: torch.relu(x).sum(), [[0.0], [1.0]]),
        ("relu(x)", "x = -0.0", [nz], lambda x: torch.relu(x).sum(), [[0.0], [1.0]]),
        ("maximum(x, y)", "x = y = 0", [z, z], lambda x: torch.maximum(x[0], x[1]), [[1.0, 0.0], [0.0, 1.0]]),
        ("minimum(x, y)", "x = y = 0", [z, z], lambda x: torch.minimum(x[0], x[1]), [[1.0, 0.0], [0.0, 1.0]]),
        ("max(x) (full reduction)", "x = (0, 0)", [z, z], lambda x: x.max(), [[1.0, 0.0], [0.0, 1.0]]),
        ("max(x, dim=0).values", "x = (0, 0)", [z, z], lambda x: x.max(dim=0).values, [[1.0, 0.0], [0.0, 1.0]]),
        ("where(x > 0, x, 0)", "x = 0", [z], lambda x: torch.where(x > 0, x, torch.zeros_like(x)).sum(),
         [[0.0], [1.0]]),
        ("hardtanh(x)", "x = 1", [1.0], lambda x: F.hardtanh(x).sum(), [[0.0], [1.0]]),
        ("clamp(x, -1, 1)", "x = 1", [1.0], lambda x: x.clamp(-1, 1).sum(), [[0.0], [1.0]]),
        ("l1_loss(x, 0)", "x = 0", [z], lambda x: F.l1_loss(x, torch.zeros_like(x)), [[-1.0], [1.0]]),
        ("relu(x) - relu(-x)", "x = 0", [z], lambda x: (torch.relu(x) - torch.relu(-x)).sum(), [[1.0]]),
        ("relu(x) - relu(-x)", "x = -0.0", [nz], lambda x: (torch.relu(x) - torch.relu(-x)).sum(), [[1.0]]),
    ]


def kink_survey(tol: float = 1e-12):
    """What the installed PyTorch's autograd returns at kinks, against each Clarke set (a live table)."""
    import pandas as pd

    rows = []
    for op, where, values, fn, clarke in _survey_cases():
        x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        fn(x).backward()
        g = x.grad.numpy()
        V = np.array(clarke)
        rows.append({"operation": op, "at": where, "autograd returns": np.array2string(g, precision=3),
                     "Clarke set": "{" + ", ".join(np.array2string(v, precision=3) for v in V) + "}"
                     if len(V) == 1 else "conv{" + ", ".join(np.array2string(v, precision=3) for v in V) + "}",
                     "in the Clarke set": bool(hull_distance(g, V) <= tol)})
    return pd.DataFrame(rows)
