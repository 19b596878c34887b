"""The finding's run reduction (run_metrics) on constructed runs whose numbers are known, its nets and losses against
direct computations, and its five criteria on constructed data: each must be able to come out true, false and
inconclusive."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from nslib.findings import edge_of_stability_networks as eos
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Verdict


def _run(sharp_units, losses, *, eta=0.2, loss="mse", every=10, accuracy=None, family="relu", diverged=None):
    checks = np.arange(len(sharp_units)) * every
    return eos.GDRun(
        dataset="digits",
        loss=loss,
        family=family,
        eta=eta,
        losses=np.asarray(losses, float),
        checks=checks,
        sharpness=np.asarray(sharp_units, float) * 2 / eta,
        accuracy=np.asarray(accuracy if accuracy is not None else [0.5] * len(checks), float),
        diverged_at=diverged,
        final_theta=torch.zeros(1),
        products=0,
    )


def _eos_losses(n, start=1.0, end=0.3, wiggle=0.02):
    """A loss that falls geometrically from ``start`` to ``end`` over n + 1 steps, rising at every other step."""
    base = start * (end / start) ** (np.arange(n + 1) / n)
    return base * (1 + wiggle * (np.arange(n + 1) % 2))


def _summary(rows):
    """Rows of run_metrics' keys, with defaults for a typical run at the edge."""
    base = {
        "dataset": "digits",
        "loss": "mse",
        "eta": 0.2,
        "diverged": False,
        "s0": 0.3,
        "loss_start": 1.0,
        "loss_end": 0.05,
        "rise": 3.0,
        "crossed_step": 100,
        "window_checks": 40,
        "window_steps": 400,
        "band_fraction": 0.95,
        "median_units": 1.02,
        "uptick_fraction": 0.3,
        "block_decreases": 4,
        "blocks": 5,
        "end_over_start": 0.4,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def _families(**overrides):
    """Two runs per family (relu, tanh, elu), each with the overrides given for that family."""
    return _summary([{"family": fam, **overrides.get(fam, {})} for fam in ("relu", "tanh", "elu") for _ in range(2)])


# ------------------------------------------------------------------------------------------------ experiment code


def test_families_expand_softplus_per_beta_in_a_fixed_order():
    assert eos.families(["elu", "softplus", "relu"], [3.0, 20]) == ["relu", "softplus(3)", "softplus(20)", "elu"]
    with pytest.raises(ValueError, match="gelu"):
        eos.families(["gelu"], [])


def test_every_family_starts_from_the_same_weights_and_only_the_activation_differs():
    nets = {fam: eos.make_family_net(fam, 8, 5, depth=2, n_classes=3, seed=4) for fam in ("relu", "softplus(7)",
                                     "tanh")}
    params = [torch.cat([p.flatten() for p in n.parameters()]) for n in nets.values()]
    assert all(torch.equal(params[0], p) for p in params[1:])
    x = torch.randn(4, 8, dtype=torch.float64)
    h = nets["softplus(7)"][0](x)
    torch.testing.assert_close(nets["softplus(7)"][1](h), F.softplus(h, beta=7.0))


def test_square_loss_is_half_the_mean_squared_distance_to_one_hot():
    out, y = torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0])
    expected = sum(0.5 * float(((out[i] - torch.eye(3, dtype=torch.float64)[y[i]]) ** 2).sum()) for i in range(5)) / 5
    assert float(eos.loss_function("mse", 3)(out, y)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="hinge"):
        eos.loss_function("hinge", 3)


def test_run_gd_records_the_loss_before_each_step_and_the_dense_sharpness():
    from nslib.tools.curvature import hessian
    from nslib.tools.models import flat_loss

    torch.manual_seed(0)
    X, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 3, (30,))
    f, theta0 = flat_loss(eos.make_family_net("tanh", 4, 6, depth=1, n_classes=3), eos.loss_function("mse", 3), X, y)
    run = eos.run_gd(f, theta0, 0.1, 20, sharpness_every=10, labels=y, tol=1e-10)
    theta = theta0.clone()
    for _ in range(10):
        theta = theta - 0.1 * torch.func.grad(f)(theta)
    assert run.losses[10] == pytest.approx(float(f(theta)), rel=1e-12)
    assert list(run.checks) == [0, 10, 20] and len(run.losses) == 21
    assert run.sharpness[1] == pytest.approx(float(torch.linalg.eigvalsh(hessian(f, theta))[-1]), rel=1e-8)


