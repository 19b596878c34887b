"""Finding *relu-vs-smooth-convergence* (Kumar 2024, Section 3): do smooth networks converge faster than ReLU ones?

The page's experiments (the paper's toy, a linear model with a ReLU at the output and labels y <= 0, under constant,
diminishing and smooth counterparts; fully connected nets on digits and MNIST-1D with ReLU, softplus over a beta grid,
GELU and SiLU, each at its own tuned step), its figures (``plot_*``) and one criterion per claim id:
:func:`toy_gap_plateau`, :func:`toy_smooth_converges`, :func:`toy_diminishing_fixes`, :func:`nets_smooth_faster`.
The toy runs on :mod:`nslib.tools.dynamics`; the nets train many seeds, betas and step sizes at once with
:mod:`nslib.tools.ensembles`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..figures import PALETTE, log_floor
from ..glue import text_of
from ..runner import combine_verdicts, inconclusive, verdict
from ..tools import data, ensembles
from ..tools.dynamics import StepSizeRuns, run_dynamics, settled
from ..tools.models import mlp
from ..tools.objectives import Objective
from ..tools.stats import loglog_slope
from ..verdicts import Verdict

__all__ = [
    # experiments
    "ACTIVATIONS", "DATASETS", "SMOOTH", "NetRuns", "Toy", "ToyRuns", "curves_frame", "final_loss_table",
    "make_toy", "page_texts", "run_nets", "run_toy", "softplus_optimum", "steps_table", "toy_table",
    # figures
    "plot_net_curves", "plot_steps_vs_beta", "plot_toy_curves", "plot_toy_gaps",
    # criteria, one per claim id
    "nets_smooth_faster", "toy_diminishing_fixes", "toy_gap_plateau", "toy_smooth_converges",
]

#: Activations of the network study; ``softplus`` is expanded into one family per beta of the page's grid.
ACTIVATIONS = ("relu", "softplus", "gelu", "silu")
#: The smooth (C^1 and better) activations, compared against ReLU.
SMOOTH = ("softplus", "gelu", "silu")
#: Datasets of the network study, loaded by :func:`nslib.tools.data.load`.
DATASETS = ("digits", "mnist1d", "mnist")
#: Fraction of seeds in which a direction must hold ("4 of 5").
SEED_FRACTION = 0.8
#: Bootstrap resamples of the effect size's interval in ``nets-smooth-faster``.
BOOTSTRAP_RESAMPLES = 2000
#: The late window has settled when the mean gaps of its two halves agree within this factor.
SETTLE_FACTOR = 1.2


# --------------------------------------------------------------------------------------------------------------- Set-up

@dataclass
class Toy:
    """Per seed s: data X[s] (N, P) with standard normal entries, labels y[s] (N,) = -|N(0, 1)| < 0, and a start
    w0[s] (P,) ~ N(0, I/P). Over the reals the ReLU model's optimum is f* = mean(y^2)/2, reached exactly where every
    unit sits at or below its kink (for N > 2P Gaussian rows, only at w = 0)."""

    X: torch.Tensor
    y: torch.Tensor
    w0: torch.Tensor

    @property
    def n_seeds(self) -> int:
        return self.X.shape[0]


def make_toy(n_seeds: int, n_samples: int, n_features: int, seed: int = 0) -> Toy:
    """The paper's toy at ``n_seeds`` seeds (float64); seed i's data do not change when more seeds are asked."""
    Xs, ys, ws = [], [], []
    for child in np.random.SeedSequence(seed).spawn(n_seeds):
        g = torch.Generator().manual_seed(int(child.generate_state(1)[0]))
        Xs.append(torch.randn(n_samples, n_features, generator=g, dtype=torch.float64))
        ys.append(-torch.randn(n_samples, generator=g, dtype=torch.float64).abs())
        ws.append(torch.randn(n_features, generator=g, dtype=torch.float64) / math.sqrt(n_features))
    return Toy(torch.stack(Xs), torch.stack(ys), torch.stack(ws))


# ----------------------------------------------------------- The toy: a ReLU at the output, labels at or below the kink

def _toy_loss(toy: Toy, w: torch.Tensor, beta: float | None) -> torch.Tensor:
    """Loss per row of ``w`` (K * S, P), row k * S + s using seed s's data: mean (h(x.w) - y)^2 / 2."""
    S, P = toy.n_seeds, toy.X.shape[-1]
    z = torch.einsum("ksp,snp->ksn", w.view(-1, S, P), toy.X)
    h = torch.relu(z) if beta is None else F.softplus(z, beta=beta)
    return ((h - toy.y) ** 2).mean(-1).reshape(-1) / 2


