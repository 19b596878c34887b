"""The API reference of the book, generated from ``__all__`` and docstrings (``book/api.md`` renders it)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

__all__ = ["api_markdown", "documented", "public_modules"]


def public_modules() -> list[ModuleType]:
    """The page kit, the runner, the figure and glue modules, every tool module and every finding module."""
    import nslib

    mods = [nslib, nslib.runner, importlib.import_module("nslib.figures"), importlib.import_module("nslib.glue")]
    for pkg in (nslib.tools, nslib.findings):
        mods += [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)
                 if not m.name.startswith("_")]
    return mods


def documented(module: ModuleType, name: str) -> str | None:
    """The one-line description of ``module.name``: its docstring's first line (functions, classes, modules), or
    the ``#:`` comment above its assignment (constants). None when it has neither."""
    obj = getattr(module, name)
    if inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj):
        doc = inspect.getdoc(obj)
        return doc.strip().splitlines()[0] if doc else None
    import sys

    # a re-exported constant is documented where it is assigned: look in the module, then in nslib's others
    candidates = [module] + [m for k, m in sorted(sys.modules.items()) if k.startswith("nslib") and m is not module]
    for mod in candidates:
        try:
            source = inspect.getsource(mod)
        except (OSError, TypeError):
            continue
        m = re.search(rf"^#: (.+)\n{re.escape(name)}\b", source, flags=re.M)
        if m:
            return m.group(1).strip()
    return None


def _signature(obj) -> str:
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:
            sig = str(inspect.signature(obj))
        except (TypeError, ValueError):
            return ""
        return sig if len(sig) <= 60 else "(...)"
    return ""


def api_markdown() -> str:
    """Markdown (MyST) tables, one per public module: name, signature and one-line description."""
    out = []
    for mod in public_modules():
        title = (inspect.getdoc(mod) or "").strip().splitlines()[0]
        out.append(f"**`{mod.__name__}`**: {title}\n")
        out.append("| name | what it is |\n|---|---|")
        for name in mod.__all__:
            if name == "__version__":
                continue
            obj = getattr(mod, name)
            shown = f"{name}{_signature(obj)}".replace("|", "\\|")
            desc = (documented(mod, name) or "").replace("|", "\\|")
            out.append(f"| `{shown}` | {desc} |")
        out.append("")
    return "\n".join(out)
