"""Many-member training at vector speed: M copies of one small architecture (other seeds, other step sizes, other
buffer-held hyperparameters such as a softplus beta) trained at once with :mod:`torch.func`.

The members' parameters are stacked (:func:`torch.func.stack_module_state`) into one flat tensor, one member's loss
is written with :func:`torch.func.functional_call`, :func:`torch.func.vmap` evaluates every member's loss in one
call, and one backward pass of their sum gives every member's gradient (the members share no parameter). The
optimizers are torch's SGD, RMSprop and Adam written out on the flat tensor with a step size per member, in torch's
own order of operations, so that a member follows :func:`nslib.tools.train.train` run alone (tested to 1e-8
relative in float64). Small models are bound by Python overhead, not arithmetic; stacking them pays it once
(``benchmarks/bench_seeds.py``).

    >>> ens = Ensemble([mlp([64, 32, 10]) for _ in range(32)])        # 32 seeds (seed before each mlp call)
    >>> run = train_ensemble(ens, F.cross_entropy, X, y, optimizer="sgd", lr=[0.1] * 16 + [0.2] * 16, steps=500)
    >>> run.histories[3].final_loss, run.member(3)                     # like tools.train's History, an nn.Module
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .models import BufferSoftplus, buffer_softplus
from .train import SCHEDULE_FACTORS, SCHEDULES, History, batches, optimizer_options

__all__ = ["STACKED_UPDATES", "Ensemble", "EnsembleRun", "train_ensemble"]

#: Modules that act element by element and hold no tensor: applied to stacked activations (M, N, F) as they are.
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Softplus, nn.Sigmoid, nn.LeakyReLU, nn.Identity)


def _stacked_plan(template: nn.Module) -> list[tuple[str, str, nn.Module]] | None:
    """How to run every member of a fully connected ``nn.Sequential`` at once with batched matrix products
    (``("linear" | "softplus-buffer" | "elementwise", child name, module)`` per child), or None when some child is
    anything else: then the members run under :func:`torch.func.vmap`."""
    if not isinstance(template, nn.Sequential):
        return None
    plan = []
    for name, mod in template.named_children():
        if type(mod) is nn.Linear:
            plan.append(("linear", name, mod))
        elif type(mod) is BufferSoftplus:
            plan.append(("softplus-buffer", name, mod))
        elif type(mod) in ELEMENTWISE:
            plan.append(("elementwise", name, mod))
        else:
            return None
    return plan


class Ensemble:
    """``M`` models of one architecture, their parameters and buffers stacked along a new leading axis.

    The members must agree in every parameter's and buffer's name, shape and dtype, and in everything that is not a
    tensor (their ``repr``): a hyperparameter that differs across members must live in a buffer (e.g. the
    ``softplus-buffer`` activation of :mod:`nslib.tools.models` keeps its beta in one). Batch norm in training mode
    is refused: its running statistics are updated in place, which ``vmap`` cannot do on stacked buffers.
    """

    def __init__(self, models: Sequence[nn.Module]):
        models = list(models)
        if not models:
            raise ValueError("models = []: allowed is at least one model")
        first = models[0]
        for i, m in enumerate(models[1:], 1):
            if repr(m) != repr(first):
                raise ValueError(f"models[{i}] differs from models[0] outside its tensors ({_first_diff(first, m)}): "
                                 f"a hyperparameter that varies across members must be a buffer")
            for kind, a, b in (("parameter", m.named_parameters(), first.named_parameters()),
                               ("buffer", m.named_buffers(), first.named_buffers())):
                sa = [(k, tuple(t.shape), t.dtype) for k, t in a]
                sb = [(k, tuple(t.shape), t.dtype) for k, t in b]
                if sa != sb:
                    raise ValueError(f"models[{i}] differs from models[0] in its {kind}s' names, shapes or dtypes")
        for name, mod in first.named_modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.training and mod.track_running_stats:
                raise ValueError(f"module {name!r} is batch norm in training mode: its running statistics cannot be "
                                 f"updated under vmap; use track_running_stats=False or eval()")
        self.template = copy.deepcopy(first)  # the architecture functional_call runs; its own tensors are unused
        self._plan = _stacked_plan(self.template)
        stacked, buffers = stack_module_state(models)
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        # One flat tensor holds every member's parameters, parameter by parameter, each block (M, *shape) contiguous:
        # the views below are free, and an optimizer step is a few operations on one tensor.
        self._layout, offset = [], 0
        for k, v in stacked.items():
            self._layout.append((k, offset, tuple(v.shape)))
            offset += v.numel()
        ref = next(iter(stacked.values()))
        self.flat = torch.cat([v.detach().reshape(-1) for v in stacked.values()]).to(ref.dtype)
        self.member_index = torch.cat([torch.arange(len(models), device=ref.device).repeat_interleave(v[0].numel())
                                       for v in stacked.values()])

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """``{name: tensor (M, *shape)}``, views into the flat storage (writes go to the members)."""
        return {k: self.flat[o:o + math.prod(shape)].view(shape) for k, o, shape in self._layout}

    def _leaves_with_flat_grad(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``({name: leaf (M, *shape)}, flat gradient)``: leaves that share the flat storage (an update of ``flat``
        moves them) and whose ``.grad`` are views of one flat gradient buffer, so that a backward pass writes every
        member's gradient straight into it. (Differentiating through slices of ``flat`` instead costs a zero-filled
        copy of the whole storage per parameter and per step: half of a small model's step.)"""
        grad = torch.zeros_like(self.flat)
        leaves = {}
        for k, o, shape in self._layout:
            leaf = self.flat[o:o + math.prod(shape)].view(shape).detach().requires_grad_(True)
            leaf.grad = grad[o:o + math.prod(shape)].view(shape)
            leaves[k] = leaf
        return leaves, grad

    def __len__(self) -> int:
        return int(self.member_index.max()) + 1 if len(self.member_index) else 0

    def _member_forward(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def _stacked_forward(self, params, buffers, x: torch.Tensor, per_member: bool) -> torch.Tensor:
        """Every member at once on a fully connected net: one batched matrix product per layer, activations applied
        to the stack (the same arithmetic as one member alone, without vmap's per-operator dispatch)."""
        h = x if per_member else x.expand(len(self), *x.shape)
        for kind, name, mod in self._plan:
            if kind == "linear":
                w = params[f"{name}.weight"].transpose(1, 2)
                bias = params.get(f"{name}.bias")
                h = torch.bmm(h, w) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, w)
            elif kind == "softplus-buffer":
                h = buffer_softplus(h, buffers[f"{name}.beta"].view(-1, 1, 1))
            else:
                h = mod(h)
        return h

    def outputs(self, params, buffers, X: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Every member's output at ``params`` (stacked, e.g. :attr:`params`) on ``X`` -> (M, N, ...)."""
        if self._plan is not None and X.dim() == (3 if per_member else 2):
            return self._stacked_forward(params, buffers, X, per_member)
        return vmap(self._member_forward, in_dims=(0, 0, 0 if per_member else None))(params, buffers, X)

    def forward(self, X: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Every member's output on ``X`` (shared) -> (M, N, ...); with ``per_member``, ``X`` is (M, N, ...)."""
        return self.outputs(self.params, self.buffers, X, per_member)

    __call__ = forward

    def member(self, i: int) -> nn.Module:
        """Member ``i`` as an ordinary module (a copy holding its current parameters and buffers)."""
        m = copy.deepcopy(self.template)
        m.load_state_dict({**{k: v[i] for k, v in self.params.items()}, **{k: v[i] for k, v in self.buffers.items()}})
        return m


def _first_diff(a: nn.Module, b: nn.Module) -> str:
    for la, lb in zip(repr(a).splitlines(), repr(b).splitlines()):
        if la != lb:
            return f"models[0] has {la.strip()}, this one {lb.strip()}"
    return "module structure"


@dataclass
class EnsembleRun:
    """What :func:`train_ensemble` returns: one :class:`~nslib.tools.train.History` per member, and the trained
    ensemble."""

    histories: list[History]
    ensemble: Ensemble

    def member(self, i: int) -> nn.Module:
        """Member ``i`` after training, as an ordinary module."""
        return self.ensemble.member(i)

    @property
    def frame(self) -> pd.DataFrame:
        """All members' records in one tidy frame with a ``member`` column."""
        return pd.concat([h.frame.assign(member=i) for i, h in enumerate(self.histories)], ignore_index=True)

    @property
    def diverged(self) -> list[bool]:
        return [h.diverged for h in self.histories]

    @property
    def final_loss(self) -> list[float]:
        return [h.final_loss for h in self.histories]


def _member_losses(loss_fn, out: torch.Tensor, y: torch.Tensor, y_dim: int | None) -> torch.Tensor:
    """Each member's mean loss from stacked outputs ``out`` (M, N, ...) and targets ``y`` (shared, or stacked when
    ``y_dim`` is 0): cross-entropy and square loss on the whole stack at once, any other loss under vmap."""
    M, N = out.shape[:2]
    if loss_fn is F.cross_entropy and y.dtype == torch.long and out.dim() == 3:
        targets = (y if y_dim == 0 else y.expand(M, N)).reshape(-1)
        return F.cross_entropy(out.reshape(M * N, -1), targets, reduction="none").view(M, N).mean(1)
    if loss_fn is F.mse_loss:
        return F.mse_loss(out, y.expand_as(out), reduction="none").reshape(M, -1).mean(1)
    return vmap(loss_fn, in_dims=(0, y_dim))(out, y)


def _per_member(value, m: int, name: str, ref: torch.Tensor) -> torch.Tensor:
    """A float or one value per member -> a float64 tensor of shape (M,) on ``ref``'s device."""
    vals = [float(value)] * m if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(vals) != m:
        raise ValueError(f"{name} has {len(vals)} values for {m} members: allowed is one number or one per member")
    if not all(math.isfinite(v) and v >= 0 for v in vals):
        raise ValueError(f"{name} = {vals}: allowed are finite values >= 0")
    return torch.tensor(vals, dtype=torch.float64).to(device=ref.device)


#: The optimizers of :data:`nslib.tools.train.OPTIMIZER_OPTIONS` that :class:`_StackedOptimizer` writes out (a test
#: checks that it covers all of them).
STACKED_UPDATES = ("sgd", "rmsprop", "adam")


class _StackedOptimizer:
    """torch's SGD / RMSprop / Adam (their single-tensor code paths) on all members' parameters flattened into one
    tensor, with one step size per member: a handful of tensor operations per step, whatever the model."""

    def __init__(self, name: str, flat: torch.Tensor, options: dict):
        self.name, self.flat, self.o = name, flat, options
        self.t = 0
        self.state: dict[str, torch.Tensor] = {}

    def step(self, g: torch.Tensor, lr: torch.Tensor, active: torch.Tensor | None) -> None:
        """One step with gradient ``g`` and step sizes ``lr``, both shaped like the flat storage; elements not
        ``active`` (of diverged members) stay still."""
        self.t += 1
        o, p, st = self.o, self.flat, self.state
        if o["weight_decay"]:
            g = g.add(p, alpha=o["weight_decay"])
        if self.name == "sgd":
            if o["momentum"]:
                st["buf"] = g.clone() if "buf" not in st else st["buf"].mul_(o["momentum"]).add_(g)
                g = st["buf"]
            update = g * lr
        elif self.name == "rmsprop":
            sq = st.setdefault("square_avg", torch.zeros_like(p))
            sq.mul_(o["alpha"]).addcmul_(g, g, value=1 - o["alpha"])
            update = g / sq.sqrt().add_(o["eps"]) * lr
        elif self.name == "adam":
            b1, b2 = o["betas"]
            m = st.setdefault("exp_avg", torch.zeros_like(p))
            v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / (1 - b2 ** self.t) ** 0.5).add_(o["eps"])
            update = m / denom * (lr / (1 - b1 ** self.t))
        else:
            raise NotImplementedError(f"optimizer {self.name!r} has no stacked update: add it to {STACKED_UPDATES}")
        if active is not None:  # only once a member has diverged: freeze it (its update may be NaN)
            update = torch.where(active, update, torch.zeros_like(update))
        p.sub_(update)


def train_ensemble(models: Ensemble | Sequence[nn.Module],
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], X: torch.Tensor, y: torch.Tensor, *,
                   optimizer: str = "sgd", lr: float | Sequence[float] = 0.1, steps: int = 100,
                   batch_size: int | None = None, schedule: str = "constant", record_every: int = 1,
                   metrics: Mapping[str, Callable[[Ensemble], torch.Tensor]] | None = None,
                   generator: torch.Generator | Sequence[torch.Generator] | None = None,
                   optimizer_kwargs: dict | None = None, progress: bool = False) -> EnsembleRun:
    """Train every member of ``models`` on (X, y) for ``steps`` steps at once; full batch when ``batch_size`` is None.

    The arguments mean what they mean in :func:`nslib.tools.train.train`, with these additions: ``lr`` is one step
    size for all or one per member; ``generator`` is one generator (every member sees the same minibatches) or one
    per member (each member draws its own order exactly as ``tools.train.train`` would with that generator);
    ``metrics[name](ensemble)`` returns one value per member. A member whose loss turns NaN/inf is frozen and
    reported as diverged (step and value); the others go on. ``models`` is trained in place when it is an
    :class:`Ensemble`.
    """
    if steps < 0 or record_every < 1:
        raise ValueError(f"steps = {steps}, record_every = {record_every}: allowed is steps >= 0, record_every >= 1")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}: allowed is one of {', '.join(SCHEDULES)}")
    options = optimizer_options(optimizer, optimizer_kwargs or {})
    ens = models if isinstance(models, Ensemble) else Ensemble(models)
    M, n = len(ens), X.shape[0]
    flat = ens.flat
    lr0 = _per_member(lr, M, "lr", flat)
    lr_flat = lr0[ens.member_index].to(flat.dtype)  # one step size per element of the flat storage
    gens = list(generator) if isinstance(generator, Sequence) else None
    if gens is not None and len(gens) != M:
        raise ValueError(f"generator has {len(gens)} generators for {M} members: allowed is one or one per member")
    full = batch_size is None or batch_size >= n
    data_dim = 0 if gens is not None and not full else None

    def batch_losses(params, buffers, xb, yb):
        return _member_losses(loss_fn, ens.outputs(params, buffers, xb, per_member=data_dim == 0), yb, data_dim)

    opt = _StackedOptimizer(optimizer, flat, options)
    recorded_steps: list[int] = []
    recorded: dict[str, list[torch.Tensor]] = {"loss": [], "lr": [], **{k: [] for k in (metrics or {})}}
    diverged_at = torch.full((M,), -1, dtype=torch.long)
    diverged_value = torch.zeros(M, dtype=torch.float64)
    active = None  # None while every member is finite
    data = batches(X, y, batch_size, gens if gens is not None else generator)  # per member: its own order
    it = range(steps + 1)
    if progress:
        from tqdm import tqdm  # plain tqdm: readable in papermill logs, kept out of built pages

        it = tqdm(it, desc=f"{M} members, {optimizer}", mininterval=5, leave=False)
    factor = SCHEDULE_FACTORS[schedule]
    leaves, grad = ens._leaves_with_flat_grad()
    for t in it:
        xb, yb = next(data)
        scale = factor(t)  # the schedule's factor, as torch's LambdaLR applies it
        losses = batch_losses(leaves, ens.buffers, xb, yb)
        values = losses.detach().double().cpu()
        newly = ~torch.isfinite(values) & (diverged_at < 0)
        if bool(newly.any()):
            diverged_at[newly], diverged_value[newly] = t, values[newly]
            active = (diverged_at < 0).to(flat.device)[ens.member_index]
        if t % record_every == 0 or t == steps:
            recorded_steps.append(t)
            recorded["loss"].append(values)
            recorded["lr"].append(lr0.cpu() * scale)
            if metrics:
                with torch.no_grad():
                    for k, fn in metrics.items():
                        recorded[k].append(fn(ens).detach().double().cpu())
        if t == steps or bool((diverged_at >= 0).all()):
            break
        grad.zero_()
        losses.sum().backward()  # members are independent: the sum's gradient is theirs, written into `grad`
        with torch.no_grad():
            opt.step(grad, lr_flat if scale == 1.0 else lr_flat * scale, active)
    table = {k: torch.stack(v).numpy() for k, v in recorded.items()}  # (records, M) each
    steps_rec = np.asarray(recorded_steps)
    histories = []
    for i in range(M):
        d = int(diverged_at[i])
        keep = steps_rec < d if d >= 0 else slice(None)  # like tools.train: nothing recorded from the divergence on
        frame = pd.DataFrame({"step": steps_rec[keep], **{k: v[keep, i] for k, v in table.items()}})
        histories.append(History(frame, d if d >= 0 else None, float(diverged_value[i]) if d >= 0 else None))
    return EnsembleRun(histories, ens)
