"""Gradient flows and the gradient descent that discretises them, on one flat parameter vector.

- :func:`gradient_flow`: d(theta)/dt = -grad f(theta) by an adaptive Runge-Kutta solver from torchdiffeq
  (``dopri5`` by default, ``dopri8`` for tighter references), float64, dense output at the requested times;
- :func:`checked_flow`: a flow used as a reference, with its self-check: solved at two tolerances ``tighten``
  times apart, the tighter kept, and how far it moved returned as its (conservative) error;
- :func:`gradient_descent`: GD iterates recorded at times k * lr (the time GD stands for);
- :func:`paper_protocol`: Elkabetz & Cohen's reference, GD with eta0 / r compared every r-th iterate;
- :func:`central_flow`: the central flow of GD at the Edge of Stability (the flow projected so that the sharpness
  stays at 2 / lr), integrated by RK4 with Lanczos eigenpairs and autodiff eigenvalue gradients;
- :func:`distances`, :func:`max_distance`: the weight-space distance between two trajectories over time, and its
  largest value.

``f`` is any scalar function of a flat parameter vector (:func:`nslib.tools.models.flat_loss`). Divergence of
GD (a NaN/inf iterate, or what the caller's ``diverged`` test says) is recorded, not raised. A solver that cannot
finish (step-size underflow, too many steps) raises :class:`FlowError`, which a criterion reports as an
inconclusive verdict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["METHODS", "FlowError", "Trajectory", "central_flow", "checked_flow", "distances", "gradient_descent",
           "gradient_flow", "max_distance", "paper_protocol"]

#: Adaptive solvers of torchdiffeq accepted by :func:`gradient_flow` (embedded Runge-Kutta pairs of order 5 and 8).
METHODS = ("dopri5", "dopri8")


class FlowError(RuntimeError):
    """The ODE solver could not integrate the flow (step-size underflow, or more than ``max_steps`` steps)."""


@dataclass
class Trajectory:
    """Parameters at increasing times: ``thetas[i]`` is the point at ``times[i]``.

    ``grad_evals`` counts gradient evaluations spent; ``diverged_at`` is the index of the first non-finite GD step
    (the trajectory stops before it; None when it stayed finite); ``info`` says how it was computed."""

    times: np.ndarray
    thetas: torch.Tensor
    grad_evals: int
    diverged_at: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def travelled(self) -> float:
        """||theta(T) - theta(0)||: the distance from the start to the last point."""
        return float((self.thetas[-1] - self.thetas[0]).norm())

    def at(self, times: Sequence[float], atol: float = 1e-9) -> torch.Tensor:
        """The recorded points at ``times`` (each must match a recorded time within ``atol``)."""
        idx = np.searchsorted(self.times, np.asarray(times, float) - atol)
        idx = np.minimum(idx, len(self.times) - 1)
        if not np.allclose(self.times[idx], times, rtol=0, atol=atol):
            raise ValueError("times not recorded on this trajectory")
        return self.thetas[torch.as_tensor(idx)]


def _times(times: Sequence[float]) -> np.ndarray:
    t = np.unique(np.asarray(times, dtype=float))
    if len(t) < 2 or t[0] < 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"times = {list(times)[:5]}...: allowed is at least two finite times >= 0")
    return t if t[0] == 0 else np.concatenate([[0.0], t])


def gradient_flow(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, times: Sequence[float], *,
                  rtol: float = 1e-7, atol: float = 1e-9, method: str = "dopri5",
                  max_steps: int = 200_000) -> Trajectory:
    """Solve d(theta)/dt = -grad f(theta) from ``theta0`` (float64) and return it at ``times`` (0 added if absent).

    The solver chooses its own steps (error per step within ``atol + rtol * |theta|``) and interpolates at the
    requested times. On piecewise-smooth losses (ReLU nets) the field jumps where a unit changes sign; the
    controller then shrinks its steps, and :func:`checked_flow` tells whether the result is still accurate.
    """
    from torchdiffeq import odeint

    if method not in METHODS:
        raise ValueError(f"method = {method!r}: allowed is one of {', '.join(METHODS)}")
    if not (0 < rtol < 1 and 0 < atol < 1):
        raise ValueError(f"rtol = {rtol}, atol = {atol}: allowed is each in (0, 1)")
    t = _times(times)
    y0 = theta0.detach().to(torch.float64)
    grad = torch.func.grad(f)
    evals = 0

    def field_(_t, y):
        nonlocal evals
        evals += 1
        return -grad(y)

    try:
        with torch.no_grad():
            ys = odeint(field_, y0, torch.as_tensor(t, dtype=torch.float64, device=y0.device), rtol=rtol, atol=atol,
                        method=method, options={"max_num_steps": max_steps})
    except AssertionError as e:  # torchdiffeq signals underflow and step limits by assertions
        raise FlowError(f"{method} (rtol={rtol:g}, atol={atol:g}) could not integrate the flow: {e}") from None
    if not torch.isfinite(ys).all():
        raise FlowError(f"{method} (rtol={rtol:g}, atol={atol:g}) returned non-finite parameters")
    return Trajectory(t, ys, evals, info={"method": method, "rtol": rtol, "atol": atol})


def checked_flow(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, times: Sequence[float], *,
                 rtol: float, atol: float | None = None, tighten: float = 10.0,
                 method: str = "dopri5") -> tuple[Trajectory, float]:
    """The flow solved at (``rtol``, ``atol``, default ``atol = rtol``) and again with both tightened ``tighten``
    times: returns the tighter trajectory and max over ``times`` of ||theta_loose(t) - theta_tight(t)||, how far
    tightening moved it. That distance bounds the tighter solve's error when the error shrinks at least twofold per
    tightening (it does for smooth losses; on ReLU nets it shrinks slowly, and the bound is what to report).
    A reference is good enough to measure a GD-GF distance D to 1% when this is below D / 100."""
    atol = rtol if atol is None else atol
    loose = gradient_flow(f, theta0, times, rtol=rtol, atol=atol, method=method)
    tight = gradient_flow(f, theta0, times, rtol=rtol / tighten, atol=atol / tighten, method=method)
    return tight, max_distance(loose, tight)


def _non_finite(theta: torch.Tensor, value: torch.Tensor, g: torch.Tensor) -> bool:
    """The default divergence test of :func:`gradient_descent`: any non-finite iterate, loss or gradient."""
    return not (torch.isfinite(theta).all() and torch.isfinite(value) and torch.isfinite(g).all())


def gradient_descent(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, lr: float, steps: int, *,
                     every: int = 1,
                     on_iterate: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
                     diverged: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], bool] | None = None
                     ) -> Trajectory:
    """``steps`` full-batch GD iterates theta_{k+1} = theta_k - lr grad f(theta_k): the one GD loop on a flat loss.

    Iterate 0, every ``every``-th one and the last are recorded, iterate k at time k * lr (the time of the flow it
    discretises); ``info["iterations"]`` holds the k. ``on_iterate(k, theta_k, f(theta_k), grad f(theta_k))``, if
    given, runs at every iterate k = 0..steps (the last one too, whose gradient is then computed for it alone): what
    a caller measures along the way (a loss curve, the sharpness) goes there.

    ``diverged(theta_k, f(theta_k), grad f(theta_k))`` decides when the run stops: when it returns True at iterate
    k, the run stops before k is recorded (or passed to ``on_iterate``) and ``diverged_at`` is k. By default (None)
    any non-finite iterate, loss or gradient stops it (and at the last iterate, when neither hook is given, only the
    iterate is checked, its gradient not computed). A batch of independent problems on one flat vector passes its
    own test, e.g. "every member is non-finite", so that one member going NaN does not stop the others; its ``f``
    must then keep a non-finite member out of the others' loss and gradient (mask it)."""
    if not (lr > 0 and math.isfinite(lr)) or steps < 1 or every < 1:
        raise ValueError(f"lr = {lr}, steps = {steps}, every = {every}: allowed is lr > 0, steps >= 1, every >= 1")
    value_and_grad = torch.func.grad_and_value(f)
    stops = _non_finite if diverged is None else diverged
    theta = theta0.detach().clone()
    ks, points, diverged_at, evals = [], [], None, 0
    with torch.no_grad():
        for k in range(steps + 1):
            if k == steps and on_iterate is None and diverged is None:  # nothing reads the last gradient
                if not torch.isfinite(theta).all():
                    diverged_at = k
                    break
            else:
                g, value = value_and_grad(theta)
                evals += k < steps
                if stops(theta, value, g):
                    diverged_at = k
                    break
                if on_iterate is not None:
                    on_iterate(k, theta, value, g)
            if k % every == 0 or k == steps:
                ks.append(k)
                points.append(theta.clone())
            if k < steps:
                theta = theta - lr * g
    thetas = torch.stack(points) if points else theta0.new_empty((0, *theta0.shape))  # diverged at iterate 0
    return Trajectory(np.array(ks, dtype=int) * lr, thetas, evals, diverged_at,
                      info={"method": "gd", "lr": lr, "iterations": np.array(ks, dtype=int)})


