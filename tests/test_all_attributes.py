"""Each public package's ``__all__`` is complete and sorted, and its objects
report the package as their home (as anyio's test of the same name)."""

from __future__ import annotations
import __future__

import importlib
import inspect
import types

import pytest

PACKAGES = [
    "actors",
    "actors.cluster",
    "actors.durable",
    "actors.lowlevel",
    "actors.observe",
    "actors.testing",
    "actors.tracing",
    "supervision",
]


def public_names(module: types.ModuleType) -> set[str]:
    """What a user sees in the package: not private, not submodules, not
    ``from __future__`` flags."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }


def isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 "isort-style": CONSTANTS, then Classes, then functions.
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_every_public_name_once(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    assert set(exported) == public_names(module)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted(package: str) -> None:
    exported = list(importlib.import_module(package).__all__)
    assert exported == sorted(exported, key=isort_key)


@pytest.mark.parametrize("package", PACKAGES)
def test_public_objects_live_in_the_package(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == package, f"{package}.{name}.__module__ = {obj.__module__}"


@pytest.mark.parametrize("package", PACKAGES)
def test_public_objects_have_docstrings(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{package}.{name} has no docstring"
