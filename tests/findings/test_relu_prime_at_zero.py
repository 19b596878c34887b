"""The volume estimator's fast scan against the plain two-net pass, the nets' zero counts against the kink audit,
the ReLU'(0) rule, the dtype check, training pairs, and the five criteria on constructed data: each must be able to
come out true, false and inconclusive."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_idx

from nslib.findings import relu_prime_at_zero as rpz
from nslib.tools import data
from nslib.tools.kinks import audit
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

# ------------------------------------------------------------------------------------------------- experiments


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=512, seed=0)


def test_fast_scan_finds_the_same_first_difference_as_the_plain_pass(digits):
    """bfloat16 at width 128 meets exact zeros at some inits and not at others: both ways must agree init by init."""
    X, y = digits.X_train.to(torch.bfloat16), digits.y_train
    fast, naive = [], []
    for i in range(6):
        net = rpz.make_kink_mlp(64, 128, 3, n_out=10, seed=i, dtype=torch.bfloat16)
        fast.append(rpz.first_difference(net, X, y, 64)[0])
        naive.append(rpz.first_difference_naive(net, X, y, 64))
    assert fast == naive
    assert any(f is not None and f > 0 for f in fast) and None in fast


def test_zero_counts_agree_with_the_kink_audit(digits):
    """KinkMLP counts zeros in its own forward; the audit counts them at the ReLUs of an nn.Sequential built from the
    same layers: the two must agree exactly (fused kernel, the same nn.Linear computation)."""
    X = digits.X_train.to(torch.bfloat16)
    net = rpz.make_kink_mlp(64, 128, 3, n_out=10, seed=1, dtype=torch.bfloat16)
    with torch.no_grad():
        net(X)
    table = audit(net.as_sequential(), X)
    assert table.hits.tolist() == net.zeros and table.sites.sum() == net.sites


def test_nets_share_one_init_across_precisions_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = rpz.make_kink_mlp(8, 4, 2, n_out=3, seed=5, dtype=torch.float64)
    b = rpz.make_kink_mlp(8, 4, 2, n_out=3, seed=5, dtype=torch.float16)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p.to(torch.float16), q)


def test_relu_rule_table_flags_the_authors_rule():
    t = rpz.relu_rule_table(["float16", "float64"], alpha=0.5, upstream=3.0)  # the authors' rule, via kinks
    assert t["relu_alpha exact"].all() and not t["authors' rule exact"].any()
    assert t.loc["float64", "authors' rule"] == "0, 0.5, 0.5, 3"


def test_wilson_interval_against_known_values():
    lo, hi = rpz._wilson(0, 20)
    assert lo == 0 and math.isclose(hi, 0.1611, abs_tol=1e-4)
    lo, hi = rpz._wilson(10, 20)
    assert math.isclose(lo, 0.2993, abs_tol=1e-4) and math.isclose(hi, 0.7007, abs_tol=1e-4)


def test_divergence_runs_control_is_identical_and_float64_never_parts(digits):
    runs = rpz.divergence_runs(digits, ["bfloat16", "float64"], 32, depth=2, batch_size=64, steps=12, lr=0.1, seed=0,
                               kernel="unfused")
    assert all(r.control.max() == 0 for r in runs)
    r16, r64 = runs
    assert r64.zeros.sum() == 0 and r64.first_divergence is None
    assert r16.first_kink is not None and r16.first_divergence is not None  # x @ W.T + b in bf16: zeros are met
    assert r16.first_divergence >= r16.first_kink


def test_independent_seed_streams():
    """Page seeds 0 and 1 share no init; every precision and size of one page seed uses the same inits (paired)."""
    a, b = rpz.init_seeds(0, 40), rpz.init_seeds(1, 40)
    assert not set(a) & set(b) and len(set(a)) == 40 and rpz.init_seeds(0, 10) == a[:10]


def test_kink_mlp_uses_the_backward_rule_it_is_given():
    """With the authors' rule the gradient at an exact zero is alpha itself; with the chain rule alpha x upstream: a
    net whose first pre-activation is exactly 0 gives different first-layer gradients under the two rules."""
    nets = {}
    for rule in ("scaled", "constant"):
        net = rpz.make_kink_mlp(2, 1, 1, n_out=1, seed=0, dtype=torch.float64, relu_grad=rule, alpha=1.0)
        with torch.no_grad():
            net.linears[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
            net.linears[0].bias.zero_()
            net.linears[1].weight.fill_(0.25)
        x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)  # z = 0 exactly
        net(x).sum().backward()
        nets[rule] = net.linears[0].weight.grad.clone()
    assert torch.equal(nets["scaled"], torch.tensor([[0.25, 0.25]], dtype=torch.float64))  # 1 x upstream 0.25
    assert torch.equal(nets["constant"], torch.tensor([[1.0, 1.0]], dtype=torch.float64))  # set to 1
    with pytest.raises(ValueError, match="relu_grad"):
        rpz.KinkMLP(2, 1, 1, 1, relu_grad="authors")


def test_a_run_without_exact_zeros_is_copied_for_other_alphas_and_equals_a_real_run(digits):
    """float64 passes meet no exact zero: the shortcut's copy must equal what training at the other alpha gives."""
    kw = dict(optimizers=["sgd"], batch_norms=[False], n_seeds=2, seed=3, width=16, depth=2, batch_size=64, steps=5,
              lrs={"sgd": 0.1})
    acc = rpz.accuracy_grid(digits, "float64", [0.0, 1.0], **kw)
    assert (acc.zeros == 0).all()
    real = [rpz._train_runs(digits.X_train, digits.y_train, digits.X_test, digits.y_test, digits, torch.float64,
                            alphas=[a],
                            opt="sgd", bn=False, init=rpz.stream_seeds(3, 2, "accuracy-init")[0],
                            batches=rpz.stream_seeds(3, 2, "accuracy-batches")[0], lrs=[0.1], width=16, depth=2,
                            batch_size=64, steps=5, kernel="fused", device="cpu", relu_grad="scaled")[0]
            for a in (0.0, 1.0)]
    got = acc[acc.seed == 0].set_index("alpha").test_accuracy
    assert got[0.0] == real[0]["test_accuracy"] and got[1.0] == real[1]["test_accuracy"]


