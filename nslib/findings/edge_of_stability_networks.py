"""Finding *edge-of-stability-networks*: does the Edge-of-Stability picture (Cohen et al., ICLR 2021) hold alike for
ReLU and smooth networks, and does the central flow (Cohen, Damian, Talwalkar, Kolter & Lee, ICLR 2025), a theory
built on twice-differentiability, predict GD as well for ReLU nets?

The page's experiments (full-batch GD with the sharpness tracked by Lanczos, per dataset x loss x activation family
x step size; a second-method cross-check of the sharpness; GD against the central flow and the gradient flow), its
figures (``plot_*``) and one criterion per claim id: :func:`progressive_sharpening`, :func:`hovers_at_2_over_eta`,
:func:`loss_nonmonotone_yet_decreasing`, :func:`relu_differs_from_smooth`, :func:`central_flow_tracks_relu`.
The eigenvalues come from :mod:`nslib.tools.curvature`, the flows from :mod:`nslib.tools.flows`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..figures import PALETTE, log_ticks, panels, shared_legend
from ..tools import curvature, data, flows
from ..tools.models import flat_loss, mlp
from ..verdicts import Verdict, group_states_text

__all__ = [
    # experiments
    "ACTIVATIONS", "BAND", "DATASETS", "LOSSES", "REACH", "CentralFlowRun", "GDRun", "central_flow_table",
    "compare_flows", "compare_flows_for", "crosscheck_table", "families", "flow_distance_text",
    "loss_function", "make_family_net", "per_run_table", "run_gd", "run_grid", "run_metrics", "summary_table",
    # figures
    "plot_central_flow", "plot_metrics", "plot_sharpness", "plot_train_loss",
    # the page's prose
    "page_texts",
    # criteria, one per claim id
    "central_flow_tracks_relu", "hovers_at_2_over_eta", "loss_nonmonotone_yet_decreasing", "progressive_sharpening",
    "relu_differs_from_smooth", "SMOOTHNESS", "smoothness",
]

#: Datasets (by :func:`nslib.tools.data.load`): digits (64 features) and MNIST-1D (40), both generated offline.
DATASETS = ("digits", "mnist1d")
#: Losses: the square loss 1/(2n) sum_i ||f(x_i) - onehot(y_i)||^2 (Cohen et al.'s cleanest setting) and cross-entropy.
LOSSES = ("mse", "ce")
#: Activation families; ``softplus`` is expanded into one family per beta.
ACTIVATIONS = ("relu", "softplus", "tanh", "elu")
#: Smoothness class of each family: ReLU is kinked; ELU is C^1 but not C^2 (its second derivative jumps at 0, and
#: Kumar's objection is precisely about twice-differentiability); softplus and tanh are C^2 (C^infinity). The
#: comparisons "ReLU against smooth" use the C^2 families only and report ELU apart.
SMOOTHNESS = {"relu": "kinked", "elu": "C1", "tanh": "C2", "softplus": "C2"}


#: The sharpness, in units of 2/eta, at which a run has reached the edge.
REACH = 0.9


#: The band, in units of 2/eta, within which the sharpness must stay to hover at the edge.
BAND = (0.8, 1.3)


# --------------------------------------------------------------------------------------------------------------- Set-up

def families(activations: Sequence[str], betas: Sequence[float]) -> list[str]:
    """Family names in a fixed order: ``relu``, ``softplus(b)`` for each beta b, ``tanh``, ``elu`` (those asked)."""
    out = []
    for act in ACTIVATIONS:
        if act not in activations:
            continue
        out += [f"softplus({float(b):g})" for b in betas] if act == "softplus" else [act]
    unknown = set(activations) - set(ACTIVATIONS)
    if unknown:
        raise ValueError(f"activations = {sorted(unknown)}: allowed is each one of {', '.join(ACTIVATIONS)}")
    return out


# --------------------------------------------------------------------------------------------------- Sharpness along GD

def make_family_net(family: str, n_in: int, width: int, *, depth: int, n_classes: int, seed: int = 0, device="cpu"):
    """An MLP ``n_in - width x depth - n_classes`` with biases and PyTorch's default initialisation drawn from
    ``seed``: every family starts from the same weights (same init scale), only the activation differs."""
    act, beta = family, 1.0
    if family.startswith("softplus("):
        act, beta = "softplus", float(family[len("softplus("):-1])
    torch.manual_seed(seed)
    return mlp([n_in, *[width] * depth, n_classes], act, beta=beta, bias=True, dtype=torch.float64, device=device)


def loss_function(name: str, n_classes: int):
    """``loss(out, y)`` with integer labels y: ``mse`` is 1/(2n) sum ||out - onehot(y)||^2, ``ce`` cross-entropy."""
    if name == "mse":
        return lambda out, y: 0.5 * ((out - F.one_hot(y, n_classes).to(out.dtype)) ** 2).sum(1).mean()
    if name == "ce":
        return F.cross_entropy
    raise ValueError(f"loss = {name!r}: allowed is one of {', '.join(LOSSES)}")


@dataclass
class GDRun:
    """One full-batch GD run: the train loss before every step (``losses[k]`` at iterate k), the sharpness
    (lambda_max by Lanczos) and train accuracy at ``checks``, and where it diverged (step index, or None)."""

    dataset: str
    loss: str
    family: str
    eta: float
    losses: np.ndarray
    checks: np.ndarray
    sharpness: np.ndarray
    accuracy: np.ndarray
    diverged_at: int | None
    final_theta: torch.Tensor
    products: int
    f: object = None  # the loss (a FlatLoss) the run descended, for later cross-checks

    @property
    def edge(self) -> float:
        return 2.0 / self.eta


def run_gd(f, theta0: torch.Tensor, eta: float, steps: int, *, sharpness_every: int, labels: torch.Tensor,
           tol: float = 1e-4, seed: int = 0, dataset: str = "", loss: str = "", family: str = "") -> GDRun:
    """GD with step ``eta`` for ``steps`` steps on ``f`` (:func:`nslib.tools.models.flat_loss`), by
    :func:`nslib.tools.flows.gradient_descent`; at every ``sharpness_every``-th iterate (and the last) the sharpness
    by Lanczos (warm-started from the last eigenvector) and the train accuracy. A non-finite loss or iterate ends
    the run: divergence is a result. ``dataset``, ``loss`` and ``family`` only label the run."""
    from scipy.sparse.linalg import ArpackNoConvergence

    losses, checks, sharp, acc = [], [], [], []
    seen = {"start": None, "products": 0, "theta": theta0}

    def measure(k, theta, value, g):
        losses.append(float(value))
        seen["theta"] = theta
        if k % sharpness_every == 0 or k == steps:
            try:
                e = curvature.eigen(f, theta, tol=tol, seed=seed, v0=seen["start"], ncv=8)
                seen["start"], s = e.vectors[:, 0], float(e.values[0])
                seen["products"] += e.products
            except ArpackNoConvergence:
                s = math.nan
            checks.append(k)
            sharp.append(s)
            acc.append(float((f.output(theta).argmax(1) == labels).double().mean()))

    traj = flows.gradient_descent(f, theta0, eta, steps, every=steps, on_iterate=measure)
    return GDRun(eta=eta, losses=np.array(losses), checks=np.array(checks, int), sharpness=np.array(sharp),
                 accuracy=np.array(acc), diverged_at=traj.diverged_at, final_theta=seen["theta"],
                 products=seen["products"], f=f, dataset=dataset, loss=loss, family=family)


def run_grid(datasets: Sequence[str], losses: Sequence[str], fams: Sequence[str], etas: Sequence[float], *,
          n_train: int, width: int, depth: int, steps: dict, sharpness_every: dict, seed: int = 0,
          device="cpu") -> list[GDRun]:
    """:func:`run_gd` for every dataset x loss x family x step size, all families of a dataset from the same init;
    ``steps`` and ``sharpness_every`` are per loss (``{"mse": ..., "ce": ...}``)."""
    runs = []
    for ds in datasets:
        s = data.load(ds, n_train=n_train, seed=seed, n_test=0, dtype=torch.float64, device=device)
        X, y, n_classes = s.X_train, s.y_train, s.n_classes
        for loss in losses:
            for fam in fams:
                net = make_family_net(fam, X.shape[1], width, depth=depth, n_classes=n_classes, seed=seed,
                                      device=device)
                f, theta0 = flat_loss(net, loss_function(loss, n_classes), X, y)
                for eta in etas:
                    runs.append(run_gd(f, theta0, float(eta), steps[loss], sharpness_every=sharpness_every[loss],
                                       labels=y, seed=seed, dataset=ds, loss=loss, family=fam))
    return runs


def run_metrics(run: GDRun, *, rise_factor: float = 1.5, accuracy_stop: float = 0.99, blocks: int = 5) -> dict:
    """What the criteria read from one run, with the sharpness in units of 2/eta.

    - ``lanczos_failures``: checks where Lanczos did not converge (such a run is not judged);
    - ``s0``: sharpness at the start; ``crossed``: first check where it reaches REACH (None if never);
      ``rise``: the largest sharpness up to that check (or the end) over ``s0``;
    - the EoS *window*: from the crossing to the end, or with cross-entropy to the first check with train accuracy
      >= ``accuracy_stop`` (as the loss goes to 0 the sharpness falls again);
    - ``band_fraction``: share of the window's checks with sharpness in BAND; ``median_units``: its median;
    - ``uptick_fraction``: share of the window's steps where the loss rose; ``block_decreases``: of the loss
      means over ``blocks`` equal blocks of the window, how many consecutive pairs decrease, and
      ``end_over_start`` the last block's mean over the first's.
    """
    units = run.sharpness * run.eta / 2
    m = {"dataset": run.dataset, "loss": run.loss, "family": run.family, "eta": run.eta,
         "diverged": run.diverged_at is not None, "lanczos_failures": int(np.isnan(units).sum()),
         "s0": float(units[0]) if len(units) else math.nan,
         "loss_start": float(run.losses[0]) if len(run.losses) else math.nan,
         "loss_end": float(run.losses[-1]) if len(run.losses) else math.nan}
    hit = np.flatnonzero(units >= REACH)
    crossed = int(hit[0]) if len(hit) else None
    upto = units[: (crossed + 1 if crossed is not None else len(units))]
    m["rise"] = float(np.nanmax(upto) / units[0]) if len(upto) and units[0] > 0 else math.nan
    m["rise_factor"] = rise_factor
    m["crossed_step"] = int(run.checks[crossed]) if crossed is not None else None
    if crossed is None:
        return m | {"window_checks": 0, "window_steps": 0}
    end = len(units) - 1
    if run.loss == "ce":
        done = np.flatnonzero((run.accuracy >= accuracy_stop) & (np.arange(len(units)) >= crossed))
        end = int(done[0]) if len(done) else end
    window = units[crossed:end + 1]
    k0, k1 = int(run.checks[crossed]), int(run.checks[end])
    lw = run.losses[k0:k1 + 1]
    m |= {"window": [k0, k1], "window_checks": len(window), "window_steps": len(lw) - 1,
          "band_fraction": float(np.mean((window >= BAND[0]) & (window <= BAND[1]))),
          "median_units": float(np.median(window)),
          "uptick_fraction": float(np.mean(np.diff(lw) > 0)) if len(lw) > 1 else math.nan}
    if len(lw) >= 2 * blocks:
        means = np.array([b.mean() for b in np.array_split(lw, blocks)])
        m |= {"block_decreases": int(np.sum(np.diff(means) < 0)), "blocks": blocks,
              "end_over_start": float(means[-1] / means[0])}
    return m


def summary_table(runs: Sequence[GDRun], **kwargs) -> pd.DataFrame:
    """:func:`run_metrics` of every run, one row each."""
    return pd.DataFrame([run_metrics(r, **kwargs) for r in runs])


def _grid(runs: Sequence[GDRun], loss: str):
    """The runs of ``loss`` and one panel per family x dataset (:func:`nslib.figures.panels`, two per row: with two
    datasets each row is one family, each column one dataset), sharing the step axis; one colour per step size."""
    sel = [r for r in runs if r.loss == loss]
    dss = list(dict.fromkeys(r.dataset for r in sel)) or [""]
    fams = list(dict.fromkeys(r.family for r in sel)) or [""]
    etas = sorted({r.eta for r in sel})
    keys = [(fam, ds) for fam in fams for ds in dss]
    fig, axes = panels(len(keys), panel=(4.6, 2.7), sharex=True)
    cmap = plt.get_cmap("viridis")
    colors = {eta: cmap(i / max(1, len(etas) - 1)) for i, eta in enumerate(etas)}
    return sel, dict(zip(keys, axes)), fig, colors


def _label_grid(fig, panel: dict, ylabel: str, title: str, marks: Sequence[tuple]):
    """Short panel titles (family, dataset), the step axis labelled under the lowest panel of each column, the y
    label on the left column; ``marks`` (format, label) explain the line styles and markers in the one legend below
    the panels, after the step sizes."""
    axes = list(panel.values())
    n_datasets = len({ds for _, ds in panel})
    for i, ((fam, ds), ax) in enumerate(panel.items()):
        ax.set_title(f"{fam}, {ds}" if n_datasets > 1 or len(panel) == 1 else fam, fontsize="medium")
        if i + 2 >= len(axes):  # nothing below it (an odd last row removes the cell under the one above)
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("GD step")
        if i % 2 == 0:
            ax.set_ylabel(ylabel)
    for fmt, label in marks:
        axes[0].plot([], [], fmt, color="grey", label=label)
    fig.suptitle(title, fontweight="bold")
    shared_legend(fig, axes, title="step size eta (colour)")
    return fig


def plot_sharpness(runs: Sequence[GDRun], loss: str):
    """Sharpness along GD, one panel per family x dataset (two per row: a row per family, a column per dataset),
    one colour per step size, with its 2/eta as a dashed line of the same colour: the picture is a rise to the line
    and a hover on it."""
    sel, panel, fig, colors = _grid(runs, loss)
    for r in sel:
        ax = panel[r.family, r.dataset]
        ax.plot(r.checks, r.sharpness, color=colors[r.eta], lw=1.2, label=f"eta {r.eta:g}")
        ax.axhline(r.edge, color=colors[r.eta], ls="--", lw=0.8)
        if r.diverged_at is not None:
            ax.plot([r.checks[-1]], [r.sharpness[-1]], "x", color=colors[r.eta], ms=8)
    marks = [("--", "2/eta (dashed, same colour)")] + ([("x", "diverged")] if any(r.diverged_at is not None
                                                                                    for r in sel) else [])
    return _label_grid(fig, panel, "sharpness", f"Sharpness (lambda_max) under full-batch GD ({loss})", marks)


def plot_train_loss(runs: Sequence[GDRun], loss: str):
    """Train loss along GD (log scale), same layout as :func:`plot_sharpness`: non-monotone at the edge, falling
    over long windows; a dot marks where the sharpness first reached 0.9 x 2/eta."""
    sel, panel, fig, colors = _grid(runs, loss)
    for r in sel:
        ax = panel[r.family, r.dataset]
        ax.plot(np.arange(len(r.losses)), r.losses, color=colors[r.eta], lw=0.8, label=f"eta {r.eta:g}")
        hit = np.flatnonzero(r.sharpness * r.eta / 2 >= REACH)
        if len(hit) and r.checks[hit[0]] < len(r.losses):
            k = r.checks[hit[0]]
            ax.plot([k], [r.losses[k]], "o", color=colors[r.eta], ms=4)
        ax.set_yscale("log")
    for ax in panel.values():
        log_ticks(ax.yaxis)
    return _label_grid(fig, panel, "train loss", f"Train loss under full-batch GD ({loss})",
                       [("o", "sharpness reaches 0.9 x 2/eta")])


def crosscheck_table(runs: Sequence[GDRun], max_runs: int = 5, seed: int = 0) -> pd.DataFrame:
    """The last Lanczos sharpness of up to ``max_runs`` runs (one per family, the largest step size that did not
    diverge) against power iteration (:func:`nslib.tools.curvature.power_iteration`, an independent method) at the
    same final parameters."""
    rows, seen = [], set()
    for run in sorted(runs, key=lambda r: -r.eta):
        if run.family in seen or run.diverged_at is not None or len(seen) >= max_runs:
            continue
        seen.add(run.family)
        power, _, products = curvature.power_iteration(run.f, run.final_theta, iters=2000, tol=1e-9, seed=seed + 1)
        lanczos = float(run.sharpness[-1])
        rows.append({"dataset": run.dataset, "loss": run.loss, "family": run.family, "eta": run.eta,
                     "lanczos": lanczos, "power iteration": power, "power products": products,
                     "relative difference": abs(lanczos - power) / abs(power)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- The three Edge-of-Stability claims, per family

def _per_family(summary: pd.DataFrame, judge, criterion: str, *, medians: Sequence[str] = (), majority: float = 0.75,
                **measured) -> Verdict:
    """Judge every run (``judge(row)`` -> True / False / exclusion reason), then each (family, loss) by its decided
    runs, square loss and cross-entropy apart (cross-entropy's sharpness falls late, so they behave differently):
    holds when at least ``majority`` of them pass, does not hold when at most 1 - ``majority`` do, mixed in between
    (inconclusive, with how many more decided runs would settle it); a group with no decided run is inconclusive
    with its runs' exclusion reasons counted. A run that diverged, or whose sharpness is missing at some check
    (Lanczos failed), is never judged. Each group reports first the median over all its runs of each summary column
    in ``medians`` (``median_<column>``, or the column's own name when it is a median already; None where no run
    has it), then its counts and the family and loss."""

    def outcome(m):
        if m["diverged"]:
            return "diverged"
        if m.get("lanczos_failures", 0) > 0:
            return "Lanczos did not converge"
        return judge(m)

    groups = {}
    for (fam, loss), sub in summary.groupby(["family", "loss"], sort=False):
        outcomes = [outcome(row) for row in sub.to_dict("records")]
        decided = [o for o in outcomes if isinstance(o, bool)]
        excluded = Counter(o for o in outcomes if isinstance(o, str))
        passed, n = int(sum(decided)), len(decided)
        m = {c if c.startswith("median") else f"median_{c}":
             float(np.nanmedian(sub[c].astype(float))) if c in sub and sub[c].notna().any() else None
             for c in medians}
        m |= {"passed": passed, "decided": n, "runs": len(outcomes), "excluded": int(sum(excluded.values())),
              "excluded_reasons": [f"{k} x {why}" for why, k in excluded.items()], "family": fam, "loss": loss}
        if not decided:
            state = "no decided run (" + "; ".join(f"{k} x {why}" for why, k in excluded.items()) + ")"
        elif passed >= majority * n - 1e-12:
            state = True
        elif passed <= (1 - majority) * n + 1e-12:
            state = False
        else:
            # decided runs still needed, all passing (or all failing), to reach the majority either way
            to_hold = math.ceil((majority * n - passed) / (1 - majority) - 1e-9)  # (p + x) / (n + x) >= majority
            to_refute = math.ceil(passed / (1 - majority) - n - 1e-9)  # p / (n + x) <= 1 - majority
            excluded_text = (f"; {sum(excluded.values())} run(s) not judged ("
                             + "; ".join(f"{k} x {why}" for why, k in excluded.items()) + ")") if excluded else ""
            state = (f"mixed: {passed} of {n} decided runs pass; {to_hold} more passing or {to_refute} more failing "
                     f"decided runs would settle it{excluded_text}")
        groups[f"{fam} {loss}"] = Verdict.from_state(state, **m)
    if not groups:
        return Verdict.undecided(criterion, "no run was made", majority=majority, **measured)
    return Verdict.combine(groups, criterion, majority=majority, **measured)


def progressive_sharpening(summary: pd.DataFrame, rise_factor: float = 1.5, trained: float = 0.1) -> Verdict:
    """Per family: the sharpness rises at least ``rise_factor``-fold before it first reaches 0.9 x 2/eta.

    A run is judged only if it has room to rise below the edge (it starts at most 0.9 / ``rise_factor`` x 2/eta); a
    run that neither rose nor reached the edge counts against the claim only if its loss fell to ``trained`` of its
    start (it trained without sharpening), else it was too short to tell. Each group reports its median rise."""
    criterion = (f"per family, in >= 75% of the judged runs the sharpness rises >= {rise_factor:g}x before reaching "
                 f"{REACH:g} x 2/eta (runs starting above {REACH / rise_factor:.2g} x 2/eta have no room and are "
                 "not judged)")

    def judge(m):
        if not m["s0"] <= REACH / rise_factor:
            return "starts too close to the edge"
        if m["rise"] >= rise_factor:
            return True
        if m["loss_end"] <= trained * m["loss_start"]:
            return False
        return "too short to tell"

    return _per_family(summary, judge, criterion, medians=("rise",), rise_factor=rise_factor)


def hovers_at_2_over_eta(summary: pd.DataFrame, min_fraction: float = 0.9, min_checks: int = 5) -> Verdict:
    """Per family: once the sharpness has reached 0.9 x 2/eta it stays within [0.8, 1.3] x 2/eta, at
    >= ``min_fraction`` of the window's checks (the window ends at 99% train accuracy with cross-entropy). Runs
    that never reached the edge, diverged, or whose window holds fewer than ``min_checks`` checks are not judged.
    Each group reports the median share of the window in the band and the median sharpness there (units of
    2/eta)."""
    criterion = (f"per family, in >= 75% of the judged runs >= {min_fraction:.0%} of the sharpness checks after it "
                 f"reaches {REACH:g} x 2/eta lie in [{BAND[0]:g}, {BAND[1]:g}] x 2/eta")

    def judge(m):
        if pd.isna(m.get("crossed_step")):
            return "never reached the edge"
        if m["window_checks"] < min_checks:
            return "window too short"
        return bool(m["band_fraction"] >= min_fraction)

    return _per_family(summary, judge, criterion, medians=("band_fraction", "median_units"),
                       min_fraction=min_fraction)


def loss_nonmonotone_yet_decreasing(summary: pd.DataFrame, min_upticks: float = 0.05, min_steps: int = 50,
                                    max_end_over_start: float = 0.9) -> Verdict:
    """Per family: in the EoS window the loss rises at >= ``min_upticks`` of the steps (non-monotone), yet falls
    over long windows: of five equal blocks, at least three of the four consecutive block means decrease and the
    last block's mean is at most ``max_end_over_start`` of the first's. Runs without a window of ``min_steps``
    steps (never reached the edge, diverged, or reached 99% accuracy at once) are not judged. Each group reports
    the median share of the window's steps where the loss rose."""
    criterion = (f"per family, in >= 75% of the judged runs (>= {min_steps} steps after the sharpness reaches "
                 f"{REACH:g} x 2/eta) the loss rises at >= {min_upticks:.0%} of those steps, while block means fall "
                 f"(>= 3 of 4 decreases, last/first <= {max_end_over_start:g})")

    def judge(m):
        if m.get("window_steps", 0) < min_steps or "block_decreases" not in m or pd.isna(m.get("block_decreases")):
            return "never reached the edge" if pd.isna(m.get("crossed_step")) else "window too short"
        nonmonotone = m["uptick_fraction"] >= min_upticks
        decreasing = m["block_decreases"] >= 3 and m["end_over_start"] <= max_end_over_start
        return bool(nonmonotone and decreasing)

    return _per_family(summary, judge, criterion, medians=("uptick_fraction",), min_upticks=min_upticks,
                       min_steps=min_steps)


def smoothness(family: str) -> str:
    """``kinked``, ``C1`` or ``C2`` for a family name such as ``softplus(3)`` (see :data:`SMOOTHNESS`)."""
    return SMOOTHNESS[family.split("(")[0]]


def relu_differs_from_smooth(eos_verdicts: Mapping[str, Verdict], relu: str = "relu") -> Verdict:
    """ReLU nets behave differently from smooth ones: on at least one of the three Edge-of-Stability claims, with at
    least one loss, the ReLU family's decided state differs from the C^2 families' common decided state with the same
    loss (ELU, C^1 only, is shown apart: see :data:`SMOOTHNESS`). Does not hold when ReLU agrees with them on every
    (claim, loss), each decided; inconclusive when a comparison needed is undecided or the C^2 families disagree
    among themselves.

    The claim is one judged group, ``ReLU against the C^2 families`` (it holds when any comparison differs: not the
    per-group rule, under which every group must hold); each comparison ``<claim> (<loss>)`` is a reported group
    (holds: ReLU differs there; does not hold: it agrees; inconclusive: not decidable) with each family's state
    there as a measured value (ELU's as ``<family> (C1)``). The medians behind the states are in the three claims'
    own groups."""
    criterion = ("with the square loss or cross-entropy, the ReLU family's state on progressive-sharpening, "
                 "hovers-at-2-over-eta or loss-nonmonotone-yet-decreasing differs from the C^2 (smooth) families' "
                 "common state")
    comparisons, undecided = {}, []
    for cid, v in eos_verdicts.items():
        by_loss: dict[str, dict[str, Verdict]] = {}
        for g in v.groups.values():
            by_loss.setdefault(g.measured["loss"], {})[g.measured["family"]] = g
        for loss, groups in by_loss.items():
            key = f"{cid} ({loss})"
            if relu not in groups:
                undecided.append(f"{key}: no ReLU run")
                continue
            smooth = {fam: g.holds for fam, g in groups.items() if smoothness(fam) == "C2"}  # True/False/None
            r = groups[relu].holds
            states = {relu: groups[relu].state, **{fam: groups[fam].state for fam in smooth},
                      **{f"{fam} (C1)": g.state for fam, g in groups.items() if smoothness(fam) == "C1"}}
            if not smooth:
                why = "no smooth family"
            elif r is None or None in smooth.values():
                why = "inconclusive for " + ", ".join(fam for fam, h in {relu: r, **smooth}.items() if h is None)
            elif len(set(smooth.values())) > 1:
                why = "the smooth families disagree"
            else:
                why = None
            if why:
                undecided.append(f"{key}: {why}")
            comparisons[key] = Verdict.from_state(why or r != next(iter(smooth.values())), **states)
    differs = [key for key, c in comparisons.items() if c.holds]
    state = True if differs else ("; ".join(undecided) if undecided else False)
    claim = Verdict.from_state(state, differing=len(differs), compared=len(comparisons), undecided=len(undecided))
    return Verdict.combine({"ReLU against the C^2 families": claim}, criterion, reported=comparisons,
                           differs_on=differs)


def plot_metrics(summary: pd.DataFrame):
    """Per run, the share of the EoS window's checks within the band [0.8, 1.3] x 2/eta (left) and the share of
    steps where the loss rose (right), by family; markers by loss, one point per dataset x step size."""
    fams = list(dict.fromkeys(summary.family))
    fig, axes = panels(2, panel=(4.6, 3.8), sharex=True)
    markers = {"mse": "o", "ce": "s"}
    for ax, col, title, ylabel in (
            (axes[0], "band_fraction", "sharpness in the band", "share of window\nin [0.8, 1.3] x 2/eta"),
            (axes[1], "uptick_fraction", "loss rises", "share of window steps\nwhere the loss rose")):
        for loss, sub in summary.groupby("loss", sort=False):
            if col not in sub:
                continue
            x = np.array([fams.index(f) for f in sub.family]) + (0.12 if loss == "ce" else -0.12)
            ax.plot(x, sub[col], markers.get(loss, "o"), color=PALETTE[0 if loss == "mse" else 1], alpha=0.7,
                    label=f"loss {loss}", ls="none")
        ax.set(title=title, ylabel=ylabel, ylim=(-0.05, 1.05))
        ax.set_xticks(range(len(fams)), fams, rotation=30, ha="right")
    axes[0].axhline(0.9, color="k", ls="--", lw=1, label="criterion's threshold")
    axes[1].axhline(0.05, color="k", ls="--", lw=1, label="criterion's threshold")
    fig.suptitle("Edge-of-Stability statistics per run", fontweight="bold")
    shared_legend(fig, axes)
    return fig


def per_run_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's columns a reader compares, one row per run, indexed by dataset, loss, family and step size."""
    cols = ["s0", "rise", "crossed_step", "window_checks", "band_fraction", "median_units", "uptick_fraction",
            "end_over_start", "diverged"]
    return summary.set_index(["dataset", "loss", "family", "eta"])[[c for c in cols if c in summary]].round(3)


# ------------------------------------------------------------------------------------------ The central flow against GD

@dataclass
class CentralFlowRun:
    """GD, its central flow and the gradient flow from one init at one step size, on the GD run's record times.
    ``gf_error`` is how far the gradient flow moved when its tolerances were tightened tenfold
    (:func:`nslib.tools.flows.checked_flow`), ``cf_error`` how far the central flow moved with two RK4 substeps per
    GD step instead of one (NaN when not checked): each a max over time, bounding that flow's own error.
    ``gf_failed`` / ``cf_failed`` say why a flow is missing."""

    family: str
    eta: float
    gd: flows.Trajectory
    cf: flows.Trajectory | None
    gf: flows.Trajectory | None
    cf_failed: str | None
    gf_failed: str | None
    losses: pd.DataFrame
    cf_error: float = math.nan
    gf_error: float = math.nan


def compare_flows(f, theta0: torch.Tensor, family: str, eta: float, steps: int, *, every: int = 5, k: int = 3,
                  rtol: float = 1e-4, check: bool = False, seed: int = 0) -> CentralFlowRun:
    """GD with ``eta`` for ``steps`` steps, the central flow (top ``k`` eigenvalues held at the edge,
    :func:`nslib.tools.flows.central_flow`, one RK4 step per GD step) and the gradient flow (dopri5, checked at
    ``rtol`` and ``rtol / 10``, the tighter kept), all recorded at GD's times k * eta every ``every`` steps; with the
    train loss along each (for the central flow also its prediction of GD's time-averaged loss, f + sum_i c_i S_i).
    With ``check`` the central flow is solved again with two substeps and ``cf_error`` is the distance moved."""

    def central(substeps):
        cf = flows.central_flow(f, theta0, eta, steps, every=every, k=k, substeps=substeps, seed=seed)
        if cf.diverged:
            raise flows.FlowError(f"the central flow became non-finite within GD step {cf.diverged_at}")
        return cf

    gd = flows.gradient_descent(f, theta0, eta, steps, every=every)
    cf = gf = None
    cf_failed = gf_failed = None
    cf_error = gf_error = math.nan
    try:
        cf = central(1)
        if check:
            cf_error = flows.max_distance(cf, central(2))
    except flows.FlowError as e:
        cf_failed = str(e)
    try:
        gf, gf_error = flows.checked_flow(f, theta0, gd.times, rtol=rtol, atol=rtol / 100)
    except flows.FlowError as e:
        gf_failed = str(e)
    rows = []
    with torch.no_grad():
        for i, t in enumerate(gd.times):
            row = {"t": t, "step": int(round(t / eta)), "GD": float(f(gd.thetas[i]))}
            if cf is not None:
                row["central flow"] = float(f(cf.thetas[i]))
                row["central flow, predicted GD average"] = row["central flow"] + float(cf.info["excess"][i])
            if gf is not None:
                row["gradient flow"] = float(f(gf.thetas[i]))
            rows.append(row)
    return CentralFlowRun(family, eta, gd, cf, gf, cf_failed, gf_failed, pd.DataFrame(rows), cf_error, gf_error)


def compare_flows_for(fams: Sequence[str], dataset: str, loss: str, etas: Sequence[float], steps: int, *,
                      n_train: int, width: int, depth: int, k: int, seed: int = 0, device="cpu",
                      checked: Sequence[str] = ("relu",), **kwargs) -> list[CentralFlowRun]:
    """:func:`compare_flows` for every family and step size, on ``dataset`` with ``loss``, each family from the
    grid's shared initialisation. The central flows of the families in ``checked`` are self-checked (it doubles
    their cost): the ReLU net's, whose margin against the gradient flow the verdict decides."""
    s = data.load(dataset, n_train=n_train, seed=seed, n_test=0, dtype=torch.float64, device=device)
    X, y, n_classes = s.X_train, s.y_train, s.n_classes
    out = []
    for fam in fams:
        net = make_family_net(fam, X.shape[1], width, depth=depth, n_classes=n_classes, seed=seed, device=device)
        f, theta0 = flat_loss(net, loss_function(loss, n_classes), X, y)
        out += [compare_flows(f, theta0, fam, float(eta), steps, k=k, seed=seed, check=fam in checked, **kwargs)
                for eta in etas]
    return out


def _relative_distances(run: CentralFlowRun, other: flows.Trajectory | None) -> np.ndarray:
    """||flow(t) - GD(t)|| / ||GD(t) - theta_0|| at GD's recorded times (NaN where the flow is missing)."""
    travelled = (run.gd.thetas - run.gd.thetas[0]).norm(dim=1).numpy()
    out = np.full(len(travelled), np.nan)
    if other is not None:
        _, d = flows.distances(run.gd, other)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[: len(d)] = d / travelled[: len(d)]
    return out


def _family_colors(fams) -> dict:
    return {fam: PALETTE[i % len(PALETTE)] for i, fam in enumerate(fams)}


def plot_central_flow(runs: Sequence[CentralFlowRun]):
    """Left: distance to GD relative to GD's distance travelled, for the central flow (solid) and the gradient
    flow (dashed), per family. Right: train loss of GD (thin), the central flow's prediction of GD's average
    loss (solid) and the gradient flow's loss (dashed). One legend below: the families' colours, then the styles."""
    fams = [r.family for r in runs]
    colors = _family_colors(dict.fromkeys(fams))
    fig, axes = panels(2, panel=(4.6, 3.8))
    for r in runs:
        steps = r.losses.step.to_numpy()
        c = colors[r.family]
        axes[0].plot(steps, _relative_distances(r, r.cf), color=c, lw=1.5, label=r.family)
        axes[0].plot(steps, _relative_distances(r, r.gf), color=c, lw=1.2, ls="--")
        axes[1].plot(steps, r.losses.GD, color=c, lw=0.6, alpha=0.6)
        if "central flow, predicted GD average" in r.losses:
            axes[1].plot(steps, r.losses["central flow, predicted GD average"], color=c, lw=1.5, label=r.family)
        if "gradient flow" in r.losses:
            axes[1].plot(steps, r.losses["gradient flow"], color=c, lw=1.2, ls="--")
    for fmt, lw, label in (("-", 1.5, "central flow (right: predicted GD average)"), ("--", 1.2, "gradient flow"),
                           ("-", 0.6, "GD (right, thin)")):
        axes[0].plot([], [], fmt, color="grey", lw=lw, label=label)
    axes[0].set(yscale="log", xlabel="GD step", ylabel="||flow - GD|| / ||GD - theta_0||",
                title="distance to GD")
    axes[1].set(yscale="log", xlabel="GD step", ylabel="train loss", title="train loss")
    for ax in axes:
        log_ticks(ax.yaxis)
    fig.suptitle(f"The central flow against GD at eta = {runs[0].eta:g}" if runs else "", fontweight="bold")
    shared_legend(fig, axes, ncol=3)
    return fig


def central_flow_table(runs: Sequence[CentralFlowRun]) -> pd.DataFrame:
    """One row per (family, eta): whether the central flow reached the edge, from which step, and on what share of
    the late window (the second half of the run) it sat there; the late mean distance of each flow to GD relative
    to GD's distance travelled ||theta_GD(t) - theta_0||, and each flow's own error on the same scale (its error
    bound over the smallest late distance travelled); GD's divergence and the flows' failures."""
    rows = []
    for r in runs:
        d_cf, d_gf = _relative_distances(r, r.cf), _relative_distances(r, r.gf)
        late = slice(len(r.gd.times) // 2, None)
        travelled = float((r.gd.thetas[late] - r.gd.thetas[0]).norm(dim=1).min())
        on_edge = r.cf.info["on_edge"] if r.cf is not None else np.array([], bool)
        first = np.flatnonzero(on_edge)
        rows.append({"family": r.family, "eta": r.eta, "gd_diverged": r.gd.diverged,
                     "cf_reached_edge": bool(on_edge.any()),
                     "cf_edge_from_step": int(r.cf.info["iterations"][first[0]]) if len(first) else None,
                     "cf_late_edge_fraction": float(on_edge[late].mean()) if len(on_edge) else 0.0,
                     "cf_late_relative_distance": float(np.nanmean(d_cf[late])) if r.cf is not None else math.nan,
                     "gf_late_relative_distance": float(np.nanmean(d_gf[late])) if r.gf is not None else math.nan,
                     "cf_relative_error": r.cf_error / travelled, "gf_relative_error": r.gf_error / travelled,
                     "cf_final_relative_distance": float(d_cf[-1]), "gf_final_relative_distance": float(d_gf[-1]),
                     "cf_failed": r.cf_failed or "", "gf_failed": r.gf_failed or ""})
    return pd.DataFrame(rows)


def central_flow_tracks_relu(table: pd.DataFrame, relu: str = "relu", factor: float = 2.0,
                             min_edge_fraction: float = 0.5, min_etas: int = 2) -> Verdict:
    """At each step size: the central flow's late distance to GD (relative to GD's distance travelled) for the ReLU
    net is within ``factor`` x the median over the C^2 families (ELU, C^1 only, is reported apart: see
    :data:`SMOOTHNESS`), and below the gradient flow's for the ReLU net; at ``min_etas`` step sizes or more (with
    fewer, one step size stands for all: inconclusive).

    Preconditions per step size: the ReLU net's GD did not diverge, both its flows exist, its central flow sat at the
    edge for at least ``min_edge_fraction`` of the late window (else it is mostly the gradient flow and there is
    little to test) and was self-checked, and at least one smooth family qualifies by the same rules. A point is
    decided only when the flows' own errors (``cf_relative_error``, ``gf_relative_error``) cannot move it across
    either threshold; otherwise it is inconclusive."""
    criterion = (f"late ||CF - GD|| / ||GD - theta_0|| for ReLU <= {factor:g} x the C^2 families' median, and "
                 "below the gradient flow's, at every step size, beyond the flows' own errors")

    def usable(row):
        if row["gd_diverged"]:
            return "GD diverged"
        if row["cf_failed"]:
            return f"no central flow ({row['cf_failed']})"
        if row["gf_failed"]:
            return f"no gradient flow ({row['gf_failed']})"
        if not row["cf_reached_edge"]:
            return "the central flow never reached the edge (it is the gradient flow)"
        if row["cf_late_edge_fraction"] < min_edge_fraction:
            return (f"the central flow sat at the edge for only {row['cf_late_edge_fraction']:.0%} of the late window "
                    "(it is mostly the gradient flow)")
        return True

    groups = {}
    for eta, sub in table.groupby("eta", sort=True):
        rows = {r["family"]: r for r in sub.to_dict("records")}
        smooth = {fam: r["cf_late_relative_distance"] for fam, r in rows.items()
                  if smoothness(fam) == "C2" and usable(r) is True}
        c1 = {fam: r["cf_late_relative_distance"] for fam, r in rows.items()
              if smoothness(fam) == "C1" and usable(r) is True}
        m = {"smooth_families": list(smooth), "smooth_cf": list(smooth.values()), "c1_families": list(c1),
             "c1_cf": list(c1.values())}
        if relu not in rows:
            state = "no ReLU net was run"
        elif usable(rows[relu]) is not True:
            state = f"ReLU: {usable(rows[relu])}"
        elif not smooth:
            state = "no C^2 family sat at the edge with both flows"
        elif not (math.isfinite(rows[relu]["cf_relative_error"]) and math.isfinite(rows[relu]["gf_relative_error"])):
            state = "the ReLU net's flows were not self-checked: their errors are unknown"
        else:
            r = rows[relu]
            ref = float(np.median(list(smooth.values())))
            cf, gf = r["cf_late_relative_distance"], r["gf_late_relative_distance"]
            e_cf, e_gf = r["cf_relative_error"], r["gf_relative_error"]
            m = {"relu_cf": cf, "relu_gf": gf, "smooth_median_cf": ref, "ratio_to_smooth": cf / ref,
                 "relu_cf_error": e_cf, "relu_gf_error": e_gf, **m}
            if cf - e_cf > factor * ref or cf - e_cf >= gf + e_gf:
                state = False
            elif cf + e_cf <= factor * ref and cf + e_cf < gf - e_gf:
                state = True
            else:
                state = "the flows' own errors straddle a threshold"
        groups[f"eta={eta:g}"] = Verdict.from_state(state, **m)
    if not groups:
        return Verdict.undecided(criterion, "the central flow was not run", factor=factor)
    if len(groups) < min_etas:
        groups["step sizes"] = Verdict.undecided("", f"{len(groups)} step size(s) run: the claim is about every "
                                                     f"step size, judged at {min_etas} or more (cf_etas)")
    return Verdict.combine(groups, criterion, factor=factor)


# -------------------------------------------------------------------------------------------------------------- Verdict

def _number(value, fmt: str, missing: str = "not measured") -> str:
    """A finite number formatted with ``fmt``; ``missing`` for None or a non-finite value."""
    ok = value is not None and not (isinstance(value, float) and not math.isfinite(value))
    return format(value, fmt) if ok else missing


def flow_distance_text(table: pd.DataFrame) -> str:
    """``"relu 7.0% / 7.9%, tanh ..."``: late relative distance to GD of the central flow / of the gradient flow,
    per family (and step size when there are several); a flow that could not be computed reads "no central flow"
    or "no gradient flow"."""
    several = table.eta.nunique() > 1 if len(table) else False
    parts = []
    for r in table.to_dict("records"):
        name = f"{r['family']} (eta {r['eta']:g})" if several else r["family"]
        cf = _number(r["cf_late_relative_distance"], ".1%", "no central flow")
        gf = _number(r["gf_late_relative_distance"], ".1%", "no gradient flow")
        parts.append(f"{name} {cf} / {gf}")
    return ", ".join(parts) or "the central flow was not run"


def _medians_text(v: Verdict, key: str, fmt: str, unit: str = "") -> str:
    """``"relu mse 2.3-fold, tanh ce not measured"``: each (family, loss) group's ``key``, with its ``unit``."""
    def one(value):
        text = _number(value, fmt, "")
        return text + unit if text else "not measured"

    return ", ".join(f"{name} {one(g.measured.get(key))}" for name, g in v.groups.items()) or "no run was made"


def page_texts(verdicts: Mapping[str, Verdict], *, fams: Sequence[str], runs: Sequence[GDRun],
               crosscheck: pd.DataFrame, cf_table: pd.DataFrame) -> dict[str, str]:
    """The sentences the page glues (as ``eos-<key>``), each whole in every state, from the runs and the recorded
    verdicts."""
    sharpening, hovers, loss = (verdicts[c] for c in ("progressive-sharpening", "hovers-at-2-over-eta",
                                                      "loss-nonmonotone-yet-decreasing"))
    differs = list(verdicts["relu-differs-from-smooth"].measured.get("differs_on") or [])
    worst = float(crosscheck["relative difference"].max()) if len(crosscheck) else None
    checked = len(crosscheck)
    return {"families": ", ".join(fams), "runs": f"{len(runs):,} GD run{'' if len(runs) == 1 else 's'}",
            "band": _medians_text(hovers, "median_band_fraction", ".0%"),
            "upticks": _medians_text(loss, "median_uptick_fraction", ".0%"),
            "rise": _medians_text(sharpening, "median_rise", ".1f", "-fold"),
            "median": _medians_text(hovers, "median_units", ".2f"),
            "differs-on": ("it differs on " + ", ".join(differs)) if differs else
                          "it differs on no (claim, loss) compared",
            "crosscheck": (f"The Lanczos sharpness agreed with power iteration to a relative {worst:.1e} at the "
                           f"{'iterate' if checked == 1 else f'{checked} iterates'} checked (the last of one run per "
                           "family)." if worst is not None and math.isfinite(worst) else
                           "No run was checked against power iteration (every run diverged)." if not checked else
                           f"At the {'iterate' if checked == 1 else f'{checked} iterates'} checked against power "
                           "iteration, the relative difference could not be computed (power iteration returned 0)."),
            "cf": flow_distance_text(cf_table),
            **{f"groups-{cid}": group_states_text(verdicts[cid])
               for cid in ("progressive-sharpening", "hovers-at-2-over-eta", "loss-nonmonotone-yet-decreasing")}}
