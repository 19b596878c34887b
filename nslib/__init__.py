"""nslib: helpers for the book on what non-smoothness does to neural-network training.

Implementation lives in private modules; this is the public surface, grouped by concept:

- parameters and runs: :func:`start`, :class:`Run`, :func:`verdict`, :class:`ParamError`
- runtime: :func:`set_threads`, :func:`resolve_device`, :func:`resolve_dtype`, :func:`seed_everything`
- training: :func:`train`, :func:`make_optimizer`, :func:`make_scheduler`
- toy dynamics: :func:`make_objective`, :func:`run_dynamics` and its statistics
- verdict criteria: :mod:`nslib._verdicts` (re-exported below)
- figures: :func:`set_theme`, :func:`loss_curves`, :func:`loglog_rate`, :func:`verdict_table`
"""

__version__ = "0.1.0"

from ._book import glue_text, glue_verdicts, show_verdicts
from ._convex_dynamics import TWIN_PAIRS, behaviour, random_starts, step_size_study, summarise, twin_study
from ._data import Split, load_digits, load_mnist1d, separable_classification, sparse_regression
from ._dynamics import (
                        Trajectory,
                        blew_up,
                        cycle_period,
                        first_step_staying,
                        increases_per_100,
                        late_mean_gap,
                        run_dynamics,
)
from ._models import ACTIVATIONS, INITS, ReLUAlpha, make_activation, mlp, relu_alpha
from ._notebooks import available_notebooks, load_notebook
from ._objectives import OBJECTIVES, Objective, make_objective
from ._params import ParamError, ParamSpec
from ._plotting import PALETTE, loglog_rate, loss_curves, set_theme, verdict_table
from ._results import Run, start, to_json_safe, verdict
from ._runtime import DTYPES, resolve_device, resolve_dtype, seed_everything, set_threads
from ._train import OPTIMIZERS, SCHEDULES, History, make_optimizer, make_scheduler, train
from ._verdicts import (
                        adaptive_optimizers_differ,
                        cycle_not_converge,
                        gap_linear_in_step,
                        huber_unstable_beyond_2_over_l,
                        loglog_slope,
                        not_yet_measured,
)

__all__ = [
                        "ACTIVATIONS",
                        "DTYPES",
                        "INITS",
                        "OBJECTIVES",
                        "OPTIMIZERS",
                        "PALETTE",
                        "SCHEDULES",
                        "TWIN_PAIRS",
                        "History",
                        "Objective",
                        "ParamError",
                        "ParamSpec",
                        "ReLUAlpha",
                        "Run",
                        "Split",
                        "Trajectory",
                        "__version__",
                        "adaptive_optimizers_differ",
                        "available_notebooks",
                        "behaviour",
                        "blew_up",
                        "cycle_not_converge",
                        "cycle_period",
                        "first_step_staying",
                        "gap_linear_in_step",
                        "glue_text",
                        "glue_verdicts",
                        "huber_unstable_beyond_2_over_l",
                        "increases_per_100",
                        "late_mean_gap",
                        "load_digits",
                        "load_mnist1d",
                        "load_notebook",
                        "loglog_rate",
                        "loglog_slope",
                        "loss_curves",
                        "make_activation",
                        "make_objective",
                        "make_optimizer",
                        "make_scheduler",
                        "mlp",
                        "not_yet_measured",
                        "random_starts",
                        "relu_alpha",
                        "resolve_device",
                        "resolve_dtype",
                        "run_dynamics",
                        "seed_everything",
                        "separable_classification",
                        "set_theme",
                        "set_threads",
                        "show_verdicts",
                        "sparse_regression",
                        "start",
                        "step_size_study",
                        "summarise",
                        "to_json_safe",
                        "train",
                        "twin_study",
                        "verdict",
                        "verdict_table",
]
