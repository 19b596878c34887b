"""Finding *abs-smooth-clarke* (Baumgärtner & Bethke 2024): does backward AD return Clarke gradients?

The page's experiments (kinked points of dense ReLU nets, the one-neuron batch, the LIKQ test over random nets and
constructed programs, the live survey of what PyTorch returns at kinks), its figures (``plot_*``) and one criterion
per claim id: :func:`single_sample_clarke`, :func:`batch_needs_agnostic_choice`, :func:`kakade_lee_counterexample`,
:func:`likq_implies_clarke`. The Clarke-set machinery and the LIKQ checker are :mod:`nslib.tools.clarke`.
Random draws come from independent streams of the page seed (:mod:`nslib.tools.seeds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..tools.clarke import (
    CLOSED_FORMS,
    LIKQ_RTOL,
    MIN_TOL,
    ad_gradient,
    clarke_set_exact,
    clarke_set_sampled,
    hull_distance,
    in_hull,
    likq,
)
from ..tools.kinks import Kinks
from ..tools.seeds import stream_seed, stream_seeds
from ..verdicts import Threshold, Verdict, format_value

__all__ = [
    # experiments
    "CONSTRUCTED", "FAMILIES", "batch_choice_case", "batch_choice_table", "clarke_distances", "closed_form_check",
    "constructed_programs", "dense_relu_loss", "distance_summary", "input_space_net", "kakade_lee_case",
    "kakade_lee_table", "kink_survey", "kinked_point", "likq_cases", "likq_summary", "likq_table", "n_params",
    "one_neuron_batch", "point_seeds", "sampled_vs_exact",
    # figures
    "plot_distances", "plot_likq",
    # the page's prose
    "page_texts",
    # criteria, one per claim id, and where their constants come from
    "THRESHOLDS", "batch_needs_agnostic_choice", "kakade_lee_counterexample", "likq_implies_clarke",
    "single_sample_clarke",
]


# ------------------------------------------------------------------------ Where the criteria's constants come from

_MEMBERSHIP = (f"ten times the LP's feasibility tolerance (1e-10): nslib.tools.clarke.MIN_TOL = {MIN_TOL:g}, the "
               "smallest tolerance the hull test accepts. Points are exact in float64 (integer data, ties built "
               "exactly), so an output inside lies at distance ~1e-16 and one outside at O(1): in a pilot at seed 0 "
               "(30 points, ReLU'(0) = 0, 0.5, 1 and 2) every nonzero distance was >= 0.4")

#: Every constant a criterion decides with, with its source (shown under the verdicts).
THRESHOLDS = (
    Threshold("single-sample-clarke", "tol", 1e-9, "ours, fixed before the data", _MEMBERSHIP),
    Threshold("batch-needs-agnostic-choice", "tol", 1e-12, "ours, fixed before the data",
              "float64 on the one-neuron batch: every agnostic choice gives exactly 0 in exact arithmetic, the "
              "per-sample choice a component of size 2 (summed loss); any tolerance far below 2 and above rounding "
              "decides the same"),
    Threshold("kakade-lee-counterexample", "tol", 1e-9, "ours, fixed before the data",
              "how close the exact Clarke set's one vertex must be to 1, the derivative of x; the same tolerance as "
              "hull membership (MIN_TOL)"),
    Threshold("likq-implies-clarke", "tol", 1e-9, "ours, fixed before the data", _MEMBERSHIP),
    Threshold("likq-implies-clarke", "LIKQ_RTOL", LIKQ_RTOL, "ours, fixed before the data",
              "nslib.tools.clarke.likq counts a singular value of the active switches' Jacobian when above LIKQ_RTOL "
              "times the largest. The Jacobians here have small integer or half-integer entries: in a pilot at "
              "seed 0 (30 dense-net points, 60 input-space nets, the constructed programs) the smallest singular "
              "value was >= 0.2 wherever the switches were independent and <= 1e-15 where they were not"),
)


# --------------------------------------------------------------------------------------------------------------- Set-up

def n_params(sizes) -> int:
    """Number of weights and biases of a dense net with layer widths ``sizes``."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# ------------------------------------------------------------------- The tools on functions whose Clarke sets are known

def _vector_text(v) -> str:
    """A gradient as a person reads it: "1" for one entry, "(1, 0)" for more (3 significant figures, no -0)."""
    v = [float(x) + 0.0 for x in np.asarray(v, float).ravel()]
    return format_value(v[0]) if len(v) == 1 else "(" + ", ".join(format_value(x) for x in v) + ")"


def _set_text(vertices) -> str:
    """A Clarke set from its vertices: "{1}" for one point, "[-1, 1]" for an interval, "conv{(1, 0), (0, 1)}"."""
    V = np.asarray(vertices, float)
    V = V.reshape(len(V), -1)
    if len(V) == 1:
        return "{" + _vector_text(V[0]) + "}"
    if V.shape[1] == 1:
        return f"[{format_value(float(V.min()) + 0.0)}, {format_value(float(V.max()) + 0.0)}]"
    return "conv{" + ", ".join(_vector_text(v) for v in V) + "}"


def closed_form_check() -> pd.DataFrame:
    """The exact-set tool on :data:`nslib.tools.clarke.CLOSED_FORMS`: patterns realised, the set found, and
    whether the set equals the closed form (each hull inside the other)."""
    rows = []
    for name, (fn, d, known) in CLOSED_FORMS.items():
        c = clarke_set_exact(fn, torch.zeros(d, dtype=torch.float64), piecewise_linear=True)
        known = np.array(known)
        same = all(in_hull(v, known) for v in c.vertices) and all(in_hull(v, c.vertices) for v in known)
        rows.append({"function": name, "patterns realised": f"{c.patterns_realised}/{c.patterns_total}",
                     "set found": _set_text(c.vertices),
                     "equals the closed form": same})
    return pd.DataFrame(rows).set_index("function")


