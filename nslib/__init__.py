"""nslib: helpers for the book on what non-smoothness does to neural-network training.

Two levels. This module is the page kit, what every notebook's plumbing uses: :func:`start`, :class:`Run`,
:class:`Verdict`, :class:`ParamError`, the figure theme and glue. Everything else sits in namespaces whose
names say whose code it is:

- :mod:`nslib.tools`: finding-agnostic tools (``nslib.tools.clarke.hull_distance``, ``nslib.tools.train.train``)
- :mod:`nslib.findings`: one module per notebook (``nslib.findings.l1_paradox.ngdm_no_exact_zeros``)
- :mod:`nslib.runner`: how a page runs (parameters, notebooks on disk, results.json, ``python -m nslib``)

Every name is imported on first use, so ``import nslib`` is cheap and the command line answers at once.
"""

from ._lazy import lazy_attributes
from ._version import __version__

__all__ = [
    "__version__",
    # the page kit
    "start", "Run", "Verdict", "ParamError", "set_theme", "PALETTE", "glue_text",
    "glue_texts", "glue_verdicts", "show_verdicts",
    # namespaces
    "tools", "findings", "runner",
]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "start": ".runner._results", "Run": ".runner._results", "Verdict": ".verdicts", "ParamError": ".runner._params",
    "set_theme": ".figures", "PALETTE": ".figures",
    "glue_text": ".glue", "glue_texts": ".glue", "glue_verdicts": ".glue", "show_verdicts": ".glue",
}, submodules=("tools", "findings", "runner", "atlas", "bookbuild", "devicecheck", "evidence", "figures", "glue",
               "verdicts"))
