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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_kit import alive, descendants_of

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


@contextlib.contextmanager
def started(
    args: list[str],
    backend: str | None = None,
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """An example started in a session of its own (under ``backend``, if
    given); on leaving, whatever it started and left (servers, worker nodes:
    on a timeout, say) is killed with it, and the example is reaped."""
    env = os.environ if backend is None else {**os.environ, "ACTORS_BACKEND": backend}
    with subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            yield process
        finally:
            _kill_group(process.pid)


def run(args: list[str], backend: str) -> subprocess.CompletedProcess[str]:
    """Run an example to its end (see `started`)."""
    with started(args, backend, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        out, err = process.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


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


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG, /proc")
@pytest.mark.parametrize(
    ("lesson", "backend", "marker", "servers", "nodes"),
    [
        # Its nats-server (and perhaps its billing process).
        ("20_durable_jetstream", "asyncio", "-- five orders published", 1, 0),
        ("20_durable_jetstream", "trio", "-- five orders published", 1, 0),
        # Three nats-servers and two worker nodes, less what the lesson has
        # killed itself by then (a server, then a node). Trio starts processes
        # from a worker thread: a PR_SET_PDEATHSIG set there would fire early.
        ("21_cluster", "trio", "-- three nodes in three processes", 2, 1),
    ],
)
def test_a_kill_9_of_a_lesson_ends_the_processes_it_started(
    lesson: str, backend: str, marker: str, servers: int, nodes: int
) -> None:
    # On leaving, whatever is left is killed, so that the next test starts clean.
    with started([f"examples/{lesson}.py"], backend, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        for line in process.stdout:  # bounded by the test's timeout
            if line.startswith(marker):
                break
        # Held where it is (it went on while the line was on its way),
        # so that what it started is all there when it is killed.
        os.kill(process.pid, signal.SIGSTOP)
        helpers = descendants_of(process.pid)
        names = [_command_name(pid) for pid in helpers]
        assert names.count("nats-server") >= servers, names
        assert len(helpers) - names.count("nats-server") >= nodes, names
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        # Servers die with it; worker nodes leave their cluster first.
        deadline = time.monotonic() + 30
        while any(map(alive, helpers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in helpers if alive(pid)]


def test_a_lesson_s_second_process_ends_when_the_lesson_does(tmp_path: Path) -> None:
    # Lesson 17's server, as the lesson starts it (--child): the lesson's end
    # closes the server's stdin, kill -9 included; then the server exits.
    args = ["examples/17_systems_over_tcp.py", "--serve", "--cookie", str(tmp_path / "cookie")]
    with started([*args, "--child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stdin is not None
        address = process.stdout.readline()  # it serves
        assert address.startswith("127.0.0.1:"), address
        process.stdin.close()
        assert process.wait(timeout=10) == 1
