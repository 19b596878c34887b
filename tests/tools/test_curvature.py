"""Hessian-vector products and Lanczos eigenvalues against the dense Hessian (torch.func.hessian + eigh)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nslib.tools import curvature
from nslib.tools.models import flat_loss, mlp


def _small_loss(activation: str, dtype=torch.float64, bias=True):
    torch.manual_seed(0)
    net = mlp([6, 8, 5, 3], activation, bias=bias, init="xavier_uniform", dtype=dtype)
    X, y = torch.randn(40, 6, dtype=dtype), torch.randint(0, 3, (40,))
    return flat_loss(net, F.cross_entropy, X, y)


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_hvp_equals_dense_hessian_times_vector(activation):
    f, theta = _small_loss(activation)
    H = curvature.hessian(f, theta)
    v = torch.randn_like(theta)
    torch.testing.assert_close(curvature.hvp(f, theta)(v), H @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lanczos_extremes_match_dense_eigenvalues(activation):
    f, theta = _small_loss(activation)
    dense = np.linalg.eigvalsh(curvature.hessian(f, theta).numpy())
    top = curvature.eigen(f, theta, k=2, which="largest", tol=1e-12)
    bottom = curvature.eigen(f, theta, k=1, which="smallest", tol=1e-12)
    np.testing.assert_allclose(top.values, dense[::-1][:2], rtol=1e-6)
    np.testing.assert_allclose(bottom.values, dense[:1], rtol=1e-6)
    # the vectors are eigenvectors: H u = lambda u
    H = curvature.hessian(f, theta)
    u = top.vectors[:, 0]
    torch.testing.assert_close(H @ u, top.values[0] * u, rtol=0, atol=1e-6 * abs(top.values[0]))
    assert curvature.extremes(f, theta, tol=1e-12) == pytest.approx((dense[-1], dense[0]), rel=1e-6)


def test_float32_model_gives_float32_vectors_and_close_values():
    f64, th64 = _small_loss("tanh", torch.float64)
    f32, th32 = flat_loss(copy.deepcopy(f64.model).float(), F.cross_entropy, f64.X.float(), f64.y)
    e = curvature.eigen(f32, th32, tol=1e-6)
    assert e.vectors.dtype == torch.float32
    assert e.values[0] == pytest.approx(curvature.sharpness(f64, th64), rel=1e-4)


def test_bad_arguments_are_refused_before_any_product():
    f, theta = _small_loss("tanh")
    with pytest.raises(ValueError, match="which"):
        curvature.eigen(f, theta, which="biggest")
    with pytest.raises(ValueError, match="k = 0"):
        curvature.eigen(f, theta, k=0)
