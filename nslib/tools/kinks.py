"""Kinks: ReLU with a chosen ReLU'(0), the recorder through which abs-smooth functions are written, and the kink
audit of any model.

- :func:`relu_alpha` / :class:`ReLUAlpha`: ReLU whose derivative at exact zeros is ``alpha`` times the upstream
  gradient (torch's own relu uses 0); -0.0 counts as 0. ``rule="constant"`` gives instead the rule of Bertoin et
  al.'s public code (deel-ai/relu-prime, ``relu.py``): the gradient at exact zeros is *set to* ``alpha``, whatever the
  upstream gradient (:data:`RELU_GRAD_RULES`).
- :class:`Kinks`: the kink operations handed to a function ``f(x, k)``; it records every pre-activation and applies
  a chosen derivative at 0 (or a chosen side per element), so that :mod:`nslib.tools.clarke` can evaluate every
  smooth piece.
- :func:`audit` / :class:`KinkAudit`: per layer, how many evaluations of a non-smooth torch operation (ReLU family,
  clamp, abs, max, MaxPool) sat exactly on a kink in a model's forward pass (``python -m nslib audit``).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .maxpool import window_ties

__all__ = ["AUDIT_RULES", "KinkAudit", "KinkFn", "Kinks", "RELU_GRAD_RULES", "ReLUAlpha", "audit", "audit_inputs",
           "load_model", "relu_alpha"]

#: What backpropagation returns where a ReLU's input is exactly 0: ``scaled`` is the chain rule with ReLU'(0) = alpha
#: (alpha times the upstream gradient); ``constant`` is the rule of Bertoin et al.'s code (deel-ai/relu-prime,
#: ``relu.py``, every commit): the gradient there is set to alpha and the upstream gradient is dropped.
RELU_GRAD_RULES = ("scaled", "constant")


class KinkFn(torch.autograd.Function):
    """relu or abs forward; backward g * (relu'(z) or sign(z)) away from 0 and g * zero_slope at exact zeros.

    ``zero_slope`` is a float or a tensor broadcastable to z (one choice per element, as the Clarke tools need);
    -0.0 counts as 0. Shared by :func:`relu_alpha`, :class:`Kinks` and :mod:`nslib.tools.clarke`.
    """

    @staticmethod
    def forward(ctx, z, kind: str, zero_slope):
        ctx.save_for_backward(z)
        ctx.kind, ctx.zero_slope = kind, zero_slope
        return z.clamp_min(0) if kind == "relu" else z.abs()

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        base = (z > 0).to(grad.dtype) if ctx.kind == "relu" else torch.sign(z)
        return grad * (base + ctx.zero_slope * (z == 0).to(grad.dtype)), None, None


class _ConstantAtZero(torch.autograd.Function):
    """relu forward; backward g where z > 0, 0 where z < 0, and the constant ``alpha`` where z == 0 (the upstream
    gradient dropped there): the rule of the authors' ``relu.py``."""

    @staticmethod
    def forward(ctx, z, alpha: float):
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        out = grad * (z > 0).to(grad.dtype)
        return torch.where(z == 0, torch.full_like(out, ctx.alpha), out), None


def relu_alpha(x: torch.Tensor, alpha: float | torch.Tensor = 0.0, rule: str = "scaled") -> torch.Tensor:
    """ReLU whose derivative at exactly 0 is ``alpha`` times the upstream gradient (torch's relu uses 0); with
    ``rule="constant"`` the gradient at exact zeros is set to ``alpha`` instead (the authors' code; a float alpha
    only)."""
    if rule == "scaled":
        return KinkFn.apply(x, "relu", alpha if isinstance(alpha, torch.Tensor) else float(alpha))
    if rule == "constant":
        return _ConstantAtZero.apply(x, float(alpha))
    raise ValueError(f"rule = {rule!r}: allowed is one of {', '.join(RELU_GRAD_RULES)}")


class ReLUAlpha(nn.Module):
    """Module form of :func:`relu_alpha`."""

    def __init__(self, alpha: float = 0.0, rule: str = "scaled"):
        super().__init__()
        if rule not in RELU_GRAD_RULES:
            raise ValueError(f"rule = {rule!r}: allowed is one of {', '.join(RELU_GRAD_RULES)}")
        self.alpha, self.rule = float(alpha), rule

    def forward(self, x):
        return relu_alpha(x, self.alpha, self.rule)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}" + ("" if self.rule == "scaled" else f", rule={self.rule}")


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


# ---------------------------------------------------------------------------------------------------------------
# Kink audit: how often a model's forward pass lands exactly on a non-smooth point


def _corners(x: torch.Tensor, lo, hi) -> torch.Tensor:
    """Elements of ``x`` exactly at a corner lo or hi (a number, a tensor or None)."""
    hit = torch.zeros_like(x, dtype=torch.bool)
    for c in (lo, hi):
        if c is not None:
            hit |= x == c
    return hit


