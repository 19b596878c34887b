"""Finding notebooks on disk: where they are, their claims, profiles and parameter declarations."""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..tools._datasets import train_size
from ._params import ParamError, ParamSpec, coerce, parse_parameters_cell

__all__ = ["PROFILES", "NotebookInfo", "available_notebooks", "load_notebook", "notebooks_dir"]

#: The three scales a notebook runs at: seconds, minutes (the parameters cell), the papers' scale.
PROFILES = ("quick", "book", "paper")


def notebooks_dir() -> Path:
    """The folder of finding notebooks: ``$NSLIB_NOTEBOOKS`` or ``notebooks/`` beside the package."""
    env = os.environ.get("NSLIB_NOTEBOOKS")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parents[2] / "notebooks").resolve()


def available_notebooks() -> list[str]:
    """Stems of every notebook in the notebooks folder, sorted."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb"))


@dataclass(frozen=True)
class NotebookInfo:
    """What the runner needs to know of a notebook without running it."""

    stem: str
    path: Path
    specs: dict[str, ParamSpec]
    claims: dict[str, str]
    profiles: dict[str, dict[str, Any]]
    paper_cost: str
    constraints: dict[str, str] | None = None  # expression over parameters -> message when it is false
    atlas: dict[str, Any] | None = None  # metadata.nslib.atlas: seeds, variations, variation_seeds, kernels
    book_claims: tuple[str, ...] = ()  # metadata.nslib.book_claims: the claims that are this book's own (a control, a
    # boundary it measures), not the paper's; the scorecard says which is which
    deterministic_claims: tuple[str, ...] = ()  # metadata.nslib.deterministic_claims: claims whose computation does
    # not depend on the seed (a closed form, a constructed case): the atlas counts them once, not once per seed

    def kind(self, claim_id: str) -> str:
        """``"book"`` for a claim this book adds (:attr:`book_claims`), else ``"paper"``."""
        return "book" if claim_id in self.book_claims else "paper"

    def spec(self, name: str) -> ParamSpec:
        """The declaration of parameter ``name``; ParamError naming the known ones if there is none."""
        if name not in self.specs:
            raise ParamError(f"parameter {name!r} is unknown to notebook {self.stem!r}: "
                             f"allowed is one of {', '.join(self.specs)}")
        return self.specs[name]

    def resolve(self, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults (= book), then the profile, then ``overrides``; every value validated."""
        if profile not in PROFILES:
            raise ParamError(f"profile {profile!r} is unknown: allowed is one of {', '.join(PROFILES)}")
        if profile != "book" and profile not in self.profiles:
            raise ParamError(
                f"profile {profile!r} is not declared by notebook {self.stem!r}: "
                f"allowed is one of book, {', '.join(self.profiles)}"
            )
        resolved = {name: spec.default for name, spec in self.specs.items()}
        layers = [self.profiles.get(profile, {}) if profile != "book" else {}, overrides or {}]
        for layer in layers:
            for name, value in layer.items():
                resolved[name] = coerce(self.spec(name), value)
        for expr, message in (self.constraints or {}).items():
            # the notebook's own metadata, evaluated over the resolved literals only
            allowed = {"len": len, "min": min, "max": max, "all": all, "any": any, "set": set, "sorted": sorted,
                       "train_size": train_size}
            scope = {"__builtins__": allowed,
                     **resolved}
            if not eval(expr, scope):  # globals, so that generator expressions see the parameters
                used = {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}
                shown = ", ".join(f"{n!r} = {resolved[n]!r}" for n in self.specs if n in used)
                raise ParamError(f"parameters {shown} are not allowed together: allowed is {message}")
        return resolved


def _parameters_source(nb: dict, path: Path) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    raise SyntaxError(f"{path}: no code cell tagged 'parameters'")


#: Names a constraint may use besides the parameters: a few builtins, and what a data set can deliver
#: (:func:`nslib.tools.data.train_size`, torch-free, so that a size is refused before any kernel starts).
_CONSTRAINT_BUILTINS = {"len", "min", "max", "all", "any", "set", "sorted", "train_size", "True", "False", "None"}


def _check_constraint(expr: str, specs: dict) -> None:
    """A constraint must parse and name only parameters (a typo would otherwise fail only at some later run)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise SyntaxError(f"constraint {expr!r} cannot be read: {e.msg}") from None
    bound = {t.id for c in ast.walk(tree) if isinstance(c, ast.comprehension)
             for t in ast.walk(c.target) if isinstance(t, ast.Name)}
    unknown = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(specs) - _CONSTRAINT_BUILTINS - bound
    if unknown:
        raise SyntaxError(f"constraint {expr!r} names {', '.join(sorted(unknown))}, which is not a parameter")


@cache
def _load(path: Path, mtime: float) -> NotebookInfo:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SyntaxError(f"not valid JSON: {e.msg}", (str(path), e.lineno, e.colno, None)) from None
    meta = nb.get("metadata", {}).get("nslib", {})
    specs = parse_parameters_cell(_parameters_source(nb, path))
    for expr in meta.get("constraints", {}):
        _check_constraint(expr, specs)
    for key in ("book_claims", "deterministic_claims"):
        unknown = set(meta.get(key, [])) - set(meta.get("claims", {}))
        if unknown:
            raise SyntaxError(f"metadata.nslib.{key} names {', '.join(sorted(unknown))}, which is not a claim")
    return NotebookInfo(
        stem=path.stem,
        path=path,
        specs=specs,
        claims=dict(meta.get("claims", {})),
        profiles={k: dict(v) for k, v in meta.get("profiles", {}).items()},
        paper_cost=meta.get("paper_cost", ""),
        constraints=dict(meta.get("constraints", {})),
        atlas=meta.get("atlas"),
        book_claims=tuple(meta.get("book_claims", [])),
        deterministic_claims=tuple(meta.get("deterministic_claims", [])),
    )


def load_notebook(stem: str) -> NotebookInfo:
    """Read notebook ``stem`` (file stem, e.g. ``l1-paradox``) from the notebooks folder."""
    stem = stem.removesuffix(".ipynb")
    path = notebooks_dir() / f"{stem}.ipynb"
    if not path.is_file():
        known = ", ".join(available_notebooks()) or "(none)"
        raise ParamError(f"notebook {stem!r} not found in {notebooks_dir()}: allowed is one of {known}")
    return _load(path, path.stat().st_mtime)
