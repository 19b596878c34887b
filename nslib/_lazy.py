"""Lazy attributes for package ``__init__`` files (PEP 562), so that ``import nslib`` and the command line's
validation never pay for torch, matplotlib or scikit-learn until a name that needs them is used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str], submodules: tuple[str, ...] = ()):
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps an exported name to the module (relative to
    ``package``) that defines it; ``submodules`` are imported on first access as attributes."""

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(names) | set(submodules))

    return __getattr__, __dir__
