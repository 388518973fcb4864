"""The house's floors, checked from the code: no import runs against the direction, no cycles.

Direction (issue 12, shared/DESIGN.md): ``safeloop`` (CLI, reports, demo) → ``flows`` →
``states`` and ``notifications`` (side by side, neither imports the other) → ``models`` → ``core``
(the ground floor, importing nothing of the project). Inside ``states``: ``jobs`` → ``registry`` →
``workflows`` → the engine and its vocabulary. Every import counts, including those inside
functions; only ``if TYPE_CHECKING:`` blocks are skipped, as they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "models", "states", "notifications", "flows", "safeloop")

# Each layer may import its own and those listed; a module belongs to the longest prefix named.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "models": {"core"},
    "states": {"core", "models"},
    "states.workflows": {"core", "models", "states"},
    "states.registry": {"core", "models", "states", "states.workflows"},
    "states.jobs": {"core", "models", "states", "states.workflows", "states.registry"},
    "notifications": {"core", "models"},
    "flows": {"core", "models", "states", "states.workflows", "states.registry", "states.jobs",
              "notifications"},
    "safeloop": {"core", "models", "states", "states.workflows", "states.registry", "states.jobs",
                 "notifications", "flows"},
}


def layer_of(module: str) -> str | None:
    """The longest layer name that is ``module`` or a package above it."""
    best = None
    for layer in ALLOWED:
        if (module == layer or module.startswith(layer + ".")) and (
                best is None or len(layer) > len(best)):
            best = layer
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(source: str, module: str, known: set[str]) -> set[str]:
    """The project modules ``source`` imports (``from pkg import sub`` resolves to ``pkg.sub``)."""
    found: set[str] = set()
    package = module if module in known and _is_package(module, known) else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def project_modules() -> dict[str, str]:
    sources: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic revisions are data: frozen copies of a schema at a time
            sources[_module_name(path)] = path.read_text(encoding="utf-8")
    return sources


def import_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    known = set(sources)
    return {m: {i for i in imports_of(src, m, known) if i != m} for m, src in sources.items()}


def against_direction(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import from a layer to one it may not use, as 'a -> b (layer -> layer)'."""
    wrong = []
    for module, targets in sorted(graph.items()):
        here = layer_of(module)
        if here is None:
            continue
        for target in sorted(targets):
            there = layer_of(target)
            if there is None or there == here:
                continue
            if there not in ALLOWED[here]:
                wrong.append(f"{module} -> {target} ({here} -> {there})")
    return wrong


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_graph(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The graph between layers (top-level packages, and the rooms of ``states``)."""
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        here = layer_of(module) or module
        packages.setdefault(here, set()).update(
            there for t in targets if (there := layer_of(t) or t) != here)
    return packages


# --- the house as it is --------------------------------------------------------------------------

def test_no_import_runs_against_the_direction() -> None:
    wrong = against_direction(import_graph(project_modules()))
    assert wrong == [], "imports against the direction:\n" + "\n".join(wrong)


def test_no_package_imports_another_that_imports_it_back() -> None:
    found = cycles(package_graph(import_graph(project_modules())))
    assert found == [], f"package cycles: {found}"


def test_no_module_cycles() -> None:
    found = cycles(import_graph(project_modules()))
    assert found == [], f"module cycles: {found}"


def test_every_module_has_a_layer() -> None:
    assert [m for m in project_modules() if layer_of(m) is None] == []


# --- the checks catch what they are for ----------------------------------------------------------

def test_an_upward_import_is_caught_even_inside_a_function() -> None:
    sources = {
        "core": "", "core.settings": "def f():\n    from states import engine\n",
        "states": "", "states.engine": "",
    }
    assert against_direction(import_graph(sources)) == [
        "core.settings -> states.engine (core -> states)"]


def test_notifications_may_not_import_states_nor_states_notifications() -> None:
    sources = {"notifications": "", "notifications.dispatch": "from states.registry import X\n",
               "states": "", "states.registry": "", "states.engine": "import notifications\n"}
    assert against_direction(import_graph(sources)) == [
        "notifications.dispatch -> states.registry (notifications -> states.registry)",
        "states.engine -> notifications (states -> notifications)"]


def test_the_engine_may_not_import_a_workflow_nor_a_job() -> None:
    sources = {"states": "", "states.engine": "from states.workflows import hazard\n",
               "states.workflows": "", "states.workflows.hazard": "from states.jobs import sweep\n",
               "states.jobs": "", "states.jobs.sweep": "from states import engine\n"}
    assert against_direction(import_graph(sources)) == [
        "states.engine -> states.workflows.hazard (states -> states.workflows)",
        "states.workflows.hazard -> states.jobs.sweep (states.workflows -> states.jobs)"]


def test_type_checking_imports_do_not_count() -> None:
    sources = {"core": "", "core.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
               "    from states import engine\n", "states": "", "states.engine": ""}
    assert against_direction(import_graph(sources)) == []


def test_a_cycle_is_found_at_module_and_package_level() -> None:
    sources = {"core": "", "core.a": "from core import b\n", "core.b": "import core.a\n",
               "models": "", "models.x": "from core import a\n"}
    graph = import_graph(sources)
    assert cycles(graph) == [["core.a", "core.b"]]
    assert cycles(package_graph(graph)) == []
    looped = {**sources, "core.b": "from models import x\n"}
    assert cycles(package_graph(import_graph(looped))) == [["core", "models"]]