def test_run_gd_records_divergence_as_a_result():
    from nslib.tools.models import flat_loss

    torch.manual_seed(0)
    X, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 3, (30,))
    f, theta0 = flat_loss(eos.make_family_net("relu", 4, 6, depth=1, n_classes=3), eos.loss_function("mse", 3), X, y)
    run = eos.run_gd(f, theta0, 50.0, 200, sharpness_every=10, labels=y)
    assert run.diverged_at is not None and run.diverged_at < 200
    assert eos.run_metrics(run)["diverged"]


def test_run_metrics_reads_crossing_window_band_and_upticks():
    units = [0.3, 0.5, 0.7, 0.95, 1.1, 1.0, 1.4, 1.05, 1.0, 0.99, 1.02]  # crosses 0.9 at check 3 (step 30)
    run = _run(units, _eos_losses(100))
    m = eos.run_metrics(run)
    assert m["s0"] == pytest.approx(0.3)
    assert m["rise"] == pytest.approx(0.95 / 0.3)
    assert m["crossed_step"] == 30 and m["window"] == [30, 100] and m["window_checks"] == 8
    assert m["band_fraction"] == pytest.approx(7 / 8)  # 1.4 is outside [0.8, 1.3]
    assert m["uptick_fraction"] == pytest.approx(np.mean(np.diff(run.losses[30:101]) > 0))
    assert m["block_decreases"] == 4 and m["end_over_start"] < 0.9


def test_run_metrics_ends_the_cross_entropy_window_at_99_percent_accuracy():
    units = [0.2, 0.5, 0.95, 1.0, 1.0, 0.6, 0.3]
    acc = [0.1, 0.5, 0.8, 0.95, 0.99, 1.0, 1.0]
    m = eos.run_metrics(_run(units, _eos_losses(60), loss="ce", accuracy=acc))
    assert m["window"] == [20, 40] and m["window_checks"] == 3 and m["band_fraction"] == 1.0


def test_run_metrics_counts_missing_sharpness():
    m = eos.run_metrics(_run([0.3, np.nan, 0.95, 1.0], _eos_losses(30)))
    assert m["lanczos_failures"] == 1


def test_run_metrics_without_a_crossing_has_an_empty_window():
    m = eos.run_metrics(_run([0.2, 0.3, 0.5], _eos_losses(20)))
    assert m["crossed_step"] is None and m["window_checks"] == 0 and m["rise"] == pytest.approx(2.5)


# ------------------------------------------------------------------------------------------------------- criteria


def test_progressive_sharpening_holds_fails_and_is_inconclusive():
    v = eos.progressive_sharpening(_families(relu={"rise": 2.0}))
    assert v.state == HOLDS and list(v.groups) == ["relu mse", "tanh mse", "elu mse"]
    g = v.groups["relu mse"]
    assert g.measured["median_rise"] == 2.0 and g.measured["passed"] == g.measured["decided"] == 2
    assert g.measured["family"] == "relu" and g.measured["loss"] == "mse" and g.measured["excluded"] == 0
    flat = eos.progressive_sharpening(_families(tanh={"rise": 1.1, "crossed_step": None, "loss_end": 0.05}))
    assert flat.state == DOES_NOT_HOLD and flat.groups["tanh mse"].state == DOES_NOT_HOLD
    near = eos.progressive_sharpening(_families(elu={"s0": 0.8}))  # no room below the edge: excluded, not failed
    assert near.state == INCONCLUSIVE and "elu mse: no decided run" in near.reason
    assert near.groups["elu mse"].measured["excluded"] == 2
    assert near.groups["elu mse"].measured["excluded_reasons"] == ["2 x starts too close to the edge"]
    # square loss and cross-entropy are judged apart: a family can hold with one and not the other
    both = pd.concat([_families(), _families(tanh={"rise": 1.1, "crossed_step": None}).assign(loss="ce")])
    apart = eos.progressive_sharpening(both)
    assert apart.groups["tanh mse"].state == HOLDS and apart.groups["tanh ce"].state == DOES_NOT_HOLD
    short = eos.progressive_sharpening(_families(relu={"rise": 1.1, "crossed_step": None, "loss_end": 0.9}))
    assert short.state == INCONCLUSIVE and "too short to tell" in short.reason
    assert eos.progressive_sharpening(_families().iloc[:0]).reason == "no run was made"