def softplus_optimum(toy: Toy, beta: float, tol: float = 1e-14, max_iter: int = 200):
    """Per seed, the minimiser of the softplus(beta) toy by damped Newton in float64 (the loss is convex and smooth):
    ``(w_star (S, P), f_star (S,), L (S,), mu (S,))`` with L, mu the extreme Hessian eigenvalues at w_star."""
    out_w, out_f, out_L, out_mu = [], [], [], []
    for s in range(toy.n_seeds):
        X, y = toy.X[s], toy.y[s]

        def f(w, X=X, y=y):
            return ((F.softplus(X @ w, beta=beta) - y) ** 2).mean() / 2

        w = torch.zeros(X.shape[1], dtype=torch.float64)
        for _ in range(max_iter):
            g = torch.func.grad(f)(w)
            H = torch.func.hessian(f)(w)
            step = torch.linalg.solve(H, g)
            t, fw = 1.0, f(w)
            while f(w - t * step) > fw + 1e-4 * t * float(g @ -step) and t > 1e-10:  # Armijo backtracking
                t /= 2
            w = w - t * step
            if float(g.norm()) < tol:
                break
        ev = torch.linalg.eigvalsh(torch.func.hessian(f)(w))
        out_w.append(w), out_f.append(float(f(w))), out_L.append(float(ev[-1])), out_mu.append(float(ev[0]))
    return torch.stack(out_w), np.array(out_f), np.array(out_L), np.array(out_mu)


def _toy_objective(toy: Toy, beta: float | None) -> tuple[Objective, dict]:
    """The toy as a batched objective whose value is already the gap f - f* of each seed (so ``fmin`` = 0)."""
    if beta is None:
        fstar = (toy.y ** 2).mean(-1) / 2
        info = {}
    else:
        _, fs, L, mu = softplus_optimum(toy, beta)
        fstar, info = torch.tensor(fs), {"L": L, "mu": mu}
    S = toy.n_seeds

    def gap(w):
        return (_toy_loss(toy, w, beta).view(-1, S) - fstar).reshape(-1)

    def at_kink(w):  # some unit exactly at its kink: where autograd's relu'(0) = 0 decides the step
        if beta is not None:
            return torch.zeros(w.shape[0], dtype=torch.bool)
        z = torch.einsum("ksp,snp->ksn", w.view(-1, S, w.shape[-1]), toy.X)
        return (z == 0).any(-1).reshape(-1)

    name = "relu" if beta is None else f"softplus({beta:g})"
    return Objective(name, toy.X.shape[-1], gap, 0.0, beta is not None, at_kink), info


@dataclass
class ToyRuns:
    """GD on the toy: ReLU at constant steps ``lrs``, ReLU with diminishing steps from lr0 = max(lrs), and softplus
    at each beta (constant steps, with each seed's L and mu at its optimum)."""

    lrs: np.ndarray
    relu: StepSizeRuns
    diminishing: StepSizeRuns
    softplus: dict[float, StepSizeRuns]
    curvature: dict[float, dict[str, np.ndarray]]
    window: int

    @property
    def lr0(self) -> float:
        return float(self.diminishing.lrs[0])


def run_toy(toy: Toy, lrs: Sequence[float], betas: Sequence[float], steps: int, window: int) -> ToyRuns:
    """Run every part of the toy study (full-batch subgradient GD through ``torch.optim.SGD``, float64)."""
    lrs = np.asarray(lrs, float)
    relu, _ = _toy_objective(toy, None)
    out_relu = run_dynamics(relu, toy.w0, lrs, steps=steps)
    # the diminishing steps start from the largest constant step whatever the order of the list
    dim = run_dynamics(relu, toy.w0, [float(lrs.max())], steps=steps, schedule="invsqrt")
    sp, curv = {}, {}
    for b in betas:
        obj, info = _toy_objective(toy, float(b))
        sp[float(b)] = run_dynamics(obj, toy.w0, lrs, steps=steps)
        curv[float(b)] = info
    return ToyRuns(lrs, out_relu, dim, sp, curv, window)


