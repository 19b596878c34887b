"""Experiments of the finding *nonsmooth-convex-dynamics*: constant steps on convex functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ._dynamics import Trajectory, cycle_period, increases_per_100, run_dynamics
from ._objectives import make_objective

__all__ = ["TWIN_PAIRS", "behaviour", "random_starts", "step_size_study", "summarise", "twin_study", "cycle_table"]

# (smooth twin, non-smooth twin): the same shape with and without a kink at the minimiser
TWIN_PAIRS = (("quadratic", "abs"), ("huber", "abs"), ("smooth-l1-regression", "l1-regression"))


def random_starts(dim: int, n: int, scale: float, seed: int) -> torch.Tensor:
    """``n`` starts uniform in [-scale, scale]^dim (float64), deterministic by seed."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, dim, generator=g, dtype=torch.float64) * 2 - 1) * scale


def step_size_study(names, lrs, *, n_starts: int, steps: int, start_scale: float, seed: int,
                    optimizer: str = "sgd", schedule: str = "constant", **objective_kwargs) -> dict[str, Trajectory]:
    """Run ``optimizer`` on every objective in ``names`` at every lr, from the same random starts."""
    out = {}
    for i, name in enumerate(names):
        obj = make_objective(name, **objective_kwargs)
        x0 = random_starts(obj.dim, n_starts, start_scale, seed + 1000 * i)
        out[name] = run_dynamics(obj, x0, lrs, optimizer=optimizer, steps=steps, schedule=schedule)
    return out


def summarise(trajs: dict[str, Trajectory], window: int) -> pd.DataFrame:
    """One row per (objective, lr, start): late mean gap, period, rises per 100 steps, landings."""
    rows = []
    for name, tr in trajs.items():
        late = tr.late_gap(window)
        period = cycle_period(tr.x_tail)
        rises = increases_per_100(tr.gap, window)
        L, S = late.shape
        for li in range(L):
            for s in range(S):
                rows.append({
                    "objective": name, "optimizer": tr.optimizer, "schedule": tr.schedule, "lr": tr.lrs[li],
                    "start": s, "late_gap": late[li, s], "period": int(period[li, s]),
                    "rises_per_100": rises[li, s], "kink_landing_at": int(tr.kink_landing_at[li, s]),
                    "exact_min_at": int(tr.exact_min_at[li, s]), "diverged_at": int(tr.diverged_at[li, s]),
                })
    return pd.DataFrame(rows)


def cycle_table(summary: pd.DataFrame, names) -> pd.DataFrame:
    """Per objective of a :func:`summarise` frame: gap / lr (median, min), most common period, median loss
    rises per 100 late steps, exact kink landings and runs."""
    sub = summary[summary.objective.isin(names)].assign(gap_over_lr=lambda d: d.late_gap / d.lr)
    return sub.groupby("objective", sort=False).agg(
        median_gap_over_lr=("gap_over_lr", "median"), min_gap_over_lr=("gap_over_lr", "min"),
        period_mode=("period", lambda p: int(np.bincount(p).argmax())), rises_per_100=("rises_per_100", "median"),
        kink_landings=("kink_landing_at", lambda s: int((s >= 0).sum())), runs=("start", "size"))


def twin_study(optimizers, lrs, *, n_starts: int, steps: int, start_scale: float, seed: int, window: int,
               huber_width: float) -> pd.DataFrame:
    """Every optimizer on every objective of :data:`TWIN_PAIRS`, from shared starts: one summary frame."""
    names = list(dict.fromkeys(n for pair in TWIN_PAIRS for n in pair))
    frames = []
    for opt in optimizers:
        trajs = step_size_study(names, lrs, n_starts=n_starts, steps=steps, start_scale=start_scale, seed=seed,
                                optimizer=opt, huber_width=huber_width)
        frames.append(summarise(trajs, window))
    return pd.concat(frames, ignore_index=True)


def behaviour(frame: pd.DataFrame, converged_below: float) -> pd.DataFrame:
    """Per (optimizer, objective, lr): 'converges' if the median late gap of runs that did not land
    exactly on a kink is below ``converged_below``, 'diverges' if any run diverged, else 'stalls'."""
    rows = []
    for (opt, obj, lr), sub in frame.groupby(["optimizer", "objective", "lr"], sort=False):
        free = sub[sub.kink_landing_at < 0]
        if (sub.diverged_at >= 0).any():
            b = "diverges"
        elif free.empty:
            b = "lands on kink"
        else:
            b = "converges" if float(np.median(free.late_gap)) < converged_below else "stalls"
        rows.append({"optimizer": opt, "objective": obj, "lr": lr, "behaviour": b,
                     "median_late_gap": float(np.median(sub.late_gap)),
                     "kink_landings": int((sub.kink_landing_at >= 0).sum()), "runs": len(sub)})
    return pd.DataFrame(rows)
