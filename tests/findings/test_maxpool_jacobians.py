"""The finding's nets, zones and training grid against independent references, and its four criteria on constructed
data: each must be able to come out true, false and inconclusive."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from nslib.findings import maxpool_jacobians as mpj
from nslib.runner import ParamError, check_dtypes
from nslib.tools import data, maxpool
from nslib.tools.seeds import stream_seed, stream_seeds
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

# ------------------------------------------------------------------------------------------------ experiment code


@pytest.mark.parametrize("shape, pool", [((1, 8, 8), maxpool.MaxPool2d), ((1, 40), maxpool.MaxPool1d),
                                         ((1, 28, 28), maxpool.MaxPool2d)])
def test_cnn_shapes_and_that_beta_0_is_torchs_maxpool(shape, pool):
    net = mpj.make_cnn(shape, 10, 0.0, seed=1, dtype=torch.float64)
    assert sum(isinstance(m, pool) for m in net.modules()) == 2
    x = torch.rand(3, *shape, dtype=torch.float64)
    # the same net with torch's own MaxPool: same output and same gradients, bit for bit
    ref = torch.nn.Sequential(*[(torch.nn.MaxPool2d(2) if len(shape) == 3 else torch.nn.MaxPool1d(2))
                                if isinstance(m, pool) else m for m in net])
    assert torch.equal(net(x), ref(x))
    y = torch.tensor([0, 1, 2])
    g1 = torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))
    g2 = torch.autograd.grad(F.cross_entropy(ref(x), y), list(ref.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))
    if shape[-1] == 28:  # LeNet-5's head
        assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [120, 84, 10]


def test_zones_count_ties_like_a_brute_force_loop():
    split = data.load("digits", n_train=128, seed=0, image=True)
    z = mpj.zones({"digits": split}, ["bfloat16", "float64"], n_batches=2, batch_size=16)
    f = z.frame
    assert list(f.dtype) == ["bfloat16", "bfloat16", "float64", "float64"]
    assert (f[f.dtype == "float64"].compensation == 0).all()  # float64 against itself: no rounding-made tie
    # brute force on the first pool layer of the float64 pass of batch 0: windows whose max appears twice or more
    net = mpj.make_cnn((1, 8, 8), 10, 0.0, seed=stream_seed(0, "zones init digits"), dtype=torch.float64)
    order = torch.randperm(len(split.X_train),
                           generator=torch.Generator().manual_seed(stream_seed(0, "zones batches digits")))[:16]
    x = mpj._pool_inputs(net, split.X_train[order].double())[0]
    tied = sum(int((w == w.max()).sum() > 1) for w in x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(-1, 4))
    assert maxpool.window_ties(x, 2).gt(1).sum() == tied
    assert f.iloc[2].bifurcation + f.iloc[2].inert >= tied  # both pool layers counted
    assert (f[f.dtype == "float64"].max_inf <= 1e-15).all()


def _classified_and_real_difference(net, x, y):
    """The float64 pass's real ties classified by the finding's machinery, and the reference the classification
    predicts: the float64 gradient difference between beta = 0 and beta = 1."""
    zones = {"bifurcation": 0, "inert": 0}
    layers = zip(mpj._pool_inputs(net, x), mpj._pool_tangents(net, x), mpj._pool_upstream(net, x, y))
    for inp, tangents, upstream in layers:
        z = maxpool.tie_zones(inp, inp, 2, tangents=tangents, upstream=upstream)
        zones = {k: zones[k] + z[k] for k in zones}
    g0, g1 = mpj._grads(net, x, y, 0.0), mpj._grads(net, x, y, 1.0)
    return zones, max(float((a - b).abs().max()) for a, b in zip(g0, g1))


def test_the_zone_classifier_predicts_whether_the_jacobian_choice_moves_the_gradient():
    """The audit's case: real ties on a constant background (identical receptive fields) are inert, and the
    float64 gradients at beta = 0 and 1 agree to rounding; ties between different patches with equal sums (a
    constant first kernel) are bifurcation, and there the gradients differ."""
    net = mpj.make_cnn((1, 8, 8), 3, 0.0, seed=2, dtype=torch.float64)
    with torch.no_grad():
        net[0].bias.fill_(0.5)  # the constant background maps to a positive constant: positive real ties
    x = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    x[:, :, 3:5, 3:5] = torch.rand(4, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    zones, diff = _classified_and_real_difference(net, x, y)
    assert zones["inert"] > 100 and zones["bifurcation"] == 0 and diff < 1e-15
    with torch.no_grad():
        net[0].weight.fill_(0.1)  # every patch with the same pixel sum ties, whatever its arrangement
    x = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    x[:, 0, 2, 2] = x[:, 0, 3, 5] = 1.0  # in one 2x2 pool window of the first conv's output: one pixel, two places
    zones, diff = _classified_and_real_difference(net, x, torch.tensor([0, 1]))
    assert zones["bifurcation"] > 0 and diff > 1e-6


def test_composite_error_is_zero_at_beta_1_and_grows_with_beta():
    t = mpj.composite_error(["float16", "float64"], [1.0, 100.0, 1e4])
    assert (t.loc[1.0] == 0).all()
    assert t.loc[1e4, "float16"] > t.loc[100.0, "float16"] > 0 and t.loc[1e4, "float64"] < 1e-10


def test_train_grid_runs_one_factor_at_a_time_and_matches_a_plain_training_loop():
    split = data.load("digits", n_train=96, seed=0, image=True)
    grid = mpj.train_grid({"digits": split}, [0.0, 1e4], ["bfloat16", "float32"], ["sgd", "adam"], [False, True], 1,
                          steps=5, batch_size=32, lr=0.1, adam_lr=1e-3)
    f = grid.frame
    settings = set(zip(f.dtype, f.optimizer, f.batch_norm))
    assert settings == {("bfloat16", "sgd", False), ("float32", "sgd", False), ("bfloat16", "adam", False),
                        ("bfloat16", "sgd", True)}
    # reference: torch's own MaxPool (beta = 0) in a hand-written loop with the same init and minibatch order
    net = mpj.make_cnn((1, 8, 8), 10, 0.0, seed=stream_seeds(0, 1, "train init")[0], dtype=torch.float32)
    ref = torch.nn.Sequential(*[torch.nn.MaxPool2d(2) if isinstance(m, maxpool.MaxPool2d) else m for m in net])
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(stream_seeds(0, 1, "train batches")[0])
    perm, pos = None, len(split.X_train)
    for _ in range(5):
        if pos + 32 > len(split.X_train):
            perm, pos = torch.randperm(len(split.X_train), generator=g), 0
        idx = perm[pos:pos + 32]
        pos += 32
        opt.zero_grad()
        F.cross_entropy(ref(split.X_train[idx]), split.y_train[idx]).backward()
        opt.step()
    acc = float((ref(split.X_test).argmax(1) == split.y_test).double().mean())
    row = f[(f.dtype == "float32") & (f.beta == 0.0)]
    assert row.accuracy.item() == acc
    assert grid.chance["digits"] == pytest.approx(np.bincount(split.y_test.numpy()).max() / len(split.y_test))
    assert "beta=10000" in mpj.accuracy_table(grid).columns


def test_mitigations_run_only_at_the_mitigation_precisions():
    every = mpj._configs(["float16", "bfloat16", "float32"], ["sgd", "adam"], [False, True])
    assert ("bfloat16", "adam", False) in every and ("bfloat16", "sgd", True) in every
    judged = mpj._configs(["float16", "bfloat16", "float32"], ["sgd", "adam"], [False, True], ["float16"])
    assert judged == [("float16", "sgd", False), ("bfloat16", "sgd", False), ("float32", "sgd", False),
                      ("float16", "adam", False), ("float16", "sgd", True)]
    assert mpj._configs(["float64"], ["adam"], [True], ["float16"]) == [("float64", "adam", True)]


def test_the_conv_pool_probe_refuses_a_dtype_the_device_cannot_compute(monkeypatch):
    check_dtypes(["float16", "bfloat16", "float64"], "cpu", mpj.conv_pool_probe)

    def no_half(x, *a, **k):  # a device without 16-bit kernels
        if x.dtype == torch.float16:
            raise RuntimeError('"max_pool2d" not implemented for \'Half\'')
        return x

    monkeypatch.setattr(mpj.maxpool, "max_pool", no_half)
    with pytest.raises(ParamError, match=r"dtype 'float16' cannot be computed on device 'cpu'"):
        check_dtypes(["float64", "float16"], "cpu", mpj.conv_pool_probe)


def test_load_shapes_inputs_for_a_cnn():
    assert tuple(data.load("mnist1d", n_train=64, seed=0, image=True).X_train.shape[1:]) == (1, 40)
    with pytest.raises(ValueError, match="allowed is one of"):
        data.load("cifar", n_train=10, seed=0, image=True)
    assert isinstance(data.load("digits", n_train=64, seed=0, image=True), data.Split)


# ------------------------------------------------------------------------------------------------------ criteria


def _zone_frame(diffs: dict, ties=5):
    """diffs[(dataset, dtype)] = [sum of differences per minibatch]; "differs" by the authors' rule."""
    rows = []
    for (ds, d), values in diffs.items():
        for b, v in enumerate(values):
            rows.append({"dataset": ds, "dtype": d, "batch": b, "max_inf": v, "sum_inf": v,
                         "differs": bool(v > mpj.AUTHORS_THRESHOLDS[d]), "windows": 100, "bifurcation": ties,
                         "inert": 0, "compensation": 0, "exact_only": 0})
    return mpj.ZoneRun(pd.DataFrame(rows))


