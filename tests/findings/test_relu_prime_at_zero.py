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
    t = rpz.relu_rule_table(["float16", "float64"], alpha=0.5, upstream=3.0)
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


# ---------------------------------------------------------------------------------------------------- criteria

def _base(dataset, counts, n=20):
    rows = []
    for dtype, k in counts.items():
        lo, hi = rpz._wilson(k, n)
        rows.append({"dataset": dataset, "varied": "base", "dtype": dtype, "in_S": k, "n_inits": n,
                     "volume": k / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def test_volume_ordering_true_false_inconclusive():
    ok = _base("d", {"float16": 12, "float32": 3, "float64": 0})
    v = rpz.volume_ordered_by_precision(ok)
    assert v.state == HOLDS and v.groups["d"].measured == {"V_float16": 0.6, "V_float32": 0.15, "V_float64": 0.0}
    v = rpz.volume_ordered_by_precision(_base("d", {"float16": 12, "float32": 3, "float64": 1}))
    assert v.state == DOES_NOT_HOLD and v.groups["d"].state == DOES_NOT_HOLD  # a count at 64 bits
    assert rpz.volume_ordered_by_precision(_base("d", {"float16": 0, "float32": 15, "float64": 0})).holds is False
    v = rpz.volume_ordered_by_precision(_base("d", {"float16": 2, "float32": 3, "float64": 0}))
    assert v.state == INCONCLUSIVE and "within the 95% intervals" in v.reason
    v = rpz.volume_ordered_by_precision(_base("d", {"float16": 12, "float64": 0}))
    assert v.state == INCONCLUSIVE and "float32" in v.reason


def test_volume_ordering_is_judged_per_dataset():
    """One dataset that refutes decides the claim; the other's groups are kept beside it."""
    two = pd.concat([_base("a", {"float16": 12, "float32": 3, "float64": 0}),
                     _base("b", {"float16": 12, "float32": 3, "float64": 2})])
    v = rpz.volume_ordered_by_precision(two)
    assert v.state == DOES_NOT_HOLD and v.groups["a"].state == HOLDS and v.groups["b"].state == DOES_NOT_HOLD
    assert v.to_json()["measured"]["per_group"]["b"]["V_float64"] == 0.1


def test_volume_ordering_needs_a_decrease_the_counts_can_see():
    """With V32 = V64 = 0 the ordering reduced to V16 >= 0, which cannot fail (the audit): all-zero volumes, or a
    16-bit volume inside the 32-bit interval, order nothing and are inconclusive."""
    all_zero = {"float16": 0, "bfloat16": 0, "float32": 0, "float64": 0}
    for counts in (all_zero, {"float16": 2, "float32": 0, "float64": 0}):
        v = rpz.volume_ordered_by_precision(_base("d", counts))
        assert v.state == INCONCLUSIVE and "cannot order" in v.reason, counts
    assert rpz.volume_ordered_by_precision(_base("d", {"bfloat16": 15, "float32": 0, "float64": 0})).state == HOLDS


def test_volume_16bit_large_true_false_inconclusive():
    v = rpz.volume_16bit_large(_base("d", {"float16": 1, "bfloat16": 15}))
    assert v.state == HOLDS and v.measured["threshold"] == 0.1
    m = v.groups["d"].measured
    assert m["V_bfloat16"] == 0.75 and m["ci_bfloat16"] == pytest.approx(list(rpz._wilson(15, 20)))
    assert rpz.volume_16bit_large(_base("d", {"float16": 0, "bfloat16": 0}, n=100)).state == DOES_NOT_HOLD
    v = rpz.volume_16bit_large(_base("d", {"float16": 3, "bfloat16": 2}))
    assert v.state == INCONCLUSIVE and "straddle" in v.reason
    v = rpz.volume_16bit_large(_base("d", {"float32": 3}))
    assert v.state == INCONCLUSIVE and "no 16-bit precision" in v.reason and not v.groups


def _pair(zeros, distance, control=None, dtype="bfloat16", diverged_at=None):
    return rpz.PairRun(dtype, np.array(zeros), np.array(distance, float),
                       np.array(control if control is not None else [0.0] * len(zeros), float), diverged_at)


def test_control_stays_identical_true_false_inconclusive():
    good = _pair([0, 0, 1, 0], [0, 0, 0.1, 0.2])
    v = rpz.control_stays_identical([good, _pair([0] * 4, [0] * 4, dtype="float32")])
    assert v.state == HOLDS and set(v.groups) == {"bfloat16", "float32"}
    m = v.groups["bfloat16"].measured
    assert (m["control_max"], m["first_zero_step"], m["first_divergence_step"], m["zeros_met"]) == (0.0, 2, 2, 1)
    v = rpz.control_stays_identical([_pair([0, 0, 1, 0], [0, 0, 0.1, 0.2], [0, 1e-9, 0, 0])])
    assert v.state == DOES_NOT_HOLD and v.groups["bfloat16"].measured["outcome"] == "the 0-vs-0 control parted"
    v = rpz.control_stays_identical([_pair([0, 0, 1, 0], [0, 0.1, 0.1, 0.2])])  # parts early
    assert v.state == DOES_NOT_HOLD and "before any exact zero" in v.groups["bfloat16"].measured["outcome"]
    v = rpz.control_stays_identical([_pair([0] * 4, [0] * 4), _pair([0] * 4, [0] * 4, dtype="float64")])
    assert v.state == INCONCLUSIVE and "never used" in v.reason and v.groups["float64"].state == INCONCLUSIVE
    v = rpz.control_stays_identical([_pair([0, 1], [0, 1], diverged_at=1)])
    assert v.state == INCONCLUSIVE and "non-finite at step 1" in v.reason
    assert rpz.control_stays_identical([]).state == INCONCLUSIVE


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


def _rates(width_zeros, depth_zeros, dtype="bfloat16", sites=1_000_000):
    rows = [{"dataset": "d", "dtype": dtype, "kernel": "unfused", "width": w, "depth": 3, "sites": sites,
             "zeros": z, "rate": z / sites} for w, z in zip((16, 64, 256), width_zeros)]
    rows += [{"dataset": "d", "dtype": dtype, "kernel": "unfused", "width": 256, "depth": d, "sites": sites,
              "zeros": z, "rate": z / sites} for d, z in zip((1, 2), depth_zeros)]
    return pd.DataFrame(rows)


def test_zero_rate_grows_true_false_inconclusive():
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], [100, 200]))
    assert v.state == HOLDS and set(v.groups) == {"d bfloat16 unfused width", "d bfloat16 unfused depth"}
    m = v.groups["d bfloat16 unfused width"].measured
    assert m["spearman"] == pytest.approx(1.0) and m["zeros"] == 700
    assert m["log_rate_ratio"] == pytest.approx(np.log(400.5 / 100.5)) and v.measured["not_judged"] == []
    # without the depth rows the depth series has one depth: not judged, and listed as such
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], []))
    assert v.state == HOLDS and v.measured["not_judged"] == ["d bfloat16 unfused depth (fewer than 3 depths)"]
    assert rpz.zero_rate_grows_with_size(_rates([400, 200, 100], [100, 200])).state == DOES_NOT_HOLD
    v = rpz.zero_rate_grows_with_size(_rates([100, 90, 105], [100, 102]))
    assert v.state == INCONCLUSIVE and "counting noise" in v.reason
    v = rpz.zero_rate_grows_with_size(_rates([1, 2, 3], [1, 2]))
    assert v.state == INCONCLUSIVE and "zeros to rank" in v.reason
    assert "d bfloat16 unfused width (6 zeros counted)" in v.measured["not_judged"]
    v = rpz.zero_rate_grows_with_size(_rates([100, 200, 400], [100, 200], dtype="float32"))
    assert v.state == INCONCLUSIVE  # 32 bits are not judged


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