def test_tuning_picks_the_best_validation_step_per_alpha_and_never_sees_the_test_set():
    tuning = pd.DataFrame([
        {"optimizer": "sgd", "batch_norm": False, "alpha": 0.0, "lr": 0.1, "val_accuracy": 0.8, "seed": 0},
        {"optimizer": "sgd", "batch_norm": False, "alpha": 0.0, "lr": 0.3, "val_accuracy": 0.9, "seed": 0},
        {"optimizer": "sgd", "batch_norm": False, "alpha": 1.0, "lr": 0.1, "val_accuracy": 0.7, "seed": 0},
        {"optimizer": "sgd", "batch_norm": False, "alpha": 1.0, "lr": 0.3, "val_accuracy": 0.7, "seed": 0}])
    lrs = rpz.best_lrs(tuning, {"sgd": [0.1, 0.3], "adam": [1e-3]})
    assert lrs == {"adam": 1e-3, ("sgd", False, 0.0): 0.3, ("sgd", False, 1.0): 0.1}  # a tie: the smaller step
    assert rpz._lr_for(lrs, "adam", True, 1.0) == 1e-3
    split = data.load("digits", n_train=128, seed=0)
    split.X_test[:] = float("nan")  # a test set read anywhere would poison the accuracies
    t = rpz.tune_lrs(split, "float32", [0.0, 1.0], optimizers=["sgd", "adam"], batch_norms=[False],
                     lr_grids={"sgd": [0.05, 0.1], "adam": [1e-3]}, tune_seeds=1, seed=0, width=8, depth=1,
                     batch_size=32, steps=3)
    assert len(t) == 4 and set(t.optimizer) == {"sgd"} and t.val_accuracy.between(0, 1).all()


# ---------------------------------------------------------------------------------------------------- criteria

