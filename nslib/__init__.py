"""nslib: helpers for the book on what non-smoothness does to neural-network training.

Implementation lives in private modules, one concept each; this is the public surface:

- runs and parameters (``_params``, ``_notebooks``, ``_results``, ``_runner``): :func:`start`, :class:`Run`,
  :func:`verdict`; the command line is ``python -m nslib``
- runtime (``_runtime``): threads, device, dtype, seeds
- training, models, data (``_train``, ``_models``, ``_data``)
- toy dynamics (``_objectives``, ``_dynamics``, ``_convex_dynamics``)
- the Lasso and pruning experiments (``_lasso``, ``_pruning``)
- verdict criteria, one function per claim (``_verdicts``)
- figures and glue (``_plotting``, ``_book``)
"""

__version__ = "0.1.0"

from ._book import glue_text, glue_verdicts, show_verdicts
from ._clarke import (ClarkeSet, InconclusiveError, Kinks, ad_gradient, clarke_set_exact, clarke_set_sampled,
                      clarke_distances, dense_relu_loss, hull_distance, in_hull, kink_survey, kinked_point,
                      n_params)
from ._convex_dynamics import TWIN_PAIRS, behaviour, cycle_table, random_starts, step_size_study, summarise, twin_study
from ._data import Split, load_digits, load_mnist1d, separable_classification, sparse_regression
from ._dynamics import (Trajectory, blew_up, cycle_period, first_step_staying, increases_per_100, late_mean_gap,
                        run_dynamics)
from ._lasso import (NGDM_METHODS, LassoProblem, exact_lasso, fista, lasso_kkt_violation, lasso_objective,
                     make_problems, run_ngdm, soft_threshold, support_jaccard, solution_table, by_seed_and_lambda)
from ._models import ACTIVATIONS, INITS, ReLUAlpha, make_activation, mlp, relu_alpha
from ._notebooks import available_notebooks, load_notebook
from ._objectives import OBJECTIVES, Objective, make_objective
from ._params import ParamError, ParamSpec
from ._plotting import PALETTE, loglog_rate, loss_curves, set_theme, verdict_table
from ._pruning import (accuracy, curve_area, magnitude_prune, penalised_weights, pruning_areas, pruning_curves,
                       sparsity,
                       train_l1_mlp)
from ._results import Run, start, to_json_safe, verdict
from ._runtime import DTYPES, resolve_device, resolve_dtype, seed_everything, set_threads
from ._train import OPTIMIZERS, SCHEDULES, History, make_optimizer, make_scheduler, train
from ._verdicts import (adaptive_optimizers_differ, cycle_not_converge, gap_linear_in_step,
                        huber_unstable_beyond_2_over_l, loglog_slope, ngdm_l1_grows_with_lambda,
                        ngdm_no_exact_zeros, not_yet_measured, objective_gap_grows, prox_recovers_support,
                        pruning_threshold_worse, single_sample_clarke, batch_needs_agnostic_choice,
                        kakade_lee_counterexample)

__all__ = [
    "__version__",
    # runs, parameters, results
    "start", "Run", "verdict", "to_json_safe", "ParamError", "ParamSpec", "load_notebook", "available_notebooks",
    # runtime
    "set_threads", "resolve_device", "resolve_dtype", "seed_everything", "DTYPES",
    # training, models, data
    "train", "History", "make_optimizer", "make_scheduler", "OPTIMIZERS", "SCHEDULES",
    "mlp", "make_activation", "ReLUAlpha", "relu_alpha", "ACTIVATIONS", "INITS",
    "Split", "load_digits", "load_mnist1d", "sparse_regression", "separable_classification",
    # toy dynamics
    "make_objective", "Objective", "OBJECTIVES", "run_dynamics", "Trajectory", "late_mean_gap", "cycle_period",
    "increases_per_100", "first_step_staying", "blew_up", "random_starts", "step_size_study", "summarise",
    "twin_study", "behaviour", "TWIN_PAIRS", "cycle_table",
    # Lasso and pruning
    "LassoProblem", "make_problems", "lasso_objective", "lasso_kkt_violation", "exact_lasso", "fista", "run_ngdm",
    "NGDM_METHODS", "support_jaccard", "solution_table", "by_seed_and_lambda",
    "train_l1_mlp", "pruning_curves", "magnitude_prune", "sparsity", "accuracy",
    "penalised_weights", "curve_area", "pruning_areas", "soft_threshold",
    # Clarke subdifferentials
    "Kinks", "ad_gradient", "clarke_set_exact", "clarke_set_sampled", "hull_distance", "in_hull", "ClarkeSet",
    "InconclusiveError", "dense_relu_loss", "n_params", "kinked_point", "kink_survey", "clarke_distances",
    # verdict criteria
    "cycle_not_converge", "gap_linear_in_step", "huber_unstable_beyond_2_over_l", "adaptive_optimizers_differ",
    "ngdm_no_exact_zeros", "ngdm_l1_grows_with_lambda", "objective_gap_grows", "prox_recovers_support",
    "pruning_threshold_worse", "single_sample_clarke", "batch_needs_agnostic_choice", "kakade_lee_counterexample",
    "loglog_slope", "not_yet_measured",
    # figures and glue
    "set_theme", "PALETTE", "loss_curves", "loglog_rate", "verdict_table", "show_verdicts", "glue_text",
    "glue_verdicts",
]