def test_page_texts_read_the_verdicts_and_say_every_count_right():
    grid = _base("d", {"float16": 12, "float32": 3, "float64": 0})
    verdicts = {"volume-ordered-by-precision": rpz.volume_ordered_by_precision(grid),
                "accuracy-sensitive-to-alpha": rpz.accuracy_sensitive_to_alpha(
                    _acc({1.0: -0.05}, groups=(("sgd", False), ("adam", True))), 0.01)}
    rates = _rates([1, 2, 3], [1, 2]).assign(kernel="fused")
    t = rpz.page_texts(verdicts, n_inits=1, rates=rates, pairs=[_pair([0, 1], [0, 1])],
                       prediction=pd.DataFrame(columns=["dtype"]))
    assert t["volumes"] == "d float16 0.60; d float32 0.15; d float64 0.00" and t["v32"] == "d 0.15"
    assert t["inits"] == "1 init" and t["fp32-zeros"] == "no rate was measured"
    assert t["kernel-ratio"] == ("in bfloat16, x @ W.T + b met 0 exact zeros against 9 for nn.Linear "
                                 "(none with x @ W.T + b)")
    assert t["accuracy"].startswith("sgd: the largest mean change is -5.00 points (at ReLU'(0) = 1, with 15 exact "
                                    "zeros met); adam + batch norm:")
    assert t["rate-prediction"] == "float32 was not run"
    empty = {**verdicts, "accuracy-sensitive-to-alpha": rpz.accuracy_sensitive_to_alpha(_acc({1.0: 0.0}, seeds=1))}
    assert rpz.page_texts(empty, n_inits=2, rates=rates, pairs=[], prediction=pd.DataFrame(columns=["dtype"]))[
        "accuracy"] == "no change was measured (needs alpha = 0, another alpha and at least 2 seeds)"


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
