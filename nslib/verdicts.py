"""The verdict: what a page concludes about one claim, computed from the run's data by the criterion written next to
it. The only door through which a verdict is built, combined, written and shown:

- three states, :data:`HOLDS`, :data:`DOES_NOT_HOLD` and :data:`INCONCLUSIVE` (the run cannot decide; the reason
  says why), spelt here once;
- constructors :meth:`Verdict.decided`, :meth:`Verdict.undecided` and :meth:`Verdict.from_state`;
- the one rule that combines per-group verdicts (a claim judged per net, per activation, per dataset):
  :meth:`Verdict.combine`, with groups measured beside the judged ones (``reported``: shown, never combined);
- its results.json form (:meth:`Verdict.to_json`, :meth:`Verdict.from_json`; groups go to ``measured.per_group``);
- where each criterion's constants come from: :class:`Threshold` (the paper, its authors' code, theory, or ours,
  fixed before the data), one table per finding module (``THRESHOLDS``), shown on the page under the verdicts;
- its prose (:meth:`Verdict.phrase`, :meth:`Verdict.reading`) and its display for people
  (:func:`verdict_report`: the state in a word and a colour, a one-line reading, the groups as a small table, the
  full record collapsed; never a raw dict).

``measured`` holds scalars and short flat lists only: a value per group is a group :class:`Verdict`, not a dict.
A verdict is immutable. It also reads as the results.json dict it is written as (``v["status"]``), for code
written against that format.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator, Mapping
from typing import Any

from ._jsonsafe import to_json_safe

__all__ = ["COLOURS", "DOES_NOT_HOLD", "HOLDS", "INCONCLUSIVE", "LIST_LIMIT", "MARKS", "SOURCES", "STATES", "Threshold",
           "Verdict", "threshold_rows",
           "format_value", "group_states_text", "per_group_text", "text_of", "verdict_report"]

#: The run could decide, and the criterion came out true.
HOLDS = "holds"
#: The run could decide, and the criterion came out false.
DOES_NOT_HOLD = "does not hold"
#: The run cannot decide (a precondition failed: the reason says which); never a refutation.
INCONCLUSIVE = "inconclusive"
#: The three states of a verdict, as results.json spells them.
STATES = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)
#: A glyph per state, beside the word (never instead of it).
MARKS = {HOLDS: "✔", DOES_NOT_HOLD: "✘", INCONCLUSIVE: "?"}
#: Colours of the states on a page (green, red, amber: readable on white, and told apart by the word too).
COLOURS = {HOLDS: "#1a7f37", DOES_NOT_HOLD: "#c4261d", INCONCLUSIVE: "#9a6700"}
#: Where a criterion's constant may come from: the paper's text (a figure, a table, a theorem), the authors' public
#: code, theory (a bound, a stability limit), or ours, fixed before the data (``where`` names the pilot that set it).
SOURCES = ("paper", "authors' code", "theory", "ours, fixed before the data")
#: The longest list a measured value may be (a per-item value of something longer belongs in a table or a group).
LIST_LIMIT = 64


class Threshold:
    """One constant of one criterion and where it comes from: ``claim`` (the claim id), ``name`` (the criterion's
    parameter or module constant), ``value``, ``source`` (one of :data:`SOURCES`) and ``where`` (the figure, table,
    file or theorem; for ours, the pilot that set it and what it measured). Each finding module lists its thresholds
    in ``THRESHOLDS``; the page shows them under its verdicts, and a test fails on a criterion constant without one."""

    __slots__ = ("claim", "name", "value", "source", "where")

    def __init__(self, claim: str, name: str, value: Any, source: str, where: str):
        if source not in SOURCES:
            raise ValueError(f"Threshold {claim}/{name}: source {source!r} is not one of {', '.join(SOURCES)}")
        if not str(where).strip():
            raise ValueError(f"Threshold {claim}/{name}: say where the value comes from (figure, file, pilot)")
        for key, value_ in (("claim", claim), ("name", name), ("value", value), ("source", source), ("where", where)):
            object.__setattr__(self, key, value_)

    def __setattr__(self, name, value):
        raise AttributeError("a Threshold is immutable")

    def __repr__(self) -> str:
        return f"Threshold({self.claim!r}, {self.name!r}, {self.value!r}, {self.source!r}, {self.where!r})"


def threshold_rows(thresholds, claims=None) -> list[dict]:
    """The rows of a thresholds table (claim, constant, value, source, where), restricted to ``claims`` when given."""
    return [{"claim": t.claim, "constant": t.name, "value": format_value(t.value) if not isinstance(t.value, str)
             else t.value, "source": t.source, "where": t.where}
            for t in thresholds if claims is None or t.claim in claims]


def _threshold_table(thresholds, claims) -> str:
    rows = threshold_rows(thresholds, claims)
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("claim", "constant", "value", "source", "where it comes from"))
    body = "".join("<tr>" + "".join(f"<td>{'<code>' + html.escape(r[k]) + '</code>' if k in ('claim', 'constant') else html.escape(str(r[k]))}</td>"  # noqa: E501
                                    for k in ("claim", "constant", "value", "source", "where")) + "</tr>" for r in rows)
    return (f"<p class='nslib-thresholds-title'><strong>Thresholds and where they come from</strong></p>"
            f"<table class='nslib-thresholds'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _checked_measured(measured: Mapping[str, Any]) -> dict:
    safe = to_json_safe(dict(measured))
    for key, value in safe.items():
        if isinstance(value, dict):
            raise ValueError(f"measured[{key!r}] is a dict: a value per group is a group Verdict (Verdict.combine, "
                             f"or its reported= groups), anything else one scalar per key")
        if isinstance(value, list):
            if len(value) > LIST_LIMIT:
                raise ValueError(f"measured[{key!r}] holds {len(value)} values: allowed are lists of at most "
                                 f"{LIST_LIMIT}; summarise it, or keep it in a table of the page")
            if any(isinstance(x, (list, dict)) for x in value):
                raise ValueError(f"measured[{key!r}] is nested: allowed are scalars and flat lists of scalars")
    return safe


def _checked_groups(groups: Mapping[str, Verdict] | None, what: str) -> dict[str, Verdict]:
    groups = dict(groups or {})
    for name, g in groups.items():
        if not isinstance(g, Verdict):
            raise TypeError(f"{what}[{name!r}] is a {type(g).__name__}: each group is a Verdict "
                            f"(Verdict.decided / undecided / from_state)")
    return groups


class Verdict(Mapping):
    """One claim's verdict: ``state`` (one of :data:`STATES`), ``criterion``, ``measured`` values (JSON-safe
    scalars and short lists), ``reason`` (why it is inconclusive; None when decided), ``groups`` (the per-group
    verdicts it was combined from) and ``reported`` (groups measured beside them, by the same test, that the claim
    does not judge: another optimizer, a contrast net)."""

    __slots__ = ("state", "criterion", "measured", "reason", "groups", "reported", "_json")

    def __init__(self, state: str, criterion: str, measured: Mapping[str, Any] | None = None,
                 reason: str | None = None, groups: Mapping[str, Verdict] | None = None,
                 reported: Mapping[str, Verdict] | None = None):
        if state not in STATES:
            raise ValueError(f"state = {state!r}: allowed is one of {', '.join(STATES)}")
        if (state == INCONCLUSIVE) != bool(reason):
            raise ValueError("an inconclusive verdict needs its reason, and only an inconclusive one has one")
        values = {"state": state, "criterion": str(criterion), "reason": reason,
                  "measured": _checked_measured(measured or {}), "groups": _checked_groups(groups, "groups"),
                  "reported": _checked_groups(reported, "reported"), "_json": None}
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Verdict is immutable: cannot set {name!r}")

    # --- constructors -------------------------------------------------------------------------------------------
    @classmethod
    def decided(cls, holds: bool, criterion: str, *, reported: Mapping[str, Verdict] | None = None,
                **measured: Any) -> Verdict:
        """The run could decide: the claim holds (``holds`` true) or does not, by ``criterion`` (with groups measured
        beside it, ``reported``)."""
        return cls(HOLDS if bool(holds) else DOES_NOT_HOLD, criterion, measured, reported=reported)

    @classmethod
    def undecided(cls, criterion: str, reason: str, *, reported: Mapping[str, Verdict] | None = None,
                  **measured: Any) -> Verdict:
        """The run cannot decide: ``reason`` names the precondition that failed (never "does not hold"); groups
        measured all the same can be kept as ``reported``."""
        return cls(INCONCLUSIVE, criterion, measured, reason=reason, reported=reported)

    @classmethod
    def from_state(cls, state: bool | str, criterion: str = "", **measured: Any) -> Verdict:
        """From the short form a criterion computes per group: True, False, or the reason it cannot decide."""
        if isinstance(state, str):
            return cls.undecided(criterion, state, **measured)
        return cls.decided(state, criterion, **measured)

    @classmethod
    def combine(cls, groups: Mapping[str, Verdict], criterion: str, *, reported: Mapping[str, Verdict] | None = None,
                **measured: Any) -> Verdict:
        """One verdict from per-group verdicts, by the book's one rule: any group that does not hold refutes the
        claim; otherwise any inconclusive group makes it inconclusive (the reasons joined, each named by its group);
        otherwise it holds. No group at all is inconclusive. ``reported`` groups are kept and shown, never
        combined."""
        groups = _checked_groups(groups, "groups")
        if not groups:
            return cls(INCONCLUSIVE, criterion, measured, reason="no group was run", reported=reported)
        if any(g.state == DOES_NOT_HOLD for g in groups.values()):
            return cls(DOES_NOT_HOLD, criterion, measured, groups=groups, reported=reported)
        reasons = [f"{k}: {g.reason}" for k, g in groups.items() if g.state == INCONCLUSIVE]
        if reasons:
            return cls(INCONCLUSIVE, criterion, measured, reason="; ".join(reasons), groups=groups, reported=reported)
        return cls(HOLDS, criterion, measured, groups=groups, reported=reported)

    # --- reading ------------------------------------------------------------------------------------------------
    @property
    def holds(self) -> bool | None:
        """True / False when decided, None when inconclusive."""
        return {HOLDS: True, DOES_NOT_HOLD: False}.get(self.state)

    def phrase(self) -> str:
        """The state as prose reads it after "the claim": holds / does not hold / is inconclusive (and why)."""
        return f"is inconclusive ({self.reason})" if self.state == INCONCLUSIVE else self.state

    def summary(self) -> str:
        """One line: the state, and the reason when inconclusive."""
        return self.state + (f" ({self.reason})" if self.reason else "")

    def reading(self) -> str:
        """The verdict in one line for people, naming the groups that decided it: "does not hold for 2 of 6 groups
        (relu ce, tanh ce)", "holds in all 4 groups", "inconclusive: the grid misses 2/L"."""
        if not self.groups:
            if self.reason:
                return f"{self.state}: {self.reason}"
            numbers = _headline(self.measured)
            return self.state + (f" ({numbers})" if numbers else "")
        n = len(self.groups)
        if n == 1:  # "for 1 of 1 group" says nothing: name the group and its numbers
            (name, g), = self.groups.items()
            numbers = _headline(g.measured)
            return f"{self.state} in its one group, {name}" + (f" ({numbers})" if numbers else "")
        deciding = [k for k, g in self.groups.items() if g.state == self.state]
        if self.state == HOLDS:
            return f"holds in {({1: 'the one group', 2: 'both groups'}).get(n, f'all {n} groups')} ({_names(deciding)})"
        return f"{self.state} for {len(deciding)} of {n} group{'s' if n > 1 else ''} ({_names(deciding)})"

    # --- results.json -------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The results.json form: ``holds``, ``status``, ``criterion``, ``reason`` (inconclusive only) and
        ``measured``, with ``per_group`` when judged per group (each group's measured values, holds, status, reason;
        ``"judged": false`` on a reported group)."""
        if self._json is None:
            measured = dict(self.measured)
            entries = {k: _group_entry(g, True) for k, g in self.groups.items()}
            entries.update({k: _group_entry(g, False) for k, g in self.reported.items()})
            if entries:
                measured["per_group"] = entries
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
        entries = measured.pop("per_group", None) or {}
        groups, reported = {}, {}
        for name, entry in entries.items():
            entry = dict(entry)
            judged = entry.pop("judged", True)
            state, reason = entry.pop("status"), entry.pop("reason", None)
            entry.pop("holds", None)
            if state == INCONCLUSIVE and not reason:
                reason = "no reason recorded"
            (groups if judged else reported)[name] = cls.from_json(
                {"status": state, "reason": reason, "criterion": "", "measured": entry})
        return cls(data["status"], data.get("criterion", ""), measured, reason=data.get("reason"), groups=groups,
                   reported=reported)

    # the results.json dict, read-only, for code written against that format
    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

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
        return verdict_report({"": self})._repr_html_()


def _headline(measured: Mapping[str, Any], limit: int = 2) -> str:
    """The first ``limit`` finite numbers of ``measured`` as "label value", for a one-line reading."""
    items = [(k, v) for k, v in measured.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
             and v == v and abs(v) != float("inf")]
    return ", ".join(f"{_label(k)} {format_value(v)}" for k, v in items[:limit])


def _names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _group_entry(g: Verdict, judged: bool) -> dict:
    entry = {**g.to_json()["measured"], "holds": g.holds, "status": g.state}
    if g.reason:
        entry["reason"] = g.reason
    if not judged:
        entry["judged"] = False
    return entry


# --------------------------------------------------------------------------------------------- in prose

def text_of(value: Any, fmt: str = "") -> str:
    """How a value reads in prose: formatted with ``fmt`` when it is a number, "n/a" when it is missing."""
    if value is None:
        return "n/a"
    if fmt and isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value)


def per_group_text(values, fmt: str, key: str | None = None) -> str:
    """``"relu 0.62%, tanh 0.71%"`` for prose: from ``{group: value}``; or with ``key``, each group's measured
    ``key`` of a :class:`~nslib.verdicts.Verdict` judged per group (its reported groups after the judged ones) or of
    ``{group: {key: value}}``. A missing value reads n/a."""
    if isinstance(values, Verdict):
        values = {g: v.measured for g, v in {**values.groups, **values.reported}.items()}
    if key is not None:
        values = {g: m.get(key) for g, m in values.items()}
    return ", ".join(f"{g} {text_of(v, fmt)}" for g, v in values.items()) or "none"


def group_states_text(verdict) -> str:
    """Which groups of a per-group :class:`~nslib.verdicts.Verdict` hold, do not hold and are inconclusive, for
    prose: "holds for relu mse, tanh mse; does not hold for softplus(3) ce; inconclusive for relu ce"."""
    by_state: dict[str, list[str]] = {}
    for name, g in verdict.groups.items():
        by_state.setdefault(g.state, []).append(name)
    return "; ".join(f"{state} for {', '.join(names)}" for state in STATES
                     if (names := by_state.get(state))) or "no group was judged"


# --------------------------------------------------------------------------------------------- shown to people

def format_value(value: Any) -> str:
    """A measured value as a person reads it: numbers to 3 significant figures (integers whole, with thousands
    separators), yes / no, lists joined (at most 8 items shown), a dash for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(x) for x in value[:8])
        return shown + (f", … ({len(value) - 8} more)" if len(value) > 8 else "") if value else "none"
    return str(value)


