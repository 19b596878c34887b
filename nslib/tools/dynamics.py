"""Optimizer dynamics on batched objectives: many starts and step sizes in one loop, and the
statistics a verdict reads from them (late mean gap, cycle period, loss increases, kink landings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .objectives import Objective
from .train import make_optimizer, make_scheduler

__all__ = [
    "MIN_SETTLE_HALF",
    "StepSizeRuns",
    "blew_up",
    "cycle_period",
    "first_step_staying",
    "increases_per_100",
    "late_mean_gap",
    "run_dynamics",
    "settle_window_too_short",
    "settled",
]


@dataclass
class StepSizeRuns:
    """Per step size (L), per start (S): the gap f - f* at every step and the last iterates."""

    objective: str
    optimizer: str
    schedule: str
    lrs: np.ndarray  # (L,)
    gap: np.ndarray  # (L, S, steps + 1), non-finite where the run diverged
    x_tail: np.ndarray  # (L, S, tail, d)
    diverged_at: np.ndarray  # (L, S): first step with a non-finite value, -1 if none
    kink_landing_at: np.ndarray  # (L, S): step from which x sits exactly on a kink at f = f*, else -1
    exact_min_at: np.ndarray  # (L, S): step from which f = f* exactly to the end, else -1

    @property
    def diverged(self) -> np.ndarray:
        """(L, S) bool: the runs that went non-finite."""
        return self.diverged_at >= 0

    def late_gap(self, window: int) -> np.ndarray:
        return late_mean_gap(self.gap, window)


def first_step_staying(flags: np.ndarray) -> np.ndarray:
    """For boolean (..., T): first index t such that flags[..., t:] are all true; -1 if the last is false."""
    T = flags.shape[-1]
    rev_false = ~flags[..., ::-1]
    # position of the last False counted from the end; all-true rows stay from 0
    any_false = rev_false.any(-1)
    last_false_from_end = np.argmax(rev_false, axis=-1)
    start = np.where(any_false, T - last_false_from_end, 0)
    return np.where(flags[..., -1], start, -1)


def run_dynamics(objective: Objective, x0: torch.Tensor, lrs, *, optimizer: str = "sgd", steps: int = 1000,
                 schedule: str = "constant", tail: int = 64, progress: bool = False,
                 optimizer_kwargs: dict | None = None) -> StepSizeRuns:
    """Run torch optimizer ``optimizer`` from every start in ``x0`` (S, d) at every step size in ``lrs``.

    One parameter group per step size, so torch's own SGD / RMSprop / Adam run all of them in one
    loop; the objective is separable across starts, so the runs do not interact.
    """
    lrs = np.asarray(lrs, dtype=float)
    params = [torch.nn.Parameter(x0.detach().clone()) for _ in lrs]
    opt = make_optimizer(optimizer, [{"params": [p], "lr": float(lr)} for p, lr in zip(params, lrs)],
                         **(optimizer_kwargs or {}))
    sched = make_scheduler(opt, schedule)
    L, S, d = len(lrs), x0.shape[0], x0.shape[1]
    tail = min(tail, steps + 1)
    gaps = torch.empty(L, S, steps + 1, dtype=torch.float64)
    x_tail = torch.empty(L, S, tail, d, dtype=torch.float64)
    it = range(steps + 1)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"{optimizer} on {objective.name}", mininterval=5, leave=False)
    first_tail = steps + 1 - tail
    for t in it:
        x = torch.cat(params)  # one objective call for every step size; gradients flow back per group
        fvals = objective(x)
        with torch.no_grad():
            gaps[:, :, t] = fvals.detach().view(L, S) - objective.fmin
            if t >= first_tail:
                x_tail[:, :, t - first_tail] = x.detach().view(L, S, d)
        if t == steps:
            break
        for p in params:
            p.grad = None
        fvals.sum().backward()
        opt.step()
        if sched is not None:
            sched.step()
    with torch.no_grad():
        on_kink_end = objective.at_kink(torch.cat(params)).view(L, S).numpy()
    g = gaps.numpy()
    finite = np.isfinite(g)
    diverged = np.where(finite.all(-1), -1, np.argmin(finite, axis=-1))
    exact = first_step_staying(g == 0)
    # a landing: f = f* exactly from some step on, with the iterate sitting exactly on a kink
    landing = np.where(on_kink_end, exact, -1)
    return StepSizeRuns(objective.name, optimizer, schedule, lrs, g, x_tail.numpy(), diverged, landing, exact)


def late_mean_gap(gap: np.ndarray, window: int) -> np.ndarray:
    """Mean of f - f* over the last ``window`` iterates (even, so a 2-cycle is averaged fairly)."""
    if window < 2 or window % 2:
        raise ValueError(f"window = {window}: allowed is an even integer >= 2")
    return gap[..., -window:].mean(-1)


#: Fewest iterates in each half of a late window for a settledness check to mean anything: two halves of 2 agree by
#: chance, while 8 hold at least two whole periods of the short cycles (2 to 4) that constant steps fall into.
MIN_SETTLE_HALF = 8


def settle_window_too_short(window: int) -> bool:
    """Whether a late window of ``window`` iterates is too short to judge settledness (see :data:`MIN_SETTLE_HALF`)."""
    return (window // 4) * 2 < MIN_SETTLE_HALF


def settled(gap: np.ndarray, window: int, factor: float = 1.1, floor: float = 1e-12) -> np.ndarray:
    """Has the late window settled? The mean gap over the two halves of the last ``window`` iterates (each of even
    length, so a 2-cycle is averaged fairly) agree within ``factor``, or both are below ``floor`` (converged).
    NaN/inf runs are not settled, and neither is any run whose halves hold fewer than :data:`MIN_SETTLE_HALF` iterates
    (too short to tell): a too-short run never refutes. Returns a boolean array over the leading axes."""
    half = (window // 4) * 2
    if half < MIN_SETTLE_HALF:
        return np.zeros(gap.shape[:-1], dtype=bool)
    h1, h2 = gap[..., -2 * half:-half].mean(-1), gap[..., -half:].mean(-1)
    lo, hi = np.minimum(h1, h2), np.maximum(h1, h2)
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = hi <= factor * lo
    return np.isfinite(h1) & np.isfinite(h2) & ((hi <= floor) | agree)


def cycle_period(x_tail: np.ndarray, max_period: int = 16, rtol: float = 1e-9) -> np.ndarray:
    """Smallest p <= max_period with x_t = x_{t-p} (to ``rtol`` of the tail's spread) over the tail; 0 if none."""
    T = x_tail.shape[-2]
    scale = np.abs(x_tail).max(axis=(-2, -1)) + 1e-300
    out = np.zeros(x_tail.shape[:-2], dtype=int)
    for p in range(max_period, 0, -1):  # descending, so the smallest matching period is kept
        if p >= T:
            continue
        diff = np.abs(x_tail[..., p:, :] - x_tail[..., :-p, :]).max(axis=(-2, -1))
        out = np.where(diff <= rtol * scale, p, out)
    return out


def increases_per_100(gap: np.ndarray, window: int, tol: float = 1e-12) -> np.ndarray:
    """Number of steps in the last ``window`` where f rose by more than ``tol`` (relative), per 100 steps."""
    g = gap[..., -window - 1:]
    rises = (np.diff(g, axis=-1) > tol * (np.abs(g[..., :-1]) + tol)).sum(-1)
    return 100.0 * rises / window


def blew_up(tr: StepSizeRuns, factor: float = 1e6) -> np.ndarray:
    """(L, S): the run diverged (non-finite) or ended with a gap ``factor`` times its initial gap."""
    g0, gT = tr.gap[..., 0], tr.gap[..., -1]
    return tr.diverged | ~np.isfinite(gT) | (gT > factor * np.maximum(g0, 1e-300))
