import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import jupyter_cache
import pytest

from nslib import bookbuild as _book
from nslib.cli import main


def test_book_times_keeps_each_pages_last_execution_and_marks_this_builds(monkeypatch, capsys, tmp_path):
    t0 = dt.datetime(2026, 1, 1, 12, 0, 0)
    records = [SimpleNamespace(uri="/x/notebooks/a.ipynb", created=t0, data={"execution_seconds": 100.0}),
               SimpleNamespace(uri="/x/notebooks/a.ipynb", created=t0 + dt.timedelta(hours=1),
                               data={"execution_seconds": 60.0}),
               SimpleNamespace(uri="/x/notebooks/b.ipynb", created=t0, data={"execution_seconds": 3000.0})]
    monkeypatch.setattr(jupyter_cache, "get_cache", lambda path: SimpleNamespace(list_cache_records=lambda: records))
    since = (t0 + dt.timedelta(minutes=30)).timestamp()
    assert _book.book_times("c", since) == [{"page": "a.ipynb", "seconds": 60.0, "executed": True},
                                            {"page": "b.ipynb", "seconds": 3000.0, "executed": False}]
    (tmp_path / "global.db").write_text("")
    assert main(["book-times", "--cache", str(tmp_path), "--since", str(since)]) == 0
    out = capsys.readouterr()
    assert "executed 1 page(s) taking 1.0 min of page time" in out.out and "51.0 min of page time" in out.out
    assert "about 25.5 min of wall time" in out.out and "min of wall time (execution and Sphinx)" in out.out
    assert "over its 25-minute budget" in out.err  # 51 minutes of pages, two at a time
    assert main(["book-times", "--cache", str(tmp_path / "none")]) == 2


def test_publish_config_adds_buttons_only_with_a_repository_url(tmp_path):
    import pytest
    import yaml

    from nslib.runner import ParamError

    base = yaml.safe_load((_book.Path(__file__).parents[2] / "_config.yml").read_text())
    assert _book.publish_config(base, "") == base  # no setting, no button, no placeholder address
    assert "repository" not in base and "launch_buttons" not in base
    pub = _book.publish_config(base, "https://github.com/me/nslib")
    assert pub["repository"]["url"] == "https://github.com/me/nslib"
    assert pub["launch_buttons"]["binderhub_url"] == "https://mybinder.org" and pub["html"]["use_repository_button"]
    assert pub["execute"] == base["execute"] and pub["sphinx"] == base["sphinx"]
    with pytest.raises(ParamError, match="OWNER/REPO"):
        _book.publish_config(base, "github.com/me")
    out = tmp_path / "c.yml"
    assert main(["publish-config", "https://github.com/me/nslib", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["repository"]["url"] == "https://github.com/me/nslib"


def _notebook(path, source):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_pages_are_executed_in_parallel_into_the_cache_myst_nb_reads(tmp_path):
    """Two pages run at once (each sleeps 5 s and records when it ran); both land in the jupyter cache where
    myst-nb looks them up (match_cache_notebook on the unexecuted file); a failing page is reported, not cached; a
    second call executes nothing."""
    import nbformat
    from jupyter_cache import get_cache

    pages = []
    for name in ("a", "b"):
        _notebook(tmp_path / f"{name}.ipynb", "import time\nt0 = time.time(); time.sleep(5); print(t0, time.time())")
        pages.append(tmp_path / f"{name}.ipynb")
    _notebook(tmp_path / "bad.ipynb", "raise ValueError('a broken page')")
    lines = []
    failed = _book.execute_book(tmp_path / "cache", pages + [tmp_path / "bad.ipynb"], workers=2, timeout=60,
                                report=lines.append)
    assert failed == ["bad.ipynb"] and any("a broken page" in ln for ln in lines)
    cache = get_cache(str(tmp_path / "cache"))
    spans = []
    for page in pages:
        record = cache.match_cache_notebook(nbformat.read(page, as_version=4))  # KeyError if myst-nb would miss it
        executed = cache.get_cache_bundle(record.pk).nb
        spans.append([float(v) for v in executed.cells[0].outputs[0]["text"].split()])
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, f"the pages ran one after the other: {spans}"
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(tmp_path / "bad.ipynb", as_version=4))
    lines.clear()
    assert _book.execute_book(tmp_path / "cache", pages, workers=2, timeout=60, report=lines.append) == []
    assert lines == ["book: 2 of 2 page(s) cached; executing 0 with 2 worker(s)"]


def test_a_fresh_clone_executes_the_longest_pages_first_by_their_atlas_times(monkeypatch):
    """With no recorded times the order comes from each atlas's time per point; a recorded time wins; a page known
    by neither goes first (it could be the longest)."""
    from nslib import atlas

    atlas_s = {"short": 10.0, "long": 900.0, "middle": 200.0}
    monkeypatch.setattr(atlas, "page_seconds", lambda stem: atlas_s.get(stem))
    pages = [Path(f"notebooks/{s}.ipynb") for s in ("short", "middle", "long", "unknown")] + [Path("book/api.md")]
    order = [p.stem for p in _book.execution_order(pages, {})]
    assert order[:2] in (["unknown", "api"], ["api", "unknown"]) and order[2:] == ["long", "middle", "short"]
    order = [p.stem for p in _book.execution_order(pages, {"short.ipynb": 5000.0, "api.md": 1.0})]
    assert order == ["unknown", "short", "long", "middle", "api"]


def test_page_seconds_reads_the_committed_manifest():
    from nslib import atlas

    manifest = json.loads((Path(__file__).resolve().parents[2] / "atlas" / "manifest.json").read_text())
    entry = manifest["maxpool-jacobians"]
    assert atlas.page_seconds("maxpool-jacobians") == pytest.approx(entry["cost_s"] / entry["points_computed"])
    assert atlas.page_seconds("no-such-notebook") is None

