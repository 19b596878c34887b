"""Models: an MLP with the activation chosen by name, including ReLU with a chosen derivative at 0."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "INITS", "ReLUAlpha", "make_activation", "mlp", "relu_alpha"]

ACTIVATIONS = ("relu", "relu-alpha", "softplus", "gelu", "silu", "tanh", "elu", "identity")
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")


class KinkFn(torch.autograd.Function):
    """relu or abs forward; backward g * (relu'(z) or sign(z)) away from 0 and g * zero_slope at exact zeros.

    ``zero_slope`` is a float or a tensor broadcastable to z (one choice per element, as the Clarke tools need);
    -0.0 counts as 0. Shared by :func:`relu_alpha` and :mod:`nslib._clarke`.
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


def make_activation(name: str, *, alpha: float = 0.0, beta: float = 1.0) -> nn.Module:
    """Activation by name; ``alpha`` is ReLU'(0) for ``relu-alpha``, ``beta`` the softplus sharpness."""
    table = {
        "relu": lambda: nn.ReLU(),
        "relu-alpha": lambda: ReLUAlpha(alpha),
        "softplus": lambda: nn.Softplus(beta=beta),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(),
        "tanh": lambda: nn.Tanh(),
        "elu": lambda: nn.ELU(),
        "identity": lambda: nn.Identity(),
    }
    if name not in table:
        raise ValueError(f"activation = {name!r}: allowed is one of {', '.join(ACTIVATIONS)}")
    return table[name]()


def _init_linear(layer: nn.Linear, init: str) -> None:
    if init == "default":
        return
    fn = {"xavier_uniform": nn.init.xavier_uniform_, "xavier_normal": nn.init.xavier_normal_,
          "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
          "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")}.get(init)
    if fn is None:
        raise ValueError(f"init = {init!r}: allowed is one of {', '.join(INITS)}")
    fn(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def mlp(sizes: Sequence[int], activation: str = "relu", *, bias: bool = True, init: str = "default",
        alpha: float = 0.0, beta: float = 1.0, dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu") -> nn.Sequential:
    """Fully connected net ``sizes[0] -> ... -> sizes[-1]``, the activation between layers (not after the last)."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes = {list(sizes)}: allowed is at least two positive layer widths")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(int(a), int(b), bias=bias)
        _init_linear(lin, init)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(make_activation(activation, alpha=alpha, beta=beta))
    return nn.Sequential(*layers).to(device=device, dtype=dtype)
