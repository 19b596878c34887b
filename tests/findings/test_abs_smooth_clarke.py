"""The finding's experiment code (dense ReLU nets, kinked points, the survey) and its criteria on constructed data."""

import numpy as np
import pandas as pd
import pytest
import torch

from nslib.findings import abs_smooth_clarke as asc
from nslib.tools.clarke import ad_gradient, clarke_set_exact, in_hull
from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE


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
    v = asc.single_sample_clarke(ok, [0.0, 1.0], 2.0)
    assert v.state == HOLDS and set(v.groups) == {"alpha=0", "alpha=1", "control alpha=2"}
    assert v.groups["alpha=1"].measured["fraction_inside"] == 1.0
    assert v.groups["control alpha=2"].measured["fraction_outside"] == pytest.approx(0.2)
    assert v.groups["control alpha=2"].measured["max_distance"] == 0.5
    never_out = points({**inside, 2.0: np.zeros(5)})
    v = asc.single_sample_clarke(never_out, [0.0, 1.0], 2.0)
    assert v.state == DOES_NOT_HOLD and v.groups["control alpha=2"].state == DOES_NOT_HOLD
    assert v.groups["alpha=0"].state == HOLDS
    bad = points({**inside, 0.5: [0, 0, 1e-3, 0, 0], 2.0: [0, 0.5, 0, 0, 0]})
    v = asc.single_sample_clarke(bad, [0.0, 0.5, 1.0], 2.0)
    assert v.state == DOES_NOT_HOLD and v.groups["alpha=0.5"].state == DOES_NOT_HOLD
    assert v.groups["alpha=0.5"].measured["fraction_inside"] == pytest.approx(0.8)
    assert v.groups["control alpha=2"].state == HOLDS


def test_batch_needs_agnostic_choice():
    ag = {0.0: np.zeros(3), 1.0: np.zeros(3)}
    v = asc.batch_needs_agnostic_choice(ag, np.array([0, -2.0, 0]))
    assert v.state == HOLDS and set(v.groups) == {"agnostic alpha=0", "agnostic alpha=1", "per-sample"}
    assert v.groups["per-sample"].measured["sup_norm"] == 2.0 and v.measured["per_sample_gradient"] == [0, -2.0, 0]
    v = asc.batch_needs_agnostic_choice(ag, np.zeros(3))
    assert v.state == DOES_NOT_HOLD and v.groups["per-sample"].state == DOES_NOT_HOLD
    v = asc.batch_needs_agnostic_choice({0.0: np.array([0, 1e-3, 0])}, np.array([0, -2.0, 0]))
    assert v.state == DOES_NOT_HOLD and v.groups["agnostic alpha=0"].measured["sup_norm"] == 1e-3
    assert v.groups["per-sample"].state == HOLDS


def test_kakade_lee_counterexample():
    v = asc.kakade_lee_counterexample(0.0, [[1.0]])
    assert v.state == HOLDS and v.measured["clarke_vertices"] == [1.0]
    assert asc.kakade_lee_counterexample(1.0, [[1.0]]).state == DOES_NOT_HOLD
    assert asc.kakade_lee_counterexample(0.0, [[0.0], [1.0]]).state == DOES_NOT_HOLD


def test_single_sample_clarke_sets_trivial_points_apart_and_is_inconclusive_without_ties():
    rows = [{"point": i, "alpha": a, "ties": 2, "trivial": i == 0, "distance": d}
            for a, ds in {0.0: [0, 0, 0], 2.0: [0, 0.5, 0.5]}.items() for i, d in enumerate(ds)]
    v = asc.single_sample_clarke(pd.DataFrame(rows), [0.0], 2.0)
    assert v.state == HOLDS and v.measured["judged_points"] == 2 and v.measured["trivial_points"] == 1
    assert v.groups["control alpha=2"].measured["fraction_outside"] == 1.0  # the trivial point is not in the fraction
    untied = pd.DataFrame([dict(r, ties=0, trivial=False) for r in rows])
    v = asc.single_sample_clarke(untied, [0.0], 2.0)
    assert v.state == INCONCLUSIVE and v.holds is None and "tied" in v.reason and not v.groups
    v = asc.single_sample_clarke(pd.DataFrame(rows), [0.0, 0.5], 2.0)
    assert v.state == INCONCLUSIVE and "0.5" in v.reason


def test_tables_and_page_texts_read_as_prose():
    assert asc._set_text([[-1.0], [1.0]]) == "[-1, 1]" and asc._set_text([[1.0]]) == "{1}"
    assert asc._set_text([[1.0, 0.0], [0.0, 1.0]]) == "conv{(1, 0), (0, 1)}"
    assert asc._vector_text([-0.0]) == "0" and asc._vector_text([0.5, -1.0]) == "(0.5, -1)"
    ad, exact = asc.kakade_lee_case()
    table = asc.kakade_lee_table(ad, exact, asc.kakade_lee_counterexample(ad, exact.vertices))
    assert table.iloc[:, 0].tolist() == ["0", "{1}", HOLDS]
    survey = asc.kink_survey()
    assert "[" not in "".join(survey["autograd returns"]) and "conv{(1, 0), (0, 1)}" in set(survey["Clarke set"])
    ok = points({0.0: np.zeros(5), 2.0: [0, 0.5, 0, 0, 0]})
    single = asc.single_sample_clarke(ok, [0.0], 2.0)
    batch = asc.batch_needs_agnostic_choice({0.0: np.zeros(3), 1.0: np.zeros(3)}, np.array([0, -2.0, 0]))
    texts = asc.page_texts({"single-sample-clarke": single, "batch-needs-agnostic-choice": batch}, survey=survey)
    assert texts["points"] == ("backward AD with ReLU'(0) = 0 was compared with the exact Clarke set at 5 judged "
                               "kinked points of the 5 points built")
    assert texts["control"] == ("the negative control ReLU'(0) = 2 fell outside the Clarke set at 20% of the 5 "
                                "judged points")
    assert texts["batch"] == ("AD returned exactly 0 for every shared ReLU'(0) (0 and 1), and a vector of sup norm 2 "
                              "for the per-sample choice")
    assert texts["survey-out"].startswith("autograd's output left the Clarke set for ")
    untied = points({0.0: [0.0], 2.0: [0.5]}).assign(ties=0)  # one point, no tied pre-activation
    texts = asc.page_texts({"single-sample-clarke": asc.single_sample_clarke(untied, [0.0], 2.0),
                            "batch-needs-agnostic-choice": batch}, survey=survey.assign(**{"in the Clarke set": True}))
    assert texts["points"].endswith("at no judged kinked point of the 1 point built; set apart: 1 point without a "
                                    "tied pre-activation")
    assert texts["control"] == "the negative control ReLU'(0) = 2 was not judged, as no point was"
    assert texts["survey-out"] == "autograd's output stayed in the Clarke set for every operation"


def test_kakade_lee_case_is_what_torch_returns_against_the_closed_form():
    ad, exact = asc.kakade_lee_case()
    assert ad == 0.0  # torch.relu'(0) = 0 on both branches
    np.testing.assert_array_equal(exact.vertices, [[1.0]])  # d/dx of x is 1
