"""nslib: helpers for the book on what non-smoothness does to neural-network training.

Two levels. This module is the page kit, what every notebook's plumbing uses: :func:`start`, :class:`Run`,
:func:`verdict`, :class:`ParamError`, the figure theme and glue. Everything else sits in namespaces whose
names say whose code it is:

- :mod:`nslib.tools`: finding-agnostic tools (``nslib.tools.clarke.hull_distance``, ``nslib.tools.train.train``)
- :mod:`nslib.findings`: one module per notebook (``nslib.findings.l1_paradox.ngdm_no_exact_zeros``)
- :mod:`nslib.runner`: how a page runs (parameters, notebooks on disk, results.json, ``python -m nslib``)
"""

__version__ = "0.1.0"

from . import findings, runner, tools
from .figures import PALETTE, set_theme
from .glue import glue_text, glue_verdicts, show_verdicts
from .runner import ParamError, Run, inconclusive, start, verdict

__all__ = [
    "__version__",
    # the page kit
    "start", "Run", "verdict", "inconclusive", "ParamError", "set_theme", "PALETTE", "glue_text", "glue_verdicts",
    "show_verdicts",
    # namespaces
    "tools", "findings", "runner",
]