def test_hovers_holds_fails_and_is_inconclusive():
    v = eos.hovers_at_2_over_eta(_families())
    assert v.state == HOLDS and v.groups["tanh mse"].measured["median_band_fraction"] == 0.95
    assert v.groups["tanh mse"].measured["median_units"] == 1.02
    assert eos.hovers_at_2_over_eta(_families(relu={"band_fraction": 0.5})).state == DOES_NOT_HOLD
    never = eos.hovers_at_2_over_eta(_families(tanh={"crossed_step": None, "window_checks": 0}))
    assert never.state == INCONCLUSIVE and "never reached the edge" in never.reason
    mixed = _summary([{"family": "relu", "band_fraction": b} for b in (0.95, 0.5)])
    # 1 of 2 pass: 2 more passing (3 of 4) or 2 more failing (1 of 4) decided runs would settle it
    reason = eos.hovers_at_2_over_eta(mixed).reason
    assert "mixed: 1 of 2 decided runs pass; 2 more passing or 2 more failing" in reason
    # a run with a missing sharpness (Lanczos failed) is left out, never counted against the claim
    failed = eos.hovers_at_2_over_eta(_families(tanh={"band_fraction": 0.5, "lanczos_failures": 1}))
    assert failed.state == INCONCLUSIVE and "Lanczos did not converge" in failed.reason


def test_loss_nonmonotone_yet_decreasing_holds_fails_and_is_inconclusive():
    v = eos.loss_nonmonotone_yet_decreasing(_families())
    assert v.state == HOLDS and v.groups["elu mse"].measured["median_uptick_fraction"] == 0.3
    assert eos.loss_nonmonotone_yet_decreasing(_families(elu={"uptick_fraction": 0.0})).state == DOES_NOT_HOLD
    assert eos.loss_nonmonotone_yet_decreasing(
        _families(elu={"end_over_start": 1.2, "block_decreases": 1})).state == DOES_NOT_HOLD
    short = eos.loss_nonmonotone_yet_decreasing(_families(tanh={"window_steps": 5}))
    assert short.state == INCONCLUSIVE and "window too short" in short.reason


def _eos_verdicts(relu, smooth, loss="mse"):
    """Three claims, each judged per (family, loss): relu's states and the smooth families'."""
    def group(fam, holds):
        m = {"family": fam, "loss": loss}
        return Verdict.decided(holds, "c", **m) if holds is not None else Verdict.undecided("c", "mixed", **m)

    return {
        cid: Verdict.combine({f"{fam} {loss}": group(fam, states[i])
                              for fam, states in {"relu": relu, **smooth}.items()}, "criterion")
        for i, cid in enumerate(["progressive-sharpening", "hovers-at-2-over-eta", "loss-nonmonotone-yet-decreasing"])
    }


def test_relu_differs_holds_fails_and_is_inconclusive():
    same = eos.relu_differs_from_smooth(_eos_verdicts((True, True, True), {"tanh": (True,) * 3, "elu": (True,) * 3}))
    assert same.state == DOES_NOT_HOLD and list(same.groups) == ["ReLU against the C^2 families"]
    assert set(same.reported) == {"progressive-sharpening (mse)", "hovers-at-2-over-eta (mse)",
                                  "loss-nonmonotone-yet-decreasing (mse)"}
    assert all(c.state == DOES_NOT_HOLD for c in same.reported.values())  # ReLU agrees everywhere
    assert same.measured["differs_on"] == [] and same.groups["ReLU against the C^2 families"].measured["compared"] == 3
    differs = eos.relu_differs_from_smooth(
        _eos_verdicts((True, False, True), {"tanh": (True,) * 3, "elu": (True,) * 3}))
    assert differs.state == HOLDS and differs.measured["differs_on"] == ["hovers-at-2-over-eta (mse)"]
    hovers = differs.reported["hovers-at-2-over-eta (mse)"]
    assert hovers.state == HOLDS and hovers.measured["relu"] == DOES_NOT_HOLD and hovers.measured["tanh"] == HOLDS
    split = eos.relu_differs_from_smooth(
        _eos_verdicts((True, True, True), {"tanh": (True, False, True), "softplus(3)": (True,) * 3}))
    assert split.state == INCONCLUSIVE and "the smooth families disagree" in split.reason
    assert split.reported["hovers-at-2-over-eta (mse)"].state == INCONCLUSIVE
    # ELU is C^1, not C^2: it is shown apart and never decides "ReLU against smooth"
    elu_apart = eos.relu_differs_from_smooth(
        _eos_verdicts((True, True, True), {"tanh": (True,) * 3, "elu": (True, False, True)}))
    assert elu_apart.state == DOES_NOT_HOLD
    assert elu_apart.reported["hovers-at-2-over-eta (mse)"].measured["elu (C1)"] == DOES_NOT_HOLD
    undecided = eos.relu_differs_from_smooth(
        _eos_verdicts((True, None, True), {"tanh": (True,) * 3, "elu": (True,) * 3}))
    assert undecided.state == INCONCLUSIVE and "inconclusive for relu" in undecided.reason
    # each loss compared on its own: ReLU agrees with the smooth nets under MSE and differs under cross-entropy
    ce = _eos_verdicts((True, True, False), {"tanh": (True,) * 3}, loss="ce")
    mse = _eos_verdicts((True,) * 3, {"tanh": (True,) * 3})
    both = {cid: Verdict.combine({**mse[cid].groups, **ce[cid].groups}, "c") for cid in mse}
    v = eos.relu_differs_from_smooth(both)
    assert v.state == HOLDS and v.measured["differs_on"] == ["loss-nonmonotone-yet-decreasing (ce)"]
    no_relu = eos.relu_differs_from_smooth(_eos_verdicts((True,) * 3, {"tanh": (True,) * 3}) | {
        "progressive-sharpening": Verdict.combine({"tanh mse": Verdict.decided(True, "", family="tanh", loss="mse")},
                                                  "c")})
    assert no_relu.state == INCONCLUSIVE and "progressive-sharpening (mse): no ReLU run" in no_relu.reason


