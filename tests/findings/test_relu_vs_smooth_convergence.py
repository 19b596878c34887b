"""The finding's toy and nets against independent references (scipy, a closed-form Hessian, tools.train run alone),
and its four criteria on constructed data: each must be able to come out true, false and inconclusive."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from nslib.findings import relu_vs_smooth_convergence as rvs
from nslib.tools import data
from nslib.tools.dynamics import StepSizeRuns
from nslib.tools.models import mlp
from nslib.tools.seeds import stream_seed, stream_seeds
from nslib.tools.train import train
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Verdict

# ------------------------------------------------------------------------------------------------------------ toy


def test_page_seeds_share_no_toy_data_and_no_init():
    a, b = rvs.make_toy(3, 20, 4, seed=0), rvs.make_toy(3, 20, 4, seed=1)
    assert not any(torch.equal(a.X[i], b.X[j]) for i in range(3) for j in range(3))
    assert not set(stream_seeds(0, 5, "net-init")) & set(stream_seeds(1, 5, "net-init"))


def test_toy_data_optimum_and_seed_stability():
    toy = rvs.make_toy(3, 50, 4, seed=7)
    assert toy.X.shape == (3, 50, 4) and toy.y.shape == (3, 50) and toy.w0.shape == (3, 4)
    assert (toy.y < 0).all()
    more = rvs.make_toy(5, 50, 4, seed=7)
    assert torch.equal(more.X[:3], toy.X) and torch.equal(more.w0[:3], toy.w0)  # more seeds keep the first ones
    obj, _ = rvs._toy_objective(toy, None)
    # the objective is the gap: 0 at w = 0 (every unit at its kink), and f(w) - mean(y^2)/2 elsewhere
    assert torch.equal(obj(torch.zeros(3, 4, dtype=torch.float64)), torch.zeros(3, dtype=torch.float64))
    w = torch.randn(3, 4, dtype=torch.float64)
    direct = torch.stack([((torch.relu(toy.X[s] @ w[s]) - toy.y[s]) ** 2).mean() / 2 - (toy.y[s] ** 2).mean() / 2
                          for s in range(3)])
    torch.testing.assert_close(obj(w), direct, rtol=0, atol=1e-15)
    assert (obj(w) >= 0).all()


@pytest.mark.parametrize("beta", [1.0, 20.0])
def test_softplus_optimum_against_scipy_and_a_closed_form_hessian(beta):
    from scipy.optimize import minimize

    toy = rvs.make_toy(2, 60, 5, seed=1)
    w_star, f_star, L, mu = rvs.softplus_optimum(toy, beta)
    for s in range(2):
        X, y = toy.X[s].numpy(), toy.y[s].numpy()

        def sp(z):
            return np.logaddexp(0, beta * z) / beta

        def f(w, X=X, y=y):
            return np.mean((sp(X @ w) - y) ** 2) / 2

        def g(w, X=X, y=y):
            z = X @ w
            return X.T @ ((sp(z) - y) / (1 + np.exp(-beta * z))) / len(y)

        ref = minimize(f, np.zeros(5), jac=g, method="BFGS", options={"gtol": 1e-13, "maxiter": 10000})
        assert f_star[s] == pytest.approx(ref.fun, abs=1e-13)
        np.testing.assert_allclose(w_star[s].numpy(), ref.x, atol=1e-5)
        z = X @ w_star[s].numpy()
        sig = 1 / (1 + np.exp(-beta * z))
        weights = sig ** 2 + (sp(z) - y) * beta * sig * (1 - sig)
        ev = np.linalg.eigvalsh(X.T @ (weights[:, None] * X) / len(y))
        assert L[s] == pytest.approx(ev[-1], rel=1e-9) and mu[s] == pytest.approx(ev[0], rel=1e-9)


def test_run_toy_plateau_and_convergence_on_a_small_instance():
    toy = rvs.make_toy(2, 60, 5, seed=0)
    runs = rvs.run_toy(toy, [0.2, 0.05], [2.0], steps=3000, window=400)
    assert runs.lr0 == 0.2  # the diminishing schedule starts from the largest step, whatever the order
    g = runs.relu.late_gap(400)
    assert (g > 1e-3 * np.array([[0.2], [0.05]])).all()  # stalls at a level
    assert (np.abs(runs.softplus[2.0].late_gap(400)) < 1e-10).all()  # converges
    table = rvs.toy_table(runs)
    assert list(table.index) == ["constant eta = 0.2", "constant eta = 0.05", "diminishing eta0 = 0.2"]
    assert "softplus(2) gap" in table.columns


# ------------------------------------------------------------------------------------------------------------ nets


def test_run_nets_members_are_tools_train_runs_and_steps_to_threshold_is_the_first_crossing():
    nets = rvs.run_nets(["digits"], [1], ["relu", "softplus"], [4.0], [0.5, 1.0], 2, n_train=40, width=6,
                        steps=40, threshold=1.0, seed=3)
    s = data.load("digits", n_train=40, seed=stream_seed(3, "split/digits"), n_test=0, dtype=torch.float64)
    X, y = s.X_train, s.y_train
    inits = stream_seeds(3, 2, "net-init")
    for fam, act, beta, lr, s in [("relu", "relu", 1.0, 1.0, 1), ("softplus(4)", "softplus", 4.0, 0.5, 0)]:
        torch.manual_seed(inits[s])
        model = mlp([64, 6, 10], act, beta=beta)
        h = train(model, F.cross_entropy, X.float(), y, lr=lr, steps=40)
        row = nets.summary[(nets.summary.family == fam) & (nets.summary.lr == lr) & (nets.summary.seed == s)]
        crossing = np.flatnonzero(h.frame["loss"].to_numpy() <= 1.0)
        assert row.steps_to_threshold.item() == (crossing[0] if len(crossing) else math.inf)
        assert row.final_loss.item() == pytest.approx(h.final_loss, rel=1e-5)
    assert set(nets.summary.family) == {"relu", "softplus(4)"}
    assert len(rvs.curves_frame(nets)) == 2 * 2 * 41  # two families at their tuned step, two seeds, 41 records


# ------------------------------------------------------------------------------------------------ toy criteria


def _traj(gap, lrs, schedule="constant"):
    L, S, _ = gap.shape
    return StepSizeRuns("t", "sgd", schedule, np.asarray(lrs, float), gap, np.zeros((L, S, 1, 1)),
                      np.full((L, S), -1), np.full((L, S), -1), np.full((L, S), -1))


def _toy_runs(relu_gap_fn, lrs=(0.01, 0.1), steps=4000, window=400, dim_factor=0.01, sp_gap=1e-14,
              L=1.0, mu=0.5):
    lrs = np.asarray(lrs, float)
    k = np.arange(steps + 1)
    relu = np.stack([[relu_gap_fn(lr, k) for _ in range(5)] for lr in lrs])
    dim = (relu[np.argmax(lrs)] * dim_factor)[None]
    sp = np.full((len(lrs), 5, steps + 1), sp_gap)
    sp[..., 0] = 1.0
    curv = {1.0: {"L": np.full(5, L), "mu": np.full(5, mu)}}
    return rvs.ToyRuns(lrs, _traj(relu, lrs), _traj(dim, [lrs.max()], "invsqrt"), {1.0: _traj(sp, lrs)}, curv,
                       window)


def _plateau(lr, k):
    return 0.07 * lr * (1 + 0.1 * (k % 2))  # a 2-cycle around a level linear in eta


def test_toy_gap_plateau_true_false_inconclusive():
    v = rvs.toy_gap_plateau(_toy_runs(_plateau))
    assert v.state == HOLDS and v.measured["seeds_holding"] == 5 and v.measured["slope_median"] == pytest.approx(1.0)
    v = rvs.toy_gap_plateau(_toy_runs(lambda lr, k: 0.07 * lr ** 2 + 0 * k))  # slope 2: not linear in eta
    assert v.state == DOES_NOT_HOLD and v.measured["slope_min"] == pytest.approx(2.0)
    v = rvs.toy_gap_plateau(_toy_runs(lambda lr, k: 1e-6 * lr + 0 * k))  # a level far below eta: converging
    assert v.state == DOES_NOT_HOLD and v.measured["min_gap_over_eta"] == pytest.approx(1e-6)
    v = rvs.toy_gap_plateau(_toy_runs(lambda lr, k: lr * np.exp(-k / 300)))  # still falling: not settled
    assert v.state == INCONCLUSIVE and "not settled" in v.reason and "eta = 0.01 (5 of 5 seeds)" in v.reason


def _betas_runs(L_by_beta, sp_gap_by_beta=None, lrs=(0.01, 0.1), steps=4000, window=400):
    """Toy runs whose softplus part has one beta per entry of ``L_by_beta`` (every seed at that L, mu = L / 2)."""
    runs = _toy_runs(_plateau, lrs=lrs, steps=steps, window=window)
    sp, curv = {}, {}
    for b, L in L_by_beta.items():
        gap = np.full((len(lrs), 5, steps + 1), (sp_gap_by_beta or {}).get(b, 1e-14))
        gap[..., 0] = 1.0
        sp[b], curv[b] = _traj(gap, lrs), {"L": np.full(5, L), "mu": np.full(5, L / 2)}
    return rvs.ToyRuns(runs.lrs, runs.relu, runs.diminishing, sp, curv, window)


def test_toy_smooth_converges_true_false_inconclusive():
    v = rvs.toy_smooth_converges(_toy_runs(_plateau))
    assert v.state == HOLDS and v.groups["softplus(1)"].measured["judged"] == 10
    assert v.groups["softplus(1)"].measured["largest_judged_gap"] == pytest.approx(1e-14)
    v = rvs.toy_smooth_converges(_toy_runs(_plateau, sp_gap=1e-4))  # stuck although it should have converged
    assert v.state == DOES_NOT_HOLD and v.measured["failed"] == 10 and v.groups["softplus(1)"].state == DOES_NOT_HOLD
    v = rvs.toy_smooth_converges(_toy_runs(_plateau, L=100.0))  # every step above 2/L = 0.02 ... but 0.01 below
    assert v.state == HOLDS and v.measured["judged"] == 5
    v = rvs.toy_smooth_converges(_toy_runs(_plateau, L=1000.0))  # no step below 2/L
    assert v.state == INCONCLUSIVE and "no step is below 2/L" in v.reason and "softplus(1)" in v.groups
    v = rvs.toy_smooth_converges(_toy_runs(_plateau, sp_gap=1e-4, mu=1e-7))  # too slow to have converged anyway
    assert v.state == INCONCLUSIVE and "too short" in v.reason and v.measured["too_short"] == 10
    runs = _toy_runs(_plateau)
    runs.softplus[1.0].gap[0, 2, 100:] = np.nan  # one run below 2/L diverged: a diverged solver decides nothing
    v = rvs.toy_smooth_converges(runs)
    assert v.state == INCONCLUSIVE and "diverged" in v.reason and v.measured["diverged"] == 1
    assert v.groups["softplus(1)"].measured["diverged"] == 1


def test_toy_smooth_converges_reports_a_beta_with_no_step_below_2_over_L_apart():
    # beta 20: L = 1000, no step below 2/L; the verdict is decided by beta 1 alone, as before groups
    v = rvs.toy_smooth_converges(_betas_runs({1.0: 1.0, 20.0: 1000.0}))
    assert v.state == HOLDS and set(v.groups) == {"softplus(1)"} and set(v.reported) == {"softplus(20)"}
    assert v.reported["softplus(20)"].state == INCONCLUSIVE and v.reported["softplus(20)"].measured["judged"] == 0
    v = rvs.toy_smooth_converges(_betas_runs({1.0: 1.0, 20.0: 1000.0}, {1.0: 1e-4}))
    assert v.state == DOES_NOT_HOLD and v.groups["softplus(1)"].measured["failed"] == 10
    v = rvs.toy_smooth_converges(_betas_runs({5.0: 500.0, 20.0: 1000.0}))  # no beta has a step below 2/L
    assert v.state == INCONCLUSIVE and set(v.groups) == {"softplus(5)", "softplus(20)"} and not v.reported


def test_toy_diminishing_fixes_true_false_inconclusive():
    v = rvs.toy_diminishing_fixes(_toy_runs(_plateau))
    assert v.state == HOLDS and v.measured["median_ratio"] == pytest.approx(100.0) and v.measured["seeds"] == 5
    v = rvs.toy_diminishing_fixes(_toy_runs(_plateau, dim_factor=0.5))
    assert v.state == DOES_NOT_HOLD and v.measured["median_ratio"] == pytest.approx(2.0, rel=0.05)
    v = rvs.toy_diminishing_fixes(_toy_runs(_plateau, steps=300, window=100))  # sqrt(300) < 20
    assert v.state == INCONCLUSIVE and "too few" in v.reason
    runs = _toy_runs(_plateau)
    runs.diminishing.gap[0, 1, -50:] = np.inf  # the diminishing run from eta0 blew up
    v = rvs.toy_diminishing_fixes(runs)
    assert v.state == INCONCLUSIVE and "diverged" in v.reason


def test_toy_smooth_faster_true_false_inconclusive():
    runs = _toy_runs(_plateau)
    v = rvs.toy_smooth_faster(rvs.relu_toy_stalls(runs), rvs.toy_smooth_converges(runs))
    assert v.state == HOLDS and set(v.groups) == {"ReLU toy stalls", "softplus toy converges"}
    assert v.measured["relu_median_gap_over_eta"] == pytest.approx(0.0735, rel=0.05)
    assert v.measured["softplus_largest_judged_gap"] == pytest.approx(1e-14)
    assert v.measured["steps_compared"] and set(v.measured["steps_compared"]) <= {float(x) for x in runs.lrs}
    # both toys hold, but on no common step (a smooth verdict with no judged step): not a comparison at the same steps
    plateau, smooth = rvs.relu_toy_stalls(runs), rvs.toy_smooth_converges(runs)
    for g in smooth.groups.values():
        g.measured["judged_lrs"] = []
    v = rvs.toy_smooth_faster(plateau, smooth)
    assert v.state == INCONCLUSIVE and "no step was judged for both" in v.reason
    converging = _toy_runs(lambda lr, k: 1e-6 * lr + 0 * k)  # the ReLU toy converges too: not slower
    v = rvs.toy_smooth_faster(rvs.relu_toy_stalls(converging), rvs.toy_smooth_converges(converging))
    assert v.state == DOES_NOT_HOLD and v.groups["ReLU toy stalls"].state == DOES_NOT_HOLD
    stuck = _toy_runs(_plateau, sp_gap=1e-4)  # the smooth toy fails to converge
    v = rvs.toy_smooth_faster(rvs.relu_toy_stalls(stuck), rvs.toy_smooth_converges(stuck))
    assert v.state == DOES_NOT_HOLD and v.groups["softplus toy converges"].state == DOES_NOT_HOLD
    # a ReLU toy that stalls with a plateau slope outside [0.7, 1.3] is still slower: toy-gap-plateau fails, this holds
    steep = _toy_runs(lambda lr, k: 0.5 * lr ** 0.5 + 0 * k)
    assert rvs.toy_gap_plateau(steep).state == DOES_NOT_HOLD
    v = rvs.toy_smooth_faster(rvs.relu_toy_stalls(steep), rvs.toy_smooth_converges(steep))
    assert v.state == HOLDS and v.groups["ReLU toy stalls"].measured["seeds_stalling"] == \
        v.groups["ReLU toy stalls"].measured["seeds"]
    falling = _toy_runs(lambda lr, k: lr * np.exp(-k / 300))  # the ReLU toy has not settled
    v = rvs.toy_smooth_faster(rvs.relu_toy_stalls(falling), rvs.toy_smooth_converges(falling))
    assert v.state == INCONCLUSIVE and "not settled" in v.reason


def test_toy_criteria_hold_many_seeds_as_scalars():
    """More seeds than a measured list may hold: the seeds' slopes and ratios are kept as their range and median."""
    lrs, steps = np.array([0.01, 0.1]), 1000
    k = np.arange(steps + 1)
    relu = np.stack([[_plateau(lr, k) for _ in range(100)] for lr in lrs])
    runs = rvs.ToyRuns(lrs, _traj(relu, lrs), _traj(relu[1:] * 0.01, [0.1], "invsqrt"), {}, {}, 200)
    assert rvs.toy_gap_plateau(runs).measured["seeds"] == 100
    assert rvs.toy_diminishing_fixes(runs).measured["ratio_max"] == pytest.approx(100.0)