# ------------------------------------------------------------------------------ One sample through a dense ReLU network

def dense_relu_loss(sizes, X: torch.Tensor, Y: torch.Tensor) -> Callable:
    """f(theta, k): summed squared loss of a dense ReLU net with biases, theta the flat parameter vector
    (per layer: W row-major, then b). ``X`` (N, sizes[0]) and ``Y`` (N, sizes[-1])."""
    def f(theta: torch.Tensor, k: Kinks) -> torch.Tensor:
        h, pos = X, 0
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            W = theta[pos:pos + a * b].view(b, a)
            pos += a * b
            bias = theta[pos:pos + b]
            pos += b
            h = h @ W.T + bias
            if i < len(sizes) - 2:
                h = k.relu(h)
        return ((h - Y) ** 2).sum()

    return f


def kinked_point(sizes, ties_per_layer: int, seed: int):
    """A dense ReLU net's parameters and one integer sample at which ``ties_per_layer`` pre-activations of every
    hidden layer are exactly 0 (integer weights and data, biases solved for): returns (f, theta), the loss
    ``f(theta, k)`` of :func:`dense_relu_loss` and the flat parameter vector."""
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.integers(-2, 3, size=(1, sizes[0])), dtype=torch.float64)
    Y = torch.tensor(rng.integers(-2, 3, size=(1, sizes[-1])), dtype=torch.float64)
    parts, h = [], X
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = torch.tensor(rng.integers(-2, 3, size=(b, a)), dtype=torch.float64)
        pre = (h @ W.T)[0]
        bias = torch.tensor(rng.integers(-2, 3, size=b), dtype=torch.float64)
        hidden = i < len(sizes) - 2
        if hidden:
            tied = rng.choice(b, size=min(ties_per_layer, b), replace=False)
            bias[tied] = -pre[tied]  # integers: the pre-activation is exactly 0
            untied = np.setdiff1d(np.arange(b), tied)
            clash = untied[(pre[untied] + bias[untied] == 0).numpy()]
            bias[clash] += 1  # keep the other units off their kink
        parts += [W.flatten(), bias]
        h = h @ W.T + bias
        if hidden:
            h = h.clamp_min(0)
    return dense_relu_loss(sizes, X, Y), torch.cat(parts)


def point_seeds(seed: int, n_points: int) -> list[int]:
    """The seeds of the ``n_points`` kinked points of page seed ``seed``: independent streams
    (:func:`nslib.tools.seeds.stream_seeds`), so that page seeds 0 and 1 share no point."""
    return stream_seeds(seed, n_points, "abs-smooth-clarke kinked points")


def clarke_distances(sizes, ties_per_layer: int, n_points: int, seed: int, alphas) -> pd.DataFrame:
    """For ``n_points`` kinked points (seeds from :func:`point_seeds`): the sup-norm distance, relative to
    max(1, |g|), of AD's output with ReLU'(0) = alpha to the exact Clarke set, for every alpha. One row each;
    ``trivial`` marks points whose Clarke set is {0} (the loss is identically 0 nearby: every choice passes);
    ``likq`` whether LIKQ holds there in the parameters, with ``active`` switches of ``rank``."""
    rows = []
    for i, s in enumerate(point_seeds(seed, n_points)):
        f, theta = kinked_point(sizes, ties_per_layer, s)
        cs = clarke_set_exact(f, theta)
        q = likq(f, theta)
        for a in alphas:
            g = ad_gradient(f, theta, relu0=a)
            rows.append({"point": i, "alpha": a, "ties": cs.n_ties, "vertices": len(cs.vertices),
                         "trivial": bool(np.all(cs.vertices == 0)), "likq": q.holds, "active": q.n_active,
                         "rank": q.rank, "distance": hull_distance(g, cs.vertices) / max(1.0, float(np.abs(g).max()))})
    return pd.DataFrame(rows)


