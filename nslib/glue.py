"""Glue for the book: numbers and verdicts from a notebook into its prose and the scorecard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["glue_text", "glue_texts", "glue_verdicts", "group_states_text", "per_group_text", "provenance_text",
           "show_verdicts", "text_of"]


def text_of(value: Any, fmt: str = "") -> str:
    """How a value reads in prose: formatted with ``fmt`` when it is a number, "n/a" when it is missing."""
    if value is None:
        return "n/a"
    if fmt and isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value)


def glue_text(name: str, value: Any, fmt: str = "") -> None:
    """Glue ``value`` (as :func:`text_of` writes it) as plain text under ``name``. Returns nothing, so that a plumbing
    cell ending in it shows nothing on the page."""
    from myst_nb import glue

    text = text_of(value, fmt)
    # glued as a Python string literal: myst-nb's {glue:text} reads text/plain back with ast.literal_eval, which
    # turned a bare "80,928,768" into the tuple (80, 928, 768) and "0.50" into 0.5; a quoted literal comes back as
    # exactly this text
    glue(name, text, display=False)


def glue_texts(prefix: str, texts: Mapping[str, str]) -> None:
    """Glue a page's sentences: each ``texts[key]`` under ``<prefix>-<key>``. The one way a page gets its prose
    numbers: every finding module has a ``page_texts(...)`` that builds them from the run, and the page's last
    plumbing cell glues them with this."""
    for key, text in texts.items():
        glue_text(f"{prefix}-{key}", text)


def per_group_text(values, fmt: str, key: str | None = None) -> str:
    """``"relu 0.62%, tanh 0.71%"`` for prose: from ``{group: value}``; or with ``key``, each group's measured
    ``key`` of a :class:`~nslib.verdicts.Verdict` judged per group (its reported groups after the judged ones) or of
    ``{group: {key: value}}``. A missing value reads n/a."""
    from .verdicts import Verdict

    if isinstance(values, Verdict):
        values = {g: v.measured for g, v in {**values.groups, **values.reported}.items()}
    if key is not None:
        values = {g: m.get(key) for g, m in values.items()}
    return ", ".join(f"{g} {text_of(v, fmt)}" for g, v in values.items()) or "none"


def group_states_text(verdict) -> str:
    """Which groups of a per-group :class:`~nslib.verdicts.Verdict` hold, do not hold and are inconclusive, for
    prose: "holds for relu mse, tanh mse; does not hold for softplus(3) ce; inconclusive for relu ce"."""
    from .verdicts import STATES

    by_state: dict[str, list[str]] = {}
    for name, g in verdict.groups.items():
        by_state.setdefault(g.state, []).append(name)
    return "; ".join(f"{state} for {', '.join(names)}" for state in STATES
                     if (names := by_state.get(state))) or "no group was judged"


def provenance_text(run) -> str:
    """One sentence: profile, parameters hash (the run folder's name), nslib version, git commit, torch version,
    device, dtype, threads, the date of the run, and the hardware in one short line
    (:func:`nslib.runner._runtime.hardware_text`: what the CPU kernels, BLAS and CUDA device were)."""
    import datetime as dt

    from .runner._runs import run_hash
    from .runner._runtime import hardware_text

    env = run.env()
    commit = env["git_commit"][:12] if env["git_commit"] else "none (not a git checkout)"
    return (f"profile {run.profile}, parameters hash {run_hash(run.profile, run.params)}, nslib {env['nslib']}, "
            f"git commit {commit}, torch {env['torch']}, device {env['device']}, dtype {env['dtype']}, "
            f"{env['threads']} thread(s), computed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; hardware: "
            f"{hardware_text(env.get('hardware'))}")


def glue_verdicts(run) -> None:
    """Glue, for every recorded verdict, ``verdict-<claim id>`` -> 'holds' / 'does not hold' / 'is inconclusive'
    (so that "the claim {glue}" reads right in each state) and ``reason-<claim id>`` -> why it is inconclusive
    (empty otherwise); ``state-<claim id>`` -> the state with a mark, for the scorecard; ``provenance`` ->
    :func:`provenance_text`, for the page's last section and the scorecard; and the atlas' glue
    (:func:`nslib.atlas.atlas_texts`: ``atlas-<claim id>``, ``atlas-status``, ``atlas-hardware``, ``atlas-kernels``)
    and ``evidence``, what the committed GPU
    runs say about the page (:func:`nslib.evidence.evidence_text`)."""
    from .verdicts import MARKS

    glue_text("provenance", provenance_text(run))
    for cid, v in run.verdicts.items():
        glue_text(f"verdict-{cid}", v.phrase())
        glue_text(f"reason-{cid}", f"(inconclusive: {v.reason})" if v.reason else "")
        glue_text(f"state-{cid}", MARKS[v.state] + " " + v.state)
    from .atlas import atlas_texts
    from .evidence import evidence_text

    for key, text in atlas_texts(run).items():
        glue_text(key, text)
    glue_text("evidence", evidence_text(run.notebook))


def show_verdicts(run):
    """The run's verdicts for people (:func:`nslib.verdicts.verdict_report`): per claim its text, the state in a word
    and a colour, the one-line reading, the criterion, the groups as a small table and the full record collapsed."""
    from .verdicts import verdict_report

    return verdict_report(run.verdicts, run.claims)
