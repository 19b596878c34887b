"""Parameter specifications read from a notebook's ``parameters`` cell, and their validation.

A parameters cell holds annotated literals, one per line, each with a comment::

    lr: float = 0.05          # constant step size eta {in (0, inf)}
    device: str = "auto"      # where to compute {one of auto, cpu, cuda}
    lrs: list[float] = [0.1]  # step-size grid {each in (0, 10]}

The optional ``{...}`` clause at the end of the comment is the parameter's constraint:
``in`` an interval (``(`` / ``)`` open, ``[`` / ``]`` closed, ``inf`` allowed) or ``one of``
a comma-separated set; ``each`` applies it to every element of a list. Lists must be non-empty and hold distinct
values (a grid that repeats a value would run it twice and count it twice), unless the clause ends in
``; repeats allowed`` (layer widths, say: ``{each in [1, 64]; repeats allowed}``).
The runner reads this declaration without running the notebook, and the notebook's check cell
validates against the same one.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ParamError", "ParamSpec", "coerce", "parse_cli_value", "parse_overrides", "parse_parameters_cell"]

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_LIST_RE = re.compile(r"^list\[(int|float|str|bool)\]$")
_CONSTRAINT_RE = re.compile(r"\{\s*(each\s+)?(in|one of)\s+(.+?)(\s*;\s*repeats allowed)?\s*\}\s*$")
_BRACES_RE = re.compile(r"\{[^{}]*\}\s*$")
_INTERVAL_RE = re.compile(r"^([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])$")


class ParamError(ValueError):
    """A parameter value that breaks its declaration; the message names parameter, value and rule."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: name, type, default, help text and optional constraint."""

    name: str
    type: str  # "int", "float", "str", "bool" or "list[<scalar>]"
    default: Any
    help: str = ""
    interval: tuple[float, float, bool, bool] | None = None  # lo, hi, lo_closed, hi_closed
    choices: tuple[str, ...] | None = None
    each: bool = False
    repeats: bool = False  # a list may repeat a value (only where the declaration says so)

    @property
    def is_list(self) -> bool:
        return self.type.startswith("list")

    @property
    def scalar_type(self) -> str:
        m = _LIST_RE.match(self.type)
        return m.group(1) if m else self.type

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        article = "an" if self.type in ("int",) else "a"
        base = f"{article} {self.type}" if not self.is_list else (
            f"a non-empty {self.type}" + ("" if self.repeats else " of distinct values"))
        if self.interval:
            lo, hi, lc, hc = self.interval
            rng = f"{'[' if lc else '('}{_fmt(lo)}, {_fmt(hi)}{']' if hc else ')'}"
            base += f" {'with each element ' if self.each else ''}in {rng}"
        if self.choices:
            base += f" {'each ' if self.each else ''}one of {', '.join(self.choices)}"
        return base


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(int(x)) if float(x).is_integer() else repr(x)


def _parse_bound(text: str, name: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "+inf"):
        return math.inf
    if t == "-inf":
        return -math.inf
    try:
        return float(t)
    except ValueError:
        raise SyntaxError(f"parameter {name!r}: bad interval bound {text!r} in its comment") from None


def _parse_constraint(name: str, comment: str):
    m = _CONSTRAINT_RE.search(comment)
    if not m:
        if _BRACES_RE.search(comment):  # a clause that is meant as a constraint but misspelt: never drop it silently
            raise SyntaxError(f"parameter {name!r}: cannot read the constraint {_BRACES_RE.search(comment).group(0)!r} "
                              f"in its comment: allowed are {{in [lo, hi]}}, {{one of a, b}} and their 'each' forms")
        return comment.strip(), None, None, False, False
    each, kind, body, repeats = bool(m.group(1)), m.group(2), m.group(3), bool(m.group(4))
    help_text = comment[: m.start()].strip()
    if kind == "in":
        iv = _INTERVAL_RE.match(body)
        if not iv:
            raise SyntaxError(f"parameter {name!r}: cannot read interval {body!r} in its comment")
        lo, hi = _parse_bound(iv.group(2), name), _parse_bound(iv.group(3), name)
        return help_text, (lo, hi, iv.group(1) == "[", iv.group(4) == "]"), None, each, repeats
    choices = tuple(c.strip() for c in body.split(",") if c.strip())
    return help_text, None, choices, each, repeats