def single_sample_clarke(points: pd.DataFrame, alphas, control_alpha: float, tol: float = 1e-9) -> Verdict:
    """AD with ReLU'(0) = alpha lies in the exact Clarke set at every judged kinked point for every tested alpha in
    [0, 1] (sup-norm distance <= tol), while the negative control falls outside at one judged point at least.
    ``points`` is a :func:`clarke_distances` frame. One group per tested alpha (holds when inside at every judged
    point) and one for the control (holds when outside at one judged point at least; when it stays inside everywhere
    the points have no power to tell choices apart, and the group is inconclusive, never a refutation): the claim
    holds when every group does.

    Judged points have a tied pre-activation and a Clarke set other than {0} (where the loss is identically 0
    nearby, every choice passes, the control too: such points are reported apart). Preconditions: at least one
    judged point (else the control cannot fail, and the run cannot decide), and every alpha was run.
    """
    criterion = (f"at every kinked point whose Clarke set is not {{0}}, AD with ReLU'(0) = "
                 f"{_or_join(format_value(float(a)) for a in alphas)} lies within sup-norm {tol:g} of the exact Clarke "
                 f"set; the control ReLU'(0) = {control_alpha:g} lies outside at one such point at least")
    first = points.drop_duplicates("point")
    trivial, untied = int(first.trivial.sum()), int((first.ties == 0).sum())
    judged_ids = set(first.point[~first.trivial.astype(bool) & (first.ties > 0)])
    counts = dict(points=int(len(first)), judged_points=len(judged_ids), trivial_points=trivial, untied_points=untied,
                  control_alpha=float(control_alpha))
    missing = [a for a in list(alphas) + [control_alpha] if not (points.alpha == a).any()]
    if missing:
        return Verdict.undecided(criterion, f"ReLU'(0) = {missing} was not run", **counts)
    if not judged_ids:
        return Verdict.undecided(criterion, f"no point has a tied pre-activation and a Clarke set other than {{0}} "
                                            f"({untied} without ties, {trivial} with the set {{0}}): AD's choice at 0 "
                                            "is never used, and the control cannot fall outside", **counts)
    judged = points[points.point.isin(judged_ids)]
    groups = {}
    for alpha in alphas:
        d = judged[judged.alpha == alpha].distance.to_numpy(float)
        frac = float(np.mean(d <= tol))
        groups[f"alpha={alpha:g}"] = Verdict.from_state(frac == 1.0, fraction_inside=frac,
                                                         max_distance=float(d.max()))
    c = judged[judged.alpha == control_alpha].distance.to_numpy(float)
    # a control that stays inside everywhere shows that these points cannot tell a choice outside [0, 1] from one
    # inside: the test has no power here (inconclusive), which says nothing against the paper
    control = dict(fraction_outside=float(np.mean(c > tol)), max_distance=float(c.max()))
    groups[f"control alpha={control_alpha:g}"] = (
        Verdict.from_state(True, **control) if np.any(c > tol) else
        Verdict.undecided("", "the control stayed inside the Clarke set at every judged point: these points cannot "
                              "tell a choice outside [0, 1] from one inside", **control))
    return Verdict.combine(groups, criterion, **counts)


def distance_summary(points: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Per ReLU'(0): points, points whose Clarke set is {0}, AD outputs within ``tol`` of the set, largest distance."""
    return points.groupby("alpha").agg(points=("point", "size"), with_set_0=("trivial", "sum"),
                                       inside=("distance", lambda d: int((d <= tol).sum())),
                                       max_distance=("distance", "max"))


def plot_distances(points: pd.DataFrame, tol: float, floor: float = 1e-18):
    """Each AD output's sup-norm distance to the exact Clarke set, per ReLU'(0), with the tolerance dashed."""
    import seaborn as sns
    from matplotlib.ticker import LogLocator

    fig, ax = plt.subplots(figsize=(8, 4.4))
    shown = points.assign(shown=np.maximum(points.distance, floor), alpha=points.alpha.map(lambda a: f"{a:g}"))
    sns.stripplot(data=shown, x="alpha", y="shown", ax=ax, jitter=0.25, size=4)
    ax.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g}")
    ax.set(yscale="log", xlabel="ReLU'(0) used by AD",
           ylabel=f"sup-norm distance / max(1, |g|)\n(0 drawn at {floor:g})",
           title="AD outputs against the exact Clarke set")
    ax.yaxis.set_major_locator(LogLocator(numticks=8))
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig


def sampled_vs_exact(points: pd.DataFrame, sizes, ties_per_layer: int, *, seed: int, n_samples: int,
                     radius: float, first: int = 10) -> pd.Series:
    """At the point (among the first ``first``) whose exact Clarke set has the most vertices: the sampled inner
    estimate against the exact set, and AD's (ReLU'(0) = 0) distance to each."""
    n = int(points.point.max()) + 1
    best = max(range(min(n, first)), key=lambda i: (points[points.point == i].vertices.iloc[0], -i))
    f, theta = kinked_point(sizes, ties_per_layer, point_seeds(seed, best + 1)[best])
    exact = clarke_set_exact(f, theta)
    sampled = clarke_set_sampled(f, theta, n=n_samples, radius=radius,
                                 seed=stream_seed(seed, "abs-smooth-clarke nearby"))
    g0 = ad_gradient(f, theta, relu0=0.0)
    return pd.Series({"exact vertices": len(exact.vertices), "distinct sampled gradients": len(sampled),
                      "exact vertices inside the sampled hull": sum(in_hull(v, sampled, 1e-6) for v in exact.vertices),
                      "AD (ReLU'(0)=0) distance to the sampled hull": hull_distance(g0, sampled),
                      "AD (ReLU'(0)=0) distance to the exact set": hull_distance(g0, exact.vertices)},
                     name=f"point {best}")


# ------------------------------------------------------------------------------------- A batch needs an agnostic choice

def one_neuron_batch(theta: torch.Tensor, k: Kinks) -> torch.Tensor:
    """Summed squared loss of v * relu(w x + b) on two samples x1 = x2 = 0 with targets +1 and -1; theta = (w, b, v).
    One kink site per sample, so that a per-sample choice of ReLU'(0) can be made."""
    w, b, v = theta
    x, y = torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, -1.0], dtype=torch.float64)
    pre = w * x + b
    return sum((v * k.relu(pre[i]) - y[i]) ** 2 for i in range(2))


def batch_choice_case(n_samples: int, radius: float, seed: int = 0):
    """The two-sample batch of :func:`one_neuron_batch` at (w, b, v) = (0.7, 0, 1), both samples on the kink:
    ``(agnostic, per_sample, nearby)``, AD's gradient for each agnostic ReLU'(0) in {0, 0.5, 1}, for the per-sample
    choice (1 for the first sample, 0 for the second), and the gradients sampled around the point."""
    theta = torch.tensor([0.7, 0.0, 1.0], dtype=torch.float64)  # (w, b, v)
    agnostic = {a: ad_gradient(one_neuron_batch, theta, relu0=a) for a in (0.0, 0.5, 1.0)}
    per_sample = ad_gradient(one_neuron_batch, theta, pattern=[torch.tensor(1.0), torch.tensor(-1.0)])
    nearby = clarke_set_sampled(one_neuron_batch, theta, n=n_samples, radius=radius,
                                seed=stream_seed(seed, "abs-smooth-clarke batch nearby"))
    return agnostic, per_sample, nearby