def test_difference_tracks_precision_on_the_authors_shares():
    good = {("mnist", "float16"): [2e-3] * 10, ("mnist", "float32"): [1e-9] * 5 + [2e-7] * 5,
            ("mnist", "float64"): [0.0] * 10}
    v = mpj.difference_tracks_precision(_zone_frame(good))
    assert v.state == HOLDS and set(v.groups) == {"mnist float16"}
    m = v.groups["mnist float16"].measured
    assert (m["share_float16"], m["share_float32"], m["share_float64"]) == (1.0, 0.5, 0.0)
    assert m["share_float16_low"] == pytest.approx(0.7225, abs=1e-4)  # Wilson, 10 of 10
    assert (m["authors_share_float16"], m["authors_share_float32"], m["authors_share_float64"]) == (1.0, 0.55243, 0.0)
    assert m["largest_sum_float16"] == 2e-3 and m["minibatches"] == 10
    # the authors' rule, not a magnitude: 16-bit differences of 2e-4 are below their 1e-3 in every minibatch
    low = {**good, ("mnist", "float16"): [2e-4] * 10}
    v = mpj.difference_tracks_precision(_zone_frame(low))
    assert v.state == DOES_NOT_HOLD and v.groups["mnist float16"].measured["share_float16_high"] < 0.5
    assert mpj.difference_tracks_precision(_zone_frame({**good, ("mnist", "float64"): [1e-12] * 10})).state \
        == DOES_NOT_HOLD
    reversed_ = {**good, ("mnist", "float16"): [2e-3] * 2 + [0.0] * 8, ("mnist", "float32"): [2e-7] * 10}
    v = mpj.difference_tracks_precision(_zone_frame(reversed_))  # 16 bits: 2 of 10, its interval reaches 51%
    assert v.state == DOES_NOT_HOLD and v.groups["mnist float16"].measured["share_float16_high"] > 0.5  # 32 above
    few = {("mnist", "float16"): [2e-3] * 2, ("mnist", "float64"): [0.0] * 2}  # 2 of 2 against 0 of 2
    v = mpj.difference_tracks_precision(_zone_frame(few))
    assert v.state == INCONCLUSIVE and "raise zone_batches" in v.reason
    v = mpj.difference_tracks_precision(_zone_frame({**good, ("mnist", "float16"): [np.nan] + [2e-3] * 9}))
    assert v.state == INCONCLUSIVE and "not finite" in v.reason
    v = mpj.difference_tracks_precision(_zone_frame(good, ties=0))
    assert v.state == INCONCLUSIVE and "no tied window" in v.reason
    v = mpj.difference_tracks_precision(_zone_frame({("mnist", "float16"): [2e-3], ("mnist", "float32"): [0.0]}))
    assert v.state == INCONCLUSIVE and "float64" in v.reason


