"""How a page runs: parameters and their validation, notebooks on disk, the run record, runtime, sweeps.

No experiment maths lives here. Private files, re-exported (each imported on first use, so that the command line
validates without torch):

- ``_params``: the parameters cell's declarations (:class:`ParamSpec`), ``-p`` values and :class:`ParamError`
- ``_notebooks``: notebooks on disk, their claims, profiles and constraints (:func:`load_notebook`)
- ``_runs``: a run on disk: its hash, its execution with papermill, its folder (:func:`run_notebook`)
- ``_results``: :func:`start`, :class:`Run` and results.json (a verdict is built in :mod:`nslib.verdicts`)
- ``_runtime``: threads, device, dtype and seeds
- ``_sweep``: sweeps and their tables (``python -m nslib sweep`` and ``collect``; the command line itself is
  :mod:`nslib.cli`, above this package)
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "._notebooks": ["PROFILES", "NotebookInfo", "available_notebooks", "load_notebook", "notebooks_dir"],
    "._params": ["ParamError", "ParamSpec"],
    "._runs": ["RESULTS_FILE", "run_hash", "run_notebook"],
    "._results": ["Run", "git_commit", "start"],
    ".._jsonsafe": ["to_json_safe"],
    "._runtime": ["DTYPES", "check_dtypes", "resolve_device", "resolve_dtype", "seed_everything", "set_threads"],
    "._sweep": ["collect"],
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_attributes(__name__, {n: mod for mod, names in _EXPORTS.items() for n in names})
