import itertools

import pytest
import torch
import torch.nn.functional as F

from nslib.tools import maxpool

CONFIGS_2D = [  # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 1, True), ((2, 3), (1, 2), (1, 0), 1, False),
    (2, 2, 0, 2, False), (3, 2, 0, 1, True),
]
CONFIGS_1D = [(2, None, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 2, True), (4, 3, 2, 1, True)]


def _brute_force_grad(x, g, idx, cfg, beta, dims):
    """J_beta^T g by loops over windows: the window's gradient goes to torch's argmax (1 - beta), and beta/k to each
    of its k tied maxima; ties judged on the float64 values of the input."""
    k, s, p, d, ceil = cfg
    if dims == 1:
        x, g, idx = x.unsqueeze(2), g.unsqueeze(2), idx.unsqueeze(2)
        k, s, p, d = (1, k), (1, s if s is not None else k), (0, p), (1, d)
    else:
        k = k if isinstance(k, tuple) else (k, k)
        s = (s if isinstance(s, tuple) else (s, s)) if s is not None else k
        p = p if isinstance(p, tuple) else (p, p)
        d = d if isinstance(d, tuple) else (d, d)
    N, C, H, W = x.shape
    out = torch.zeros(N, C, H, W, dtype=torch.float64)
    xd = x.double()
    for n, c, oh, ow in itertools.product(range(N), range(C), range(g.shape[2]), range(g.shape[3])):
        cells = [(oh * s[0] - p[0] + i * d[0], ow * s[1] - p[1] + j * d[1]) for i in range(k[0]) for j in range(k[1])]
        cells = [(h, w) for h, w in cells if 0 <= h < H and 0 <= w < W]
        m = max(xd[n, c, h, w] for h, w in cells)
        tied = [(h, w) for h, w in cells if xd[n, c, h, w] == m]
        gv = float(g[n, c, oh, ow])
        ih, iw = divmod(int(idx[n, c, oh, ow]), W)
        out[n, c, ih, iw] += (1 - beta) * gv
        for h, w in tied:
            out[n, c, h, w] += beta * gv / len(tied)
    return out.squeeze(2) if dims == 1 else out


