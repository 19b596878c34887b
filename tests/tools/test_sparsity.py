"""Soft-thresholding, magnitude pruning and the accuracy-sparsity area against direct computations."""

import numpy as np
import pytest
import torch

from nslib.tools.models import mlp
from nslib.tools.sparsity import curve_area, magnitude_prune, penalised_weights, soft_threshold, sparsity


def test_magnitude_prune_reaches_the_target_and_keeps_the_largest():
    net = mlp([4, 5, 3], "relu")
    before = torch.cat([w.detach().abs().flatten() for w in penalised_weights(net)])
    magnitude_prune(net, 0.5)
    assert sparsity(net) == pytest.approx(0.5, abs=1 / 35)
    after = torch.cat([w.detach().abs().flatten() for w in penalised_weights(net)])
    kept = after != 0
    assert before[kept].min() >= before[~kept].max()



def test_soft_threshold_is_the_l1_prox():
    # prox of t|.| at w minimises (u - w)^2 / 2 + t |u|: checked against a dense grid search
    w = torch.tensor([-2.0, -0.3, 0.0, 0.25, 1.5], dtype=torch.float64)
    grid = torch.linspace(-3, 3, 600001, dtype=torch.float64)
    brute = torch.stack([grid[((grid - wi) ** 2 / 2 + 0.5 * grid.abs()).argmin()] for wi in w])
    np.testing.assert_allclose(soft_threshold(w, 0.5).numpy(), brute.numpy(), atol=1e-5)


def test_curve_area_is_the_trapezoid():
    assert curve_area([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.5)
    assert np.isnan(curve_area([0.3], [0.9]))
