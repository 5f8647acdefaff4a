"""The server's modules import each other without cycles, along Toxiproxy's layers.

Every import statement counts, wherever it stands: inside functions and under
`if TYPE_CHECKING:` too, since a cycle hidden from the interpreter is still one in the
design. An edge is an explicit import only; a submodule's implicit import of its parent
package is left out (Python runs the parent first, whatever the submodule needs).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import chaos.toxiproxy

PACKAGE = "chaos.toxiproxy"
ROOT = Path(chaos.toxiproxy.__file__).parent


def module_paths(root: Path, package: str) -> dict[str, Path]:
    """Every module below `root` by dotted name, a package under its own name."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _imported_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name a `from ... import` reads from."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    base = parts[:len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    modules = module_paths(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _imported_from(module, path.name == "__init__.py", node)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.add(submodule if submodule in modules else source)
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph has none."""
    finished: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in finished:
            return None
        path.append(module)
        for target in sorted(graph[module]):
            if cycle := visit(target):
                return cycle
        path.pop()
        finished.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module):
            return cycle
    return None


def _within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_the_server_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(ROOT, PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(("layer", "allowed"), [
    (f"{PACKAGE}.stream", set()),
    (f"{PACKAGE}.toxics", {f"{PACKAGE}.stream"}),
    (f"{PACKAGE}.gocompat", set()),
])
def test_lower_layers_do_not_reach_up(layer: str, allowed: set[str]) -> None:
    graph = import_graph(ROOT, PACKAGE)
    stray = sorted(f"{module} -> {target}" for module, targets in graph.items() if _within(module, layer)
                   for target in targets if not _within(target, layer) and target not in allowed)
    assert not stray, f"{layer} may import only itself and {sorted(allowed)}: {stray}"


def test_a_cycle_behind_type_checking_is_named(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "first.py").write_text("from . import second\n")
    (tmp_path / "second.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .first import Thing\n")
    assert find_cycle(import_graph(tmp_path, "planted")) == ["planted.first", "planted.second", "planted.first"]