def parse_parameters_cell(source: str) -> dict[str, ParamSpec]:
    """Read the declarations of a ``parameters`` cell (annotated literal assignments)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    specs: dict[str, ParamSpec] = {}
    for node in tree.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            raise SyntaxError(
                f"parameters cell line {node.lineno}: only annotated assignments "
                "'name: type = literal  # comment' are allowed"
            )
        name = node.target.id
        type_str = ast.unparse(node.annotation).replace(" ", "")
        if type_str not in _TYPES and not _LIST_RE.match(type_str):
            raise SyntaxError(f"parameter {name!r}: unsupported type {type_str!r}")
        default = ast.literal_eval(node.value)
        line = lines[node.end_lineno - 1]
        comment = line.split("#", 1)[1] if "#" in line else ""
        if "=" in comment:
            # papermill's own parser skips such a line silently, and then ignores -p for it
            raise SyntaxError(f"parameter {name!r}: its comment contains '=', which papermill cannot read; rephrase it")
        help_text, interval, choices, each, repeats = _parse_constraint(name, comment)
        spec = ParamSpec(name, type_str, default, help_text, interval, choices, each, repeats)
        coerce(spec, default)  # a default that breaks its own rule is a bug in the notebook
        specs[name] = spec
    return specs


def _coerce_scalar(spec: ParamSpec, value: Any, kind: str) -> Any:
    bad = ParamError(
        f"parameter {spec.name!r} = {value!r} has the wrong type: allowed is {spec.allowed()}"
    )
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if not isinstance(value, str):
        raise bad
    return value


def _check_rule(spec: ParamSpec, value: Any, shown: Any) -> None:
    if spec.interval is not None:
        lo, hi, lc, hc = spec.interval
        ok = (value >= lo if lc else value > lo) and (value <= hi if hc else value < hi)
        if not ok:  # NaN fails every comparison and lands here too
            raise ParamError(
                f"parameter {spec.name!r} = {shown!r} is out of range: allowed is {spec.allowed()}"
            )
    if spec.choices is not None and str(value) not in spec.choices:
        raise ParamError(
            f"parameter {spec.name!r} = {shown!r} is not an allowed choice: allowed is {spec.allowed()}"
        )


def coerce(spec: ParamSpec, value: Any) -> Any:
    """Return ``value`` converted to the declared type, or raise ParamError saying what is allowed."""
    if spec.is_list:
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise ParamError(
                f"parameter {spec.name!r} = {value!r} has the wrong type: allowed is {spec.allowed()}"
            )
        out = [_coerce_scalar(spec, v, spec.scalar_type) for v in value]
        for v in out:
            _check_rule(spec, v, value)
        if not spec.repeats:
            seen = set()
            for v in out:
                if v in seen:  # 0.0 and -0.0 are one value, as in the run's hash
                    raise ParamError(f"parameter {spec.name!r} = {value!r} repeats {v!r}: allowed is {spec.allowed()}")
                seen.add(v)
        return out
    out = _coerce_scalar(spec, value, spec.type)
    _check_rule(spec, out, value)
    return out


#: Numbers as a user types them: ASCII digits, no digit-group underscores, no leading zeros on integers (``030``
#: is 24 in C and an error in Python); Python's int() and float() would also take ``３０``, ``٣٠`` and ``3_0``.
_INT_TEXT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT_TEXT = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)
#: A list literal longer than this is not something a user types (and a deep one exhausts the parser).
MAX_LIST_TEXT = 10_000


def _number_tokens_ok(text: str) -> bool:
    """No digit-group underscore or non-ASCII digit in the number tokens of a list literal."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return True  # literal_eval reports it
    return all(t.string.isascii() and "_" not in t.string for t in tokens if t.type == tokenize.NUMBER)


def parse_cli_value(spec: ParamSpec, text: str) -> Any:
    """Parse a command-line string by the parameter's declared type, then validate it."""
    kind = spec.type
    unreadable = ParamError(f"parameter {spec.name!r} = {text[:80]!r}{'...' if len(text) > 80 else ''} cannot be read: "
                            f"allowed is {spec.allowed()}")
    if not text.isascii() and kind in ("int", "float"):
        raise ParamError(f"parameter {spec.name!r} = {text!r} is not written in ASCII digits: allowed is "
                         f"{spec.allowed()}")
    if kind == "int" and not _INT_TEXT.fullmatch(text.strip()):
        hint = " (no leading zeros, no underscores)" if text.strip().lstrip("+-").isdigit() or "_" in text else ""
        raise ParamError(f"parameter {spec.name!r} = {text!r} is not an integer as written{hint}: "
                         f"allowed is {spec.allowed()}")
    if kind == "float" and not _FLOAT_TEXT.fullmatch(text.strip()):
        raise unreadable
    if spec.is_list and (len(text) > MAX_LIST_TEXT or not _number_tokens_ok(text)):
        raise ParamError(f"parameter {spec.name!r}: a list of {len(text)} characters"
                         f"{'' if len(text) > MAX_LIST_TEXT else ' with a digit-group underscore or non-ASCII digit'}"
                         f" cannot be read: allowed is {spec.allowed()}, written as a Python list literal"
                         f"{f' of at most {MAX_LIST_TEXT} characters' if len(text) > MAX_LIST_TEXT else ''}")
    try:
        if spec.is_list:
            value = ast.literal_eval(text)
        elif kind == "bool":
            low = text.strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise ValueError
            value = low in ("true", "1")
        elif kind == "int":
            value = int(text)
        elif kind == "float":
            value = float(text)
        else:
            value = text
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise unreadable from None
    return coerce(spec, value)


def parse_overrides(info, pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs -> {name: value} for the notebook ``info`` (a
    :class:`~nslib.runner.NotebookInfo`), each parsed by its declared type; a name given twice is refused."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        if name in out:
            raise ParamError(f"parameter {name!r} is given twice with -p: allowed is once per run")
        out[name] = parse_cli_value(info.spec(name), text)
    return out
