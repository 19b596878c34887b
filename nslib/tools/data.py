"""Data, all offline and deterministic by seed: sklearn digits, MNIST-1D generated locally, MNIST from IDX files
in a folder the user names (never downloaded), synthetic sets. :func:`load` is the one loader of a data set by
name, flat or shaped as images, returning a :class:`Split` that says the sizes it delivers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DATASETS", "IMAGE_SHAPES", "MNIST_FILES", "Split", "load", "load_digits", "load_mnist", "load_mnist1d",
           "read_idx", "separable_classification", "sparse_regression"]

#: The four IDX files :func:`load_mnist` reads (each may also be gzipped, with ``.gz`` appended).
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
#: Data sets :func:`load` takes by name: sklearn digits (8x8), MNIST-1D (40 samples per signal), MNIST (IDX files).
DATASETS = ("digits", "mnist1d", "mnist")
#: Each data set's sample as an image or a signal, channels first.
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "mnist": (1, 28, 28)}
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


def load_digits(seed: int = 0, test_fraction: float = 0.25, n_train: int | None = None,
                dtype: torch.dtype = torch.float32, device="cpu") -> Split:
    """scikit-learn's 1,797 8x8 digits (shipped with the package), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    return _split(d.data / 16.0, d.target, test_fraction, seed=seed, n_train=n_train, dtype=dtype, device=device)


def load_mnist1d(seed: int = 0, n_train: int | None = None, dtype: torch.dtype = torch.float32,
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


def load_mnist(folder, every: int = 1, n_train: int | None = None, *, n_test: int | None = None,
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
    """The data set ``name`` (one of :data:`DATASETS`) as a train/test :class:`Split`, the first ``n_train`` training
    samples (all when None), flat features or, with ``image``, shaped as :data:`IMAGE_SHAPES` (N, C, H, W) or
    (N, C, L). Digits are split by ``seed``; MNIST-1D is generated with ``seed``; MNIST is read from the IDX files in
    ``data_dir`` (images 0, ``mnist_every``, 2 ``mnist_every``, ... of the training set; pixels in [0, 1],
    normalised by :data:`MNIST_MEAN_STD` with ``mnist_normalise``; the first ``n_test`` test images)."""
    if name == "digits":
        s = load_digits(seed=seed, n_train=n_train, dtype=dtype, device=device)
    elif name == "mnist1d":
        s = load_mnist1d(seed=seed, n_train=n_train, dtype=dtype, device=device)
    elif name == "mnist":
        if not data_dir:
            raise ValueError("dataset = 'mnist' needs data_dir: a folder with the four MNIST IDX files "
                             "(-p data_dir PATH); nslib never downloads")
        s = load_mnist(data_dir, every=mnist_every, n_train=n_train, n_test=n_test, dtype=dtype, device=device,
                       normalise=mnist_normalise)
    else:
        raise ValueError(f"dataset = {name!r}: allowed is one of {', '.join(DATASETS)}")
    shape = IMAGE_SHAPES[name]
    if image:
        s = Split(s.X_train.reshape(-1, *shape), s.y_train, s.X_test.reshape(-1, *shape), s.y_test)
    s.image_shape = shape
    return s
