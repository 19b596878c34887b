"""nslib has no import cycle: the graph of which module imports which, read from the sources (imports inside
functions included, since a cycle there still ties the modules together), has no cycle."""

import ast
import importlib
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "nslib"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    base = importer if is_package else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return ".".join(p for p in (base if node.level else "", node.module or "") if p)


def _defining_module(package: str, name: str, modules: set[str]) -> str:
    if f"{package}.{name}" in modules:
        return f"{package}.{name}"
    if not (PACKAGE.parent / package.replace(".", "/") / "__init__.py").is_file():
        return package  # a name from a module: the arrow is to that module, whoever defines the name
    obj = getattr(importlib.import_module(package), name, None)  # a lazily exported name: where it is defined
    owner = getattr(obj, "__module__", None)
    return owner if owner in modules else package


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {m: set() for m in modules}
    for mod, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(mod, path.name == "__init__.py", node)
                targets = [_defining_module(source, a.name, modules) if source in modules else source
                           for a in node.names]
            else:
                continue
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_nslib_has_no_import_cycle():
    graph = import_graph()
    assert "nslib.runner._runs" in graph["nslib.runner._sweep"]  # the graph sees real edges
    assert "nslib.runner._notebooks" in graph["nslib.atlas"]  # imports inside functions count
    assert "nslib.verdicts" in graph["nslib.glue"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_functions_with_more_than_six_parameters_take_the_rest_by_keyword():
    """A call such as accuracy_grid(a, b, c, d, e, f, g, h, ...) cannot be read: beyond six, parameters are named."""
    crowded = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(positional) > 6:
                    crowded.append(f"{_module_name(path)}.{node.name} ({len(positional)} positional)")
    assert crowded == []


#: The modules that sit above the runner and the tools and dispatch down to them: nothing below may import one.
ABOVE = {"nslib.cli", "nslib.__main__", "nslib.atlas", "nslib.bookbuild", "nslib.devicecheck", "nslib.evidence"}


def test_no_arrow_runs_back_up_from_the_runner_tools_or_findings():
    """The command line sits at the top and dispatches down: the runner, the tools and the findings import none of
    the command line, the atlas, the book builder or the device check, and only ``__main__`` imports the CLI."""
    graph = import_graph()
    below = [m for m in graph if m.startswith(("nslib.runner", "nslib.tools", "nslib.findings"))]
    assert len(below) > 20
    upward = sorted(f"{m} -> {t}" for m in below for t in graph[m] if t in ABOVE)
    assert upward == []
    importers_of_cli = sorted(m for m, targets in graph.items() if "nslib.cli" in targets)
    assert importers_of_cli == ["nslib.__main__"]
    assert {"nslib.atlas", "nslib.bookbuild", "nslib.devicecheck"} <= graph["nslib.cli"]  # it does dispatch down


#: The house, bottom to top: a module may import its own floor and the floors below, never one above. The package's
#: root is on the ground floor because it imports only ``_lazy`` and ``_version`` (its names load on first use).
FLOORS = [
    ("ground", ("nslib", "nslib._lazy", "nslib._version", "nslib._jsonsafe")),
    ("verdicts, figures and tools", ("nslib.verdicts", "nslib.figures", "nslib.tools")),
    ("runner", ("nslib.runner",)),
    ("findings", ("nslib.findings",)),
    ("page kit, atlas, evidence, builders", ("nslib.glue", "nslib.atlas", "nslib.evidence", "nslib.bookbuild",
                                             "nslib.devicecheck")),
    ("command line", ("nslib.cli", "nslib.__main__")),
]


def _floor(module: str) -> int:
    for i, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or (p != "nslib" and module.startswith(p + ".")) for p in prefixes):
            return i
    raise AssertionError(f"{module} sits on no floor: add it to FLOORS")


def test_every_package_imports_only_its_floor_and_below():
    """Packages, not only modules: the tools and verdicts never import the runner, the runner never imports a
    finding, nothing below the page kit imports glue, the atlas or a builder."""
    graph = import_graph()
    upward = sorted(f"{m} ({FLOORS[_floor(m)][0]}) -> {t} ({FLOORS[_floor(t)][0]})"
                    for m, targets in graph.items() for t in targets if _floor(t) > _floor(m))
    assert upward == []
    assert _floor("nslib.tools.flows") == 1 and _floor("nslib.findings.l1_paradox") == 3  # the floors are read right
