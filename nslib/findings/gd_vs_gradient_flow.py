"""Finding *gd-vs-gradient-flow* (Elkabetz & Cohen, NeurIPS 2021): does gradient descent follow gradient flow?

The page's experiments (the authors' MNIST set-up: GD at their eta0 against the adaptive flow and against GD at
eta0 / r; GD against the flow for several nets and step sizes on a smaller problem, the paper's eta0 / r protocol
there, curvature along the flow, deep linear nets from a balanced initialisation), its figures (``plot_*``), one
criterion per claim id: :func:`gd_tracks_gf`, :func:`tracking_boundary`, :func:`first_order_in_r`,
:func:`departs_beyond_2_over_lambda`, :func:`curvature_favourable`, :func:`deep_linear_global_min`, and the sources of
their constants (:data:`THRESHOLDS`).
The solvers are :mod:`nslib.tools.flows`, the Hessian eigenvalues :mod:`nslib.tools.curvature`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..figures import PALETTE, log_ticks, panels, shared_legend
from ..tools import curvature, data, flows, seeds
from ..tools.dynamics import settled
from ..tools.models import flat_loss, mlp
from ..tools.stats import loglog_slope
from ..verdicts import Threshold, Verdict

__all__ = [
    # experiments
    "DATASETS", "HOMOGENEOUS", "KINKED", "NETS", "PAPER_NETS", "DeepLinearRun", "NetRun", "balanced_init",
    "compare_net", "init_seed", "paper_loss", "PAPER_MNIST", "PAPER_MNIST_FIGURE", "THRESHOLDS", "authors_check",
    "authors_check_table", "authors_setup_table", "curvature_frame", "curvature_factors", "curvature_runs",
    "near_zero_label", "XAVIER", "deep_linear",
    "distance_frame", "gap_table", "loss_frame", "make_paper_net", "r_table", "reference_table", "run_authors_setup",
    "run_nets", "sharpening_table",
    "tracking_table", "whitened_regression",
    # figures
    "plot_authors_setup", "plot_curvature", "plot_deep_linear", "plot_distance_over_time", "plot_error_vs_r",
    "plot_gap_vs_eta", "plot_losses",
    # the page's prose
    "authors_setup_texts", "page_texts",
    # criteria, one per claim id
    "curvature_favourable", "deep_linear_global_min", "departs_beyond_2_over_lambda", "first_order_in_r",
    "gd_tracks_gf", "tracking_boundary",
]

#: The nets of the page: bias-free fully connected linear / ReLU / tanh nets, a ReLU net with biases, the paper's
#: conv net adapted to the input size (bias-free), and a LeNet-like net with biases and 2x2 MaxPool.
NETS = ("linear", "relu", "tanh", "relu-bias", "conv", "lenet")
#: Nets whose output is positively homogeneous in each layer's weights (no biases, homogeneous activations).
HOMOGENEOUS = ("linear", "relu", "conv")
#: Nets with kinks (ReLU, MaxPool): their flow's vector field jumps, and its reference costs far more to resolve.
KINKED = ("relu", "relu-bias", "conv", "lenet")
#: The nets of the paper's experiments (linear and ReLU MLPs, the conv net, LeNet-5): ``gd-tracks-gf`` judges these on
#: the authors' set-up; any other net run there is measured by the same test and reported.
PAPER_NETS = ("linear", "relu", "conv", "lenet")
#: The GD-to-flow distance the paper itself shows as "close": its figures give weight distances between GD(eta0) and
#: GD(eta0 / r) up to about 0.05 against 2.5-3.0 travelled from initialisation at t = 10, about 2% (Elkabetz & Cohen
#: 2021, MNIST experiments; read off the figures, as the paper states no threshold). ``gd-tracks-gf`` is judged at it,
#: and ``tracking-boundary`` locates the step where the book's sweep crosses it.
PAPER_TRACKING_RATIO = 0.02
#: GD with a step beyond 2/lambda is unstable along the top eigenvector of a quadratic: in units of 2/lambda the
#: stability edge is 1. ``tracking-boundary`` asks whether the 2% crossing comes before it.
EDGE_UNITS = 1.0
#: ``departs-beyond-2-over-lambda``: the relative gap that counts as "departed".
DEPART_RATIO = 0.10
#: ``departs-beyond-2-over-lambda``: the largest step, in units of 2/lambda, by which GD must have departed.
DEPART_MAX_UNITS = 3.0
#: ``departs-beyond-2-over-lambda`` refutes only from a grid with a step in [max_units / NEAR_FACTOR, max_units].
#: (These constants are the criteria's defaults, written out in their signatures; a test checks they agree.)
NEAR_FACTOR = 1.5
#: ``curvature-favourable``: the largest curvature factor exp(-integral_0^T lambda_minus dt) that counts as "near 1".
FAVOURABLE_FACTOR = 2.0
#: ``first-order-in-r``: the reference must be this many times more accurate than the smallest error it measures.
REFERENCE_MARGIN = 100.0
_PAPER_FIGURE = ("Elkabetz & Cohen (NeurIPS 2021), MNIST experiments (code elkabzo/cont_disc_opt_dnn): "
                 "||w_eta0 - w_eta0/r|| up to ~0.05 against ~2.5-3.0 travelled at t = 10 (read off the figures; "
                 "the paper states no threshold)")
#: Where every constant of the criteria comes from, shown under the page's verdicts.
THRESHOLDS = (
    Threshold("gd-tracks-gf", "threshold", PAPER_TRACKING_RATIO, "paper", _PAPER_FIGURE),
    Threshold("tracking-boundary", "threshold", PAPER_TRACKING_RATIO, "paper",
              "the same 2% as gd-tracks-gf: " + _PAPER_FIGURE),
    Threshold("tracking-boundary", "edge", EDGE_UNITS, "theory",
              "GD on a quadratic is unstable along the top Hessian eigenvector for eta > 2/lambda_max: 1 unit of "
              "2/lambda"),
    Threshold("first-order-in-r", "slope_range", (-1.2, -0.8), "ours, fixed before the data",
              "slope -1 from theory (GD is Euler's method: global error O(eta)); the band +-0.2 is ours, set with "
              "the pilot on digits (bias-free 64-32-32-10, float64), whose linear net gave first-order errors"),
    Threshold("first-order-in-r", "REFERENCE_MARGIN", REFERENCE_MARGIN, "ours, fixed before the data",
              "the reference must be 100x more accurate than the smallest error it measures (a 1% effect on each "
              "point); set with the pilot, where fixed-step RK4 stalled near 2.9e-3 on the ReLU net"),
    Threshold("departs-beyond-2-over-lambda", "threshold", DEPART_RATIO, "ours, fixed before the data",
              "pilot on digits (linear net): relative gap 1.6% at 1.09 and 11.5% at 2.2 x 2/lambda_max(theta0)"),
    Threshold("departs-beyond-2-over-lambda", "max_units", DEPART_MAX_UNITS, "ours, fixed before the data",
              "the same pilot: 10% passed by 2.2 x 2/lambda_max(theta0); 3 leaves room for sharpening"),
    Threshold("departs-beyond-2-over-lambda", "near", NEAR_FACTOR, "ours, fixed before the data",
              "the audit's seed 41, whose grid jumped from 1.4 to 3.5 x 2/lambda and tested nothing in between"),
    Threshold("departs-beyond-2-over-lambda", "PAPER_TRACKING_RATIO", PAPER_TRACKING_RATIO, "paper",
              "reported only (where the gap first passes 2%): " + _PAPER_FIGURE),
    Threshold("curvature-favourable", "factor", FAVOURABLE_FACTOR, "ours, fixed before the data",
              "fixed before the factor was first measured on this page: a factor <= 2 at most doubles the bound of a "
              "path with no negative curvature (order t eta), while a path with lambda_min <= -c grows it like "
              "exp(c t), past 2 once c t > 0.7; the paper gives no number"),
    Threshold("curvature-favourable", "min_loss_drop", 0.1, "ours, fixed before the data",
              "a precondition added after the first book run, whose near-zero flows were still at loss 2.3 of 2.3 at "
              "the horizon: a flow that has not left its plateau has not tested the bound (Methods, criteria "
              "changed); fixed before any run that left the plateau was judged"),
    Threshold("deep-linear-global-min", "tol", 1e-6, "ours, fixed before the data",
              "FINDINGS check (5): 'global minimum' read as excess loss < 1e-6 over the least-squares optimum; the "
              "pilot's converged seeds end near 1e-30 (float64)"),
    Threshold("deep-linear-global-min", "min_fraction", 0.99, "ours, fixed before the data",
              "the theorem says 'almost surely' (every seed); 99 of 100 leaves one numerical outlier (FINDINGS "
              "check (5))"),
    Threshold("deep-linear-global-min", "window", 20, "ours, fixed before the data",
              "a failing seed counts only when settled over its last 20 recorded values (of 200 points per run)"),
)
#: Datasets, loaded by :func:`nslib.tools.data.load`: digits, MNIST-1D, MNIST from local IDX files.
DATASETS = data.DATASETS


# ------------------------------------------------------------------------------------- GD and the flow on the same nets

@dataclass
class NetRun:
    """One net: GD at several step sizes and the paper's protocol, against an adaptive gradient-flow reference.

    ``reference`` is the flow solved at ``rtol / 10``; ``reference_error`` is how far it moved from the solve at
    ``rtol`` (max over time, :func:`nslib.tools.flows.checked_flow`): a conservative bound on its own error.
    ``reference_failed`` says why no reference exists (the solver gave up). ``lam0`` is lambda_max(theta0),
    ``lam_path`` the largest lambda_max at the curvature checkpoints along the flow. ``gd_distance`` and
    ``protocol_distance`` are each run's max_t distance to the reference, computed once here."""

    name: str
    n_params: int
    lam0: float
    lam_path: float
    reference: flows.Trajectory | None
    reference_error: float
    reference_failed: str | None
    gd: dict[float, flows.Trajectory]
    protocol: dict[int, flows.Trajectory]
    curvature: pd.DataFrame
    losses: pd.DataFrame
    eta0: float
    rtol: float
    gd_distance: dict[float, float]  # eta -> max_t ||GD(eta) - GF|| (inf: diverged, NaN: no reference)
    protocol_distance: dict[int, float]  # r -> max_t ||GD(eta0 / r) - GF||

    @property
    def homogeneous(self) -> bool:
        return self.name in HOMOGENEOUS

    @property
    def travelled(self) -> float:
        return self.reference.travelled() if self.reference is not None else math.nan


