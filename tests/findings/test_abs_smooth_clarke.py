"""The finding's experiment code (dense ReLU nets, kinked points, the survey) and its criteria on constructed data."""

import numpy as np
import pandas as pd
import torch

from nslib.findings import abs_smooth_clarke as asc
from nslib.tools.clarke import ad_gradient, clarke_set_exact, in_hull


def test_ad_through_dense_relu_net_matches_torch_autograd_off_kinks():
    torch.manual_seed(0)
    sizes = [3, 4, 2]
    X, Y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    theta = torch.randn(asc.n_params(sizes), dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta, net.parameters())
    ((net(X) - Y) ** 2).sum().backward()
    ref = torch.nn.utils.parameters_to_vector([p.grad for p in net.parameters()]).numpy()
    np.testing.assert_allclose(ad_gradient(asc.dense_relu_loss(sizes, X, Y), theta), ref, rtol=1e-12)


def test_kinked_points_sit_exactly_on_kinks_and_control_leaves_the_set():
    outside = 0
    for seed in range(6):
        f, theta = asc.kinked_point([3, 4, 4, 1], 2, seed)
        c = clarke_set_exact(f, theta)
        assert c.n_ties == 4 and c.patterns_realised == 16
        for a in (0.0, 0.5, 1.0):
            assert in_hull(ad_gradient(f, theta, relu0=a), c.vertices)
        outside += not in_hull(ad_gradient(f, theta, relu0=2.0), c.vertices)
    assert outside > 0


def test_survey_flags_the_counterexample():
    s = asc.kink_survey()
    assert not s.loc[s.operation == "relu(x) - relu(-x)", "in the Clarke set"].any()
    assert s.loc[s.operation == "abs(x)", "in the Clarke set"].all()




# ------------------------------------------------------------------------------------- criteria on constructed data

def points(distances: dict) -> pd.DataFrame:
    return pd.DataFrame([{"point": i, "alpha": a, "ties": 2, "trivial": False, "distance": d}
                         for a, ds in distances.items() for i, d in enumerate(ds)])


def test_single_sample_clarke():
    inside = {0.0: np.zeros(5), 1.0: np.zeros(5)}
    ok = points({**inside, 2.0: [0, 0.5, 0, 0, 0]})
    assert asc.single_sample_clarke(ok, [0.0, 1.0], 2.0)["holds"] is True
    never_out = points({**inside, 2.0: np.zeros(5)})
    assert asc.single_sample_clarke(never_out, [0.0, 1.0], 2.0)["holds"] is False
    bad = points({**inside, 0.5: [0, 0, 1e-3, 0, 0], 2.0: [0, 0.5, 0, 0, 0]})
    assert asc.single_sample_clarke(bad, [0.0, 0.5, 1.0], 2.0)["holds"] is False


def test_batch_needs_agnostic_choice():
    ag = {0.0: np.zeros(3), 1.0: np.zeros(3)}
    assert asc.batch_needs_agnostic_choice(ag, np.array([0, -2.0, 0]))["holds"] is True
    assert asc.batch_needs_agnostic_choice(ag, np.zeros(3))["holds"] is False
    assert asc.batch_needs_agnostic_choice({0.0: np.array([0, 1e-3, 0])}, np.array([0, -2.0, 0]))["holds"] is False


def test_kakade_lee_counterexample():
    assert asc.kakade_lee_counterexample(0.0, [[1.0]])["holds"] is True
    assert asc.kakade_lee_counterexample(1.0, [[1.0]])["holds"] is False
    assert asc.kakade_lee_counterexample(0.0, [[0.0], [1.0]])["holds"] is False


def test_single_sample_clarke_sets_trivial_points_apart_and_is_inconclusive_without_ties():
    rows = [{"point": i, "alpha": a, "ties": 2, "trivial": i == 0, "distance": d}
            for a, ds in {0.0: [0, 0, 0], 2.0: [0, 0.5, 0.5]}.items() for i, d in enumerate(ds)]
    v = asc.single_sample_clarke(pd.DataFrame(rows), [0.0], 2.0)
    assert v["holds"] is True and v["measured"]["judged_points"] == 2
    assert v["measured"]["control_fraction_outside"] == 1.0  # the trivial point is not in the fraction
    untied = pd.DataFrame([dict(r, ties=0, trivial=False) for r in rows])
    v = asc.single_sample_clarke(untied, [0.0], 2.0)
    assert v["holds"] is None and v["status"] == "inconclusive" and "tied" in v["reason"]
    assert asc.single_sample_clarke(pd.DataFrame(rows), [0.0, 0.5], 2.0)["status"] == "inconclusive"


def test_kakade_lee_case_is_what_torch_returns_against_the_closed_form():
    ad, exact = asc.kakade_lee_case()
    assert ad == 0.0  # torch.relu'(0) = 0 on both branches
    np.testing.assert_array_equal(exact.vertices, [[1.0]])  # d/dx of x is 1