def test_difference_tracks_precision_judges_float16_on_mnist_and_reports_the_rest():
    good = {("mnist", "float16"): [2e-3] * 10, ("mnist", "float64"): [0.0] * 10}
    other = {("mnist", "bfloat16"): [1e-4] * 10, ("digits", "float16"): [1e-4] * 10, ("digits", "float64"): [0.0] * 10}
    v = mpj.difference_tracks_precision(_zone_frame({**good, **other}))
    assert v.state == HOLDS and set(v.groups) == {"mnist float16"}
    assert v.reported["mnist bfloat16"].state == DOES_NOT_HOLD and v.reported["digits float16"].state == DOES_NOT_HOLD
    assert v.to_json()["measured"]["per_group"]["mnist bfloat16"]["judged"] is False
    v = mpj.difference_tracks_precision(_zone_frame({("digits", "float16"): [2e-3] * 10,
                                                     ("digits", "float64"): [0.0] * 10}))
    assert v.state == INCONCLUSIVE and "paper's set-up" in v.reason and v.reported["digits float16"].state == HOLDS


def _share_run(shares: dict, bn_shares=None, batch_size=64, n=10):
    """shares[batch size] = minibatches of n that differ (no batch norm); bn_shares = (without, with) at batch_size."""
    rows = []

    def add(bn, b, k):
        rows.extend({"dataset": "mnist", "batch_norm": bn, "batch_size": b, "batch": i, "sum_inf": 2e-7 if i < k
                     else 5e-8, "differs": i < k} for i in range(n))

    for b, k in shares.items():
        add(False, b, k)
    if bn_shares is not None:
        if batch_size not in shares:
            add(False, batch_size, bn_shares[0])
        add(True, batch_size, bn_shares[1])
    return mpj.ShareRun(pd.DataFrame(rows), batch_size, tuple(sorted(shares)))