def batch_needs_agnostic_choice(agnostic: Mapping[float, np.ndarray], per_sample: np.ndarray,
                                tol: float = 1e-12) -> Verdict:
    """The Clarke set of the batch loss is {0}: AD must return 0 (sup norm <= tol) for every agnostic
    choice (all samples take the same ReLU'(0)) and a non-zero vector for the per-sample choice. One group per
    agnostic ReLU'(0) (holds when its sup norm is <= tol) and a "per-sample" group (holds when it is > tol)."""
    groups = {}
    for a, g in agnostic.items():
        norm = float(np.abs(np.asarray(g, float)).max())
        groups[f"agnostic alpha={a:g}"] = Verdict.from_state(norm <= tol, sup_norm=norm, alpha=float(a))
    ps = float(np.abs(np.asarray(per_sample, float)).max())
    groups["per-sample"] = Verdict.from_state(ps > tol, sup_norm=ps)
    return Verdict.combine(groups, f"AD is in the Clarke set {{0}} (sup norm <= {tol:g}) for every agnostic choice "
                                   "and outside it for the per-sample choice",
                           per_sample_gradient=np.asarray(per_sample, float).ravel().tolist())


def batch_choice_table(agnostic, per_sample, nearby) -> pd.DataFrame:
    """The gradients of :func:`batch_choice_case` side by side, one row per choice, one column per parameter."""
    return pd.DataFrame({**{f"agnostic, ReLU'(0)={a:g}": g for a, g in agnostic.items()},
                         "per sample (1, then 0)": per_sample,
                         "largest nearby gradient": np.abs(nearby).max(0)}, index=["d/dw", "d/db", "d/dv"]).T


# ---------------------------------------------------------------------------------------- The Kakade-Lee counterexample

def _torch_autograd(fn, values) -> np.ndarray:
    """The gradient PyTorch's own autograd returns for ``fn`` at ``values`` (float64)."""
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    fn(x).backward()
    return x.grad.numpy()


def kakade_lee_case():
    """relu(x) - relu(-x) at x = 0: (what torch's own relu gives under autograd, the exact Clarke set there)."""
    ad = float(_torch_autograd(lambda x: (torch.relu(x) - torch.relu(-x)).sum(), [0.0])[0])
    exact = clarke_set_exact(lambda z, k: (k.relu(z) - k.relu(-z)).sum(), torch.zeros(1, dtype=torch.float64),
                             piecewise_linear=True)
    return ad, exact


def kakade_lee_counterexample(ad_value: float, clarke_vertices, tol: float = 1e-9) -> Verdict:
    """relu(x) - relu(-x) = x: the installed AD returns 0 at x = 0 while the Clarke set is {1}."""
    V = np.asarray(clarke_vertices, float)
    clarke_is_one = V.shape == (1, 1) and abs(V[0, 0] - 1.0) <= tol
    ok = bool(ad_value == 0.0 and clarke_is_one)
    return Verdict.decided(ok, "AD of relu(x) - relu(-x) at x = 0 is 0, and the exact Clarke set there is {1}",
                   ad_value=float(ad_value), clarke_vertices=V.ravel().tolist())


def kakade_lee_table(ad_value: float, clarke_set, verdict_: Verdict) -> pd.DataFrame:
    """AD's value, the exact Clarke set and the verdict for relu(x) - relu(-x) at 0, as one column."""
    return pd.Series({"torch autograd": _vector_text([ad_value]), "Clarke set": _set_text(clarke_set.vertices),
                      "verdict": verdict_.state}, name="relu(x) - relu(-x) at 0").to_frame()


# ------------------------------------------------------------------------------- A published condition: LIKQ

def _relu_diff(x, k):
    return (k.relu(x) - k.relu(-x)).sum()


def _max_abs(x, k):
    return (x[0] + x[1] + k.abs(x[0] - x[1])) / 2


def _max_plus_min_abs(x, k):
    # min(x, y) written as (x + y - |y - x|) / 2: the same kink as max's, with its argument negated
    return (x[0] + x[1] + k.abs(x[0] - x[1])) / 2 + (x[0] + x[1] - k.abs(x[1] - x[0])) / 2


def _residual_relu(x, k):
    return k.relu(x + k.relu(-x)).sum()  # x + relu(-x) = relu(x): a skip connection, then a second ReLU


def _residual_cancel(x, k):
    return (x + k.relu(-x) - k.relu(x)).sum()  # identically 0


def _two_units_one_bias(sample: float):
    """Two hidden units sharing one bias, one sample, outputs weighted 1 and -2; variables (w1, w2, b)."""
    def f(theta, k):
        w1, w2, b = theta
        return k.relu(w1 * sample + b) - 2 * k.relu(w2 * sample + b)
    return f


def _crelu(theta, k):
    """A CReLU pair relu(z), relu(-z) on z = w x + b with x = 1 (both units share z's bias), weighted 1 and -1."""
    w, b = theta
    z = w * 1.0 + b
    return k.relu(z) - k.relu(-z)


