"""Every constant a criterion decides with has a source on its page: the finding module's ``THRESHOLDS`` lists it
(claim, name, value, source, where), with the value the criterion actually uses."""

from __future__ import annotations

import ast
import inspect
import numbers
import textwrap

import pytest

from nslib.findings import module_for
from nslib.runner import available_notebooks, load_notebook
from nslib.verdicts import SOURCES, Threshold


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(_is_number(v) for v in value)


def criterion_constants(module, claim_id: str) -> dict[str, object]:
    """The numeric constants criterion ``claim_id`` decides with: its numeric parameter defaults, and the upper-case
    module constants its body names. A module constant that is only a parameter's default (``room: float = ROOM``)
    is that parameter's value, listed under the parameter's name."""
    fn = getattr(module, claim_id.replace("-", "_"))
    found = {name: p.default for name, p in inspect.signature(fn).parameters.items()
             if p.default is not inspect.Parameter.empty and _is_number(p.default)}
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    args = tree.body[0].args
    in_defaults = {id(n) for d in (*args.defaults, *(d for d in args.kw_defaults if d is not None))
                   for n in ast.walk(d)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and node.id.isupper() and id(node) not in in_defaults
                and _is_number(getattr(module, node.id, None))):
            found[node.id] = getattr(module, node.id)
    return found


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b) \
            and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("stem", available_notebooks())
def test_every_criterion_constant_has_a_source(stem):
    info, module = load_notebook(stem), module_for(stem)
    table = getattr(module, "THRESHOLDS", None)
    assert isinstance(table, tuple) and all(isinstance(t, Threshold) for t in table), \
        f"{module.__name__} needs THRESHOLDS: a tuple of nslib.verdicts.Threshold"
    listed = {(t.claim, t.name): t for t in table}
    missing, wrong = [], []
    for cid in info.claims:
        for name, value in criterion_constants(module, cid).items():
            t = listed.get((cid, name))
            if t is None:
                missing.append(f"{cid}/{name}={value!r}")
            elif not _same(t.value, value):
                wrong.append(f"{cid}/{name}: THRESHOLDS says {t.value!r}, the criterion uses {value!r}")
    assert missing == [], f"criterion constants without a source in {module.__name__}.THRESHOLDS: {missing}"
    assert wrong == []
    assert {t.claim for t in table} <= set(info.claims), "a threshold names a claim the page does not declare"


def test_criterion_constants_are_found_in_defaults_and_module_constants():
    """The reader of constants finds what it must, on a constructed module (an independent reference)."""
    import types

    m = types.ModuleType("fake")
    src = ("LIMIT = 0.3\nNAME = 'x'\n"
           "DEFAULT = 0.5\n"
           "def some_claim(data, ratio: float = 2.0, flag: bool = True, band=(0.8, 1.3), label='a', *,\n"
           "               room: float = DEFAULT):\n"
           "    return data > LIMIT and NAME\n")
    m.__dict__["__file__"] = "<fake>"
    exec(compile(src, "<fake>", "exec"), m.__dict__)
    import linecache

    linecache.cache["<fake>"] = (len(src), None, src.splitlines(True), "<fake>")
    # DEFAULT is only room's default: listed once, under room
    assert criterion_constants(m, "some-claim") == {"ratio": 2.0, "band": (0.8, 1.3), "room": 0.5, "LIMIT": 0.3}


def test_a_threshold_must_name_its_source():
    with pytest.raises(ValueError, match="source"):
        Threshold("c", "ratio", 2.0, "book's notes", "pilot")
    with pytest.raises(ValueError, match="where"):
        Threshold("c", "ratio", 2.0, SOURCES[0], " ")