def _base(dataset, counts, n=20):
    rows = []
    for dtype, k in counts.items():
        lo, hi = rpz._wilson(k, n)
        rows.append({"dataset": dataset, "varied": "base", "dtype": dtype, "in_S": k, "n_inits": n,
                     "volume": k / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def test_volume_ordering_true_false_inconclusive():
    ok = _base("mnist", {"float16": 12, "float32": 3, "float64": 0})
    v = rpz.volume_ordered_by_precision(ok)
    assert v.state == HOLDS and v.groups["mnist float16"].measured == {"V_float16": 0.6, "V_float32": 0.15,
                                                                       "V_float64": 0.0}
    v = rpz.volume_ordered_by_precision(_base("mnist", {"float16": 12, "float32": 3, "float64": 1}))
    assert v.state == DOES_NOT_HOLD and v.groups["mnist float16"].state == DOES_NOT_HOLD  # a count at 64 bits
    assert rpz.volume_ordered_by_precision(_base("mnist", {"float16": 0, "float32": 15, "float64": 0})).holds is False
    v = rpz.volume_ordered_by_precision(_base("mnist", {"float16": 2, "float32": 3, "float64": 0}))
    assert v.state == INCONCLUSIVE and "within the 95% intervals" in v.reason
    v = rpz.volume_ordered_by_precision(_base("mnist", {"float16": 12, "float64": 0}))
    assert v.state == INCONCLUSIVE and "float32" in v.reason


def test_volume_claims_judge_mnist_float16_and_report_the_rest():
    """The paper's set-up decides; digits and bfloat16 are groups beside it, one per dataset x 16-bit dtype, that
    never refute it (the audit: a digits bfloat16 group decided the ordering although digits float16 overlapped)."""
    two = pd.concat([_base("mnist", {"float16": 12, "bfloat16": 0, "float32": 0, "float64": 0}),
                     _base("digits", {"float16": 2, "bfloat16": 15, "float32": 0, "float64": 2})])
    v = rpz.volume_ordered_by_precision(two)
    assert v.state == HOLDS and set(v.groups) == {"mnist float16"}
    assert set(v.reported) == {"mnist bfloat16", "digits float16", "digits bfloat16"}
    assert v.reported["digits float16"].state == DOES_NOT_HOLD and v.reported["mnist bfloat16"].state == INCONCLUSIVE
    v = rpz.volume_ordered_by_precision(_base("digits", {"float16": 12, "float32": 0, "float64": 0}))
    assert v.state == INCONCLUSIVE and "not run" in v.reason and v.reported["digits float16"].state == HOLDS
    w = rpz.volume_16bit_large(two)
    assert w.state == HOLDS and set(w.groups) == {"mnist float16"} and w.reported["mnist bfloat16"].state == \
        INCONCLUSIVE  # 0 of 20: the interval reaches 0.16


def test_volume_ordering_needs_a_decrease_the_counts_can_see():
    """With V32 = V64 = 0 the ordering reduced to V16 >= 0, which cannot fail (the audit): all-zero volumes, or a
    16-bit volume inside the 32-bit interval, order nothing and are inconclusive."""
    for counts in ({"float16": 0, "float32": 0, "float64": 0}, {"float16": 2, "float32": 0, "float64": 0}):
        v = rpz.volume_ordered_by_precision(_base("mnist", counts))
        assert v.state == INCONCLUSIVE and "cannot order" in v.reason, counts


def test_volume_16bit_large_true_false_inconclusive():
    v = rpz.volume_16bit_large(_base("mnist", {"float16": 15, "bfloat16": 1}))
    assert v.state == HOLDS and v.measured["threshold"] == 0.1
    m = v.groups["mnist float16"].measured
    assert m["volume"] == 0.75 and m["ci"] == pytest.approx(list(rpz._wilson(15, 20))) and m["in_S"] == 15
    assert rpz.volume_16bit_large(_base("mnist", {"float16": 0, "bfloat16": 0}, n=100)).state == DOES_NOT_HOLD
    v = rpz.volume_16bit_large(_base("mnist", {"float16": 3, "bfloat16": 2}))
    assert v.state == INCONCLUSIVE and "straddles" in v.reason
    v = rpz.volume_16bit_large(_base("mnist", {"float32": 3}))
    assert v.state == INCONCLUSIVE and "no 16-bit precision" in v.reason and not v.groups


def _sweep(counts_w, counts_d, n=40, dataset="mnist", dtype="float16"):
    rows = [{"dataset": dataset, "varied": "width", "dtype": dtype, "width": w, "depth": 3, "in_S": k, "n_inits": n,
             "volume": k / n} for w, k in zip((16, 64, 256), counts_w)]
    rows += [{"dataset": dataset, "varied": "depth", "dtype": dtype, "width": 256, "depth": d, "in_S": k,
              "n_inits": n, "volume": k / n} for d, k in zip((1, 2, 3), counts_d)]
    return pd.DataFrame(rows)


def test_trend_test_against_the_correlation_of_individual_outcomes():
    """Cochran-Armitage's z equals sqrt(N) x Pearson's r between the score and the 0/1 outcome over the N individual
    inits (Armitage 1955: chi-square for trend = N r^2): an independent reference."""
    from scipy.stats import pearsonr

    k, n = [2, 5, 11], [40, 40, 40]
    score = np.repeat([1, 2, 3], n)
    outcome = np.concatenate([np.r_[np.ones(a), np.zeros(b - a)] for a, b in zip(k, n)])
    z, p = rpz._trend_test([16, 64, 256], k, n)
    assert z == pytest.approx(math.sqrt(120) * pearsonr(score, outcome)[0], rel=1e-12)
    assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert rpz._trend_test([256, 16, 64], [11, 2, 5], n)[0] == pytest.approx(z)  # sizes are ranked, not listed
    assert math.isnan(rpz._trend_test([1, 2, 3], [0, 0, 0], n)[0])


def test_volume_grows_with_size_true_false_inconclusive():
    v = rpz.volume_grows_with_size(_sweep([0, 3, 14], [2, 8, 14]))
    assert v.state == HOLDS and set(v.groups) == {"mnist float16 width", "mnist float16 depth"}
    m = v.groups["mnist float16 width"].measured
    assert m["sizes"] == [16, 64, 256] and m["in_S"] == [0, 3, 14] and m["z"] > 1.645 and m["spearman"] == 1.0
    assert rpz.volume_grows_with_size(_sweep([14, 3, 0], [2, 8, 14])).state == DOES_NOT_HOLD
    v = rpz.volume_grows_with_size(_sweep([5, 6, 6], [2, 8, 14]))
    assert v.state == INCONCLUSIVE and "counting noise" in v.reason
    v = rpz.volume_grows_with_size(_sweep([0, 0, 0], [40, 40, 40]))
    assert v.state == INCONCLUSIVE and "none of its inits" in v.reason and "all of its inits" in v.reason
    # bfloat16 and digits are reported, never judged
    both = pd.concat([_sweep([0, 3, 14], [2, 8, 14]), _sweep([14, 3, 0], [14, 8, 2], dtype="bfloat16"),
                      _sweep([14, 3, 0], [14, 8, 2], dataset="digits")])
    v = rpz.volume_grows_with_size(both)
    assert v.state == HOLDS and len(v.reported) == 4 and all(g.state == DOES_NOT_HOLD for g in v.reported.values())
    v = rpz.volume_grows_with_size(_sweep([0, 3, 14], [2, 8, 14], dtype="bfloat16"))
    assert v.state == INCONCLUSIVE and "not run" in v.reason


def _rates32(zeros, sites, width=256, depth=3, dataset="mnist"):
    rates = pd.DataFrame([{"dataset": dataset, "dtype": "float32", "kernel": "fused", "width": width, "depth": depth,
                           "inits": 1, "sites": sites, "zeros": zeros, "rate": zeros / sites}])
    grid = pd.DataFrame([{"dataset": dataset, "varied": "base", "dtype": "float32", "volume": 0.0, "ci_low": 0.0,
                          "ci_high": 0.09}])
    return rates, grid


def test_volume_32bit_half_true_false_inconclusive():
    """At the authors' rate (1.35e-8 per evaluation) many evaluations predict their 0.463; a rate a hundred times
    higher predicts ~1; none found in 1e6 evaluations leaves the rate (and the volume) open."""
    n = 1e11
    v = rpz.volume_32bit_half(*_rates32(round(rpz.AUTHORS_RATE32 * n), n), 256, 3)
    assert v.state == HOLDS and v.groups["mnist"].measured["V_authors_scale"] == pytest.approx([0.463] * 2, abs=0.02)
    assert rpz.volume_32bit_half(*_rates32(round(100 * rpz.AUTHORS_RATE32 * n), n), 256, 3).state == DOES_NOT_HOLD
    assert rpz.volume_32bit_half(*_rates32(0, 1e11), 256, 3).state == DOES_NOT_HOLD  # rate < 3.7e-11: V < 0.002
    v = rpz.volume_32bit_half(*_rates32(0, 1e6), 256, 3)
    assert v.state == INCONCLUSIVE and "overlaps an edge" in v.reason
    v = rpz.volume_32bit_half(*_rates32(round(rpz.AUTHORS_RATE32 * n), n, width=64), 64, 3)
    assert v.state == INCONCLUSIVE and "not the authors'" in v.reason
    v = rpz.volume_32bit_half(*_rates32(0, 1e6, dataset="digits"), 256, 3)
    assert v.state == INCONCLUSIVE and "mnist at float32 was not run" in v.reason and "digits" in v.reported


def _pair(zeros, distance, control=None, dtype="bfloat16", diverged_at=None):
    return rpz.PairRun(dtype, np.array(zeros), np.array(distance, float),
                       np.array(control if control is not None else [0.0] * len(zeros), float), diverged_at)


def test_control_stays_identical_true_false_inconclusive():
    good = _pair([0, 0, 1, 0], [0, 0, 0.1, 0.2])
    v = rpz.control_stays_identical([good, _pair([0] * 4, [0] * 4, dtype="float32")])
    assert v.state == HOLDS and set(v.groups) == {"bfloat16"} and set(v.reported) == {"float32"}
    m = v.groups["bfloat16"].measured
    assert (m["control_max"], m["first_zero_step"], m["first_divergence_step"], m["zeros_met"]) == (0.0, 2, 2, 1)
    v = rpz.control_stays_identical([_pair([0, 0, 1, 0], [0, 0, 0.1, 0.2], [0, 1e-9, 0, 0])])
    assert v.state == DOES_NOT_HOLD and v.groups["bfloat16"].measured["outcome"] == "the 0-vs-0 control parted"
    v = rpz.control_stays_identical([_pair([0, 0, 1, 0], [0, 0.1, 0.1, 0.2])])  # parts early
    assert v.state == DOES_NOT_HOLD and "before any exact zero" in v.groups["bfloat16"].measured["outcome"]
    v = rpz.control_stays_identical([_pair([0] * 4, [0] * 4), _pair([0] * 4, [0] * 4, dtype="float64")])
    assert v.state == INCONCLUSIVE and "never used" in v.reason and v.reported["float64"].state == HOLDS
    v = rpz.control_stays_identical([_pair([0, 1], [0, 1], diverged_at=1)])
    assert v.state == INCONCLUSIVE and "non-finite at step 1" in v.reason
    assert rpz.control_stays_identical([]).state == INCONCLUSIVE


def test_control_without_a_zero_is_reported_unless_it_fails():
    """The audit: float32/64 runs that met no zero passed vacuously. They are reported beside, not counted; but a
    control that parted there is still a failure of the claim."""
    vacuous = [_pair([0] * 4, [0] * 4, dtype="float32"), _pair([0] * 4, [0] * 4, dtype="float64")]
    v = rpz.control_stays_identical(vacuous)
    assert v.state == INCONCLUSIVE and not v.groups and set(v.reported) == {"float32", "float64"}
    v = rpz.control_stays_identical([_pair([0] * 4, [0] * 4, [0, 0, 1e-9, 0], dtype="float32")])
    assert v.state == DOES_NOT_HOLD and set(v.groups) == {"float32"}
    v = rpz.control_stays_identical([_pair([0] * 4, [0, 0, 0.1, 0.1], dtype="float64")])
    assert v.state == DOES_NOT_HOLD and "before any exact zero" in v.groups["float64"].measured["outcome"]


def test_control_stays_identical_fails_when_a_pair_meets_a_zero_and_never_parts():
    """The claim's second half: ReLU'(0) = 0 vs 1 must part once an exact zero is met (the audit found it skipped)."""
    never_parts = _pair([0, 1, 0, 0], [0] * 4, dtype="float16")
    v = rpz.control_stays_identical([_pair([0, 0, 1, 0], [0, 0, 0.1, 0.2]), never_parts])
    assert v.state == DOES_NOT_HOLD and v.groups["bfloat16"].state == HOLDS
    assert v.groups["float16"].state == DOES_NOT_HOLD and "never parted" in v.groups["float16"].measured["outcome"]


def test_control_stays_identical_judges_each_precision_on_its_own():
    """A loss that went non-finite in one precision leaves that precision inconclusive; a control that parted in
    another still refutes the claim."""
    nan_run = _pair([0, 1], [0, 1], dtype="float16", diverged_at=1)
    v = rpz.control_stays_identical([nan_run, _pair([0, 0, 1, 0], [0, 0, 0.1, 0.2])])
    assert v.state == INCONCLUSIVE and v.groups["bfloat16"].state == HOLDS and "float16:" in v.reason
    v = rpz.control_stays_identical([nan_run, _pair([0, 0, 1, 0], [0, 0, 0.1, 0.2], [0, 1e-9, 0, 0])])
    assert v.state == DOES_NOT_HOLD and v.groups["float16"].state == INCONCLUSIVE


def _rates(width_zeros, depth_zeros, dtype="float16", sites=1_000_000):
    rows = [{"dataset": "d", "dtype": dtype, "kernel": "unfused", "width": w, "depth": 3, "sites": sites,
             "zeros": z, "rate": z / sites} for w, z in zip((16, 64, 256), width_zeros)]
    rows += [{"dataset": "d", "dtype": dtype, "kernel": "unfused", "width": 256, "depth": d, "sites": sites,
              "zeros": z, "rate": z / sites} for d, z in zip((1, 2), depth_zeros)]
    return pd.DataFrame(rows)


def test_zero_rate_grows_true_false_inconclusive():
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], [100, 200]))
    assert v.state == HOLDS and set(v.groups) == {"d float16 unfused width", "d float16 unfused depth"}
    m = v.groups["d float16 unfused width"].measured
    assert m["spearman"] == pytest.approx(1.0) and m["zeros"] == 700
    assert m["log_rate_ratio"] == pytest.approx(np.log(400.5 / 100.5)) and v.measured["not_judged"] == []
    # without the depth rows the depth series has one depth: not judged, and listed as such
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], []))
    assert v.state == HOLDS and v.measured["not_judged"] == ["d float16 unfused depth (fewer than 3 depths)"]
    assert rpz.zero_rate_grows_with_size(_rates([400, 200, 100], [100, 200])).state == DOES_NOT_HOLD
    v = rpz.zero_rate_grows_with_size(_rates([100, 90, 105], [100, 102]))
    assert v.state == INCONCLUSIVE and "counting noise" in v.reason
    v = rpz.zero_rate_grows_with_size(_rates([1, 2, 3], [1, 2]))
    assert v.state == INCONCLUSIVE and "zeros to rank" in v.reason
    assert "d float16 unfused width (6 zeros counted)" in v.measured["not_judged"]
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], [100, 200], dtype="float32"))
    assert v.state == INCONCLUSIVE  # 32 bits are not judged


