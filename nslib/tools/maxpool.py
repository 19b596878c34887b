"""MaxPool with a chosen Jacobian (Boustany, TMLR 2024): the forward is torch's exact max; the backward applies

    J_beta = beta * J_min + (1 - beta) * J_native,

where J_native sends each window's gradient to the one input torch's own backward picks (its argmax index) and
J_min splits it evenly among the window's tied maxima. Where a window has a single maximum the two agree, so J_beta
differs from torch's backward only on tied windows, by ``beta * (J_min - J_native)``; the backward computes exactly
that correction and adds it to torch's own gradient, so that with ``beta = 0`` it *is* torch's gradient, bit for bit.

The authors built J_beta as a forward composite ``beta * m + (1 - beta) * m`` of two max-pool calls, which is m over
the reals but not in floating point: :func:`composite_max_pool` keeps it as an ablation, to show that forward error.

1-D inputs (N, C, L) or (C, L) and 2-D inputs (N, C, H, W) or (C, H, W); every kernel, stride, padding, dilation and
ceil_mode that ``torch.nn.functional.max_pool1d/2d`` accept; any float dtype; CPU or CUDA. :func:`window_ties` counts
the tied windows, and :func:`tie_zones` splits them into ties that exist over the reals (bifurcation) and ties that
rounding created (compensation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaxPool1d", "MaxPool2d", "composite_max_pool", "max_pool", "tie_zones", "window_ties"]


def _pair(v, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, Sequence) else (int(v),) * n


def _to_4d(x: torch.Tensor):
    """(x as (N, C, H, W), 1 or 2 pooling dims, a function taking an (N, C, H', W') result back to x's layout):
    3-D and 2-D inputs are 1-D pooling, (N, C, L) and (C, L), pooled as height-1 images."""
    if x.dim() in (2, 3):
        x4 = (x if x.dim() == 3 else x.unsqueeze(0)).unsqueeze(2)

        def undo(t):
            t = t.squeeze(2)
            return t if x.dim() == 3 else t.squeeze(0)

        return x4, 1, undo
    if x.dim() == 4:
        return x, 2, lambda t: t
    raise ValueError(f"input of shape {tuple(x.shape)}: allowed are (N, C, L), (C, L) for 1-D pooling and "
                     f"(N, C, H, W) for 2-D pooling")


class _Spec:
    """A pooling configuration normalised to 2-D (1-D pooling is 2-D pooling with a 1 x k kernel on height 1)."""

    def __init__(self, dims: int, kernel_size, stride, padding, dilation, ceil_mode):
        self.dims = dims
        k = _pair(kernel_size, dims)
        s = _pair(stride if stride is not None and stride != [] else kernel_size, dims)
        p, d = _pair(padding, dims), _pair(dilation, dims)
        if dims == 1:
            k, s, p, d = (1,) + k, (1,) + s, (0,) + p, (1,) + d
        self.k, self.s, self.p, self.d, self.ceil_mode = k, s, p, d, bool(ceil_mode)

    def pool(self, x4: torch.Tensor, return_indices: bool = False):
        return F.max_pool2d(x4, self.k, self.s, self.p, self.d, self.ceil_mode, return_indices=return_indices)

    def windows(self, x4: torch.Tensor, out_hw, fill: float):
        """Every window's inputs, (N, C, kh * kw, Ho * Wo), with ``fill`` outside the input (padding, ceil_mode).
        The grid is padded (or cropped) to exactly the extent the output's windows cover."""
        N, C, H, W = x4.shape
        pads = []
        for size, k, s, p, d, o in zip((H, W), self.k, self.s, self.p, self.d, out_hw):
            reach = (o - 1) * s + d * (k - 1) + 1  # padded length the last window reaches
            pads.append((p, reach - size - p))  # a negative right pad crops what no window reads
        xp = F.pad(x4, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]), value=fill)
        u = F.unfold(xp.reshape(N * C, 1, *xp.shape[-2:]), self.k, dilation=self.d, stride=self.s)
        return u.reshape(N, C, u.shape[1], u.shape[2]), pads, tuple(xp.shape[-2:])

    def fold_back(self, cols: torch.Tensor, pads, padded_hw, hw) -> torch.Tensor:
        """Sum window contributions (N, C, kh * kw, L) back onto the input grid (N, C, H, W)."""
        N, C = cols.shape[:2]
        g = F.fold(cols.reshape(N * C, cols.shape[2], cols.shape[3]), padded_hw, self.k, dilation=self.d,
                   stride=self.s).reshape(N, C, *padded_hw)
        # undo the padding: drop the left pad, and give inputs beyond every window's reach a zero gradient
        (top, bottom), (left, right) = pads
        return F.pad(g, (-left, -right, -top, -bottom))


