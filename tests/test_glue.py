"""Glued text reaches the page as written: myst-nb's {glue:text} reads text/plain back with ast.literal_eval."""

import pytest
from myst_nb.core.variables import format_plain_text

import nslib


@pytest.mark.parametrize("value, fmt, shown", [
    (80928768, ",", "80,928,768"),  # was shown as the tuple (80, 928, 768)
    (0.5, ".2f", "0.50"),  # was shown as 0.5
    (None, "", "n/a"),
    ("it's \"both\" quotes", "", "it's \"both\" quotes"),
    ("(inconclusive: a; b)", "", "(inconclusive: a; b)"),
])
def test_glued_text_comes_back_as_written(monkeypatch, value, fmt, shown):
    import myst_nb

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, obj, display=True: glued.__setitem__(name, obj))
    assert nslib.glue_text("x", value, fmt) is None  # a plumbing cell ending in it shows nothing
    assert format_plain_text(repr(glued["x"]), "") == shown  # what {glue:text} renders from text/plain


def test_parameters_are_glued_as_their_values():
    from nslib.glue import _param_text

    assert [_param_text(v) for v in ([0.01, 0.02, 0.5], 2.0, 1e-06, 1348, True, "", "digits", [])] == \
        ["0.01, 0.02, 0.5", "2", "1e-06", "1,348", "true", "none", "digits", "none"]