def test_zero_rate_judges_float16_and_reports_bfloat16():
    both = pd.concat([_rates([100, 200, 400], [100, 200]), _rates([400, 200, 100], [100, 200], dtype="bfloat16")])
    v = rpz.zero_rate_grows_with_size(both)
    assert v.state == HOLDS and v.reported["d bfloat16 unfused width"].state == DOES_NOT_HOLD
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], [100, 200], dtype="bfloat16"))
    assert v.state == INCONCLUSIVE and "float16 was not run" in v.reason and v.reported


def _acc(changes, se_noise=0.0, groups=(("sgd", False),), seeds=3):
    rows = []
    for opt, bn in groups:
        for s in range(seeds):
            base = 0.8 + 0.01 * s
            rows.append({"optimizer": opt, "batch_norm": bn, "seed": s, "alpha": 0.0, "test_accuracy": base,
                         "zeros": 5, "finite": True})
            for a, c in changes.items():
                jitter = se_noise * (1 if s % 2 else -1)
                rows.append({"optimizer": opt, "batch_norm": bn, "seed": s, "alpha": a,
                             "test_accuracy": base + c + jitter, "zeros": 5, "finite": True})
    return pd.DataFrame(rows)


def test_accuracy_sensitive_true_false_inconclusive():
    v = rpz.accuracy_sensitive_to_alpha(_acc({1.0: -0.05}, groups=(("sgd", False), ("adam", True))), 0.01)
    assert v.state == HOLDS and set(v.groups) == {"sgd"} and set(v.reported) == {"adam + batch norm"}
    assert v.groups["sgd"].measured["change"] == pytest.approx(-0.05)
    assert v.groups["sgd"].measured["at_alpha"] == 1.0 and v.groups["sgd"].measured["zeros_met"] == 15
    assert v.reported["adam + batch norm"].measured["dampened_vs_plain_sgd"] is True
    assert v.to_json()["measured"]["per_group"]["adam + batch norm"]["judged"] is False
    assert rpz.accuracy_sensitive_to_alpha(_acc({1.0: 0.0, 100.0: 0.001}), 0.01).state == DOES_NOT_HOLD
    v = rpz.accuracy_sensitive_to_alpha(_acc({1.0: 0.008}, se_noise=0.02), 0.01)
    assert v.state == INCONCLUSIVE and "noise" in v.reason
    v = rpz.accuracy_sensitive_to_alpha(_acc({1.0: -0.05}, groups=(("adam", False),)), 0.01)
    assert v.state == INCONCLUSIVE and "plain SGD" in v.reason and v.measured["groups_run"] == ["adam"]
    assert rpz.accuracy_sensitive_to_alpha(_acc({1.0: -0.05}, seeds=1), 0.01).state == INCONCLUSIVE
    no_zeros = _acc({1.0: 0.0}).assign(zeros=0)
    v = rpz.accuracy_sensitive_to_alpha(no_zeros, 0.01)
    assert v.state == INCONCLUSIVE and "never used" in v.reason


