"""Finding-agnostic tools, each module a public namespace (``nslib.tools.clarke.hull_distance``):

- :mod:`~nslib.tools.data`: offline datasets (digits, MNIST-1D, MNIST from local IDX files) and synthetic sets
- :mod:`~nslib.tools.models`: MLPs with activations by name; a model's loss over one flat parameter vector
- :mod:`~nslib.tools.train`: training loops on torch's optimizers, divergence as a result
- :mod:`~nslib.tools.ensembles`: many seeds / step sizes / betas of one small model trained at once (torch.func)
- :mod:`~nslib.tools.objectives`: batched convex test objectives with their minima and kinks
- :mod:`~nslib.tools.dynamics`: optimizer dynamics over many starts and step sizes, and their statistics
- :mod:`~nslib.tools.seeds`: independent random streams from one page seed (``numpy.random.SeedSequence``)
- :mod:`~nslib.tools.stats`: log-log slopes, Spearman correlations
- :mod:`~nslib.tools.sparsity`: soft-thresholding, magnitude pruning
- :mod:`~nslib.tools.kinks`: ReLU with a chosen ReLU'(0), the kink recorder
- :mod:`~nslib.tools.clarke`: exact and sampled Clarke sets, hull membership and distance, AD gradients, the LIKQ check
- :mod:`~nslib.tools.curvature`: Hessian-vector products, extreme Hessian eigenvalues by Lanczos, dense Hessians
- :mod:`~nslib.tools.flows`: gradient flows by adaptive ODE solvers, GD as their discretisation, distances
- :mod:`~nslib.tools.maxpool`: MaxPool with a chosen Jacobian (beta J_min + (1 - beta) J_native), window ties

Divergence is a result, recorded one way everywhere: ``diverged_at``, the index of the first step whose loss or
iterate was NaN/inf (None when the run stayed finite; -1 in an array over many runs), and ``diverged``, a bool (or
bool array) derived from it. A record says which step it counts (an optimizer step, a GD iterate).

A piece of code starts in its finding's module and moves here when a second finding needs it. Each module is
imported on first use.
"""

from .._lazy import lazy_attributes

__all__ = ["clarke", "curvature", "data", "dynamics", "ensembles", "flows", "kinks", "maxpool", "models", "objectives",
           "seeds", "sparsity", "stats", "train"]

__getattr__, __dir__ = lazy_attributes(__name__, {}, submodules=tuple(__all__))