def test_share32_grows_with_batch_true_false_inconclusive():
    v = mpj.share32_grows_with_batch(_share_run({64: 1, 256: 5, 512: 8, 1024: 10}))
    assert v.state == HOLDS
    m = v.groups["mnist"].measured
    assert m["batch_sizes"] == [64, 256, 512, 1024] and m["shares"] == [0.1, 0.5, 0.8, 1.0]
    assert m["authors_shares"] == [0.27, 0.60, 0.77, 0.92]
    assert mpj.share32_grows_with_batch(_share_run({64: 10, 256: 5, 1024: 0})).state == DOES_NOT_HOLD
    # up overall, but a fall beyond the intervals between neighbours
    assert mpj.share32_grows_with_batch(_share_run({64: 0, 256: 10, 512: 0, 1024: 10})).state == DOES_NOT_HOLD
    v = mpj.share32_grows_with_batch(_share_run({64: 0, 256: 0, 1024: 0}))  # the floor hides any growth
    assert v.state == INCONCLUSIVE and "0% at every batch size" in v.reason
    v = mpj.share32_grows_with_batch(_share_run({64: 2, 1024: 5}))
    assert v.state == INCONCLUSIVE and "raise share_batches" in v.reason
    # the batch-norm comparison's extra size is not part of the batch-size study
    v = mpj.share32_grows_with_batch(_share_run({256: 0, 1024: 10}, bn_shares=(10, 10), batch_size=64))
    assert v.state == HOLDS and v.groups["mnist"].measured["batch_sizes"] == [256, 1024]


def test_batchnorm_raises_share32_true_false_inconclusive():
    v = mpj.batchnorm_raises_share32(_share_run({64: 0, 256: 1}, bn_shares=(0, 10)))
    assert v.state == HOLDS
    m = v.groups["mnist"].measured
    assert (m["share_no_batch_norm"], m["share_batch_norm"]) == (0.0, 1.0)
    assert (m["authors_share_no_batch_norm"], m["authors_share_batch_norm"]) == (0.54, 0.80)
    assert mpj.batchnorm_raises_share32(_share_run({64: 10, 256: 1}, bn_shares=(10, 0))).state == DOES_NOT_HOLD
    v = mpj.batchnorm_raises_share32(_share_run({64: 0, 256: 0}, bn_shares=(0, 0)))
    assert v.state == INCONCLUSIVE and "overlap" in v.reason
    v = mpj.batchnorm_raises_share32(_share_run({64: 0, 256: 0}))  # no batch-norm minibatches
    assert v.state == INCONCLUSIVE and "with and without" in v.reason


def _grid(acc: dict, chance=0.1, diverged=(), dataset="mnist"):
    """acc[(dtype, optimizer, batch_norm)] = {beta: [accuracy per seed]}; the first key is the base."""
    rows = []
    for (d, o, bn), by_beta in acc.items():
        for beta, seeds in by_beta.items():
            for s, a in enumerate(seeds):
                rows.append({"dataset": dataset, "dtype": d, "optimizer": o, "batch_norm": bn, "beta": beta,
                             "seed": s, "accuracy": a, "diverged": (d, o, bn, beta) in diverged, "diverged_at": None})
    return mpj.TrainGrid(pd.DataFrame(rows), {dataset: chance})


