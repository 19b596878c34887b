"""Finding *maxpool-jacobians* (Boustany, TMLR 2024): which Jacobian autodiff uses for MaxPool, and when it matters.

The page's experiments (the gradient difference between two MaxPool Jacobians at initialisation, counted by the
authors' rule per precision, with its ties split into real ones and rounding-made ones; the authors' 32-bit share by
batch size and with batch norm; training small CNNs over the Jacobian family J_beta by precision, optimizer and batch
norm, the step size tuned at beta = 0), its figures (``plot_*``) and one criterion per claim id:
:func:`difference_tracks_precision`, :func:`share32_grows_with_batch`, :func:`batchnorm_raises_share32`,
:func:`high_beta_breaks_16bit`, :func:`fp32_robust_to_beta`, :func:`mitigations_shrink_gap`, with the sources of their
constants in ``THRESHOLDS``. Every claim is judged on the paper's set-up (LeNet-5 on MNIST) and, at 16 bits, on the
authors' float16; bfloat16 and the other datasets are reported beside it. The MaxPool itself is
:mod:`nslib.tools.maxpool`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.ticker import LogLocator
from torch import nn

from ..figures import PALETTE, log_floor, panels, shared_legend
from ..runner import resolve_dtype
from ..tools import data, maxpool
from ..tools.seeds import stream_seed, stream_seeds
from ..tools.stats import t_half_width, wilson_interval
from ..tools.train import accuracy, train
from ..verdicts import Threshold, Verdict

__all__ = [
    # experiments
    "AUTHORS_ACCURACY", "AUTHORS_BATCH_SHARES", "AUTHORS_BN_SHARES", "AUTHORS_SHARES", "AUTHORS_THRESHOLDS",
    "DATASETS", "JUDGED_16BIT", "PAPER_DATASET", "SIXTEEN_BIT", "THRESHOLDS", "ShareRun", "TrainGrid", "ZoneRun",
    "accuracy_table", "composite_error", "conv_pool_probe", "evidence_comment", "make_cnn", "page_texts",
    "share_study", "share_table", "train_grid", "tune_lrs", "tuned_lrs", "zone_table", "zones",
    # figures
    "plot_accuracy_vs_beta", "plot_shares", "plot_zones",
    # criteria, one per claim id
    "batchnorm_raises_share32", "difference_tracks_precision", "fp32_robust_to_beta", "high_beta_breaks_16bit",
    "mitigations_shrink_gap", "share32_grows_with_batch",
]

#: Datasets: digits (8x8 images, 2-D pooling), MNIST-1D (40-sample signals, 1-D pooling), MNIST from local IDX files.
DATASETS = ("digits", "mnist1d", "mnist")
#: The dataset of the paper's own set-up (LeNet-5 on MNIST): the only one whose groups the paper's claims judge;
#: the others are measured beside it (``reported``), as the book's extensions.
PAPER_DATASET = "mnist"
#: The 16-bit precisions.
SIXTEEN_BIT = ("float16", "bfloat16")
#: The authors' 16 bits: ``.half()``, float16. Every 16-bit claim is judged on it; bfloat16 is reported beside it.
JUDGED_16BIT = "float16"
#: The authors' thresholds on sum over tensors of ||grad_beta0 - grad_beta1||_inf for "this minibatch differs"
#: (ryanboustany/MaxPool-numerical, its volume-estimation notebooks); bfloat16 takes the 16-bit one.
AUTHORS_THRESHOLDS = {"float16": 1e-3, "bfloat16": 1e-3, "float32": 1e-7, "float64": 1e-15}
#: The authors' shares of minibatches that differ by that rule, VGG11 on CIFAR-10 at initialisation (391 minibatches).
AUTHORS_SHARES = {"float16": 1.0, "float32": 0.55243, "float64": 0.0}
#: The authors' 32-bit share by batch size (their figure batch_size.pdf, read off the bars: about), counted on VGG19
#: and CIFAR-10 at initialisation (notebooks/volume_estimation_by_architecture.ipynb: the batch-size loop reuses the
#: last net of the architecture loop before it).
AUTHORS_BATCH_SHARES = {64: 0.27, 256: 0.60, 512: 0.77, 1024: 0.92}
#: The authors' 32-bit share without and with batch norm (figure batchnorm.pdf: about), VGG11 on CIFAR-10.
AUTHORS_BN_SHARES = {False: 0.54, True: 0.80}
#: Test accuracies in the authors' committed result files (repository ryanboustany/MaxPool-numerical):
#: (net / data, precision, betas) -> accuracy.
AUTHORS_ACCURACY = pd.DataFrame([
    ("LeNet / MNIST", "32-bit", "all beta", "0.992-0.993"),
    ("LeNet / MNIST", "16-bit (float16)", "beta <= 100", "0.993"),
    ("LeNet / MNIST", "16-bit (float16)", "beta = 1000, 10000", "0.098"),
    ("VGG11 / CIFAR-10, SGD", "32-bit", "beta <= 1000", "0.910"),
    ("VGG11 / CIFAR-10, SGD", "32-bit", "beta = 10000", "0.262"),
    ("VGG11 / CIFAR-10, SGD", "16-bit (float16)", "beta >= 1000", "0.10"),
    ("ResNet18 / CIFAR-10", "32-bit", "all beta", "0.916-0.917"),
], columns=["net / data", "precision", "beta", "test accuracy"])
#: Accuracy within this of chance (or a NaN loss) counts as "broken".
BROKEN_MARGIN = 0.05
#: Largest accuracy change (a fraction) that counts as "unchanged".
SAME_MARGIN = 0.02
#: A net "has learned" at beta = 0 when its mean test accuracy is at least this far from chance towards 1:
#: chance + LEARNED_FRACTION x (1 - chance). Claims that beta does or does not hurt need a net that has learned.
LEARNED_FRACTION = 0.5
#: Seeds needed to measure the seed-to-seed spread that "robust" and "mitigates" are decided beyond.
MIN_SEEDS = 3
#: Confidence of every interval a verdict decides beyond: the Student-t interval of a mean over seeds (t with n - 1
#: degrees of freedom: 4.30 standard errors at 3 seeds) and the Wilson interval of a share of minibatches.
CONFIDENCE = 0.95
#: "Most minibatches": the authors' shares are 100% at 16 bits and 0% at 64; a share decided above (below) one half
#: is on the authors' side at 16 (64) bits.
MAJORITY = 0.5
#: The share of validation data held out of the training set to tune the learning rate at beta = 0.
TUNE_FRACTION = 0.2

THRESHOLDS = (
    Threshold("difference-tracks-precision", "AUTHORS_THRESHOLDS", "1e-3 / 1e-7 / 1e-15 (16 / 32 / 64 bits)",
              "authors' code", "ryanboustany/MaxPool-numerical, volume-estimation notebooks: a minibatch's "
              "gradients differ when the sum over parameter tensors of the max-abs difference exceeds it"),
    Threshold("difference-tracks-precision", "MAJORITY", MAJORITY, "ours, fixed before the data",
              "the midpoint of the authors' 100% (16 bits) and 0% (64 bits), VGG11/CIFAR-10: a 16-bit share decided "
              "below it, or a 64-bit share decided above it, is not the authors' picture"),
    Threshold("difference-tracks-precision", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Wilson intervals of each share of minibatches"),
    Threshold("share32-grows-with-batch", "AUTHORS_THRESHOLDS[float32]", 1e-7, "authors' code",
              "the authors' volume-estimation notebooks, the 32-bit threshold; their shares about 27% / 60% / 77% / "
              "92% at "
              "batch 64 / 256 / 512 / 1024 (notebooks/volume_estimation_by_architecture.ipynb: VGG19, the last net "
              "of its architecture loop, on CIFAR-10 at initialisation; judged here on LeNet-5 / MNIST)"),
    Threshold("share32-grows-with-batch", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Wilson intervals; growth is decided between the smallest and the largest batch size, "
              "and no step between neighbours may fall beyond them"),
    Threshold("batchnorm-raises-share32", "AUTHORS_THRESHOLDS[float32]", 1e-7, "authors' code",
              "the authors' volume-estimation notebooks; their shares about 54% without and 80% with batch norm "
              "(VGG11 on CIFAR-10 at initialisation; judged here on LeNet-5 / MNIST)"),
    Threshold("batchnorm-raises-share32", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Wilson intervals of the two shares"),
    Threshold("high-beta-breaks-16bit", "min_high_beta", 1000.0, "authors' code",
              "the authors' committed LeNet/MNIST 16-bit result files: 0.993 for beta <= 100, 0.098 at beta = "
              "1000 and 10000"),
    Threshold("high-beta-breaks-16bit", "BROKEN_MARGIN", BROKEN_MARGIN, "ours, fixed before the data",
              "the authors' broken runs sit at 0.098, chance on MNIST; 5 points above chance keeps a run that "
              "learned nothing broken"),
    Threshold("high-beta-breaks-16bit", "SAME_MARGIN", SAME_MARGIN, "ours, fixed before the data",
              "the authors' beta <= 100 runs agree to 0.001; 2 points is the seed-to-seed scale of the book's short "
              "runs "
              "(first pilot, digits, 15 epochs: 0.90-0.94 over seeds)"),
    Threshold("high-beta-breaks-16bit", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Student-t interval of the paired change over seeds"),
    Threshold("high-beta-breaks-16bit", "MIN_SEEDS", MIN_SEEDS, "ours, fixed before the data",
              "the fewest seeds that give a spread (t with 2 degrees of freedom)"),
    Threshold("high-beta-breaks-16bit", "LEARNED_FRACTION", LEARNED_FRACTION, "ours, fixed before the data",
              "beta = 0 must reach halfway from chance to 1 (0.55 for ten classes): a net that has not learned "
              "cannot be broken"),
    Threshold("fp32-robust-to-beta", "SAME_MARGIN", SAME_MARGIN, "ours, fixed before the data",
              "the authors' LeNet/MNIST 32-bit runs span 0.992-0.993 over beta; 2 points is the seed-to-seed scale "
              "of the book's short runs"),
    Threshold("fp32-robust-to-beta", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Student-t interval of the paired change over seeds"),
    Threshold("fp32-robust-to-beta", "MIN_SEEDS", MIN_SEEDS, "ours, fixed before the data",
              "the fewest seeds that give a spread"),
    Threshold("fp32-robust-to-beta", "LEARNED_FRACTION", LEARNED_FRACTION, "ours, fixed before the data",
              "as for high-beta-breaks-16bit"),
    Threshold("mitigations-shrink-gap", "SAME_MARGIN", SAME_MARGIN, "ours, fixed before the data",
              "the shrink of the relative gap must exceed 2 points"),
    Threshold("mitigations-shrink-gap", "CONFIDENCE", CONFIDENCE, "ours, fixed before the data",
              "two-sided Student-t intervals over seeds, combined in quadrature"),
    Threshold("mitigations-shrink-gap", "MIN_SEEDS", MIN_SEEDS, "ours, fixed before the data",
              "the fewest seeds that give a spread"),
    Threshold("mitigations-shrink-gap", "LEARNED_FRACTION", LEARNED_FRACTION, "ours, fixed before the data",
              "as for high-beta-breaks-16bit"),
)


def _verdict(state: bool | str, criterion: str, **measured) -> Verdict:
    """A group's verdict from the short form a criterion computes: True, False, or why it cannot decide."""
    if isinstance(state, str):
        return Verdict.undecided(criterion, state, **measured)
    return Verdict.decided(state, criterion, **measured)


