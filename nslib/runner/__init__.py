"""How a page runs: parameters and their validation, notebooks on disk, the run record, runtime, the CLI.

No experiment maths lives here. Private files, re-exported:

- ``_params``: the parameters cell's declarations (:class:`ParamSpec`) and :class:`ParamError`
- ``_notebooks``: notebooks on disk, their claims, profiles and constraints (:func:`load_notebook`)
- ``_results``: :func:`start`, :class:`Run`, :func:`verdict`, :func:`combine_verdicts`, results.json
- ``_runtime``: threads, device, dtype and seeds
- ``_cli`` and ``_sweep``: ``python -m nslib run|list|params|audit``, and ``sweep`` and ``collect``
- ``_apidoc``: the book's API page, generated from ``__all__`` and docstrings
- ``_book``: ``python -m nslib book-times``, each page's execution time in the last book build
"""

from ._apidoc import api_markdown, documented, public_modules
from ._cli import main, run_hash, run_notebook
from ._notebooks import PROFILES, NotebookInfo, available_notebooks, load_notebook, notebooks_dir
from ._params import ParamError, ParamSpec
from ._results import RESULTS_FILE, STATES, Run, combine_verdicts, inconclusive, start, to_json_safe, verdict
from ._runtime import DTYPES, check_dtypes, resolve_device, resolve_dtype, seed_everything, set_threads
from ._sweep import collect

__all__ = [
    "DTYPES", "PROFILES", "RESULTS_FILE", "STATES", "inconclusive", "NotebookInfo", "ParamError", "ParamSpec", "Run",
    "api_markdown", "check_dtypes", "collect", "combine_verdicts",
    "available_notebooks", "documented", "public_modules",
    "load_notebook", "main", "notebooks_dir", "resolve_device", "resolve_dtype", "run_hash", "run_notebook",
    "seed_everything", "set_threads", "start", "to_json_safe", "verdict",
]