BASE16 = ("float16", "sgd", False)
BF16 = ("bfloat16", "sgd", False)
FP32 = ("float32", "sgd", False)


def test_high_beta_breaks_16bit_true_false_inconclusive():
    broken = {0.0: [0.9, 0.91, 0.9], 1.0: [0.9, 0.91, 0.9], 1e4: [0.1, 0.12, 0.11]}
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: broken}))
    assert v.state == HOLDS
    m = v.groups["mnist float16"].measured
    assert (m["broken_seeds"], m["seeds"], m["top_beta"], m["small_betas"]) == (3, 3, 1e4, [1.0])
    assert m["accuracy_top_beta"] == pytest.approx(0.11) and m["accuracy_beta_0"] == pytest.approx(0.9033333)
    assert mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 1e4: [0.1, 0.5, 0.1]}})).state == DOES_NOT_HOLD
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 1.0: [0.8, 0.8, 0.81]}}))
    assert v.state == DOES_NOT_HOLD and v.groups["mnist float16"].measured["broken_seeds"] == 3
    # beta = 1 lower by 3 points on average, but seed to seed it scatters across the margin
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 1.0: [0.9, 0.83, 0.88]}}))
    assert v.state == INCONCLUSIVE and "t-interval" in v.reason
    m = v.groups["mnist float16"].measured
    changes = np.array([0.9, 0.83, 0.88]) - np.array([0.9, 0.91, 0.9])  # paired by seed, by hand
    assert m["small_beta_change"] == pytest.approx([changes.mean()])
    assert m["small_beta_change_half_width"] == pytest.approx([4.302653 * changes.std(ddof=1) / np.sqrt(3)])
    # a change of 0.7 points with a spread of 0.6: within 2% at two standard errors, not at the t-interval of 3 seeds
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 1.0: [0.9, 0.9, 0.89]}}))
    assert v.state == INCONCLUSIVE
    # beta = 0 above chance but short of having learned (the audit's MNIST-1D nets at ~0.30, chance 0.1)
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {0.0: [0.3, 0.3], 1e4: [0.1, 0.1]}}))
    assert v.state == INCONCLUSIVE and "counts as having learned" in v.reason and mpj.learned_level(0.1) == 0.55
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {0.0: [0.9], 100.0: [0.9]}}))  # no large beta in the grid
    assert v.state == INCONCLUSIVE and ">= 1000 (it has 0, 100)" in v.reason
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {0.0: [0.9, 0.9], 1.0: [0.9, 0.9], 1e4: [0.1, 0.1]}}))
    assert v.state == INCONCLUSIVE and "2 seeds:" in v.reason
    # the authors' grid: beta = 100 is a low beta too (their LeNet at float16: unchanged up to 100), 1000 is not
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 100.0: [0.9, 0.91, 0.9], 1e3: [0.1, 0.1, 0.1]}}))
    assert v.state == HOLDS and v.groups["mnist float16"].measured["small_betas"] == [1.0, 100.0]
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: {**broken, 100.0: [0.6, 0.6, 0.62]}}))
    assert v.state == DOES_NOT_HOLD
    v = mpj.high_beta_breaks_16bit(_grid({FP32: broken}))  # no 16-bit run
    assert v.state == INCONCLUSIVE and "no 16-bit precision" in v.reason and not v.groups


def test_high_beta_breaks_16bit_judges_float16_and_reports_bfloat16():
    broken = {0.0: [0.9, 0.91, 0.9], 1.0: [0.9, 0.91, 0.9], 1e4: [0.1, 0.12, 0.11]}
    survives = {**broken, 1e4: [0.9, 0.9, 0.9]}
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: broken, BF16: survives}))
    assert v.state == HOLDS and set(v.groups) == {"mnist float16"}
    assert v.reported["mnist bfloat16"].state == DOES_NOT_HOLD
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: survives, BF16: broken}))
    assert v.state == DOES_NOT_HOLD and v.reported["mnist bfloat16"].state == HOLDS
    v = mpj.high_beta_breaks_16bit(_grid({BF16: broken}))  # bfloat16 alone is not the authors' 16 bits
    assert v.state == INCONCLUSIVE and "float16" in v.reason and v.reported["mnist bfloat16"].state == HOLDS
    v = mpj.high_beta_breaks_16bit(_grid({BASE16: broken}, dataset="digits"))  # not the paper's set-up
    assert v.state == INCONCLUSIVE and "paper's set-up" in v.reason


