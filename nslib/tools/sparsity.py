"""Sparsity of weights: the L1 proximal map (soft-thresholding), magnitude pruning, and the area under an
accuracy-against-sparsity curve."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["curve_area", "magnitude_prune", "penalised_weights", "soft_threshold", "sparsity"]


def soft_threshold(W: torch.Tensor, t) -> torch.Tensor:
    """Proximal map of t * ||.||_1: sign(W) * max(|W| - t, 0)."""
    return torch.sign(W) * torch.clamp(W.abs() - t, min=0.0)


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


def curve_area(sparsities, accs) -> float:
    """Trapezoidal area under accuracy against sparsity (sorted by sparsity)."""
    s, a = np.asarray(sparsities, float), np.asarray(accs, float)
    order = np.argsort(s)
    return float(np.trapezoid(a[order], s[order])) if len(s) > 1 else float("nan")