def _cf_table(relu_cf=0.07, relu_gf=0.08, relu_edge=True, smooth=(0.05, 0.06), cf_failed="", edge_fraction=1.0,
              errors=(0.001, 0.001), etas=(0.2, 0.3)):
    """The same rows at every step size of ``etas``."""
    rows = [
        {
            "family": "relu",
            "eta": 0.2,
            "gd_diverged": False,
            "cf_reached_edge": relu_edge,
            "cf_late_edge_fraction": edge_fraction,
            "cf_relative_error": errors[0],
            "gf_relative_error": errors[1],
            "cf_late_relative_distance": relu_cf,
            "gf_late_relative_distance": relu_gf,
            "cf_failed": cf_failed,
            "gf_failed": "",
        }
    ]
    rows += [
        {
            "family": fam,
            "eta": 0.2,
            "gd_diverged": False,
            "cf_reached_edge": True,
            "cf_late_edge_fraction": 1.0,
            "cf_relative_error": float("nan"),
            "gf_relative_error": float("nan"),
            "cf_late_relative_distance": d,
            "gf_late_relative_distance": 2 * d,
            "cf_failed": "",
            "gf_failed": "",
        }
        for fam, d in zip(("tanh", "softplus(3)", "elu"), smooth)
    ]
    return pd.concat([pd.DataFrame(rows).assign(eta=eta) for eta in etas], ignore_index=True)


def test_central_flow_tracks_relu_holds_fails_and_is_inconclusive():
    ok = eos.central_flow_tracks_relu(_cf_table())
    assert ok.state == HOLDS and list(ok.groups) == ["eta=0.2", "eta=0.3"]
    g = ok.groups["eta=0.2"]
    assert g.measured["ratio_to_smooth"] == pytest.approx(0.07 / 0.055) and g.measured["relu_cf"] == 0.07
    assert g.measured["smooth_families"] == ["tanh", "softplus(3)"] and g.measured["smooth_cf"] == [0.05, 0.06]
    assert ok.to_json()["measured"]["per_group"]["eta=0.2"]["ratio_to_smooth"] == pytest.approx(0.07 / 0.055)
    assert eos.central_flow_tracks_relu(_cf_table(relu_cf=0.2))["holds"] is False  # more than twice the smooth median
    assert (
        eos.central_flow_tracks_relu(_cf_table(relu_cf=0.07, relu_gf=0.06))["holds"] is False
    )  # no better than the gradient flow
    flat = eos.central_flow_tracks_relu(_cf_table(relu_edge=False))
    assert flat["holds"] is None and "never reached the edge" in flat["reason"]
    failed = eos.central_flow_tracks_relu(_cf_table(cf_failed="Lanczos did not converge"))
    assert failed["holds"] is None and "no central flow" in failed["reason"]
    late = eos.central_flow_tracks_relu(_cf_table(edge_fraction=0.2))  # mostly the gradient flow: nothing to test
    assert late["holds"] is None and "only 20% of the late window" in late["reason"]
    close = eos.central_flow_tracks_relu(_cf_table(errors=(0.006, 0.006)))  # 0.07 vs 0.08 within the flows' errors
    assert close["holds"] is None and "errors straddle" in close["reason"]
    unchecked = eos.central_flow_tracks_relu(_cf_table(errors=(float("nan"), 0.001)))
    assert unchecked["holds"] is None and "not self-checked" in unchecked["reason"]
    with_elu = eos.central_flow_tracks_relu(_cf_table(smooth=(0.05, 0.06, 1.0)))  # ELU (C^1) far off: not in the median
    assert with_elu.state == HOLDS and with_elu.groups["eta=0.2"].measured["c1_cf"] == [1.0]
    assert with_elu.groups["eta=0.2"].measured["c1_families"] == ["elu"]
    assert [eos.smoothness(f) for f in ("relu", "elu", "tanh", "softplus(20)")] == ["kinked", "C1", "C2", "C2"]
    one = eos.central_flow_tracks_relu(_cf_table(etas=(0.2,)))  # one step size cannot stand for all
    assert one.state == INCONCLUSIVE and "1 step size(s) run" in one.reason
    assert one.groups["eta=0.2"].state == HOLDS and one.groups["step sizes"].state == INCONCLUSIVE
    assert eos.central_flow_tracks_relu(_cf_table().iloc[:0]).reason == "the central flow was not run"


