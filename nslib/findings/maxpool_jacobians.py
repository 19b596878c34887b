"""Finding *maxpool-jacobians* (Boustany, TMLR 2024): which Jacobian autodiff uses for MaxPool, and when it matters.

The page's experiments (the gradient difference between two MaxPool Jacobians at initialisation, by precision, with
its ties split into real ones and rounding-made ones; training small CNNs over the Jacobian family J_beta by
precision, optimizer and batch norm), its figures (``plot_*``) and one criterion per claim id:
:func:`difference_tracks_precision`, :func:`high_beta_breaks_16bit`, :func:`fp32_robust_to_beta`,
:func:`mitigations_shrink_gap`. The MaxPool itself is :mod:`nslib.tools.maxpool`.
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
from ..tools.train import accuracy, train
from ..verdicts import Verdict

__all__ = [
    # experiments
    "AUTHORS_ACCURACY", "AUTHORS_THRESHOLDS", "DATASETS", "SIXTEEN_BIT", "TrainGrid", "ZoneRun", "accuracy_table",
    "composite_error", "conv_pool_probe", "make_cnn", "page_texts", "train_grid", "zone_table", "zones",
    # figures
    "plot_accuracy_vs_beta", "plot_zones",
    # criteria, one per claim id
    "difference_tracks_precision", "fp32_robust_to_beta", "high_beta_breaks_16bit", "mitigations_shrink_gap",
]

#: Datasets: digits (8x8 images, 2-D pooling), MNIST-1D (40-sample signals, 1-D pooling), MNIST from local IDX files.
DATASETS = ("digits", "mnist1d", "mnist")
#: The 16-bit precisions.
SIXTEEN_BIT = ("float16", "bfloat16")
#: The authors' thresholds on sum over tensors of ||grad_beta0 - grad_beta1||_inf for "this minibatch differs".
AUTHORS_THRESHOLDS = {"float16": 1e-3, "bfloat16": 1e-3, "float32": 1e-7, "float64": 1e-15}
#: Test accuracies in the authors' committed result files (repository ryanboustany/MaxPool-numerical), as quoted in
#: the book's FINDINGS notes: (net / data, precision, betas) -> accuracy.
AUTHORS_ACCURACY = pd.DataFrame([
    ("LeNet / MNIST", "32-bit", "all beta", "0.992-0.993"),
    ("LeNet / MNIST", "16-bit", "beta <= 100", "0.992"),
    ("LeNet / MNIST", "16-bit", "beta >= 1000", "0.098"),
    ("VGG11 / CIFAR-10, SGD", "32-bit", "beta <= 1000", "0.910"),
    ("VGG11 / CIFAR-10, SGD", "32-bit", "beta = 10000", "0.262"),
    ("VGG11 / CIFAR-10, SGD", "16-bit", "beta >= 1000", "0.10"),
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
#: How many standard errors of the seed-to-seed spread a difference must clear to be decided.
NOISE_SE = 2.0


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
    g = torch.Generator().manual_seed(seed)
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
    """For each dataset and precision: one initialisation (the same weights at every precision, seed ``seed``),
    ``n_batches`` minibatches of the training set; on each, the gradients with beta = 0 and beta = 1, and the MaxPool
    windows tied at this precision, classified by the same pass in float64 (tied there too? do the tied inputs
    depend differently on the parameters, and does the window pass a gradient back?)."""
    rows = []
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        base = make_cnn(shape, n_classes, 0.0, seed=seed, dtype=torch.float64, device=device)
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(split.X_train), generator=g)[: n_batches * batch_size].to(split.X_train.device)
        batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)][:n_batches]
        # what each real tie does is a property of the float64 pass, the same at every precision
        exact = []
        for idx in batches:
            xb64, yb = split.X_train[idx].double(), split.y_train[idx]
            exact.append((_pool_inputs(base, xb64), _pool_tangents(base, xb64, seed=seed),
                          _pool_upstream(base, xb64, yb)))
        for name in dtypes:
            dt = resolve_dtype(name)
            model = make_cnn(shape, n_classes, 0.0, seed=seed, dtype=torch.float64, device=device)
            model.load_state_dict(base.state_dict())
            model = model.to(dt)
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


def difference_tracks_precision(run: ZoneRun, fp64_max: float = 1e-15, fp32_max: float = 1e-6,
                                low_min: float = 1e-5) -> Verdict:
    """The beta = 0 vs 1 gradient difference tracks the precision: per dataset, its largest ||.||_inf over the
    minibatches is <= ``fp64_max`` at float64 and <= ``fp32_max`` at float32, and >= ``low_min`` at each 16-bit
    precision run.

    Preconditions, per dataset: a 16-bit precision and float32 or float64 were run; the 16-bit passes met tied
    windows at all (with none, the two Jacobians agree by construction and nothing is tested). Each dataset's group
    measures ``max_difference_<dtype>`` and ``tied_windows_<dtype>`` (over its minibatches) per precision."""
    criterion = (f"per dataset: max ||g_beta0 - g_beta1||_inf over minibatches <= {fp64_max:g} at float64, "
                 f"<= {fp32_max:g} at float32, >= {low_min:g} at 16 bits")
    f = run.frame
    groups = {}
    for ds, sub in f.groupby("dataset", sort=False):
        mx = sub.groupby("dtype", sort=False).max_inf.max().to_dict()
        ties = sub.groupby("dtype", sort=False)[["bifurcation", "inert", "compensation"]].sum().sum(axis=1).to_dict()
        low = [d for d in mx if d in SIXTEEN_BIT]
        high = [d for d in mx if d in ("float32", "float64")]
        measured = {**{f"max_difference_{d}": v for d, v in mx.items()},
                    **{f"tied_windows_{d}": int(v) for d, v in ties.items()}}
        if not low or not high:
            state = "needs a 16-bit precision and float32 or float64"
        elif not np.isfinite(sub.max_inf).all():
            state = "a gradient at initialisation was not finite (NaN or inf): nothing to compare"
        elif not all(ties[d] > 0 for d in low):
            state = f"no tied window at {', '.join(d for d in low if ties[d] == 0)}: nothing to test"
        else:
            ok = all(mx[d] >= low_min for d in low)
            ok &= mx.get("float32", 0.0) <= fp32_max and mx.get("float64", 0.0) <= fp64_max
            state = bool(ok)
        groups[ds] = Verdict.from_state(state, criterion, **measured)
    return Verdict.combine(groups, criterion)


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
    moving = out["bifurcation"] + out["compensation"]
    out["compensation share of moving ties"] = np.where(moving > 0, out["compensation"] / moving.where(moving > 0, 1),
                                                        np.nan)
    return out


# ------------------------------------------------------------------------------------ Training over the Jacobian family

@dataclass
class TrainGrid:
    """Test accuracy of every training run: dataset, dtype, optimizer, batch_norm, beta, seed, accuracy, diverged."""

    frame: pd.DataFrame
    chance: dict[str, float]


def train_grid(splits: dict[str, data.Split], betas: Sequence[float], dtypes: Sequence[str],
               optimizers: Sequence[str], batch_norms: Sequence[bool], n_seeds: int, *, steps: int, batch_size: int,
               lr: float, adam_lr: float, seed: int = 0, device="cpu") -> TrainGrid:
    """One factor at a time around the base (``optimizers[0]``, ``batch_norms[0]``): every beta x dtype x seed with
    the base; and every other optimizer, and every other batch-norm setting, at the 16-bit dtypes of ``dtypes``
    (every beta and seed). Seed s gives every run the same initialisation and minibatch order. Parameters live in
    the run's dtype (pure low-precision training, as the authors' 16-bit runs). A NaN loss is a result: the run
    stops and its accuracy is that of its last weights (chance, usually)."""
    base_opt, base_bn = optimizers[0], batch_norms[0]
    configs = [(d, base_opt, base_bn) for d in dtypes]
    low = [d for d in dtypes if d in SIXTEEN_BIT]
    configs += [(d, o, base_bn) for o in optimizers[1:] for d in low]
    configs += [(d, base_opt, bn) for bn in batch_norms[1:] for d in low]
    rows, chance = [], {}
    for ds, split in splits.items():
        shape, n_classes = tuple(split.X_train.shape[1:]), int(split.y_train.max()) + 1
        chance[ds] = float(torch.bincount(split.y_test, minlength=n_classes).max() / len(split.y_test))
        for dname, opt, bn in configs:
            dt = resolve_dtype(dname)
            for beta in betas:
                for s in range(n_seeds):
                    model = make_cnn(shape, n_classes, float(beta), batch_norm=bn, seed=seed * 1000 + s, dtype=dt,
                                     device=device)
                    h = train(model, F.cross_entropy, split.X_train.to(dt), split.y_train, optimizer=opt,
                              lr=adam_lr if opt == "adam" else lr, steps=steps, batch_size=batch_size,
                              generator=torch.Generator().manual_seed(seed * 1000 + s), record_every=steps)
                    model.eval()
                    acc = accuracy(model, split.X_test.to(dt), split.y_test)
                    rows.append({"dataset": ds, "dtype": dname, "optimizer": opt, "batch_norm": bool(bn),
                                 "beta": float(beta), "seed": s, "accuracy": acc, "diverged": h.diverged,
                                 "diverged_at": h.diverged_at})
    return TrainGrid(pd.DataFrame(rows), chance)


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


def _mean_se(values) -> tuple[float, float]:
    """Mean and standard error over seeds (ddof = 1)."""
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.inf


def _seeds(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"


def _betas_text(betas) -> str:
    return ", ".join(f"{float(b):g}" for b in betas)


def high_beta_breaks_16bit(grid: TrainGrid, min_high_beta: float = 1000.0) -> Verdict:
    """At 16 bits (base optimizer, no change of batch norm), the largest beta breaks training: every seed ends at
    most ``BROKEN_MARGIN`` above chance (or diverged), while beta <= 1 stays within ``SAME_MARGIN`` of beta = 0,
    per dataset and 16-bit precision. "Stays within" is decided as in :func:`fp32_robust_to_beta`: the paired
    change over seeds, its mean +- NOISE_SE standard errors inside the margin (outside it: does not hold; across
    it: inconclusive). A top beta that leaves some seed trained refutes whatever the spread.

    Preconditions: a 16-bit precision was trained; beta = 0 and a beta >= ``min_high_beta`` are in the grid; beta = 0
    learned (mean accuracy >= :func:`learned_level`); >= MIN_SEEDS seeds, unless the top beta already refutes.
    Each group measures the mean accuracy at the top beta and at beta = 0, the seeds broken at the top beta, the
    mean accuracy per beta in ``betas``, and per beta in (0, 1] (``small_betas``) the paired change and its standard
    error."""
    criterion = (f"16-bit, base optimizer: at the largest beta (>= {min_high_beta:g}) every seed ends <= chance + "
                 f"{BROKEN_MARGIN:.0%} or diverges, while beta <= 1 stays within {SAME_MARGIN:.0%} of beta = 0 "
                 f"beyond {NOISE_SE:g} standard errors of the seed-to-seed spread")
    f = grid.frame
    opt, bn = _base(grid)
    groups = {}
    for (ds, d), sub in f[(f.optimizer == opt) & (f.batch_norm == bn)].groupby(["dataset", "dtype"], sort=False):
        if d not in SIXTEEN_BIT:
            continue
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
            changes = {b: _mean_se(acc[b] - acc[0.0]) for b in betas if 0 < b <= 1}
            measured = {"accuracy_top_beta": float(mean[top]), "broken_seeds": int(failed.sum()), "seeds": len(t),
                        **setting, "small_betas": [float(b) for b in changes],
                        "small_beta_change": [m for m, _ in changes.values()],
                        "small_beta_change_se": [se for _, se in changes.values()]}
            unstable = [b for b, (m, se) in changes.items() if abs(m) - NOISE_SE * se > SAME_MARGIN]
            if not broken:
                state = False
            elif unstable:
                state = False
            elif len(acc) < MIN_SEEDS and changes:
                state = f"{_seeds(len(acc))}: the change at beta <= 1 needs >= {MIN_SEEDS} seeds to measure its spread"
            elif all(abs(m) + NOISE_SE * se <= SAME_MARGIN for m, se in changes.values()):
                state = True
            else:
                b, (m, se) = max(changes.items(), key=lambda kv: abs(kv[1][0]))
                state = (f"the largest beta breaks every seed, but the change at beta = {b:g} ({m:+.3f} +- {se:.3f}) "
                         f"is within {NOISE_SE:g} standard errors of the {SAME_MARGIN:.0%} margin: raise n_seeds")
        groups[f"{ds} {d}"] = Verdict.from_state(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion, "no 16-bit precision was trained")
    return Verdict.combine(groups, criterion)


def fp32_robust_to_beta(grid: TrainGrid) -> Verdict:
    """At float32 (base optimizer and batch norm), every beta's test accuracy stays within ``SAME_MARGIN`` of
    beta = 0's, beyond the seed-to-seed spread: per beta the paired difference acc(beta) - acc(0) over seeds (each
    seed has the same initialisation and minibatch order at every beta), its mean and standard error. Holds when
    every |mean| + NOISE_SE x SE <= SAME_MARGIN; does not hold when some |mean| - NOISE_SE x SE > SAME_MARGIN;
    otherwise the spread is too wide to tell.

    Preconditions: float32 was trained with beta = 0 and another beta, with >= MIN_SEEDS seeds; beta = 0 learned
    (mean accuracy >= :func:`learned_level`). Each dataset's group measures the largest change (signed, at the beta
    ``at_beta`` where it is largest) with its standard error first, then per beta in ``betas`` the mean accuracy, the
    paired change and its standard error (0 at beta = 0)."""
    criterion = (f"float32, base optimizer: every beta's mean paired change in test accuracy from beta = 0 within "
                 f"{SAME_MARGIN:.0%}, beyond {NOISE_SE:g} standard errors of the seed-to-seed spread")
    f = grid.frame
    opt, bn = _base(grid)
    groups = {}
    for ds in dict.fromkeys(f[f.dtype == "float32"].dataset):
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
            changes = {b: _mean_se(acc[b] - acc[0.0]) for b in acc.columns if b != 0.0}
            b_max, (m_max, se_max) = max(changes.items(), key=lambda kv: abs(kv[1][0]))
            measured = {"largest_change": m_max, "largest_change_se": se_max, "at_beta": float(b_max), **measured,
                        "change": [changes[b][0] if b != 0.0 else 0.0 for b in acc.columns],
                        "change_se": [changes[b][1] if b != 0.0 else 0.0 for b in acc.columns]}
            if all(abs(m) + NOISE_SE * se <= SAME_MARGIN for m, se in changes.values()):
                state = True
            elif any(abs(m) - NOISE_SE * se > SAME_MARGIN for m, se in changes.values()):
                state = False
            else:
                state = (f"a change is within {NOISE_SE:g} standard errors of the {SAME_MARGIN:.0%} margin at "
                         f"{len(acc)} seeds: raise n_seeds")
        groups[ds] = Verdict.from_state(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion, "float32 was not trained")
    return Verdict.combine(groups, criterion)


def _relative_gaps(acc: pd.DataFrame, top: float) -> np.ndarray:
    """Per seed, the damage the largest beta does relative to what the net reaches at beta = 0:
    (acc(0) - acc(top)) / acc(0)."""
    return ((acc[0.0] - acc[top]) / acc[0.0]).to_numpy(float)


def mitigations_shrink_gap(grid: TrainGrid) -> Verdict:
    """Each mitigation shrinks the damage a large beta does at 16 bits: Adam (instead of the base optimizer), batch
    norm, and float64, each against the 16-bit base runs of the same dataset and 16-bit precision. The damage is
    the relative gap (acc(beta = 0) - acc(largest beta)) / acc(beta = 0), per seed (fixed before the data: an
    absolute gap rewards a mitigation that lowers the beta = 0 accuracy and punishes one that raises it). Holds when
    the mean relative gap shrinks by more than NOISE_SE standard errors (seed-to-seed spread of both sides) and by
    more than ``SAME_MARGIN``; does not hold when it shrinks by less than ``SAME_MARGIN`` even at NOISE_SE standard
    errors above the measured change; otherwise inconclusive.

    Preconditions, per (dataset, mitigation): >= MIN_SEEDS seeds on both sides; the base and the mitigated runs
    learned at beta = 0 (:func:`learned_level`); the base relative gap exceeds ``SAME_MARGIN`` beyond its noise.
    Each group measures the shrink and its standard error first (where judged), then the relative gaps and the
    absolute gaps acc(0) - acc(largest beta) of both sides."""
    criterion = ("per dataset and mitigation (Adam, batch norm, float64): the relative gap (acc(0) - acc(largest "
                 f"beta)) / acc(0) shrinks by more than {SAME_MARGIN:.0%} and {NOISE_SE:g} standard errors against "
                 "the 16-bit base runs")
    f = grid.frame
    opt, bn = _base(grid)
    groups = {}
    for ds in dict.fromkeys(f.dataset):
        fd = f[f.dataset == ds]
        top, level = float(fd.beta.max()), learned_level(grid.chance[ds])
        for d in [d for d in dict.fromkeys(fd.dtype) if d in SIXTEEN_BIT]:
            base = _per_seed(fd, dtype=d, optimizer=opt, batch_norm=bn)
            if 0.0 not in base.columns or top not in base.columns or top == 0.0:
                continue
            base_gap, base_se = _mean_se(_relative_gaps(base, top))
            cases = {o: dict(dtype=d, optimizer=o, batch_norm=bn) for o in dict.fromkeys(fd.optimizer) if o != opt}
            cases.update({"batch norm" if b else "no batch norm": dict(dtype=d, optimizer=opt, batch_norm=b)
                          for b in dict.fromkeys(fd.batch_norm) if b != bn})
            if "float64" in set(fd.dtype):
                cases["float64"] = dict(dtype="float64", optimizer=opt, batch_norm=bn)
            for name, sel in cases.items():
                m = _per_seed(fd, **sel)
                measured = {"base_relative_gap": base_gap, "base_relative_gap_se": base_se,
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
                elif base_gap - NOISE_SE * base_se <= SAME_MARGIN:
                    state = f"the {d} base relative gap is {base_gap:.3f} +- {base_se:.3f}: nothing clear to mitigate"
                else:
                    gap, se = _mean_se(_relative_gaps(m, top))
                    shrink, shrink_se = base_gap - gap, math.hypot(base_se, se)
                    measured = {"shrink": shrink, "shrink_se": shrink_se, **measured, "mitigated_relative_gap": gap,
                                "mitigated_relative_gap_se": se, "mitigated_gap": float(m[0.0].mean() - m[top].mean())}
                    if shrink - NOISE_SE * shrink_se > 0 and shrink > SAME_MARGIN:
                        state = True
                    elif shrink + NOISE_SE * shrink_se < SAME_MARGIN:
                        state = False
                    else:
                        state = (f"the shrink {shrink:.3f} +- {shrink_se:.3f} is within the seed-to-seed spread: "
                                 f"raise n_seeds")
                groups[f"{ds} {d} {name}"] = Verdict.from_state(state, criterion, **measured)
    if not groups:
        return Verdict.undecided(criterion,
                                 "no 16-bit base runs with beta = 0 and a larger beta, or no mitigation run")
    return Verdict.combine(groups, criterion)


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


def page_texts(verdicts: Mapping[str, Verdict], *, zrun: ZoneRun, grid: TrainGrid,
               splits: Mapping[str, data.Split]) -> dict[str, str]:
    """The sentences the page glues (as ``mp-<key>``), from the data, the runs at initialisation and in training,
    and, for the mitigations, from the recorded verdict's groups."""
    zt = zone_table(zrun)
    diff = "; ".join(f"{ds} {d} " + (_sci(r.max_difference) if r.min_difference == r.max_difference else
                                     f"{_sci(r.min_difference)} to {_sci(r.max_difference)}")
                     for (ds, d), r in zt.iterrows())
    shares = zt["compensation share of moving ties"]
    share = "; ".join(f"{ds} {d} " + ("undefined (no such tie)" if math.isnan(x) else f"{x:.0%}")
                      for (ds, d), x in shares.items())
    kinds = "; ".join(f"{ds} {d} {r.bifurcation:.1f} / {r.inert:.1f} / {r.compensation:.1f}"
                      for (ds, d), r in zt.iterrows())
    above = "; ".join(f"{ds} {d} {r.share_above_threshold:.0%}" for (ds, d), r in zt.iterrows())
    f = grid.frame
    nan_runs = f[f.diverged]
    firsts = nan_runs.drop_duplicates(["dataset", "dtype", "optimizer", "batch_norm", "beta"])
    nan_text = ", ".join(f"{r.dataset} {_setting(r)} at beta = {r.beta:g}" for r in firsts.itertuples()) or "none"
    return {"differences": diff or "none measured", "compensation-share": share or "none measured",
            "zone-counts": kinds or "none measured", "above-threshold": above or "none measured",
            "nan-runs": nan_text, "runs": f"{len(f):,} training run{'' if len(f) == 1 else 's'}",
            "mitigation-gaps": _mitigation_gaps(verdicts.get("mitigations-shrink-gap")),
            "train-sizes": " and ".join(f"{ds} on {sp.n_train:,} training images" for ds, sp in splits.items())}
