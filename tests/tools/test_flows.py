"""Gradient flows and GD on a quadratic, where both have closed forms: theta(t) = expm(-A t) theta0 and
theta_k = (I - eta A)^k theta0."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from nslib.tools import flows

rng = np.random.default_rng(0)
Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
A = Q @ np.diag([4.0, 2.0, 1.0, 0.5, 0.1]) @ Q.T  # lambda_max = 4
A_t = torch.tensor(A)
theta0 = torch.tensor(rng.standard_normal(5))


def quadratic(theta):
    return 0.5 * theta @ A_t @ theta


def test_gradient_flow_matches_the_matrix_exponential():
    times = np.linspace(0, 3, 31)
    traj = flows.gradient_flow(quadratic, theta0, times, rtol=1e-10, atol=1e-12)
    exact = np.stack([scipy.linalg.expm(-A * t) @ theta0.numpy() for t in times])
    np.testing.assert_allclose(traj.thetas.numpy(), exact, atol=1e-8)
    assert traj.grad_evals > 0 and traj.times[0] == 0.0


def test_checked_flow_error_measures_the_looser_solve_and_keeps_the_tighter():
    times = np.linspace(0, 3, 11)
    loose = flows.gradient_flow(quadratic, theta0, times, rtol=1e-5, atol=1e-5)
    tight, error = flows.checked_flow(quadratic, theta0, times, rtol=1e-5, tighten=1e4)
    exact = np.stack([scipy.linalg.expm(-A * t) @ theta0.numpy() for t in times])
    err_loose = np.abs(loose.thetas.numpy() - exact).max()
    assert np.abs(tight.thetas.numpy() - exact).max() < err_loose
    assert tight.info["rtol"] == pytest.approx(1e-9)
    assert error == pytest.approx(np.linalg.norm(loose.thetas.numpy() - exact, axis=1).max(), rel=0.2)


def test_gradient_descent_matches_the_closed_form_and_records_times():
    eta, steps = 0.1, 30
    traj = flows.gradient_descent(quadratic, theta0, eta, steps, every=7)
    assert list(traj.info["iterations"]) == [0, 7, 14, 21, 28, 30]
    np.testing.assert_allclose(traj.times, np.array([0, 7, 14, 21, 28, 30]) * eta)
    M = np.eye(5) - eta * A
    np.testing.assert_allclose(traj.thetas[-1].numpy(), np.linalg.matrix_power(M, steps) @ theta0.numpy(), rtol=1e-12)
    assert traj.grad_evals == steps and not traj.diverged


def test_the_hook_sees_every_iterate_with_its_loss_and_gradient():
    eta, steps, seen = 0.1, 12, []
    traj = flows.gradient_descent(quadratic, theta0, eta, steps, every=5,
                                  on_iterate=lambda k, th, v, g: seen.append((k, th.clone(), float(v), g.clone())))
    M = np.eye(5) - eta * A
    assert [k for k, *_ in seen] == list(range(steps + 1))
    for k, th, v, g in seen:
        ref = np.linalg.matrix_power(M, k) @ theta0.numpy()
        np.testing.assert_allclose(th.numpy(), ref, rtol=1e-12)
        assert v == pytest.approx(float(quadratic(torch.as_tensor(ref))), rel=1e-12)
        np.testing.assert_allclose(g.numpy(), A @ ref, rtol=1e-12, atol=1e-15)
    assert traj.grad_evals == steps and list(traj.info["iterations"]) == [0, 5, 10, 12]


def test_gd_beyond_two_over_lambda_diverges_as_a_result():
    traj = flows.gradient_descent(lambda th: quadratic(th) * 1e300, theta0, 1.0, 50)
    # the iterate index of the first non-finite loss: with f scaled by 1e300, theta_k grows like (1e300 lambda)^k
    assert traj.diverged and isinstance(traj.diverged_at, int) and 1 <= traj.diverged_at <= 3
    assert len(traj.thetas) == traj.diverged_at  # every iterate before it, none from it on
    assert math.isinf(flows.max_distance(traj, flows.gradient_descent(quadratic, theta0, 0.1, 10)))


def test_the_divergence_hook_decides_when_the_run_stops():
    """A batch of two independent quadratics on one flat vector; the second is so sharp that GD blows it up. The
    default stops the whole run at the first non-finite value; a hook that stops only when both members are
    non-finite lets the first go on, exactly as it runs alone, while the second goes non-finite alone (masked out
    of the loss once its parameters are, so that its NaN never reaches the first member's gradient)."""
    def batch(th):
        parts = (th[:5], th[5:])
        losses = torch.stack([quadratic(parts[0]), quadratic(parts[1]) * 1e6])
        finite = torch.stack([torch.isfinite(p).all() for p in parts])
        return torch.where(finite, losses, torch.zeros_like(losses)).sum()

    both, steps = torch.cat([theta0, theta0]), 80
    default = flows.gradient_descent(batch, both, 0.1, steps)
    assert default.diverged and 10 < default.diverged_at < steps

    seen = []

    def every_member_non_finite(th, value, g):
        seen.append((th.clone(), value.clone(), g.clone()))
        return not (torch.isfinite(th[:5]).all() or torch.isfinite(th[5:]).all())

    traj = flows.gradient_descent(batch, both, 0.1, steps, every=40, diverged=every_member_non_finite)
    assert not traj.diverged and list(traj.info["iterations"]) == [0, 40, 80]
    assert len(seen) == steps + 1  # the hook sees every iterate, the last one too (its gradient computed for it)
    th, value, g = seen[0]
    torch.testing.assert_close(th, both)
    assert float(value) == pytest.approx(float(quadratic(theta0)) * (1 + 1e6), rel=1e-12)
    np.testing.assert_allclose(g[:5].numpy(), A @ theta0.numpy(), rtol=1e-12)
    assert not torch.isfinite(seen[-1][1]) or not torch.isfinite(seen[-1][0][5:]).all()  # the second blew up
    alone = flows.gradient_descent(quadratic, theta0, 0.1, steps, every=40)
    torch.testing.assert_close(traj.thetas[:, :5], alone.thetas, rtol=0, atol=0)  # the first never noticed
    assert not torch.isfinite(traj.thetas[-1, 5:]).all()

    calls = []
    stop_at_7 = flows.gradient_descent(quadratic, theta0, 0.1, 30, on_iterate=lambda k, *_: calls.append(k),
                                       diverged=lambda th, v, g: len(calls) == 7)
    assert stop_at_7.diverged_at == 7 and len(stop_at_7.thetas) == 7 and calls == list(range(7))


def test_paper_protocol_sits_on_the_eta0_grid_and_converges_at_first_order():
    eta0, steps = 0.05, 40
    gf = flows.gradient_flow(quadratic, theta0, np.arange(steps + 1) * eta0, rtol=1e-11, atol=1e-13)
    errors = []
    for r in (1, 2, 4, 8):
        p = flows.paper_protocol(quadratic, theta0, eta0, r, steps)
        np.testing.assert_allclose(p.times, np.arange(steps + 1) * eta0)
        assert p.grad_evals == r * steps
        errors.append(flows.max_distance(p, gf))
    slope = np.polyfit(np.log([1, 2, 4, 8]), np.log(errors), 1)[0]
    assert -1.1 < slope < -0.9


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="method"):
        flows.gradient_flow(quadratic, theta0, [0, 1], method="euler")
    with pytest.raises(ValueError, match="lr = -1"):
        flows.gradient_descent(quadratic, theta0, -1, 5)
    with pytest.raises(ValueError, match="times"):
        flows.gradient_flow(quadratic, theta0, [1.0])