def _label(key: str) -> str:
    return key.replace("_", " ")


def _measured_items(measured: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, value, note)`` per measured value; a value missing because it was not finite says so in the note."""
    rows = []
    for key, value in measured.items():
        if key.endswith("_nonfinite") and key.removesuffix("_nonfinite") in measured:
            continue
        note = f"not finite ({measured[key + '_nonfinite']})" if value is None and key + "_nonfinite" in measured \
            else ("no value" if value is None else "")
        rows.append((_label(key), format_value(value), note))
    return rows


def _badge(state: str) -> str:
    return (f"<span class='nslib-state' style='color:{COLOURS[state]};font-weight:600;white-space:nowrap'>"
            f"{MARKS[state]} {html.escape(state)}</span>")


def _key_columns(groups: Mapping[str, Verdict], limit: int = 3) -> list[str]:
    """The first ``limit`` numeric measured keys, in the groups' order: the numbers a group table shows."""
    keys: list[str] = []
    for g in groups.values():
        for k, v in g.measured.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and not k.endswith("_nonfinite"):
                keys.append(k)
    return keys[:limit]


def _group_table(groups: Mapping[str, Verdict], reported: Mapping[str, Verdict]) -> str:
    everything = {**groups, **reported}
    keys = _key_columns(everything)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["group", "state", *map(_label, keys)])
    rows = []
    for name, g in everything.items():
        state = _badge(g.state) + (" <em>(reported, not judged)</em>" if name in reported else "")
        if g.reason:
            state += f"<br><small>{html.escape(g.reason)}</small>"
        cells = [html.escape(name), state]
        for k in keys:
            v = g.measured.get(k)
            note = g.measured.get(f"{k}_nonfinite")
            cells.append(format_value(v) + (f" <small>({note})</small>" if note else ""))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<table class='nslib-groups'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _record(v: Verdict) -> str:
    """The full record of a verdict, collapsed: every measured value, and each group's."""
    parts = []
    items = _measured_items(v.measured)
    if items:
        parts.append("<ul>" + "".join(f"<li>{html.escape(k)}: {html.escape(x)}"
                                      + (f" <small>({html.escape(n)})</small>" if n else "") + "</li>"
                                      for k, x, n in items) + "</ul>")
    for kind, groups in (("group", v.groups), ("reported group", v.reported)):
        for name, g in groups.items():
            inner = "; ".join(f"{k} {x}" + (f" ({n})" if n else "") for k, x, n in _measured_items(g.measured))
            parts.append(f"<p><strong>{kind} {html.escape(name)}</strong>: {html.escape(g.state)}"
                         + (f" ({html.escape(g.reason)})" if g.reason else "")
                         + (f"; {html.escape(inner)}" if inner else "") + "</p>")
    if not parts:
        return ""
    return f"<details><summary>full record</summary>{''.join(parts)}</details>"