# ----------------------------------------------------------------------------------------------- nets criterion


def _nets(steps_by_family, lrs=(0.5, 1.0, 2.0), best_lr=1.0, datasets=("digits",)):
    """Each family: per-seed steps at ``best_lr``; other steps of the grid are slower (so ``best_lr`` is tuned)."""
    rows = []
    for ds in datasets:
        for fam, seeds in steps_by_family.items():
            tuned = best_lr[fam] if isinstance(best_lr, dict) else best_lr
            for lr in lrs:
                for s, st in enumerate(seeds):
                    rows.append({"dataset": ds, "depth": 1, "family": fam, "beta": 1.0, "lr": lr, "seed": s,
                                 "steps_to_threshold": st if lr == tuned else st + 50, "final_loss": 0.01,
                                 "diverged": False})
    return rvs.NetRuns(pd.DataFrame(), pd.DataFrame(rows), 0.1, 300, list(lrs))


def test_nets_smooth_faster_true_false_inconclusive():
    relu = [100, 110, 120, 130, 140]
    v = rvs.nets_smooth_faster(_nets({"relu": relu, "gelu": [90, 100, 110, 120, 130]}))
    g = v.groups["digits gelu"].measured
    assert v.state == HOLDS
    assert g["median_ratio"] == pytest.approx(np.median(np.divide(relu, [90, 100, 110, 120, 130])))
    assert g["ci_low"] > 1 and v.measured["faster"] == ["digits gelu"]
    # 3 of 5 faster, 2 slower: the interval spans 1, so it is undecided (the old rule called it a loss)
    v = rvs.nets_smooth_faster(_nets({"relu": relu, "gelu": [90, 100, 110, 135, 150]}))
    assert v.state == INCONCLUSIVE and "contains 1" in v.reason
    v = rvs.nets_smooth_faster(_nets({"relu": relu, "gelu": [90, 100, 110, 120, 130], "silu": [150] * 5}))
    assert v.state == DOES_NOT_HOLD and v.groups["digits silu"].state == DOES_NOT_HOLD
    assert v.measured["slower"] == ["digits silu"] and v.measured["faster"] == ["digits gelu"]
    # the smooth net wins, but ReLU (the slower side) was tuned at the largest step: a larger step might reverse it
    v = rvs.nets_smooth_faster(_nets({"relu": relu, "gelu": [90, 100, 110, 120, 130]},
                                     best_lr={"relu": 2.0, "gelu": 1.0}))
    assert v.state == INCONCLUSIVE and "extend lrs upward" in v.groups["digits gelu"].reason
    # neither side reaches the threshold: undecided pairs
    v = rvs.nets_smooth_faster(_nets({"relu": [math.inf] * 5, "gelu": [math.inf] * 4 + [100]}))
    assert v.state == INCONCLUSIVE and "reached the loss threshold" in v.reason
    # a smooth net that reaches the threshold where ReLU never does is faster (ratio inf), not undecided
    v = rvs.nets_smooth_faster(_nets({"relu": [math.inf] * 5, "gelu": [90, 100, 110, 120, 130]}))
    assert v.state == HOLDS and v.groups["digits gelu"].measured["median_ratio_nonfinite"] == "inf"


