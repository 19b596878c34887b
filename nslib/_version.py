"""The version of nslib, in one place below every module that records it (pyproject.toml repeats it)."""

__version__ = "0.1.0"