def test_accuracy_reported_groups_never_decide_the_claim():
    """A reported group that moved (or could not be judged) leaves the plain-SGD verdict as it is."""
    acc = pd.concat([_acc({1.0: 0.0}), _acc({1.0: -0.05}, groups=(("adam", False),)).assign(zeros=0)])
    v = rpz.accuracy_sensitive_to_alpha(acc, 0.01)
    assert v.state == DOES_NOT_HOLD and v.reported["adam"].state == INCONCLUSIVE
    assert v.reported["adam"].measured["dampened_vs_plain_sgd"] is False


def _bn(change_without, change_with, noise=0.0, seeds=6):
    return pd.concat([_acc({1.0: change_without}, se_noise=noise, seeds=seeds),
                      _acc({1.0: change_with}, se_noise=noise, groups=(("sgd", True),), seeds=seeds)])


def test_batch_norm_dampens_true_false_inconclusive():
    v = rpz.batch_norm_dampens_alpha(_bn(-0.3, -0.01), 0.01)
    assert v.state == HOLDS and set(v.groups) == {"sgd: batch norm vs none"}
    m = v.groups["sgd: batch norm vs none"].measured
    assert m["change_without"] == pytest.approx(-0.3) and m["change_with"] == pytest.approx(-0.01)
    assert rpz.batch_norm_dampens_alpha(_bn(-0.05, -0.3), 0.01).state == DOES_NOT_HOLD
    v = rpz.batch_norm_dampens_alpha(_bn(-0.05, -0.04, noise=0.02), 0.01)
    assert v.state == INCONCLUSIVE and "within the noise" in v.reason
    v = rpz.batch_norm_dampens_alpha(_bn(0.0, 0.0), 0.01)
    assert v.state == INCONCLUSIVE and "nothing to dampen" in v.reason
    v = rpz.batch_norm_dampens_alpha(_acc({1.0: -0.3}), 0.01)
    assert v.state == INCONCLUSIVE and "with and without batch norm" in v.reason
    adam = _bn(-0.3, 0.0).assign(optimizer="adam")
    v = rpz.batch_norm_dampens_alpha(pd.concat([_bn(-0.3, 0.0), adam]), 0.01)
    assert v.state == HOLDS and set(v.reported) == {"adam: batch norm vs none"}
    assert rpz.batch_norm_dampens_alpha(adam, 0.01).state == INCONCLUSIVE


