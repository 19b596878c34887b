"""Models: an MLP with the activation chosen by name (including ReLU with a chosen derivative at 0), and a
model's loss as a function of one flat parameter vector (what curvature and flow tools integrate over)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .kinks import ReLUAlpha

__all__ = ["ACTIVATIONS", "INITS", "BufferSoftplus", "FlatLoss", "buffer_softplus", "flat_loss", "make_activation",
           "mlp"]

#: Activation names accepted by :func:`make_activation` and :func:`mlp`.
ACTIVATIONS = ("relu", "relu-alpha", "softplus", "softplus-buffer", "gelu", "silu", "tanh", "elu", "identity")
#: Weight initialisations accepted by :func:`mlp`.
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")


class BufferSoftplus(nn.Module):
    """softplus_beta(x) = log(1 + exp(beta x)) / beta (linear where beta x > 20, as ``nn.Softplus``), with beta
    held in a buffer rather than a Python float, so that members of a :class:`nslib.tools.ensembles.Ensemble` may
    differ in beta. Same values as ``nn.Softplus(beta)``; gradients can differ from it in the last bit."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.register_buffer("beta", torch.tensor(float(beta)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return buffer_softplus(x, self.beta)


def buffer_softplus(x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """What :class:`BufferSoftplus` computes, with ``beta`` a tensor that broadcasts against ``x`` (one beta per
    member of an ensemble: shape (M, 1, 1) against activations (M, N, F))."""
    z = x * beta
    return torch.where(z > 20, x, torch.nn.functional.softplus(z) / beta)


def make_activation(name: str, *, alpha: float = 0.0, beta: float = 1.0) -> nn.Module:
    """Activation by name; ``alpha`` is ReLU'(0) for ``relu-alpha``, ``beta`` the softplus sharpness."""
    table = {
        "relu": lambda: nn.ReLU(),
        "relu-alpha": lambda: ReLUAlpha(alpha),
        "softplus": lambda: nn.Softplus(beta=beta),
        "softplus-buffer": lambda: BufferSoftplus(beta),
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


class FlatLoss:
    """``loss(theta)`` of a model on fixed data as a function of one flat parameter vector ``theta``.

    Calling it runs the model through :func:`torch.func.functional_call` with parameters cut from ``theta`` in
    ``model.named_parameters()`` order, so that :mod:`torch.func` transforms (``grad``, ``jvp``, ``hessian``) apply.
    Buffers (batch-norm statistics) are used as they are and never updated.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 X: torch.Tensor, y: torch.Tensor):
        self.model, self.loss_fn, self.X, self.y = model, loss_fn, X, y
        named = [(k, p) for k, p in model.named_parameters()]
        self.names = [k for k, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        self.buffers = dict(model.named_buffers())

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def initial(self) -> torch.Tensor:
        """The model's current parameters as one flat vector (a copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()]).clone()

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: tensor}`` views of ``theta`` in the model's shapes."""
        return {k: t.view(s) for k, t, s in zip(self.names, torch.split(theta, self.sizes), self.shapes)}

    def output(self, theta: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """The model's output at parameters ``theta`` on ``X`` (default: the loss's data)."""
        return torch.func.functional_call(self.model, ({**self.unflatten(theta), **self.buffers},),
                                          (self.X if X is None else X,))

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.output(theta), self.y)


def flat_loss(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              X: torch.Tensor, y: torch.Tensor) -> tuple[FlatLoss, torch.Tensor]:
    """``(f, theta0)``: the full-batch loss of ``model`` on (X, y) as a function of a flat parameter vector, and
    the model's current parameters flattened in the same order (see :class:`FlatLoss`)."""
    f = FlatLoss(model, loss_fn, X, y)
    return f, f.initial()