def test_fp32_robust_to_beta_decides_only_beyond_the_seed_spread():
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.90, 0.91, 0.92], 1e4: [0.895, 0.905, 0.918]}}))
    assert v.state == HOLDS
    m = v.groups["mnist"].measured
    changes = np.array([0.895, 0.905, 0.918]) - np.array([0.90, 0.91, 0.92])  # paired by seed, by hand
    assert m["betas"] == [0.0, 1e4] and m["change"] == pytest.approx([0.0, changes.mean()])
    assert m["change_half_width"][1] == pytest.approx(4.302653 * changes.std(ddof=1) / np.sqrt(3))
    assert m["largest_change"] == pytest.approx(changes.mean()) and m["at_beta"] == 1e4
    assert m["mean_accuracy"] == pytest.approx([0.91, np.mean([0.895, 0.905, 0.918])])
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.9, 0.91, 0.9], 1e4: [0.5, 0.52, 0.49]}}))
    assert v.state == DOES_NOT_HOLD and v.groups["mnist"].measured["largest_change"] < -0.3
    # a change of 0.01 is "within 2%" only if the seeds agree; here they scatter by 0.1
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.9, 0.9, 0.9], 1e4: [0.99, 0.8, 0.88]}}))
    assert v.state == INCONCLUSIVE and "raise n_seeds" in v.reason
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.9, 0.9], 1e4: [0.9, 0.9]}}))
    assert v.state == INCONCLUSIVE and "2 seeds:" in v.reason and "change" not in v.groups["mnist"].measured
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.3, 0.3, 0.3], 1e4: [0.3, 0.3, 0.3]}}))
    assert v.state == INCONCLUSIVE and "having learned" in v.reason
    v = mpj.fp32_robust_to_beta(_grid({BASE16: {0.0: [0.9] * 3, 1e4: [0.9] * 3}}))
    assert v.state == INCONCLUSIVE and v.reason == "float32 was not trained"
    v = mpj.fp32_robust_to_beta(_grid({FP32: {0.0: [0.9, 0.91, 0.9], 1e4: [0.5, 0.52, 0.49]}}, dataset="digits"))
    assert v.state == INCONCLUSIVE and v.reported["digits"].state == DOES_NOT_HOLD  # digits is reported only


