"""The package's layers, read from its source: each module imports only its own layer and the
layers below it, and no two modules import each other, directly or around a loop.

Imports inside functions count too (they are how the hit path stays lean, not a way around the
layers); imports under `if TYPE_CHECKING:` do not, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "git_credential_pat"
# Lower layers first; a module may import from its own layer and those before it.
LAYERS = ("core", "edges", "actions", "commands", "")
TOP = "git_credential_pat"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path) -> set[str]:
    """The package's modules that `path` imports when it runs."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(TOP))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(TOP):
            found.add(node.module)
            for alias in node.names:  # `from pkg.core import entries` imports a module
                if (PACKAGE.parent / node.module.replace(".", "/") / f"{alias.name}.py").exists():
                    found.add(f"{node.module}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


GRAPH = {module_name(path): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_is_in_a_layer() -> None:
    assert {layer(m) for m in GRAPH} == set(LAYERS)
    top_level = sorted(m for m in GRAPH if layer(m) == "")
    assert top_level == [TOP, f"{TOP}.__main__", f"{TOP}.cli", f"{TOP}.launcher"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_module_imports_only_its_own_layer_and_lower_ones(module: str) -> None:
    allowed = set(LAYERS[:LAYERS.index(layer(module)) + 1])
    wrong = sorted(m for m in GRAPH[module] if m != TOP and layer(m) not in allowed)
    assert wrong == [], f"{module} ({layer(module) or 'top level'}) imports {wrong}"


def test_no_import_cycles() -> None:
    """Depth-first search over the import graph; a module met again on the current path closes
    a loop. Packages' `__init__` modules are left out: importing `pkg.a` runs `pkg` first, which
    is not an edge either way."""
    graph = {m: {d for d in deps if d in GRAPH and d != m and not m.startswith(f"{d}.")}
             for m, deps in GRAPH.items()}
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dependency in sorted(graph[module]):
            if state.get(dependency) == "open":
                cycles.append([*path[path.index(dependency):], dependency])
            elif dependency not in state:
                walk(dependency, [*path, dependency])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == []
