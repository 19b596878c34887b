import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nslib.tools import data as nsdata
from nslib.tools.kinks import relu_alpha
from nslib.tools.models import ACTIVATIONS, mlp
from nslib.tools.train import train


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_relu_alpha_backward_against_hand_computed_gradients(alpha):
    x = torch.tensor([-1.5, 0.0, 2.0, 0.0, -0.0], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([3.0, 5.0, 7.0, -2.0, 4.0], dtype=torch.float64)
    y = relu_alpha(x, alpha)
    y.backward(upstream)
    assert y.tolist() == [0.0, 0.0, 2.0, 0.0, 0.0]
    # alpha times the upstream gradient at exact zeros (-0.0 == 0 too), 1x for x > 0, 0 for x < 0
    assert x.grad.tolist() == [0.0, 5.0 * alpha, 7.0, -2.0 * alpha, 4.0 * alpha]


def test_relu_alpha_zero_matches_torch_relu_everywhere():
    x = torch.tensor([-1.0, 0.0, 1.0, 0.0], requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0])
    relu_alpha(x, 0.0).backward(g)
    a = x.grad.clone()
    x.grad = None
    torch.relu(x).backward(g)
    assert torch.equal(a, x.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_mlp_runs_at_every_precision(dtype, act):
    net = mlp([8, 6, 3], act, dtype=dtype, init="xavier_uniform", alpha=1.0, beta=5.0)
    out = net(torch.randn(4, 8, dtype=dtype))
    assert out.dtype == dtype and out.shape == (4, 3)
    out.float().sum().backward()


def test_mlp_bias_off_and_bad_names():
    net = mlp([4, 5, 2], "tanh", bias=False)
    assert all(m.bias is None for m in net if isinstance(m, torch.nn.Linear))
    with pytest.raises(ValueError, match="activation"):
        mlp([4, 2, 2], "swish")
    with pytest.raises(ValueError, match="init"):
        mlp([4, 2, 2], init="orthogonal")


def test_train_matches_a_hand_written_loop():
    data = nsdata.load_digits(seed=0, n_train=200)
    torch.manual_seed(0)
    net = mlp([64, 16, 10], "relu")
    ref = mlp([64, 16, 10], "relu")
    ref.load_state_dict(net.state_dict())
    hist = train(net, F.cross_entropy, data.X_train, data.y_train, optimizer="sgd", lr=0.1, steps=20)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    losses = []
    for _ in range(21):
        loss = F.cross_entropy(ref(data.X_train), data.y_train)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    np.testing.assert_array_equal(hist.frame["loss"].to_numpy(), losses)
    assert hist.frame["step"].tolist() == list(range(21)) and not hist.diverged


def test_divergence_is_reported_with_step_and_value():
    X = torch.randn(32, 4)
    y = torch.randn(32, 1)
    net = torch.nn.Linear(4, 1)
    hist = train(net, F.mse_loss, X, y, lr=1e3, steps=500)
    assert hist.diverged and hist.diverged_at > 0
    assert not np.isfinite(hist.diverged_value)
    assert len(hist.frame) == hist.diverged_at  # every finite step recorded, none after


def test_minibatches_schedule_and_metrics():
    X, y = torch.arange(10.0)[:, None], torch.zeros(10, 1)
    net = torch.nn.Linear(1, 1)
    seen = []
    hist = train(net, lambda out, yb: (seen.append(len(yb)) or F.mse_loss(out, yb)), X, y, lr=0.01, steps=9,
                 batch_size=4, schedule="invsqrt", record_every=3, metrics={"w": lambda m: m.weight.item()},
                 generator=torch.Generator().manual_seed(0))
    assert set(seen) == {4}
    assert hist.frame["step"].tolist() == [0, 3, 6, 9] and "w" in hist.frame
    np.testing.assert_allclose(hist.frame["lr"], 0.01 / np.sqrt([1, 4, 7, 10]))


def test_datasets_are_deterministic_and_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = nsdata.load_digits(seed=3), nsdata.load_digits(seed=3)
    assert torch.equal(a.X_train, b.X_train) and a.X_train.max() <= 1.0
    m = nsdata.load_mnist1d(seed=0, n_train=100)
    assert m.X_train.shape == (100, 40) and m.n_classes == 10
    assert list(tmp_path.iterdir()) == [], "MNIST-1D wrote a file"
    X, y, w = nsdata.sparse_regression(50, 30, 4, 0.1, seed=1)
    assert int((w != 0).sum()) == 4 and X.shape == (50, 30)
    with pytest.raises(ValueError, match="k"):
        nsdata.sparse_regression(50, 3, 4, 0.1)
    Xs, ys = nsdata.separable_classification(40, 3, margin=0.5)
    from sklearn.svm import LinearSVC

    assert LinearSVC(fit_intercept=False, C=1e4, max_iter=100000).fit(Xs.numpy(), ys.numpy()).score(
        Xs.numpy(), ys.numpy()) == 1.0
