"""Checks on the book's sources: notebooks without outputs, toc, scorecard, API page, config."""

import json
import re

import pytest
import yaml
from conftest import ROOT, toc_notebooks

import nslib

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_are_kebab_case_and_in_the_scorecard(path):
    claims = json.loads(path.read_text())["metadata"]["nslib"]["claims"]
    index = (ROOT / "book" / "index.md").read_text()
    assert claims
    for cid in claims:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cid)
        assert f"../notebooks/{path.stem}.ipynb::verdict-{cid}:s`" in index


def test_every_notebook_is_in_the_toc():
    assert sorted(toc_notebooks()) == [p.stem for p in NOTEBOOKS]


def test_api_page_lists_every_export():
    api = (ROOT / "book" / "api.md").read_text()
    missing = [n for n in nslib.__all__ if n != "__version__" and f"`{n}" not in api]
    assert not missing, f"book/api.md does not mention {missing}"


def test_config_makes_failures_fail():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["raise_on_error"] is True and cfg["execute"]["timeout"] >= 120
    mj = cfg["sphinx"]["config"]["mathjax_path"]
    assert mj.startswith("../") and (ROOT / "book" / "_extra" / mj[3:]).is_file(), "local MathJax missing"


def test_every_cited_key_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    sources = [p.read_text() for p in (ROOT / "book").glob("*.md")] + [p.read_text() for p in NOTEBOOKS]
    cited = {k.strip() for s in sources for group in re.findall(r"\{cite[pt]?\}`([^`]+)`", s)
             for k in group.split(",")}
    assert cited - keys == set()
