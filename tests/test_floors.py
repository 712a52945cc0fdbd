"""The app's three floors: core (numpy only), views (strings; imports core), page (the DOM).

Every import of every module under pyscript_app/ is read from its source (also the ones inside
functions); an import that goes up a floor, a browser import below the page, or a circle fails.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "pyscript_app"
FLOORS = {"core": 0, "views": 1, "page": 2, "main": 3}
BROWSER = {"js", "pyodide", "pyodide_js", "pyscript"}
# what the core may import besides itself: the standard library and numpy
ALLOWED_CORE = set(sys.stdlib_module_names) | {"numpy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (``from pkg import mod`` gives pkg.mod)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {name for name in found if name}


def modules() -> dict[str, set[str]]:
    """{module: the app modules it imports} for every module of the app."""
    paths = {module_name(p): p for p in APP.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        graph[name] = {i for i in imports_of(path) if i in paths and i != name and not name.startswith(i + ".")}
    return graph


def floor(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None  # the package itself
    return FLOORS.get(parts[1])


def test_every_module_lives_on_a_floor():
    homeless = [n for n in modules() if n != "pyscript_app" and floor(n) is None]
    assert homeless == [], "modules outside core/, views/, page/ (and main.py)"


def test_no_module_imports_a_floor_above_its_own():
    upward = [(n, i) for n, deps in modules().items() for i in deps
              if floor(n) is not None and floor(i) is not None and floor(i) > floor(n)]
    assert upward == []


def test_the_core_imports_only_the_standard_library_and_numpy():
    bad = []
    for path in (APP / "core").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top != "pyscript_app" and top not in ALLOWED_CORE:
                bad.append((module_name(path), name))
    assert bad == []


def test_only_the_page_touches_the_browser():
    bad = [(module_name(p), name) for folder in ("core", "views") for p in (APP / folder).rglob("*.py")
           for name in imports_of(p) if name.split(".")[0] in BROWSER]
    assert bad == []


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk of ``graph`` meets (empty: none)."""
    state: dict[str, int] = {}
    found = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_no_import_circles():
    assert circles(modules()) == []


def test_the_walker_sees_imports_inside_functions_and_circles():
    # The checks above would pass on a walker that finds nothing: show that it finds things.
    assert "pyscript_app.core.network" in imports_of(APP / "core" / "train.py")  # imported inside a method
    assert "pyscript_app.core.network" in modules()["pyscript_app.views.render"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_main_is_a_short_bootstrap():
    assert len((APP / "main.py").read_text().splitlines()) <= 150