def _judge(groups: Mapping[str, Verdict], judged: Sequence[str], criterion: str, missing: str) -> Verdict:
    """Combine the ``judged`` groups by the book's rule, with every other group ``reported`` beside them; with no
    judged group, inconclusive because ``missing``."""
    main = {k: v for k, v in groups.items() if k in judged}
    reported = {k: v for k, v in groups.items() if k not in judged}
    if not main:
        return Verdict.undecided(criterion, missing, reported=reported)
    return Verdict.combine(main, criterion, reported=reported)


def _judged(dataset: str, dtype: str | None = None) -> bool:
    """Whether a group is the paper's: LeNet-5 on MNIST, and at 16 bits the authors' float16."""
    return dataset == PAPER_DATASET and (dtype is None or dtype not in SIXTEEN_BIT or dtype == JUDGED_16BIT)


_NOT_PAPER = (f"the paper's set-up ({PAPER_DATASET}: LeNet-5, {JUDGED_16BIT} at 16 bits) was not run; the groups "
              "run are reported")


# --------------------------------------------------------------------------------------------------------------- Set-up

def conv_pool_probe(dtype: torch.dtype, device) -> None:
    """What the page computes, in miniature: a convolution and a J_beta MaxPool forward and backward (the probe
    ``nslib.start`` runs for each precision, so that one the device cannot compute is refused before any run)."""
    x = torch.randn(2, 1, 6, 6, device=device).to(dtype).requires_grad_()
    w = torch.randn(2, 1, 3, 3, device=device).to(dtype)
    maxpool.max_pool(F.conv2d(x, w), 2, beta=1.0).sum().backward()


# ----------------------------------------------------------------------- The authors' forward composite, as an ablation

def composite_error(dtypes: Sequence[str], betas: Sequence[float], seed: int = 0) -> pd.DataFrame:
    """The authors' forward composite beta * m + (1 - beta) * m against the exact max m, on post-ReLU-like inputs
    (half zeros, half uniform in (0, 1)): the largest absolute forward error, per precision and beta."""
    g = torch.Generator().manual_seed(stream_seed(seed, "composite inputs"))
    x = torch.rand(16, 4, 8, 8, generator=g, dtype=torch.float64)
    x = torch.where(torch.rand(x.shape, generator=g, dtype=torch.float64) < 0.5, torch.zeros(()), x)
    rows = []
    for name in dtypes:
        xd = x.to(resolve_dtype(name))
        exact = F.max_pool2d(xd, 2).double()
        for b in betas:
            comp = maxpool.composite_max_pool(xd, 2, beta=float(b)).double()
            rows.append({"dtype": name, "beta": float(b), "max forward error": float((comp - exact).abs().max())})
    return pd.DataFrame(rows).pivot(index="beta", columns="dtype", values="max forward error")[list(dtypes)]


# ------------------------------------------------- At initialisation: how often do the two Jacobians disagree, and why?

def make_cnn(input_shape: Sequence[int], n_classes: int, beta: float, *, batch_norm: bool = False, seed: int = 0,
             dtype: torch.dtype = torch.float32, device="cpu") -> nn.Sequential:
    """conv-ReLU-MaxPool twice, then linear layers, with MaxPool's backward J_beta. 2-D for (1, H, W) inputs, 1-D for
    (1, L). On 28x28 inputs it is LeNet-5 (6 and 16 channels, kernel 5, head 120-84); on smaller inputs kernel 3 and
    8 and 16 channels. Batch norm, when asked, sits between each convolution and its ReLU."""
    torch.manual_seed(seed)
    two_d = len(input_shape) == 3
    conv, norm, pool = ((nn.Conv2d, nn.BatchNorm2d, maxpool.MaxPool2d) if two_d
                        else (nn.Conv1d, nn.BatchNorm1d, maxpool.MaxPool1d))
    lenet = two_d and input_shape[-1] >= 28
    k, c1, c2 = (5, 6, 16) if lenet else (3, 8, 16)
    layers: list[nn.Module] = []
    for cin, cout, pad in ((1, c1, 2 if lenet else 1), (c1, c2, 0 if lenet else 1)):
        layers.append(conv(cin, cout, k, padding=pad))
        if batch_norm:
            layers.append(norm(cout))
        layers += [nn.ReLU(), pool(2, beta=beta)]
    layers.append(nn.Flatten())
    with torch.no_grad():
        n_flat = nn.Sequential(*layers)(torch.zeros(1, *input_shape)).shape[1]
    layers += ([nn.Linear(n_flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, n_classes)] if lenet
               else [nn.Linear(n_flat, n_classes)])
    return nn.Sequential(*layers).to(device=device, dtype=dtype)


@dataclass
class ZoneRun:
    """Per (dataset, precision, minibatch) at initialisation: the gradient difference between beta = 0 and beta = 1
    (max over tensors and sum over tensors of ||.||_inf), and the tied MaxPool windows split as the paper defines its
    zones (:func:`nslib.tools.maxpool.tie_zones`): bifurcation (tied over the reals, and the Jacobian choice changes
    the gradient), inert (tied over the reals, but it cannot) and compensation (tied only after rounding)."""

    frame: pd.DataFrame


def _set_beta(model: nn.Module, beta: float) -> None:
    for m in model.modules():
        if isinstance(m, (maxpool.MaxPool1d, maxpool.MaxPool2d)):
            m.beta = float(beta)


