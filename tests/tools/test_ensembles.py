import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nslib.tools import ensembles
from nslib.tools.models import BufferSoftplus, mlp
from nslib.tools.train import train


def _data(n=96, d=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def _models(m, act="relu", beta=1.0, dtype=torch.float64):
    out = []
    for s in range(m):
        torch.manual_seed(s)
        out.append(mlp([6, 8, 8, 3], act, beta=beta, dtype=dtype))
    return out


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("optimizer, batch_size, schedule, lrs", [
    ("sgd", None, "constant", [0.05, 0.1, 0.2]),
    ("sgd", 16, "invsqrt", [0.1, 0.3, 0.2]),
    ("adam", 32, "constant", [1e-3, 3e-3, 1e-2]),
    ("rmsprop", None, "invsqrt", [1e-3, 2e-3, 5e-4]),
])
def test_members_follow_sequential_training(optimizer, batch_size, schedule, lrs):
    """Reference: tools.train.train on each member alone (torch's own optimizers), float64, a stable step."""
    X, y = _data()
    run = ensembles.train_ensemble(_models(3), F.cross_entropy, X, y, optimizer=optimizer, lr=lrs, steps=120,
                          batch_size=batch_size, schedule=schedule,
                          generator=[torch.Generator().manual_seed(10 + i) for i in range(3)])
    for i in range(3):
        ref = _models(3)[i]
        h = train(ref, F.cross_entropy, X, y, optimizer=optimizer, lr=lrs[i], steps=120, batch_size=batch_size,
                  schedule=schedule, generator=torch.Generator().manual_seed(10 + i))
        a, b = _flat(ref), _flat(run.member(i))
        assert float((a - b).norm() / a.norm()) < 1e-8
        assert not torch.equal(_flat(_models(3)[i]), b)  # it did train
        np.testing.assert_allclose(run.histories[i].frame["loss"], h.frame["loss"], rtol=1e-8)
        np.testing.assert_allclose(run.histories[i].frame["lr"], h.frame["lr"], rtol=1e-12)
        assert list(run.histories[i].frame["step"]) == list(h.frame["step"])


def test_shared_generator_gives_every_member_the_same_batches():
    X, y = _data()
    models = _models(2)
    models[1].load_state_dict(models[0].state_dict())  # identical members: identical trajectories if batches agree
    run = ensembles.train_ensemble(models, F.cross_entropy, X, y, lr=0.1, steps=30, batch_size=10,
                          generator=torch.Generator().manual_seed(3))
    assert torch.equal(_flat(run.member(0)), _flat(run.member(1)))
    ref = _models(1)[0]
    train(ref, F.cross_entropy, X, y, lr=0.1, steps=30, batch_size=10, generator=torch.Generator().manual_seed(3))
    assert float((_flat(ref) - _flat(run.member(0))).norm() / _flat(ref).norm()) < 1e-8


def test_buffer_hyperparameters_vary_across_members():
    """Softplus betas in a buffer: each member runs its own beta (reference: nn.Softplus with that beta)."""
    X, y = _data()
    betas = [1.0, 5.0, 50.0]
    models = []
    for b in betas:
        torch.manual_seed(0)
        models.append(mlp([6, 8, 3], "softplus-buffer", beta=b, dtype=torch.float64))
    ens = ensembles.Ensemble(models)
    out = ens(X)
    for i, b in enumerate(betas):
        torch.manual_seed(0)
        ref = mlp([6, 8, 3], "softplus", beta=b, dtype=torch.float64)
        torch.testing.assert_close(out[i], ref(X), rtol=1e-12, atol=1e-12)


def test_buffer_softplus_matches_torch_softplus():
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    for beta in (0.5, 1.0, 7.0, 300.0):
        assert torch.equal(BufferSoftplus(beta)(x), F.softplus(x, beta=beta))


def test_members_differing_outside_tensors_are_refused():
    with pytest.raises(ValueError, match=r"models\[1\] differs.*Softplus\(beta=1.*beta=5.*buffer"):
        ensembles.Ensemble([mlp([4, 3, 2], "softplus", beta=1.0), mlp([4, 3, 2], "softplus", beta=5.0)])
    with pytest.raises(ValueError, match="differs"):
        ensembles.Ensemble([mlp([4, 3, 2]), mlp([4, 5, 2])])
    with pytest.raises(ValueError, match="batch norm in training mode"):
        ensembles.Ensemble([nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))] * 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": [0.1, 0.2]}, "lr has 2 values for 3 members"),
    ({"lr": -0.1}, "lr = .*allowed are finite values >= 0"),
    ({"optimizer": "lbfgs"}, "optimizer = 'lbfgs'"),
    ({"optimizer": "adam", "optimizer_kwargs": {"momentum": 0.9}}, r"optimizer_kwargs \['momentum'\] for adam"),
    ({"schedule": "cosine"}, "schedule = 'cosine'"),
    ({"generator": [torch.Generator()], "batch_size": 4}, "1 generators for 3 members"),
])
def test_bad_arguments_say_what_is_allowed(kwargs, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        ensembles.train_ensemble(_models(3), F.cross_entropy, X, y, **{"steps": 2, **kwargs})


def test_a_diverging_member_is_a_result_and_the_others_go_on():
    X, y = _data()
    X = X * 50
    run = ensembles.train_ensemble(_models(3), F.mse_loss, X, F.one_hot(y).double(), lr=[1e-4, 100.0, 1e-4], steps=120)
    assert run.diverged == [False, True, False]
    h = run.histories[1]
    assert h.diverged_at is not None and not math.isfinite(h.diverged_value) and math.isnan(h.final_loss)
    assert h.frame["step"].max() < h.diverged_at and np.isfinite(h.frame["loss"]).all()
    # the healthy members are exactly what they would be without the diverging one
    alone = ensembles.train_ensemble([_models(3)[0], _models(3)[2]], F.mse_loss, X, F.one_hot(y).double(), lr=1e-4,
                                     steps=120)
    assert torch.equal(_flat(run.member(0)), _flat(alone.member(0)))
    assert torch.equal(_flat(run.member(2)), _flat(alone.member(1)))


def test_metrics_and_frame():
    X, y = _data()
    run = ensembles.train_ensemble(_models(2), F.cross_entropy, X, y, lr=0.1, steps=10, record_every=5,
                          metrics={"accuracy": lambda ens: (ens(X).argmax(-1) == y).double().mean(-1)})
    f = run.frame
    assert list(f.columns) == ["step", "loss", "lr", "accuracy", "member"]
    assert sorted(f["step"].unique()) == [0, 5, 10] and sorted(f["member"].unique()) == [0, 1]
    acc = float((run.member(1)(X).argmax(-1) == y).double().mean())
    assert f[(f.member == 1) & (f.step == 10)]["accuracy"].item() == pytest.approx(acc, abs=1e-12)


@pytest.mark.parametrize("act", ["relu", "softplus-buffer", "gelu", "tanh"])
@pytest.mark.parametrize("loss, per_member", [("ce", False), ("ce", True), ("mse", False), ("other", True)])
def test_stacked_fully_connected_path_equals_vmap(act, loss, per_member):
    """The batched-matrix-product path for fully connected members against vmap over functional_call (the path
    every other architecture takes): the same losses and the same gradients, float64."""
    X, y = _data()
    ens = ensembles.Ensemble(_models(4, act, beta=2.0))
    assert ens._plan is not None
    if per_member:
        X, y = X[torch.arange(32).reshape(4, 8)], y[torch.arange(32).reshape(4, 8)]
    if loss == "mse":
        y = F.one_hot(y, 3).to(X.dtype)
    fn = {"ce": F.cross_entropy, "mse": F.mse_loss,
          "other": lambda out, t: F.cross_entropy(out, t, label_smoothing=0.1)}[loss]
    y_dim = 0 if per_member else None
    fast = ensembles._member_losses(fn, ens.outputs(ens.params, ens.buffers, X, per_member), y, y_dim)
    ref = torch.func.vmap(lambda p, b, x, t: fn(ens._member_forward(p, b, x), t),
                          in_dims=(0, 0, 0 if per_member else None, y_dim))(ens.params, ens.buffers, X, y)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)
    leaves, grad = ens._leaves_with_flat_grad()
    ensembles._member_losses(fn, ens.outputs(leaves, ens.buffers, X, per_member), y, y_dim).sum().backward()
    flat = ens.flat.detach().clone().requires_grad_(True)
    views = {k: flat[o:o + math.prod(s)].view(s) for k, o, s in ens._layout}
    (g_ref,) = torch.autograd.grad(torch.func.vmap(lambda p, b, x, t: fn(ens._member_forward(p, b, x), t),
                                                   in_dims=(0, 0, 0 if per_member else None, y_dim))(
        views, ens.buffers, X, y).sum(), flat)
    torch.testing.assert_close(grad, g_ref, rtol=1e-10, atol=1e-14)


