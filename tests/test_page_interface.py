"""The page's controllers talk through the page's methods: none writes another object's fields.

Page (pyscript_app/page/view.py) is built with every feature it holds (its constructor's keyword
arguments); Train mode (page/train.py) holds its parts (form, data, loop, live views). A controller
that wants something of another asks it (page.install_model, page.redraw, page.is_training, ...).
Read from the sources: an assignment to ``<x>.<field>`` (or ``<x>.<field>[...]``) where ``<x>`` reaches
the page, the models or another controller (``page.card.focus_card = True``,
``self.page.shown = None``, ``models.networks[id] = n``, ``self.live.redraw_view = True``) fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "pyscript_app"
ROOTS = {"page", "models"}  # local names that stand for the page or the models (a field of theirs is theirs)


def init_of(path: Path, cls: str) -> ast.FunctionDef:
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    return next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")


def page_features() -> set[str]:
    return {a.arg for a in init_of(APP / "page" / "view.py", "Page").args.kwonlyargs}


def train_parts() -> set[str]:
    """The attributes Train's constructor makes with a call (its parts), but the trainer."""
    found = set()
    for node in ast.walk(init_of(APP / "page" / "train.py", "Train")):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            found |= {t.attr for t in node.targets if isinstance(t, ast.Attribute)}
    return found


def chain(node: ast.expr) -> list[str]:
    """``self.page.card`` -> ["self", "page", "card"] (subscripts and calls are looked through)."""
    names = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, (ast.Subscript, ast.Call)):
            node = node.value if isinstance(node, ast.Subscript) else node.func
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names[::-1]
        else:
            return names[::-1]


def targets(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            found = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            found = [node.target]
        else:
            continue
        for target in found:
            yield from (target.elts if isinstance(target, ast.Tuple) else [target])


def foreign_writes(source: str, others: set[str]) -> list[str]:
    """The assignments in ``source`` to a field of an object reached through ``page``, ``models`` or
    an attribute named in ``others`` (a local DOM element that shares a name, say ``form``, is not one)."""
    bad = []
    for target in targets(ast.parse(source)):
        if isinstance(target, ast.Subscript):
            owner = chain(target.value)  # models.networks[id] = ...: the dict is the models' field
        elif isinstance(target, ast.Attribute):
            owner = chain(target.value)
        else:
            continue
        if owner and (owner[0] in ROOTS or any(name in others for name in owner[1:])):
            bad.append(f"line {target.lineno}: {ast.unparse(target)}")
    return bad


def test_the_page_declares_its_features_and_train_its_parts():
    assert {"card", "connections", "explorer", "pad", "train"} <= page_features()
    assert {"form", "digits", "loop", "live"} <= train_parts()


def test_no_controller_writes_another_objects_fields():
    others = page_features() | train_parts() | ROOTS
    bad = {}
    for path in sorted((APP / "page").glob("*.py")) + [APP / "main.py"]:
        found = foreign_writes(path.read_text(), others)
        if found:
            bad[path.name] = found
    assert bad == {}


def test_the_check_finds_writes_through_the_page():
    # The test above would pass on a checker that finds nothing: show that it finds these.
    source = ("page.card.focus_card = True\nself.page.shown = None\nmodels.networks['t'] = n\n"
              "self.live.redraw_view, x = True, 1\nself.loop.timing['a'] += 1\n"
              "self.shown = None\nbox.dataset.state = 'ready'\nself.page = page\nform.elements.x = 1\n")
    assert foreign_writes(source, {"page", "models", "live", "loop", "card"}) == [
        "line 1: page.card.focus_card", "line 2: self.page.shown", "line 3: models.networks['t']",
        "line 4: self.live.redraw_view", "line 5: self.loop.timing['a']"]