def _grads(model: nn.Module, xb, yb, beta: float) -> list[torch.Tensor]:
    _set_beta(model, beta)
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(xb), yb).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def _pool_inputs(model: nn.Module, xb) -> list[torch.Tensor]:
    """The input of every MaxPool layer on ``xb`` (one forward pass, no gradient)."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
             for m in model.modules() if isinstance(m, (maxpool.MaxPool1d, maxpool.MaxPool2d))]
    try:
        with torch.no_grad():
            model(xb)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _plain_copy(model: nn.Module) -> nn.Module:
    """The model with torch's own MaxPool layers in place of ours: the same forward, and forward-mode AD through it
    (our backward-only rule is a custom autograd Function without a JVP)."""
    plain = copy.deepcopy(model)
    for i, layer in enumerate(plain):
        if isinstance(layer, (maxpool.MaxPool1d, maxpool.MaxPool2d)):
            cls = nn.MaxPool2d if isinstance(layer, maxpool.MaxPool2d) else nn.MaxPool1d
            plain[i] = cls(layer.kernel_size, layer.stride, layer.padding, layer.dilation, ceil_mode=layer.ceil_mode)
    return plain


def _pool_tangents(model: nn.Module, xb, n_directions: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """Per MaxPool layer, the directional derivatives of its input along ``n_directions`` random parameter
    directions (one JVP each): (R, *input shape). Two inputs whose rows of the parameter Jacobian agree get the same
    value along every direction; rows that differ get different values with probability 1."""
    plain = _plain_copy(model)
    params = {k: v.detach() for k, v in plain.named_parameters()}
    buffers = dict(plain.named_buffers())
    pools = [m for m in plain.modules() if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))]

    def pool_inputs(p):
        seen = []
        hooks = [m.register_forward_pre_hook(lambda _m, args: seen.append(args[0])) for m in pools]
        try:
            torch.func.functional_call(plain, (p, buffers), (xb,))
        finally:
            for h in hooks:
                h.remove()
        return tuple(seen)

    g = torch.Generator().manual_seed(seed)
    along = []
    for _ in range(n_directions):
        direction = {k: torch.randn(v.shape, generator=g, dtype=v.dtype).to(v.device) for k, v in params.items()}
        along.append(torch.func.jvp(pool_inputs, (params,), (direction,))[1])
    return [torch.stack([t[i] for t in along]) for i in range(len(pools))]


def _pool_upstream(model: nn.Module, xb, yb) -> list[torch.Tensor]:
    """Per MaxPool layer, the gradient of the loss at its output (torch's own Jacobian, beta = 0)."""
    outs = []

    def keep(_m, _args, out):
        out.retain_grad()
        outs.append(out)

    hooks = [m.register_forward_hook(keep) for m in model.modules()
             if isinstance(m, (maxpool.MaxPool1d, maxpool.MaxPool2d))]
    try:
        _set_beta(model, 0.0)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
    finally:
        for h in hooks:
            h.remove()
    return [o.grad.detach() for o in outs]


def zones(splits: dict[str, data.Split], dtypes: Sequence[str], n_batches: int, batch_size: int, seed: int = 0,
          device="cpu") -> ZoneRun:
    """For each dataset and precision: one initialisation (the same weights at every precision, from the page seed's
    stream ``zones init``), ``n_batches`` minibatches of the training set; on each, the gradients with beta = 0 and
    beta = 1, and the MaxPool windows tied at this precision, classified by the same pass in float64 (tied there
    too? do the tied inputs depend differently on the parameters, and does the window pass a gradient back?)."""
    rows = []
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        base = make_cnn(shape, n_classes, 0.0, seed=stream_seed(seed, f"zones init {ds}"), dtype=torch.float64,
                        device=device)
        g = torch.Generator().manual_seed(stream_seed(seed, f"zones batches {ds}"))
        order = torch.randperm(len(split.X_train), generator=g)[: n_batches * batch_size].to(split.X_train.device)
        batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)][:n_batches]
        # what each real tie does is a property of the float64 pass, the same at every precision
        exact = []
        for idx in batches:
            xb64, yb = split.X_train[idx].double(), split.y_train[idx]
            exact.append((_pool_inputs(base, xb64), _pool_tangents(base, xb64, seed=stream_seed(seed, "tangents")),
                          _pool_upstream(base, xb64, yb)))
        for name in dtypes:
            dt = resolve_dtype(name)
            model = copy.deepcopy(base).to(dt)
            for b, idx in enumerate(batches):
                xb, yb = split.X_train[idx].to(dt), split.y_train[idx]
                g0, g1 = _grads(model, xb, yb, 0.0), _grads(model, xb, yb, 1.0)
                diffs = [float((a.double() - c.double()).abs().max()) for a, c in zip(g0, g1)]
                low = _pool_inputs(model, xb)
                z = {"windows": 0, "bifurcation": 0, "inert": 0, "compensation": 0, "exact_only": 0}
                for lo, ex, tangents, upstream in zip(low, *exact[b]):
                    for k, v in maxpool.tie_zones(lo, ex, 2, tangents=tangents, upstream=upstream).items():
                        z[k] += v
                rows.append({"dataset": ds, "dtype": name, "batch": b, "max_inf": max(diffs), "sum_inf": sum(diffs),
                             "differs": sum(diffs) > AUTHORS_THRESHOLDS[name], **z})
    return ZoneRun(pd.DataFrame(rows))


#: Short precision names for crowded tick labels.
_DTYPE_SHORT = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}


def plot_zones(run: ZoneRun):
    """Left: the gradient difference beta = 0 vs 1 per minibatch at each precision, with the authors' thresholds.
    Right: tied MaxPool windows per minibatch by zone: bifurcation, inert and compensation. Each panel's legend
    below it."""
    f = run.frame
    fig, (ax, bx) = panels(2, panel=(5.0, 4.2))
    datasets, dtypes = list(dict.fromkeys(f.dataset)), list(dict.fromkeys(f.dtype))
    width = 0.8 / max(len(datasets), 1)
    for j, ds in enumerate(datasets):
        for i, d in enumerate(dtypes):
            v = f[(f.dataset == ds) & (f.dtype == d)].sum_inf
            xs = i + (j - (len(datasets) - 1) / 2) * width + np.linspace(-width / 3, width / 3, len(v))
            ax.plot(xs, log_floor(v), "o", ms=3.5, color=PALETTE[j], label=ds if i == 0 else None)
        for i, d in enumerate(dtypes):
            ax.hlines(AUTHORS_THRESHOLDS[d], i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                      label="authors' threshold" if (i == 0 and j == 0) else None)
    ax.set(xticks=range(len(dtypes)), xticklabels=[_DTYPE_SHORT.get(d, d) for d in dtypes], yscale="log",
           xlabel="precision", ylabel=r"$\sum \|g_{\beta=0} - g_{\beta=1}\|_\infty$ (exact 0 at 1e-18)",
           title="Gradient difference at init")
    ax.yaxis.set_major_locator(LogLocator(numticks=7))
    ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    kinds = [("bifurcation", "bifurcation: real tie, the choice moves the gradient", PALETTE[0]),
             ("inert", "inert: real tie, the choice cannot matter", PALETTE[2]),
             ("compensation", "compensation: tied only after rounding", PALETTE[3])]
    agg = f.groupby(["dataset", "dtype"], sort=False)[[k for k, _, _ in kinds]].mean().reset_index()
    labels = [f"{r.dataset}\n{_DTYPE_SHORT.get(r.dtype, r.dtype)}" for r in agg.itertuples()]
    xs = np.arange(len(agg))
    for j, (kind, label, color) in enumerate(kinds):  # side by side on a log axis: the counts differ by decades
        bx.bar(xs + (j - 1) * 0.27, agg[kind], width=0.27, color=color, label=label)
    bx.set(xticks=xs, yscale="log", ylabel="tied windows per minibatch (none: no bar)",
           title="Where the ties come from")
    bx.set_xticklabels(labels, fontsize="x-small")
    bx.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return fig