def plot_toy_gaps(runs: ToyRuns):
    """Left: late mean gap against the step, ReLU (per seed and median) with slope 1, the diminishing schedule from
    eta0 at the largest step, and softplus (exact zeros at the floor). Right: the gap over the run, first seed."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    w, lrs = runs.window, runs.lrs
    order = np.argsort(lrs)
    g = np.abs(runs.relu.late_gap(w))
    for s in range(g.shape[1]):
        ax.plot(lrs[order], log_floor(g[order, s]), "o", color=PALETTE[0], alpha=0.35, ms=4)
    med = np.median(g, axis=1)[order]
    ax.plot(lrs[order], log_floor(med), "-", color=PALETTE[0], label="ReLU, constant step (median, seeds as dots)")
    ax.plot(lrs[order], med[0] * lrs[order] / lrs[order][0], "k--", lw=1, label="slope 1")
    d = np.median(np.abs(runs.diminishing.late_gap(w)[0]))
    ax.plot([runs.lr0], [log_floor(d)], "v", color=PALETTE[3], ms=9,
            label=r"ReLU, $\eta_0/\sqrt{k+1}$ from the largest step")
    for i, (b, tr) in enumerate(runs.softplus.items()):
        ax.plot(lrs[order], log_floor(np.median(np.abs(tr.late_gap(w)), axis=1)[order]), "s-", ms=4,
                color=PALETTE[(i + 1) % len(PALETTE)], alpha=0.8, label=f"softplus({b:g}), to its own optimum")
    ax.set(xscale="log", yscale="log", xlabel=r"step size $\eta$", ylabel=r"late mean gap $f - f^\star$",
           title="Gap at the end of the run")
    ax.legend(frameon=False, fontsize="x-small")
    k = np.arange(runs.relu.gap.shape[-1])
    for i in order:
        bx.plot(k, log_floor(np.abs(runs.relu.gap[i, 0])), lw=0.8, color=PALETTE[i % len(PALETTE)],
                label=fr"ReLU $\eta$ = {lrs[i]:g}")
    bx.plot(k, log_floor(np.abs(runs.diminishing.gap[0, 0])), lw=1.2, color="k", label=r"ReLU diminishing")
    bx.set(yscale="log", xlabel="iteration k", ylabel=r"$f - f^\star$ (exact 0 drawn at 1e-18)",
           title="Gap over the run (first seed)")
    bx.legend(frameon=False, fontsize="x-small", ncol=2)
    fig.tight_layout()
    return fig


def _seed_fraction_text(fraction: float) -> str:
    return f"{fraction:.0%} of seeds"


def toy_gap_plateau(runs: ToyRuns, min_gap_per_step: float = 0.01, lo: float = 0.7, hi: float = 1.3,
                    fraction: float = SEED_FRACTION, settle_factor: float = SETTLE_FACTOR) -> dict:
    """Constant-step subgradient GD on the ReLU toy does not converge: in at least ``fraction`` of the seeds, the
    late mean gap is at least ``min_gap_per_step`` x eta at every step of the grid and its
    log-log slope in eta lies in [lo, hi].

    Preconditions: two distinct steps (the runner refuses fewer); every run's late window has settled (its two
    halves agree within ``settle_factor``); no run diverged."""
    criterion = (f"ReLU toy, constant steps: in >= {_seed_fraction_text(fraction)} the late mean gap is >= "
                 f"{min_gap_per_step:g} x eta at every eta and its log-log slope in eta lies in [{lo:g}, {hi:g}]")
    w, lrs = runs.window, runs.lrs
    g = runs.relu.late_gap(w)  # (L, S)
    if runs.relu.diverged.any():
        return inconclusive(criterion, "a ReLU toy run diverged (a step too large for the quadratic part)",
                            diverged_lrs=sorted({float(lrs[i]) for i, _ in np.argwhere(runs.relu.diverged)}))
    ok = settled(runs.relu.gap, w, settle_factor)
    slopes = [loglog_slope(lrs, g[:, s]) for s in range(g.shape[1])]
    ratio = g / lrs[:, None]
    per_seed = [bool((ratio[:, s] >= min_gap_per_step).all() and lo <= slopes[s] <= hi) for s in range(g.shape[1])]
    measured = dict(slopes=slopes, min_gap_over_eta=float(ratio.min()), median_gap_over_eta=float(np.median(ratio)),
                    smallest_gap=float(g.min()), seeds_holding=int(sum(per_seed)), seeds=len(per_seed))
    if not ok.all():
        bad = {f"eta={lrs[i]:g}": int(n) for i, n in enumerate((~ok).sum(1)) if n}
        return inconclusive(criterion, f"the late window has not settled (its halves differ by more than "
                                       f"{settle_factor:g}x) at {bad} (seeds): run more steps", **measured)
    return verdict(sum(per_seed) >= fraction * len(per_seed), criterion, **measured)


def toy_table(runs: ToyRuns) -> pd.DataFrame:
    """One row per run: the ReLU toy at each constant step and with the diminishing schedule (late mean gap, median
    over seeds; gap / eta; settled seeds), and each softplus beta at each constant step (late gap to its own optimum,
    and eta L/2, below 1 where the step is below the stability edge 2/L; medians over seeds)."""
    w = runs.window
    g = np.abs(runs.relu.late_gap(w))
    ok = settled(runs.relu.gap, w, SETTLE_FACTOR)
    rows = []
    for i, lr in enumerate(runs.lrs):
        row = {"run": f"constant eta = {lr:g}", "ReLU late gap": float(np.median(g[i])),
               "ReLU gap / eta": float(np.median(g[i]) / lr), "ReLU settled seeds": f"{int(ok[i].sum())}/{ok.shape[1]}"}
        for b, tr in runs.softplus.items():
            row[f"softplus({b:g}) gap"] = float(np.median(np.abs(tr.late_gap(w)[i])))
            row[f"eta L/2 ({b:g})"] = float(np.median(lr * runs.curvature[b]["L"] / 2))
        rows.append(row)
    d = np.abs(runs.diminishing.late_gap(w)[0])
    rows.append({"run": f"diminishing eta0 = {runs.lr0:g}", "ReLU late gap": float(np.median(d)),
                 "ReLU gap / eta": float(np.median(d) / runs.lr0),
                 "ReLU settled seeds": "n/a (still falling)"})
    return pd.DataFrame(rows).set_index("run")


# ------------------------------------------------------------------ The smooth counterpart converges, at the same steps

def toy_smooth_converges(runs: ToyRuns, tol: float = 1e-8, margin: float = 100.0) -> dict:
    """The softplus(beta) counterpart converges to its own optimum: every run with eta < 2/L (L the largest Hessian
    eigenvalue at that seed's optimum) ends with a late mean gap below ``tol``.

    Preconditions: some run has eta < 2/L; each judged run is long enough for local linear convergence to reach
    ``tol`` with a ``margin`` (gap0 x q^(2 (steps - window)) <= tol / margin with q = max|1 - eta lambda| over the
    Hessian's extreme eigenvalues); runs too short for that are not judged, and if any of them is also above
    ``tol`` while none failed, the verdict is inconclusive; so is a run that diverged."""
    criterion = (f"softplus toy: every run with eta < 2/L at its seed's optimum ends with a late mean gap < {tol:g} "
                 f"to its own optimum")
    w, lrs = runs.window, runs.lrs
    judged = failed = short = diverged = 0
    per_group = {}
    for b, tr in runs.softplus.items():
        L, mu = runs.curvature[b]["L"], runs.curvature[b]["mu"]
        g = np.abs(tr.late_gap(w))
        steps = tr.gap.shape[-1] - 1
        entry = {"two_over_L": float(np.median(2 / L)), "judged": 0, "failed": 0, "too_short": 0, "diverged": 0,
                 "largest_judged_gap": None}
        for i, lr in enumerate(lrs):
            for s in range(g.shape[1]):
                if not lr < 2 / L[s]:
                    continue
                if not np.isfinite(tr.gap[i, s]).all():  # a diverged solver decides nothing
                    entry["diverged"] += 1
                    continue
                q = max(abs(1 - lr * mu[s]), abs(1 - lr * L[s]))
                with np.errstate(divide="ignore", under="ignore"):
                    predicted = abs(tr.gap[i, s, 0]) * q ** (2 * (steps - w))
                converged = bool(np.isfinite(g[i, s]) and g[i, s] < tol)
                if not converged and not predicted <= tol / margin:
                    entry["too_short"] += 1
                    continue
                entry["judged"] += 1
                entry["failed"] += int(not converged)
                gg = float(g[i, s])
                entry["largest_judged_gap"] = max(entry["largest_judged_gap"] or 0.0, gg)
        judged, failed, short = judged + entry["judged"], failed + entry["failed"], short + entry["too_short"]
        diverged += entry["diverged"]
        per_group[f"softplus({b:g})"] = entry
    measured = dict(judged=judged, failed=failed, too_short=short, diverged=diverged, per_group=per_group)
    if failed:
        return verdict(False, criterion, **measured)
    if diverged:
        return inconclusive(criterion, f"{diverged} run(s) with eta < 2/L at the optimum diverged on the way there: "
                                       f"lower the step", **measured)
    if short or not judged:
        why = (f"{short} run(s) with eta < 2/L are above {tol:g} but too short to have converged at their "
               f"local rate: run more steps") if short else "no step is below 2/L for any beta"
        return inconclusive(criterion, why, **measured)
    return verdict(True, criterion, **measured)


def plot_toy_curves(runs: ToyRuns, lr: float | None = None):
    """The gap over the run at one step (default: the middle of the grid), ReLU against each softplus, first seed."""
    lrs = runs.lrs
    i = int(np.argsort(lrs)[len(lrs) // 2]) if lr is None else int(np.argmin(np.abs(lrs - lr)))
    fig, ax = plt.subplots()
    k = np.arange(runs.relu.gap.shape[-1])
    ax.plot(k, log_floor(np.abs(runs.relu.gap[i, 0])), color=PALETTE[0], lw=0.8, label="ReLU")
    for j, (b, tr) in enumerate(runs.softplus.items()):
        ax.plot(k, log_floor(np.abs(tr.gap[i, 0])), color=PALETTE[(j + 1) % len(PALETTE)], lw=1,
                label=f"softplus({b:g})")
    ax.set(yscale="log", xlabel="iteration k", ylabel=r"$f - f^\star$ (exact 0 drawn at 1e-18)",
           title=fr"Same step $\eta$ = {lrs[i]:g}: ReLU and softplus, gap to each one's optimum")
    ax.legend(frameon=False, fontsize="small")
    return fig


# ------------------------------------------------------------------------------ The reviewers' point: diminishing steps

def toy_diminishing_fixes(runs: ToyRuns, min_ratio: float = 10.0, fraction: float = SEED_FRACTION,
                          settle_factor: float = SETTLE_FACTOR) -> dict:
    """The reviewers' point: diminishing steps eta0/sqrt(k+1) from eta0 = the largest constant step end with a late
    mean gap at least ``min_ratio`` times smaller than the constant step eta0, in >= ``fraction`` of the seeds.

    Preconditions: no run at eta0 diverged; the constant-step runs at eta0 settled (else their gap is not a plateau to
    compare with); the run is long enough for the schedule to shrink the step ``min_ratio``-fold twice over
    (sqrt(steps) >= 2 min_ratio)."""
    criterion = (f"diminishing steps eta0/sqrt(k+1) from eta0 = max eta end with a late mean gap >= {min_ratio:g}x "
                 f"smaller than constant eta0, in >= {_seed_fraction_text(fraction)}")
    w, lrs = runs.window, runs.lrs
    top = int(np.argmax(lrs))
    const, dim = np.abs(runs.relu.late_gap(w)[top]), np.abs(runs.diminishing.late_gap(w)[0])
    with np.errstate(divide="ignore"):
        ratios = const / dim
    steps = runs.relu.gap.shape[-1] - 1
    measured = dict(eta0=runs.lr0, ratios=ratios.tolist(), median_ratio=float(np.median(ratios)),
                    seeds_holding=int((ratios >= min_ratio).sum()), seeds=len(ratios))
    if not (np.isfinite(const).all() and np.isfinite(dim).all()):
        return inconclusive(criterion, f"a run at eta0 = {runs.lr0:g} diverged (constant or diminishing): lower the "
                                       f"largest step", **measured)
    if math.sqrt(steps) < 2 * min_ratio:
        return inconclusive(criterion, f"{steps} steps shrink a 1/sqrt(k) step only {math.sqrt(steps):.0f}-fold: "
                                       f"too few to resolve a {min_ratio:g}x smaller gap", **measured)
    if not settled(runs.relu.gap[top], w, settle_factor).all():
        return inconclusive(criterion, f"the constant-step runs at eta0 = {runs.lr0:g} have not settled", **measured)
    return verdict((ratios >= min_ratio).mean() >= fraction, criterion, **measured)


# ----------------------------------------------------------------------- Networks: ReLU against softplus, GELU and SiLU

def _families(activations: Sequence[str], betas: Sequence[float]) -> list[tuple[str, str, float]]:
    """(family name, activation, beta) in a fixed order: relu, softplus(b) for each b, gelu, silu (those asked)."""
    out = []
    for act in ACTIVATIONS:
        if act not in activations:
            continue
        if act == "softplus":
            out += [(f"softplus({float(b):g})", "softplus-buffer", float(b)) for b in betas]
        else:
            out.append((act, act, 1.0))
    return out


@dataclass
class NetRuns:
    """Full-batch GD on fully connected nets: per (dataset, depth, family, lr, seed), the loss at every step."""

    frame: pd.DataFrame  # dataset, depth, family, beta, lr, seed, step, loss
    summary: pd.DataFrame  # one row per run: steps_to_threshold (inf if never), final_loss, diverged
    threshold: float
    steps: int
    lrs: list[float]
    meta: dict = field(default_factory=dict)


def run_nets(datasets: Sequence[str], depths: Sequence[int], activations: Sequence[str], betas: Sequence[float],
             lrs: Sequence[float], n_seeds: int, *, n_train: int, width: int, steps: int, threshold: float,
             seed: int = 0, data_dir: str = "", device="cpu", dtype=torch.float32) -> NetRuns:
    """Train every (dataset, depth, family, lr, seed) with full-batch GD on the cross-entropy.

    Seed s initialises every family identically (the activations have no parameters), so runs differ only by their
    activation and step. All step sizes and seeds of one family (all betas of softplus) train at once as one
    :class:`nslib.tools.ensembles.Ensemble`; each member is the same computation as ``tools.train.train`` alone."""
    frames, summaries = [], []
    for ds in datasets:
        s = data.load(ds, n_train=n_train, seed=seed, data_dir=data_dir, n_test=0,
                      dtype=torch.float64, device=device)
        X, y, n_classes = s.X_train, s.y_train, s.n_classes
        X = X.to(dtype)
        for depth in depths:
            sizes = [X.shape[1]] + [width] * int(depth) + [n_classes]
            by_activation: dict[str, list[tuple[str, float]]] = {}
            for fam, act, beta in _families(activations, betas):
                by_activation.setdefault(act, []).append((fam, beta))
            for act, fams in by_activation.items():
                models, keys = [], []
                for fam, beta in fams:
                    for lr in lrs:
                        for s in range(n_seeds):
                            torch.manual_seed(seed * 1000 + s)
                            models.append(mlp(sizes, act, beta=beta, dtype=dtype, device=device))
                            keys.append((fam, beta, float(lr), s))
                run = ensembles.train_ensemble(models, F.cross_entropy, X, y, optimizer="sgd", lr=[k[2] for k in keys],
                                      steps=steps)
                for (fam, beta, lr, s), h in zip(keys, run.histories):
                    loss = h.frame["loss"].to_numpy()
                    hit = np.flatnonzero(loss <= threshold)
                    summaries.append({"dataset": ds, "depth": int(depth), "family": fam, "beta": beta, "lr": lr,
                                      "seed": s, "steps_to_threshold": float(hit[0]) if len(hit) else math.inf,
                                      "final_loss": h.final_loss, "diverged": h.diverged})
                    frames.append(pd.DataFrame({"dataset": ds, "depth": int(depth), "family": fam, "beta": beta,
                                                "lr": lr, "seed": s, "step": h.frame["step"].to_numpy(),
                                                "loss": loss}))
    return NetRuns(pd.concat(frames, ignore_index=True), pd.DataFrame(summaries), threshold, steps,
                   [float(v) for v in lrs], {"n_train": n_train, "width": width})


def curves_frame(runs: NetRuns) -> pd.DataFrame:
    """The loss curves of every seed at each family's tuned step."""
    tuned = _tuned(runs)[["dataset", "depth", "family", "lr"]]
    return runs.frame.merge(tuned, on=["dataset", "depth", "family", "lr"])


def plot_net_curves(runs: NetRuns):
    """Training loss at each family's tuned step, median over seeds with a min-max band, one panel per net."""
    cf = curves_frame(runs)
    nets = list(dict.fromkeys(zip(cf.dataset, cf.depth)))
    fams = list(dict.fromkeys(runs.summary.family))
    fig, axes = plt.subplots(1, len(nets), figsize=(4.2 * len(nets), 4), squeeze=False)
    for ax, (ds, depth) in zip(axes[0], nets):
        sub = cf[(cf.dataset == ds) & (cf.depth == depth)]
        for i, fam in enumerate(fams):
            f = sub[sub.family == fam]
            if f.empty:
                continue
            q = f.groupby("step")["loss"].agg(["median", "min", "max"])
            style = "-" if fam == "relu" else ("--" if fam.startswith("softplus") else ":")
            ax.plot(q.index, q["median"], style, color=PALETTE[i % len(PALETTE)], lw=1.3 if fam == "relu" else 1,
                    label=f"{fam} (lr {f.lr.iloc[0]:g})")
            ax.fill_between(q.index, q["min"], q["max"], color=PALETTE[i % len(PALETTE)], alpha=0.15, lw=0)
        ax.axhline(runs.threshold, color="k", lw=0.8, ls=":")
        ax.set(yscale="log", xlabel="GD step", ylabel="training loss (cross-entropy)", title=f"{ds}, depth {depth}")
        ax.legend(frameon=False, fontsize="x-small")
    fig.tight_layout()
    return fig


def plot_steps_vs_beta(runs: NetRuns):
    """Steps to the loss threshold at the tuned step against softplus's beta (median and seed range), with ReLU,
    GELU and SiLU as horizontal lines: as beta grows, softplus approaches ReLU."""
    t = steps_table(runs)
    nets = list(dict.fromkeys(zip(t.dataset, t.depth)))
    fig, axes = plt.subplots(1, len(nets), figsize=(4.2 * len(nets), 4), squeeze=False)
    for ax, (ds, depth) in zip(axes[0], nets):
        sub = t[(t.dataset == ds) & (t.depth == depth)]
        sp = sub[sub.family.str.startswith("softplus")].sort_values("beta")
        if not sp.empty:
            ax.errorbar(sp.beta, sp["median steps"], yerr=[sp["median steps"] - sp["min steps"],
                                                           sp["max steps"] - sp["median steps"]],
                        fmt="o-", color=PALETTE[1], capsize=3, label="softplus(beta)")
        for i, fam in enumerate(("relu", "gelu", "silu")):
            row = sub[sub.family == fam]
            if not row.empty:
                ax.axhline(row["median steps"].item(), color=PALETTE[[0, 2, 4][i]], ls=["-", "--", ":"][i], label=fam)
        if not np.isfinite(sub["median steps"].to_numpy(dtype=float)).any():  # every net diverged or never got there
            ax.text(0.5, 0.5, f"no net reached loss {runs.threshold:g}", transform=ax.transAxes, ha="center")
        betas = sp.beta.to_numpy(dtype=float)
        if len(betas):  # the limits from the grid, not from the data, which may hold no finite point to log-scale
            ax.set(xscale="log", xlim=(betas.min() / 2, betas.max() * 2))
        ax.set(xlabel=r"softplus sharpness $\beta$", ylabel=f"steps to loss {runs.threshold:g}",
               title=f"{ds}, depth {depth}")
        ax.legend(frameon=False, fontsize="x-small")
    fig.tight_layout()
    return fig


def effect_sizes(runs: NetRuns, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per (dataset, smooth family): the effect size ReLU steps / smooth steps to the loss threshold, each net at its
    own tuned step, over every (depth, seed) pair from the same initialisation; its median and a 95% percentile
    bootstrap interval (``resamples`` resamples of the pairs, generator seeded by ``seed``: the same runs give the
    same interval). A net that never reached the threshold counts as infinitely slow (ratio inf or 0); a pair where
    neither reached it is undecided and left out; equal steps give 1, a tie. Also: whether either side was tuned at
    the grid's largest step at some depth (a larger step might change the ratio)."""
    tuned = {(r.dataset, r.depth, r.family): r["tuned lr"] for _, r in steps_table(runs).iterrows()}
    s, top = runs.summary, max(runs.lrs)
    rng = np.random.default_rng(seed)

    def seeds_steps(ds, depth, fam):
        sel = s[(s.dataset == ds) & (s.depth == depth) & (s.family == fam) & (s.lr == tuned[ds, depth, fam])]
        return sel.set_index("seed").steps_to_threshold

    rows = []
    for ds in dict.fromkeys(s.dataset):
        depths = [d for d in dict.fromkeys(s[s.dataset == ds].depth) if (ds, d, "relu") in tuned]
        for fam in dict.fromkeys(s.family):
            if fam == "relu":
                continue
            ratios, undecided, pairs, edge = [], 0, 0, {"relu": False, "smooth": False}
            for depth in depths:
                if (ds, depth, fam) not in tuned:
                    continue
                r = seeds_steps(ds, depth, "relu")
                sm = seeds_steps(ds, depth, fam).reindex(r.index).to_numpy(float)
                r = r.to_numpy(float)
                decided = np.isfinite(sm) | np.isfinite(r)
                pairs, undecided = pairs + len(r), undecided + int((~decided).sum())
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(r == sm, 1.0, r / sm)  # equal steps (both 0 too) are a tie
                ratios += ratio[decided].tolist()
                edge["relu"] |= bool(tuned[ds, depth, "relu"] == top)
                edge["smooth"] |= bool(tuned[ds, depth, fam] == top)
            if not pairs:
                continue
            ratios = np.asarray(ratios, float)
            row = {"dataset": ds, "family": fam, "beta": float(s[s.family == fam].beta.iloc[0]), "pairs": pairs,
                   "decided pairs": len(ratios), "undecided pairs": undecided,
                   "median ratio": float(np.median(ratios)) if len(ratios) else math.nan,
                   "ci low": math.nan, "ci high": math.nan, "relu at grid edge": edge["relu"],
                   "smooth at grid edge": edge["smooth"]}
            if len(ratios):
                boot = np.median(ratios[rng.integers(0, len(ratios), (resamples, len(ratios)))], axis=1)
                # no interpolation between order statistics: a never-reached net's ratio is inf, and inf - inf is nan
                low, high = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")
                row["ci low"], row["ci high"] = float(low), float(high)
            rows.append(row)
    return pd.DataFrame(rows)


def plot_effect_sizes(effects: pd.DataFrame):
    """ReLU steps / smooth steps to the loss threshold per smooth family (median over seed pairs, 95% bootstrap
    interval), one panel per dataset; above 1 the smooth net is faster. Softplus is ordered by beta: as beta grows it
    approaches ReLU, and its ratio should approach 1."""
    dss = list(dict.fromkeys(effects.dataset))
    fig, axes = plt.subplots(1, len(dss), figsize=(5.2 * len(dss), 4), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        sub = effects[effects.dataset == ds].reset_index(drop=True)
        y = sub["median ratio"].clip(1e-2, 1e2)
        lo = (y - sub["ci low"].clip(1e-2, 1e2)).clip(lower=0)
        hi = (sub["ci high"].clip(1e-2, 1e2) - y).clip(lower=0)
        colors = [PALETTE[1] if f.startswith("softplus") else PALETTE[2] for f in sub.family]
        for i in range(len(sub)):
            ax.errorbar([i], [y[i]], yerr=[[lo[i]], [hi[i]]], fmt="o", color=colors[i], capsize=4)
        ax.axhline(1.0, color="k", lw=1, ls="--")
        ax.set_xticks(range(len(sub)), sub.family, rotation=30, ha="right")
        ax.set(yscale="log", ylabel="ReLU steps / smooth steps (clipped to [0.01, 100])",
               title=f"{ds}: above 1, the smooth net is faster")
    fig.tight_layout()
    return fig


def nets_smooth_faster(runs: NetRuns, max_undecided: float = 0.2, min_pairs: int = 3,
                       resamples: int = BOOTSTRAP_RESAMPLES) -> Verdict:
    """Smooth nets reach the loss threshold in fewer GD steps than ReLU nets, judged per (dataset, smooth family) by
    the effect size of :func:`effect_sizes` (ReLU steps / smooth steps, median over the (depth, seed) pairs, 95%
    bootstrap interval): it holds for a family whose interval lies above 1, does not hold for one whose interval lies
    below 1, and is inconclusive for one whose interval contains 1 (a tie is a tie, not a loss). The headline
    combines the families by the book's one rule, and says which were faster.

    Preconditions per family: at least ``min_pairs`` decided seed pairs, at most ``max_undecided`` of the pairs
    undecided (neither net reached the threshold), and no decided direction that a larger step could reverse (the
    slower side tuned at the grid's largest step)."""
    criterion = ("per dataset and smooth family: the 95% bootstrap interval of the median ReLU / smooth steps to the "
                 "loss threshold (each at its tuned step, same initialisation) lies above 1")
    effects = effect_sizes(runs, resamples=resamples)
    groups = {}
    for _, row in effects.iterrows():
        m = {"median_ratio": row["median ratio"], "ci_low": row["ci low"], "ci_high": row["ci high"],
             "decided_pairs": int(row["decided pairs"]), "undecided_pairs": int(row["undecided pairs"]),
             "pairs": int(row["pairs"]), "relu_at_grid_edge": bool(row["relu at grid edge"]),
             "smooth_at_grid_edge": bool(row["smooth at grid edge"])}
        groups[f"{row.dataset} {row.family}"] = {"state": _effect_state(m, max_undecided, min_pairs), "measured": m}
    if not groups:
        return inconclusive(criterion, "ReLU and a smooth family did not both train without diverging")
    faster = [g for g, v in groups.items() if v["state"] is True]
    slower = [g for g, v in groups.items() if v["state"] is False]
    return combine_verdicts(groups, criterion, threshold=runs.threshold, lrs=runs.lrs,
                            faster=faster, slower=slower)


def _effect_state(m: dict, max_undecided: float, min_pairs: int) -> bool | str:
    """One family's state from its effect size: True / False beyond 1, else the reason it is undecided."""
    lo, hi = m["ci_low"], m["ci_high"]
    if m["decided_pairs"] < min_pairs:
        return f"only {m['decided_pairs']} seed pairs reached the loss threshold on either side (< {min_pairs})"
    if m["undecided_pairs"] > max_undecided * m["pairs"]:
        return (f"{m['undecided_pairs']} of {m['pairs']} seed pairs reached the loss threshold on neither side: run "
                f"more steps or raise loss_threshold")
    if not (lo > 1 or hi < 1):
        return (f"the 95% interval [{lo:.2f}, {hi:.2f}] of ReLU / smooth steps contains 1: not told apart from ReLU "
                f"at {m['decided_pairs']} seed pairs")
    slower = "relu" if lo > 1 else "smooth"
    if m[f"{slower}_at_grid_edge"]:
        return f"the slower net ({slower}) was tuned at the grid's largest step: extend lrs upward"
    return bool(lo > 1)


def _tuned(runs: NetRuns) -> pd.DataFrame:
    """Per (dataset, depth, family), the step chosen from ``lrs``: the smallest median steps-to-threshold over the
    seeds (ties broken by the smaller median final loss), among steps where no seed diverged. The same seeds judge
    every family, so the selection favours each alike."""
    s = runs.summary
    agg = (s.groupby(["dataset", "depth", "family", "beta", "lr"], sort=False)
           .agg(median_steps=("steps_to_threshold", "median"), median_final=("final_loss", "median"),
                any_diverged=("diverged", "any")).reset_index())
    agg = agg[~agg.any_diverged & np.isfinite(agg.median_final)]
    agg = agg.sort_values(["median_steps", "median_final"], kind="stable")
    return agg.groupby(["dataset", "depth", "family"], sort=False).head(1).reset_index(drop=True)


def steps_table(runs: NetRuns) -> pd.DataFrame:
    """Per (dataset, depth, family) at its tuned step: median steps to reach the loss threshold (inf: never within
    the run), the seeds' range, the chosen step and whether it is the grid's largest."""
    tuned = _tuned(runs)
    rows = []
    for _, t in tuned.iterrows():
        sel = runs.summary[(runs.summary.dataset == t.dataset) & (runs.summary.depth == t.depth)
                           & (runs.summary.family == t.family) & (runs.summary.lr == t.lr)]
        st = sel.steps_to_threshold.to_numpy()
        rows.append({"dataset": t.dataset, "depth": int(t.depth), "family": t.family, "beta": t.beta,
                     "tuned lr": t.lr, "at grid edge": bool(t.lr == max(runs.lrs)),
                     "median steps": float(np.median(st)), "min steps": float(st.min()), "max steps": float(st.max()),
                     "median final loss": float(sel.final_loss.median())})
    out = pd.DataFrame(rows)
    order = {f: i for i, f in enumerate(runs.summary.family.unique())}
    return out.sort_values(["dataset", "depth", "family"], key=lambda c: c.map(order) if c.name == "family" else c,
                           kind="stable").reset_index(drop=True)


def final_loss_table(runs: NetRuns) -> pd.DataFrame:
    """Median final training loss at each family's tuned step, one column per (dataset, depth)."""
    t = steps_table(runs)
    t["net"] = t["dataset"] + ", depth " + t["depth"].astype(str)
    order = list(dict.fromkeys(t["family"]))
    return t.pivot(index="family", columns="net", values="median final loss").loc[order]


# -------------------------------------------------------------------------------------------------------------- Verdict

def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.1e}"


def page_texts(toy: ToyRuns, nets: NetRuns, verdicts: Mapping[str, Verdict], *, device: str = "cpu") -> dict[str, str]:
    """The sentences the page glues, built from the runs and the recorded verdicts (never typed on the page)."""
    w = toy.window
    med = np.median(np.abs(toy.relu.late_gap(w)), axis=1)
    above = sorted(float(lr) for lr, g in zip(toy.lrs, med) if g >= 1e-3)
    plateau = verdicts["toy-gap-plateau"].measured
    slopes = plateau.get("slopes") or [float("nan")]
    table = steps_table(nets)
    by_net = []
    for (ds, depth), sub in table.groupby(["dataset", "depth"], sort=False):
        relu = sub[sub.family == "relu"]
        if relu.empty:
            continue
        r = relu["median steps"].item()
        faster = [f for f, m in zip(sub.family, sub["median steps"]) if f != "relu" and m < r]
        by_net.append(f"{ds} depth {depth}: ReLU {r:g} steps; faster in median: "
                      f"{', '.join(faster) if faster else 'none'}")
    effects = []
    for group, g in verdicts["nets-smooth-faster"].groups.items():
        m = g.measured  # a net that never reached the threshold gives an infinite ratio, kept as null + "_nonfinite"
        ratio, low, high = (m.get(k) if m.get(k) is not None else m.get(f"{k}_nonfinite", "n/a")
                            for k in ("median_ratio", "ci_low", "ci_high"))
        effects.append(f"{group} {text_of(ratio, '.2f')} [{text_of(low, '.2f')}, {text_of(high, '.2f')}]")
    faster = verdicts["nets-smooth-faster"].measured.get("faster", [])
    slower = verdicts["nets-smooth-faster"].measured.get("slower", [])
    tuned = ", ".join(sorted({f"{lr:g}" for lr in table["tuned lr"]}, key=float))
    return {
        "gap-over-eta": f"{plateau.get('median_gap_over_eta', float('nan')):.3f}",
        "slopes": f"{min(slopes):.2f} to {max(slopes):.2f}",
        "above-1e-3": (f"from eta = {above[0]:g} on" if above else "at no step of the grid"),
        "softplus-gap": _fmt(max((e.get("largest_judged_gap") or 0.0) for e in
                                 verdicts["toy-smooth-converges"].measured.get("per_group", {}).values()) if
                             verdicts["toy-smooth-converges"].measured.get("per_group") else None),
        "dim-ratio": f"{verdicts['toy-diminishing-fixes'].measured.get('median_ratio', float('nan')):.0f}",
        "nets-median": "; ".join(by_net) or "no net trained",
        "nets-effects": "; ".join(effects) or "no comparison",
        "nets-faster": ", ".join(faster) or "none",
        "nets-slower": ", ".join(slower) or "none",
        "tuned-lrs": tuned or "none",
        "device": "a CPU" if str(device) == "cpu" else str(device),
    }