def _arg(args, kwargs, i: int, name: str, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _elementwise(kink: str, at):
    """A rule for an elementwise kink: ``at(args, kwargs)`` gives the input and its corners."""
    def rule(args, kwargs):
        x, lo, hi = at(args, kwargs)
        return kink, x.numel(), int(_corners(x, lo, hi).sum())
    return rule


def _reduction_ties(args, kwargs):
    """max/min/amax/amin of one tensor (all elements or along dims): how many reductions have tied maxima."""
    x = args[0]
    other = _arg(args, kwargs, 1, "other")
    if isinstance(other, torch.Tensor):  # torch.max(a, b): elementwise, tied where equal
        return "tie", torch.broadcast_shapes(x.shape, other.shape).numel(), int((x == other).sum())
    dim = _arg(args, kwargs, 1, "dim")
    if dim is None:
        flat = x.reshape(-1)
        return "tie", 1, int(flat.numel() > 1 and int((flat == flat.max()).sum()) > 1)
    dims = [dim] if isinstance(dim, int) else list(dim)
    top = x.amax(dim=dims, keepdim=True)
    ties = (x == top).sum(dim=dims) > 1
    return "tie", ties.numel(), int(ties.sum())


def _pairwise_ties(args, kwargs):
    a, b = args[0], args[1]
    return "tie", torch.broadcast_shapes(a.shape, torch.as_tensor(b).shape).numel(), int((a == b).sum())


def _pool_ties(n: int):
    """max_pool{n}d: windows (one per output element) whose maximum is attained more than once."""
    def rule(args, kwargs):
        ties = window_ties(args[0], _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                           padding=_arg(args, kwargs, 3, "padding", 0), dilation=_arg(args, kwargs, 4, "dilation", 1),
                           ceil_mode=bool(_arg(args, kwargs, 5, "ceil_mode", False)), dims=n) > 1
        return "tie", ties.numel(), int(ties.sum())
    return rule


def _relu_at(args, kwargs):
    return args[0], 0, None


#: Kink rules by the name of the torch function intercepted: each returns (kink kind, sites, hits).
AUDIT_RULES = {
    **{name: _elementwise("corner", _relu_at) for name in ("relu", "relu_", "leaky_relu", "leaky_relu_", "abs",
                                                             "abs_", "absolute")},
    "relu6": _elementwise("corner", lambda a, kw: (a[0], 0, 6)),
    **{name: _elementwise("corner", lambda a, kw: (a[0], _arg(a, kw, 1, "min_val", -1.0),
                                                   _arg(a, kw, 2, "max_val", 1.0)))
       for name in ("hardtanh", "hardtanh_")},
    **{name: _elementwise("corner", lambda a, kw: (a[0], _arg(a, kw, 1, "min"), _arg(a, kw, 2, "max")))
       for name in ("clamp", "clamp_", "clip", "clip_")},
    **{name: _elementwise("corner", lambda a, kw: (a[0], _arg(a, kw, 1, "min"), None))
       for name in ("clamp_min", "clamp_min_")},
    **{name: _elementwise("corner", lambda a, kw: (a[0], None, _arg(a, kw, 1, "max")))
       for name in ("clamp_max", "clamp_max_")},
    **{name: _reduction_ties for name in ("max", "min", "amax", "amin")},
    **{name: _pairwise_ties for name in ("maximum", "minimum", "fmax", "fmin")},
    **{name: _pool_ties(n) for n in (1, 2, 3)
       for name in (f"max_pool{n}d", f"_max_pool{n}d", f"max_pool{n}d_with_indices")},
}


class KinkAudit(TorchFunctionMode):
    """Counts exact kink hits of every torch function in :data:`AUDIT_RULES` called while it is active, by the
    innermost module running (forward pre- and post-hooks keep the stack). Never changes a result: each call runs
    as it was made; the inputs are inspected before it (in-place ops included)."""

    def __init__(self, model: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.counts: dict[tuple[str, str, str, str], list[int]] = {}
        self._stack: list[tuple[str, str]] = [("(outside any module)", "")]
        self._handles: list = []

    def __enter__(self):
        if self.model is not None:
            for name, mod in self.model.named_modules():
                label = (name or "(model)", type(mod).__name__)
                # hooks must return None: a value returned by a forward hook would replace the module's output
                self._handles.append(mod.register_forward_pre_hook(lambda m, a, label=label: self._push(label)))
                self._handles.append(mod.register_forward_hook(lambda m, a, o: self._pop()))
        return super().__enter__()

    def _push(self, label) -> None:
        self._stack.append(label)

    def _pop(self) -> None:
        self._stack.pop()

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rule = AUDIT_RULES.get(getattr(func, "__name__", ""))
        if rule is not None and args and isinstance(args[0], torch.Tensor):
            with torch.no_grad():
                kink, sites, hits = rule(args, kwargs)
            layer, module = self._stack[-1]
            c = self.counts.setdefault((layer, module, func.__name__.strip("_"), kink), [0, 0])
            c[0] += sites
            c[1] += hits
        return func(*args, **kwargs)

    def table(self) -> pd.DataFrame:
        """One row per (layer, operation): sites evaluated, exact kink hits and their rate."""
        rows = [{"layer": k[0], "module": k[1], "operation": k[2], "kink": k[3], "sites": v[0], "hits": v[1],
                 "rate": v[1] / v[0] if v[0] else float("nan")} for k, v in self.counts.items()]
        return pd.DataFrame(rows, columns=["layer", "module", "operation", "kink", "sites", "hits", "rate"])


def audit(model: nn.Module, *batches: torch.Tensor) -> pd.DataFrame:
    """Exact kink hits per layer when ``model`` runs forward on each batch (no gradients, outputs unchanged).

    Counts ReLU-family inputs at their corners (relu, leaky_relu and abs at 0, relu6 at 0 and 6, hardtanh and
    clamp at their bounds), ties of max/min (reductions, elementwise pairs) and of MaxPool windows. ``sites`` is
    the number of elements (or max operations) evaluated, ``hits`` how many sat exactly on the kink (-0.0 counts
    as 0). Operations are seen through torch's function interception (:class:`torch.overrides.TorchFunctionMode`),
    so functional calls count as well as modules; each is attributed to the innermost module running.
    """
    if not batches:
        raise ValueError("audit needs at least one input batch")
    counter = KinkAudit(model)
    with torch.no_grad(), counter:
        for batch in batches:
            model(batch)
    return counter.table()


def load_model(spec: str) -> nn.Module:
    """A model for :func:`audit` from the command line: a file saved with ``torch.save(model, path)`` (loaded with
    ``weights_only=False``: only load files you trust), or ``package.module:factory`` naming a callable that
    takes no argument and returns the model (or an ``nn.Module`` subclass)."""
    import importlib
    from pathlib import Path

    if Path(spec).is_file():
        try:
            model = torch.load(spec, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors alike: not a saved model
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ValueError(f"model {spec!r} cannot be read as a file saved with torch.save(model, path) "
                             f"({type(exc).__name__}: {first})") from None
    elif Path(spec).exists():
        raise ValueError(f"model {spec!r} is not a file: give a file saved with torch.save(model, path) or "
                         f"package.module:factory")
    elif ":" in spec:
        mod_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"model {spec!r}: cannot import {attr!r} from {mod_name!r} ({exc}): allowed is "
                             f"package.module:factory naming an importable nn.Module, nn.Module subclass or function "
                             f"that takes no argument, or a file saved with torch.save(model, path)") from None
        if isinstance(obj, nn.Module):
            model = obj
        elif callable(obj) and _takes_no_argument(obj):
            try:
                model = obj()
            except Exception as exc:  # noqa: BLE001 - the user's factory: its error, in one line
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise ValueError(f"model {spec!r}: calling it raised {type(exc).__name__} ({first}): allowed is a "
                                 f"factory that builds the model with no argument") from None
        else:
            what = "a class whose constructor needs arguments" if isinstance(obj, type) else "not a factory"
            raise ValueError(f"model {spec!r} is {what}: allowed is an nn.Module, an nn.Module subclass or a function "
                             f"that takes no argument and returns one (wrap torch.nn.Linear(4, 2) in a function of "
                             f"your own)")
    else:
        raise ValueError(f"model {spec!r}: give a file saved with torch.save(model, path) or package.module:factory")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {spec!r} gave a {type(model).__name__}, not a torch.nn.Module "
                         "(a state_dict needs its model class: use package.module:factory)")
    return model.eval()


def _takes_no_argument(fn) -> bool:
    """Whether ``fn()`` is a valid call, judged from its signature without calling it (``os:system`` is not)."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: never called blind
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in sig.parameters.values())


def audit_inputs(input_shape: tuple[int, ...] | None, dataset: str | None, batch_size: int, batches: int,
                 dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """Input batches for a command-line audit: training samples of ``dataset`` (flat features, as
    :func:`nslib.tools.data.load` gives them, reshaped to ``input_shape`` when given) or standard normal
    samples of ``input_shape``."""
    from .data import load

    if batch_size < 1 or batches < 1:
        raise ValueError(f"batch size {batch_size} and batches {batches}: both must be >= 1")
    if dataset:
        X = load(dataset, n_train=batch_size * batches, seed=seed, dtype=dtype).X_train
        if input_shape:
            X = X.reshape(len(X), *input_shape)
    elif input_shape:
        X = torch.randn(batch_size * batches, *input_shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    else:
        raise ValueError("give --input-shape (e.g. 1,28,28) or --dataset (digits, mnist1d)")
    return list(X.split(batch_size))
