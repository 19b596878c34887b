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
    # a control that never leaves the set: the points have no power to tell choices apart (inconclusive, not false)
    assert v.state == INCONCLUSIVE and v.groups["control alpha=2"].state == INCONCLUSIVE
    assert "cannot tell a choice outside" in v.reason and v.groups["alpha=0"].state == HOLDS
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


# ------------------------------------------------------------------------------------------- LIKQ, in both directions

def likq_frame(rows) -> pd.DataFrame:
    """(family, case, likq, distances per alpha) -> a likq_cases-shaped frame."""
    out = []
    for fam, case, holds, ds in rows:
        for a, d in ds.items():
            out.append({"family": fam, "case": case, "alpha": a, "likq": holds, "active": 2, "rank": 2 if holds else 1,
                        "trivial": False, "clarke": "{1}", "ad": "1", "distance": d})
    return pd.DataFrame(out)


DENSE, INPUT, BUILT = asc.FAMILIES


def test_likq_implies_clarke_holds_does_not_hold_and_is_inconclusive():
    inside = {0.0: 0.0, 1.0: 0.0}
    ok = likq_frame([(DENSE, "point 0", True, inside), (BUILT, "max", True, inside),
                     (BUILT, "relu(x) - relu(-x)", False, {0.0: 1.0, 1.0: 1.0}), (INPUT, "net 0", False, inside)])
    v = asc.likq_implies_clarke(ok, [0.0, 1.0])
    assert v.state == HOLDS and set(v.groups) == {f"{DENSE}, where LIKQ holds", f"{BUILT}, where LIKQ holds"}
    # the boundary is reported, never judged: a case leaving where LIKQ fails does not refute the implication
    assert v.reported[f"{BUILT}, where LIKQ fails"].state == DOES_NOT_HOLD
    assert v.reported[f"{BUILT}, where LIKQ fails"].measured["outside"] == ["relu(x) - relu(-x)"]
    assert v.reported[f"{INPUT}, where LIKQ fails"].state == HOLDS
    assert v.measured["likq_holds"] == 2 and v.measured["likq_fails"] == 2
    bad = likq_frame([(DENSE, "point 0", True, inside), (INPUT, "net 3", True, {0.0: 0.0, 1.0: 0.5})])
    v = asc.likq_implies_clarke(bad, [0.0, 1.0])
    assert v.state == DOES_NOT_HOLD and v.groups[f"{INPUT}, where LIKQ holds"].measured["outside"] == ["net 3"]
    assert v.groups[f"{DENSE}, where LIKQ holds"].state == HOLDS
    none_hold = likq_frame([(BUILT, "relu(x) - relu(-x)", False, {0.0: 1.0, 1.0: 1.0})])
    v = asc.likq_implies_clarke(none_hold, [0.0, 1.0])
    assert v.state == INCONCLUSIVE and "LIKQ held at no kinked case" in v.reason and v.reported
    v = asc.likq_implies_clarke(ok, [0.0, 0.5, 1.0])
    assert v.state == INCONCLUSIVE and "0.5 was not run" in v.reason
    v = asc.likq_implies_clarke(ok.assign(alpha=ok.alpha * 2), [0.0, 2.0])
    assert v.state == INCONCLUSIVE and "outside [0, 1]" in v.reason


def test_likq_implies_clarke_judges_a_clarke_set_of_zero_and_skips_unkinked_cases():
    # x + relu(-x) - relu(x) is identically 0, yet AD leaves {0}: a trivial set is still a test of the implication
    rows = likq_frame([(BUILT, "cancel", True, {0.0: 1.0})]).assign(trivial=True)
    assert asc.likq_implies_clarke(rows, [0.0]).state == DOES_NOT_HOLD
    smooth = likq_frame([(DENSE, "point 0", True, {0.0: 0.0})]).assign(active=0)
    v = asc.likq_implies_clarke(smooth, [0.0])
    assert v.state == INCONCLUSIVE and v.measured["kinked_cases"] == 0


def test_the_tool_finds_likq_where_the_hand_computation_does():
    cases = asc.likq_cases(pd.DataFrame(columns=["point", "alpha", "likq", "active", "rank", "trivial", "distance"]),
                           [0.0, 0.5, 1.0], 0, 0)
    first = cases.drop_duplicates("case").set_index("case")
    # by hand: the two kinks' gradients (1 and -1; (1, -1) and (-1, 1); ...) are dependent, or there is one kink
    assert not first.loc["relu(x) - relu(-x)", "likq"] and first.loc["max(x, y) through abs", "likq"]
    assert not first.loc["max(x, y) + min(x, y) through abs", "likq"]
    assert first.loc["two units sharing a bias (sample 1)", "likq"]  # gradients (1, 0, 1), (0, 1, 1)
    assert not first.loc["two units sharing a bias (sample 0)", "likq"]  # both (0, 0, 1)
    assert not first.loc["CReLU pair (relu(z) and relu(-z))", "likq"]
    # relu(x) - relu(-x) = x + (|x| - |-x|)/2: AD returns 1 + (s1 + s2)/2 = 2 alpha for |.|'(0) = 2 alpha - 1
    kl = cases[cases.case == "relu(x) - relu(-x)"]
    assert kl.ad.tolist() == ["0", "1", "2"] and kl.distance.tolist() == [1.0, 0.0, 0.5]  # relative to max(1, |g|)
    # where LIKQ holds, every choice in [0, 1] is inside (the implication, on the constructed programs)
    assert (cases[cases.likq].distance <= 1e-9).all()
    table = asc.likq_table(cases, 1e-9)
    assert table.loc["relu(x) - relu(-x)", "AD, ReLU'(0)=0"] == "0 (outside)"
    assert table.loc["relu(x) - relu(-x)", "Clarke set"] == "{1}" and len(table) == len(asc.CONSTRUCTED)


