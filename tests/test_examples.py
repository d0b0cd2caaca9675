"""Every tutorial in examples/ runs, under asyncio and trio, and prints what it should.

Examples are found by glob (``examples/NN_*.py``), so a new one is tested
without touching this file. A script example must have its expected output
beside it as ``NN_name.out``; a pytest example (one that defines ``test_``
functions) is run with pytest, keeping only its tests for the backend at hand.
A script has ``async def main()`` and the main guard ``actors.run(main)``,
except a supervised script, whose main guard is ``supervision.run(tree)``.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
BACKENDS = ["asyncio", "trio"]
TIMEOUT = 60.0


def is_pytest_example(path: Path) -> bool:
    return re.search(r"^(async )?def test_", path.read_text(), re.MULTILINE) is not None


def is_supervised_script(path: Path) -> bool:
    """A script whose main guard is ``supervision.run(tree)``: that starts its own
    event loop (honouring ACTORS_BACKEND too), so it has no ``async def main()``."""
    return 'if __name__ == "__main__":\n    supervision.run(' in path.read_text()


def run(args: list[str], backend: str) -> subprocess.CompletedProcess[str]:
    """Run an example in a session of its own; whatever it started and left
    (servers, worker nodes: on a timeout, say) is killed with it."""
    env = {**os.environ, "ACTORS_BACKEND": backend}
    command = [sys.executable, *args]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        finally:  # on a timeout, the example too (the context then reaps it)
            _kill_group(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def test_examples_are_found() -> None:
    assert len(EXAMPLES) >= 7, [p.name for p in EXAMPLES]


def test_every_out_file_has_its_example() -> None:
    stale = [
        out.name for out in (ROOT / "examples").glob("*.out") if not out.with_suffix(".py").exists()
    ]
    assert not stale, f"expected-output files without an example: {stale}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_follows_the_style(example: Path) -> None:
    tree = ast.parse(example.read_text())
    docstring = ast.get_docstring(tree)
    assert docstring, f"{example.name} needs a module docstring"
    assert "This example shows:" in docstring, f"{example.name}: say what it shows"
    if is_pytest_example(example):
        return
    if is_supervised_script(example):
        return
    names = {node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)}
    assert "main" in names, f"{example.name} needs `async def main()`"
    assert 'if __name__ == "__main__":\n    actors.run(main)' in example.read_text(), (
        f"{example.name} needs the main guard `actors.run(main)` (it honours ACTORS_BACKEND)"
    )


@pytest.mark.timeout(TIMEOUT + 30)  # let the subprocess timeout report first
@pytest.mark.parametrize(
    ("example", "backend"),
    [pytest.param(p, b, id=f"{p.stem}-{b}") for p in EXAMPLES for b in BACKENDS],
)
def test_example_runs(example: Path, backend: str) -> None:
    name = example.relative_to(ROOT).as_posix()
    if is_pytest_example(example):
        # Only this backend's tests; anyio names them test_x[asyncio], test_x[trio].
        result = run(["-m", "pytest", name, "-q", "-k", backend], backend)
        report = result.stdout + result.stderr
        assert result.returncode == 0, f"pytest {name} failed under {backend}:\n{report}"
        assert re.search(r"\d+ passed", result.stdout), report
        assert not re.search(r"failed|error|skipped", result.stdout.splitlines()[-1]), report
        return

    expected = example.with_suffix(".out")
    assert expected.exists(), (
        f"{name} has no expected output: run `python {name} > {expected.relative_to(ROOT)}` "
        f"and check it"
    )
    result = run([name], backend)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode} under {backend}:\n{result.stderr}"
    )
    assert result.stdout == expected.read_text()
