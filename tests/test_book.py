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


def _glued(texts: dict) -> dict:
    """An executed notebook holding ``texts`` as myst-nb's glue(display=False) stores them."""
    outputs = [{"output_type": "display_data", "metadata": {"scrapbook": {"name": k, "mime_prefix": "x"}},
                "data": {"application/papermill.record/text/plain": repr(v)}} for k, v in texts.items()]
    return {"cells": [{"cell_type": "code", "outputs": outputs}]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_scorecard_states_every_claim_in_words_with_its_reading(path):
    from nslib.bookbuild import scorecard_markdown
    from nslib.runner import load_notebook

    info = load_notebook(path.stem)
    assert info.claims and set(info.book_claims) <= set(info.claims)
    texts = {}
    for cid in info.claims:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cid)
        texts |= {f"state-{cid}": "✘ does not hold", f"reading-{cid}": "does not hold for 1 of 3 groups (tanh ce)",
                  f"atlas-{cid}": "holds at 9 of 10 seeds"}
    card = scorecard_markdown({path: _glued(texts)})
    rows = card.strip().splitlines()[2:]
    assert len(rows) == len(info.claims) and f"{{doc}}`../notebooks/{path.stem}`" in rows[0]
    for row, (cid, words) in zip(rows, info.claims.items()):
        assert words.replace("|", "\\|") in row and "holds at 9 of 10 seeds" in row
        assert "color:#c4261d" in row and "✘ does not hold</span> for 1 of 3 groups (tanh ce)" in row
        assert ("| this book |" if cid in info.book_claims else "| paper |") in row
        assert ("this book's own claim, found not to hold; not a finding against the paper" in row) == (
            cid in info.book_claims)
        assert ("against the paper" in row and "set-up" in row) == (cid not in info.book_claims)
        assert ("⚙ CPU kernels here" in row) == bool((info.atlas or {}).get("kernels"))
        if path.stem == "edge-of-stability-networks" and cid not in info.book_claims:  # MNIST for CIFAR-10: said
            assert ("closest rerun of its set-up (as close as offline allows: the paper's nets and losses on real "
                    "MNIST" in row) == (not cid.endswith("-ce"))
            assert "on its own set-up" not in row  # a rerun on other data never reads as the paper's own set-up
            assert ("on MNIST-1D, a stand-in for its CIFAR-10" in row) == cid.endswith("-ce")  # and the stand-in
        if path.stem == "maxpool-jacobians" and cid == "share32-grows-with-batch":  # a note for some claims only
            assert "closest rerun of its set-up (LeNet-5 on MNIST; the authors' shares are VGG19's on CIFAR-10)" in row
        if path.stem == "maxpool-jacobians" and cid == "fp32-robust-to-beta":
            assert "own set-up</em>" in row
    missing = scorecard_markdown({path: None})  # a page the build did not execute says so, never a blank
    assert missing.count("not executed in this build") == len(info.claims)


def test_the_scorecard_is_included_from_the_build_and_books_some_claims_as_its_own():
    index = (ROOT / "book" / "index.md").read_text()
    assert "```{include} _generated/scorecard.md" in index
    from nslib.runner import load_notebook

    own = [c for p in NOTEBOOKS for c in load_notebook(p.stem).book_claims]
    assert "prox-recovers-support" in own and "ngdm-no-exact-zeros" not in own


def test_every_notebook_is_in_the_toc():
    assert sorted(toc_notebooks()) == [p.stem for p in NOTEBOOKS]


def test_api_page_is_generated_from_every_public_module():
    api = (ROOT / "book" / "api.md").read_text()
    assert "nslib.bookbuild.api_markdown()" in api
    text = nslib.bookbuild.api_markdown()
    for mod in nslib.bookbuild.public_modules():
        assert f"`{mod.__name__}`" in text
        missing = [n for n in mod.__all__ if n != "__version__" and f"| `{n}" not in text]
        assert not missing, f"the API page misses {mod.__name__}: {missing}"


