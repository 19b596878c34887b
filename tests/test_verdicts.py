"""The verdict object: its states, the one per-group rule, its results.json form and its display for people."""

import json
import re

import pytest

from nslib.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, STATES, Verdict, format_value, verdict_report


def test_constructors_states_and_immutability():
    yes, no = Verdict.decided(True, "c", x=1.5), Verdict.decided(0, "c")
    maybe = Verdict.undecided("c", "the grid misses 2/L", x=float("nan"))
    assert (yes.state, yes.holds, no.state, no.holds) == ("holds", True, "does not hold", False)
    assert (maybe.state, maybe.holds, maybe.reason) == ("inconclusive", None, "the grid misses 2/L")
    assert maybe.measured == {"x": None, "x_nonfinite": "nan"}  # results.json never holds NaN
    assert [v.phrase() for v in (yes, no, maybe)] == ["holds", "does not hold",
                                                      "is inconclusive (the grid misses 2/L)"]
    assert Verdict.from_state("too short", "c") .state == "inconclusive"
    assert Verdict.from_state(False, "c").state == "does not hold"
    with pytest.raises(AttributeError, match="immutable"):
        yes.state = "does not hold"
    with pytest.raises(ValueError, match="allowed is one of"):
        Verdict("maybe", "c")
    with pytest.raises(ValueError, match="reason"):
        Verdict("inconclusive", "c")
    with pytest.raises(ValueError, match="reason"):
        Verdict("holds", "c", reason="why")
    assert STATES == (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE) == ("holds", "does not hold", "inconclusive")


def test_measured_holds_scalars_and_short_flat_lists_only():
    Verdict.decided(True, "c", n=3, x=0.5, ok=True, name="relu", missing=None, rs=[1, 2, 4])
    with pytest.raises(ValueError, match=r"measured\['per_net'\] is a dict: a value per group is a group Verdict"):
        Verdict.decided(True, "c", per_net={"relu": 0.1})
    with pytest.raises(ValueError, match="nested"):
        Verdict.decided(True, "c", vertices=[[1.0], [-1.0]])
    with pytest.raises(ValueError, match="at most 64"):
        Verdict.decided(True, "c", trace=list(range(65)))
    with pytest.raises(TypeError, match=r"groups\['relu'\] is a dict: each group is a Verdict"):
        Verdict.combine({"relu": {"state": True, "measured": {}}}, "c")


@pytest.mark.parametrize("states, expected", [
    ((True, True), "holds"),
    ((True, False, "not settled"), "does not hold"),  # a decided refutation is not hidden by an undecided group
    ((True, "not settled"), "inconclusive"),
    (("not settled", "diverged"), "inconclusive"),
    ((), "inconclusive"),
])
def test_the_one_per_group_rule(states, expected):
    groups = {f"g{i}": Verdict.from_state(s, "", n=i) for i, s in enumerate(states)}
    v = Verdict.combine(groups, "per group", threshold=0.5)
    assert v.state == expected and v.measured == {"threshold": 0.5}
    if expected == "inconclusive":
        want = [f"g{i}: {s}" for i, s in enumerate(states) if isinstance(s, str)] or ["no group was run"]
        assert v.reason == "; ".join(want)
    assert list(v.groups) == list(groups)


def test_reported_groups_are_shown_but_never_combined():
    judged = {"sgd": Verdict.decided(True, "", fraction=0.9)}
    reported = {"adam": Verdict.decided(False, "", fraction=0.1), "rmsprop": Verdict.undecided("", "diverged")}
    v = Verdict.combine(judged, "sgd only", reported=reported)
    assert v.state == "holds" and list(v.reported) == ["adam", "rmsprop"]
    assert v.reading() == "holds in its one group, sgd (fraction 0.9)"


