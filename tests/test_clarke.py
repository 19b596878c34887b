"""The Clarke tools against sets known in closed form, and AD against them."""

import numpy as np
import pytest
import torch

import nslib
from nslib import InconclusiveError, ad_gradient, clarke_set_exact, clarke_set_sampled, hull_distance, in_hull


def _same_hull(A, B):
    return all(in_hull(a, B) for a in A) and all(in_hull(b, A) for b in B)


def zeros(d):
    return torch.zeros(d, dtype=torch.float64)


def max2(x, k):
    return x[1] + k.relu(x[0] - x[1])


def corner3(x, k):
    m = max2(x, k)
    return m + k.relu(-x[0] - x[1] - m)


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


def test_ad_through_dense_relu_net_matches_torch_autograd_off_kinks():
    torch.manual_seed(0)
    sizes = [3, 4, 2]
    X, Y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    theta = torch.randn(nslib.n_params(sizes), dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta, net.parameters())
    ((net(X) - Y) ** 2).sum().backward()
    ref = torch.nn.utils.parameters_to_vector([p.grad for p in net.parameters()]).numpy()
    np.testing.assert_allclose(ad_gradient(nslib.dense_relu_loss(sizes, X, Y), theta), ref, rtol=1e-12)


def test_kinked_points_sit_exactly_on_kinks_and_control_leaves_the_set():
    outside = 0
    for seed in range(6):
        f, theta = nslib.kinked_point([3, 4, 4, 1], 2, seed)
        c = clarke_set_exact(f, theta)
        assert c.n_ties == 4 and c.patterns_realised == 16
        for a in (0.0, 0.5, 1.0):
            assert in_hull(ad_gradient(f, theta, relu0=a), c.vertices)
        outside += not in_hull(ad_gradient(f, theta, relu0=2.0), c.vertices)
    assert outside > 0


def test_survey_flags_the_counterexample():
    s = nslib.kink_survey()
    assert not s.loc[s.operation == "relu(x) - relu(-x)", "in the Clarke set"].any()
    assert s.loc[s.operation == "abs(x)", "in the Clarke set"].all()


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
