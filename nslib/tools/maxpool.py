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
the tied windows, and :func:`tie_zones` splits them as the paper defines its zones: ties over the reals where the
Jacobian choice changes the gradient (bifurcation), ties over the reals where it cannot (inert), and ties that
rounding created (compensation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaxPool1d", "MaxPool2d", "composite_max_pool", "max_pool", "pool_windows", "tie_zones", "window_ties"]


#: torch's max-pool by number of pooled dimensions.
_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(int(a) for a in v) if isinstance(v, Sequence) else (int(v),) * n


def _config(dims: int, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """(kernel, stride, padding, dilation, ceil_mode) as tuples of ``dims`` ints; no stride means the kernel."""
    k = _tuple(kernel_size, dims)
    s = _tuple(stride, dims) if stride not in (None, [], ()) else k
    return k, s, _tuple(padding, dims), _tuple(dilation, dims), bool(ceil_mode)


def _pooled_dims(x: torch.Tensor) -> int:
    """2-D and 3-D inputs pool in 1-D ((C, L), (N, C, L)), 4-D inputs in 2-D ((N, C, H, W))."""
    if x.dim() in (2, 3):
        return 1
    if x.dim() == 4:
        return 2
    raise ValueError(f"input of shape {tuple(x.shape)}: allowed are (N, C, L), (C, L) for 1-D pooling and "
                     f"(N, C, H, W) for 2-D pooling")


def pool_windows(x: torch.Tensor, dims: int, kernel_size, *, stride=None, padding=0, dilation=1,
                 ceil_mode: bool = False, fill: float = float("-inf"), out_shape: Sequence[int] | None = None):
    """The input of every max-pool window over the last ``dims`` axes of ``x``: shape (..., *out spatial, K), one
    window per output element, K = prod(kernel), in the order torch reads a window; ``fill`` where a window reaches
    into the padding or past the end (ceil_mode). ``out_shape`` (the output's spatial shape) is computed by torch's
    own max-pool when not given, so every kernel, stride, padding, dilation and ceil_mode it accepts is handled."""
    k, s, p, d, ceil = _config(dims, kernel_size, stride, padding, dilation, ceil_mode)
    if out_shape is None:
        out_shape = _POOL[dims](x, k, s, p, d, ceil).shape[-dims:]
    pads = []
    for i in reversed(range(dims)):  # F.pad lists the last dim first
        span = (out_shape[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1  # the padded length the last window reaches
        pads += [p[i], max(0, span - x.shape[-dims + i] - p[i])]
    w = F.pad(x, pads, value=fill)
    for i in range(dims):  # windows along each spatial dim, dilation by slicing the unfolded span
        dim = x.dim() - dims + i  # unfold appends the window at the end, so spatial dims keep their place
        w = w.unfold(dim, d[i] * (k[i] - 1) + 1, s[i])[..., :: d[i]]
        w = w.narrow(dim, 0, out_shape[i])
    return w.flatten(start_dim=x.dim())


class _MaxPoolBeta(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dims: int, config: tuple, beta: float):
        out, idx = _POOL[dims](x, *config[:4], ceil_mode=config[4], return_indices=True)
        ctx.save_for_backward(x, out, idx)
        ctx.dims, ctx.config, ctx.beta = dims, config, beta
        return out

    @staticmethod
    def backward(ctx, g):
        x, out, idx = ctx.saved_tensors
        dims, config, beta = ctx.dims, ctx.config, ctx.beta
        spatial = x.shape[-dims:]
        flat = x.shape[:-dims] + (int(torch.tensor(spatial).prod()),)
        # torch's own J_native: each window's gradient to its argmax index (summed where windows overlap)
        native = torch.zeros(flat, dtype=g.dtype, device=g.device)
        native.scatter_add_(-1, idx.flatten(-dims), g.flatten(-dims))
        native = native.view(x.shape)
        if beta == 0:
            return native, None, None, None
        out_shape = out.shape[-dims:]
        k, stride, padding, dilation, ceil_mode = config
        window = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode, out_shape=out_shape)
        tied = pool_windows(x, dims, k, **window) == out.unsqueeze(-1)  # (..., *out, K)
        count = tied.sum(-1, keepdim=True)
        multi = count > 1  # only tied windows get a correction
        if not bool(multi.any()):
            return native, None, None, None
        # where each window element sits in the flattened input (-1 in the padding), to scatter the correction
        pos = torch.arange(flat[-1], device=x.device, dtype=torch.float64).view(spatial)
        where = pool_windows(pos, dims, k, fill=-1.0, **window)  # (*out, K)
        picked = where == idx.unsqueeze(-1).to(torch.float64)  # torch's argmax in each window
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        g_win = g.unsqueeze(-1)
        corr = (torch.where(tied & multi, g_win / count, zero) - torch.where(picked & multi, g_win, zero))
        target = where.long().clamp(min=0).expand(corr.shape)  # padding elements carry a zero correction
        correction = torch.zeros(flat, dtype=g.dtype, device=g.device)
        correction.scatter_add_(-1, target.flatten(-dims - 1), corr.flatten(-dims - 1))
        return native + beta * correction.view(x.shape), None, None, None


def max_pool(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, *,
             beta: float = 0.0) -> torch.Tensor:
    """``F.max_pool1d`` / ``F.max_pool2d`` (by the input's shape) whose backward is J_beta (module docstring).

    The output equals torch's bit for bit; ``beta = 0`` gives torch's gradient bit for bit, ``beta = 1`` the
    minimal-norm split among ties. 3-D inputs are read as batched 1-D (N, C, L); use (1, C, H, W) for a single
    2-D image."""
    if not x.is_floating_point():
        raise ValueError(f"input dtype {x.dtype}: allowed are floating-point dtypes")
    dims = _pooled_dims(x)
    return _MaxPoolBeta.apply(x, dims, _config(dims, kernel_size, stride, padding, dilation, ceil_mode), float(beta))


def composite_max_pool(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, *,
                       beta: float = 0.0) -> torch.Tensor:
    """The authors' construction, kept as an ablation: ``beta * m_min + (1 - beta) * m`` with m torch's max-pool and
    m_min a max-pool whose backward splits ties evenly. Its backward is J_beta, but its *forward* is not m in
    floating point (``beta * m + (1 - beta) * m`` rounds twice): compare it with :func:`max_pool`."""
    m = max_pool(x, kernel_size, stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode, beta=0.0)
    m_min = max_pool(x, kernel_size, stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode, beta=1.0)
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
        return max_pool(x, self.kernel_size, self.stride, padding=self.padding, dilation=self.dilation,
                        ceil_mode=self.ceil_mode, beta=self.beta)


class MaxPool2d(_MaxPoolNd):
    """``nn.MaxPool2d`` with the backward J_beta (see :func:`max_pool`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return max_pool(x.unsqueeze(0), self.kernel_size, self.stride, padding=self.padding, dilation=self.dilation,
                            ceil_mode=self.ceil_mode, beta=self.beta).squeeze(0)
        if x.dim() != 4:
            raise ValueError(f"MaxPool2d input of shape {tuple(x.shape)}: allowed are (N, C, H, W) and (C, H, W)")
        return max_pool(x, self.kernel_size, self.stride, padding=self.padding, dilation=self.dilation,
                        ceil_mode=self.ceil_mode, beta=self.beta)


@torch.no_grad()
def window_ties(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, *,
                dims: int | None = None) -> torch.Tensor:
    """Per output position, how many inputs of its window equal the window's maximum (1: no tie); the shape of the
    max-pool's output. ``dims`` (pooled dimensions, 1 to 3) is read from the input's shape when not given. The
    padding never ties (it is -inf). The kink audit (:mod:`nslib.tools.kinks`) counts MaxPool ties with it."""
    dims = _pooled_dims(x) if dims is None else dims
    k, s, p, d, ceil = _config(dims, kernel_size, stride, padding, dilation, ceil_mode)
    out = _POOL[dims](x, k, s, p, d, ceil)
    windows = pool_windows(x, dims, k, stride=s, padding=p, dilation=d, ceil_mode=ceil, out_shape=out.shape[-dims:])
    return (windows == out.unsqueeze(-1)).sum(-1)


@torch.no_grad()
def tie_zones(x_low: torch.Tensor, x_exact: torch.Tensor, kernel_size, *, stride=None, padding=0, dilation=1,
              ceil_mode: bool = False, tangents: torch.Tensor | None = None, upstream: torch.Tensor | None = None,
              rtol: float = 1e-9) -> dict[str, int]:
    """Split the tied windows of ``x_low`` (a low-precision input) as Boustany defines the zones, by what ``x_exact``
    (the same input computed in float64) says:

    - ``compensation``: tied only after rounding (the float64 window has a single maximum);
    - ``bifurcation``: tied over the reals too, *and* the choice of Jacobian changes the backpropagated gradient:
      the tied inputs depend differently on the parameters (their ``tangents`` differ) and the window's output
      receives a gradient (``upstream`` is not 0);
    - ``inert``: tied over the reals, but the choice cannot change the parameters' gradient: the tied inputs have
      the same derivative with respect to every parameter (e.g. a constant background, where tied positions see
      identical receptive fields) or the window passes no gradient back.

    ``tangents`` (R, *x_exact.shape): directional derivatives of the pool input along R random parameter directions
    (a JVP; rows of the Jacobian that differ give different values along a random direction with probability 1);
    two tied inputs count as equal when their tangents differ by at most ``rtol`` times the layer's largest tangent.
    ``upstream``: the gradient at the pool's output. Without them every real tie counts as bifurcation (an upper
    bound). Also ``windows`` (all of them) and ``exact_only`` (tied in float64, not in low precision)."""
    window = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    dims = _pooled_dims(x_exact)
    exact_x = x_exact.to(torch.float64)
    low = window_ties(x_low, kernel_size, dims=dims, **window) > 1
    exact = window_ties(exact_x, kernel_size, dims=dims, **window) > 1
    real = low & exact
    matters = torch.ones_like(real)
    if tangents is not None:
        k, s, p, d, ceil = _config(dims, kernel_size, stride, padding, dilation, ceil_mode)
        out = _POOL[dims](exact_x, k, s, p, d, ceil)
        cfg = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil, out_shape=out.shape[-dims:])
        tied_member = pool_windows(exact_x, dims, k, **cfg) == out.unsqueeze(-1)  # (..., K): the window's maxima
        scale = float(tangents.abs().max()) or 1.0
        differ = torch.zeros_like(real)
        for t in tangents.to(torch.float64):
            tw = pool_windows(t, dims, k, fill=0.0, **cfg)
            hi = torch.where(tied_member, tw, torch.full_like(tw, -torch.inf)).amax(-1)
            lo = torch.where(tied_member, tw, torch.full_like(tw, torch.inf)).amin(-1)
            differ |= (hi - lo) > rtol * scale
        matters &= differ
    if upstream is not None:
        matters &= upstream.to(torch.float64) != 0
    return {"windows": int(low.numel()), "bifurcation": int((real & matters).sum()),
            "inert": int((real & ~matters).sum()), "compensation": int((low & ~exact).sum()),
            "exact_only": int((~low & exact).sum())}