def _page_texts(verdicts, cf_table, crosscheck=None, n_runs=12):
    crosscheck = pd.DataFrame({"relative difference": [1e-6, 3e-6]}) if crosscheck is None else crosscheck
    return eos.page_texts(verdicts, fams=["relu", "tanh"], runs=[None] * n_runs, crosscheck=crosscheck,
                          cf_table=cf_table)


def _no_holes(texts):
    for key, text in texts.items():
        assert text and text == text.strip(), key
        for bad in ("n/a", "nan", "None", "inf", "  ", " ;", " .", "{", "[", "%-", "-fold-"):
            assert bad not in text, (key, text)


def test_page_texts_read_whole_in_every_state():
    def claims(summary, relu_differs_states):
        v = {"progressive-sharpening": eos.progressive_sharpening(summary),
             "hovers-at-2-over-eta": eos.hovers_at_2_over_eta(summary),
             "loss-nonmonotone-yet-decreasing": eos.loss_nonmonotone_yet_decreasing(summary)}
        v["relu-differs-from-smooth"] = eos.relu_differs_from_smooth(_eos_verdicts(*relu_differs_states))
        return v

    good = claims(_families(relu={"rise": 2.0}), ((True, False, True), {"tanh": (True,) * 3}))
    texts = _page_texts(good, _cf_table())
    _no_holes(texts)
    assert texts["rise"] == "relu mse 2.0-fold, tanh mse 3.0-fold, elu mse 3.0-fold"
    assert texts["band"].startswith("relu mse 95%") and texts["upticks"].startswith("relu mse 30%")
    assert texts["differs-on"] == "it differs on hovers-at-2-over-eta (mse)" and texts["runs"] == "12 GD runs"
    assert texts["crosscheck"].startswith("The Lanczos sharpness agreed with power iteration to a relative 3.0e-06 "
                                          "at the 2 iterates checked")
    assert texts["cf"].startswith("relu (eta 0.2) 7.0% / 8.0%")
    assert texts["groups-hovers-at-2-over-eta"] == "holds for relu mse, tanh mse, elu mse"

    # nothing reached the edge, every comparison agrees, no flow could be computed, nothing cross-checked
    never = _families(relu={"crossed_step": None, "window_checks": 0, "window_steps": 0, "band_fraction": None,
                            "median_units": None, "uptick_fraction": None, "block_decreases": None})
    bad = claims(never, ((True,) * 3, {"tanh": (True,) * 3}))
    assert bad["relu-differs-from-smooth"].state == DOES_NOT_HOLD
    assert bad["hovers-at-2-over-eta"].state == INCONCLUSIVE
    no_flow = _cf_table(cf_failed="Lanczos did not converge", etas=(0.2,)).assign(
        cf_late_relative_distance=float("nan"))
    texts = _page_texts(bad, no_flow, crosscheck=pd.DataFrame({"relative difference": []}), n_runs=1)
    _no_holes(texts)
    assert texts["band"].startswith("relu mse not measured, tanh mse 95%")
    assert texts["differs-on"] == "it differs on no (claim, loss) compared" and texts["runs"] == "1 GD run"
    assert texts["crosscheck"] == "No run was checked against power iteration (every run diverged)."
    assert texts["cf"].startswith("relu no central flow / 8.0%")

    undecided = claims(_families(), ((True, None, True), {"tanh": (True,) * 3}))
    assert undecided["relu-differs-from-smooth"].state == INCONCLUSIVE
    texts = _page_texts(undecided, _cf_table().iloc[:0])
    _no_holes(texts)
    assert texts["cf"] == "the central flow was not run"
