"""Shared helpers: run the CLI in a subprocess, list the notebooks of the table of contents, write IDX files, and a
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
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return [Path(f).name.removesuffix(".ipynb") for f in files if f.startswith("notebooks/")]


def nslib_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, NSLIB_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "nslib", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def quick_runs(tmp_path_factory):
    """Each toc notebook run twice with the quick profile into two folders (shared by several tests)."""
    out = {}
    for stem in toc_notebooks():
        dirs = []
        for rep in range(2):
            d = tmp_path_factory.mktemp(f"{stem}-{rep}")
            proc = nslib_cli("run", stem, "--profile", "quick", "--out", str(d))
            dirs.append((proc, d))
        out[stem] = dirs
    return out


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
