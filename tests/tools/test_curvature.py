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


def test_warm_start_with_a_small_basis_gives_the_same_top_eigenvalue():
    f, theta = _small_loss("tanh")
    cold = curvature.eigen(f, theta, tol=1e-12)
    warm = curvature.eigen(f, theta, tol=1e-12, v0=cold.vectors[:, 0] + 1e-3, ncv=6)
    assert warm.values[0] == pytest.approx(cold.values[0], rel=1e-10)
    assert warm.products < cold.products
    with pytest.raises(ValueError, match="v0 has 3 entries"):
        curvature.eigen(f, theta, v0=torch.ones(3))


def test_eigenvalue_gradient_matches_finite_differences_of_the_dense_top_eigenvalue():
    # the reference: central differences of eigvalsh of the dense Hessian (torch.func.hessian), one coordinate at a time
    f, theta = _small_loss("tanh", bias=False)
    top = lambda th: float(torch.linalg.eigvalsh(curvature.hessian(f, th))[-1])
    H = curvature.hessian(f, theta)
    evals, evecs = torch.linalg.eigh(H)
    assert evals[-1] - evals[-2] > 1e-3 * evals[-1]  # a simple eigenvalue: lambda_max is differentiable here
    value, grad = curvature.eigenvalue_gradient(f, theta, evecs[:, -1])
    assert value == pytest.approx(float(evals[-1]), rel=1e-10)
    h = 1e-5
    fd = torch.zeros_like(theta)
    for i in range(theta.numel()):
        e = torch.zeros_like(theta)
        e[i] = h
        fd[i] = (top(theta + e) - top(theta - e)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-7 * float(fd.abs().max()))


def test_power_iteration_agrees_with_the_dense_top_eigenvalue():
    f, theta = _small_loss("relu")
    dense = np.linalg.eigvalsh(curvature.hessian(f, theta).numpy())
    value, v, products = curvature.power_iteration(f, theta, iters=5000, tol=1e-13)
    assert abs(value) == pytest.approx(np.abs(dense).max(), rel=1e-6)
    assert 1 < products <= 5000