def test_page_texts_read_the_verdicts_and_say_every_count_right():
    grid = pd.concat([_base("d", {"float16": 12, "float32": 3, "float64": 0}), _sweep([0, 3, 14], [2, 8, 14])])
    acc = _acc({1.0: -0.05}, groups=(("sgd", False), ("sgd", True)))
    verdicts = {"accuracy-sensitive-to-alpha": rpz.accuracy_sensitive_to_alpha(acc, 0.01),
                "volume-grows-with-size": rpz.volume_grows_with_size(grid),
                "batch-norm-dampens-alpha": rpz.batch_norm_dampens_alpha(acc, 0.01)}
    rates = _rates([1, 2, 3], [1, 2]).assign(kernel="fused")
    t = rpz.page_texts(verdicts, grid=grid, n_inits=1, rates=rates, pairs=[_pair([0, 1], [0, 1])],
                       prediction=pd.DataFrame(columns=["dtype"]))
    assert t["volumes"] == "d float16 0.60 (12 of 20); d float32 0.15 (3 of 20); d float64 0.00 (0 of 20)"
    assert t["v32"] == "d 0.15 (3 of 20)" and t["inits"] == "1 init" and t["fp32-zeros"] == "no rate was measured"
    assert t["kernel-ratio"] == ("in float16, x @ W.T + b met 0 exact zeros against 9 for nn.Linear "
                                 "(none with x @ W.T + b)")
    assert t["accuracy"].startswith("sgd: the largest mean change is -5.00 points (at ReLU'(0) = 1, with 15 exact "
                                    "zeros met); sgd + batch norm:")
    assert t["growth"].startswith("mnist float16 width: 0, 3, 14 of 40 inits at widths 16, 64, 256 (z = ")
    both = pd.concat([grid, _sweep([0, 3, 14], [2, 8, 14], dtype="bfloat16")])
    assert "inits at depths 1, 2, 3 (z = 3.35; reported, holds)" in rpz.growth_text(rpz.volume_grows_with_size(both))
    assert t["batch-norm"].startswith("sgd: batch norm vs none: at ReLU'(0) = 1, -5.00 points without batch norm")
    assert t["rate-prediction"] == "float32 was not run" and "chain rule" in t["rule"]
    assert "authors' rule" in rpz.relu_rule_text("constant")
    empty = {"accuracy-sensitive-to-alpha": rpz.accuracy_sensitive_to_alpha(_acc({1.0: 0.0}, seeds=1))}
    assert rpz.page_texts(empty, grid=grid, n_inits=2, rates=rates, pairs=[],
                          prediction=pd.DataFrame(columns=["dtype"]))[
        "accuracy"] == "no change was measured (needs alpha = 0, another alpha and at least 2 seeds)"
    lrs = {("sgd", False, 0.0): 0.3, ("sgd", False, 1.0): 0.1, "adam": 1e-3}
    assert rpz.tuning_text(lrs, ["sgd", "adam"], [False], [0.0, 1.0], {"sgd": [0.1, 0.3], "adam": [1e-3]}) == (
        "sgd: step 0.3 at 0, 0.1 at 1 (tuned on 0.1, 0.3); adam: step 0.001 at 0, 0.001 at 1 (fixed)")


