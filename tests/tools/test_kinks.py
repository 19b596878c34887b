"""The kink audit on hand-built inputs whose counts are known exactly, MaxPool ties against a brute-force loop over
windows, outputs unchanged, layer attribution; ReLU'(0) = alpha at every precision."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nslib.tools.kinks import audit, audit_inputs, load_model, relu_alpha


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _hits(fn, x):
    t = audit(Fn(fn), x)
    assert len(t) == 1, t
    return int(t.sites[0]), int(t.hits[0]), t.operation[0]


X = torch.tensor([0.0, -0.0, 1.0, -1.0, 6.0, -2.0, 2.0, 0.5])


@pytest.mark.parametrize("fn,hits", [
    (torch.relu, 2), (F.relu, 2), (lambda x: x.relu(), 2), (lambda x: F.leaky_relu(x, 0.1), 2),
    (F.relu6, 3),  # 0, -0.0 and 6
    (F.hardtanh, 2),  # the corners -1 and 1
    (lambda x: F.hardtanh(x, -2.0, 2.0), 2),
    (lambda x: torch.clamp(x, -2.0, 2.0), 2), (lambda x: x.clamp(min=0.5), 1), (lambda x: x.clamp_min(0), 2),
    (lambda x: x.clamp(max=1.0), 1), (torch.abs, 2), (lambda x: x.abs(), 2),
    (lambda x: relu_alpha(x, 1.0), 2),  # our ReLU: its forward is clamp_min(0)
])
def test_elementwise_kinks_are_counted_exactly(fn, hits):
    sites, got, _ = _hits(fn, X)
    assert (sites, got) == (len(X), hits)


def test_max_ties_reductions_and_pairs():
    x = torch.tensor([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0], [5.0, 5.0, 5.0]])
    assert _hits(lambda t: t.max(dim=1).values, x)[:2] == (3, 2)
    assert _hits(lambda t: torch.amax(t, dim=0), x)[:2] == (3, 0)  # every column has a single 5
    assert _hits(lambda t: torch.amax(t, dim=1), x)[:2] == (3, 2)
    assert _hits(lambda t: t.max(), x)[:2] == (1, 1)
    assert _hits(lambda t: torch.maximum(t, torch.full_like(t, 3.0)), x)[:2] == (9, 2)


def _pool_ties_brute(x, k, s, p, d, ceil):
    """Loop over the output windows of max_pool2d: a window ties when its maximum appears twice or more."""
    out = F.max_pool2d(x, k, s, p, d, ceil)
    n, c, h, w = x.shape
    ties = 0
    for b, ch, i, j in itertools.product(range(n), range(c), range(out.shape[2]), range(out.shape[3])):
        vals = [float(x[b, ch, r, q]) for r in range(i * s - p, i * s - p + d * (k - 1) + 1, d)
                for q in range(j * s - p, j * s - p + d * (k - 1) + 1, d) if 0 <= r < h and 0 <= q < w]
        ties += sum(v == max(vals) for v in vals) > 1
    return out.numel(), ties


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (2, 1, 1, 2, False),
                                          (3, 2, 1, 1, True), (2, 3, 0, 1, True)])
def test_maxpool_ties_match_a_brute_force_loop(k, s, p, d, ceil):
    x = torch.randint(0, 3, (2, 2, 7, 6), generator=torch.Generator().manual_seed(k + s + p)).float()
    t = audit(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), x)
    assert (int(t.sites[0]), int(t.hits[0])) == _pool_ties_brute(x, k, s, p, d, ceil)


def test_maxpool1d_ceil_mode_window_past_the_end():
    t = audit(nn.MaxPool1d(2, ceil_mode=True), torch.tensor([[[1.0, 1.0, 2.0, 3.0, 3.0]]]))
    assert (int(t.sites[0]), int(t.hits[0])) == (3, 1)  # [1, 1] ties; [2, 3] does not; [3] alone does not


def test_outputs_unchanged_and_hits_attributed_to_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Sequential(nn.Linear(6, 6), nn.ReLU6()),
                          nn.Linear(6, 2))
    with torch.no_grad():
        model[0].bias.copy_(torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 2.0]))
        model[0].weight.zero_()  # the first layer's pre-activations are the biases: 3 exact zeros per sample
    x = torch.randn(5, 4)
    before = model(x)
    table = audit(model, x, x)
    assert torch.equal(model(x), before)
    row = table.set_index("layer").loc["1"]
    assert (row.module, row.sites, row.hits) == ("ReLU", 60, 30)  # in-place: inputs read before the op
    assert "2.1" in set(table.layer)


def test_audit_needs_a_batch():
    with pytest.raises(ValueError, match="at least one"):
        audit(nn.ReLU())


def test_load_model_and_inputs_errors(tmp_path):
    with pytest.raises(ValueError, match="package.module:factory"):
        load_model("no-such-file")
    with pytest.raises(ValueError, match="cannot import"):
        load_model("nslib.tools.kinks:nothing_here")
    torch.save({"w": torch.zeros(1)}, tmp_path / "sd.pt")
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        load_model(str(tmp_path / "sd.pt"))
    with pytest.raises(ValueError, match="input-shape"):
        audit_inputs(None, None, 4, 1, torch.float32)
    assert [b.shape for b in audit_inputs((1, 8, 8), "digits", 4, 2, torch.float32)] == [(4, 1, 8, 8)] * 2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_relu_alpha_scales_the_upstream_gradient_at_every_precision(dtype):
    z = torch.tensor([-1.0, -0.0, 0.0, 2.0], dtype=dtype, requires_grad=True)
    (relu_alpha(z, 0.5) * torch.tensor([2.0, 3.0, 5.0, 7.0], dtype=dtype)).sum().backward()
    assert np.array_equal(z.grad.double().numpy(), [0.0, 1.5, 2.5, 7.0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_relu_alpha_constant_rule_sets_the_gradient_at_zero_to_alpha(dtype):
    """The authors' rule (deel-ai/relu-prime relu.py): alpha where z == 0 whatever the upstream gradient, the chain
    rule elsewhere; the forward pass is the same ReLU. Reference: the rule computed by hand."""
    from nslib.tools.kinks import RELU_GRAD_RULES, ReLUAlpha

    assert RELU_GRAD_RULES == ("scaled", "constant")
    z = torch.tensor([-1.0, -0.0, 0.0, 2.0], dtype=dtype, requires_grad=True)
    up = torch.tensor([2.0, 3.0, 5.0, 7.0], dtype=dtype)
    out = relu_alpha(z, 0.5, rule="constant")
    (out * up).sum().backward()
    assert torch.equal(out, torch.relu(z.detach()))
    assert torch.equal(z.grad, torch.tensor([0.0, 0.5, 0.5, 7.0], dtype=dtype))
    z.grad = None
    (ReLUAlpha(0.5, rule="constant")(z) * up).sum().backward()
    assert torch.equal(z.grad, torch.tensor([0.0, 0.5, 0.5, 7.0], dtype=dtype))
    assert "rule=constant" in repr(ReLUAlpha(0.5, rule="constant")) and "rule" not in repr(ReLUAlpha(0.5))
    with pytest.raises(ValueError, match="scaled, constant"):
        relu_alpha(z, 0.5, rule="authors")
