"""The examples in the supervision package's docstrings run and print what they
say (the API reference is generated from them, so they must not rot)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import supervision

MODULES = ["supervision"] + [
    f"supervision.{info.name}" for info in pkgutil.iter_modules(supervision.__path__)
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    # Public objects report ``supervision`` as their module, so their examples
    # are found through the package; each private module adds its own.
    module = importlib.import_module(name)
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0, f"{failed} of {tried} examples in {name} failed (see the output)"


def test_every_public_name_has_an_example() -> None:
    for name in supervision.__all__:
        doc = getattr(supervision, name).__doc__ or ""
        assert ">>>" in doc, f"supervision.{name} has no example"