def test_nets_smooth_faster_per_family_and_a_tie_is_a_tie():
    v = rvs.nets_smooth_faster(_nets({"relu": [100] * 5, "gelu": [100] * 5}, datasets=("digits", "mnist1d")))
    assert v.state == INCONCLUSIVE and set(v.groups) == {"digits gelu", "mnist1d gelu"}
    assert v.groups["mnist1d gelu"].measured["median_ratio"] == 1.0 and "contains 1" in v.groups["mnist1d gelu"].reason


def test_effect_size_interval_matches_scipy_bootstrap():
    """The percentile interval of the median against scipy.stats.bootstrap (other random draws: close, not equal)."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(5)
    relu = rng.integers(80, 200, 40).astype(float)
    smooth = rng.integers(70, 180, 40).astype(float)
    eff = rvs.effect_sizes(_nets({"relu": list(relu), "gelu": list(smooth)}), resamples=4000).iloc[0]
    ref = bootstrap((relu / smooth,), np.median, n_resamples=4000, method="percentile", random_state=1)
    assert eff["median ratio"] == pytest.approx(np.median(relu / smooth))
    assert eff["ci low"] == pytest.approx(ref.confidence_interval.low, abs=0.03)
    assert eff["ci high"] == pytest.approx(ref.confidence_interval.high, abs=0.03)


def test_nets_smooth_faster_is_inconclusive_when_every_net_diverged():
    runs = _nets({"relu": [100] * 5, "gelu": [90] * 5})
    runs.summary["diverged"] = True
    v = rvs.nets_smooth_faster(runs)
    assert v.state == INCONCLUSIVE and "did not both train" in v.reason and not v.groups


# ------------------------------------------------------------------------------------------------ figures and prose


def test_plot_steps_vs_beta_when_every_net_diverged_or_never_reached_the_threshold():
    import matplotlib.pyplot as plt

    runs = _nets({"relu": [math.inf] * 3, "softplus(4)": [math.inf] * 3, "gelu": [math.inf] * 3})
    plt.close(rvs.plot_steps_vs_beta(runs))  # nothing finite to log-scale
    runs.summary["diverged"] = True  # nothing tuned at all
    fig = rvs.plot_steps_vs_beta(runs)
    assert len(fig.axes) == 1
    plt.close(fig)
    plt.close(rvs.plot_effect_sizes(rvs.effect_sizes(runs)))
    assert rvs.steps_table(runs).empty and rvs.final_loss_table(runs).empty
    runs.frame = runs.summary.assign(step=0, loss=math.inf)[["dataset", "depth", "family", "beta", "lr", "seed", "step",
                                                              "loss"]]
    fig = rvs.plot_net_curves(runs)
    assert fig.axes[0].texts[0].get_text() == "every step diverged"
    plt.close(fig)


def _page(toy_v, nets):
    toy = _toy_runs(_plateau)
    smooth = rvs.toy_smooth_converges(toy)
    return rvs.page_texts({"toy-gap-plateau": toy_v, "toy-smooth-converges": smooth,
                           "toy-smooth-faster": rvs.toy_smooth_faster(toy_v, smooth),
                           "toy-diminishing-fixes": rvs.toy_diminishing_fixes(toy),
                           "nets-smooth-faster": rvs.nets_smooth_faster(nets)}, toy=toy, nets=nets, device="cuda:0")


def test_page_texts_are_whole_sentences_in_every_state():
    nets = _nets({"relu": [100, 110, 120, 130, 140], "gelu": [90, 100, 110, 120, 130]})
    nets.meta = {"n_train": 256, "width": 32}
    t = _page(rvs.toy_gap_plateau(_toy_runs(_plateau)), nets)
    assert t["plateau"].startswith("the late mean gap is 0.07") and "across the 5 seeds" in t["plateau"]
    assert t["softplus-gap"] == "the largest judged late gap to a softplus optimum was 1.0e-14, at softplus(1)"
    assert t["dim"] == "the late gap of η0/√(k+1) is 100 times smaller than the constant step's (median over seeds)"
    assert t["nets-faster"] == "digits gelu" and t["nets-slower"] == "none"
    assert t["nets-effects"] == "digits gelu 1.09 [1.08, 1.11]"
    assert t["nets-median"] == "digits depth 1: ReLU 120 steps; faster in median: gelu"
    assert t["tuned-lrs"] == "the one tuned step used was 1"
    assert t["smooth-faster"].startswith("holds there: the ReLU toy never gets below a late gap of 0.0007")
    assert t["nets-reading"].startswith("every smooth family tested was faster")
    assert t["scale"] == ("Nets of width 32 on 256 samples, full-batch GD for 300 steps, float32 on a CUDA GPU; the "
                          "loss threshold 0.1 is ours")
    # a diverged toy, and nets that all diverged: still whole sentences, no "n/a" or "nan"
    diverged = Verdict.undecided("c", "a ReLU toy run diverged", diverged_lrs=[0.1])
    nets.summary["diverged"] = True
    t = _page(diverged, nets)
    assert t["plateau"] == "a ReLU toy run diverged at η = 0.1, so no plateau was measured"
    assert t["nets-median"] == "no net trained without diverging at some step of the grid"
    assert t["tuned-lrs"] == "no step was tuned: every step of the grid diverged"
    assert t["nets-effects"].startswith("none")
    assert t["smooth-faster"].startswith("is inconclusive there (ReLU toy stalls: a ReLU toy run diverged")
    slower = _nets({"relu": [100, 110, 120, 130, 140], "silu": [150] * 5})
    slower.meta = nets.meta
    toy = _toy_runs(_plateau)
    assert "marks a boundary of the book's extension" in rvs.page_texts(
        {"toy-gap-plateau": diverged, "toy-smooth-converges": rvs.toy_smooth_converges(toy),
         "toy-diminishing-fixes": rvs.toy_diminishing_fixes(toy), "nets-smooth-faster": rvs.nets_smooth_faster(slower)},
        toy=toy, nets=slower, device="cpu")["nets-reading"]
    for text in t.values():
        assert "n/a" not in text and "nan" not in text and "None" not in text and text.strip() == text
