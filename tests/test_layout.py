"""The package's shape: imports point down the data flow, no cycles, no oversized modules.

Reads the source with `ast` (no third-party tool, nothing imported), so a violation is found
even in a lazy import inside a function. ARCHITECTURE.md describes the layers checked here.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500
# Layers, bottom up. A module may import its own layer or a lower one, never a higher one.
BASE = 0
STAGE = 1
LAYERS = {
    "mminstruct.converters": STAGE,
    "mminstruct.context": STAGE,
    "mminstruct.generate": STAGE,
    "mminstruct.checks": STAGE,
    "mminstruct.output": STAGE,
    "mminstruct.publish": STAGE,
    "mminstruct.sample": STAGE,
    "mminstruct.pipeline": 2,
    "mminstruct.preview": 3,  # runs one image through pipeline.generate_batch
    "mminstruct.cli": 4,
    "mminstruct.__main__": 5,
}
STAGES = {name for name, layer in LAYERS.items() if layer == STAGE}


def module_name(path: Path) -> str:
    """`mminstruct.generate.parse` for mminstruct/generate/parse.py; converters/ installs as
    mminstruct.converters."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "converters":
        parts.insert(0, "mminstruct")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    files = [*(REPO / "mminstruct").rglob("*.py"), *(REPO / "converters").rglob("*.py")]
    return {module_name(path): path for path in files}


def imported_modules(
    tree: ast.AST, modules: Iterable[str], exports: Mapping[str, set[str]] | None = None
) -> set[str]:
    """The project's modules a module imports, lazily or not. `from pkg import name` imports
    `pkg` when pkg's __init__ binds `name` (`exports`), else the submodule `pkg.name`."""
    known, exports = set(modules), exports or {}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                exported = alias.name in exports.get(node.module, ())
                found.add(sub if sub in known and not exported else node.module)
    return found


def bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level: what `from module import name` can get."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in files.items()}
    exports = {name: bound_names(tree) for name, tree in trees.items()}
    return {name: imported_modules(tree, files, exports) for name, tree in trees.items()}


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as a path `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def home(module: str) -> str:
    """The layer entry a module belongs to: its stage package, or itself for the base."""
    for prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module


def layer(module: str) -> int:
    return LAYERS.get(home(module), BASE)


def wrong_imports(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Imports that point up the layers, or into a sibling stage's internals."""
    problems = []
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer(target) > layer(importer):
                problems.append(f"{importer} imports {target}, a higher layer")
            elif home(target) in STAGES and home(importer) != home(target) != target:
                problems.append(
                    f"{importer} imports {target}: import what {home(target)} exports "
                    "in its __init__ instead"
                )
    return problems


def stage_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Which stage package uses which: the order of the data flow."""
    stages: dict[str, set[str]] = {stage: set() for stage in STAGES}
    for importer, targets in graph.items():
        for target in targets:
            if (
                home(importer) in STAGES
                and home(target) in STAGES
                and home(importer) != home(target)
            ):
                stages[home(importer)].add(home(target))
    return stages


# --------------------------------------------------------------------------- the checks


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()) or ())


def test_stage_packages_do_not_use_each_other_in_a_circle():
    assert find_cycle(stage_graph(import_graph())) is None


def test_imports_point_down_and_through_each_package_front_door():
    assert wrong_imports(import_graph()) == []


def test_no_module_is_oversized():
    sizes = {name: len(p.read_text().splitlines()) for name, p in source_files().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_package_says_what_it_takes_and_gives():
    for name, path in source_files().items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text()))
            assert doc and len(doc.splitlines()) >= 2, f"{name}: say what it takes and gives"


def test_every_package_is_installed():
    """A folder missing from pyproject's package list is missing from the wheel."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {name for name, path in source_files().items() if path.name == "__init__.py"}
    assert found - listed == set()


# --------------------------------------------------------------------------- the checker


def test_the_checker_finds_a_cycle_through_a_lazy_import():
    tree = ast.parse("def f():\n    from mminstruct.b import x\n")
    graph = {"mminstruct.a": imported_modules(tree, ["mminstruct.a", "mminstruct.b"])}
    graph["mminstruct.b"] = {"mminstruct.a"}
    assert find_cycle(graph) == ["mminstruct.a", "mminstruct.b", "mminstruct.a"]


def test_the_checker_finds_upward_and_sideways_imports():
    graph = {
        "mminstruct.records": {"mminstruct.pipeline"},
        "mminstruct.checks.preference": {"mminstruct.generate.prompts", "mminstruct.generate"},
        "mminstruct.generate.model": {"mminstruct.records", "mminstruct.context"},
    }
    assert wrong_imports(graph) == [
        "mminstruct.checks.preference imports mminstruct.generate.prompts: import what "
        "mminstruct.generate exports in its __init__ instead",
        "mminstruct.records imports mminstruct.pipeline, a higher layer",
    ]
