"""Finding notebooks on disk: where they are, their claims, profiles and parameter declarations."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

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
            allowed = {"len": len, "min": min, "max": max, "all": all, "any": any, "set": set, "sorted": sorted}
            scope = {"__builtins__": allowed,
                     **resolved}
            if not eval(expr, scope):  # globals, so that generator expressions see the parameters
                shown = ", ".join(f"{n!r} = {resolved[n]!r}" for n in self.specs if n in expr)
                raise ParamError(f"parameters {shown} are not allowed together: allowed is {message}")
        return resolved


def _parameters_source(nb: dict, path: Path) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = cell["source"]
            return "".join(src) if isinstance(src, list) else src
    raise SyntaxError(f"{path}: no code cell tagged 'parameters'")


@cache
def _load(path: Path, mtime: float) -> NotebookInfo:
    nb = json.loads(path.read_text(encoding="utf-8"))
    meta = nb.get("metadata", {}).get("nslib", {})
    specs = parse_parameters_cell(_parameters_source(nb, path))
    return NotebookInfo(
        stem=path.stem,
        path=path,
        specs=specs,
        claims=dict(meta.get("claims", {})),
        profiles={k: dict(v) for k, v in meta.get("profiles", {}).items()},
        paper_cost=meta.get("paper_cost", ""),
        constraints=dict(meta.get("constraints", {})),
    )


def load_notebook(stem: str) -> NotebookInfo:
    """Read notebook ``stem`` (file stem, e.g. ``l1-paradox``) from the notebooks folder."""
    stem = stem.removesuffix(".ipynb")
    path = notebooks_dir() / f"{stem}.ipynb"
    if not path.is_file():
        known = ", ".join(available_notebooks()) or "(none)"
        raise ParamError(f"notebook {stem!r} not found in {notebooks_dir()}: allowed is one of {known}")
    return _load(path, path.stat().st_mtime)