def test_solver_that_cannot_finish_raises_flow_error():
    with pytest.raises(flows.FlowError, match="could not integrate"):
        flows.gradient_flow(quadratic, theta0, [0, 100], max_steps=3)


def _sharpening_problem():
    """A two-layer linear net on a regression whose gradient flow sharpens from ~3.5 to ~7.1: a smooth problem on
    which the central flow has an edge to hold."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 3, generator=g, dtype=torch.float64)
    Y = X @ torch.tensor([[3.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64).T

    def f(th):
        return 0.5 * ((X @ th[:9].view(3, 3).T @ th[9:].view(2, 3).T - Y) ** 2).sum(1).mean()

    return f, 0.1 * torch.randn(15, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _dense_sharpness(f, theta):
    from nslib.tools.curvature import hessian

    return float(torch.linalg.eigvalsh(hessian(f, theta))[-1])


def test_central_flow_below_the_edge_is_the_gradient_flow():
    f, theta0 = _sharpening_problem()
    lr = 0.02  # 2/lr = 100, far above the sharpness the flow ever reaches
    cf = flows.central_flow(f, theta0, lr, 200, every=20)
    gf = flows.gradient_flow(f, theta0, cf.times, rtol=1e-11, atol=1e-13)
    assert not cf.info["on_edge"].any()
    assert flows.max_distance(cf, gf) < 1e-6 * cf.travelled()


def test_central_flow_holds_the_sharpness_at_the_edge_where_the_gradient_flow_exceeds_it():
    f, theta0 = _sharpening_problem()
    lr = 2 / 6.5
    cf = flows.central_flow(f, theta0, lr, 200, every=5, k=2)
    gf = flows.gradient_flow(f, theta0, cf.times, rtol=1e-10, atol=1e-12)
    s_cf = np.array([_dense_sharpness(f, th) for th in cf.thetas])
    s_gf = np.array([_dense_sharpness(f, th) for th in gf.thetas])
    assert s_gf.max() > 7.0  # the flow sharpens beyond the edge
    reached = np.flatnonzero(cf.info["on_edge"])
    assert len(reached) and cf.info["on_edge"][reached[0]:].all()
    assert np.all(s_cf <= 6.5 * 1.01) and s_cf[-1] == pytest.approx(6.5, rel=1e-4)
    assert float(f(cf.thetas[-1])) < float(f(cf.thetas[len(cf.thetas) // 2]))  # still descending along the edge
    # on the edge the velocity is orthogonal to grad S: the sharpness does not move to first order
    from nslib.tools.curvature import eigen, eigenvalue_gradient

    theta = cf.thetas[-1]
    u = eigen(f, theta, tol=1e-12).vectors[:, 0]
    _, grad_s = eigenvalue_gradient(f, theta, u)
    after = flows.central_flow(f, theta, lr, 1, k=2).thetas[-1]
    assert abs(float(grad_s @ (after - theta))) < 1e-3 * float(grad_s.norm() * (after - theta).norm())


def test_complementarity_solution_satisfies_its_conditions():
    rng = np.random.default_rng(0)
    for _ in range(50):
        G = torch.as_tensor(rng.standard_normal((3, 5)))
        q = torch.as_tensor(rng.standard_normal(3))
        c = flows._complementarity(G @ G.T, q)
        slack = G @ G.T @ c - q
        assert (c >= 0).all() and (slack >= -1e-9).all() and abs(float(c @ slack)) < 1e-9


def test_central_flow_refuses_bad_arguments():
    f, theta0 = _sharpening_problem()
    with pytest.raises(ValueError, match="k = 5"):
        flows.central_flow(f, theta0, 0.1, 10, k=5)
    with pytest.raises(ValueError, match="lr = -1"):
        flows.central_flow(f, theta0, -1, 10)
