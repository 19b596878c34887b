import datetime as dt
from types import SimpleNamespace

import jupyter_cache

from nslib import bookbuild as _book
from nslib.runner import main


def test_book_times_keeps_each_pages_last_execution_and_marks_this_builds(monkeypatch, capsys, tmp_path):
    t0 = dt.datetime(2026, 1, 1, 12, 0, 0)
    records = [SimpleNamespace(uri="/x/notebooks/a.ipynb", created=t0, data={"execution_seconds": 100.0}),
               SimpleNamespace(uri="/x/notebooks/a.ipynb", created=t0 + dt.timedelta(hours=1),
                               data={"execution_seconds": 60.0}),
               SimpleNamespace(uri="/x/notebooks/b.ipynb", created=t0, data={"execution_seconds": 1500.0})]
    monkeypatch.setattr(jupyter_cache, "get_cache", lambda path: SimpleNamespace(list_cache_records=lambda: records))
    since = (t0 + dt.timedelta(minutes=30)).timestamp()
    assert _book.book_times("c", since) == [{"page": "a.ipynb", "seconds": 60.0, "executed": True},
                                            {"page": "b.ipynb", "seconds": 1500.0, "executed": False}]
    (tmp_path / "global.db").write_text("")
    assert main(["book-times", "--cache", str(tmp_path), "--since", str(since)]) == 0
    out = capsys.readouterr()
    assert "executed 1 page(s) in 1.0 min" in out.out and "cold: 26.0 min" in out.out
    assert "over its 25-minute budget" in out.err  # 26 minutes cold
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
