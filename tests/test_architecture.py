"""The package's import graph: no cycles, and the stages import only in the pipeline's direction.

Every ``import`` statement of every module is read with ``ast``, wherever it stands: at the top, inside a
function, under ``if TYPE_CHECKING``. An import inside a function is still a dependency; hiding a cycle
there only moves the failure from import time to call time.

One kind of edge is left out on purpose: a package's ``__init__`` importing its own submodules to
re-export their names. Importing ``symbp.a.b`` runs ``symbp/a/__init__.py`` first, so a submodule's
dependence on its package is implicit and never drawn; the package re-exporting the submodule's names is
the other direction of that same relation, not a cycle between two pieces of code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import symbp

PACKAGE_ROOT = Path(symbp.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_FILES = {_module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}
PACKAGES = {name for name, path in MODULE_FILES.items() if path.name == "__init__.py"}


def _resolve(name: str) -> str | None:
    """The symbp module that ``name`` lives in: itself, or the closest enclosing module."""
    while name:
        if name in MODULE_FILES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The symbp modules one import statement depends on."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module if module in PACKAGES else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            source = f"{base}.{node.module}" if node.module else base
        else:
            source = node.module or ""
        # ``from symbp.a import b`` depends on symbp.a.b when b is a module, else on symbp.a.
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULE_FILES else source
                 for alias in node.names]
    return {resolved for name in names if name.split(".")[0] == "symbp" and (resolved := _resolve(name))}


def _is_reexport(module: str, target: str) -> bool:
    return module in PACKAGES and target.startswith(module + ".")


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULE_FILES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= _imported(module, node)
        graph[module] = {t for t in targets if t != module and not _is_reexport(module, t)}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(component)) for component in components]


def _one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, for a readable failure message."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    return paths[node] + [start]
                if successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    following.append(successor)
        frontier = following
    return sorted(component)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_walker_sees_imports_inside_functions_and_relative_ones():
    tree = ast.parse("def f():\n    from symbp.derivation import steps\n    from .rules import z\n")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _imported("symbp.registry.calculus", node)
    assert found == {"symbp.derivation.steps", "symbp.registry.rules"}


def test_the_cycle_finder_finds_a_cycle_hidden_behind_a_module():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


# Stage -> the stages it must never import.
FORBIDDEN = {
    "symbp.symbolic": ("symbp.render", "symbp.cli", "symbp.derivation", "symbp.worksheet", "symbp.checks"),
    "symbp.registry": ("symbp.render", "symbp.cli", "symbp.derivation", "symbp.symbolic", "symbp.worksheet",
                       "symbp.checks"),
    "symbp.derivation": ("symbp.render", "symbp.cli", "symbp.checks", "symbp.worksheet"),
}


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stages_import_only_downstream(stage):
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() if _within(module, stage)
        for target in targets if any(_within(target, forbidden) for forbidden in FORBIDDEN[stage])
    )
    assert not wrong, "; ".join(wrong)


def test_the_spec_stage_imports_only_errors_examples_and_the_registry():
    # The registry is the vocabulary a spec is checked against (activation and loss names); nothing
    # downstream of it (symbolic, derivation, render, checks, cli) may be imported by the spec.
    graph = import_graph()
    allowed = ("symbp.spec", "symbp.errors", "symbp.examples", "symbp.registry")
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() if _within(module, "symbp.spec")
        for target in targets if not any(_within(target, ok) for ok in allowed)
    )
    assert not wrong, "; ".join(wrong)


def test_the_spec_names_exactly_the_notation_presets():
    from symbp.render.latex.notation import PRESETS
    from symbp.spec.schema import NOTATION_NAMES

    assert NOTATION_NAMES == tuple(PRESETS)


def test_a_quantitys_role_is_read_off_the_quantity_not_a_table_filled_on_the_side():
    import sympy as sp

    from symbp.symbolic import quantities as q

    # Made directly, never through the factories: the role is still known, since it is part of the quantity.
    assert q.ROLES[sp.IndexedBase("weight7", real=True)] == q.Role("weight", 7)
    assert q.INDEX_ROLES[sp.Symbol("cur'_4", integer=True, positive=True)] == q.IndexRole(4, "cur'")
    assert q.MATRIX_ROLES[sp.MatrixSymbol("DELTA2_Nx3", sp.Symbol("N"), 3)] == q.Role("delta", 2)
    # Symbols that are not quantities have none, and nothing can be written into the lookups.
    assert sp.IndexedBase("weights", real=True) not in q.ROLES
    assert sp.Symbol("x_1", real=True) not in q.INDEX_ROLES
    assert sp.MatrixSymbol("W1", 2, 2) not in q.MATRIX_ROLES
    assert not hasattr(q.ROLES, "__setitem__")
