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
from ._dynamics import (Trajectory, blew_up, cycle_period, first_step_staying, increases_per_100, late_mean_gap,
                        run_dynamics)
from ._notebooks import available_notebooks, load_notebook
from ._objectives import OBJECTIVES, Objective, make_objective, separable_data
from ._params import ParamError, ParamSpec
from ._plotting import PALETTE, loglog_rate, loss_curves, set_theme, verdict_table
from ._results import Run, start, to_json_safe, verdict
from ._runtime import DTYPES, resolve_device, resolve_dtype, seed_everything, set_threads
from ._train import OPTIMIZERS, SCHEDULES, History, make_optimizer, make_scheduler, train
from ._verdicts import (adaptive_optimizers_differ, cycle_not_converge, gap_linear_in_step,
                        huber_unstable_beyond_2_over_l, loglog_slope, not_yet_measured)

__all__ = [
    "__version__", "glue_text", "glue_verdicts", "show_verdicts", "blew_up", "Trajectory", "cycle_period", "first_step_staying", "increases_per_100", "late_mean_gap",
    "run_dynamics", "available_notebooks", "load_notebook", "OBJECTIVES", "Objective", "make_objective",
    "separable_data", "ParamError", "ParamSpec", "PALETTE", "loglog_rate", "loss_curves", "set_theme",
    "verdict_table", "Run", "start", "to_json_safe", "verdict", "DTYPES", "resolve_device", "resolve_dtype",
    "seed_everything", "set_threads", "OPTIMIZERS", "SCHEDULES", "History", "make_optimizer",
    "make_scheduler", "train", "TWIN_PAIRS", "behaviour", "random_starts", "step_size_study", "summarise",
    "twin_study", "adaptive_optimizers_differ", "huber_unstable_beyond_2_over_l", "cycle_not_converge", "gap_linear_in_step", "loglog_slope", "not_yet_measured",
]
