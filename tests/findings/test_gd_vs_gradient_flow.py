"""The finding's experiment code (nets, balanced init, whitened regression) against independent references, and its
five criteria on constructed data: each must be able to come out true, false and inconclusive."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from nslib.findings import gd_vs_gradient_flow as gvg
from nslib.tools import data, flows


def _gaps(rows):
    cols = ["net", "eta", "eta_units0", "eta_units_path", "relative_gap", "diverged", "reference_relative_error",
            "reference_failed"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


def _net_rows(net, gaps_by_units, err=1e-6, failed=None, growth=1.0):
    return [(net, u, u / growth, u, g, not np.isfinite(g), err, failed) for u, g in gaps_by_units]


# ------------------------------------------------------------------------------------------------ experiment code

@pytest.mark.parametrize("name", gvg.NETS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40), (1, 28, 28)])
def test_every_net_builds_for_every_input_shape(name, shape):
    net = gvg.make_paper_net(name, shape, 8, n_classes=10)
    out = net(torch.randn(3, int(np.prod(shape)), dtype=torch.float64))
    assert out.shape == (3, 10)
    has_bias = any(n.endswith("bias") for n, _ in net.named_parameters())
    assert has_bias == (name in ("relu-bias", "lenet"))


def test_the_paper_conv_net_on_mnist_has_the_paper_shapes():
    net = gvg.make_paper_net("conv", (1, 28, 28), 50, n_classes=10)
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(400, 120), (120, 84), (84, 10)]


def test_balanced_init_multiplies_to_a_and_is_balanced():
    A = np.random.default_rng(0).standard_normal((3, 5))
    Ws = gvg.balanced_init(A, depth=4, width=6)
    E = Ws[0]
    for W in Ws[1:]:
        E = W @ E
    np.testing.assert_allclose(E, A, atol=1e-12)
    for lower, upper in zip(Ws[:-1], Ws[1:]):
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-12)
    with pytest.raises(ValueError, match="width = 2"):
        gvg.balanced_init(A, depth=3, width=2)


def test_whitened_regression_optimum_is_least_squares_and_excess_is_the_frobenius_form():
    from sklearn.linear_model import LinearRegression

    X, Y, Phi = gvg.whitened_regression(300, 6, 2, seed=1)
    np.testing.assert_allclose(X.T @ X / len(X), np.eye(6), atol=1e-12)
    np.testing.assert_allclose(LinearRegression(fit_intercept=False).fit(X, Y).coef_, Phi, atol=1e-10)
    W = np.random.default_rng(2).standard_normal((2, 6))
    loss = lambda M: ((X @ M.T - Y) ** 2).sum() / (2 * len(X))
    assert loss(W) - loss(Phi) == pytest.approx(0.5 * ((W - Phi) ** 2).sum(), rel=1e-9)


def test_deep_linear_runs_reach_the_optimum_and_a_large_step_diverges():
    ok = gvg.deep_linear(6, 3, 5, width=5, d_out=1, lr=0.05, steps=1500)
    assert ok.excess.shape[1] == 6 and np.all(ok.final < 1e-10)
    bad = gvg.deep_linear(3, 3, 5, width=5, d_out=1, lr=50.0, steps=50, init_scale=3.0)
    v = gvg.deep_linear_global_min(bad)
    assert v["holds"] is None and "diverged" in v["reason"]


def test_compare_net_on_a_tiny_linear_net_against_the_paper_protocol():
    s = data.load("digits", n_train=40, dtype=torch.float64)
    X, y, shape, nc = s.X_train, s.y_train, s.image_shape, s.n_classes
    run = gvg.compare_net("linear", X, y, shape, nc, width=6, etas=[0.05, 0.2], eta0=0.1, horizon=1.0, rs=[2, 4],
                          rtol=1e-9, curvature_points=2)
    rtab = gvg.r_table([run])
    # the adaptive reference and the finest protocol agree to first order: error(r=4) ~ error(r=2) / 2
    e = dict(zip(rtab.r, rtab.error))
    assert e[4] == pytest.approx(e[2] / 2, rel=0.1) and run.reference_error < e[4] / 100
    gaps = gvg.gap_table([run])
    assert list(gaps.eta) == [0.05, 0.2] and gaps.relative_gap.is_monotonic_increasing
    assert len(run.curvature) == 2 and run.lam_path == run.curvature.lambda_max.max()
    assert run.curvature.lambda_max.iloc[0] == pytest.approx(run.lam0, rel=1e-4)  # checkpoint 0 is theta0
    assert run.gd_distance[0.2] == flows.max_distance(run.gd[0.2], run.reference)


def test_the_authors_setup_runs_their_mlp_and_its_gap_matches_an_independent_finer_gd():
    s = data.load("mnist", n_train=100, n_test=0, dtype=torch.float64)
    X, y = s.X_train, s.y_train
    horizon = 0.02
    (run,) = gvg.run_authors_setup(["linear"], X, y, s.image_shape, s.n_classes, horizon=horizon, rtol=1e-9)
    assert run.n_params == 784 * 50 + 50 * 50 + 50 * 10 and run.eta0 == 0.001  # the paper's 784-50-50-10, no biases
    # independent reference: plain GD at eta0 / 10 written out here, which closes 9/10 of GD(eta0)'s gap to the flow
    net = gvg.make_paper_net("linear", s.image_shape, 50, n_classes=10)
    for step in (run.eta0, run.eta0 / 10):
        model = copy.deepcopy(net)
        for _ in range(round(horizon / step)):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= step * p.grad
        end = torch.cat([p.detach().flatten() for p in model.parameters()])
        if step == run.eta0:
            coarse = end
    assert torch.allclose(coarse, run.protocol[1].thetas[-1], atol=1e-10)  # the same GD and parameter order
    t, d = flows.distances(run.protocol[1], run.reference)
    assert float((coarse - end).norm()) == pytest.approx(0.9 * d[-1], rel=0.05)
    table = gvg.authors_setup_table([run])
    assert table.loc["linear", "ratio"] == pytest.approx(d.max() / run.travelled)
    assert table.loc["linear", "eta0 / (2/lambda)"] == pytest.approx(0.001 * run.lam0 / 2)


def test_authors_setup_texts_compare_with_the_paper_ratio_counting_the_reference_error():
    def table(ratios, rel_error=0.1):  # rel_error: the reference's error over the gap
        r = pd.Series(ratios, dtype=float)
        return pd.DataFrame({"t": 1.0, "eta0 / (2/lambda)": 0.05, "travelled": 1.0, "ratio": r,
                             "ratio, lower bound": r * (1 - rel_error), "ratio, upper bound": r * (1 + rel_error),
                             "reference error / gap": rel_error, "reference gradient evaluations": 100,
                             "reference failed": ""}).rename_axis("net")
    assert gvg.authors_setup_texts(table({"linear": 0.001, "relu": 0.015}))["compare"].startswith(
        "below the paper's 2% for linear, relu")
    mixed = gvg.authors_setup_texts(table({"linear": 0.001, "relu": 0.03}))["compare"]
    assert "below the paper's 2% for linear" in mixed and "at or above it for relu" in mixed
    # 1.5% measured, but the reference's error could make it 2.25%: neither below nor above
    straddles = gvg.authors_setup_texts(table({"relu": 0.015}, rel_error=0.5))
    assert straddles["compare"].startswith("undecided for relu") and straddles["bounds"] == "relu 0.75%-2.25%"
    texts = gvg.authors_setup_texts(table({"relu": float("nan")}))
    assert texts["compare"].startswith("not measured for relu") and texts["ratios"] == "relu n/a"


# ------------------------------------------------------------------------------------------------------- criteria

def test_gd_tracks_gf_true_false_and_inconclusive():
    holds = _gaps(_net_rows("linear", [(0.1, 0.001), (0.5, 0.008), (2.0, 0.5)]))
    v = gvg.gd_tracks_gf(holds)
    assert v["holds"] is True and v.measured["threshold"] == gvg.PAPER_TRACKING_RATIO == 0.02
    assert v.groups["linear"].measured["below_strict_line"] is True
    between = _gaps(_net_rows("relu", [(0.1, 0.001), (0.4, 0.015)]))  # above our 1%, within the paper's 2%
    v = gvg.gd_tracks_gf(between)
    assert v["holds"] is True and v.groups["relu"].measured["below_strict_line"] is False
    assert gvg.gd_tracks_gf(between, threshold=gvg.STRICT_TRACKING_RATIO)["holds"] is False
    fails = _gaps(_net_rows("relu", [(0.1, 0.001), (0.4, 0.03)]))
    assert gvg.gd_tracks_gf(fails)["holds"] is False
    straddles = _gaps(_net_rows("relu", [(0.4, 0.019)], err=0.005))
    v = gvg.gd_tracks_gf(straddles)
    assert v["holds"] is None and "straddles" in v["reason"]
    no_small_step = _gaps(_net_rows("linear", [(1.0, 0.02)]))
    assert "no step size" in gvg.gd_tracks_gf(no_small_step)["reason"]
    diverged = _gaps(_net_rows("relu", [(0.1, 0.001), (0.4, np.inf)]))
    v = gvg.gd_tracks_gf(diverged)
    assert v["holds"] is None and "diverged" in v["reason"]
    only_tanh = _gaps(_net_rows("tanh", [(0.1, 0.5)]))  # non-homogeneous nets are contrast, not judged
    assert gvg.gd_tracks_gf(only_tanh)["holds"] is None


def test_gd_tracks_gf_judges_path_curvature_not_the_initial_one():
    # sharpness grows 10x: units at theta0 are 10x smaller; a gap at 0.8 path units is not judged
    gaps = _gaps(_net_rows("relu", [(0.2, 0.004), (0.8, 0.2)], growth=10.0))
    v = gvg.gd_tracks_gf(gaps)
    assert v["holds"] is True and v["measured"]["theta0_units"]["relu"] == pytest.approx(0.2)


def test_first_order_in_r_true_false_and_inconclusive():
    def rtab(errors, ref=1e-9, net="linear", diverged=False):
        return pd.DataFrame({"net": net, "r": list(errors), "error": list(errors.values()), "reference_error": ref,
                             "diverged": diverged})
    assert gvg.first_order_in_r(rtab({2: 1e-2, 4: 5e-3, 8: 2.5e-3}))["holds"] is True
    assert gvg.first_order_in_r(rtab({2: 1e-2, 4: 7e-3, 8: 5e-3}))["holds"] is False  # slope -0.5
    v = gvg.first_order_in_r(rtab({2: 1e-2, 4: 5e-3}, ref=1e-4))
    assert v["holds"] is None and "not converged" in v["reason"]
    assert gvg.first_order_in_r(rtab({2: 1e-2, 4: 5e-3}, net="relu"))["holds"] is None


def test_departs_beyond_2_over_lambda_true_false_and_inconclusive():
    assert gvg.departs_beyond_2_over_lambda(_gaps(_net_rows("relu", [(1.0, 0.02), (2.0, 0.3)])))["holds"] is True
    diverged = _gaps(_net_rows("relu", [(1.0, 0.02), (2.5, np.inf)]))
    assert gvg.departs_beyond_2_over_lambda(diverged)["holds"] is True
    stays = _gaps(_net_rows("linear", [(1.0, 0.01), (3.0, 0.05)]))
    assert gvg.departs_beyond_2_over_lambda(stays)["holds"] is False
    short = _gaps(_net_rows("linear", [(0.5, 0.01), (1.5, 0.05)]))
    v = gvg.departs_beyond_2_over_lambda(short)
    assert v["holds"] is None and "grid ends" in v["reason"]
    # the audit's seed 41: the grid jumps from 1.4 to 3.5 units, so nothing in (1.4, 3] was tested
    gap_in_grid = _gaps(_net_rows("linear", [(0.7, 0.01), (1.4, 0.05), (3.5, 0.02)]))
    v = gvg.departs_beyond_2_over_lambda(gap_in_grid)
    assert v["holds"] is None and "no step between 1.4 and 3" in v["reason"]
    near_enough = _gaps(_net_rows("linear", [(1.4, 0.05), (2.1, 0.06), (3.5, 0.02)]))
    assert gvg.departs_beyond_2_over_lambda(near_enough)["holds"] is False


def test_curvature_favourable_true_false_and_inconclusive():
    def curv(net, ratios, lam_min=-0.1):
        return pd.DataFrame({"t": np.arange(len(ratios)), "lambda_max": 1.0, "lambda_min": lam_min, "grad_norm": 1.0,
                             "ratio": ratios, "net": net, "homogeneous": net in gvg.HOMOGENEOUS})
    both = pd.concat([curv("linear", [0.5, 0.3]), curv("tanh", [2.0, 1.5])])
    v = gvg.curvature_favourable(both, 1.0)
    assert v["holds"] is True and v["measured"]["contrast"]["tanh"] == 2.0
    assert gvg.curvature_favourable(pd.concat([curv("relu", [0.5, 1.7]), curv("tanh", [2.0])]), 1.0)["holds"] is False
    # homogeneity is the claim's reason: a non-homogeneous net as favourable refutes that reading
    no_contrast = gvg.curvature_favourable(pd.concat([curv("linear", [0.5, 0.3]), curv("tanh", [0.4, 0.2])]), 1.0)
    assert no_contrast["holds"] is False and no_contrast.groups["tanh (not homogeneous)"].state == "does not hold"
    alone = gvg.curvature_favourable(curv("linear", [0.5, 0.3]), 1.0)
    assert alone["holds"] is None and "no non-homogeneous net" in alone["reason"]
    assert gvg.curvature_favourable(curv("relu", [0.5, np.nan], lam_min=np.nan), 1.0)["holds"] is None
    assert gvg.curvature_favourable(curv("tanh", [0.5]), 1.0)["holds"] is None
    critical = curv("relu", [0.5, np.inf]).assign(grad_norm=[1.0, 0.0])
    v = gvg.curvature_favourable(critical, 1.0)
    assert v["holds"] is None and "gradient is exactly 0" in v["reason"]


def test_deep_linear_global_min_true_false_and_inconclusive():
    steps = np.arange(0, 400, 10)

    def run(finals_decay):  # each seed's excess: a / (1 + k) ** p or constant
        ex = np.stack([f(steps) for f in finals_decay], axis=1)
        return gvg.DeepLinearRun(ex, steps, np.ones(len(finals_decay)), 0.1)
    converged = lambda k: 1e-3 * np.exp(-k / 10.0)
    stuck = lambda k: np.full(k.shape, 0.5)
    slow = lambda k: 1.0 / (1 + k / 40.0) ** 3
    assert gvg.deep_linear_global_min(run([converged] * 100))["holds"] is True
    assert gvg.deep_linear_global_min(run([converged] * 98 + [stuck] * 2))["holds"] is False
    v = gvg.deep_linear_global_min(run([converged] * 98 + [slow] * 2))
    assert v["holds"] is None and "still descending" in v["reason"]


def test_the_paper_cost_counts_the_gradients_the_paper_profile_takes():
    """The ``paper_cost`` sentence states gradient counts; they must be the profile's: GD runs horizon / eta steps
    at every step size, the protocol sum(rs) x horizon / eta0 more on each protocol net."""
    import re

    from nslib.runner._notebooks import load_notebook

    info = load_notebook("gd-vs-gradient-flow")
    p = info.resolve("paper")
    gd = sum(round(p["horizon"] / eta) for eta in p["etas"])
    protocol = sum(p["rs"]) * round(p["horizon"] / p["eta0"])
    stated = [int(n.replace(",", "")) for n in re.findall(r"(\d[\d,]*) (?:gradients|for GD|for the eta0/r|for tanh)",
                                                          info.paper_cost)]
    assert stated == [gd + protocol, gd, protocol, gd], info.paper_cost
