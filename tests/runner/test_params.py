import math

import papermill as pm
import pytest
from conftest import ROOT, toc_notebooks

from nslib.runner import ParamError, load_notebook
from nslib.runner._params import coerce, parse_cli_value, parse_parameters_cell

CELL = '''lr: float = 0.05  # step size {in (0, 10]}
n: int = 3  # count {in [1, inf)}
device: str = "auto"  # where {one of auto, cpu, cuda}
lrs: list[float] = [0.1, 0.2]  # grid {each in (0, 1)}
opts: list[str] = ["sgd"]  # optimizers {each one of sgd, adam}
flag: bool = False  # a switch
'''


@pytest.fixture
def specs():
    return parse_parameters_cell(CELL)


def test_declaration_is_read(specs):
    assert list(specs) == ["lr", "n", "device", "lrs", "opts", "flag"]
    assert specs["lr"].interval == (0.0, 10.0, False, True)
    assert specs["n"].interval == (1.0, math.inf, True, False)
    assert specs["device"].choices == ("auto", "cpu", "cuda")
    assert specs["lrs"].each and specs["lrs"].is_list and specs["lrs"].scalar_type == "float"
    assert specs["lr"].help == "step size"


@pytest.mark.parametrize("name,value,word", [
    ("lr", 0.0, "out of range"), ("lr", 10.5, "out of range"), ("lr", float("nan"), "out of range"),
    ("lr", "x", "wrong type"), ("lr", True, "wrong type"), ("n", 2.5, "wrong type"), ("n", 0, "out of range"),
    ("device", "tpu", "not an allowed choice"), ("lrs", [], "wrong type"), ("lrs", [0.5, 1.0], "out of range"),
    ("opts", ["sgd", "rmsprop"], "not an allowed choice"), ("flag", 1, "wrong type"),
])
def test_bad_values_name_parameter_value_and_rule(specs, name, value, word):
    with pytest.raises(ParamError) as err:
        coerce(specs[name], value)
    msg = str(err.value)
    assert f"'{name}'" in msg and word in msg and "allowed is" in msg


def test_good_values_are_coerced(specs):
    assert coerce(specs["lr"], 1) == 1.0 and isinstance(coerce(specs["lr"], 1), float)
    assert coerce(specs["lrs"], (0.5,)) == [0.5]
    assert parse_cli_value(specs["lrs"], "[0.1, 0.3]") == [0.1, 0.3]
    assert parse_cli_value(specs["flag"], "true") is True
    assert parse_cli_value(specs["n"], "7") == 7
    with pytest.raises(ParamError):
        parse_cli_value(specs["n"], "7.5")


def test_default_breaking_its_rule_is_rejected():
    with pytest.raises(ParamError):
        parse_parameters_cell("lr: float = -1.0  # step {in (0, 1)}\n")


def test_comment_with_equals_sign_is_rejected():
    with pytest.raises(SyntaxError, match="papermill"):
        parse_parameters_cell("lr: float = 0.1  # step, lr = eta {in (0, 1)}\n")


def test_non_literal_parameters_cell_is_rejected():
    with pytest.raises(SyntaxError):
        parse_parameters_cell("lr = 0.1\n")


@pytest.mark.parametrize("stem", toc_notebooks())
def test_papermill_reads_every_declared_parameter(stem):
    """papermill's own parser must see every parameter (it silently skips lines it cannot parse)."""
    info = load_notebook(stem)
    seen = pm.inspect_notebook(str(ROOT / "notebooks" / f"{stem}.ipynb"))
    assert list(seen) == list(info.specs)


@pytest.mark.parametrize("stem", toc_notebooks())
def test_profiles_are_valid(stem):
    info = load_notebook(stem)
    assert "quick" in info.profiles
    for profile in ["book", *info.profiles]:
        info.resolve(profile)  # every profile runs offline: MNIST is the bundled 5,000 digits unless data_dir says
    if "n_train" in info.specs:  # a size the data cannot deliver is refused here, before any kernel
        overrides = {"n_train": 1349}  # digits delivers 1,348 after its test split
        book = info.resolve("book")
        if "digits" not in book.get("datasets", ["digits"]):  # a page on MNIST alone: add digits to the sweep
            overrides["datasets"] = [*book["datasets"], "digits"]
        with pytest.raises(ParamError, match="at most what each data set delivers"):
            info.resolve("book", overrides)
