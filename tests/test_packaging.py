"""The distribution: its name, version, license and what it installs."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import actors
import supervision

ROOT = Path(__file__).resolve().parent.parent


def test_installed_under_its_own_name_with_the_package_version() -> None:
    meta = importlib.metadata.metadata("structured-actors")
    assert meta["Name"] == "structured-actors"
    assert meta["Version"] == actors.__version__
    assert meta["License-Expression"] == "MIT"
    assert supervision.__name__ == "supervision"  # both import packages come with it


def test_the_license_file_is_shipped_and_is_mit() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
