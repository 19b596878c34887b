"""Shared helpers: run the CLI in a subprocess, each notebook's quick run once per test run (shared by the xdist
workers), list the notebooks of the table of contents, write IDX files, and a
copy of the notebooks folder to break on purpose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(1)


def toc_notebooks() -> list[str]:
    """Stems of the notebooks listed in _toc.yml (later findings are covered without editing tests)."""
    from nslib.bookbuild import book_pages

    return [p.stem for p in book_pages(ROOT) if p.parent.name == "notebooks"]


def nslib_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, NSLIB_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "nslib", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder shared by every pytest-xdist worker of this test run (the parent of each worker's basetemp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(shared: Path, key: str, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """``python -m nslib run *args --out OUT`` executed once per test run whichever worker asks first (a file lock
    makes the others wait and read the same outcome); returns the process outcome and OUT."""
    import json

    from filelock import FileLock

    out = shared / f"run-{key}"
    record = shared / f"run-{key}.json"
    with FileLock(str(shared / f"run-{key}.lock")):
        if not record.is_file():
            proc = nslib_cli(*args, "--out", str(out))
            record.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr}))
        data = json.loads(record.read_text())
    return subprocess.CompletedProcess(data["args"], data["returncode"], data["stdout"], data["stderr"]), out


@pytest.fixture(scope="session")
def quick_run(shared_dir):
    """``quick_run(stem)``: the notebook's quick profile, executed once per test run and shared by every test."""
    return lambda stem: shared_run(shared_dir, f"quick-{stem}", "run", stem, "--profile", "quick")


def write_idx(path, array, code: int, gz: bool = False) -> None:
    """Write ``array`` as an IDX file (LeCun's MNIST format; ``code`` 0x08 for uint8, 0x0E for float64)."""
    import gzip
    import struct

    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


@pytest.fixture
def broken_notebooks(tmp_path, monkeypatch):
    """A copy of the notebooks folder (``$NSLIB_NOTEBOOKS`` points to it) in which the caller breaks a notebook."""
    import shutil

    from nslib.runner import notebooks_dir

    folder = tmp_path / "nbs"
    shutil.copytree(notebooks_dir(), folder)
    monkeypatch.setenv("NSLIB_NOTEBOOKS", str(folder))
    return folder


def edit_notebook(path: Path, edit) -> None:
    """Apply ``edit(nb)`` to the notebook JSON at ``path``."""
    import json

    nb = json.loads(path.read_text())
    edit(nb)
    path.write_text(json.dumps(nb))


def insert_after_parameters(path: Path, source: str) -> None:
    """Insert a code cell holding ``source`` right after the notebook's parameters cell."""
    def edit(nb):
        i = next(k for k, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
        nb["cells"].insert(i + 1, {"cell_type": "code", "execution_count": None, "id": "inserted", "metadata": {},
                                   "outputs": [], "source": source})

    edit_notebook(path, edit)