def _shares(f: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Per precision: (minibatches that differ by the authors' rule, minibatches)."""
    return {d: (int(g.differs.sum()), len(g)) for d, g in f.groupby("dtype", sort=False)}


def difference_tracks_precision(run: ZoneRun) -> Verdict:
    """The authors' volume test at initialisation: the share of minibatches whose beta = 0 and beta = 1 gradients
    differ (sum over parameter tensors of ||.||_inf above the authors' threshold of each precision, 1e-3 / 1e-7 /
    1e-15 at 16 / 32 / 64 bits) falls with the precision, as in their VGG11/CIFAR-10 count (100% / 55% / 0%). Per
    dataset and 16-bit precision, with 95% Wilson intervals of each share: holds when the 16-bit share is decided
    above ``MAJORITY`` and the 64-bit share below it, and the 32-bit share (when run) is not beyond the intervals
    outside them; does not hold when the 16-bit share is decided below ``MAJORITY``, the 64-bit one above it, or the
    order is reversed beyond the intervals; otherwise inconclusive (raise zone_batches).

    Judged: the paper's set-up (LeNet-5 on MNIST) at float16, the authors' 16 bits; bfloat16 and other datasets are
    reported beside it. Preconditions: a 16-bit precision and float64 were run; every gradient was finite; the
    16-bit passes met tied windows. Each group measures the shares (with their intervals) and the largest sum of
    differences per precision."""
    criterion = (f"share of minibatches whose sum over tensors of ||g_beta0 - g_beta1||_inf exceeds the authors' "
                 f"threshold (1e-3 / 1e-7 / 1e-15): at 16 bits decided above {MAJORITY:.0%}, at 64 bits below, 32 bits "
                 f"between ({CONFIDENCE:.0%} Wilson intervals); float16 judged, bfloat16 reported")
    f = run.frame
    groups, judged = {}, []
    for ds, sub in f.groupby("dataset", sort=False):
        present = list(dict.fromkeys(sub.dtype))
        for low in [d for d in present if d in SIXTEEN_BIT]:
            name = f"{ds} {low}"
            if _judged(ds, low):
                judged.append(name)
            part = sub[sub.dtype.isin([low, "float32", "float64"])]
            counts = _shares(part)
            ci = {d: wilson_interval(k, n, CONFIDENCE) for d, (k, n) in counts.items()}
            ties = int(part[part.dtype == low][["bifurcation", "inert", "compensation"]].sum().sum())
            measured = {}
            for d in (low, "float32", "float64"):
                if d in counts:
                    k, n = counts[d]
                    measured |= {f"share_{d}": k / n, f"share_{d}_low": ci[d][0], f"share_{d}_high": ci[d][1],
                                 **({f"authors_share_{d}": AUTHORS_SHARES[d]} if d in AUTHORS_SHARES else {}),
                                 f"largest_sum_{d}": float(part[part.dtype == d].sum_inf.max())}
            measured |= {"minibatches": int(counts[low][1]), f"tied_windows_{low}": ties}
            if "float64" not in counts:
                state = "needs float64 beside the 16-bit precision (the authors' 0% end)"
            elif not np.isfinite(part.sum_inf).all():
                state = "a gradient at initialisation was not finite (NaN or inf): nothing to compare"
            elif ties == 0:
                state = f"no tied window at {low}: the two Jacobians agree by construction, nothing to test"
            else:
                (lo16, hi16), (lo64, hi64) = ci[low], ci["float64"]
                lo32, hi32 = ci.get("float32", (lo64, hi16))
                reversed_ = lo32 > hi16 or lo64 > hi32 or lo64 > hi16
                if hi16 < MAJORITY or lo64 > MAJORITY or reversed_:
                    state = False
                elif lo16 > MAJORITY and hi64 < MAJORITY:
                    state = True
                else:
                    state = (f"the {low} share {counts[low][0]}/{counts[low][1]} and the float64 share "
                             f"{counts['float64'][0]}/{counts['float64'][1]} are not decided on either side of "
                             f"{MAJORITY:.0%} at {CONFIDENCE:.0%}: raise zone_batches")
            groups[name] = _verdict(state, criterion, **measured)
    return _judge(groups, judged, criterion, _NOT_PAPER if groups else "no 16-bit precision was run")


def zone_table(run: ZoneRun) -> pd.DataFrame:
    """Per dataset and precision: the gradient difference (smallest and largest over the minibatches), the share of
    minibatches above the authors' threshold, the tied windows per minibatch by zone, and the compensation share of
    the ties that can move the gradient (bifurcation + compensation)."""
    f = run.frame
    out = f.groupby(["dataset", "dtype"], sort=False).agg(
        min_difference=("max_inf", "min"), max_difference=("max_inf", "max"),
        share_above_threshold=("differs", "mean"), windows=("windows", "mean"),
        bifurcation=("bifurcation", "mean"), inert=("inert", "mean"), compensation=("compensation", "mean"))
    out["threshold"] = [AUTHORS_THRESHOLDS[d] for _, d in out.index]
    n = f.groupby(["dataset", "dtype"], sort=False).size()
    ci = [wilson_interval(int(round(p * m)), int(m), CONFIDENCE) for p, m in zip(out.share_above_threshold, n)]
    out["share 95% interval"] = [f"{lo:.0%}-{hi:.0%}" for lo, hi in ci]
    out["authors' share (VGG11)"] = [f"{AUTHORS_SHARES[d]:.0%}" if d in AUTHORS_SHARES else "—" for _, d in out.index]
    moving = out["bifurcation"] + out["compensation"]
    out["compensation share of moving ties"] = np.where(moving > 0, out["compensation"] / moving.where(moving > 0, 1),
                                                        np.nan)
    return out


# ------------------------------------------- The authors' 32-bit share by batch size and with batch norm, at init

@dataclass
class ShareRun:
    """Per (dataset, batch_norm, batch_size, minibatch) at initialisation and float32: the sum over parameter tensors
    of ||g_beta0 - g_beta1||_inf and whether it exceeds the authors' 32-bit threshold (``differs``)."""

    frame: pd.DataFrame
    batch_size: int  # the size at which batch norm is compared
    batch_sizes: tuple[int, ...] = ()  # the sizes of the batch-size study (without batch norm)


def share_study(splits: dict[str, data.Split], batch_sizes: Sequence[int], n_batches: int, batch_size: int,
                seed: int = 0, device="cpu") -> ShareRun:
    """The authors' two 32-bit studies at initialisation, on the page's nets: the share of minibatches whose beta = 0
    and beta = 1 gradients differ (their rule: sum over tensors of ||.||_inf > 1e-7) at each of ``batch_sizes``
    without batch norm, and at ``batch_size`` with and without it: ``n_batches`` random minibatches per size (each
    drawn without replacement, from the stream ``share batches``), each at its own initialisation (the streams
    ``share init``). The authors use one initialisation and the disjoint batches of an epoch; a training set of a
    few thousand images cannot supply disjoint batches of 1,024, so minibatches here share images, and a fresh
    initialisation per minibatch keeps their outcomes from being near-copies of each other (which windows tie
    depends on the weights as much as on the images)."""
    rows = []
    dt = torch.float32
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        plan = [(False, b) for b in batch_sizes] + [(True, batch_size)]
        if batch_size not in batch_sizes:
            plan.append((False, batch_size))
        for bn in (False, True):
            g = torch.Generator().manual_seed(stream_seed(seed, f"share batches {ds} {bn}"))
            for b in [b for flag, b in plan if flag == bn]:
                for i in range(n_batches):
                    model = make_cnn(shape, n_classes, 0.0, batch_norm=bn, dtype=dt, device=device,
                                     seed=stream_seed(seed, f"share init {ds} {bn} {b} {i}"))
                    idx = torch.randperm(len(split.X_train), generator=g)[:b].to(split.X_train.device)
                    xb, yb = split.X_train[idx].to(dt), split.y_train[idx]
                    g0, g1 = _grads(model, xb, yb, 0.0), _grads(model, xb, yb, 1.0)
                    total = sum(float((a.double() - c.double()).abs().max()) for a, c in zip(g0, g1))
                    rows.append({"dataset": ds, "batch_norm": bn, "batch_size": int(b), "batch": i, "sum_inf": total,
                                 "differs": total > AUTHORS_THRESHOLDS["float32"]})
    return ShareRun(pd.DataFrame(rows), int(batch_size), tuple(sorted(int(b) for b in batch_sizes)))


def share_table(run: ShareRun) -> pd.DataFrame:
    """Per dataset, batch norm and batch size: the share of minibatches above the authors' 32-bit threshold with its
    95% Wilson interval, the authors' share where they give one (without batch norm: their batch-size study; with
    it: their batch-norm study, 80% against 54% without), and the median sum of differences."""
    rows = []
    for (ds, bn, b), g in run.frame.groupby(["dataset", "batch_norm", "batch_size"], sort=False):
        k, n = int(g.differs.sum()), len(g)
        lo, hi = wilson_interval(k, n, CONFIDENCE)
        authors = AUTHORS_BN_SHARES[True] if bn else AUTHORS_BATCH_SHARES.get(b)
        rows.append({"dataset": ds, "batch norm": "yes" if bn else "no", "batch size": b, "share": f"{k}/{n}",
                     "95% interval": f"{lo:.0%}-{hi:.0%}",
                     "authors' share (about)": f"{authors:.0%}" if authors is not None else "—",
                     "median sum of differences": float(g.sum_inf.median())})
    return pd.DataFrame(rows).set_index(["dataset", "batch norm", "batch size"])


def plot_shares(run: ShareRun):
    """Left: the share of minibatches above the authors' 32-bit threshold against the batch size (no batch norm),
    with 95% Wilson intervals, beside the authors' shares. Right: the sum of differences per minibatch with and
    without batch norm at the page's batch size, with the threshold."""
    f = run.frame
    fig, (ax, bx) = panels(2, panel=(5.0, 4.2))
    datasets = list(dict.fromkeys(f.dataset))
    for j, ds in enumerate(datasets):
        sub = f[(f.dataset == ds) & ~f.batch_norm]
        sub = sub[sub.batch_size.isin(run.batch_sizes)] if run.batch_sizes else sub
        sizes = sorted(sub.batch_size.unique())
        k = [int(sub[sub.batch_size == b].differs.sum()) for b in sizes]
        n = [int((sub.batch_size == b).sum()) for b in sizes]
        ci = np.array([wilson_interval(a, m, CONFIDENCE) for a, m in zip(k, n)])
        p = np.array(k) / np.array(n)
        ax.errorbar(sizes, p, yerr=[p - ci[:, 0], ci[:, 1] - p], fmt="o-", color=PALETTE[j], capsize=3,
                    label=f"{ds} (ours, float32)")
    ax.plot(list(AUTHORS_BATCH_SHARES), list(AUTHORS_BATCH_SHARES.values()), "s--", color="k", ms=4,
            label="authors (LeNet/MNIST, GPU)")
    ax.set(xscale="log", ylim=(-0.03, 1.03), xlabel="batch size", ylabel="share of minibatches that differ",
           title="32 bits: share by batch size")
    ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    at = f[f.batch_size == run.batch_size]
    labels = []
    for i, ((ds, bn), g) in enumerate(at.groupby(["dataset", "batch_norm"], sort=False)):
        xs = i + np.linspace(-0.25, 0.25, len(g))
        bx.plot(xs, log_floor(g.sum_inf), "o", ms=3.5, color=PALETTE[datasets.index(ds)])
        labels.append(f"{ds}\n{'BN' if bn else 'no BN'}")
    bx.axhline(AUTHORS_THRESHOLDS["float32"], color="k", ls="--", lw=1, label="authors' 32-bit threshold")
    bx.set(xticks=range(len(labels)), yscale="log", ylabel=r"$\sum \|g_{\beta=0} - g_{\beta=1}\|_\infty$",
           title=f"32 bits, batch {run.batch_size}: batch norm")
    bx.set_xticklabels(labels, fontsize="x-small")
    bx.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def _share(g: pd.DataFrame) -> tuple[int, int, float, float]:
    k, n = int(g.differs.sum()), len(g)
    return (k, n, *wilson_interval(k, n, CONFIDENCE))


def share32_grows_with_batch(run: ShareRun) -> Verdict:
    """The authors' batch-size study: at float32 and initialisation, without batch norm, the share of minibatches
    whose beta = 0 and beta = 1 gradients differ (sum of ||.||_inf > 1e-7) grows with the batch size (theirs: about
    27% / 60% / 77% / 92% at 64 / 256 / 512 / 1024). Per dataset, 95% Wilson intervals: holds when the largest
    size's share is decided above the smallest size's and no step between neighbouring sizes falls beyond the
    intervals; does not hold when the largest size's share is decided below the smallest's, or a step falls beyond
    them; inconclusive when every share is 0% or every one 100% (a floor or a ceiling hides growth) or the intervals
    overlap. Judged: the paper's set-up (MNIST); other datasets reported."""
    criterion = (f"float32, no batch norm: share of minibatches above the authors' 1e-7 at the largest batch size "
                 f"decided above the smallest ({CONFIDENCE:.0%} Wilson), no decided fall between neighbours")
    f = run.frame[~run.frame.batch_norm]
    if run.batch_sizes:
        f = f[f.batch_size.isin(run.batch_sizes)]
    groups, judged = {}, []
    for ds, sub in f.groupby("dataset", sort=False):
        if _judged(ds):
            judged.append(ds)
        sizes = sorted(sub.batch_size.unique())
        stats = [_share(sub[sub.batch_size == b]) for b in sizes]
        measured = {"batch_sizes": [int(b) for b in sizes], "shares": [k / n for k, n, _, _ in stats],
                    "share_low": [lo for _, _, lo, _ in stats], "share_high": [hi for _, _, _, hi in stats],
                    "authors_shares": [AUTHORS_BATCH_SHARES.get(int(b)) for b in sizes],
                    "median_sum": [float(sub[sub.batch_size == b].sum_inf.median()) for b in sizes]}
        if len(sizes) < 2:
            state = "needs two batch sizes or more"
        elif all(k == 0 for k, *_ in stats) or all(k == n for k, n, *_ in stats):
            level = "0%" if stats[0][0] == 0 else "100%"
            state = (f"the share is {level} at every batch size (median sums {_sci(min(measured['median_sum']))} to "
                     f"{_sci(max(measured['median_sum']))} against the authors' 1e-7): growth cannot show")
        else:
            first, last = stats[0], stats[-1]
            falls = any(a[2] > b[3] for a, b in zip(stats, stats[1:]))
            if last[3] < first[2] or falls:
                state = False
            elif last[2] > first[3]:
                state = True
            else:
                state = (f"the shares at batch {sizes[0]} ({first[0]}/{first[1]}) and {sizes[-1]} "
                         f"({last[0]}/{last[1]}) overlap at {CONFIDENCE:.0%}: raise share_batches")
        groups[ds] = _verdict(state, criterion, **measured)
    return _judge(groups, judged, criterion, _NOT_PAPER if groups else "the batch-size study was not run")


def batchnorm_raises_share32(run: ShareRun) -> Verdict:
    """The authors' batch-norm study: at float32 and initialisation, the share of minibatches whose two gradients
    differ (sum of ||.||_inf > 1e-7) is higher with batch norm than without (theirs: about 80% against 54%), at the
    page's batch size. Per dataset, 95% Wilson intervals: holds when the share with batch norm is decided above the
    share without; does not hold when decided below; otherwise inconclusive (equal shares included). Judged: MNIST;
    other datasets reported."""
    criterion = (f"float32, batch {run.batch_size}: share of minibatches above the authors' 1e-7 with batch norm "
                 f"decided above the share without ({CONFIDENCE:.0%} Wilson intervals)")
    f = run.frame[run.frame.batch_size == run.batch_size]
    groups, judged = {}, []
    for ds, sub in f.groupby("dataset", sort=False):
        if _judged(ds):
            judged.append(ds)
        parts = {bn: sub[sub.batch_norm == bn] for bn in (False, True)}
        if any(len(g) == 0 for g in parts.values()):
            groups[ds] = _verdict("needs minibatches with and without batch norm", criterion)
            continue
        (k0, n0, lo0, hi0), (k1, n1, lo1, hi1) = _share(parts[False]), _share(parts[True])
        measured = {"share_batch_norm": k1 / n1, "share_no_batch_norm": k0 / n0, "share_batch_norm_low": lo1,
                    "share_batch_norm_high": hi1, "share_no_batch_norm_low": lo0, "share_no_batch_norm_high": hi0,
                    "authors_share_batch_norm": AUTHORS_BN_SHARES[True],
                    "authors_share_no_batch_norm": AUTHORS_BN_SHARES[False],
                    "median_sum_batch_norm": float(parts[True].sum_inf.median()),
                    "median_sum_no_batch_norm": float(parts[False].sum_inf.median())}
        if lo1 > hi0:
            state = True
        elif hi1 < lo0:
            state = False
        else:
            state = (f"the shares with ({k1}/{n1}) and without batch norm ({k0}/{n0}) overlap at {CONFIDENCE:.0%}: "
                     f"raise share_batches")
        groups[ds] = _verdict(state, criterion, **measured)
    return _judge(groups, judged, criterion, _NOT_PAPER if groups else "the batch-norm study was not run")


# ------------------------------------------------------------------------------------ Training over the Jacobian family

@dataclass
class TrainGrid:
    """Test accuracy of every training run: dataset, dtype, optimizer, batch_norm, beta, seed, accuracy, diverged."""

    frame: pd.DataFrame
    chance: dict[str, float]


def _configs(dtypes: Sequence[str], optimizers: Sequence[str], batch_norms: Sequence[bool],
             mitigation_dtypes: Sequence[str] | None = None) -> list[tuple]:
    """(dtype, optimizer, batch_norm) of every run: every dtype with the base (``optimizers[0]``, ``batch_norms[0]``),
    then every other optimizer and batch-norm setting at the 16-bit dtypes (those of ``mitigation_dtypes`` when
    given), one factor at a time."""
    base_opt, base_bn = optimizers[0], batch_norms[0]
    configs = [(d, base_opt, base_bn) for d in dtypes]
    low = [d for d in dtypes if d in SIXTEEN_BIT and (mitigation_dtypes is None or d in mitigation_dtypes)]
    configs += [(d, o, base_bn) for o in optimizers[1:] for d in low]
    configs += [(d, base_opt, bn) for bn in batch_norms[1:] for d in low]
    return configs


def train_grid(splits: dict[str, data.Split], betas: Sequence[float], dtypes: Sequence[str],
               optimizers: Sequence[str], batch_norms: Sequence[bool], n_seeds: int, *, steps: int, batch_size: int,
               lr: float, adam_lr: float, seed: int = 0, device="cpu",
               tuned: Mapping[tuple[str, str, bool], float] | None = None,
               mitigation_dtypes: Sequence[str] | None = None) -> TrainGrid:
    """One factor at a time around the base (``optimizers[0]``, ``batch_norms[0]``): every beta x dtype x seed with
    the base; and every other optimizer, and every other batch-norm setting, at the 16-bit dtypes of ``dtypes``
    (only those in ``mitigation_dtypes`` when given; every beta and seed). Seed s gives every run the same
    initialisation and minibatch order (the s-th of the page seed's streams ``train init`` and ``train batches``).
    The step size is ``tuned[(dataset, optimizer, batch_norm)]`` where given (:func:`tune_lrs`: tuned at beta = 0
    and used for every beta), else ``lr`` (SGD) or ``adam_lr``. Parameters live in the run's dtype (pure
    low-precision training, as the authors' 16-bit runs). A NaN loss is a result: the run stops and its accuracy is
    that of its last weights (chance, usually)."""
    configs = _configs(dtypes, optimizers, batch_norms, mitigation_dtypes)
    inits, orders = stream_seeds(seed, n_seeds, "train init"), stream_seeds(seed, n_seeds, "train batches")
    rows, chance = [], {}
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        chance[ds] = float(torch.bincount(split.y_test, minlength=n_classes).max() / len(split.y_test))
        for dname, opt, bn in configs:
            dt = resolve_dtype(dname)
            step = (tuned or {}).get((ds, opt, bool(bn)), adam_lr if opt == "adam" else lr)
            for beta in betas:
                for s in range(n_seeds):
                    model = make_cnn(shape, n_classes, float(beta), batch_norm=bn, seed=inits[s], dtype=dt,
                                     device=device)
                    h = train(model, F.cross_entropy, split.X_train.to(dt), split.y_train, optimizer=opt, lr=step,
                              steps=steps, batch_size=batch_size,
                              generator=torch.Generator().manual_seed(orders[s]), record_every=steps)
                    model.eval()
                    acc = accuracy(model, split.X_test.to(dt), split.y_test)
                    rows.append({"dataset": ds, "dtype": dname, "optimizer": opt, "batch_norm": bool(bn),
                                 "beta": float(beta), "seed": s, "lr": float(step), "accuracy": acc,
                                 "diverged": h.diverged, "diverged_at": h.diverged_at})
    return TrainGrid(pd.DataFrame(rows), chance)


def tune_lrs(splits: dict[str, data.Split], optimizers: Sequence[str], batch_norms: Sequence[bool],
             grids: Mapping[str, Sequence[float]], *, steps: int, batch_size: int, seed: int = 0,
             device="cpu") -> pd.DataFrame:
    """The authors' protocol, small: the step size is tuned at beta = 0 and used for every beta. For each dataset and
    each (optimizer, batch norm) the grid runs (the base, and each mitigation), every step size in
    ``grids[optimizer]`` trains the net at float32 and beta = 0 on the training set less a held-out
    ``TUNE_FRACTION``, and the one with the best accuracy on that held-out part wins (the smaller on a tie; a
    diverged run scores 0). One initialisation and minibatch order (the page seed's streams ``tune init``, ``tune
    batches``), independent of the training seeds; the test set is never seen. One row per candidate, ``chosen``
    marking the winners."""
    base_opt, base_bn = optimizers[0], batch_norms[0]
    settings = [(base_opt, base_bn)] + [(o, base_bn) for o in optimizers[1:]] + [(base_opt, b) for b in batch_norms[1:]]
    rows = []
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        perm = torch.randperm(len(split.X_train), generator=torch.Generator().manual_seed(
            stream_seed(seed, f"tune split {ds}"))).to(split.X_train.device)
        n_val = max(1, int(round(TUNE_FRACTION * len(perm))))
        val, fit = perm[:n_val], perm[n_val:]
        for opt, bn in settings:
            for step in sorted(grids[opt]):
                model = make_cnn(shape, n_classes, 0.0, batch_norm=bn, seed=stream_seed(seed, "tune init"),
                                 dtype=torch.float32, device=device)
                h = train(model, F.cross_entropy, split.X_train[fit].float(), split.y_train[fit], optimizer=opt,
                          lr=float(step), steps=steps, batch_size=min(batch_size, len(fit)),
                          generator=torch.Generator().manual_seed(stream_seed(seed, "tune batches")),
                          record_every=steps)
                model.eval()
                acc = 0.0 if h.diverged else accuracy(model, split.X_train[val].float(), split.y_train[val])
                rows.append({"dataset": ds, "optimizer": opt, "batch_norm": bool(bn), "lr": float(step),
                             "validation accuracy": acc})
    out = pd.DataFrame(rows)
    best = out.sort_values("lr").groupby(["dataset", "optimizer", "batch_norm"], sort=False)["validation accuracy"]
    out["chosen"] = False
    out.loc[best.idxmax().to_numpy(), "chosen"] = True
    return out


def tuned_lrs(table: pd.DataFrame) -> dict[tuple[str, str, bool], float]:
    """The winners of :func:`tune_lrs`, as ``train_grid(tuned=...)`` reads them."""
    won = table[table.chosen]
    return {(r.dataset, r.optimizer, bool(r.batch_norm)): float(r.lr) for r in won.itertuples()}


def _setting(row) -> str:
    return f"{row.dtype}, {row.optimizer}{', BN' if row.batch_norm else ''}"


def plot_accuracy_vs_beta(grid: TrainGrid):
    """Test accuracy against beta per setting (mean over seeds, seeds as dots; diverged seeds as crosses), one panel
    per dataset (two a row), chance as a dotted line; one legend below."""
    f = grid.frame.copy()
    f["setting"] = [_setting(r) for r in f.itertuples()]
    datasets = list(dict.fromkeys(f.dataset))
    fig, axes = panels(len(datasets), panel=(5.0, 4.2))
    for ax, ds in zip(axes, datasets):
        sub = f[f.dataset == ds]
        for i, (setting, g) in enumerate(sub.groupby("setting", sort=False)):
            x = g.beta.where(g.beta > 0, 0.1)  # beta = 0 drawn at 0.1 on the log axis
            m = g.groupby(x).accuracy.mean()
            color = PALETTE[i % len(PALETTE)]
            ax.plot(m.index, m.values, "-", color=color, label=setting)
            ok = ~g.diverged
            ax.plot(x[ok], g.accuracy[ok], "o", ms=3, color=color, alpha=0.5)
            ax.plot(x[~ok], g.accuracy[~ok], "x", ms=6, color=color)
        ax.axhline(grid.chance[ds], color="k", ls=":", lw=1, label="chance")
        ax.set(xscale="log", xlabel=r"$\beta$ ($\beta = 0$ drawn at 0.1)", ylabel="test accuracy (fraction)",
               ylim=(0, 1), title=ds)
        ax.xaxis.set_major_locator(LogLocator(numticks=7))
    axes[-1].plot([], [], "o", ms=3, color="0.4", alpha=0.5, label="one seed")
    axes[-1].plot([], [], "x", ms=6, color="0.4", label="seed whose loss diverged")
    shared_legend(fig, axes, ncol=4)
    return fig


def _base(grid: TrainGrid) -> tuple[str, bool]:
    f = grid.frame
    return f.optimizer.iloc[0], bool(f.batch_norm.iloc[0])


def learned_level(chance: float) -> float:
    """The beta = 0 accuracy a net must reach to count as having learned: chance + LEARNED_FRACTION x (1 - chance)."""
    return chance + LEARNED_FRACTION * (1.0 - chance)


def _per_seed(f: pd.DataFrame, **sel) -> pd.DataFrame:
    """Accuracy per seed (rows) and beta (columns) for one setting; a diverged run counts with its accuracy."""
    for k, v in sel.items():
        f = f[f[k] == v]
    return f.pivot_table(index="seed", columns="beta", values="accuracy")


def _mean_hw(values) -> tuple[float, float]:
    """Mean over seeds and the half-width of its two-sided Student-t interval at ``CONFIDENCE`` (inf below 2 seeds)."""
    v = np.asarray(values, float)
    return float(v.mean()), t_half_width(v, CONFIDENCE)


def _seeds(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"


def _betas_text(betas) -> str:
    return ", ".join(f"{float(b):g}" for b in betas)


def high_beta_breaks_16bit(grid: TrainGrid, min_high_beta: float = 1000.0) -> Verdict:
    """At 16 bits (base optimizer and batch norm), the largest beta breaks training: every seed ends at most
    ``BROKEN_MARGIN`` above chance (or diverged), while every beta in (0, ``min_high_beta``) trained (the book
    profile: 1; the authors: up to 100) stays within ``SAME_MARGIN`` of beta = 0, per
    dataset and 16-bit precision. "Stays within" is decided as in :func:`fp32_robust_to_beta`: the paired change
    over seeds, its mean +- the half-width of its 95% Student-t interval inside the margin (outside it: does not
    hold; across it: inconclusive). A top beta that leaves some seed trained refutes whatever the spread.

    Judged: LeNet-5 on MNIST at float16 (the authors' 16 bits); bfloat16 and other datasets are reported beside it.
    Preconditions: beta = 0 and a beta >= ``min_high_beta`` are in the grid; beta = 0 learned (mean accuracy >=
    :func:`learned_level`); >= MIN_SEEDS seeds, unless the top beta already refutes. Each group measures the mean
    accuracy at the top beta and at beta = 0, the seeds broken at the top beta, the mean accuracy per beta in
    ``betas``, and per beta in (0, ``min_high_beta``) (``small_betas``) the paired change and its interval's
    half-width."""
    criterion = (f"16-bit, base optimizer: at the largest beta (>= {min_high_beta:g}) every seed ends <= chance + "
                 f"{BROKEN_MARGIN:.0%} or diverges, while every beta in (0, {min_high_beta:g}) stays within "
                 f"{SAME_MARGIN:.0%} of beta = 0 "
                 f"beyond the {CONFIDENCE:.0%} t-interval of the seed-to-seed spread; float16 judged, bfloat16 "
                 f"reported")
    f = grid.frame
    opt, bn = _base(grid)
    groups, judged = {}, []
    for (ds, d), sub in f[(f.optimizer == opt) & (f.batch_norm == bn)].groupby(["dataset", "dtype"], sort=False):
        if d not in SIXTEEN_BIT:
            continue
        if _judged(ds, d):
            judged.append(f"{ds} {d}")
        betas = sorted(sub.beta.unique())
        top, chance = betas[-1], grid.chance[ds]
        mean = sub.groupby("beta").accuracy.mean()
        setting = {**({"accuracy_beta_0": float(mean[0.0])} if 0.0 in betas else {}), "top_beta": float(top),
                   "chance": chance, "betas": [float(b) for b in betas],
                   "mean_accuracy": [float(mean[b]) for b in betas]}
        measured = {"accuracy_top_beta": float(mean[top]), **setting}
        if 0.0 not in betas or top < min_high_beta:
            state = f"the grid needs beta = 0 and a beta >= {min_high_beta:g} (it has {_betas_text(betas)})"
        elif mean[0.0] < learned_level(chance):
            state = (f"beta = 0 reached {mean[0.0]:.3f} at {d}, below the {learned_level(chance):.2f} that counts as "
                     f"having learned (chance {chance:.3f})")
        else:
            t = sub[sub.beta == top]
            failed = (t.accuracy <= chance + BROKEN_MARGIN) | t.diverged
            broken = bool(failed.all())
            acc = _per_seed(sub, dtype=d)
            changes = {b: _mean_hw(acc[b] - acc[0.0]) for b in betas if 0 < b < min_high_beta}
            measured = {"accuracy_top_beta": float(mean[top]), "broken_seeds": int(failed.sum()), "seeds": len(t),
                        **setting, "small_betas": [float(b) for b in changes],
                        "small_beta_change": [m for m, _ in changes.values()],
                        "small_beta_change_half_width": [hw for _, hw in changes.values()]}
            unstable = [b for b, (m, hw) in changes.items() if abs(m) - hw > SAME_MARGIN]
            if not broken:
                state = False
            elif unstable:
                state = False
            elif len(acc) < MIN_SEEDS and changes:
                state = (f"{_seeds(len(acc))}: the change at beta < {min_high_beta:g} needs >= {MIN_SEEDS} seeds to "
                         f"measure its spread")
            elif all(abs(m) + hw <= SAME_MARGIN for m, hw in changes.values()):
                state = True
            else:
                b, (m, hw) = max(changes.items(), key=lambda kv: abs(kv[1][0]))
                state = (f"the largest beta breaks every seed, but the change at beta = {b:g} ({m:+.3f} +- {hw:.3f}, "
                         f"{CONFIDENCE:.0%} t-interval) straddles the {SAME_MARGIN:.0%} margin: raise n_seeds")
        groups[f"{ds} {d}"] = _verdict(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion, "no 16-bit precision was trained")
    return _judge(groups, judged, criterion, _NOT_PAPER)


def fp32_robust_to_beta(grid: TrainGrid) -> Verdict:
    """At float32 (base optimizer and batch norm), every beta's test accuracy stays within ``SAME_MARGIN`` of
    beta = 0's, beyond the seed-to-seed spread: per beta the paired difference acc(beta) - acc(0) over seeds (each
    seed has the same initialisation and minibatch order at every beta), its mean and the half-width of its 95%
    Student-t interval. Holds when every |mean| + half-width <= SAME_MARGIN; does not hold when some |mean| -
    half-width > SAME_MARGIN; otherwise the spread is too wide to tell.

    Judged: LeNet-5 on MNIST; other datasets reported. Preconditions: float32 was trained with beta = 0 and another
    beta, with >= MIN_SEEDS seeds; beta = 0 learned (mean accuracy >= :func:`learned_level`). Each dataset's group
    measures the largest change (signed, at the beta ``at_beta`` where it is largest) with its half-width first,
    then per beta in ``betas`` the mean accuracy, the paired change and its half-width (0 at beta = 0)."""
    criterion = (f"float32, base optimizer: every beta's mean paired change in test accuracy from beta = 0 within "
                 f"{SAME_MARGIN:.0%}, beyond the {CONFIDENCE:.0%} t-interval of the seed-to-seed spread")
    f = grid.frame
    opt, bn = _base(grid)
    groups, judged = {}, []
    for ds in dict.fromkeys(f[f.dtype == "float32"].dataset):
        if _judged(ds):
            judged.append(ds)
        acc = _per_seed(f[f.dataset == ds], dtype="float32", optimizer=opt, batch_norm=bn)
        level = learned_level(grid.chance[ds])
        measured = {"seeds": len(acc), "learned_level": level, "betas": [float(b) for b in acc.columns],
                    "mean_accuracy": [float(v) for v in acc.mean()]}
        if 0.0 not in acc.columns or acc.shape[1] < 2:
            state = "the grid needs beta = 0 and another beta"
        elif len(acc) < MIN_SEEDS:
            state = f"{_seeds(len(acc))}: the seed-to-seed spread needs >= {MIN_SEEDS}"
        elif acc[0.0].mean() < level:
            state = (f"beta = 0 reached {acc[0.0].mean():.3f}, below the {level:.2f} that counts "
                     f"as having learned: whether beta hurts cannot be judged on a net that has not learned")
        else:
            changes = {b: _mean_hw(acc[b] - acc[0.0]) for b in acc.columns if b != 0.0}
            b_max, (m_max, hw_max) = max(changes.items(), key=lambda kv: abs(kv[1][0]))
            measured = {"largest_change": m_max, "largest_change_half_width": hw_max, "at_beta": float(b_max),
                        **measured, "change": [changes[b][0] if b != 0.0 else 0.0 for b in acc.columns],
                        "change_half_width": [changes[b][1] if b != 0.0 else 0.0 for b in acc.columns]}
            if all(abs(m) + hw <= SAME_MARGIN for m, hw in changes.values()):
                state = True
            elif any(abs(m) - hw > SAME_MARGIN for m, hw in changes.values()):
                state = False
            else:
                state = (f"a change straddles the {SAME_MARGIN:.0%} margin within its {CONFIDENCE:.0%} t-interval at "
                         f"{len(acc)} seeds: raise n_seeds")
        groups[ds] = _verdict(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion, "float32 was not trained")
    return _judge(groups, judged, criterion, _NOT_PAPER)


def _relative_gaps(acc: pd.DataFrame, top: float) -> np.ndarray:
    """Per seed, the damage the largest beta does relative to what the net reaches at beta = 0:
    (acc(0) - acc(top)) / acc(0)."""
    return ((acc[0.0] - acc[top]) / acc[0.0]).to_numpy(float)


def mitigations_shrink_gap(grid: TrainGrid) -> Verdict:
    """Each mitigation shrinks the damage a large beta does at 16 bits: Adam (instead of the base optimizer), batch
    norm, and higher precision (each precision above 16 bits trained: float32, and float64 where run), each against
    the 16-bit base runs of the same dataset and 16-bit precision. The damage is the relative gap (acc(beta = 0) -
    acc(largest beta)) / acc(beta = 0), per seed (fixed before the data: an absolute gap rewards a mitigation that
    lowers the beta = 0 accuracy and punishes one that raises it). Holds when the mean relative gap shrinks by more
    than the half-width of its 95% interval (Student-t half-widths of both sides in quadrature) and by more than
    ``SAME_MARGIN``; does not hold when it shrinks by less than ``SAME_MARGIN`` even at the top of that interval;
    otherwise inconclusive.

    Judged: LeNet-5 on MNIST against float16 base runs; bfloat16 and other datasets are reported beside it.
    Preconditions, per (dataset, mitigation): >= MIN_SEEDS seeds on both sides; the base and the mitigated runs
    learned at beta = 0 (:func:`learned_level`); the base relative gap exceeds ``SAME_MARGIN`` beyond its interval.
    Each group measures the shrink and its half-width first (where judged), then the relative gaps and the absolute
    gaps acc(0) - acc(largest beta) of both sides."""
    criterion = ("per mitigation (Adam, batch norm, higher precision): the relative gap (acc(0) - acc(largest beta)) "
                 f"/ acc(0) shrinks by more than {SAME_MARGIN:.0%} and beyond its {CONFIDENCE:.0%} t-interval against "
                 "the 16-bit base runs; float16 judged, bfloat16 reported")
    f = grid.frame
    opt, bn = _base(grid)
    groups, judged = {}, []
    for ds in dict.fromkeys(f.dataset):
        fd = f[f.dataset == ds]
        top, level = float(fd.beta.max()), learned_level(grid.chance[ds])
        for d in [d for d in dict.fromkeys(fd.dtype) if d in SIXTEEN_BIT]:
            base = _per_seed(fd, dtype=d, optimizer=opt, batch_norm=bn)
            if 0.0 not in base.columns or top not in base.columns or top == 0.0:
                continue
            base_gap, base_hw = _mean_hw(_relative_gaps(base, top))
            cases = {o: dict(dtype=d, optimizer=o, batch_norm=bn) for o in dict.fromkeys(fd.optimizer) if o != opt}
            cases.update({"batch norm" if b else "no batch norm": dict(dtype=d, optimizer=opt, batch_norm=b)
                          for b in dict.fromkeys(fd.batch_norm) if b != bn})
            for high in [h for h in ("float32", "float64") if h in set(fd.dtype)]:
                cases[high] = dict(dtype=high, optimizer=opt, batch_norm=bn)
            for name, sel in cases.items():
                m = _per_seed(fd, **sel)
                if m.empty:  # not run at this precision (mitigation_dtypes): nothing to show
                    continue
                measured = {"base_relative_gap": base_gap, "base_relative_gap_half_width": base_hw,
                            "base_gap": float(base[0.0].mean() - base[top].mean()), "top_beta": top,
                            "learned_level": level}
                if 0.0 not in m.columns or top not in m.columns:
                    state = f"the {name} runs lack beta = 0 or beta = {top:g}"
                elif min(len(base), len(m)) < MIN_SEEDS:
                    state = f"{_seeds(min(len(base), len(m)))}: measuring the spread needs >= {MIN_SEEDS}"
                elif base[0.0].mean() < level:
                    state = (f"the {d} base runs reached {base[0.0].mean():.3f} at beta = 0, below the {level:.2f} "
                             f"that counts as having learned")
                elif m[0.0].mean() < level:
                    state = (f"the {name} runs reached {m[0.0].mean():.3f} at beta = 0, below the {level:.2f} that "
                             f"counts as having learned")
                elif base_gap - base_hw <= SAME_MARGIN:
                    state = f"the {d} base relative gap is {base_gap:.3f} +- {base_hw:.3f}: nothing clear to mitigate"
                else:
                    gap, hw = _mean_hw(_relative_gaps(m, top))
                    shrink, shrink_hw = base_gap - gap, math.hypot(base_hw, hw)
                    measured = {"shrink": shrink, "shrink_half_width": shrink_hw, **measured,
                                "mitigated_relative_gap": gap, "mitigated_relative_gap_half_width": hw,
                                "mitigated_gap": float(m[0.0].mean() - m[top].mean())}
                    if shrink - shrink_hw > 0 and shrink > SAME_MARGIN:
                        state = True
                    elif shrink + shrink_hw < SAME_MARGIN:
                        state = False
                    else:
                        state = (f"the shrink {shrink:.3f} +- {shrink_hw:.3f} is within the seed-to-seed spread: "
                                 f"raise n_seeds")
                name_ = f"{ds} {d} {name}"
                if _judged(ds, d):
                    judged.append(name_)
                groups[name_] = _verdict(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion,
                                 "no 16-bit base runs with beta = 0 and a larger beta, or no mitigation run")
    return _judge(groups, judged, criterion, _NOT_PAPER)


def accuracy_table(grid: TrainGrid) -> pd.DataFrame:
    """Mean test accuracy over seeds (with the number of diverged seeds in brackets), one row per (dataset, setting),
    one column per beta."""
    f = grid.frame.copy()
    f["setting"] = [_setting(r) for r in f.itertuples()]
    agg = f.groupby(["dataset", "setting", "beta"], sort=False).agg(acc=("accuracy", "mean"), nan=("diverged", "sum"))
    cell = [(f"{a:.3f}" if a == a else "—") + (f" ({int(n)} diverged)" if n else "") for a, n in zip(agg.acc, agg.nan)]
    out = pd.Series(cell, index=agg.index).unstack("beta")
    out.columns = [f"beta={b:g}" for b in out.columns]
    return out


# -------------------------------------------------------------------------------------------------------------- Verdict

def _sci(x: float) -> str:
    """A gradient difference in prose: "0" when exactly 0, "not finite" for NaN or inf, else 2 significant digits."""
    return "0" if x == 0 else f"{x:.1e}" if math.isfinite(x) else "not finite"


def _mitigation_gaps(v: Verdict | None) -> str:
    """Per mitigation group of :func:`mitigations_shrink_gap`: the absolute gap acc(0) - acc(largest beta) of the
    base runs and of the mitigated ones, or why the group was not judged."""
    parts = []
    for group, g in (v.groups if v is not None else {}).items():
        m = g.measured
        mitigated = m.get("mitigated_gap")
        parts.append(f"{group}: {m['base_gap']:.2f} → "
                     + (f"{mitigated:.2f}" if mitigated is not None else f"not compared ({g.reason})"))
    return "; ".join(parts) or "no mitigation was run against a 16-bit base"


def evidence_comment(newest: Mapping[tuple, dict]) -> str:
    """What the committed float16 evidence (``python -m nslib device-check``; the page passes
    ``nslib.evidence.newest_by_machine("maxpool")``, (device, name, kernels) -> report) says about
    ``high-beta-breaks-16bit``, read by this page's own test of a broken run (accuracy within ``BROKEN_MARGIN`` of
    chance, or diverged): per machine, the mean accuracy at beta = 0 and 1e4 and the seeds the large beta broke; then
    whether that contradicts "every seed breaks"."""
    if not newest:
        return "no float16 training has been committed under evidence/ yet"
    parts, contradicting = [], 0
    for (device, name, kernels), r in sorted(newest.items(), key=lambda kv: (kv[0][0] != "cuda", str(kv[0]))):
        mp, plan = r["maxpool"], (r.get("plan") or {}).get("maxpool", {})
        rows = pd.DataFrame(mp["rows"])
        top = rows.beta.max()
        means = rows.groupby("beta").accuracy.mean()
        high = rows[rows.beta == top]
        broken = int(((high.accuracy <= mp["chance"] + BROKEN_MARGIN) | high.diverged).sum())
        contradicting += broken < len(high)
        where = name if device == "cuda" else f"CPU {name}, {kernels or 'unrecorded'} kernels"
        parts.append(f"{where} ({r['environment'].get('date')}): beta 0 {means.get(0.0, float('nan')):.3f}, beta "
                     f"{top:g} {means[top]:.3f}, {broken} of {len(high)} seeds broken")
    setting = ""
    if plan:
        setting = (f" (LeNet-5 at float16, {plan.get('steps')} SGD steps of batch {plan.get('batch_size')}, step size "
                   f"{plan.get('lr')} fixed, not tuned)")
    verdict = (f"On {contradicting} of {len(newest)} machine and kernel settings the largest beta left a seed trained, "
               f"which by this page's test contradicts \"every seed breaks\"" if contradicting else
               "On every machine and kernel setting the largest beta broke every seed, as the claim says")
    return f"the committed float16 evidence{setting}: " + "; ".join(parts) + ". " + verdict


def _share_text(run: ShareRun | None, bn: bool | None) -> str:
    """The 32-bit shares in prose, beside the authors': by batch size (``bn`` None) or with and without batch norm."""
    if run is None:
        return "not measured"
    t = share_table(run).reset_index()
    authors = "authors' share (about)"
    if bn is None:
        t = t[t["batch norm"] == "no"]
        cell = lambda r: f"batch {r['batch size']} {r['share']} (authors {r[authors]})"  # noqa: E731
    else:
        t = t[t["batch size"] == run.batch_size]
        cell = lambda r: (f"{'with' if r['batch norm'] == 'yes' else 'without'} {r['share']} (authors, their "  # noqa: E731
                          f"batch-norm study: {AUTHORS_BN_SHARES[r['batch norm'] == 'yes']:.0%})")
    return "; ".join(f"{ds}: " + ", ".join(cell(r) for _, r in g.iterrows())
                     for ds, g in t.groupby("dataset", sort=False))


def page_texts(verdicts: Mapping[str, Verdict], *, zrun: ZoneRun, grid: TrainGrid,
               splits: Mapping[str, data.Split], shares: ShareRun | None = None,
               tuning: pd.DataFrame | None = None, evidence: Mapping[tuple, dict] | None = None) -> dict[str, str]:
    """The sentences the page glues (as ``mp-<key>``), from the data, the runs at initialisation and in training,
    and, for the mitigations, from the recorded verdict's groups."""
    zt = zone_table(zrun)
    diff = "; ".join(f"{ds} {d} " + (_sci(r.max_difference) if r.min_difference == r.max_difference else
                                     f"{_sci(r.min_difference)} to {_sci(r.max_difference)}")
                     for (ds, d), r in zt.iterrows())
    comp = zt["compensation share of moving ties"]
    share = "; ".join(f"{ds} {d} " + ("undefined (no such tie)" if math.isnan(x) else f"{x:.0%}")
                      for (ds, d), x in comp.items())
    kinds = "; ".join(f"{ds} {d} {r.bifurcation:.1f} / {r.inert:.1f} / {r.compensation:.1f}"
                      for (ds, d), r in zt.iterrows())
    vgg = "authors' share (VGG11)"
    above = "; ".join(f"{ds} {d} {r.share_above_threshold:.0%} ({r['share 95% interval']}; authors {r[vgg]})"
                      for (ds, d), r in zt.iterrows())
    won = tuning[tuning.chosen] if tuning is not None else pd.DataFrame()
    lrs = "; ".join(f"{r.dataset} {r.optimizer}{' with batch norm' if r.batch_norm else ''} {r.lr:g}"
                    for r in won.itertuples()) or "not tuned (the fixed step sizes lr and adam_lr)"
    f = grid.frame
    nan_runs = f[f.diverged]
    firsts = nan_runs.drop_duplicates(["dataset", "dtype", "optimizer", "batch_norm", "beta"])
    nan_text = "; ".join(f"{r.dataset} {_setting(r)} at beta = {r.beta:g}" for r in firsts.itertuples()) or "none"
    return {"differences": diff or "none measured", "compensation-share": share or "none measured",
            "zone-counts": kinds or "none measured", "above-threshold": above or "none measured",
            "nan-runs": nan_text, "runs": f"{len(f):,} training run{'' if len(f) == 1 else 's'}",
            "mitigation-gaps": _mitigation_gaps(verdicts.get("mitigations-shrink-gap")),
            "batch-shares": _share_text(shares, None), "bn-shares": _share_text(shares, True),
            "tuned-lrs": lrs, "evidence-comment": evidence_comment(evidence or {}),
            "train-sizes": " and ".join(f"{ds} on {sp.n_train:,} training images" for ds, sp in splits.items())}
