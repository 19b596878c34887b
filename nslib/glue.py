"""Glue for the book: numbers and verdicts from a notebook into its prose and the scorecard."""

from __future__ import annotations

from typing import Any

__all__ = ["glue_text", "glue_verdicts", "show_verdicts"]


class _Text(str):
    """A string whose repr is itself, so glued text shows without quotes."""

    def __repr__(self) -> str:
        return str(self)


def glue_text(name: str, value: Any, fmt: str = "") -> str:
    """Glue ``value`` (formatted with ``fmt``) as plain text under ``name``; return the text."""
    from myst_nb import glue

    if value is None:
        text = "n/a"
    elif fmt and isinstance(value, (int, float)):
        text = format(value, fmt)
    else:
        text = str(value)
    glue(name, _Text(text), display=False)
    return text


def glue_verdicts(run) -> None:
    """Glue ``verdict-<claim id>`` -> 'holds' / 'does not hold' for every recorded verdict."""
    for cid, v in run.verdicts.items():
        glue_text(f"verdict-{cid}", "holds" if v["holds"] else "does not hold")


def show_verdicts(run):
    """The verdict table of a run (criterion, measured values, holds), for display."""
    from .figures import verdict_table

    return verdict_table(run.verdicts).style.set_properties(**{"text-align": "left", "white-space": "normal"})
