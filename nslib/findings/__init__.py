"""One module per notebook, named after its stem in snake_case: the experiment functions, the ``plot_*``
functions of its figures, and one criterion function per claim id (``cycle-not-converge`` ->
``cycle_not_converge``). A reader of one page finds all of its code in one file.
"""

from . import abs_smooth_clarke, gd_vs_gradient_flow, l1_paradox, nonsmooth_convex_dynamics

__all__ = ["abs_smooth_clarke", "gd_vs_gradient_flow", "l1_paradox", "nonsmooth_convex_dynamics", "module_for"]


def module_for(stem: str):
    """The finding module of notebook ``stem`` (e.g. ``l1-paradox`` -> :mod:`nslib.findings.l1_paradox`)."""
    import importlib

    return importlib.import_module(f"{__name__}.{stem.replace('-', '_')}")