def _batch_of_two(samples, bias: bool):
    """One unit relu(w x + b) (or relu(w x) without bias) on two samples, outputs weighted 1 and -1."""
    def f(theta, k):
        w, b = (theta[0], theta[1]) if bias else (theta[0], 0.0)
        return k.relu(w * samples[0] + b) - k.relu(w * samples[1] + b)
    return f


#: The constructed programs: name -> (f(x, k), number of variables, what they show). Each is evaluated at the origin,
#: where all its kinks are active; every kink argument is affine in the variables, so the first-order realisation
#: test of :func:`nslib.tools.clarke.clarke_set_exact` is exact (``piecewise_linear=True``).
CONSTRUCTED = {
    "relu(x) - relu(-x)": (_relu_diff, 1, "the Kakade-Lee counterexample: the same kink read twice, opposite signs"),
    "max(x, y) through abs": (_max_abs, 2, "(x + y + |x - y|) / 2: one kink"),
    "max(x, y) + min(x, y) through abs": (_max_plus_min_abs, 2, "max and min each written through abs: two kinks on "
                                                              "the same line"),
    "residual relu(x + relu(-x))": (_residual_relu, 1, "a skip connection whose sum is itself a ReLU, then a ReLU"),
    "residual sum x + relu(-x) - relu(x)": (_residual_cancel, 1, "a skip connection that cancels two units"),
    "two units sharing a bias (sample 1)": (_two_units_one_bias(1.0), 3, "shared bias, the weights still separate the "
                                                                     "units"),
    "two units sharing a bias (sample 0)": (_two_units_one_bias(0.0), 3, "shared bias and a zero input: only the bias "
                                                                     "moves both units"),
    "CReLU pair (relu(z) and relu(-z))": (_crelu, 2, "two units share one pre-activation and its bias, opposite signs"),
    "one unit, two samples at 0": (_batch_of_two((0.0, 0.0), True), 2, "one unit with a bias, two samples on "
                                                                          "its kink"),
    "one unit without bias, samples 1 and -1": (_batch_of_two((1.0, -1.0), False), 1, "one unit without a bias, two "
                                                                                     "samples of opposite sign"),
}


def constructed_programs():
    """(name, f, point) for each of :data:`CONSTRUCTED`, at the origin."""
    return [(name, fn, torch.zeros(d, dtype=torch.float64)) for name, (fn, d, _) in CONSTRUCTED.items()]


def input_space_net(seed: int, width: int = 3, inputs: int = 3):
    """A random two-layer ReLU net in input space, f(x) = v . relu(W2 relu(W1 x + b1) + b2), with integer weights in
    [-2, 2], first-layer biases drawn from {0, 1, 1, -1} (the units with bias 0 are tied at x = 0) and the
    second-layer biases solved so that both second-layer units are tied at x = 0. Returns (f, the origin). About
    half of such nets satisfy LIKQ at the origin: it fails when the tied switches outnumber the directions the
    live first-layer units pass on."""
    rng = np.random.default_rng(seed)
    W1 = torch.tensor(rng.integers(-2, 3, size=(width, inputs)), dtype=torch.float64)
    b1 = torch.tensor(rng.choice([0, 1, 1, -1], size=width), dtype=torch.float64)
    W2 = torch.tensor(rng.integers(-2, 3, size=(2, width)), dtype=torch.float64)
    b2 = -W2 @ torch.relu(b1)
    v = torch.tensor(rng.integers(-2, 3, size=2), dtype=torch.float64)

    def f(x, k):
        return (v * k.relu(W2 @ k.relu(W1 @ x + b1) + b2)).sum()

    return f, torch.zeros(inputs, dtype=torch.float64)


def _case_rows(family: str, case: str, f, x0, alphas, *, piecewise_linear: bool) -> list[dict]:
    """One row per ReLU'(0) = alpha (|.|'(0) = 2 alpha - 1): LIKQ at x0, and AD's distance to the exact set."""
    q = likq(f, x0)
    cs = clarke_set_exact(f, x0, piecewise_linear=piecewise_linear)
    rows = []
    for a in alphas:
        g = ad_gradient(f, x0, relu0=a, abs0=2 * a - 1)
        rows.append({"family": family, "case": case, "alpha": float(a), "likq": q.holds, "active": q.n_active,
                     "rank": q.rank, "trivial": bool(np.all(cs.vertices == 0)),
                     "clarke": _set_text(cs.vertices) if len(cs.vertices) <= 3 else
                     f"hull of {len(cs.vertices)} gradients",
                     "ad": _vector_text(g),
                     "distance": hull_distance(g, cs.vertices) / max(1.0, float(np.abs(g).max()))})
    return rows


#: The three families of the LIKQ test, as the page's tables name them, and as its prose does.
FAMILIES = ("dense nets (one sample)", "two-layer nets in input space", "constructed programs")
_FAMILY_PROSE = {FAMILIES[0]: "kinked points of the dense nets", FAMILIES[1]: "random two-layer nets in input space",
                 FAMILIES[2]: "constructed programs"}