def paper_protocol(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, eta0: float, r: int,
                   steps: int, every: int = 1) -> Trajectory:
    """Elkabetz & Cohen's stand-in for gradient flow: GD with step eta0 / r for ``steps * r`` iterations, keeping
    every r-th iterate, so that point k sits at time k * eta0 like the k-th iterate of GD with eta0 (and of those,
    every ``every``-th and the last)."""
    if r < 1:
        raise ValueError(f"r = {r}: allowed is an integer >= 1")
    traj = gradient_descent(f, theta0, eta0 / r, steps * r, every=r * every)
    traj.times = (traj.info["iterations"] // r) * eta0  # iterate j * r sits at time j * eta0, exactly
    traj.info.update(method="paper-protocol", r=r, eta0=eta0)
    return traj


def distances(a: Trajectory, b: Trajectory, atol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """``(times, ||a(t) - b(t)||)`` at the times both recorded (up to where either stops: a diverged GD run ends
    early)."""
    common = np.array([t for t in a.times if np.any(np.abs(b.times - t) <= atol)])
    if len(common) == 0:
        raise ValueError("the trajectories share no recorded time")
    return common, (a.at(common, atol) - b.at(common, atol)).norm(dim=1).numpy()


def max_distance(a: Trajectory, b: Trajectory, atol: float = 1e-9) -> float:
    """max_t ||a(t) - b(t)|| over the times both recorded (inf when either diverged before the other's end)."""
    if a.diverged or b.diverged:
        return math.inf
    return float(distances(a, b, atol)[1].max())


def central_flow(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, lr: float, steps: int, *,
                 every: int = 1, substeps: int = 1, k: int = 1, near: float = 0.9, check_every: int = 5,
                 tol: float = 1e-6, seed: int = 0) -> Trajectory:
    """The central flow of GD with step ``lr`` (Cohen, Damian, Talwalkar, Kolter & Lee, ICLR 2025) over ``steps``
    GD steps' worth of time, recorded like :func:`gradient_descent` (time k * lr, every ``every``-th step and the
    last).

    While the sharpness S = lambda_max is below 2/lr it is the gradient flow; at the edge it is the flow projected
    so that the top eigenvalues stay at 2/lr: d(theta)/dt = -(grad f + sum_i c_i grad S_i), the sum over the
    eigenvalues S_i >= 2/lr, with c >= 0 solving the complementarity problem  <grad S_i, d(theta)/dt> <=
    -rho (S_i - 2/lr), equality where c_i > 0  (rho = 1/lr pulls the discretised flow back onto the edge). In the
    paper's notation c_i = sigma_i^2 / 2, and GD's time-averaged loss is predicted to be f + sum_i c_i S_i, recorded
    as ``info["excess"]``; ``info["on_edge"]`` marks the recorded points where the projection is active or the
    sharpness is within 1% of 2/lr.

    Integrated by classical RK4 with ``substeps`` steps per GD step. The top ``k`` eigenpairs come from Lanczos,
    warm-started, every ``check_every`` substeps while S < ``near`` x 2/lr and at every substep from there on;
    their gradients (:func:`nslib.tools.curvature.eigenvalue_gradient`) are computed only for eigenvalues above
    ``near`` x 2/lr and held, with S linearised, over the substep. A non-finite point stops the run
    (``diverged_at``); Lanczos failing to converge raises :class:`FlowError`.
    """
    from scipy.sparse.linalg import ArpackNoConvergence

    from . import curvature

    if not (lr > 0 and math.isfinite(lr)) or steps < 1 or every < 1 or substeps < 1 or check_every < 1:
        raise ValueError(f"lr = {lr}, steps = {steps}, every = {every}, substeps = {substeps}, check_every = "
                         f"{check_every}: allowed is lr > 0 and integers >= 1")
    if not 1 <= k <= 4 or not 0 < near <= 1:
        raise ValueError(f"k = {k}, near = {near}: allowed is 1 <= k <= 4 and 0 < near <= 1")
    edge, dt, rho = 2.0 / lr, lr / substeps, 1.0 / lr
    grad = torch.func.grad(f)
    theta = theta0.detach().clone()
    start = None  # warm start of Lanczos
    active = None  # (theta at the refresh, S_i, grad S_i as rows) of the eigenvalues near the edge
    counts = {"grads": 0, "products": 0, "eigenvalue_gradients": 0}
    rec = {"iterations": [], "points": [], "excess": [], "on_edge": [], "sharpness_times": [], "sharpness": []}

    def field(w):
        counts["grads"] += 1
        g = grad(w)
        if active is None:
            return -g, 0.0
        base, S, G = active
        S_here = S + G @ (w - base)  # S linearised over the substep
        on = S_here >= edge
        if not on.any():
            return -g, 0.0
        G_on = G[on]
        c = _complementarity(G_on @ G_on.T, rho * (S_here[on] - edge) - G_on @ g)
        return -(g + G_on.T @ c), float(c @ S_here[on])

    diverged_at, total = None, steps * substeps
    with torch.no_grad():
        for n in range(total + 1):
            if active is not None or n % check_every == 0:
                try:
                    e = curvature.eigen(f, theta, k, tol=tol, seed=seed, v0=start, ncv=6 if k == 1 else None)
                except ArpackNoConvergence as err:
                    raise FlowError(f"Lanczos did not converge at t = {n * dt:g}: {err}") from None
                counts["products"] += e.products
                start = e.vectors[:, 0]
                rec["sharpness_times"].append(n * dt)
                rec["sharpness"].append(float(e.values[0]))
                hot = [i for i in range(k) if e.values[i] >= near * edge]
                if hot:
                    with torch.enable_grad():
                        G = torch.stack([curvature.eigenvalue_gradient(f, theta, e.vectors[:, i])[1] for i in hot])
                    counts["eigenvalue_gradients"] += len(hot)
                    active = (theta.clone(), torch.as_tensor(e.values[hot], dtype=theta.dtype), G)
                else:
                    active = None
            k1, excess = field(theta)
            step, done = divmod(n, substeps)
            if done == 0 and (step % every == 0 or step == steps):
                rec["iterations"].append(step)
                rec["points"].append(theta.clone())
                rec["excess"].append(excess)
                # the discretised flow chatters across 2/lr (the projection switches on above it, off below it), so
                # "on the edge" is the projection active or the sharpness within 1% of 2/lr at this point
                rec["on_edge"].append(excess > 0 or (rec["sharpness_times"][-1] == n * dt
                                                     and rec["sharpness"][-1] >= 0.99 * edge))
            if n == total:
                break
            k2 = field(theta + 0.5 * dt * k1)[0]
            k3 = field(theta + 0.5 * dt * k2)[0]
            k4 = field(theta + dt * k3)[0]
            theta = theta + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            if not torch.isfinite(theta).all():
                diverged_at = -(-(n + 1) // substeps)  # the GD step within which it turned non-finite
                break
    its = np.array(rec["iterations"])
    info = {"method": "central-flow", "lr": lr, "substeps": substeps, "k": k, "iterations": its,
            "excess": np.array(rec["excess"]), "on_edge": np.array(rec["on_edge"], bool),
            "sharpness_times": np.array(rec["sharpness_times"]), "sharpness": np.array(rec["sharpness"]),
            "products": counts["products"], "eigenvalue_gradients": counts["eigenvalue_gradients"]}
    return Trajectory(its * lr, torch.stack(rec["points"]), counts["grads"], diverged_at, info)


def _complementarity(M: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The c >= 0 with M c - q >= 0 and c_i (M c - q)_i = 0 (M = G G^T, k <= 4): by trying the active sets, smallest
    first. For k = 1 it is max(0, q / M)."""
    k = len(q)
    for size in range(k + 1):
        for subset in itertools.combinations(range(k), size):
            c = torch.zeros_like(q)
            if subset:
                idx = list(subset)
                c[idx] = torch.linalg.lstsq(M[idx][:, idx], q[idx].unsqueeze(1)).solution.squeeze(1)
            slack = M @ c - q
            scale = 1e-10 * (1 + float(q.abs().max()))
            if (c >= -scale).all() and (slack >= -scale).all():
                return c.clamp_min(0)
    return torch.linalg.lstsq(M, q.unsqueeze(1)).solution.squeeze(1).clamp_min(0)
