import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from nslib.tools.dynamics import (
    blew_up,
    cycle_period,
    first_step_staying,
    increases_per_100,
    late_mean_gap,
    run_dynamics,
)
from nslib.tools.objectives import make_objective


def _run(name, x0, lrs, steps, **kw):
    obj = make_objective(name, **{k: v for k, v in kw.items() if k in ("huber_width", "curvature", "dim")})
    return run_dynamics(obj, torch.tensor(x0, dtype=torch.float64), lrs, steps=steps,
                        **{k: v for k, v in kw.items() if k in ("optimizer", "schedule")})


def test_abs_gd_matches_the_closed_form_cycle():
    # x0 = 0.35, eta = 0.1: 0.25, 0.15, 0.05, -0.05, 0.05, ... so the late mean gap is 0.05 = eta/2
    tr = _run("abs", [[0.35]], [0.1], steps=200)
    expected = [0.35, 0.25, 0.15, 0.05] + [0.05] * 197
    np.testing.assert_allclose(tr.gap[0, 0], expected, atol=1e-15)
    assert abs(tr.late_gap(10)[0, 0] - 0.05) < 1e-15
    assert cycle_period(tr.x_tail)[0, 0] == 2


def test_exact_kink_landing_is_detected_apart():
    tr = _run("abs", [[0.5], [0.3]], [0.25], steps=10)  # 0.5 -> 0.25 -> 0 exactly, then abs'(0)=0 keeps it
    assert tr.kink_landing_at[0, 0] == 2 and tr.exact_min_at[0, 0] == 2
    assert tr.kink_landing_at[0, 1] == -1


def test_autograd_subgradients_match_closed_forms():
    x = torch.tensor([[-2.0], [-0.05], [0.0], [0.05], [3.0]], dtype=torch.float64, requires_grad=True)
    d = 0.1
    make_objective("huber", huber_width=d)(x).sum().backward()
    expected = torch.where(x.abs() <= d, x / d, torch.sign(x)).detach()
    torch.testing.assert_close(x.grad, expected)
    x.grad = None
    make_objective("max-affine")(x).sum().backward()
    # amax splits the gradient evenly among tied maxima: at the kink 0 autograd returns (-1 + 1/2)/2
    assert x.grad[:, 0].tolist() == [-1.0, -1.0, -0.25, 0.5, 2.0]


def test_regularised_hinge_minimum_against_independent_search():
    obj = make_objective("hinge-l2")
    f = lambda w: float(obj(torch.tensor(w[None, :], dtype=torch.float64)))
    grid = np.linspace(-3, 3, 121)
    best = min(((a, b) for a in grid for b in grid), key=lambda w: f(np.array(w)))
    res = minimize(f, np.array(best), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14,
                                                                      "maxiter": 20000})
    assert obj.fmin <= res.fun + 1e-9 and res.fun - obj.fmin < 1e-6


def test_quadratic_divergence_is_a_result_not_a_crash():
    tr = _run("quadratic", [[1.0]], [0.5, 0.1], steps=800, curvature=10.0)  # factor |1 - 5| = 4 per step
    assert tr.diverged_at[0, 0] > 0 and tr.diverged_at[1, 0] == -1
    assert blew_up(tr).tolist() == [[True], [False]]


def test_statistics_on_constructed_sequences():
    assert first_step_staying(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 0]], bool)).tolist() == [1, 2, 0, -1]
    x = np.tile(np.array([1.0, 2.0, 3.0]), 10)[None, :, None]
    assert cycle_period(x)[0] == 3
    assert cycle_period(np.linspace(0, 1, 30)[None, :, None])[0] == 0
    g = np.tile([1.0, 2.0], 50)[None]
    assert increases_per_100(g, 10)[0] == 50.0
    with pytest.raises(ValueError, match="even"):
        late_mean_gap(g, 3)


def test_diminishing_steps_follow_the_schedule():
    tr = _run("abs", [[5.0]], [1.0], steps=4, schedule="invsqrt")
    steps = -np.diff(tr.gap[0, 0])
    np.testing.assert_allclose(steps, 1 / np.sqrt(np.arange(1, 5)), rtol=1e-12)


def test_settled_needs_enough_iterates_in_each_half():
    from nslib.tools.dynamics import MIN_SETTLE_HALF, settle_window_too_short, settled

    flat = np.ones((2, 3, 200))
    assert settled(flat, 2 * MIN_SETTLE_HALF).all() and not settle_window_too_short(2 * MIN_SETTLE_HALF)
    assert not settled(flat, 2 * MIN_SETTLE_HALF - 4).any() and settle_window_too_short(4)
    assert settled(flat, 4).shape == (2, 3)