def test_other_architectures_run_under_vmap():
    cnn = [nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).double() for _ in range(2)]
    ens = ensembles.Ensemble(cnn)
    assert ens._plan is None
    x = torch.randn(5, 1, 10, dtype=torch.float64)
    out = ens(x)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(out[1], cnn[1](x), rtol=1e-12, atol=1e-14)


def test_one_table_of_optimizers_and_schedules():
    """tools.train and tools.ensembles read one table: every optimizer has a stacked update, every option both
    accept, and an unknown option is refused by both with the same message."""
    from nslib.tools import train as train_mod

    assert set(ensembles.STACKED_UPDATES) == set(train_mod.OPTIMIZERS)
    X, y = _data()
    for name, (cls, defaults) in train_mod.OPTIMIZER_OPTIONS.items():
        opt = train_mod.make_optimizer(name, _models(1)[0].parameters(), lr=0.01)
        assert type(opt) is cls and all(opt.defaults[k] == v for k, v in defaults.items())
        ensembles.train_ensemble(_models(2), F.cross_entropy, X, y, optimizer=name, lr=0.01, steps=1)
        message = rf"optimizer_kwargs \['nesterov'\] for {name}"
        with pytest.raises(ValueError, match=message):
            train_mod.make_optimizer(name, _models(1)[0].parameters(), lr=0.01, nesterov=True)
        with pytest.raises(ValueError, match=message):
            ensembles.train_ensemble(_models(2), F.cross_entropy, X, y, optimizer=name, steps=1,
                            optimizer_kwargs={"nesterov": True})