def test_every_unit_with_its_own_bias_gives_likq_in_the_parameters():
    """Park, Chun and Lee's condition (one sample, every unit its own bias) implies LIKQ in the parameters."""
    from nslib.tools.clarke import likq

    for s in asc.point_seeds(0, 4):
        f, theta = asc.kinked_point([3, 4, 4, 1], 2, s)
        q = likq(f, theta)
        assert q.n_active == 4 and q.holds


def test_page_seeds_draw_independent_points():
    a, b = asc.point_seeds(0, 5), asc.point_seeds(1, 5)
    assert not set(a) & set(b) and asc.point_seeds(0, 3) == a[:3]
    pa = asc.clarke_distances([2, 3, 1], 1, 2, 0, [0.0])
    pb = asc.clarke_distances([2, 3, 1], 1, 2, 1, [0.0])
    assert {"likq", "active", "rank"} <= set(pa.columns)
    fa, ta = asc.kinked_point([2, 3, 1], 1, a[0])
    fb, tb = asc.kinked_point([2, 3, 1], 1, b[0])
    assert not torch.equal(ta, tb) or pa.distance.tolist() != pb.distance.tolist()


def test_every_criterion_string_is_prose():
    inside = {0.0: np.zeros(5), 0.5: np.zeros(5), 1.0: np.zeros(5)}
    verdicts = [
        asc.single_sample_clarke(points({**inside, 2.0: [0, 0.5, 0, 0, 0]}), [0.0, 0.5, 1.0], 2.0),
        asc.batch_needs_agnostic_choice({0.0: np.zeros(3)}, np.array([0, -2.0, 0])),
        asc.kakade_lee_counterexample(0.0, [[1.0]]),
        asc.likq_implies_clarke(likq_frame([(DENSE, "p", True, {0.0: 0.0, 0.5: 0.0, 1.0: 0.0})]), [0.0, 0.5, 1.0]),
    ]
    for v in verdicts:
        assert "[" not in v.criterion and "]" not in v.criterion.replace("[0, 1]", ""), v.criterion
    assert "ReLU'(0) = 0, 0.5 or 1 lies" in verdicts[0].criterion


def test_page_texts_glue_the_likq_sentences():
    cases = likq_frame([(DENSE, "point 0", True, {0.0: 0.0}), (BUILT, "max(x, y) through abs", True, {0.0: 0.0}),
                        (BUILT, "relu(x) - relu(-x)", False, {0.0: 1.0}),
                        (BUILT, "one unit, two samples at 0", False, {0.0: 0.0})])
    v = asc.likq_implies_clarke(cases, [0.0])
    single = asc.single_sample_clarke(points({0.0: np.zeros(2), 2.0: [0, 0.5]}), [0.0], 2.0)
    batch = asc.batch_needs_agnostic_choice({0.0: np.zeros(3)}, np.array([0, -2.0, 0]))
    survey = asc.kink_survey()
    texts = asc.page_texts({"single-sample-clarke": single, "batch-needs-agnostic-choice": batch,
                            "likq-implies-clarke": v}, survey=survey, cases=cases)
    assert texts["likq-dense"] == "LIKQ held at 1 of the 1 kinked point of the dense nets"
    assert texts["likq-holds"] == ("where LIKQ held, AD's output lay in the Clarke set for every tested ReLU'(0) at "
                                   "1 of 1 kinked points of the dense nets and 1 of 1 constructed programs")
    assert texts["likq-fails"] == ("where LIKQ failed, AD left the Clarke set for some tested ReLU'(0) at 1 of 2 "
                                   "constructed programs")
    assert texts["likq-left"] == ("the constructed programs that left it: “relu(x) - relu(-x)”; those where LIKQ "
                                  "fails and AD stays inside all the same: “one unit, two samples at 0”")
    assert texts["likq-kl"] == "for relu(x) - relu(-x) at 0, AD returned 1 with ReLU'(0) = 0"
    assert texts["likq-half"] == "ReLU'(0) = 0.5 was not run where LIKQ fails"
    assert "likq-holds" not in asc.page_texts({"single-sample-clarke": single, "batch-needs-agnostic-choice": batch},
                                              survey=survey)
