"""``supervision`` uses only the public API of ``actors`` and ``actors.lowlevel``,
as any library built on ``actors`` would: no private module, no private name,
no private attribute of an ``actors`` object (as far as the source shows).

The attribute rule, checked statically (types are not known, so names stand
in for them): ``x._name`` (or ``getattr(x, "_name")`` and friends) is allowed
only for a name ``supervision`` defines itself; if ``actors`` defines a
private name of the same spelling, only on ``self``; and never for a private
name of ``actors.Actor``, whose attributes a supervisor inherits. Dunder names
are Python's.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).parent.parent
SUPERVISION = sorted((ROOT / "supervision").glob("*.py"))
ACTORS = sorted((ROOT / "actors").rglob("*.py"))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines for itself: functions, classes, assignments,
    ``self.x = ...`` attributes, ``__slots__`` entries and annotated fields."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            for element in ast.walk(node.value):
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    names.add(element.value)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def actor_class_private_names() -> set[str]:
    """Private names ``actors.Actor`` (or its module) defines: a supervisor is an
    Actor, so touching one of these is touching the runtime's state."""
    tree = ast.parse((ROOT / "actors" / "_actor.py").read_text())
    [actor] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Actor"]
    names = {n for n in defined_names(actor) if is_private(n)}
    for node in ast.walk(actor):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if is_private(n)}


def names_of(paths: list[pathlib.Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        names |= defined_names(ast.parse(path.read_text()))
    return {n for n in names if is_private(n)}


def violations(
    path: pathlib.Path, own: set[str], theirs: set[str], forbidden: set[str]
) -> Iterator[str]:
    """Each private import from ``actors`` and each suspect private attribute
    in ``path``. ``own``: private names supervision defines; ``theirs``: those
    ``actors`` defines; ``forbidden``: those of ``actors.Actor``."""

    def suspect(name: str, base: ast.expr) -> bool:
        if isinstance(base, ast.Name) and base.id in others:
            return False
        on_self = isinstance(base, ast.Name) and base.id in ("self", "cls")
        return name in forbidden or name not in own or (name in theirs and not on_self)

    tree = ast.parse(path.read_text(), str(path))
    where = f"{path.parent.name}/{path.name}"
    # Other libraries' modules (``os._exit``) are not actors' business.
    others = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] != "actors"
    }
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "actors" and any(is_private(p) for p in parts):
                    yield f"{line}: import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "actors":
                continue
            if any(is_private(p) for p in parts):
                yield f"{line}: from {node.module} import ..."
            for alias in node.names:
                if is_private(alias.name):
                    yield f"{line}: from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            if suspect(node.attr, node.value):
                yield f"{line}: attribute {node.attr}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            name = node.args[1].value
            if suspect(name, node.args[0]):
                yield f"{line}: {node.func.id}(..., {name!r})"


@pytest.mark.parametrize("path", SUPERVISION, ids=lambda p: p.name)
def test_supervision_touches_no_private_name_of_actors(path: pathlib.Path) -> None:
    found = list(
        violations(path, names_of(SUPERVISION), names_of(ACTORS), actor_class_private_names())
    )
    assert not found, "supervision reaches into actors' private names:\n" + "\n".join(found)


def test_the_check_catches_what_it_is_for(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import actors._cell\n"
        "from actors._ref import ActorRef\n"
        "from actors import _fix\n"
        "from actors.lowlevel import _secret\n"
        "def f(ref, actor, mine):\n"
        "    ref._resolve()\n"
        "    actor._actors_cell\n"
        "    getattr(actor, '_actors_stop_children', None)\n"
        "    mine._own\n"
        "    mine.__class__\n"
        "    system._spawn()\n"
        "    self._spawn()\n"
        "    self._actors_cell\n"
        "    import os\n"
        "    os._exit(0)\n"
    )
    own = {"_own", "_spawn"}
    found = sorted(
        v.split(": ", 1)[1]
        for v in violations(sample, own, {"_spawn", "_resolve"}, {"_actors_cell"})
    )
    assert found == sorted(
        [
            "import actors._cell",
            "from actors._ref import ...",
            "from actors import _fix",
            "from actors.lowlevel import _secret",
            "attribute _resolve",
            "attribute _actors_cell",
            "getattr(..., '_actors_stop_children')",
            "attribute _spawn",
            "attribute _actors_cell",
        ]
    )


def test_actor_private_names_are_known() -> None:
    # The rule for inherited state rests on this list; it must not be empty.
    assert "_actors_cell" in actor_class_private_names()
