"""The examples in the docstrings of ``actors``, ``actors.lowlevel`` and
``actors.testing`` run and print what they say (the API reference is
generated from them)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import actors
import actors.durable
import actors.lowlevel
import actors.observe
import actors.testing

MODULES = [
    "actors",
    "actors.testing",
    "actors.durable",
    "actors.observe",
    *(f"actors.{info.name}" for info in pkgutil.iter_modules(actors.__path__)),
    *(f"actors.durable.{info.name}" for info in pkgutil.iter_modules(actors.durable.__path__)),
    *(f"actors.testing.{info.name}" for info in pkgutil.iter_modules(actors.testing.__path__)),
    *(f"actors.observe.{info.name}" for info in pkgutil.iter_modules(actors.observe.__path__)),
]


@pytest.mark.parametrize("name", sorted(set(MODULES)))
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0, f"{failed} of {tried} examples in {name} failed (see the output)"


@pytest.mark.parametrize(
    "package", [actors, actors.durable, actors.lowlevel, actors.observe, actors.testing]
)
def test_every_public_class_and_function_has_an_example(package: object) -> None:
    for name in package.__all__:  # type: ignore[attr-defined]
        obj = getattr(package, name)
        if getattr(obj, "__origin__", None) is None and (isinstance(obj, type) or callable(obj)):
            assert ">>>" in (obj.__doc__ or ""), f"{name} has no example in its docstring"