def _tied_input(shape, seed):
    """Integers in {0, 1, 2}: ties everywhere, and distinct values where a window has a single maximum."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, shape, generator=g).double()


CASES = ([(2, (2, 2, 7, 6), cfg, beta) for cfg in CONFIGS_2D for beta in (0.0, 1.0, 0.5, 1e4)]
         + [(1, (3, 2, 11), cfg, beta) for cfg in CONFIGS_1D for beta in (0.0, 1.0, 100.0)])


@pytest.mark.parametrize("dims, shape, cfg, beta", CASES)
def test_backward_against_hand_computed_jacobians_with_ties(dims, shape, cfg, beta):
    pool = F.max_pool2d if dims == 2 else F.max_pool1d
    x = _tied_input(shape, seed=dims).requires_grad_()
    out = maxpool.max_pool(x, *cfg, beta=beta)
    ref_out, idx = pool(x.detach(), *cfg[:4], ceil_mode=cfg[4], return_indices=True)
    assert torch.equal(out, ref_out)
    g = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad(out, x, g)
    torch.testing.assert_close(grad, _brute_force_grad(x.detach(), g, idx, cfg, beta, dims), rtol=1e-12, atol=1e-9)
    if beta == 0.0:  # torch's own gradient, bit for bit
        (native,) = torch.autograd.grad(pool(x, *cfg[:4], ceil_mode=cfg[4]), x, g)
        assert torch.equal(grad, native)


def test_a_hand_worked_window():
    """One 2x2 window [[1, 3], [3, 0]]: torch sends the gradient to the first 3; J_min splits it between both."""
    x = torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]], dtype=torch.float64, requires_grad=True)
    for beta, expected in [(0.0, [[0, 1], [0, 0]]), (1.0, [[0, 0.5], [0.5, 0]]), (10.0, [[0, -4], [5, 0]])]:
        (grad,) = torch.autograd.grad(maxpool.max_pool(x, 2, beta=beta), x, torch.tensor([[[[1.0]]]]).double())
        assert grad[0, 0].tolist() == expected


@pytest.mark.parametrize("cfg", CONFIGS_2D[:4])
def test_gradcheck_away_from_ties(cfg):
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    for beta in (0.0, 1.0, 1e3):
        assert torch.autograd.gradcheck(lambda t, b=beta: maxpool.max_pool(t, *cfg, beta=b), (x,))


def test_without_ties_every_beta_is_torchs_gradient_bit_for_bit():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(6)).requires_grad_()
    g = torch.randn(2, 3, 4, 4)
    (ref,) = torch.autograd.grad(F.max_pool2d(x, 2), x, g)
    for beta in (1.0, 1e4):
        (grad,) = torch.autograd.grad(maxpool.max_pool(x, 2, beta=beta), x, g)
        assert torch.equal(grad, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_matches_the_float64_rule(dtype):
    x = _tied_input((2, 2, 6, 6), seed=7).to(dtype).requires_grad_()
    out = maxpool.max_pool(x, 2, beta=100.0)
    _, idx = F.max_pool2d(x.detach(), 2, return_indices=True)
    g = torch.ones(out.shape, dtype=dtype)
    (grad,) = torch.autograd.grad(out, x, g)
    assert grad.dtype == dtype
    ref = _brute_force_grad(x.detach(), g, idx, (2, None, 0, 1, False), 100.0, 2)
    torch.testing.assert_close(grad.double(), ref, rtol=1e-2, atol=0.05)


def test_modules_and_composite_ablation():
    x = _tied_input((2, 3, 6, 6), seed=8).requires_grad_()
    pool = maxpool.MaxPool2d(2, beta=1e4)
    assert "beta=10000" in repr(pool) and torch.equal(pool(x), F.max_pool2d(x, 2))
    g = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    comp = maxpool.composite_max_pool(x, 2, beta=1e4)
    (g1,) = torch.autograd.grad(pool(x), x, g)
    (g2,) = torch.autograd.grad(comp, x, g)
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-9)  # same Jacobian over the reals
    x16 = (torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(9)) * 2).half()  # 1e4 x 2 fits in fp16
    err = (maxpool.composite_max_pool(x16, 2, beta=1e4).float() - F.max_pool2d(x16, 2).float()).abs().max()
    assert 0.5 < err < 100  # the composite's forward is not the max at 16 bits
    assert torch.equal(maxpool.MaxPool1d(3, 2)(x16[0]), F.max_pool1d(x16[0], 3, 2))


def test_window_ties_and_zones():
    x = torch.tensor([[[0.0, 0.0, 1.0, 2.0, 1.0 + 2 ** -12, 1.0]]])  # windows of 2: (0, 0) tie, (1 + eps, 1)
    assert maxpool.window_ties(x, 2).tolist() == [[[2, 1, 1]]]
    low = x.half()  # 1 + 2^-12 rounds to 1 in float16: a tie that rounding created
    assert maxpool.window_ties(low, 2).tolist() == [[[2, 1, 2]]]
    assert maxpool.tie_zones(low, x, 2) == {"windows": 3, "bifurcation": 1, "inert": 0, "compensation": 1,
                                            "exact_only": 0}
    with pytest.raises(ValueError, match="allowed are"):
        maxpool.max_pool(torch.zeros(1, 1, 1, 2, 2), 2)
    with pytest.raises(ValueError, match="floating-point"):
        maxpool.max_pool(torch.zeros(1, 2, 4, dtype=torch.long), 2)


def test_tie_zones_classify_windows_built_by_hand():
    """Windows of 2: (0, 0) tied with equal tangents -> inert; (1, 1) tied with different tangents -> bifurcation
    (inert once its output passes no gradient); (2, 2) tied, equal tangents -> inert; (3, 3 + 2^-12) tied only in
    float16 -> compensation."""
    x = torch.tensor([[[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0 + 2 ** -11]]], dtype=torch.float64)
    low = x.half()
    tangents = torch.tensor([[[[5.0, 5.0, 1.0, 2.0, 3.0, 3.0, 0.0, 9.0]]],
                             [[[1.0, 1.0, 4.0, 4.0, -2.0, -2.0, 0.0, 1.0]]]], dtype=torch.float64)
    ones = torch.ones(1, 1, 4, dtype=torch.float64)
    zones = maxpool.tie_zones(low, x, 2, tangents=tangents, upstream=ones)
    assert zones == {"windows": 4, "bifurcation": 1, "inert": 2, "compensation": 1, "exact_only": 0}
    silent = maxpool.tie_zones(low, x, 2, tangents=tangents, upstream=torch.tensor([[[1.0, 0.0, 1.0, 1.0]]]))
    assert silent["bifurcation"] == 0 and silent["inert"] == 3
    # equal up to rounding in the last bits still counts as equal; a difference above rtol does not
    nearly = tangents.clone()
    nearly[0, 0, 0, 4] += 1e-14
    assert maxpool.tie_zones(low, x, 2, tangents=nearly, upstream=ones)["inert"] == 2
    nearly[0, 0, 0, 4] += 1e-6
    assert maxpool.tie_zones(low, x, 2, tangents=nearly, upstream=ones)["bifurcation"] == 2
