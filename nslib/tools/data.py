"""Data, all offline and deterministic by seed: sklearn digits, MNIST-1D generated locally, synthetic sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Split", "load_digits", "load_mnist1d", "separable_classification", "sparse_regression"]


@dataclass
class Split:
    """Train and test tensors."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def _split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, n_train: int | None,
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
    return _split(d.data / 16.0, d.target, test_fraction, seed, n_train, dtype, device)


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