def test_mitigations_shrink_the_relative_gap_beyond_the_seed_spread():
    base = {0.0: [0.9, 0.91, 0.89], 1e4: [0.1, 0.12, 0.11]}
    good = {BASE16: base, ("float16", "adam", False): {0.0: [0.9, 0.9, 0.91], 1e4: [0.8, 0.82, 0.81]},
            ("float16", "sgd", True): {0.0: [0.95, 0.96, 0.95], 1e4: [0.9, 0.91, 0.92]},
            ("float32", "sgd", False): {0.0: [0.9, 0.9, 0.9], 1e4: [0.9, 0.89, 0.9]}}
    v = mpj.mitigations_shrink_gap(_grid(good))
    assert v.state == HOLDS and set(v.groups) == {"mnist float16 adam", "mnist float16 batch norm",
                                                  "mnist float16 float32"}
    rel = (np.array([0.9, 0.91, 0.89]) - np.array([0.1, 0.12, 0.11])) / np.array([0.9, 0.91, 0.89])
    m = v.groups["mnist float16 adam"].measured
    assert m["base_relative_gap"] == pytest.approx(rel.mean())
    assert list(m)[:2] == ["shrink", "shrink_half_width"] and m["shrink"] == pytest.approx(
        rel.mean() - m["mitigated_relative_gap"])
    worse = {**good, ("float16", "sgd", True): {0.0: [0.95, 0.95, 0.96], 1e4: [0.05, 0.06, 0.05]}}
    v = mpj.mitigations_shrink_gap(_grid(worse))
    assert v.state == DOES_NOT_HOLD and v.groups["mnist float16 batch norm"].state == DOES_NOT_HOLD
    assert v.groups["mnist float16 adam"].state == HOLDS
    # batch norm lifts beta = 0 and beta = 1e4, widening the absolute gap while the relative gap shrinks
    lifted = {BASE16: {0.0: [0.60, 0.62, 0.61], 1e4: [0.23, 0.24, 0.23]},
              ("float16", "sgd", True): {0.0: [0.75, 0.76, 0.75], 1e4: [0.36, 0.37, 0.37]}}
    v = mpj.mitigations_shrink_gap(_grid(lifted))
    m = v.groups["mnist float16 batch norm"].measured
    assert v.state == HOLDS and m["mitigated_gap"] > m["base_gap"]  # the absolute gap widened
    noisy = {BASE16: base, ("float16", "adam", False): {0.0: [0.9, 0.9, 0.9], 1e4: [0.1, 0.9, 0.3]}}
    v = mpj.mitigations_shrink_gap(_grid(noisy))
    assert v.state == INCONCLUSIVE and "within the seed-to-seed spread" in v.reason
    v = mpj.mitigations_shrink_gap(_grid({**good, BASE16: {0.0: [0.9] * 3, 1e4: [0.89] * 3}}))  # no gap
    assert v.state == INCONCLUSIVE and "nothing clear to mitigate" in v.reason
    assert "shrink" not in v.groups["mnist float16 adam"].measured
    nan_adam = {**good, ("float16", "adam", False): {0.0: [0.1] * 3, 1e4: [0.1] * 3}}  # Adam's eps underflows
    v = mpj.mitigations_shrink_gap(_grid(nan_adam))
    assert v.state == INCONCLUSIVE and "having learned" in v.reason
    v = mpj.mitigations_shrink_gap(_grid({BASE16: base}))  # nothing to compare against
    assert v.state == INCONCLUSIVE and "no mitigation run" in v.reason and not v.groups
    # bfloat16 runs are reported beside float16's, never combined
    bf = {BF16: base, ("bfloat16", "sgd", True): {0.0: [0.95, 0.95, 0.96], 1e4: [0.05, 0.06, 0.05]}}
    v = mpj.mitigations_shrink_gap(_grid({**good, **bf}))
    assert v.state == HOLDS and v.reported["mnist bfloat16 batch norm"].state == DOES_NOT_HOLD
    assert "mnist bfloat16 adam" not in v.reported  # no bfloat16 Adam run (mitigation_dtypes): no group


def test_tuning_picks_the_best_held_out_step_and_train_grid_uses_it():
    split = data.load("digits", n_train=200, seed=0, image=True)
    t = mpj.tune_lrs({"digits": split}, ["sgd"], [False], {"sgd": [1e-6, 0.1, 1e3]}, steps=10, batch_size=32)
    assert list(t.lr) == [1e-6, 0.1, 1e3] and t.chosen.sum() == 1
    best = t.loc[t["validation accuracy"].idxmax()]
    assert bool(best.chosen) and t[t.lr == 1e3]["validation accuracy"].item() <= best["validation accuracy"]
    tuned = mpj.tuned_lrs(t)
    assert tuned == {("digits", "sgd", False): float(best.lr)}
    grid = mpj.train_grid({"digits": split}, [0.0], ["float32"], ["sgd"], [False], 1, steps=2, batch_size=32,
                          lr=0.5, adam_lr=1e-3, tuned=tuned)
    assert list(grid.frame.lr) == [float(best.lr)]


def test_share_study_measures_the_authors_rule_at_float32():
    split = data.load("digits", n_train=128, seed=0, image=True)
    run = mpj.share_study({"digits": split}, [16, 32], 3, 8, seed=0)
    f = run.frame
    assert run.batch_sizes == (16, 32) and run.batch_size == 8
    assert sorted(set(zip(f.batch_norm, f.batch_size))) == [(False, 8), (False, 16), (False, 32), (True, 8)]
    assert (f.differs == (f.sum_inf > 1e-7)).all() and len(f) == 12
    # the first minibatch of batch norm's stream, by hand: its own init, the same two gradients
    net = mpj.make_cnn((1, 8, 8), 10, 0.0, batch_norm=True, seed=stream_seed(0, "share init digits True 8 0"))
    g = torch.Generator().manual_seed(stream_seed(0, "share batches digits True"))
    idx = torch.randperm(len(split.X_train), generator=g)[:8]
    g0 = mpj._grads(net, split.X_train[idx], split.y_train[idx], 0.0)
    g1 = mpj._grads(net, split.X_train[idx], split.y_train[idx], 1.0)
    total = sum(float((a.double() - b.double()).abs().max()) for a, b in zip(g0, g1))
    assert f[f.batch_norm].sum_inf.iloc[0] == total
    assert f[f.batch_norm].sum_inf.nunique() == 3  # each minibatch its own init and images
    table = mpj.share_table(run)
    assert table.loc[("digits", "yes", 8), "authors' share (about)"] == "80%"