def test_the_reading_names_the_groups_that_decided():
    g = {f"n{i}": Verdict.decided(i % 3 != 0, "") for i in range(7)}
    assert Verdict.combine(g, "c").reading() == "does not hold for 3 of 7 groups (n0, n3, n6)"
    many = {f"n{i}": Verdict.undecided("", "short") for i in range(6)}
    assert Verdict.combine(many, "c").reading() == "inconclusive for 6 of 6 groups (n0, n1, n2, n3 and 2 more)"
    assert Verdict.combine({"a": Verdict.decided(True, ""), "b": Verdict.decided(True, "")}, "c").reading() == \
        "holds in both groups (a, b)"
    assert Verdict.undecided("c", "grid misses 2/L").reading() == "inconclusive: grid misses 2/L"


def test_results_json_form_round_trips_and_reads_as_before():
    groups = {"relu": Verdict.decided(True, "", rise=2.0), "tanh": Verdict.undecided("", "3 runs unsettled")}
    v = Verdict.combine(groups, "crit", reported={"gelu": Verdict.decided(False, "", rise=0.5)}, eta=0.1)
    data = json.loads(json.dumps(v.to_json(), allow_nan=False))
    assert data == {"holds": None, "status": "inconclusive", "criterion": "crit", "reason": "tanh: 3 runs unsettled",
                    "measured": {"eta": 0.1, "per_group": {
                        "relu": {"rise": 2.0, "holds": True, "status": "holds"},
                        "tanh": {"holds": None, "status": "inconclusive", "reason": "3 runs unsettled"},
                        "gelu": {"rise": 0.5, "holds": False, "status": "does not hold", "judged": False}}}}
    back = Verdict.from_json(data)
    assert back == v and back.groups["tanh"].reason == "3 runs unsettled" and list(back.reported) == ["gelu"]
    assert v["measured"]["per_group"]["relu"]["holds"] is True and v["status"] == "inconclusive"  # old readers
    copy = v["measured"]
    copy["eta"] = 99.0
    assert v.measured["eta"] == 0.1  # reading never changes the verdict
    assert set(v) == {"holds", "status", "criterion", "reason", "measured"} and v == data
    nested = Verdict.combine({"mnist": Verdict.combine(groups, "")}, "c")  # a group judged per group itself
    assert Verdict.from_json(json.loads(json.dumps(nested.to_json()))) == nested


def test_values_read_as_people_read_them():
    assert [format_value(x) for x in (None, True, 1234567, 0.000123456, 2.0, 3.14159, [1, 2.5], [])] == \
        ["—", "yes", "1,234,567", "0.000123", "2", "3.14", "1, 2.5", "none"]
    assert format_value(list(range(10))) == "0, 1, 2, 3, 4, 5, 6, 7, … (2 more)"


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_a_page_shows_words_colours_groups_and_no_python():
    groups = {"relu mse": Verdict.decided(True, "", fraction=0.875, median_rise=2.3456, runs=8),
              "tanh ce": Verdict.undecided("", "3 runs unsettled", fraction=float("nan"), runs=8)}
    v = Verdict.combine(groups, "per family, in >= 75% of runs <x>", reported={"gelu": Verdict.decided(False, "")},
                        threshold=0.75, etas=[0.01, 0.02])
    report = verdict_report({"rise": v, "plain": Verdict.decided(True, "c", x=0.25).to_json()},
                            claims={"rise": "the sharpness rises"})
    page = report._repr_html_()
    text = _text(page)
    assert "? inconclusive" in text and "✔ holds" in text and "the sharpness rises" in text
    assert "inconclusive for 1 of 2 groups (tanh ce)" in text and "&lt;x&gt;" in page
    assert "0.875" in text and "2.35" in text and "(reported, not judged)" in text and "<details>" in page
    assert "not finite (nan)" in text and "0.01, 0.02" in text
    for python in ("{'", "None", "nan ", "[0.01", "True", "holds:"):
        assert python not in text, python
    assert repr(report) == "rise: inconclusive for 1 of 2 groups (tanh ce)\nplain: holds (x 0.25)"
    single = v._repr_html_()  # a cell ending in a verdict shows the same card
    assert "tanh ce" in single and "<table" in single
