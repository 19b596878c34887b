"""Finding-agnostic tools, each module a public namespace (``nslib.tools.clarke.hull_distance``):

- :mod:`~nslib.tools.data`: offline datasets (digits, MNIST-1D) and synthetic sets
- :mod:`~nslib.tools.models`: MLPs with activations by name
- :mod:`~nslib.tools.train`: training loops on torch's optimizers, divergence as a result
- :mod:`~nslib.tools.objectives`: batched convex test objectives with their minima and kinks
- :mod:`~nslib.tools.dynamics`: optimizer dynamics over many starts and step sizes, and their statistics
- :mod:`~nslib.tools.stats`: log-log slopes, Spearman correlations
- :mod:`~nslib.tools.sparsity`: soft-thresholding, magnitude pruning
- :mod:`~nslib.tools.kinks`: ReLU with a chosen ReLU'(0), the kink recorder
- :mod:`~nslib.tools.clarke`: exact and sampled Clarke sets, hull membership and distance, AD gradients

A piece of code starts in its finding's module and moves here when a second finding needs it.
"""

from . import clarke, data, dynamics, kinks, models, objectives, sparsity, stats, train

__all__ = ["clarke", "data", "dynamics", "kinks", "models", "objectives", "sparsity", "stats", "train"]
