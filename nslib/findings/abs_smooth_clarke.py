"""Finding *abs-smooth-clarke* (Baumgärtner & Bethke 2024): does backward AD return Clarke gradients?

The page's experiments (kinked points of dense ReLU nets, the one-neuron batch, the live survey of what
PyTorch returns at kinks), its figure (``plot_*``) and one criterion per claim id:
:func:`single_sample_clarke`, :func:`batch_needs_agnostic_choice`, :func:`kakade_lee_counterexample`.
The Clarke-set machinery itself is :mod:`nslib.tools.clarke`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..tools.clarke import CLOSED_FORMS, ad_gradient, clarke_set_exact, clarke_set_sampled, hull_distance, in_hull
from ..tools.kinks import Kinks
from ..verdicts import Verdict, format_value

__all__ = [
    # experiments
    "batch_choice_case", "batch_choice_table", "clarke_distances", "closed_form_check", "dense_relu_loss",
    "distance_summary", "kakade_lee_case", "kakade_lee_table", "kink_survey", "kinked_point", "n_params",
    "one_neuron_batch", "sampled_vs_exact",
    # figures
    "plot_distances",
    # the page's prose
    "page_texts",
    # criteria, one per claim id
    "batch_needs_agnostic_choice", "kakade_lee_counterexample", "single_sample_clarke",
]


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


def clarke_distances(sizes, ties_per_layer: int, n_points: int, seed: int, alphas) -> pd.DataFrame:
    """For ``n_points`` kinked points (seeds seed, seed + 1, ...): the sup-norm distance, relative to
    max(1, |g|), of AD's output with ReLU'(0) = alpha to the exact Clarke set, for every alpha. One row each;
    ``trivial`` marks points whose Clarke set is {0} (the loss is identically 0 nearby: every choice passes)."""
    rows = []
    for i in range(n_points):
        f, theta = kinked_point(sizes, ties_per_layer, seed + i)
        cs = clarke_set_exact(f, theta)
        for a in alphas:
            g = ad_gradient(f, theta, relu0=a)
            rows.append({"point": i, "alpha": a, "ties": cs.n_ties, "vertices": len(cs.vertices),
                         "trivial": bool(np.all(cs.vertices == 0)),
                         "distance": hull_distance(g, cs.vertices) / max(1.0, float(np.abs(g).max()))})
    return pd.DataFrame(rows)


def single_sample_clarke(points: pd.DataFrame, alphas, control_alpha: float, tol: float = 1e-9) -> Verdict:
    """AD with ReLU'(0) = alpha lies in the exact Clarke set at every judged kinked point for every tested alpha in
    [0, 1] (sup-norm distance <= tol), while the negative control falls outside at one judged point at least.
    ``points`` is a :func:`clarke_distances` frame. One group per tested alpha (holds when inside at every judged
    point) and one for the control (holds when outside at one judged point at least): the claim holds when every
    group does.

    Judged points have a tied pre-activation and a Clarke set other than {0} (where the loss is identically 0
    nearby, every choice passes, the control too: such points are reported apart). Preconditions: at least one
    judged point (else the control cannot fail, and the run cannot decide), and every alpha was run.
    """
    criterion = (f"at every kinked point whose Clarke set is not {{0}}, AD with each ReLU'(0) in {list(alphas)} lies "
                 f"within sup-norm {tol:g} of the exact Clarke set; the control ReLU'(0) = {control_alpha:g} lies "
                 f"outside at >= 1 such point")
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
    groups[f"control alpha={control_alpha:g}"] = Verdict.from_state(
        bool(np.any(c > tol)), fraction_outside=float(np.mean(c > tol)), max_distance=float(c.max()))
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
    f, theta = kinked_point(sizes, ties_per_layer, seed + best)
    exact = clarke_set_exact(f, theta)
    sampled = clarke_set_sampled(f, theta, n=n_samples, radius=radius, seed=seed)
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
    nearby = clarke_set_sampled(one_neuron_batch, theta, n=n_samples, radius=radius, seed=seed)
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

def _and_join(items) -> str:
    """"a", "a and b", "a, b and c"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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


def page_texts(verdicts: Mapping[str, Verdict], *, survey: pd.DataFrame) -> dict[str, str]:
    """The sentences the page glues (as ``cl-<key>``), from the run and its recorded verdicts, each whole."""
    single = verdicts["single-sample-clarke"]
    outside = list(dict.fromkeys(survey.loc[~survey["in the Clarke set"], "operation"]))
    return {"points": _points_text(single), "control": _control_text(single),
            "batch": _batch_text(verdicts["batch-needs-agnostic-choice"]),
            "survey-out": (f"autograd's output left the Clarke set for {_and_join(outside)}" if outside else
                           "autograd's output stayed in the Clarke set for every operation")}