def test_mnist_for_the_paper_profile_is_raw_pixels_in_0_1(tmp_path):
    """The authors' set-up feeds MNIST through ToTensor only: pixels k / 255, no normalisation."""
    images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2) * 12
    for part in ("train", "t10k"):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", images, 0x08, False)
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", np.arange(5, dtype=np.uint8), 0x08, False)
    s = data.load("mnist", n_train=4, seed=0, data_dir=str(tmp_path), mnist_normalise=False)
    assert torch.equal(s.X_train, torch.tensor(images[:4].reshape(4, -1) / 255.0, dtype=torch.float32))
    with pytest.raises(ValueError, match="n_train = 6: mnist from .* delivered only 5"):
        data.load("mnist", n_train=6, seed=0, data_dir=str(tmp_path))


def test_rate_prediction_reproduces_the_audits_arithmetic():
    """The authors' 32-bit volume 0.463 over 60,000 x 768 evaluations implies ~1.35e-8 zeros per evaluation; at that
    rate ~1e6 evaluations per pass predict ~1.4%. The Poisson interval for 0 events is [0, -ln(0.025) / n]."""
    assert rpz.AUTHORS_EVALUATIONS_PER_PASS == 46_080_000
    assert rpz.AUTHORS_RATE32 == pytest.approx(1.35e-8, rel=0.01)
    assert rpz._volume_from_rate(rpz.AUTHORS_RATE32, 1.03e6) == pytest.approx(0.0139, rel=0.02)
    lo, hi = rpz._poisson_interval(0, 1e6)
    assert lo == 0 and hi == pytest.approx(-math.log(0.025) / 1e6, rel=1e-9)
    lo, hi = rpz._poisson_interval(10, 1e6)
    assert lo < 1e-5 < hi and lo == pytest.approx(4.795e-6, rel=1e-3) and hi == pytest.approx(1.839e-5, rel=1e-3)
    rates = pd.DataFrame([{"dataset": "d", "dtype": "float32", "kernel": "fused", "width": 4, "depth": 1, "inits": 2,
                           "sites": 2_000_000, "zeros": 0, "rate": 0.0}])
    grid = pd.DataFrame([{"dataset": "d", "varied": "base", "dtype": "float32", "volume": 0.0, "ci_low": 0.0,
                          "ci_high": 0.16}])
    p = rpz.rate_prediction(rates, grid, 4, 1).iloc[0]
    assert p["evaluations per pass"] == 1_000_000
    assert p["V from the authors' 32-bit rate"] == pytest.approx(0.0134, rel=0.02)
    assert "their rate explains it" in rpz.rate_prediction_text(rpz.rate_prediction(rates, grid, 4, 1))
    far = grid.assign(volume=0.9, ci_low=0.7, ci_high=0.97)
    assert "does not explain" in rpz.rate_prediction_text(rpz.rate_prediction(rates, far, 4, 1))