def likq_cases(points: pd.DataFrame, alphas, n_nets: int, seed: int) -> pd.DataFrame:
    """LIKQ and AD's distance to the exact Clarke set for every ReLU'(0) = alpha in ``alphas``, over three
    families: the kinked points of the dense nets (``points``, a :func:`clarke_distances` frame: one sample, every
    unit its own bias), ``n_nets`` random :func:`input_space_net` s (seeds from independent streams of ``seed``) and
    the :data:`CONSTRUCTED` programs. One row per (case, alpha)."""
    dense = points[points.alpha.isin(list(alphas))]
    rows = [{"family": FAMILIES[0], "case": f"point {int(r.point)}", "alpha": float(r.alpha), "likq": bool(r.likq),
             "active": int(r.active), "rank": int(r.rank), "trivial": bool(r.trivial), "clarke": "",
             "ad": "", "distance": float(r.distance)} for r in dense.itertuples()]
    for i, s in enumerate(stream_seeds(seed, n_nets, "abs-smooth-clarke input-space nets")):
        f, x0 = input_space_net(s)
        rows += _case_rows(FAMILIES[1], f"net {i}", f, x0, alphas, piecewise_linear=True)
    for name, f, x0 in constructed_programs():
        rows += _case_rows(FAMILIES[2], name, f, x0, alphas, piecewise_linear=True)
    return pd.DataFrame(rows)


def likq_implies_clarke(cases: pd.DataFrame, alphas, tol: float = 1e-9) -> Verdict:
    """Wherever LIKQ holds at a kinked point, AD with every tested ReLU'(0) = alpha in [0, 1] (|.|'(0) = 2 alpha - 1)
    lies in the exact Clarke set (sup-norm distance <= tol). ``cases`` is a :func:`likq_cases` frame. One group per
    family among the cases where LIKQ holds (holds when AD is inside at every case and alpha); the cases where LIKQ
    fails are reported beside them by the same test, per family (the boundary: there AD can leave), never judged.

    Judged cases have an active kink (a Clarke set {0} is judged too: AD can still leave it, as in
    x + relu(-x) - relu(x)). Preconditions: every alpha was run and lies in [0, 1] (outside it the implication does
    not apply), and at least one case where LIKQ holds.
    """
    criterion = (f"wherever LIKQ holds at a kinked point, AD with ReLU'(0) = "
                 f"{_or_join(format_value(float(a)) for a in alphas)} (|.|'(0) = 2 ReLU'(0) - 1) lies within sup-norm "
                 f"{tol:g} of the exact Clarke set; the cases where LIKQ fails are reported beside it by the same "
                 "test, not judged")
    kinked = cases[cases.active > 0]
    first = kinked.drop_duplicates(["family", "case"])
    holds_q, fails_q = first[first.likq.astype(bool)], first[~first.likq.astype(bool)]
    counts = dict(cases=int(len(cases.drop_duplicates(["family", "case"]))), kinked_cases=int(len(first)),
                  likq_holds=int(len(holds_q)), likq_fails=int(len(fails_q)),
                  trivial_cases=int(first.trivial.astype(bool).sum()))
    bad = [a for a in alphas if not 0 <= float(a) <= 1]
    missing = [a for a in alphas if not (cases.alpha == float(a)).any()]
    if bad or missing:
        why = (f"ReLU'(0) = {_and_join(format_value(float(a)) for a in bad)} lies outside [0, 1], where the "
               "implication does not apply" if bad else
               f"ReLU'(0) = {_and_join(format_value(float(a)) for a in missing)} was not run")
        return Verdict.undecided(criterion, why, **counts)
    tested = kinked[kinked.alpha.isin([float(a) for a in alphas])]

    def family_groups(rows: pd.DataFrame, label: str) -> dict[str, Verdict]:
        out = {}
        for fam in FAMILIES:
            r = rows[rows.family == fam]
            if r.empty:
                continue
            inside = r.distance.to_numpy(float) <= tol
            per_case = r.assign(inside=inside).groupby("case", sort=False).inside.all()
            left = [str(c) for c in per_case.index[~per_case.to_numpy()]]
            out[f"{fam}, {label}"] = Verdict.from_state(bool(inside.all()), cases=int(len(per_case)),
                                                        cases_outside=len(left), max_distance=float(r.distance.max()),
                                                        outside=left[:8])
        return out

    groups = family_groups(tested[tested.likq.astype(bool)], "where LIKQ holds")
    reported = family_groups(tested[~tested.likq.astype(bool)], "where LIKQ fails")
    if not groups:
        return Verdict.undecided(criterion, "LIKQ held at no kinked case: the implication was never tested",
                                 reported=reported, **counts)
    return Verdict.combine(groups, criterion, reported=reported, **counts)


def likq_summary(cases: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Per family and LIKQ state: kinked cases, cases whose Clarke set is {0}, cases where AD left the set for some
    tested ReLU'(0), and the largest distance."""
    k = cases[cases.active > 0].assign(outside=lambda d: d.distance > tol,
                                       LIKQ=lambda d: np.where(d.likq.astype(bool), "holds", "fails"))
    per_case = k.groupby(["family", "LIKQ", "case"], sort=False).agg(trivial=("trivial", "first"),
                                                                       outside=("outside", "any"),
                                                                       distance=("distance", "max"))
    out = per_case.groupby(level=["family", "LIKQ"], sort=False).agg(
        cases=("outside", "size"), **{"with set {0}": ("trivial", "sum"), "AD left the set": ("outside", "sum"),
                                      "largest distance": ("distance", "max")})
    return out


def likq_table(cases: pd.DataFrame, tol: float) -> pd.DataFrame:
    """The constructed programs, one row each: LIKQ (active switches and rank), the exact Clarke set, AD's output
    for each tested ReLU'(0) and whether it is in the set."""
    c = cases[cases.family == FAMILIES[2]]
    rows = []
    for name, r in c.groupby("case", sort=False):
        first = r.iloc[0]
        row = {"program": name, "LIKQ": "holds" if first.likq else "fails",
               "active kinks (rank)": f"{int(first.active)} ({int(first['rank'])})", "Clarke set": first.clarke}
        for a in r.itertuples():
            row[f"AD, ReLU'(0)={a.alpha:g}"] = a.ad + ("" if a.distance <= tol else " (outside)")
        rows.append(row)
    return pd.DataFrame(rows).set_index("program")


def plot_likq(cases: pd.DataFrame, tol: float, floor: float = 1e-18):
    """AD's distance to the exact Clarke set per family, split by whether LIKQ holds, with the tolerance dashed."""
    import seaborn as sns
    from matplotlib.ticker import LogLocator

    k = cases[cases.active > 0]
    shown = k.assign(shown=np.maximum(k.distance, floor), LIKQ=np.where(k.likq.astype(bool), "holds", "fails"))
    fig, ax = plt.subplots(figsize=(8, 4.4))
    sns.stripplot(data=shown, x="family", y="shown", hue="LIKQ", hue_order=["holds", "fails"], order=list(FAMILIES),
                  dodge=True, jitter=0.2, size=4, ax=ax)
    ax.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g}")
    ax.set(yscale="log", xlabel="", ylabel=f"sup-norm distance / max(1, |g|)\n(0 drawn at {floor:g})",
           title="AD outputs against the exact Clarke set, where LIKQ holds and where it fails")
    ax.yaxis.set_major_locator(LogLocator(numticks=8))
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, title="LIKQ")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------- What this PyTorch returns at kinks

