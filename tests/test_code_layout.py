"""The code's rooms: one job per module, no import cycles, and the wall between the packages.

These hold the tree to what DESIGN.md and issue 14 promise a reader of `ls steps workflows`:
no module over 400 lines, none importing another in a cycle (imports inside functions
count), `steps/` never importing hera or `workflows/`, and every module opening with a short
docstring and saying what it exports.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("steps", "workflows")
MAX_LINES = 400
MAX_DOCSTRING_LINES = 15
URL = re.compile(r"https?://\S+")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()
WITH_CODE = sorted(name for name, path in MODULES.items() if path.read_text().strip())


def _imported(name: str, path: Path) -> set[str]:
    """Every project module `name` imports, at any depth of its code (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in MODULES and t != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as the modules along it, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for start in graph:
        if start in state:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return None


def test_the_layout_names_every_room_the_design_lists() -> None:
    expected = {
        "steps.spec",
        "steps.space",
        "steps.compute",
        "steps.reduce",
        "steps.store",
        "workflows.build",
        "workflows.local",
        "workflows.argo",
        "workflows.sweep",
    }
    assert expected <= MODULES.keys()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


@pytest.mark.parametrize("name", WITH_CODE)
def test_every_module_opens_with_a_short_docstring(name: str) -> None:
    path = MODULES[name]
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring, f"{name} has no module docstring"
    assert len(docstring.splitlines()) <= MAX_DOCSTRING_LINES, (
        f"{name}: a {len(docstring.splitlines())}-line docstring; the essay belongs in docs/"
    )
    for url in URL.findall(docstring):
        assert url.startswith("https://"), f"{name}: {url}"


def _top_level_names(tree: ast.Module) -> dict[str, ast.AST]:
    """What a module binds at its top level: definitions, assignments and imports."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elements = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update((e.id, node) for e in elements if isinstance(e, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(((a.asname or a.name).split(".")[0], node) for a in node.names)
    return names


@pytest.mark.parametrize("name", WITH_CODE)
def test_every_module_says_what_it_exports(name: str) -> None:
    path = MODULES[name]
    names = _top_level_names(ast.parse(path.read_text()))
    declaration = names.get("__all__")
    assert isinstance(declaration, ast.Assign), f"{name} has no __all__"
    exported = set(ast.literal_eval(declaration.value))
    assert exported <= names.keys(), (
        f"{name} exports what it never binds: {exported - names.keys()}"
    )


def test_no_module_imports_another_in_a_cycle() -> None:
    graph = {name: _imported(name, path) for name, path in MODULES.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The checker itself: an import hidden in a function is an edge, and closes cycles."""
    module = tmp_path / "probe.py"
    module.write_text("def late():\n    from steps import space\n    import steps.spec\n")
    assert _imported("probe", module) == {"steps", "steps.space", "steps.spec"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_steps_never_imports_hera_or_workflows() -> None:
    for name, path in MODULES.items():
        if not name.startswith("steps"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in modules:
                assert module.split(".")[0] not in {"hera", "workflows"}, f"{name} imports {module}"