def test_page_texts_read_the_mitigations_from_the_verdict_and_say_each_value_once():
    good = {BASE16: {0.0: [0.9, 0.91, 0.89], 1e4: [0.1, 0.12, 0.11]},
            ("float16", "adam", False): {0.0: [0.9, 0.9, 0.91], 1e4: [0.8, 0.82, 0.81]},
            ("float16", "sgd", True): {0.0: [0.3] * 3, 1e4: [0.3] * 3}}
    grid = _grid(good, diverged={("float16", "sgd", False, 1e4)})
    zrun = _zone_frame({("d", "float16"): [1e-4, 1e-3], ("d", "float64"): [0.0, 0.0]})
    verdicts = {"mitigations-shrink-gap": mpj.mitigations_shrink_gap(grid)}
    tiny = data.load("digits", n_train=100)
    shares = _share_run({64: 0, 256: 3}, bn_shares=(0, 10))
    t = mpj.page_texts(verdicts, zrun=zrun, grid=grid, splits={"digits": tiny}, shares=shares)
    assert t["train-sizes"] == "digits on 100 training images"
    assert t["differences"] == "d float16 1.0e-04 to 1.0e-03; d float64 0"
    assert t["above-threshold"] == "d float16 0% (0%-66%; authors 100%); d float64 0% (0%-66%; authors 0%)"
    assert t["mitigation-gaps"].startswith("mnist float16 adam: 0.79 → 0.09; mnist float16 batch norm: 0.79 → "
                                           "not compared (the batch norm runs reached 0.300")
    assert t["runs"] == "18 training runs" and t["nan-runs"] == "mnist float16, sgd at beta = 10000"
    assert t["compensation-share"] == "d float16 0%; d float64 0%"
    assert t["batch-shares"] == "mnist: batch 64 0/10 (authors 27%), batch 256 3/10 (authors 60%)"
    assert t["bn-shares"].startswith("mnist: without 0/10 (authors, their batch-norm study: 54%), with 10/10")
    assert t["tuned-lrs"].startswith("not tuned") and "evidence" in t["evidence-comment"]
    t = mpj.page_texts({}, zrun=zrun, grid=_grid({BASE16: {0.0: [0.9]}}), splits={"digits": tiny})
    assert t["mitigation-gaps"] == "no mitigation was run against a 16-bit base" and t["runs"] == "1 training run"
    assert t["nan-runs"] == "none" and t["batch-shares"] == "not measured"


def test_the_evidence_comment_reads_broken_seeds_by_the_pages_test(tmp_path):
    import json

    from nslib.evidence import newest_by_machine

    def report(folder, date, accs, diverged):
        rows = [{"beta": b, "seed": s, "accuracy": a, "diverged": d}
                for (b, s), a, d in zip([(0.0, 0), (0.0, 1), (1e4, 0), (1e4, 1)], accs, diverged)]
        out = tmp_path / "evidence" / folder
        out.mkdir(parents=True)
        (out / "device-check.json").write_text(json.dumps({
            "size": "full", "plan": {"maxpool": {"steps": 600, "batch_size": 128, "lr": 0.01}},
            "environment": {"device": "cpu", "device_name": "CPU X", "date": date,
                            "hardware": {"cpu_capability": folder}},
            "maxpool": {"ok": True, "chance": 0.118, "rows": rows}}))

    assert mpj.evidence_comment(newest_by_machine("maxpool", tmp_path)).startswith("no float16 training")
    report("avx2", "2026-12-06", [0.86, 0.888, 0.93, 0.918], [False] * 4)
    text = mpj.evidence_comment(newest_by_machine("maxpool", tmp_path))
    assert "beta 0 0.874, beta 10000 0.924, 0 of 2 seeds broken" in text and "contradicts" in text
    assert "600 SGD steps of batch 128" in text
    (tmp_path / "evidence" / "avx2" / "device-check.json").unlink()
    report("avx512", "2026-12-07", [0.86, 0.888, 0.098, 0.094], [False, False, False, True])
    text = mpj.evidence_comment(newest_by_machine("maxpool", tmp_path))
    assert "2 of 2 seeds broken" in text and "contradicts" not in text