def _survey_cases():
    """(operation, input shown, function of a leaf tensor, Clarke set vertices in closed form)."""
    F = torch.nn.functional
    z, nz = 0.0, -0.0
    return [
        ("abs(x)", "x = 0", [z], lambda x: x.abs().sum(), [[-1.0], [1.0]]),
        ("abs(x)", "x = -0.0", [nz], lambda x: x.abs().sum(), [[-1.0], [1.0]]),
        ("relu(x)", "x = 0", [z], lambda x: torch.relu(x).sum(), [[0.0], [1.0]]),
        ("relu(x)", "x = -0.0", [nz], lambda x: torch.relu(x).sum(), [[0.0], [1.0]]),
        ("maximum(x, y)", "x = y = 0", [z, z], lambda x: torch.maximum(x[0], x[1]), [[1.0, 0.0], [0.0, 1.0]]),
        ("minimum(x, y)", "x = y = 0", [z, z], lambda x: torch.minimum(x[0], x[1]), [[1.0, 0.0], [0.0, 1.0]]),
        ("max(x) (full reduction)", "x = (0, 0)", [z, z], lambda x: x.max(), [[1.0, 0.0], [0.0, 1.0]]),
        ("max(x, dim=0).values", "x = (0, 0)", [z, z], lambda x: x.max(dim=0).values, [[1.0, 0.0], [0.0, 1.0]]),
        ("where(x > 0, x, 0)", "x = 0", [z], lambda x: torch.where(x > 0, x, torch.zeros_like(x)).sum(),
         [[0.0], [1.0]]),
        ("hardtanh(x)", "x = 1", [1.0], lambda x: F.hardtanh(x).sum(), [[0.0], [1.0]]),
        ("clamp(x, -1, 1)", "x = 1", [1.0], lambda x: x.clamp(-1, 1).sum(), [[0.0], [1.0]]),
        ("l1_loss(x, 0)", "x = 0", [z], lambda x: F.l1_loss(x, torch.zeros_like(x)), [[-1.0], [1.0]]),
        ("relu(x) - relu(-x)", "x = 0", [z], lambda x: (torch.relu(x) - torch.relu(-x)).sum(), [[1.0]]),
        ("relu(x) - relu(-x)", "x = -0.0", [nz], lambda x: (torch.relu(x) - torch.relu(-x)).sum(), [[1.0]]),
    ]


def kink_survey(tol: float = 1e-12) -> pd.DataFrame:
    """What the installed PyTorch's autograd returns at kinks, against each Clarke set (a live table)."""
    rows = []
    for op, where, values, fn, clarke in _survey_cases():
        g = _torch_autograd(fn, values)
        V = np.array(clarke)
        rows.append({"operation": op, "at": where, "autograd returns": _vector_text(g), "Clarke set": _set_text(V),
                     "in the Clarke set": bool(hull_distance(g, V) <= tol)})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------------------------------- Verdict

