"""The verdict object: its states, the one per-group rule, its results.json form and its display."""

import json

import pytest

from nslib.verdicts import STATES, Verdict, verdict_table


def test_constructors_states_and_immutability():
    yes, no = Verdict.decided(True, "c", x=1.5), Verdict.decided(0, "c")
    maybe = Verdict.undecided("c", "the grid misses 2/L", x=float("nan"))
    assert (yes.state, yes.holds, no.state, no.holds) == ("holds", True, "does not hold", False)
    assert (maybe.state, maybe.holds, maybe.reason) == ("inconclusive", None, "the grid misses 2/L")
    assert maybe.measured == {"x": None, "x_nonfinite": "nan"}  # results.json never holds NaN
    assert [v.phrase() for v in (yes, no, maybe)] == ["holds", "does not hold", "is inconclusive"]
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


def test_results_json_form_round_trips_and_reads_as_before():
    groups = {"relu": Verdict.decided(True, "", rise=2.0), "tanh": Verdict.undecided("", "3 runs unsettled")}
    v = Verdict.combine(groups, "crit", eta=0.1)
    data = json.loads(json.dumps(v.to_json(), allow_nan=False))
    assert data == {"holds": None, "status": "inconclusive", "criterion": "crit", "reason": "tanh: 3 runs unsettled",
                    "measured": {"eta": 0.1, "per_group": {
                        "relu": {"rise": 2.0, "holds": True, "status": "holds"},
                        "tanh": {"holds": None, "status": "inconclusive", "reason": "3 runs unsettled"}}}}
    back = Verdict.from_json(data)
    assert back == v and back.groups["tanh"].reason == "3 runs unsettled"
    assert v["measured"]["per_group"]["relu"]["holds"] is True and v["status"] == "inconclusive"  # old readers
    copy = v["measured"]
    copy["eta"] = 99.0
    assert v.measured["eta"] == 0.1  # reading never changes the verdict
    assert set(v) == {"holds", "status", "criterion", "reason", "measured"} and v == data


def test_a_verdict_shows_as_a_small_table_and_a_line():
    v = Verdict.undecided("crit <x>", "grid misses 2d")
    html = v._repr_html_()
    assert "<table>" in html and "inconclusive" in html and "crit &lt;x&gt;" in html
    printed = []
    v._repr_pretty_(type("P", (), {"text": lambda self, t: printed.append(t)})(), False)
    assert printed == ["inconclusive (grid misses 2d)"]
    t = verdict_table({"a": v, "b": Verdict.decided(True, "c", x=0.25).to_json()})
    assert list(t["verdict"]) == ["inconclusive: grid misses 2d", "holds"] and "x = 0.25" in t.loc["b", "measured"]
    assert set(STATES) == {"holds", "does not hold", "inconclusive"}