def _curvature_along(f, reference: flows.Trajectory, checkpoints, seed: int) -> pd.DataFrame:
    from scipy.sparse.linalg import ArpackNoConvergence

    rows = []
    grad = torch.func.grad(f)
    for t, theta in zip(checkpoints, reference.at(checkpoints)):
        try:
            lmax, lmin = curvature.extremes(f, theta, tol=1e-6, seed=seed)
        except ArpackNoConvergence as e:  # recorded; the criterion judges it inconclusive
            lmax = lmin = math.nan
            rows.append({"t": t, "error": str(e)})
            continue
        rows.append({"t": float(t), "lambda_max": lmax, "lambda_min": lmin, "grad_norm": float(grad(theta).norm())})
    return pd.DataFrame(rows)


def _losses(f, reference: flows.Trajectory | None, gd0: flows.Trajectory) -> pd.DataFrame:
    rows = [{"t": t, "loss": float(f(th)), "path": "GD, eta0"} for t, th in zip(gd0.times, gd0.thetas)]
    if reference is not None:
        rows += [{"t": t, "loss": float(f(th)), "path": "gradient flow"} for t, th in
                 zip(gd0.times, reference.at(gd0.times))]
    return pd.DataFrame(rows)


def _conv_stack(shape, lenet: bool) -> list[nn.Module]:
    """Two convolutions 1->6->16 (kernel 5 when the input side is >= 20, else 3), as in the paper: stride 2 and
    no bias for the conv net, MaxPool 2 and biases for LeNet. 1-D inputs get the 1-D versions."""
    conv, pool = (nn.Conv2d, nn.MaxPool2d) if len(shape) == 3 else (nn.Conv1d, nn.MaxPool1d)
    k = 5 if min(shape[1:]) >= 20 else 3
    if lenet:
        return [conv(1, 6, k, padding=k // 2), nn.ReLU(), pool(2),
                conv(6, 16, k, padding=0 if k == 5 else 1), nn.ReLU(), pool(2)]
    return [conv(1, 6, k, stride=2, padding=k // 2, bias=False), nn.ReLU(),
            conv(6, 16, k, stride=2 if k == 5 else 1, bias=False), nn.ReLU()]


def make_paper_net(name: str, input_shape: Sequence[int], width: int, *, n_classes: int, seed: int = 0,
             dtype: torch.dtype = torch.float64, device="cpu") -> nn.Module:
    """One of :data:`NETS`, Xavier-uniform initialised (zero biases) from ``seed``, taking flat inputs.

    The fully connected nets are ``n_in-width-width-n_classes``. The conv nets follow the paper on inputs of side
    >= 20 (kernels 5, head 120-84); on smaller inputs (8x8 digits) they are adapted: kernels 3 and a
    ``width-width`` head, so that they cost about what the MLPs cost."""
    if name not in NETS:
        raise ValueError(f"net = {name!r}: allowed is one of {', '.join(NETS)}")
    torch.manual_seed(seed)
    n_in = int(np.prod(input_shape))
    if name in ("linear", "relu", "tanh", "relu-bias"):
        act = {"linear": "identity", "relu-bias": "relu"}.get(name, name)
        return mlp([n_in, width, width, n_classes], act, bias=name == "relu-bias", init="xavier_uniform",
                   dtype=dtype, device=device)
    lenet = name == "lenet"
    body = nn.Sequential(nn.Unflatten(1, tuple(input_shape)), *_conv_stack(input_shape, lenet), nn.Flatten())
    with torch.no_grad():
        n_feat = body(torch.zeros(1, n_in)).shape[1]
    h1, h2 = (120, 84) if min(input_shape[1:]) >= 20 else (width, width)  # the paper's head, or the MLP's widths
    net = nn.Sequential(body, nn.Linear(n_feat, h1, bias=lenet), nn.ReLU(), nn.Linear(h1, h2, bias=lenet),
                        nn.ReLU(), nn.Linear(h2, n_classes, bias=lenet))
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net.to(dtype=dtype, device=device)


def init_seed(seed: int) -> int:
    """The torch seed of every net's initialisation for the page seed ``seed``: its own stream, apart from the data's
    (:mod:`nslib.tools.seeds`)."""
    return seeds.stream_seed(seed, "net-init")


def paper_loss(name: str, X: torch.Tensor, y: torch.Tensor, input_shape, n_classes: int, *, width: int, seed: int = 0):
    """``(f, theta0)``: the cross-entropy of net ``name`` (:func:`make_paper_net`, initialised from the page seed's
    ``"net-init"`` stream) on the full batch (X, y), as a function of the flat parameter vector, and its start."""
    net = make_paper_net(name, input_shape, width, n_classes=n_classes, seed=init_seed(seed), dtype=X.dtype,
                         device=X.device)
    return flat_loss(net, F.cross_entropy, X, y)


def compare_net(name: str, X: torch.Tensor, y: torch.Tensor, input_shape, n_classes: int, *, width: int,
                etas: Sequence[float], eta0: float, horizon: float, rs: Sequence[int], rtol: float,
                curvature_points: int, seed: int = 0, points: int = 100) -> NetRun:
    """Everything the page measures on one net (cross-entropy, full batch, float64).

    GD runs at every step size in ``etas`` and, as in the paper, at ``eta0 / r`` for r in ``rs`` (every r-th
    iterate kept; r = 1, GD with eta0, always), each over ``horizon`` units of time and recorded at about
    ``points`` times. The reference flow is solved at ``rtol`` and ``rtol / 10`` (the latter kept) at all those
    times and at ``curvature_points`` checkpoints, where lambda_max, lambda_min and ||grad f|| are measured. The
    initialisation comes from the page seed's stream ``"net-init"`` (:func:`init_seed`)."""
    f, theta0 = paper_loss(name, X, y, input_shape, n_classes, width=width, seed=seed)
    lam0 = curvature.sharpness(f, theta0, tol=1e-6, seed=seed)
    gd = {}
    for eta in sorted(float(e) for e in etas):
        steps = max(1, round(horizon / eta))
        gd[eta] = flows.gradient_descent(f, theta0, eta, steps, every=max(1, steps // points))
    steps0 = max(1, round(horizon / eta0))
    every0 = max(1, steps0 // points)
    protocol = {r: flows.paper_protocol(f, theta0, eta0, r, steps0, every=every0) for r in sorted({1, *rs})}
    checkpoints = np.linspace(0.0, horizon, curvature_points)
    times = np.unique(np.concatenate([checkpoints, protocol[1].times, *[t.times for t in gd.values()]]))
    reference, err, failed = None, math.nan, None
    try:
        reference, err = flows.checked_flow(f, theta0, times, rtol=rtol)
    except flows.FlowError as e:
        failed = str(e)
    distance = lambda traj: flows.max_distance(traj, reference) if reference is not None else math.nan
    curv = _curvature_along(f, reference, checkpoints, seed) if reference is not None else pd.DataFrame()
    lam_path = float(np.nanmax(curv.lambda_max)) if "lambda_max" in curv and curv.lambda_max.notna().any() else lam0
    losses = _losses(f, reference, protocol[1])
    return NetRun(name, f.n_params, lam0, lam_path, reference, err, failed, gd, protocol, curv, losses, eta0, rtol,
                  {eta: distance(t) for eta, t in gd.items()}, {r: distance(t) for r, t in protocol.items()})


def run_nets(nets: Sequence[str], X, y, input_shape, n_classes: int, *, rtol: float, rtol_kinked: float,
             protocol_nets: Sequence[str], rs: Sequence[int], **kwargs) -> list[NetRun]:
    """:func:`compare_net` for each net: the reference at ``rtol`` for smooth nets and ``rtol_kinked`` for
    :data:`KINKED` ones, the paper's eta0 / r protocol only on ``protocol_nets`` (it costs sum(rs) x horizon / eta0
    gradients per net)."""
    return [compare_net(n, X, y, input_shape, n_classes, rtol=rtol_kinked if n in KINKED else rtol,
                        rs=rs if n in protocol_nets else [], **kwargs) for n in nets]


def reference_table(runs: Sequence[NetRun]) -> pd.DataFrame:
    """The reference's self-check per net: tolerance, cost, how far tightening moved it (absolute and relative to
    the distance travelled), and that error over the smallest GD-GF distance it measures (the issue's strict rule
    asks for < 0.01)."""
    rows = []
    for run in runs:
        dists = [*run.gd_distance.values(), *run.protocol_distance.values()]
        smallest = min((d for d in dists if d > 0), default=math.nan)  # NaN without a reference: min skips it
        rows.append({"net": run.name, "parameters": run.n_params, "homogeneous": run.homogeneous,
                     "kinks": run.name in KINKED, "rtol": run.rtol,
                     "gradient evaluations": run.reference.grad_evals if run.reference is not None else None,
                     "error": run.reference_error, "error / distance travelled": run.reference_error / run.travelled,
                     "error / smallest GD-GF distance": run.reference_error / smallest,
                     "failed": run.reference_failed or ""})
    return pd.DataFrame(rows).set_index("net")


def _net_colors(nets) -> dict:
    return {n: PALETTE[NETS.index(n) % len(PALETTE)] for n in nets}


def loss_frame(runs: Sequence[NetRun]) -> pd.DataFrame:
    """Long frame of the train loss along GD with eta0 and along the flow, per net."""
    return pd.concat([r.losses.assign(net=r.name) for r in runs], ignore_index=True)


def plot_losses(losses: pd.DataFrame):
    """Train loss along GD with eta0 (dots) and along the flow (line), per net: the paper's 'indistinguishable'."""
    fig, (ax,) = panels(1, panel=(7.5, 4.2))
    colors = _net_colors(losses.net.unique())
    for net, sub in losses.groupby("net", sort=False):
        gf, gd = sub[sub.path == "gradient flow"], sub[sub.path == "GD, eta0"]
        ax.plot(gf.t, gf.loss, color=colors[net], lw=1.5, label=f"{net}: flow")
        ax.plot(gd.t, gd.loss, "o", color=colors[net], ms=3, alpha=0.6, label=f"{net}: GD")
    ax.set(yscale="log", xlabel="time t (= iterations x step size)", ylabel="train loss (cross-entropy)",
           title="GD with eta0 and the gradient flow")
    log_ticks(ax.yaxis)
    shared_legend(fig, [ax], ncol=4)
    return fig


def gap_table(runs: Sequence[NetRun]) -> pd.DataFrame:
    """One row per (net, step size): eta in units of 2/lambda_max at theta0 and along the path, the largest
    distance between GD and the flow relative to the distance the flow travels (inf when GD diverged), and the
    reference's own relative error."""
    rows = []
    for run in runs:
        for eta, traj in run.gd.items():
            gap = run.gd_distance[eta]
            rows.append({"net": run.name, "eta": eta, "eta_units0": eta * run.lam0 / 2,
                         "eta_units_path": eta * run.lam_path / 2, "relative_gap": gap / run.travelled,
                         "diverged": traj.diverged, "reference_relative_error": run.reference_error / run.travelled,
                         "reference_failed": run.reference_failed})
    return pd.DataFrame(rows)


def distance_frame(runs: Sequence[NetRun]) -> pd.DataFrame:
    """Long frame (net, eta in units of 2 / max lambda along the path, t, relative distance) of
    ||GD(eta)(t) - GF(t)|| / travelled over time; diverged runs left out."""
    parts = []
    for run in runs:
        if run.reference is None:
            continue
        for eta, traj in run.gd.items():
            if traj.diverged:
                continue
            t, d = flows.distances(traj, run.reference)
            parts.append(pd.DataFrame({"net": run.name, "eta_units_path": eta * run.lam_path / 2, "t": t,
                                       "relative_distance": d / run.travelled}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def plot_distance_over_time(distances: pd.DataFrame):
    """||GD(eta)(t) - GF(t)|| relative to the distance the flow travels, over time, one panel per net (two per row),
    one line per step size (in units of 2 / max lambda_max along the flow, which differs per net: each panel has
    its own legend, beside it)."""
    nets = list(distances.net.unique())
    fig, axes = panels(max(1, len(nets)), panel=(5.0, 3.4), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, net in zip(axes, nets):
        sub = distances[distances.net == net]
        units = sorted(sub.eta_units_path.unique())
        for i, u in enumerate(units):
            s = sub[sub.eta_units_path == u]
            ax.plot(s.t, np.maximum(s.relative_distance, 1e-8), color=cmap(i / max(1, len(units) - 1)),
                    label=f"{u:.2g}")
        ax.axhline(PAPER_TRACKING_RATIO, color="k", ls="--", lw=1)
        ax.set(yscale="log", title=net, xlabel="time t (iterations x eta)")
        ax.legend(title="eta / (2/lambda)", frameon=False, fontsize="x-small", title_fontsize="x-small",
                  loc="upper left", bbox_to_anchor=(1.0, 1.0))
        log_ticks(ax.yaxis)
    for ax in axes[::2]:
        ax.set_ylabel("||GD - GF||\n/ distance travelled")
    fig.suptitle(f"GD against the flow over time\n(dashed: the paper's {PAPER_TRACKING_RATIO:.0%}; lambda: the largest "
                 "along the flow)", fontweight="bold")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ Step size against curvature

def plot_gap_vs_eta(gaps: pd.DataFrame, cap: float = 10.0):
    """Relative gap between GD and the flow against eta, in units of 2/lambda_max(theta0) (left) and of 2 / the
    largest lambda_max along the flow (right), per net; diverged runs drawn at ``cap`` with a cross; a solid line at
    the paper's 2% and a dashed one at 10%, dotted verticals at eta = 1/lambda and 2/lambda. One legend below both
    panels."""
    fig, axes = panels(2, panel=(4.6, 3.8), sharey=True)
    colors = _net_colors(gaps.net.unique())
    for ax, col, unit in ((axes[0], "eta_units0", "lambda_max(theta0)"),
                          (axes[1], "eta_units_path", "max lambda_max on the flow")):
        for net, sub in gaps.groupby("net", sort=False):
            g = np.where(sub.diverged | ~np.isfinite(sub.relative_gap), cap, sub.relative_gap)
            ax.plot(sub[col], np.minimum(g, cap), "o-", color=colors[net], label=net)
            div = sub[sub.diverged.astype(bool)]
            ax.plot(div[col], [cap] * len(div), "x", color=colors[net], ms=9)
        for level, style in ((PAPER_TRACKING_RATIO, "-"), (DEPART_RATIO, "--")):
            ax.axhline(level, color="k", ls=style, lw=1, label=f"gap {level:.0%}")
        for u in (0.5, 1.0):
            ax.axvline(u, color="grey", ls=":", lw=1, label="eta = 1/lambda, 2/lambda")
        ax.set(xscale="log", yscale="log", xlabel=f"eta / (2 / {unit})")
        log_ticks(ax.xaxis)
        log_ticks(ax.yaxis)
    if gaps.diverged.astype(bool).any():
        axes[0].plot([], [], "x", color="grey", ms=9, label=f"diverged (drawn at {cap:g})")
    axes[0].set_ylabel("max_t ||GD - GF||\n/ distance travelled")
    axes[0].set_title("initial curvature")
    axes[1].set_title("curvature along the flow")
    fig.suptitle("Where GD departs from the flow", fontweight="bold")
    shared_legend(fig, axes, ncol=4)
    return fig


def tracking_boundary(gaps: pd.DataFrame, threshold: float = 0.02, edge: float = 1.0) -> Verdict:
    """The book's measured boundary: where, in units of 2/lambda (lambda the largest sharpness along the flow), the
    relative gap between GD and the flow first crosses ``threshold`` (the paper's 2%), bracketed by the two grid steps
    around it; the claim is that the crossing comes before the stability edge (``edge`` = 1 unit of 2/lambda). Judged
    for every net run.

    Each point is read with the reference's error counted (below: gap + error < threshold; above: gap - error >=
    threshold, or GD diverged). The crossing is bracketed by the last step below and the first step that is not:
    holds when that first step is <= ``edge``, does not hold when the last step below is >= ``edge``. Preconditions:
    a reference exists, the grid straddles the crossing (a step below it and one above it), the point at the crossing
    is decided (the reference's error does not straddle the threshold), and the bracket does not contain the edge."""
    criterion = (f"the relative gap first crosses {threshold:g} at a step below {edge:g} x 2/lambda (lambda the "
                 "largest sharpness along the flow), bracketed by two grid steps, for every net")
    groups = {}
    for net, sub in gaps.groupby("net", sort=False):
        sub = sub.sort_values("eta")
        gap = np.where(sub.diverged, np.inf, sub.relative_gap.to_numpy(float))
        err = np.nan_to_num(sub.reference_relative_error.to_numpy(float), nan=np.inf)
        units, units0 = sub.eta_units_path.to_numpy(float), sub.eta_units0.to_numpy(float)
        above = np.isinf(gap) | (gap - err >= threshold)
        below = ~above & (gap + err < threshold)
        first = int(np.flatnonzero(~below)[0]) if (~below).any() else None
        m = {"crossing_above_units": None, "crossing_below_units": None, "crossing_above_units0": None,
             "crossing_below_units0": None, "largest_units": float(units.max()), "smallest_units": float(units.min())}
        if first is not None and first > 0 and above[first]:
            m |= {"crossing_above_units": float(units[first - 1]), "crossing_below_units": float(units[first]),
                  "crossing_above_units0": float(units0[first - 1]), "crossing_below_units0": float(units0[first])}
        if sub.reference_failed.iloc[0] and not np.isinf(gap).any():
            state = f"no reference ({sub.reference_failed.iloc[0]})"
        elif first is None:
            state = (f"the grid ends below the crossing: every step up to {units.max():.3g} x 2/lambda stays below "
                     f"{threshold:g}")
        elif not above[first]:
            state = f"the reference's error straddles {threshold:g} at {units[first]:.3g} x 2/lambda"
        elif first == 0:
            state = (f"the grid starts above the crossing: the smallest step, {units[0]:.3g} x 2/lambda, is already at "
                     f"or above {threshold:g}")
        elif units[first] <= edge + 1e-12:
            state = True
        elif units[first - 1] >= edge - 1e-12:
            state = False
        else:
            state = (f"the crossing lies between {units[first - 1]:.3g} and {units[first]:.3g} x 2/lambda, a bracket "
                     f"that contains the edge {edge:g}: a finer grid there decides")
        groups[net] = Verdict.from_state(state, **m)
    if not groups:
        return Verdict.undecided(criterion, "no net was run", threshold=threshold, edge=edge)
    return Verdict.combine(groups, criterion, threshold=threshold, edge=edge)


def departs_beyond_2_over_lambda(gaps: pd.DataFrame, threshold: float = 0.10, max_units: float = 3.0,
                                 near: float = 1.5) -> Verdict:
    """For every net, GD departs from the flow (relative gap >= ``threshold``, or divergence) at some step size
    eta <= ``max_units`` x 2/lambda, lambda the largest sharpness along the flow. Decided 'does not hold' for a net
    only when its grid has a step in [``max_units`` / ``near``, ``max_units``] (a grid that jumps past the range the
    claim is about has tested nothing there) and every point up to ``max_units`` stays below the threshold by more
    than the reference's error. Also measured: where the gap first passes the paper's 2% and ``threshold``, in units
    of 2/lambda_max(theta0) and of 2/lambda along the path."""
    criterion = (f"the relative gap reaches {threshold:g} (or GD diverges) at some eta <= {max_units:g} x 2/lambda, "
                 "lambda the largest sharpness along the flow, for every net")
    groups = {}
    for net, sub in gaps.groupby("net", sort=False):
        sub = sub.sort_values("eta")
        gap = np.where(sub.diverged, np.inf, sub.relative_gap.to_numpy(float))
        err = sub.reference_relative_error.to_numpy(float)
        units = sub.eta_units_path.to_numpy(float)
        within = units <= max_units + 1e-12
        first = {level: np.flatnonzero(gap >= level) for level in (threshold, PAPER_TRACKING_RATIO)}
        m = {f"first_eta_units_path_above_{level:g}": float(units[hit[0]]) if len(hit) else None
             for level, hit in first.items()}
        m["largest_eta_units_path"] = float(units.max())
        m |= {f"first_eta_units0_above_{level:g}": float(sub.eta_units0.iloc[hit[0]]) if len(hit) else None
              for level, hit in first.items()}
        if sub.reference_failed.iloc[0] and not np.any(np.isinf(gap) & within):
            state = f"no reference ({sub.reference_failed.iloc[0]})"
        elif np.any(within & (gap - err >= threshold)):
            state = True
        elif units.max() < max_units - 1e-12:
            state = f"the grid ends at {units.max():.3g} x 2/lambda, below {max_units:g}"
        elif not np.any(within & (units >= max_units / near - 1e-12)):
            below = units[within].max() if within.any() else 0.0
            state = (f"the grid has no step between {below:.3g} and {max_units:g} x 2/lambda (next: "
                     f"{units[~within].min():.3g}): the range the claim is about was not tested")
        elif np.all(gap[within] + err[within] < threshold):
            state = False
        else:
            state = "the reference's error straddles the threshold"
        groups[net] = Verdict.from_state(state, **m)
    return Verdict.combine(groups, criterion, threshold=threshold, max_units=max_units, near_factor=near)


def sharpening_table(runs: Sequence[NetRun], gaps: pd.DataFrame) -> pd.DataFrame:
    """Per net: lambda_max at theta0 and the largest along the flow, and the relative gap at the largest step
    eta <= 1/lambda judged with each."""
    rows = []
    for run in runs:
        sub = gaps[gaps.net == run.name]
        gap = np.where(sub.diverged, np.inf, sub.relative_gap)
        row = {"net": run.name, "lambda_max(theta0)": run.lam0, "largest lambda_max along the flow": run.lam_path,
               "growth": run.lam_path / run.lam0}
        for label, col in (("theta0", "eta_units0"), ("path", "eta_units_path")):
            ok = (sub[col] <= 0.5 + 1e-12).to_numpy()
            row[f"gap at the largest eta <= 1/lambda ({label})"] = float(gap[ok][-1]) if ok.any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("net")


# -------------------------------------------------------------------------------- The paper's protocol: GD with eta_0/r

def r_table(runs: Sequence[NetRun]) -> pd.DataFrame:
    """One row per (net, r): the largest distance between GD with eta0 / r (the paper's protocol) and the
    adaptive reference, absolute and relative to the distance travelled; r = 1 is GD with eta0 itself."""
    rows = []
    for run in runs:
        for r, traj in run.protocol.items():
            err = run.protocol_distance[r]
            rows.append({"net": run.name, "r": r, "error": err, "relative_error": err / run.travelled,
                         "reference_error": run.reference_error, "diverged": traj.diverged,
                         "grad_evals": traj.grad_evals})
    return pd.DataFrame(rows)


def _slope_group(sub: pd.DataFrame, slope_range) -> Verdict:
    """One net's protocol errors against r > 1 (``sub``: its rows of :func:`r_table`), judged by
    :func:`first_order_in_r`'s test: its log-log slope (measured whenever there are two r), the reference's error,
    and the errors as flat lists ``r``, ``error``."""
    lo, hi = slope_range
    r, err = sub.r.astype(int).tolist(), sub.error.astype(float).tolist()
    slope = loglog_slope(sub.r, sub.error) if len(sub) >= 2 and not sub.diverged.any() else None
    ref_err, smallest = float(sub.reference_error.iloc[0]), float(sub.error.min())
    m = {"slope": slope, "reference_error": ref_err, "smallest_error": smallest, "r": r, "error": err}
    if len(sub) < 2:
        return Verdict.undecided("", "a slope needs two values of r > 1", **m)
    if sub.diverged.any():
        return Verdict.undecided("", f"GD with eta0 / r diverged for r = {sub.r[sub.diverged].tolist()}", **m)
    if not ref_err < smallest / REFERENCE_MARGIN:
        return Verdict.undecided("", f"the reference is not converged: tightening its tolerances moved it by "
                                     f"{ref_err:.2g}, not below 1/{REFERENCE_MARGIN:g} of the smallest error "
                                     f"{smallest:.2g}", **m)
    return Verdict.decided(lo <= slope <= hi, "", **m)


def first_order_in_r(rtab: pd.DataFrame, net: str = "linear", slope_range=(-1.2, -0.8)) -> Verdict:
    """The paper's protocol is first order: the error of GD with eta0 / r against the flow falls like 1/r for the
    ``net`` net, the one group judged (log-log slope over the r > 1 in the table within ``slope_range``).
    Preconditions: the net was run with a reference and two r > 1, no protocol run diverged, and the reference is
    converged: its error is below 1/100 of the smallest error it measures. The other nets are measured by the same
    test as reported groups, not judged."""
    lo, hi = slope_range
    criterion = f"log-log slope of max_t ||GD(eta0/r) - GF|| in r (r >= 2) for the {net} net lies in [{lo}, {hi}]"
    per_net = {name: _slope_group(sub, slope_range) for name, sub in rtab[rtab.r > 1].groupby("net", sort=False)}
    judged = per_net.pop(net, None) or Verdict.undecided("", "not run with the protocol (no r > 1)")
    return Verdict.combine({net: judged}, criterion, reported=per_net, slope_range=[lo, hi])


def plot_error_vs_r(rtab: pd.DataFrame):
    """Error of the paper's protocol (GD with eta0 / r) against the adaptive reference, log-log, per net, with the
    reference's own error as a dotted floor and a slope -1 guide."""
    fig, (ax,) = panels(1, panel=(7.0, 4.2))
    colors = _net_colors(rtab.net.unique())
    for net, sub in rtab.groupby("net", sort=False):
        ax.plot(sub.r, sub.error, "o-", color=colors[net], label=net)
        ax.axhline(sub.reference_error.iloc[0], color=colors[net], ls=":", lw=1)
    r = np.array(sorted(rtab.r.unique()), float)
    top = rtab[rtab.r == r[0]].error.max()
    ax.plot(r, top * r[0] / r, "k--", lw=1, label="slope -1")
    ax.plot([], [], ":", color="grey", lw=1, label="reference's own error")
    ax.set(xscale="log", yscale="log", xlabel="r (GD with step eta0 / r)",
           ylabel="max_t ||GD(eta0/r) - GF||", title="The paper's protocol converges to the flow at first order")
    ax.set_xticks(r, [f"{v:g}" for v in r])  # the refinements run, in plain numbers
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    log_ticks(ax.yaxis)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------ The authors' set-up on real MNIST

#: Elkabetz & Cohen's MNIST set-up (their repository elkabzo/cont_disc_opt_dnn): 1,000 training images, bias-free
#: 784-50-50-10 nets, Xavier-uniform init, full batch, eta0 = 0.001.
PAPER_MNIST = {"n_train": 1000, "width": 50, "eta0": 0.001}
#: What the paper's figures show on that set-up at t = 10 (10,000 steps of eta0), read off the figures: the weight
#: distance between GD(eta0) and GD(eta0 / r) stays below about 0.05 while the weights travel 2.5-3.0 from their
#: initialisation, a ratio of about 2% (:data:`PAPER_TRACKING_RATIO`).
PAPER_MNIST_FIGURE = {"t": 10.0, "distance": 0.05, "travelled": (2.5, 3.0)}


def run_authors_setup(nets: Sequence[str], X, y, input_shape, n_classes: int, *, horizon: float, rtol: float,
                      seed: int = 0) -> list[NetRun]:
    """GD with the paper's eta0 against the adaptive flow (solved at ``rtol`` for every net, kinked or not) on the
    paper's nets and widths, over ``horizon`` units of time; lambda_max at the start only (the table reads eta0 in
    its units; no curvature checkpoints, whose smallest eigenvalues cost far more than the rest at this size)."""
    return [compare_net(n, X, y, input_shape, n_classes, width=PAPER_MNIST["width"], etas=[],
                        eta0=PAPER_MNIST["eta0"], horizon=horizon, rs=[], rtol=rtol, curvature_points=0, seed=seed)
            for n in nets]


def authors_check(nets: Sequence[str], X, y, input_shape, n_classes: int, *, rs: Sequence[int], horizon: float,
                  seed: int = 0, points: int = 100) -> pd.DataFrame:
    """The authors' own check on their set-up: GD at eta0 against GD at eta0 / r from the same initialisation (the one
    :func:`run_authors_setup` uses), compared at matched times t = k eta0 up to ``horizon``, at about ``points`` times.
    Long frame: net, r, t, the distance ||GD(eta0)(t) - GD(eta0/r)(t)||, the distance GD(eta0/r) has travelled
    from the initialisation by t, whether either run diverged, and the gradients spent. Costs sum(rs) x horizon / eta0
    gradients per net."""
    eta0 = PAPER_MNIST["eta0"]
    steps = max(1, round(horizon / eta0))
    every = max(1, steps // points)
    frames = []
    for name in nets:
        f, theta0 = paper_loss(name, X, y, input_shape, n_classes, width=PAPER_MNIST["width"], seed=seed)
        coarse = flows.paper_protocol(f, theta0, eta0, 1, steps, every=every)
        for r in sorted(set(int(r) for r in rs)):
            fine = flows.paper_protocol(f, theta0, eta0, r, steps, every=every)
            diverged = coarse.diverged or fine.diverged
            t, d = flows.distances(coarse, fine)
            moved = (fine.at(t) - theta0).norm(dim=1).cpu().numpy()
            frames.append(pd.DataFrame({"net": name, "r": r, "t": t, "distance": d, "travelled": moved,
                                        "diverged": diverged, "grad_evals": fine.grad_evals}))
    cols = ["net", "r", "t", "distance", "travelled", "diverged", "grad_evals"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def authors_check_table(check: pd.DataFrame) -> pd.DataFrame:
    """Per (net, r) of :func:`authors_check`: the time compared up to, the largest distance between GD at eta0 and at
    eta0 / r, the distance travelled by then, their ratio (the paper's ~2% at t = 10) and the gradients spent."""
    rows = []
    for (net, r), sub in check.groupby(["net", "r"], sort=False):
        end = sub.t.idxmax()
        diverged = bool(sub.diverged.any())
        gap = math.inf if diverged else float(sub.distance.max())
        rows.append({"net": net, "r": int(r), "t": float(sub.t.max()), "max_t ||GD(eta0) - GD(eta0/r)||": gap,
                     "travelled": float(sub.travelled[end]), "ratio": gap / float(sub.travelled[end]),
                     "diverged": diverged, "gradients": int(sub.grad_evals.iloc[0])})
    cols = ["net", "r", "t", "max_t ||GD(eta0) - GD(eta0/r)||", "travelled", "ratio", "diverged", "gradients"]
    return (pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)).set_index(["net", "r"])


def authors_setup_table(runs: Sequence[NetRun]) -> pd.DataFrame:
    """Per net on the authors' set-up: eta0 in units of 2 / lambda_max(theta0), the largest distance between GD with
    eta0 and the flow, the distance the flow travels from the initialisation, their ratio (the paper's ~2% at
    t = 10), the ratio's bounds when the reference's own error (a conservative bound, see :class:`NetRun`) is counted
    for and against it, that error over the gap, and what the flow cost."""
    rows = []
    for run in runs:
        gap, err = run.protocol_distance[1], run.reference_error
        rows.append({"net": run.name, "t": float(run.protocol[1].times[-1]), "lambda_max(theta0)": run.lam0,
                     "eta0 / (2/lambda)": run.eta0 * run.lam0 / 2, "max_t ||GD - GF||": gap,
                     "travelled": run.travelled, "ratio": gap / run.travelled,
                     "ratio, lower bound": max(0.0, gap - err) / run.travelled,
                     "ratio, upper bound": (gap + err) / run.travelled,
                     "reference error / gap": run.reference_error / gap if gap > 0 else math.nan,
                     "reference gradient evaluations": run.reference.grad_evals if run.reference is not None else None,
                     "diverged": run.protocol[1].diverged, "reference failed": run.reference_failed or ""})
    return pd.DataFrame(rows).set_index("net")


def tracking_table(setup: pd.DataFrame, check: pd.DataFrame) -> pd.DataFrame:
    """What ``gd-tracks-gf`` judges, one row per (net, comparison): GD at eta0 against the flow (from
    :func:`authors_setup_table`, with the reference's error as lower and upper bounds) and against GD at eta0 / r for
    each r (from :func:`authors_check_table`, exact: no reference involved). Columns: net, comparison, t, ratio,
    lower, upper, and ``failed`` (why a row cannot be read: no reference, or a run diverged; empty otherwise)."""
    rows = []
    for net, row in setup.iterrows():
        failed = ("GD at eta0 diverged" if row.get("diverged", False) else
                  f"no reference ({row['reference failed']})" if row["reference failed"] else "")
        rows.append({"net": net, "comparison": "flow", "t": row["t"], "ratio": row["ratio"],
                     "lower": row["ratio, lower bound"], "upper": row["ratio, upper bound"], "failed": failed})
    for (net, r), row in check.iterrows():
        rows.append({"net": net, "comparison": f"eta0/{r}", "t": row["t"], "ratio": row["ratio"],
                     "lower": row["ratio"], "upper": row["ratio"],
                     "failed": f"GD at eta0 or eta0/{r} diverged" if row["diverged"] else ""})
    return pd.DataFrame(rows, columns=["net", "comparison", "t", "ratio", "lower", "upper", "failed"])


def gd_tracks_gf(tracking: pd.DataFrame, threshold: float = 0.02) -> Verdict:
    """The paper's claim on the paper's set-up: on the authors' MNIST set-up at their eta0, for every net of the paper
    run (:data:`PAPER_NETS`), the largest distance between GD at eta0 and the flow over the distance travelled is
    below ``threshold`` (the paper's ~2%), and so is the authors' own measurement, GD at eta0 against GD at eta0 / r
    (``tracking``: :func:`tracking_table`). One group per net; its rows are read with the reference's error counted:
    a row above (lower bound >= ``threshold``) refutes, every row below (upper bound < ``threshold``) holds.
    Preconditions: a paper net was run, every row was measured (a reference exists, nothing diverged), and no row's
    bounds straddle the threshold. Nets that are not the paper's are measured by the same test and reported."""
    horizons = ", ".join(f"t = {t:g}" for t in sorted(set(tracking.t.astype(float)))) if len(tracking) else "none"
    criterion = (f"max_t ||GD(eta0) - GF|| and max_t ||GD(eta0) - GD(eta0/r)|| over the distance travelled < "
                 f"{threshold:g} (the paper's figures, read at t = {PAPER_MNIST_FIGURE['t']:g}) on the authors' MNIST "
                 f"set-up, for every paper net run, up to the horizons run here ({horizons})")
    groups, reported = {}, {}
    for net, sub in tracking.groupby("net", sort=False):
        flow = sub[sub.comparison == "flow"]
        prot = sub[sub.comparison != "flow"]
        ok = sub[sub.failed == ""]
        finite = ok.ratio[np.isfinite(ok.ratio.to_numpy(float))]
        m = {"max_ratio": float(finite.max()) if len(finite) else None,
             "flow_ratio": float(flow.ratio.iloc[0]) if len(flow) and not flow.failed.iloc[0] else None,
             "flow_ratio_upper": float(flow.upper.iloc[0]) if len(flow) and not flow.failed.iloc[0] else None,
             "r": [int(c.split("/")[1]) for c in prot.comparison],
             "protocol_ratio": [float(v) if not f else None for v, f in zip(prot.ratio, prot.failed)],
             "t": float(sub.t.max())}
        above = ok[ok.lower >= threshold]
        if len(above):
            state = False
        elif (sub.failed != "").any():
            state = "; ".join(sorted(set(sub.failed[sub.failed != ""])))
        elif (ok.upper >= threshold).any():
            state = (f"the reference's error straddles {threshold:g} "
                     f"({', '.join(ok.comparison[ok.upper >= threshold])})")
        else:
            state = True
        (groups if net in PAPER_NETS else reported)[net] = Verdict.from_state(state, **m)
    if not groups:
        groups = {"paper nets": Verdict.undecided("", "no net of the paper was run on its set-up")}
    return Verdict.combine(groups, criterion, reported=reported, threshold=threshold)


def plot_authors_setup(runs: Sequence[NetRun], check: pd.DataFrame | None = None):
    """The authors' set-up over time: left, ||GD(eta0)(t) - GF(t)|| (solid) and the authors' own measurement
    ||GD(eta0)(t) - GD(eta0/r)(t)|| for the largest r of ``check`` (dashed), with the paper's ~0.05 at t = 10; right,
    the flow's distance from the initialisation with the paper's 2.5-3.0 at t = 10. One legend below both panels."""
    fig, (left, right) = panels(2, panel=(4.6, 3.8))
    colors = _net_colors([r.name for r in runs])
    fig_t, fig_d, (lo, hi) = (PAPER_MNIST_FIGURE[k] for k in ("t", "distance", "travelled"))
    for run in runs:
        if run.reference is None:
            continue
        t, d = flows.distances(run.protocol[1], run.reference)
        left.plot(t[d > 0], d[d > 0], color=colors[run.name], label=f"{run.name}: GD(eta0) - GF")  # log axis
        thetas = run.reference.thetas
        right.plot(run.reference.times, (thetas - thetas[0]).norm(dim=1).cpu().numpy(), color=colors[run.name],
                   label=run.name)
    if check is not None and len(check):
        r_max = int(check.r.max())
        for net, sub in check[check.r == r_max].groupby("net", sort=False):
            keep = sub.distance > 0
            left.plot(sub.t[keep], sub.distance[keep], "--", color=colors.get(net, "grey"),
                      label=f"{net}: GD(eta0) - GD(eta0/{r_max})")
    left.axhline(fig_d, color="k", ls="-", lw=1, label=f"paper's distance, up to t = {fig_t:g}")
    right.errorbar([fig_t], [(lo + hi) / 2], yerr=[[(hi - lo) / 2]], fmt="ks", capsize=4,
                   label=f"paper's distance travelled at t = {fig_t:g}")
    left.set(yscale="log", xlabel="time t (= iterations x eta0)", ylabel="distance in weight space",
             title="GD against the flow and against GD(eta0/r)")
    right.set(xlabel="time t (= iterations x eta0)", ylabel="||theta(t) - theta(0)||", title="distance travelled")
    log_ticks(left.yaxis)
    horizon = max((float(r.protocol[1].times[-1]) for r in runs), default=fig_t)
    right.set_xlim(0, max(horizon, fig_t) * 1.05)
    fig.suptitle("The authors' set-up on real MNIST\n(1,000 images, 784-50-50-10, eta0 = 0.001)", fontweight="bold")
    shared_legend(fig, [left, right], ncol=2)
    return fig


def _count(n: int, noun: str) -> str:
    """``"1 seed"``, ``"3 seeds"``: a count with its noun, singular or plural."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _duration(t: float) -> str:
    """``"1 unit of time"``, ``"0.05 units of time"``."""
    return f"{t:g} unit{'' if t == 1 else 's'} of time"


def _number(value, fmt: str, missing: str) -> str:
    """A finite number formatted with ``fmt``; ``missing`` for None or a non-finite value."""
    ok = value is not None and not (isinstance(value, float) and not math.isfinite(value))
    return format(value, fmt) if ok else missing


def authors_setup_texts(table: pd.DataFrame, threshold: float = PAPER_TRACKING_RATIO) -> dict[str, str]:
    """The sentences of the authors' set-up (glued as ``gf-mnist-<key>``): the ratios per net, how they compare with
    the paper's ~2% once the reference's error is counted (below: the upper bound is; at or above: the lower bound
    is; else undecided), the distances travelled, and the reference's error. A net without a reference reads "not
    measured (no reference)"."""
    def finite(column):
        return {n: float(v) if v is not None and np.isfinite(v) else None for n, v in table[column].items()}

    def listed(column, fmt, missing="not measured (no reference)"):
        return ", ".join(f"{n} {_number(v, fmt, missing)}" for n, v in finite(column).items()) or "no net was run"

    ratio, lower, upper = finite("ratio"), finite("ratio, lower bound"), finite("ratio, upper bound")
    known = [n for n, r in ratio.items() if r is not None]
    below = [n for n in known if upper[n] < threshold]
    above = [n for n in known if lower[n] >= threshold]
    undecided = [n for n in known if n not in below and n not in above]
    parts = []
    if below:
        parts.append(f"below the paper's {threshold:.0%} for {', '.join(below)}, even with the reference's error "
                     f"counted against {'it' if len(below) == 1 else 'them'}")
    if above:
        parts.append(f"at or above it for {', '.join(above)}")
    if undecided:
        parts.append(f"undecided for {', '.join(undecided)}, whose reference error straddles it")
    if len(known) < len(ratio):
        parts.append(f"not measured for {', '.join(n for n in ratio if n not in known)} (no reference was solved)")

    def bounds(n):
        lo, hi = _number(lower[n], ".2%", ""), _number(upper[n], ".2%", "")
        if not lo or not hi:
            return f"{n} not measured (no reference)"
        return f"{n} {lo}" if lo == hi else f"{n} {lo} to {hi}"

    horizon = float(table["t"].max()) if len(table) else 0.0
    paper_t = PAPER_MNIST_FIGURE["t"]
    horizon_note = (f"The horizon reaches the paper's t = {paper_t:g}" if horizon >= paper_t else
                    f"The horizon is shorter than the paper's t = {paper_t:g}, and the gap need not keep its ratio to "
                    f"the distance travelled over time (left panel)")
    return {"ratios": listed("ratio", ".2%"), "compare": "; ".join(parts) or "no net was run",
            "horizon-note": horizon_note,
            "bounds": ", ".join(bounds(n) for n in ratio) or "no net was run",
            "travelled": listed("travelled", ".2f"), "horizon": f"{horizon:g}", "duration": _duration(horizon),
            "eta-units": listed("eta0 / (2/lambda)", ".3f", "not measured"),
            "reference": listed("reference error / gap", ".2g", "not measured (no reference, or no gap)"),
            "evals": ", ".join(f"{n} {_number(v, ',.0f', 'none (no reference)')}"
                               for n, v in finite("reference gradient evaluations").items()) or "no net was run"}


# --------------------------------------------------------------------------------------------- Curvature along the flow

#: The ``init`` label of curvature measured along the flows of the step sweep (the authors' initialisation).
XAVIER = "Xavier"


def curvature_frame(runs: Sequence[NetRun]) -> pd.DataFrame:
    """Long frame of the curvature checkpoints of every net of the step sweep, with ``homogeneous`` marked and
    ``init`` = :data:`XAVIER` (their initialisation is the authors' Xavier-uniform one, not a near-zero one)."""
    parts = [r.curvature.assign(net=r.name, homogeneous=r.homogeneous, init=XAVIER) for r in runs if len(r.curvature)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def near_zero_label(init_scale: float) -> str:
    """The ``init`` label of flows started at ``init_scale`` times the Xavier-uniform initialisation."""
    return f"near-zero (x{init_scale:g})"


def curvature_runs(nets: Sequence[str], X, y, input_shape, n_classes: int, *, width: int, init_scale: float,
                   horizon: float, points: int, rtol: float, rtol_kinked: float, seed: int = 0) -> pd.DataFrame:
    """The curvature claim's own runs: each net of ``nets`` from ``init_scale`` times its Xavier-uniform
    initialisation (the same draw as the step sweep's, scaled towards zero), its flow solved once (at ``rtol``, or
    ``rtol_kinked`` for :data:`KINKED` nets) to ``horizon``, and lambda_max, lambda_min, ||grad f|| and the loss at
    ``points`` checkpoints. Long frame like :func:`curvature_frame`, ``init`` = :func:`near_zero_label`; a flow the
    solver gives up on leaves one row with NaN eigenvalues (the criterion reads it as inconclusive)."""
    checkpoints = np.linspace(0.0, horizon, points)
    frames = []
    for name in nets:
        f, theta0 = paper_loss(name, X, y, input_shape, n_classes, width=width, seed=seed)
        theta0 = theta0 * init_scale
        tol = rtol_kinked if name in KINKED else rtol
        try:
            flow = flows.gradient_flow(f, theta0, checkpoints, rtol=tol, atol=tol)
        except flows.FlowError as e:
            curv = pd.DataFrame([{"t": 0.0, "lambda_max": math.nan, "lambda_min": math.nan, "grad_norm": math.nan,
                                  "error": str(e)}])
        else:
            curv = _curvature_along(f, flow, checkpoints, seed)
            curv["loss"] = [float(f(th)) for th in flow.at(curv.t.to_numpy(float))]
        frames.append(curv.assign(net=name, homogeneous=name in HOMOGENEOUS, init=near_zero_label(init_scale)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _integrals(t: np.ndarray, lam_minus: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Cumulative trapezoid integral of lambda_minus over the checkpoints ``t``, and the left- and right-endpoint sums
    of the whole integral (the checkpoints' resolution: the true integral of a monotone piece lies between them)."""
    dt = np.diff(t)
    cumulative = np.concatenate([[0.0], np.cumsum(dt * (lam_minus[1:] + lam_minus[:-1]) / 2)])
    return cumulative, float(np.sum(dt * lam_minus[:-1])), float(np.sum(dt * lam_minus[1:]))


def curvature_factors(curv: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint of :func:`curvature_frame`: lambda_minus = min(lambda_min, 0) and the curvature factor
    exp(-integral_0^t lambda_minus) of the paper's bound (trapezoid over the checkpoints), per net. NaN where an
    eigenvalue did not converge."""
    parts = []
    curv = curv if curv.empty or "init" in curv else curv.assign(init=near_zero_label(0.0))
    for (net, init), sub in (curv.groupby(["net", "init"], sort=False) if len(curv) else []):
        sub = sub.sort_values("t")
        lam_minus = np.minimum(sub.lambda_min.to_numpy(float), 0.0)
        cumulative, _, _ = _integrals(sub.t.to_numpy(float), lam_minus)
        parts.append(sub.assign(lambda_minus=lam_minus, factor=np.exp(-cumulative), run=f"{net}, {init} init"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def curvature_favourable(curv: pd.DataFrame, factor: float = 2.0, min_loss_drop: float = 0.1) -> Verdict:
    """The paper's curvature quantity along the flow: lambda_minus(t) = min(lambda_min of the Hessian at the flow's
    point, 0), and the factor exp(-integral_0^T lambda_minus dt) >= 1 by which it enters the bound on the GD-GF distance
    (of order exp(-integral lambda_minus) t eta). Holds when that factor stays at most ``factor`` (near 1) over the
    horizon for every homogeneous net from a near-zero initialisation (``init`` starting with "near-zero"; a frame
    without ``init`` counts as such); the other runs (non-homogeneous nets, the sweep's Xavier-initialised flows) are
    measured by the same test and reported, not judged.

    The integral is a trapezoid over the checkpoints; the left- and right-endpoint sums bracket it, and a net is
    decided only when both ends lie on the same side of ``factor``. Preconditions: a homogeneous net was run, every
    eigenvalue computation converged, there are at least two checkpoints, and the flow has left its plateau (its loss
    fell by at least ``min_loss_drop`` of its start: a flow that has not moved has not tested the bound)."""
    criterion = (f"exp(-integral_0^T min(lambda_min, 0) dt) <= {factor:g} along the flow of every homogeneous net "
                 "from a near-zero initialisation (the curvature factor of the paper's bound)")
    if curv.empty:
        return Verdict.undecided(criterion, "no curvature was measured (no reference flow)", factor_bound=factor)

    def judged(sub) -> Verdict:
        sub = sub.sort_values("t")
        t = sub.t.to_numpy(float)
        m = {"checkpoints": int(len(sub)), "horizon": float(t.max()) if len(t) else 0.0}
        failed = int(sub["lambda_min"].isna().sum()) if "lambda_min" in sub else len(sub)
        if failed:
            return Verdict.undecided("", f"{failed} eigenvalue computations did not converge", **m)
        if len(sub) < 2:
            return Verdict.undecided("", "an integral over the flow needs two checkpoints", **m)
        lam_minus = np.minimum(sub.lambda_min.to_numpy(float), 0.0)
        cumulative, left, right = _integrals(t, lam_minus)
        ends = np.exp(-np.array([cumulative[-1], left, right]))
        m |= {"factor": float(ends[0]), "factor_low": float(ends.min()), "factor_high": float(ends.max()),
              "integral_lambda_minus": float(cumulative[-1]), "min_lambda_min": float(sub.lambda_min.min())}
        if "loss" in sub and sub.loss.notna().all():  # how far the flow got: a flow still on its plateau learnt little
            m |= {"loss_start": float(sub.loss.iloc[0]), "loss_end": float(sub.loss.iloc[-1])}
            if m["loss_end"] > (1.0 - min_loss_drop) * m["loss_start"]:
                return Verdict.undecided("", f"the flow has not left its plateau: its loss went from "
                                             f"{m['loss_start']:.3g} to {m['loss_end']:.3g} by t = {m['horizon']:g}, "
                                             f"less than the {min_loss_drop:.0%} drop that tests the bound", **m)
        if ends.max() <= factor:
            return Verdict.decided(True, "", **m)
        if ends.min() > factor:
            return Verdict.decided(False, "", **m)
        return Verdict.undecided("", f"the checkpoints are too coarse: the factor lies between {ends.min():.3g} and "
                                     f"{ends.max():.3g}, across {factor:g}", **m)

    curv = curv if "init" in curv else curv.assign(init=near_zero_label(0.0))
    near_zero = curv.init.astype(str).str.startswith("near-zero").to_numpy()
    homogeneous = curv.homogeneous.astype(bool).to_numpy()
    groups = {net: judged(sub) for net, sub in curv[near_zero & homogeneous].groupby("net", sort=False)}
    others = {}
    for (net, init), sub in curv[~(near_zero & homogeneous)].groupby(["net", "init"], sort=False):
        notes = ([] if net in HOMOGENEOUS else ["not homogeneous"]) + ([] if str(init).startswith("near-zero")
                                                                       else [f"{init} init"])
        others[f"{net} ({', '.join(notes)})"] = judged(sub)
    if not groups:  # nothing to judge: the other runs are shown, and cannot decide the claim alone
        groups = {"homogeneous nets": Verdict.undecided("", "no homogeneous net was run from a near-zero "
                                                            "initialisation")}
    return Verdict.combine(groups, criterion, reported=others, factor_bound=factor)


def plot_curvature(factors: pd.DataFrame):
    """Left: the negative curvature -lambda_minus(t) = max(0, -lambda_min) at the checkpoints along the flow (log axis,
    zeros at the floor). Right: the factor exp(-integral_0^t lambda_minus) it puts into the paper's bound, with the
    criterion's bound. Circles: homogeneous nets, squares: the others; solid lines: flows from a near-zero
    initialisation, dotted and faint: the sweep's flows from the Xavier initialisation. One legend below both
    panels."""
    fig, (left, right) = panels(2, panel=(4.6, 3.8))
    if factors.empty:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no curvature was measured\n(no reference flow)", ha="center", va="center",
                    transform=ax.transAxes)
        return fig
    colors = _net_colors(factors.net.unique())
    for run, sub in factors.groupby("run", sort=False):
        net, near = sub.net.iloc[0], str(sub.init.iloc[0]).startswith("near-zero")
        style = ("o" if sub.homogeneous.iloc[0] else "s") + ("-" if near else ":")
        label = f"{run}{'' if sub.homogeneous.iloc[0] else ' (not homogeneous)'}"
        left.plot(sub.t, np.maximum(-sub.lambda_minus, 1e-8), style, color=colors[net], label=label,
                  alpha=1.0 if near else 0.6)
        right.plot(sub.t, sub.factor, style, color=colors[net], label=label, alpha=1.0 if near else 0.6)
    right.axhline(FAVOURABLE_FACTOR, color="k", ls="--", lw=1, label=f"bound {FAVOURABLE_FACTOR:g}")
    left.set(yscale="log", xlabel="time t along the flow", ylabel="max(0, -lambda_min)\n(floor 1e-8)",
             title="negative curvature on the flow")
    wide = np.nanmax(factors.factor.to_numpy(float), initial=1.0) > 10 * FAVOURABLE_FACTOR
    right.set(yscale="log" if wide else "linear", xlabel="time t along the flow",
              ylabel="exp(-integral_0^t lambda_minus)" + (" (log)" if wide else ""), title="its factor in the bound")
    log_ticks(left.yaxis)
    fig.suptitle("Curvature along the gradient-flow trajectory", fontweight="bold")
    shared_legend(fig, [left, right], ncol=2)  # the run labels are long: three columns overflowed the page
    return fig


# ---------------------------------------------------------------------- Deep linear nets from a balanced initialisation

def whitened_regression(n: int, d_in: int, d_out: int, noise: float = 0.1, seed: int = 0):
    """(X, Y, Phi): inputs X (n, d_in) whitened so that X^T X / n = I, targets Y = X W* ^T + noise, and the
    least-squares solution Phi = Y^T X / n. With whitened inputs, 1/(2n) ||X W^T - Y||^2 = 1/2 ||W - Phi||_F^2 +
    const, so the excess loss over the optimum of an end-to-end matrix W is 1/2 ||W - Phi||_F^2."""
    if n < d_in:
        raise ValueError(f"n = {n}, d_in = {d_in}: whitening needs n >= d_in")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d_in))
    evals, evecs = np.linalg.eigh(X.T @ X / n)
    X = X @ evecs @ np.diag(evals ** -0.5) @ evecs.T
    W_true = rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
    Y = X @ W_true.T + noise * rng.standard_normal((n, d_out))
    return X, Y, Y.T @ X / n


def balanced_init(A: np.ndarray, depth: int, width: int) -> list[np.ndarray]:
    """Elkabetz & Cohen's Procedure 1: factors W_1 .. W_N (W_1 first) with W_N ... W_1 = A and W_{j+1}^T W_{j+1} =
    W_j W_j^T. With A = U S V^T (thin SVD, rank m <= width): W_N = U S^(1/N), W_j = S^(1/N) in between and
    W_1 = S^(1/N) V^T, each zero-padded to the hidden ``width``."""
    d_out, d_in = A.shape
    U, S, Vt = np.linalg.svd(A, full_matrices=False)
    m = len(S)
    if width < m or depth < 2:
        raise ValueError(f"width = {width}, depth = {depth}: allowed is width >= min(d_in, d_out) = {m}, depth >= 2")
    root = np.diag(S ** (1.0 / depth))
    first = np.zeros((width, d_in))
    first[:m] = root @ Vt
    last = np.zeros((d_out, width))
    last[:, :m] = U @ root
    middle = np.zeros((width, width))
    middle[:m, :m] = root
    return [first] + [middle.copy() for _ in range(depth - 2)] + [last]


@dataclass
class DeepLinearRun:
    """GD on deep linear nets from balanced inits, one per seed: ``excess`` (recorded steps, seeds) of the excess
    loss over the least-squares optimum, the recorded ``steps``, and the cosine between the initial end-to-end
    matrix and Phi per seed (a negative one starts on the far side of the origin)."""

    excess: np.ndarray
    steps: np.ndarray
    cosine: np.ndarray
    lr: float

    @property
    def final(self) -> np.ndarray:
        return self.excess[-1]


def _seed_batch(inits: list[list[np.ndarray]]):
    """The factors of every seed as one flat float64 vector (seed after seed, W_1 first within a seed) and the
    function that reads it back as a list of (seeds, rows, cols) batches, one per layer."""
    shapes = [w.shape for w in inits[0]]
    sizes = [int(np.prod(sh)) for sh in shapes]
    n = len(inits)
    flat = torch.tensor(np.concatenate([np.concatenate([w.ravel() for w in ws]) for ws in inits]))

    def factors(theta: torch.Tensor) -> list[torch.Tensor]:
        parts = theta.view(n, sum(sizes)).split(sizes, dim=1)
        return [p.reshape(n, *sh) for p, sh in zip(parts, shapes)]

    return flat, factors


def deep_linear(n_seeds: int, depth: int, d_in: int, *, width: int, d_out: int, lr: float, steps: int,
                init_scale: float = 1.0, n: int = 200, seed: int = 0, points: int = 200) -> DeepLinearRun:
    """GD (step ``lr``, ``steps`` iterations) on the factors of depth-``depth`` linear nets, all ``n_seeds``
    seeds at once (one flat vector of every seed's factors, run by :func:`nslib.tools.flows.gradient_descent`),
    each from the balanced init of a random A with iid N(0, init_scale^2 / d_in) entries, on one whitened
    regression. Seed s's A comes from stream s of the page seed's ``"deep-linear-init"`` streams, the regression from
    its ``"deep-linear-data"`` stream (:mod:`nslib.tools.seeds`): two page seeds share no draw. Float64. Each seed's
    loss depends on its own factors only, and a seed whose excess turns non-finite is masked out of the summed loss:
    it goes NaN alone and records NaN from then on, while the others go on (the run stops early only when every seed
    has diverged)."""
    _, _, Phi = whitened_regression(n, d_in, d_out, seed=seeds.stream_seed(seed, "deep-linear-data"))
    inits = []
    for stream in seeds.stream_seeds(seed, n_seeds, "deep-linear-init"):
        A = np.random.default_rng(stream).standard_normal((d_out, d_in)) * init_scale / np.sqrt(d_in)
        inits.append(balanced_init(A, depth, width))
    theta0, factors = _seed_batch(inits)
    phi = torch.tensor(Phi)

    def end_to_end(theta):
        Ws = factors(theta)
        E = Ws[0]
        for W in Ws[1:]:
            E = W @ E
        return E

    def excess_of(theta):  # per seed
        return 0.5 * ((end_to_end(theta) - phi) ** 2).sum((1, 2))

    def loss(theta):  # seeds are independent: the sum's gradient is each seed's; a diverged seed is masked out
        ex = excess_of(theta)
        return torch.where(torch.isfinite(ex), ex, torch.zeros_like(ex)).sum()

    with torch.no_grad():
        E0 = end_to_end(theta0)
        cos = ((E0 * phi).sum((1, 2)) / (E0.norm(dim=(1, 2)) * phi.norm())).numpy()
    every = max(1, steps // points)
    rec_steps = sorted({*range(0, steps + 1, every), steps})
    excess = np.full((len(rec_steps), n_seeds), np.nan)
    row = {k: i for i, k in enumerate(rec_steps)}

    def record(k, theta, value, g):
        if k in row:
            excess[row[k]] = excess_of(theta).numpy()

    def all_diverged(theta, value, g):
        return not torch.isfinite(excess_of(theta)).any()

    flows.gradient_descent(loss, theta0, lr, steps, every=steps, on_iterate=record, diverged=all_diverged)
    excess[~np.isfinite(excess)] = np.nan  # rows after every seed diverged stay NaN
    return DeepLinearRun(excess, np.array(rec_steps), cos, lr)


def deep_linear_global_min(run: DeepLinearRun, tol: float = 1e-6, min_fraction: float = 0.99,
                           window: int = 20) -> Verdict:
    """Deep linear nets from balanced inits reach the global minimum: excess loss < ``tol`` at the end in at least
    ``min_fraction`` of the seeds. A seed above ``tol`` counts as a failure only if its excess has settled (the
    last ``window`` recorded values agree over their two halves): a seed still descending could yet arrive.
    Preconditions: no seed diverged (a step too large for the theorem), and the unsettled seeds cannot change
    the answer."""
    criterion = f"excess loss < {tol:g} in >= {min_fraction:.0%} of the seeds"
    final = run.final
    n = len(final)
    diverged = ~np.isfinite(final)
    reached = final < tol
    still = (~reached) & ~diverged & ~settled(run.excess.T, min(window, len(run.steps)))
    need = math.ceil(min_fraction * n - 1e-9)
    m = dict(seeds=n, reached=int(reached.sum()), failed_settled=int((~reached & ~diverged & ~still).sum()),
             still_descending=int(still.sum()), diverged=int(diverged.sum()),
             median_final_excess=float(np.nanmedian(final)) if not diverged.all() else None,
             worst_final_excess=float(np.nanmax(final)) if not diverged.all() else None,
             negative_cosine_seeds=int((run.cosine < 0).sum()),
             negative_cosine_reached=int((reached & (run.cosine < 0)).sum()))
    if diverged.any():
        return Verdict.undecided(criterion, f"{_count(int(diverged.sum()), 'seed')} diverged: the step {run.lr:g} "
                                            "is too large for the theorem", **m)
    if reached.sum() >= need:
        return Verdict.decided(True, criterion, **m)
    if reached.sum() + still.sum() >= need:
        return Verdict.undecided(criterion, f"{_count(int(still.sum()), 'seed')} "
                                            f"{'was' if still.sum() == 1 else 'were'} still descending at the end: "
                                            "run longer", **m)
    return Verdict.decided(False, criterion, **m)


def plot_deep_linear(run: DeepLinearRun, tol: float):
    """Excess loss over the least-squares optimum against GD steps, one line per seed, with the tolerance."""
    fig, (ax,) = panels(1, panel=(7.5, 4.2))
    ax.plot(run.steps, np.maximum(run.excess, 1e-18), color=PALETTE[0], lw=0.7, alpha=0.5)
    ax.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g}")
    ax.set(yscale="log", xlabel="GD iteration", ylabel="excess loss over the optimum\n(floor 1e-18)",
           title=f"Deep linear nets from balanced inits: {run.excess.shape[1]} seeds")
    log_ticks(ax.yaxis)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


# -------------------------------------------------------------------------------------------------------------- Verdict

def _pct(value, missing: str = "not measured") -> str:
    return _number(value, ".2%", missing)


def _bracket(m: Mapping, suffix: str = "") -> str | None:
    lo, hi = m.get(f"crossing_above_units{suffix}"), m.get(f"crossing_below_units{suffix}")
    return None if lo is None or hi is None else f"between {lo:.2g} and {hi:.2g}"


def page_texts(verdicts: Mapping[str, Verdict], *, nets: Sequence[str], sharpening: pd.DataFrame, eta0: float,
               horizon: float, n_train: int, dataset: str) -> dict[str, str]:
    """The sentences the page glues (as ``gf-<key>``), each whole in every state, from the recorded verdicts and
    the run's sharpening table."""
    tracks, boundary, depart, curv = (verdicts[k] for k in ("gd-tracks-gf", "tracking-boundary",
                                                              "departs-beyond-2-over-lambda", "curvature-favourable"))
    threshold = tracks.measured["threshold"]

    def tracking(n, g):
        m = g.measured
        if m.get("flow_ratio") is None and not any(v is not None for v in m.get("protocol_ratio") or []):
            return f"{n} not measured ({g.reason})" if g.reason else f"{n} not measured"
        flow = (f"{_pct(m.get('flow_ratio'))} against the flow" if m.get("flow_ratio") is not None
                else "not measured against the flow")
        prot = [v for v in m.get("protocol_ratio") or [] if v is not None]
        rs = ", ".join(str(r) for r in m.get("r") or [])
        if prot:
            flow += f", at most {_pct(max(prot))} against GD at eta0/r (r = {rs})"
        return f"{n} {flow}"

    paper = {n: g for n, g in tracks.groups.items() if n in PAPER_NETS}
    texts = {"nets": ", ".join(nets), "tracks-threshold": f"{threshold:.0%}",
             "tracks-table": "; ".join(tracking(n, g) for n, g in paper.items()) or "no net of the paper was run",
             "tracks-contrast": ("nets that are not the paper's, measured and not judged: " + "; ".join(
                 tracking(n, g) for n, g in tracks.reported.items())) if tracks.reported
             else "no other net was run on this set-up",
             "tracks-t": _duration(max([g.measured.get("t") or 0.0
                                        for g in {**tracks.groups, **tracks.reported}.values()], default=0.0))}
    if tracks.state == "holds":
        texts["tracks-meaning"] = ("on the paper's own set-up and at its step, GD stays as close to the flow as the "
                                   "paper's figures show, for every paper net run")
    elif tracks.state == "does not hold":
        failing = [n for n, g in paper.items() if g.state == "does not hold"]
        texts["tracks-meaning"] = (f"on the paper's own set-up and at its step the ratio reaches {threshold:.0%} for "
                                   f"{', '.join(failing)}: this refutes the paper's closeness on its own set-up, at "
                                   "this horizon")
    else:
        texts["tracks-meaning"] = f"the run cannot decide on the paper's set-up ({tracks.reason})"

    def located(n, g):
        b = _bracket(g.measured)
        if b is not None:
            return f"{n} {b}"
        return f"{n} not located ({g.reason})" if g.reason else f"{n} not located"
    texts["boundary"] = "; ".join(located(n, g) for n, g in boundary.groups.items()) or "no net was run"
    texts["boundary-theta0"] = ", ".join(
        f"{n} {_bracket(g.measured, '0')}" for n, g in boundary.groups.items() if _bracket(g.measured, "0")) \
        or "not located for any net"
    edge = boundary.measured["edge"]
    texts["boundary-meaning"] = {
        "holds": f"for every net the crossing comes before the stability edge ({edge:g} x 2/lambda)",
        "does not hold": ("for " + ", ".join(n for n, g in boundary.groups.items() if g.state == "does not hold")
                          + f" GD stays within the paper's {threshold:.0%} up to and beyond the stability edge"),
    }.get(boundary.state, f"the boundary is not decided ({boundary.reason})")

    (net, slope_group), = verdicts["first-order-in-r"].groups.items()
    others = ", ".join(f"{n} {_number(g.measured.get('slope'), '.2f', 'not measured')}"
                       for n, g in verdicts["first-order-in-r"].reported.items())
    slope = slope_group.measured.get("slope")
    texts["slope"] = (f"the {net} net's log-log slope is {slope:.2f}" if slope is not None
                      else f"no slope was measured for the {net} net") + (f" (not judged: {others})" if others else "")

    level = depart.measured["threshold"]
    key = f"first_eta_units_path_above_{level:g}"

    def departs(n, g):
        if g.reason and g.reason.startswith("no reference"):
            return f"{n} not measured (no reference)"
        at, top = g.measured.get(key), _number(g.measured.get("largest_eta_units_path"), ".2g", "")
        if at is not None:
            return f"{n} {at:.2g}"
        return f"{n} not within the grid" + (f" (up to {top})" if top else "")
    texts["depart-threshold"] = f"{level:.0%}"
    texts["depart"] = ", ".join(departs(n, g) for n, g in depart.groups.items()) or "no net was run"

    def factor(n, g):
        m = g.measured
        if m.get("factor") is None:
            return f"{n} not measured ({g.reason})" if g.reason else f"{n} not measured"
        lo, hi = _number(m.get("factor_low"), ".3g", ""), _number(m.get("factor_high"), ".3g", "")
        spread = f", {lo} to {hi} by the checkpoints' resolution" if lo != hi else ""
        loss = (f", loss {m['loss_start']:.3g} to {m['loss_end']:.3g} along the flow"
                if m.get("loss_start") is not None and m.get("loss_end") is not None else "")
        return (f"{n} {m['factor']:.3g} by t = {m['horizon']:g} (integral of lambda_minus "
                f"{m['integral_lambda_minus']:.3g}, smallest lambda_min {m['min_lambda_min']:.3g}{spread}{loss})")
    homog = {n: g for n, g in curv.groups.items() if n in HOMOGENEOUS}
    texts["curv"] = "; ".join(factor(n, g) for n, g in homog.items()) or "not measured (no homogeneous net)"
    texts["curv-contrast"] = ("measured beside them and not judged: " + "; ".join(factor(n, g) for n, g in
                                                                               curv.reported.items())
                              if curv.reported else "no other run was measured beside them")
    texts["curv-bound"] = f"{curv.measured['factor_bound']:g}"
    failing = [n for n, g in curv.groups.items() if g.state == "does not hold"]
    curv_horizon = max([g.measured.get("horizon") or 0.0 for g in curv.groups.values()], default=0.0)
    contrast = ", ".join(f"{n.removesuffix(' (not homogeneous)')} {g.measured['factor']:.3g}"
                         for n, g in curv.reported.items()  # the near-zero flows of non-homogeneous nets
                         if n.endswith(" (not homogeneous)") and g.measured.get("factor") is not None)
    texts["curv-meaning"] = {
        "holds": "along every judged flow the factor stayed within the bound: the curvature met is favourable as we "
                 "read the word",
        "does not hold": (f"once the flows left their plateau the factor passed {curv.measured['factor_bound']:g} "
                          f"along the flow of {', '.join(failing)} (by t = {curv_horizon:g}"
                          + (f"; the non-homogeneous nets measured beside them: {contrast}" if contrast else "")
                          + "). This refutes the book's reading of 'favourable', a factor near 1 over this horizon, on "
                          "our data and initialisation; it does not test the paper's theorem, whose constants were not "
                          "read. Whether GD tracks the flow is judged above"),
    }.get(curv.state, f"the run cannot decide ({curv.reason})")

    deep = verdicts["deep-linear-global-min"].measured
    n, reached, neg, neg_reached = deep["seeds"], deep["reached"], deep["negative_cosine_seeds"], \
        deep["negative_cosine_reached"]
    texts["reached"] = (f"{reached:,} of {n:,} seeds reached" if n > 1 else
                        f"the one seed {'reached' if reached else 'did not reach'}")
    texts["negcos"] = "none starts" if neg == 0 else f"{neg:,} start{'s' if neg == 1 else ''}"
    texts["negcos-reached"] = (
        "no seed started from an end-to-end matrix with a negative cosine to the optimum" if neg == 0 else
        f"{_count(neg, 'seed')} started from an end-to-end matrix with a negative cosine to the optimum, and "
        + (f"{'it' if neg_reached else 'it did not'} reach{'ed' if neg_reached else ''} it" if neg == 1 else
           f"{neg_reached:,} of them reached it"))

    texts |= {"growth": ", ".join(f"{n} {_number(float(v), '.1f', 'not measured')}"
                                  for n, v in sharpening["growth"].items()) or "not measured",
              "eta0": f"{eta0:g}", "horizon": _duration(horizon), "n-train": f"{n_train:,} {dataset} samples"}
    return texts
