"""The Clarke tools against sets known in closed form, and AD against them."""

import numpy as np
import pytest
import torch

from nslib.tools.clarke import (
    CLOSED_FORMS,
    InconclusiveError,
    ad_gradient,
    clarke_set_exact,
    clarke_set_sampled,
    hull_distance,
    in_hull,
)


def _same_hull(A, B):
    return all(in_hull(a, B) for a in A) and all(in_hull(b, A) for b in B)


def zeros(d):
    return torch.zeros(d, dtype=torch.float64)


max2 = CLOSED_FORMS["max(x, y) at 0"][0]
corner3 = CLOSED_FORMS["max(x, y, -x-y) at 0"][0]


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_closed_forms(name):
    fn, d, vertices = CLOSED_FORMS[name]
    assert _same_hull(clarke_set_exact(fn, zeros(d), piecewise_linear=True).vertices, np.array(vertices))


def test_abs_at_zero_is_the_interval():
    c = clarke_set_exact(lambda x, k: k.abs(x).sum(), zeros(1))
    assert _same_hull(c.vertices, np.array([[-1.0], [1.0]]))
    # away from the kink the set is the gradient
    assert _same_hull(clarke_set_exact(lambda x, k: k.abs(x).sum(), torch.tensor([0.3])).vertices, np.array([[1.0]]))


def test_max_of_two_at_a_tie():
    c = clarke_set_exact(max2, zeros(2), piecewise_linear=True)
    assert _same_hull(c.vertices, np.array([[1.0, 0.0], [0.0, 1.0]]))


def test_relu_difference_is_one_not_a_hull_of_consistent_patterns():
    c = clarke_set_exact(lambda x, k: (k.relu(x) - k.relu(-x)).sum(), zeros(1), piecewise_linear=True)
    np.testing.assert_array_equal(c.vertices, [[1.0]])
    assert c.patterns_realised == 2 and c.patterns_total == 4  # (+,+) and (-,-) are never realised
    assert ad_gradient(lambda x, k: (k.relu(x) - k.relu(-x)).sum(), zeros(1)) == pytest.approx([0.0])


def test_three_pieces_meeting_at_a_corner():
    c = clarke_set_exact(corner3, zeros(2), piecewise_linear=True)
    assert _same_hull(c.vertices, np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
    assert hull_distance(np.array([0.0, 0.0]), c.vertices) == pytest.approx(0.0, abs=1e-12)
    assert hull_distance(np.array([2.0, 0.0]), c.vertices) == pytest.approx(1.0)  # nearest vertex (1, 0)


def test_dependent_kinks_without_piecewise_linearity_are_inconclusive():
    with pytest.raises(InconclusiveError, match="piecewise_linear"):
        clarke_set_exact(lambda x, k: (k.relu(x) - k.relu(-x)).sum() ** 3, zeros(1))


def test_sampled_estimate_is_an_inner_approximation():
    S = clarke_set_sampled(corner3, zeros(2), n=300, radius=1e-6)
    exact = clarke_set_exact(corner3, zeros(2), piecewise_linear=True).vertices
    assert all(in_hull(s, exact) for s in S)
    assert _same_hull(S, exact)  # with enough samples all three pieces are hit


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(1, 4))
def test_hull_distance_zero_inside_and_positive_outside(seed, r, d):
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(r, d))
    w = rng.dirichlet(np.ones(r))
    assert hull_distance(w @ V, V) <= 1e-9
    far = V.max(0) + 1.0  # beyond every vertex in every coordinate: sup distance >= 1
    assert hull_distance(far, V) >= 1.0 - 1e-9


# ------------------------------------------------------------------------- nested kinks, tolerances, empty sets

def test_nested_relu_keeps_both_pieces():
    # relu(relu(x)) = relu(x): Clarke set [0, 1] at 0; the inner kink's argument is identically 0 for x < 0
    c = clarke_set_exact(lambda x, k: k.relu(k.relu(x)).sum(), zeros(1), piecewise_linear=True)
    assert _same_hull(c.vertices, np.array([[0.0], [1.0]]))


def test_relu_of_a_sum_of_relus_keeps_its_zero_vertex():
    # relu(relu(x) + relu(y)) = relu(x) + relu(y): Clarke set [0, 1]^2 at the origin
    f = lambda x, k: k.relu(k.relu(x[0:1]) + k.relu(x[1:2])).sum()  # noqa: E731
    c = clarke_set_exact(f, zeros(2), piecewise_linear=True)
    assert _same_hull(c.vertices, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))


def _two_layer(seed):
    """A two-layer ReLU net in input space, f(x) = v . relu(W2 relu(W1 x + b1) + b2), tied at x = 0 in both layers
    (integer weights; some first-layer units dead on one side, second-layer biases solved to 0 at the origin)."""
    rng = np.random.default_rng(seed)
    W1 = torch.tensor(rng.integers(-2, 3, size=(3, 2)), dtype=torch.float64)
    b1 = torch.tensor(rng.choice([0, 0, -1, 1], size=3), dtype=torch.float64)
    W2 = torch.tensor(rng.integers(-2, 3, size=(2, 3)), dtype=torch.float64)
    b2 = -W2 @ torch.relu(b1)  # second-layer pre-activations exactly 0 at x = 0
    v = torch.tensor(rng.integers(-2, 3, size=2), dtype=torch.float64)

    def f(x, k):
        return (v * k.relu(W2 @ k.relu(W1 @ x + b1) + b2)).sum()

    return f


def _brute_force(f, d, n=3000, radius=1e-7, seed=0):
    """Gradients at random points near 0 (differentiable almost surely): their hull approximates the set."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, d))
    pts *= radius * rng.uniform(0.1, 1, size=(n, 1)) / np.abs(pts).max(1, keepdims=True)
    G = np.array([ad_gradient(f, torch.tensor(p)) for p in pts])
    return np.unique(np.round(G, 6), axis=0)


@pytest.mark.parametrize("seed", range(12))
def test_two_layer_nets_in_input_space_match_a_brute_force_hull(seed):
    f = _two_layer(seed)
    exact = clarke_set_exact(f, zeros(2), piecewise_linear=True).vertices
    brute = _brute_force(f, 2)
    assert all(in_hull(g, exact, 1e-6) for g in brute), "a nearby gradient lies outside the exact set"
    assert all(in_hull(v, brute, 1e-6) for v in exact), "the exact set has a vertex no nearby gradient reaches"


def test_membership_tolerance_is_delivered():
    V = np.array([[0.0, 0.0], [1.0, 0.0]])
    tol = 1e-9
    assert not in_hull(np.array([0.5, 10 * tol]), V, tol)  # sup distance 1e-8: outside
    assert in_hull(np.array([0.5, 0.1 * tol]), V, tol)
    with pytest.raises(ValueError, match="tol"):
        in_hull(np.array([0.5, 0.0]), V, 1e-12)


def test_an_empty_set_raises_instead_of_being_returned(monkeypatch):
    import nslib.tools.clarke as clarke_module

    monkeypatch.setattr(clarke_module, "_strictly_feasible", lambda A, tol: False)
    with pytest.raises(RuntimeError, match="cannot be empty"):
        clarke_set_exact(lambda x, k: k.abs(x).sum(), zeros(1), piecewise_linear=True)
