"""L1-penalised MLPs pruned two ways: subgradient SGD then magnitude thresholding, or proximal SGD."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._data import Split
from ._lasso import soft_threshold
from ._models import mlp
from ._train import train

__all__ = ["penalised_weights", "sparsity", "magnitude_prune", "accuracy", "train_l1_mlp", "pruning_curves",
           "curve_area", "pruning_areas"]


def penalised_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """The weight matrices of the Linear layers (biases are not penalised)."""
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


def sparsity(model: torch.nn.Module) -> float:
    """Fraction of penalised weights that are exactly zero."""
    ws = penalised_weights(model)
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


@torch.no_grad()
def magnitude_prune(model: torch.nn.Module, target: float) -> torch.nn.Module:
    """Zero the smallest-magnitude penalised weights (globally) until a fraction ``target`` is zero."""
    ws = penalised_weights(model)
    flat = torch.cat([w.abs().flatten() for w in ws])
    k = int(round(target * flat.numel()))
    if k > 0:
        order = torch.argsort(flat, stable=True)[:k]
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[order] = False
        start = 0
        for w in ws:
            w.mul_(mask[start:start + w.numel()].view_as(w))
            start += w.numel()
    return model


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(X).argmax(1) == y).double().mean())


def train_l1_mlp(data: Split, lam: float, method: str, *, hidden: int, epochs: int, lr: float, batch_size: int,
                 seed: int) -> torch.nn.Module:
    """``method`` 'subgradient': SGD on cross-entropy + lam * sum|W| (autograd's sign(0) = 0);
    'prox': SGD on cross-entropy, then soft-thresholding of the weights by lr * lam after every step."""
    torch.manual_seed(seed)
    model = mlp([data.n_features, hidden, data.n_classes], "relu")
    weights = penalised_weights(model)
    steps = epochs * max(1, data.X_train.shape[0] // batch_size)
    if method == "subgradient":
        def loss_fn(out, yb):
            return F.cross_entropy(out, yb) + lam * sum(w.abs().sum() for w in weights)
        after = None
    elif method == "prox":
        loss_fn = F.cross_entropy

        def after(step_lr: float) -> None:
            with torch.no_grad():
                for w in weights:
                    w.copy_(soft_threshold(w, step_lr * lam))
    else:
        raise ValueError(f"method = {method!r}: allowed is one of subgradient, prox")
    train(model, loss_fn, data.X_train, data.y_train, optimizer="sgd", lr=lr, steps=steps, batch_size=batch_size,
          record_every=steps, generator=torch.Generator().manual_seed(seed), after_step=after)
    return model


def pruning_curves(data: Split, lams, *, hidden: int, epochs: int, lr: float, batch_size: int, seed: int):
    """For each lam: prox-SGD's (sparsity, test accuracy), and the subgradient-SGD net magnitude-pruned to
    that same sparsity. Returns a list of dict rows, one per lam."""
    import copy

    rows = []
    for lam in lams:
        prox = train_l1_mlp(data, lam, "prox", hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
        sub = train_l1_mlp(data, lam, "subgradient", hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
                           seed=seed)
        s = sparsity(prox)
        pruned = magnitude_prune(copy.deepcopy(sub), s)
        rows.append({"seed": seed, "lam": lam, "sparsity": s, "acc_prox": accuracy(prox, data.X_test, data.y_test),
                     "acc_threshold": accuracy(pruned, data.X_test, data.y_test),
                     "acc_subgradient_unpruned": accuracy(sub, data.X_test, data.y_test),
                     "sparsity_subgradient_unpruned": sparsity(sub)})
    return rows


def pruning_areas(frame):
    """Per seed of a :func:`pruning_curves` frame: area under accuracy-vs-sparsity for both routes."""
    import pandas as pd

    rows = [{"seed": s, "area_threshold": curve_area(d.sparsity, d.acc_threshold),
             "area_prox": curve_area(d.sparsity, d.acc_prox)} for s, d in frame.groupby("seed")]
    return pd.DataFrame(rows).set_index("seed")


def curve_area(sparsities, accs) -> float:
    """Trapezoidal area under accuracy against sparsity (sorted by sparsity)."""
    s, a = np.asarray(sparsities, float), np.asarray(accs, float)
    order = np.argsort(s)
    return float(np.trapezoid(a[order], s[order])) if len(s) > 1 else float("nan")
