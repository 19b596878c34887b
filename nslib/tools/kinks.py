"""Kinks: ReLU with a chosen ReLU'(0), and the recorder through which abs-smooth functions are written.

- :func:`relu_alpha` / :class:`ReLUAlpha`: ReLU whose derivative at exact zeros is ``alpha`` times the upstream
  gradient (torch's own relu uses 0); -0.0 counts as 0.
- :class:`Kinks`: the kink operations handed to a function ``f(x, k)``; it records every pre-activation and applies
  a chosen derivative at 0 (or a chosen side per element), so that :mod:`nslib.tools.clarke` can evaluate every
  smooth piece.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KinkFn", "Kinks", "ReLUAlpha", "relu_alpha"]


class KinkFn(torch.autograd.Function):
    """relu or abs forward; backward g * (relu'(z) or sign(z)) away from 0 and g * zero_slope at exact zeros.

    ``zero_slope`` is a float or a tensor broadcastable to z (one choice per element, as the Clarke tools need);
    -0.0 counts as 0. Shared by :func:`relu_alpha`, :class:`Kinks` and :mod:`nslib.tools.clarke`.
    """

    @staticmethod
    def forward(ctx, z, kind: str, zero_slope):
        ctx.save_for_backward(z)
        ctx.kind, ctx.zero_slope = kind, zero_slope
        return z.clamp_min(0) if kind == "relu" else z.abs()

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        base = (z > 0).to(grad.dtype) if ctx.kind == "relu" else torch.sign(z)
        return grad * (base + ctx.zero_slope * (z == 0).to(grad.dtype)), None, None


def relu_alpha(x: torch.Tensor, alpha: float | torch.Tensor = 0.0) -> torch.Tensor:
    """ReLU whose derivative at exactly 0 is ``alpha`` times the upstream gradient (torch's relu uses 0)."""
    return KinkFn.apply(x, "relu", alpha if isinstance(alpha, torch.Tensor) else float(alpha))


class ReLUAlpha(nn.Module):
    """Module form of :func:`relu_alpha`."""

    def __init__(self, alpha: float = 0.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return relu_alpha(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"


class Kinks:
    """The kink operations handed to ``f``: records every pre-activation and applies a derivative at 0.

    ``choice`` maps a kink kind to the derivative used at exact zeros ('relu' -> ReLU'(0), 'abs' -> |.|'(0)),
    unless ``pattern`` gives one per tied element: a list (per site) of tensors of +1 / -1 / 0 (not tied).
    """

    def __init__(self, choice: dict[str, float] | None = None, pattern: list[torch.Tensor] | None = None):
        self.choice = {"relu": 0.0, "abs": 0.0, **(choice or {})}
        self.pattern = pattern
        self.sites: list[torch.Tensor] = []
        self.kinds: list[str] = []

    def _apply(self, z: torch.Tensor, kind: str) -> torch.Tensor:
        i = len(self.sites)
        self.sites.append(z)
        self.kinds.append(kind)
        slope: float | torch.Tensor = self.choice[kind]
        if self.pattern is not None and i < len(self.pattern):
            s = self.pattern[i].to(z.dtype)
            # side +1: the piece where z > 0; side -1: where z < 0
            slope = (s > 0).to(z.dtype) if kind == "relu" else s
        return KinkFn.apply(z, kind, slope)

    def relu(self, z: torch.Tensor) -> torch.Tensor:
        return self._apply(z, "relu")

    def abs(self, z: torch.Tensor) -> torch.Tensor:
        return self._apply(z, "abs")