class VerdictReport:
    """A page's verdicts for people (what :func:`verdict_report` returns): one row per claim with the state in a
    word and a colour, the one-line reading, the criterion, the groups as a small table and the full record
    collapsed. Shows as HTML on a page and as one line per claim in plain text."""

    def __init__(self, verdicts: Mapping[str, Mapping], claims: Mapping[str, str] | None = None, thresholds=()):
        self.verdicts = {k: v if isinstance(v, Verdict) else Verdict.from_json(v) for k, v in verdicts.items()}
        self.claims = dict(claims or {})
        self.thresholds = tuple(thresholds)

    def __repr__(self) -> str:
        return "\n".join(f"{cid}: {v.reading()}" if cid else v.reading() for cid, v in self.verdicts.items())

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        rows = []
        for cid, v in self.verdicts.items():
            claim = (f"<code>{html.escape(cid)}</code>" if cid else "") + (
                f"<br>{html.escape(self.claims[cid])}" if cid in self.claims else "")
            verdict = f"{_badge(v.state)}<br>{html.escape(v.reading())}"
            detail = f"<p>{html.escape(v.criterion)}</p>" if v.criterion else ""
            if v.groups or v.reported:
                detail += _group_table(v.groups, v.reported)
            detail += _record(v)
            rows.append(f"<tr><td>{claim}</td><td>{verdict}</td><td>{detail}</td></tr>" if cid else
                        f"<tr><td>{verdict}</td><td>{detail}</td></tr>")
        head = ("<th>claim</th>" if any(self.verdicts) else "") + "<th>verdict</th><th>criterion and groups</th>"
        return (f"<table class='nslib-verdicts' style='text-align:left'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>" + _threshold_table(self.thresholds, set(self.verdicts)))


def verdict_report(verdicts: Mapping[str, Mapping], claims: Mapping[str, str] | None = None,
                   thresholds=()) -> VerdictReport:
    """The verdicts of a page (claim id -> :class:`Verdict` or its results.json form) rendered for people, with each
    claim's one-line text from ``claims`` when given and, under them, the :class:`Threshold` s of these claims
    with their sources (:class:`VerdictReport`)."""
    return VerdictReport(verdicts, claims, thresholds)