def _and_join(items, word: str = "and") -> str:
    """"a", "a and b", "a, b and c" (or with ``word`` "or")."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _or_join(items) -> str:
    return _and_join(items, "or")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _points_text(single: Verdict) -> str:
    m = single.measured
    alphas = [g.removeprefix("alpha=") for g in single.groups if g.startswith("alpha=")]
    tested = f"ReLU'(0) = {_and_join(alphas)}" if alphas else "each tested ReLU'(0)"
    judged = _count(m["judged_points"], "judged kinked point", "judged kinked points") if m["judged_points"] \
        else "no judged kinked point"
    apart = []
    if m["trivial_points"]:
        apart.append(f"{_count(m['trivial_points'], 'point whose', 'points whose')} Clarke set is {{0}} (the loss is "
                     f"identically 0 nearby, so every choice passes, the control too)")
    if m["untied_points"]:
        apart.append(f"{_count(m['untied_points'], 'point', 'points')} without a tied pre-activation")
    return (f"backward AD with {tested} was compared with the exact Clarke set at {judged} of the "
            f"{_count(m['points'], 'point', 'points')} built" + (f"; set apart: {'; '.join(apart)}" if apart else ""))


def _control_text(single: Verdict) -> str:
    m = single.measured
    name = f"the negative control ReLU'(0) = {m['control_alpha']:g}"
    group = single.groups.get(f"control alpha={m['control_alpha']:g}")
    if group is None:
        return f"{name} was not judged, as no point was"
    frac, n = group.measured["fraction_outside"], m["judged_points"]
    at = "at the one judged point" if n == 1 else f"at {frac:.0%} of the {n} judged points"
    if frac == 0:
        return f"{name} never fell outside the Clarke set (" + ("at the one judged point)" if n == 1 else
                                                             f"at {n} judged points)")
    return f"{name} fell outside the Clarke set {at}"


def _batch_text(batch: Verdict) -> str:
    agnostic = {g.measured["alpha"]: g.measured["sup_norm"] for g in batch.groups.values() if "alpha" in g.measured}
    if not agnostic:
        shared = "no shared ReLU'(0) was run"
    elif all(v == 0 for v in agnostic.values()):
        shared = f"AD returned exactly 0 for every shared ReLU'(0) ({_and_join(f'{a:g}' for a in agnostic)})"
    else:
        shared = ("for a shared ReLU'(0), AD returned a vector of sup norm "
                  + _and_join(f"{format_value(v)} at {a:g}" for a, v in agnostic.items()))
    ps = batch.groups["per-sample"].measured["sup_norm"]
    return shared + (f", and a vector of sup norm {format_value(ps)} for the per-sample choice" if ps else
                     ", and exactly 0 for the per-sample choice too")


def _likq_texts(likq_v: Verdict, cases: pd.DataFrame, tol: float) -> dict[str, str]:
    kinked = cases[cases.active > 0].drop_duplicates(["family", "case"])
    dense = kinked[kinked.family == FAMILIES[0]]
    out = {"likq-dense": (f"LIKQ held at {int(dense.likq.astype(bool).sum())} of the "
                          f"{_count(len(dense), 'kinked point', 'kinked points')} of the dense nets"
                          if len(dense) else "no dense-net point had an active kink")}
    held = [(k.removesuffix(", where LIKQ holds"), g) for k, g in likq_v.groups.items()]
    if held:
        out["likq-holds"] = "where LIKQ held, AD's output lay in the Clarke set for every tested ReLU'(0) at " + (
            _and_join(
                f"{g.measured['cases'] - g.measured['cases_outside']} of {g.measured['cases']} {_FAMILY_PROSE[fam]}"
                for fam, g in held))
    else:
        out["likq-holds"] = "LIKQ held at no kinked case, so the implication was not tested"
    failed = [(k.removesuffix(", where LIKQ fails"), g) for k, g in likq_v.reported.items()]
    if failed:
        out["likq-fails"] = ("where LIKQ failed, AD left the Clarke set for some tested ReLU'(0) at " + _and_join(
            f"{g.measured['cases_outside']} of {g.measured['cases']} {_FAMILY_PROSE[fam]}" for fam, g in failed))
        named = [f"“{c}”" for fam, g in failed if fam == FAMILIES[2] for c in g.measured["outside"]]
        stayed = [f"“{c}”" for c, r in cases[(cases.family == FAMILIES[2]) & ~cases.likq.astype(bool)]
                  .groupby("case", sort=False) if (r.distance <= tol).all()]
        out["likq-left"] = ("the constructed programs that left it: " + _and_join(named) if named else
                            "no constructed program left it") + (
            "; those where LIKQ fails and AD stays inside all the same: " + _and_join(stayed) if stayed else "")
    else:
        out["likq-fails"] = "LIKQ failed at no kinked case of this run"
        out["likq-left"] = "no case where LIKQ fails was run"
    fails = cases[(cases.active > 0) & ~cases.likq.astype(bool) & (cases.alpha == 0.5)]
    if len(fails):
        per_case = fails.groupby(["family", "case"], sort=False).distance.max() <= tol
        out["likq-half"] = (f"with ReLU'(0) = 0.5 (|.|'(0) = 0 at every kink), AD stayed inside at "
                            f"{int(per_case.sum())} of the {_count(len(per_case), 'case', 'cases')} where LIKQ fails")
    else:
        out["likq-half"] = "ReLU'(0) = 0.5 was not run where LIKQ fails"
    kl = cases[(cases.family == FAMILIES[2]) & (cases.case == "relu(x) - relu(-x)")]
    out["likq-kl"] = ("for relu(x) - relu(-x) at 0, AD returned " + _and_join(
        f"{r.ad} with ReLU'(0) = {r.alpha:g}" for r in kl.itertuples()) if len(kl) else
        "relu(x) - relu(-x) was not run")
    return out


def page_texts(verdicts: Mapping[str, Verdict], *, survey: pd.DataFrame, cases: pd.DataFrame | None = None,
               tol: float = 1e-9) -> dict[str, str]:
    """The sentences the page glues (as ``cl-<key>``), from the run and its recorded verdicts, each whole; with
    ``cases`` (a :func:`likq_cases` frame) and the verdict ``likq-implies-clarke``, the LIKQ sentences too."""
    single = verdicts["single-sample-clarke"]
    outside = list(dict.fromkeys(survey.loc[~survey["in the Clarke set"], "operation"]))
    texts = {"points": _points_text(single), "control": _control_text(single),
             "batch": _batch_text(verdicts["batch-needs-agnostic-choice"]),
             "survey-out": (f"autograd's output left the Clarke set for {_and_join(outside)}" if outside else
                            "autograd's output stayed in the Clarke set for every operation")}
    if cases is not None and "likq-implies-clarke" in verdicts:
        texts.update(_likq_texts(verdicts["likq-implies-clarke"], cases, tol))
    return texts
