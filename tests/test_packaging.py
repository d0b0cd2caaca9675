"""The distribution: its name, version, license and what it installs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
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


ASYNCIO_ONLY = r"""
import sys
sys.modules["trio"] = None  # as if the [trio] extra were not installed

import actors, actors.lowlevel, actors.testing, supervision
from actors import Actor, ActorSystem


class Echo(Actor):
    async def receive(self, message):
        return message


async def main():
    async with ActorSystem() as system:
        sup = await system.spawn(
            supervision.Supervisor, [supervision.ChildSpec(Echo, name="echo")], name="sup"
        )
        echo = system.tree().find("/user/sup/echo")
        assert echo is not None
        return "asyncio ok"


print(actors.run(main))
try:
    actors.run(main, backend="trio")
except ModuleNotFoundError as error:
    print(error)
"""


def test_asyncio_alone_needs_no_trio() -> None:
    # trio is the [trio] extra: without it, everything but the trio backend
    # works, and asking for that backend says what to install.
    done = subprocess.run(
        [sys.executable, "-c", ASYNCIO_ONLY], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "asyncio ok",
        "the trio backend needs trio, which is not installed: "
        "pip install 'structured-actors[trio]'",
    ]


ASYNCIO_LOADS_NO_TRIO = r"""
import sys
import actors
from actors import Actor, ActorSystem


class Loaded(Actor):
    async def receive(self, message):
        return "trio._core" in sys.modules


async def main():
    async with ActorSystem() as system:
        here = await system.spawn(Loaded)
        there = await system.spawn(Loaded, placement=actors.Subprocess())
        return await here.ask(None), await there.ask(None)


print(actors.run(main), "trio._core" in sys.modules)
"""


def test_an_asyncio_process_and_its_children_never_load_trio() -> None:
    # trio is installed but costs 0.1-0.3 s to import: asyncio systems, their
    # child processes included, run without loading it.
    done = subprocess.run(
        [sys.executable, "-c", ASYNCIO_LOADS_NO_TRIO],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["(False, False) False"]
