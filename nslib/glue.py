"""Glue for the book: numbers and verdicts from a notebook into its prose and the scorecard. The page kit's top:
it reads the atlas and the committed evidence, so nothing below it (the runner, tools, findings) imports it; a finding
builds its sentences with :func:`nslib.verdicts.text_of` and friends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .verdicts import text_of

__all__ = ["glue_text", "glue_texts", "glue_verdicts", "provenance_text", "show_verdicts"]


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


def _param_text(value: Any) -> str:
    from .verdicts import format_value

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_param_text(v) for v in value) or "none"
    return format_value(value) if not isinstance(value, str) else (value or "none")


def glue_verdicts(run) -> None:
    """Glue, for every recorded verdict, ``verdict-<claim id>`` -> 'holds' / 'does not hold' / 'is
    inconclusive (why)' (so that "the claim {glue}" reads right, and whole, in each state: no span is ever glued
    empty); ``param-<name>`` -> each parameter's value as prose reads it (lists joined: "0.01, 0.02, 0.05"; a name
    in prose is the parameter, its ``param-`` glue its value in this run); ``state-<claim id>`` -> the state with a
    mark and ``reading-<claim id>`` -> its one-line reading (:meth:`nslib.verdicts.Verdict.reading`), for the
    scorecard; ``provenance`` -> :func:`provenance_text`, for the page's last section; and the atlas' glue
    (:func:`nslib.atlas.atlas_texts`: ``atlas-<claim id>``, ``atlas-status``, ``atlas-hardware``, ``atlas-kernels``)
    and ``evidence``, what the committed evidence says about the page (:func:`nslib.evidence.evidence_text`)."""
    from .verdicts import MARKS

    glue_text("provenance", provenance_text(run))
    for name, value in run.params.items():  # a parameter's value where prose means the value, not the name
        glue_text(f"param-{name}", _param_text(value))
    for cid, v in run.verdicts.items():
        glue_text(f"verdict-{cid}", v.phrase())
        glue_text(f"state-{cid}", MARKS[v.state] + " " + v.state)
        glue_text(f"reading-{cid}", v.reading())
    from .atlas import atlas_texts
    from .evidence import evidence_text

    for key, text in atlas_texts(run).items():
        glue_text(key, text)
    glue_text("evidence", evidence_text(run.notebook))


def show_verdicts(run):
    """The run's verdicts for people (:func:`nslib.verdicts.verdict_report`): per claim its text, the state in a word
    and a colour, the one-line reading, the criterion, the groups as a small table and the full record collapsed;
    then the page's thresholds with their sources (the finding module's ``THRESHOLDS``)."""
    from .findings import module_for
    from .verdicts import verdict_report

    return verdict_report(run.verdicts, run.claims, getattr(module_for(run.notebook), "THRESHOLDS", ()))