def test_every_public_name_exists_and_is_documented():
    """Walk every public module's __all__: each name exists, and has a docstring (or a #: comment)."""
    undocumented = []
    for mod in nslib.bookbuild.public_modules():
        assert mod.__doc__, f"{mod.__name__} has no docstring"
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.__all__ names {name!r}, which does not exist"
            if name != "__version__" and not nslib.bookbuild.documented(mod, name):
                undocumented.append(f"{mod.__name__}.{name}")
    assert not undocumented, f"no docstring or #: comment: {undocumented}"


def test_page_kit_is_small():
    assert len(nslib.__all__) <= 30
    assert {"start", "Run", "Verdict", "ParamError", "tools", "findings"} <= set(nslib.__all__)
    assert not {"verdict", "inconclusive", "combine_verdicts"} & set(nslib.__all__)  # one door: nslib.verdicts


@pytest.mark.parametrize("stem", toc_notebooks())
def test_every_claim_has_a_criterion_and_a_failing_unit_test(stem):
    """The registry: claim id -> criterion of the same name in the finding's module -> a unit test in
    tests/findings/test_<module>.py that calls it and asserts it comes out false."""
    claims = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["metadata"]["nslib"]["claims"]
    module = nslib.findings.module_for(stem)
    test_file = ROOT / "tests" / "findings" / f"test_{module.__name__.rsplit('.', 1)[1]}.py"
    assert test_file.is_file(), f"{test_file} is missing"
    tests = test_file.read_text().split("\ndef test_")
    for cid in claims:
        crit = cid.replace("-", "_")
        assert callable(getattr(module, crit, None)), f"{module.__name__} has no criterion {crit}() for {cid!r}"
        assert crit in module.__all__
        calling = [t for t in tests if f".{crit}(" in t]
        refuted = re.compile(r'\["holds"\] is False|\.holds is False|\.state == (DOES_NOT_HOLD|"does not hold")')
        assert any(refuted.search(t) for t in calling), f"no unit test where {crit} comes out false"


@pytest.mark.parametrize("stem", toc_notebooks())
def test_plumbing_cells_are_hidden_and_figure_cells_short(stem):
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "parameters" in cell["metadata"].get("tags", []):
            continue
        src = "".join(cell["source"])
        hidden = "hide-input" in cell["metadata"].get("tags", [])
        if "glue_text" in src or "record_metric(" in src or "run.save()" in src:
            assert hidden, f"plumbing cell not tagged hide-input:\n{src[:200]}"
        if ".plot_" in src:
            assert len(src.strip().splitlines()) <= 6, f"figure cell longer than a few lines:\n{src[:300]}"
        assert "plt." not in src, f"figure code belongs in a plot_* function:\n{src[:200]}"


@pytest.mark.parametrize("stem", toc_notebooks())
def test_prose_is_made_one_way(stem):
    """A page's sentences come from its module's page_texts(), glued once under the page's prefix: no number is
    formatted in a notebook cell, and every {glue:text} the prose uses is either a verdict glue or a key that
    page_texts can produce."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    calls = [src for src in code if "glue_texts(" in src]
    assert len(calls) == 1 and ".page_texts(" in calls[0], "one nslib.glue_texts(prefix, <module>.page_texts(...))"
    assert not any("glue_text(" in src for src in code), "a sentence glued outside page_texts()"
    module = nslib.findings.module_for(stem)
    assert "page_texts" in module.__all__
    prefix = re.search(r'glue_texts\("([a-z0-9]+)"', calls[0]).group(1)
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    used = set(re.findall(r"\{glue:text\}`([^`]+)`", prose))
    page_keys = {k for k in used if k.startswith(prefix + "-")}
    # glued for every page by glue_verdicts
    shared = ("verdict", "state", "reading", "param", "provenance", "atlas", "evidence")
    assert used - page_keys <= {k for k in used if k.split("-")[0] in shared}


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
