"""The verdict: what a page concludes about one claim, computed from the run's data by the criterion written next to
it. One object, in one file:

- three states, ``holds``, ``does not hold`` and ``inconclusive`` (the run cannot decide; the reason says why);
- constructors :meth:`Verdict.decided`, :meth:`Verdict.undecided` and :meth:`Verdict.from_state`;
- the one rule that combines per-group verdicts (a claim judged per net, per activation, per dataset):
  :meth:`Verdict.combine`;
- its results.json form (:meth:`Verdict.to_json`, :meth:`Verdict.from_json`),
  its prose (:meth:`Verdict.phrase`), its tables (:func:`verdict_table`, :func:`per_group_table`,
  :func:`measured_table`) and its display on a page (a small table, never a raw dict).

A verdict is immutable. It also reads as the results.json dict it is written as (``v["holds"]``,
``v["measured"]``), so that code written against that format keeps working; new code uses the attributes.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator, Mapping
from typing import Any

from .runner._jsonsafe import to_json_safe

__all__ = ["STATES", "Verdict", "measured_table", "per_group_table", "verdict_table"]

#: The three states of a verdict, as results.json spells them.
STATES = ("holds", "does not hold", "inconclusive")


class Verdict(Mapping):
    """One claim's verdict: ``state`` (one of :data:`STATES`), ``criterion``, ``measured`` values (JSON-safe),
    ``reason`` (why it is inconclusive; None when decided) and ``groups`` (per-group verdicts, each a Verdict)."""

    __slots__ = ("state", "criterion", "measured", "reason", "groups", "_json")

    def __init__(self, state: str, criterion: str, measured: Mapping[str, Any] | None = None,
                 reason: str | None = None, groups: Mapping[str, Verdict] | None = None):
        if state not in STATES:
            raise ValueError(f"state = {state!r}: allowed is one of {', '.join(STATES)}")
        if (state == STATES[2]) != bool(reason):
            raise ValueError("an inconclusive verdict needs its reason, and only an inconclusive one has one")
        for name, value in (("state", state), ("criterion", str(criterion)), ("reason", reason),
                            ("groups", dict(groups or {}))):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "measured", to_json_safe(dict(measured or {})))
        object.__setattr__(self, "_json", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Verdict is immutable: cannot set {name!r}")

    # --- constructors -------------------------------------------------------------------------------------------
    @classmethod
    def decided(cls, holds: bool, criterion: str, **measured: Any) -> Verdict:
        """The run could decide: the claim holds (``holds`` true) or does not, by ``criterion``."""
        return cls(STATES[0] if bool(holds) else STATES[1], criterion, measured)

    @classmethod
    def undecided(cls, criterion: str, reason: str, **measured: Any) -> Verdict:
        """The run cannot decide: ``reason`` names the precondition that failed (never "does not hold")."""
        return cls(STATES[2], criterion, measured, reason=reason)

    @classmethod
    def from_state(cls, state: bool | str, criterion: str = "", **measured: Any) -> Verdict:
        """From the short form a criterion computes per group: True, False, or the reason it cannot decide."""
        if isinstance(state, str):
            return cls.undecided(criterion, state, **measured)
        return cls.decided(state, criterion, **measured)

    @classmethod
    def combine(cls, groups: Mapping[str, Verdict], criterion: str, **measured: Any) -> Verdict:
        """One verdict from per-group verdicts, by the book's one rule: any group that does not hold refutes the
        claim; otherwise any inconclusive group makes it inconclusive (the reasons joined, each named by its group);
        otherwise it holds. No group at all is inconclusive. The groups' measured values and states are kept, and
        written to results.json as ``measured["per_group"]``."""
        groups = {k: g if isinstance(g, Verdict) else cls.from_state(g["state"], "", **g["measured"])
                  for k, g in groups.items()}
        if not groups:
            return cls.undecided(criterion, "no group was run", **measured)
        if any(g.state == STATES[1] for g in groups.values()):
            return cls(STATES[1], criterion, measured, groups=groups)
        reasons = [f"{k}: {g.reason}" for k, g in groups.items() if g.state == STATES[2]]
        if reasons:
            return cls(STATES[2], criterion, measured, reason="; ".join(reasons), groups=groups)
        return cls(STATES[0], criterion, measured, groups=groups)

    # --- reading ------------------------------------------------------------------------------------------------
    @property
    def holds(self) -> bool | None:
        """True / False when decided, None when inconclusive."""
        return {STATES[0]: True, STATES[1]: False}.get(self.state)

    def phrase(self) -> str:
        """The state as prose reads it after "the claim": holds / does not hold / is inconclusive."""
        return "is inconclusive" if self.state == STATES[2] else self.state

    def summary(self) -> str:
        """One line: the state, and the reason when inconclusive."""
        return self.state + (f" ({self.reason})" if self.reason else "")

    def group_table(self):
        """The per-group verdicts as a table (a pandas DataFrame), one row per group: state, reason, measured."""
        import pandas as pd

        return pd.DataFrame({k: {"state": g.state, "reason": g.reason or "", **g.measured}
                             for k, g in self.groups.items()}).T

    # --- results.json -------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The results.json form: ``holds``, ``status``, ``criterion``, ``reason`` (inconclusive only) and
        ``measured`` (with ``per_group`` when judged per group: each group's measured values, holds and status)."""
        if self._json is None:
            measured = dict(self.measured)
            if self.groups:
                measured["per_group"] = {k: {**g.measured, "holds": g.holds, "status": g.state,
                                             **({"reason": g.reason} if g.reason else {})}
                                         for k, g in self.groups.items()}
            out = {"holds": self.holds, "status": self.state, "criterion": self.criterion}
            if self.reason:
                out["reason"] = self.reason
            out["measured"] = measured
            object.__setattr__(self, "_json", out)
        return copy.deepcopy(self._json)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        """Read back what :meth:`to_json` wrote."""
        measured = dict(data.get("measured", {}))
        per_group = measured.pop("per_group", None)
        groups = None
        if isinstance(per_group, dict) and all(isinstance(g, dict) and g.get("status") in STATES
                                               for g in per_group.values()):
            groups = {k: cls(g["status"], "", {m: v for m, v in g.items() if m not in ("holds", "status", "reason")},
                             reason=(g.get("reason") or "no reason recorded") if g["status"] == STATES[2] else None)
                      for k, g in per_group.items()}
        elif per_group is not None:
            measured["per_group"] = per_group
        return cls(data["status"], data.get("criterion", ""), measured, reason=data.get("reason"), groups=groups)

    # the results.json dict, read-only, for code written against that format
    def __getitem__(self, key: str) -> Any:
        self.to_json()
        return copy.deepcopy(self._json[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    def __eq__(self, other) -> bool:
        if isinstance(other, Verdict):
            return self.to_json() == other.to_json()
        return isinstance(other, Mapping) and self.to_json() == dict(other)

    __hash__ = None

    # --- on a page ----------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Verdict({self.summary()!r})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.summary())

    def _repr_html_(self) -> str:
        cells = [self.state, self.criterion, self.reason or ""]
        head = "".join(f"<th>{h}</th>" for h in ("state", "criterion", "reason"))
        row = "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in cells)
        return f"<table><thead><tr>{head}</tr></thead><tbody><tr>{row}</tr></tbody></table>"


def _as_verdict(v: Mapping) -> Verdict:
    return v if isinstance(v, Verdict) else Verdict.from_json(v)


def _short_measured(v: Verdict, limit: int = 6) -> str:
    parts = []
    if v.groups:
        parts.append("per group: " + "; ".join(f"{k}: {g.state}" for k, g in v.groups.items()))
    for k, x in v.measured.items():
        if k == "per_group" and isinstance(x, dict):  # a criterion's own per-group numbers, not verdicts
            parts.append("per group: " + "; ".join(f"{g}: {e}" for g, e in x.items()))
        else:
            parts.append(f"{k} = {x:.3g}" if isinstance(x, float) else f"{k} = {x}")
    return "; ".join(parts[:limit])


def verdict_table(verdicts: Mapping[str, Mapping]):
    """One row per claim (a pandas DataFrame indexed by claim id): verdict (holds / does not hold / inconclusive:
    reason), criterion, measured values in short."""
    import pandas as pd

    rows = []
    for cid, v in verdicts.items():
        v = _as_verdict(v)
        rows.append({"claim": cid, "verdict": v.state + (f": {v.reason}" if v.reason else ""),
                     "criterion": v.criterion, "measured": _short_measured(v)})
    return pd.DataFrame(rows).set_index("claim")


def per_group_table(verdict: Mapping):
    """A verdict's per-group values and states as a table, one row per group (empty when it has none)."""
    import pandas as pd

    return pd.DataFrame(_as_verdict(verdict).to_json()["measured"].get("per_group", {})).T


def measured_table(verdict: Mapping):
    """A verdict's measured values as one column (lists and per-group values left out: they do not fit a cell)."""
    import pandas as pd

    values = {k: v for k, v in _as_verdict(verdict).measured.items() if not isinstance(v, (list, dict))}
    return pd.Series(values, name="measured", dtype=object).to_frame()
