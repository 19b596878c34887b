"""Training loops on torch's own optimizers and schedulers: full-batch GD or minibatch SGD /
Adam / RMSProp, constant or diminishing steps, history as a DataFrame, divergence as a result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

__all__ = ["OPTIMIZERS", "OPTIMIZER_OPTIONS", "SCHEDULES", "SCHEDULE_FACTORS", "History", "accuracy", "batches",
           "make_optimizer", "make_scheduler", "minibatches", "optimizer_options", "train"]

#: The optimizers by name: torch's class, and the options nslib accepts with torch's defaults. The one definition,
#: used by :func:`make_optimizer` and by :mod:`nslib.tools.ensembles` (which writes the same updates out on a
#: stacked tensor).
OPTIMIZER_OPTIONS: dict[str, tuple[type[torch.optim.Optimizer], dict]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.0, "weight_decay": 0.0}),
    "rmsprop": (torch.optim.RMSprop, {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0}),
    "adam": (torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
}
#: Optimizer names accepted by :func:`make_optimizer` and :func:`train`.
OPTIMIZERS = tuple(OPTIMIZER_OPTIONS)
#: Step-size schedules by name: the factor on the initial step at step k (torch's LambdaLR convention). The one
#: definition, used by :func:`make_scheduler` and by :mod:`nslib.tools.ensembles`.
SCHEDULE_FACTORS: dict[str, Callable[[int], float]] = {
    "constant": lambda k: 1.0,
    "invsqrt": lambda k: 1.0 / math.sqrt(k + 1),  # the classic diminishing step
}
#: Step-size schedules accepted by :func:`make_scheduler`.
SCHEDULES = tuple(SCHEDULE_FACTORS)


def optimizer_options(name: str, options: Mapping) -> dict:
    """``options`` for optimizer ``name`` completed with torch's defaults; an unknown name or option is refused."""
    if name not in OPTIMIZER_OPTIONS:
        raise ValueError(f"optimizer = {name!r}: allowed is one of {', '.join(OPTIMIZERS)}")
    defaults = OPTIMIZER_OPTIONS[name][1]
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError(f"optimizer_kwargs {sorted(unknown)} for {name}: allowed are {', '.join(defaults)}")
    return {**defaults, **options}


def make_optimizer(name: str, params, lr: float | None = None, **kwargs) -> torch.optim.Optimizer:
    """torch's SGD (no momentum by default: plain (sub)gradient steps), RMSprop or Adam, by name, with the options
    of :data:`OPTIMIZER_OPTIONS`."""
    options = optimizer_options(name, kwargs)
    return OPTIMIZER_OPTIONS[name][0](params, **options, **({} if lr is None else {"lr": lr}))


def make_scheduler(opt: torch.optim.Optimizer, schedule: str):
    """``constant`` -> None; ``invsqrt`` -> lr_k = lr_0 / sqrt(k + 1) (the classic diminishing step)."""
    if schedule not in SCHEDULE_FACTORS:
        raise ValueError(f"schedule = {schedule!r}: allowed is one of {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return None
    return torch.optim.lr_scheduler.LambdaLR(opt, SCHEDULE_FACTORS[schedule])


def minibatches(n: int, batch_size: int, generator: torch.Generator | Sequence[torch.Generator] | None = None,
                device="cpu"):
    """Endless minibatch indices: passes over ``range(n)`` in a fresh random order each (``torch.randperm`` with
    ``generator``, drawn on the CPU so that the order does not depend on the device), ``batch_size`` at a time; the
    tail of a pass shorter than a batch is dropped. With a list of generators, one order per generator, stacked
    into indices of shape (len(generators), batch_size): every stream passes over ``range(n)`` in step, so a member
    of an ensemble draws exactly what it would draw alone. :func:`train` and :mod:`nslib.tools.ensembles` draw
    from it."""
    many = isinstance(generator, (list, tuple))
    while True:
        if many:
            perm = torch.stack([torch.randperm(n, generator=g, device="cpu") for g in generator]).to(device)
        else:
            perm = torch.randperm(n, generator=generator, device="cpu").to(device)
        for pos in range(0, n - batch_size + 1, batch_size):
            yield perm[..., pos:pos + batch_size]


def batches(X: torch.Tensor, y: torch.Tensor, batch_size: int | None = None, generator=None):
    """Endless ``(xb, yb)``: the whole set when ``batch_size`` is None or >= len(X), else :func:`minibatches` drawn
    with ``generator``; a list of generators gives one order per generator, stacked along a new first axis (the
    members of an ensemble, each drawing as it would alone)."""
    if batch_size is None or batch_size >= len(X):
        while True:
            yield X, y
    for idx in minibatches(len(X), batch_size, generator, X.device):
        yield X[idx], y[idx]


@dataclass
class History:
    """What a training run recorded: a DataFrame (step, loss, metrics) and its divergence, if any."""

    frame: pd.DataFrame
    diverged_at: int | None = None  # first step whose loss was NaN or inf
    diverged_value: float | None = None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def final_loss(self) -> float:
        return float("nan") if self.diverged else float(self.frame["loss"].iloc[-1])


def train(model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
          X: torch.Tensor, y: torch.Tensor, *, optimizer: str = "sgd", lr: float = 0.1, steps: int = 100,
          batch_size: int | None = None, schedule: str = "constant", record_every: int = 1,
          metrics: Mapping[str, Callable[[torch.nn.Module], float]] | None = None,
          generator: torch.Generator | None = None, progress: bool = False,
          optimizer_kwargs: dict | None = None, after_step: Callable[[float], None] | None = None) -> History:
    """Train ``model`` on (X, y) for ``steps`` optimizer steps; full batch when ``batch_size`` is None.

    Every ``record_every`` steps (and at the end) the loss of the current minibatch and each
    ``metrics[name](model)`` are recorded. A NaN/inf loss stops the run and is reported as
    divergence (step and value), never raised. ``after_step(lr)``, if given, runs after every
    optimizer step with the step size just used (e.g. a proximal soft-thresholding).
    """
    if steps < 0 or record_every < 1:
        raise ValueError(f"steps = {steps}, record_every = {record_every}: allowed is steps >= 0, record_every >= 1")
    opt = make_optimizer(optimizer, model.parameters(), lr=lr, **(optimizer_kwargs or {}))
    sched = make_scheduler(opt, schedule)
    rows: list[dict] = []
    diverged_at = diverged_value = None
    data = batches(X, y, batch_size, generator)
    it = range(steps + 1)
    if progress:
        from tqdm import tqdm  # plain tqdm: readable in papermill logs, kept out of built pages

        it = tqdm(it, desc=f"{optimizer} lr={lr:g}", mininterval=5, leave=False)
    for t in it:
        xb, yb = next(data)
        loss = loss_fn(model(xb), yb)
        value = loss.item()
        if not math.isfinite(value):
            diverged_at, diverged_value = t, value
            break
        if t % record_every == 0 or t == steps:
            row = {"step": t, "loss": value, "lr": opt.param_groups[0]["lr"]}
            if metrics:
                with torch.no_grad():
                    row.update({k: float(fn(model)) for k, fn in metrics.items()})
            rows.append(row)
        if t == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step()
    return History(pd.DataFrame(rows), diverged_at, diverged_value)


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``X`` whose arg-max output equals the label ``y``."""
    return float((model(X).argmax(1) == y).double().mean())
