"""One module per notebook, named after its stem in snake_case: the experiment functions, the ``plot_*``
functions of its figures, and one criterion function per claim id (``cycle-not-converge`` ->
``cycle_not_converge``). A reader of one page finds all of its code in one file. Each module is imported on
first use (``nslib.findings.l1_paradox``).
"""

from .._lazy import lazy_attributes

#: The finding modules, one per notebook.
MODULES = ("abs_smooth_clarke", "edge_of_stability_networks", "gd_vs_gradient_flow", "l1_paradox", "maxpool_jacobians",
           "nonsmooth_convex_dynamics", "relu_prime_at_zero", "relu_vs_smooth_convergence")

__all__ = [*MODULES, "module_for"]

__getattr__, __dir__ = lazy_attributes(__name__, {}, submodules=MODULES)


def module_for(stem: str):
    """The finding module of notebook ``stem`` (e.g. ``l1-paradox`` -> :mod:`nslib.findings.l1_paradox`)."""
    import importlib

    return importlib.import_module(f"{__name__}.{stem.replace('-', '_')}")
