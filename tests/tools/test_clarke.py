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


# ------------------------------------------------------------------------- LIKQ against hand-computed abs-normal forms

from nslib.tools.clarke import LIKQ_RTOL, likq  # noqa: E402


def test_likq_on_a_hand_computed_abs_normal_form():
    # f(x) = |x1| + |x2 - |x1||: switches z1 = x1, z2 = x2 - |z1|; Z = I, L = [[0, 0], [-1, 0]]
    def f(x, k):
        a1 = k.abs(x[0:1])  # one switch, read twice: one row
        return (a1 + k.abs(x[1:2] - a1)).sum()

    # at the origin both switches are active, Sigma = 0: the active Jacobian is Z itself
    q = likq(f, zeros(2))
    assert q.holds and q.n_active == 2 and q.rank == 2
    np.testing.assert_array_equal(q.jacobian, [[1.0, 0.0], [0.0, 1.0]])
    # at (1, 1): z1 = 1 (inactive, sigma 1), z2 = 0; (I - L Sigma)^-1 Z = [[1, 0], [-1, 1]]: active row (-1, 1)
    q = likq(f, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert q.holds and q.n_active == 1
    np.testing.assert_array_equal(q.jacobian, [[-1.0, 1.0]])


def test_likq_fails_for_the_counterexample_and_holds_off_kinks():
    q = likq(lambda x, k: (k.relu(x) - k.relu(-x)).sum(), zeros(1))
    assert not q.holds and q.n_active == 2 and q.rank == 1
    np.testing.assert_array_equal(q.jacobian, [[1.0], [-1.0]])
    assert q.smallest_singular_value == 0.0
    q = likq(lambda x, k: (k.relu(x) - k.relu(-x)).sum(), torch.tensor([0.5], dtype=torch.float64))
    assert q.holds and q.n_active == 0 and q.jacobian.shape == (0, 1)
    with pytest.raises(ValueError, match="rtol"):
        likq(lambda x, k: k.abs(x).sum(), zeros(1), rtol=0.0)


def test_likq_uses_half_for_relu_at_an_active_kink_upstream():
    # relu(relu(x) + y): z1 = x, z2 = relu(z1) + y = (z1 + |z1|)/2 + y; with |.|'(0) = 0, grad z2 = (1/2, 1)
    q = likq(lambda x, k: k.relu(k.relu(x[0:1]) + x[1:2]).sum(), zeros(2))
    np.testing.assert_array_equal(q.jacobian, [[1.0, 0.0], [0.5, 1.0]])
    assert q.holds


def _abs_normal(seed):
    """A random piecewise-linear abs-normal form z = c + Z x + L|z| (L strictly lower triangular), f = a.x + b.|z|,
    with c solved so that a random set of switches is exactly 0 at x = 0; and its active Jacobian computed by hand:
    the active rows of (I - L Sigma)^-1 Z, Sigma = diag(sign z)."""
    rng = np.random.default_rng(seed)
    d, s = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    Z = rng.integers(-2, 3, size=(s, d)).astype(float)
    L = np.tril(rng.integers(-2, 3, size=(s, s)), -1).astype(float)
    a, b = rng.integers(-2, 3, size=d).astype(float), rng.integers(-2, 3, size=s).astype(float)
    active = rng.random(s) < 0.6
    c, z = np.zeros(s), np.zeros(s)
    for i in range(s):
        base = L[i, :i] @ np.abs(z[:i])
        c[i] = -base if active[i] else rng.choice([-2.0, -1.0, 1.0, 2.0]) - base
        z[i] = c[i] + base
    Sigma = np.diag(np.sign(z))
    J = (np.linalg.inv(np.eye(s) - L @ Sigma) @ Z)[active]

    def f(x, k):
        absz = []
        for i in range(s):
            zi = float(c[i]) + torch.tensor(Z[i]) @ x
            for j in range(i):
                zi = zi + float(L[i, j]) * absz[j]
            absz.append(k.abs(zi.reshape(1)).sum())
        return torch.tensor(a) @ x + sum(float(b[i]) * absz[i] for i in range(s))

    return f, d, J


@pytest.mark.parametrize("seed", range(30))
def test_likq_matches_the_abs_normal_form_and_a_dense_rank(seed):
    f, d, J = _abs_normal(seed)
    q = likq(f, zeros(d))
    assert q.n_active == len(J)
    np.testing.assert_allclose(q.jacobian, J, atol=1e-12)
    rank = np.linalg.matrix_rank(J) if len(J) else 0
    assert q.rank == rank and q.holds == (rank == len(J))


def test_the_abs_normal_forms_cover_both_outcomes():
    outcomes = {likq(f, zeros(d)).holds for f, d, J in map(_abs_normal, range(30)) if len(J)}
    assert outcomes == {True, False}


def test_under_likq_ad_with_any_choice_in_the_cube_is_a_clarke_gradient():
    """The implication the page tests, on the abs-normal forms where the hand computation says LIKQ holds."""
    checked = 0
    for seed in range(40):
        f, d, J = _abs_normal(seed)
        if not len(J) or np.linalg.matrix_rank(J) < len(J):
            continue
        V = clarke_set_exact(f, zeros(d), piecewise_linear=True).vertices
        for s0 in (-1.0, -0.3, 0.0, 0.5, 1.0):
            assert in_hull(ad_gradient(f, zeros(d), abs0=s0), V), (seed, s0)
        checked += 1
    assert checked >= 10


def test_likq_rtol_is_the_documented_default():
    assert LIKQ_RTOL == 1e-10
