"""Gradient flows and the gradient descent that discretises them, on one flat parameter vector.

- :func:`gradient_flow`: d(theta)/dt = -grad f(theta) by an adaptive Runge-Kutta solver from torchdiffeq
  (``dopri5`` by default, ``dopri8`` for tighter references), float64, dense output at the requested times;
- :func:`checked_flow`: a flow used as a reference, with its self-check: solved at two tolerances ``tighten``
  times apart, the tighter kept, and how far it moved returned as its (conservative) error;
- :func:`gradient_descent`: GD iterates recorded at times k * lr (the time GD stands for);
- :func:`paper_protocol`: Elkabetz & Cohen's reference, GD with eta0 / r compared every r-th iterate;
- :func:`max_distance`: the largest weight-space distance between two trajectories at their common times.

``f`` is any scalar function of a flat parameter vector (:func:`nslib.tools.models.flat_loss`). Divergence of
GD (a NaN/inf iterate) is recorded, not raised. A solver that cannot finish (step-size underflow, too many
steps) raises :class:`FlowError`, which a criterion reports as an inconclusive verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["METHODS", "FlowError", "Trajectory", "gradient_descent", "gradient_flow", "max_distance",
           "checked_flow", "paper_protocol"]

#: Adaptive solvers of torchdiffeq accepted by :func:`gradient_flow` (embedded Runge-Kutta pairs of order 5 and 8).
METHODS = ("dopri5", "dopri8")


class FlowError(RuntimeError):
    """The ODE solver could not integrate the flow (step-size underflow, or more than ``max_steps`` steps)."""


@dataclass
class Trajectory:
    """Parameters at increasing times: ``thetas[i]`` is the point at ``times[i]``.

    ``grad_evals`` counts gradient evaluations spent; ``diverged_at`` is the time of the first non-finite
    iterate (GD only; the trajectory stops before it); ``info`` says how it was computed."""

    times: np.ndarray
    thetas: torch.Tensor
    grad_evals: int
    diverged_at: float | None = None
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


def gradient_descent(f: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, lr: float, steps: int, *,
                     every: int = 1) -> Trajectory:
    """``steps`` GD iterates theta_{k+1} = theta_k - lr grad f(theta_k); iterate 0, every ``every``-th one and the
    last are recorded, iterate k at time k * lr (the time of the flow it discretises); ``info["iterations"]`` holds
    the k. A non-finite iterate stops the run and sets ``diverged_at`` (its time)."""
    if not (lr > 0 and math.isfinite(lr)) or steps < 1 or every < 1:
        raise ValueError(f"lr = {lr}, steps = {steps}, every = {every}: allowed is lr > 0, steps >= 1, every >= 1")
    grad = torch.func.grad(f)
    theta = theta0.detach().clone()
    ks, points, diverged_at, evals = [0], [theta.clone()], None, 0
    with torch.no_grad():
        for k in range(1, steps + 1):
            theta = theta - lr * grad(theta)
            evals += 1
            if not torch.isfinite(theta).all():
                diverged_at = k * lr
                break
            if k % every == 0 or k == steps:
                ks.append(k)
                points.append(theta.clone())
    return Trajectory(np.array(ks) * lr, torch.stack(points), evals, diverged_at,
                      info={"method": "gd", "lr": lr, "iterations": np.array(ks)})


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


def max_distance(a: Trajectory, b: Trajectory, atol: float = 1e-9) -> float:
    """max_t ||a(t) - b(t)|| over the times both recorded (inf when either diverged before the other's end)."""
    if a.diverged or b.diverged:
        return math.inf
    common = np.array([t for t in a.times if np.any(np.abs(b.times - t) <= atol)])
    if len(common) == 0:
        raise ValueError("the trajectories share no recorded time")
    return float((a.at(common, atol) - b.at(common, atol)).norm(dim=1).max())
