"""A run on disk: its identity (the hash of its resolved parameters and profile, the run folder's name), its
execution with papermill into a temporary folder, and its atomic placement as ``DIR/<stem>/<hash>/``.

The command line (:mod:`._cli`) and the sweeps (:mod:`._sweep`) both run notebooks through here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._notebooks import NotebookInfo, load_notebook
from ._params import ParamError, parse_cli_value

__all__ = ["RESULTS_FILE", "CellError", "parse_overrides", "run_hash", "run_notebook"]

#: The file a run writes into its run directory.
RESULTS_FILE = "results.json"

log = logging.getLogger("nslib")


def _canonical(value: Any) -> Any:
    """-0.0 reads as 0.0 (the same run); lists element by element."""
    if isinstance(value, float) and value == 0.0:
        return 0.0
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def run_hash(profile: str, params: dict[str, Any]) -> str:
    """Short hash of the resolved parameters and the profile: the run's folder name."""
    blob = json.dumps({"profile": profile, "parameters": _canonical(params)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _execute(info: NotebookInfo, params: dict[str, Any], profile: str, target: Path) -> None:
    import papermill as pm

    env_keys = {"NSLIB_RUN_DIR": str(target.parent), "NSLIB_PROFILE": profile}
    old = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)  # the kernel inherits the environment; the path never enters the hash
    try:
        for attempt in range(3):
            try:
                pm.execute_notebook(
                    str(info.path),
                    str(target),
                    parameters=params,
                    cwd=str(info.path.parent),
                    progress_bar=False,
                    log_output=False,
                    kernel_name="python3",
                )
                return
            except (RuntimeError, OSError) as exc:
                # parallel runs can race on kernel ports; anything else is re-raised at once
                if "kernel" not in str(exc).lower() or attempt == 2:
                    raise
                log.warning("kernel start failed (%s); retrying", exc)
                time.sleep(1 + attempt)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _clean_debris(folder: Path) -> None:
    """Remove the temporary folders of runs killed before they could clean up (their process is gone)."""
    for p in folder.glob(".*.*-*"):
        kind, _, pid = p.name.rpartition("-")
        if p.is_dir() and pid.isdigit() and kind.endswith((".tmp", ".old")) and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


class CellError(RuntimeError):
    """A notebook cell raised: the message names the cell and the error, and where the executed notebook is kept."""


def run_notebook(stem: str, profile: str = "book", overrides: dict[str, Any] | None = None,
                 out: str | Path = "runs") -> Path:
    """Validate, execute and place one run; return its absolute run directory.

    A failing cell raises :class:`CellError`; the executed notebook is kept as ``OUT/<stem>/failed/<hash>.ipynb``."""
    info = load_notebook(stem)
    params = info.resolve(profile, overrides)
    final = (Path(out) / info.stem / run_hash(profile, params)).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_debris(final.parent)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            _execute(info, params, profile, tmp / "notebook.ipynb")
        except Exception as exc:
            if type(exc).__name__ != "PapermillExecutionError":
                raise
            failed = final.parent / "failed" / f"{final.name}.ipynb"
            failed.parent.mkdir(exist_ok=True)
            os.replace(tmp / "notebook.ipynb", failed)
            evalue = str(getattr(exc, "evalue", "")).strip().splitlines()
            raise CellError(f"cell {getattr(exc, 'exec_count', '?')} (index {getattr(exc, 'cell_index', '?')}) "
                            f"raised {getattr(exc, 'ename', 'an error')}: {evalue[0] if evalue else ''}; "
                            f"the executed notebook is kept at {failed}") from None
        if not (tmp / RESULTS_FILE).is_file():
            raise RuntimeError(f"notebook {stem!r} finished without writing {RESULTS_FILE} (missing run.save()?)")
        trash = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def parse_overrides(info: NotebookInfo, pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs -> {name: value}, each parsed by its declared type; a name given twice is refused."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        if name in out:
            raise ParamError(f"parameter {name!r} is given twice with -p: allowed is once per run")
        out[name] = parse_cli_value(info.spec(name), text)
    return out