class _MaxPoolBeta(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x4, spec: _Spec, beta: float):
        out, idx = spec.pool(x4, return_indices=True)
        ctx.save_for_backward(x4, out, idx)
        ctx.spec, ctx.beta = spec, beta
        return out

    @staticmethod
    def backward(ctx, g):
        x4, out, idx = ctx.saved_tensors
        spec, beta = ctx.spec, ctx.beta
        N, C, H, W = x4.shape
        # torch's own J_native: each window's gradient to its argmax index (summed where windows overlap)
        native = torch.zeros(N, C, H * W, dtype=g.dtype, device=g.device)
        native.scatter_add_(-1, idx.flatten(-2), g.flatten(-2))
        native = native.view(N, C, H, W)
        if beta == 0:
            return native, None, None
        hw = out.shape[-2:]
        cols, pads, padded = spec.windows(x4, hw, float("-inf"))
        tied = cols == out.flatten(-2).unsqueeze(2)  # (N, C, K, L): the window's maxima
        count = tied.sum(2, keepdim=True)
        multi = count > 1  # only tied windows get a correction
        if not bool(multi.any()):
            return native, None, None
        pos = torch.arange(H * W, device=x4.device, dtype=torch.float64).view(1, 1, H, W)
        pos_cols, _, _ = spec.windows(pos.expand(1, 1, H, W).to(torch.float64), hw, -1.0)
        native_onehot = pos_cols == idx.flatten(-2).unsqueeze(2).to(torch.float64)  # (N, C, K, L)
        g_cols = g.flatten(-2).unsqueeze(2)
        even = torch.where(tied & multi, g_cols / count, torch.zeros((), dtype=g.dtype, device=g.device))
        picked = torch.where(native_onehot & multi, g_cols, torch.zeros((), dtype=g.dtype, device=g.device))
        correction = spec.fold_back(even, pads, padded, (H, W)) - spec.fold_back(picked, pads, padded, (H, W))
        return native + beta * correction, None, None


def max_pool(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
             beta: float = 0.0) -> torch.Tensor:
    """``F.max_pool1d`` / ``F.max_pool2d`` (by the input's shape) whose backward is J_beta (module docstring).

    The output equals torch's bit for bit; ``beta = 0`` gives torch's gradient bit for bit, ``beta = 1`` the
    minimal-norm split among ties. 3-D inputs are read as batched 1-D (N, C, L); use (1, C, H, W) for a single
    2-D image."""
    if not x.is_floating_point():
        raise ValueError(f"input dtype {x.dtype}: allowed are floating-point dtypes")
    x4, dims, undo = _to_4d(x)
    spec = _Spec(dims, kernel_size, stride, padding, dilation, ceil_mode)
    return undo(_MaxPoolBeta.apply(x4, spec, float(beta)))


def composite_max_pool(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                       beta: float = 0.0) -> torch.Tensor:
    """The authors' construction, kept as an ablation: ``beta * m_min + (1 - beta) * m`` with m torch's max-pool and
    m_min a max-pool whose backward splits ties evenly. Its backward is J_beta, but its *forward* is not m in
    floating point (``beta * m + (1 - beta) * m`` rounds twice): compare it with :func:`max_pool`."""
    m = max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, beta=0.0)
    m_min = max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, beta=1.0)
    return beta * m_min + (1 - beta) * m


class _MaxPoolNd(nn.Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, beta: float = 0.0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode, self.beta = dilation, ceil_mode, float(beta)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, beta={self.beta:g}")


class MaxPool1d(_MaxPoolNd):
    """``nn.MaxPool1d`` with the backward J_beta (see :func:`max_pool`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3):
            raise ValueError(f"MaxPool1d input of shape {tuple(x.shape)}: allowed are (N, C, L) and (C, L)")
        return max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.beta)


class MaxPool2d(_MaxPoolNd):
    """``nn.MaxPool2d`` with the backward J_beta (see :func:`max_pool`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return max_pool(x.unsqueeze(0), self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.beta).squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"MaxPool2d input of shape {tuple(x.shape)}: allowed are (N, C, H, W) and (C, H, W)")
        return max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.beta)


@torch.no_grad()
def window_ties(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
    """Per output position, how many inputs of its window equal the window's maximum (1: no tie); the shape of the
    max-pool's output. The padding never ties (it is -inf)."""
    x4, dims, undo = _to_4d(x)
    spec = _Spec(dims, kernel_size, stride, padding, dilation, ceil_mode)
    out = spec.pool(x4)
    cols, _, _ = spec.windows(x4, out.shape[-2:], float("-inf"))
    return undo((cols == out.flatten(-2).unsqueeze(2)).sum(2).view(out.shape))


@torch.no_grad()
def tie_zones(x_low: torch.Tensor, x_exact: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1,
              ceil_mode: bool = False) -> dict[str, int]:
    """Split the tied windows of ``x_low`` (a low-precision input) by what ``x_exact`` (the same input computed in
    float64) says: ``bifurcation`` ties exist over the reals too (the float64 window is tied as well, e.g. the zero
    background after a ReLU), ``compensation`` ties were created by rounding (the float64 window has a single
    maximum). Also ``windows`` (all of them) and ``exact_only`` (tied in float64, not in low precision)."""
    args = (kernel_size, stride, padding, dilation, ceil_mode)
    low, exact = window_ties(x_low, *args) > 1, window_ties(x_exact.to(torch.float64), *args) > 1
    return {"windows": int(low.numel()), "bifurcation": int((low & exact).sum()),
            "compensation": int((low & ~exact).sum()), "exact_only": int((~low & exact).sum())}
