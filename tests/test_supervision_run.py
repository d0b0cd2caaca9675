"""``supervision.run`` in a real process: signals, shutdown order, exit status.

Each test starts a script in a subprocess, waits for the line ``started``
(printed by the last child's ``on_start``, so the whole tree is up and the
signal handlers are installed), sends signals, and reads what the children
printed as they stopped. Nothing sleeps: the test blocks on the pipe.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ["asyncio", "trio"]

SCRIPT = textwrap.dedent(
    """
    import sys

    import anyio

    import actors
    import supervision
    from supervision import ChildSpec, Supervisor


    class Worker(actors.Actor):
        def __init__(self, label, *, hang=False, crash=False):
            self.label, self.hang, self.crash = label, hang, crash

        async def on_start(self):
            print(f"start {self.label}", flush=True)
            if self.crash:
                self.context.schedule_once(0, "crash")

        async def receive(self, message):
            if message == "crash":
                raise RuntimeError(f"{self.label} is broken")

        async def on_stop(self):
            print(f"stop {self.label}", flush=True)
            if self.hang:
                await anyio.sleep_forever()


    class Ready(actors.Actor):
        async def on_start(self):
            print("started", flush=True)

        async def on_stop(self):
            print("stop ready", flush=True)


    mode = sys.argv[1]
    inner = ChildSpec(
        Supervisor,
        [ChildSpec(Worker, "b1", name="b1"), ChildSpec(Worker, "b2", name="b2")],
        name="b",
    )
    children = [
        ChildSpec(Worker, "a", name="a"),
        inner,
        ChildSpec(Worker, "c", name="c", hang=mode == "hang", shutdown="infinity"),
        ChildSpec(Worker, "d", name="d", crash=mode == "crash"),
        ChildSpec(Ready, name="ready"),
    ]
    supervision.run(ChildSpec(Supervisor, children, name="app", max_restarts=2))
    print("run returned", flush=True)
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "tree.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(
    script: Path, backend: str, mode: str, processes: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    env = {**os.environ, "ACTORS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    processes.append(proc)
    return proc


def read_until_started(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if lines[-1] == "started":
            return lines
    raise AssertionError(f"the tree never started; it printed {lines}, stderr: {proc.stderr}")


STARTS = ["start a", "start b1", "start b2", "start c", "start d", "started"]
# Reverse start order, a sub-supervisor's children before the ones before it.
STOPS = ["stop ready", "stop d", "stop c", "stop b2", "stop b1", "stop a"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_tree_in_reverse_order(
    script: Path,
    backend: str,
    signum: signal.Signals,
    processes: list[subprocess.Popen[str]],
) -> None:
    proc = start(script, backend, "serve", processes)
    assert read_until_started(proc) == STARTS
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert out.splitlines() == [*STOPS, "run returned"]
    assert proc.returncode == 0
    assert f"{signum.name} received: stopping /user/app" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_cancels_what_is_left(
    script: Path, backend: str, processes: list[subprocess.Popen[str]]
) -> None:
    proc = start(script, backend, "hang", processes)
    read_until_started(proc)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    for expected in ["stop ready", "stop d", "stop c"]:  # c hangs in on_stop
        assert proc.stdout.readline().rstrip("\n") == expected
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    # Cancelled: on_stop of c is interrupted and the rest are killed, so
    # theirs do not run.
    assert out.splitlines() == ["run returned"]
    assert proc.returncode == 0
    assert "SIGTERM received again: cancelling /user/app" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tree_that_gives_up_exits_non_zero_with_a_report(
    script: Path, backend: str, processes: list[subprocess.Popen[str]]
) -> None:
    proc = start(script, backend, "crash", processes)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = out.splitlines()
    assert lines.count("start d") == 3  # the first start and two restarts
    # d's last failure, then the supervisor stops the others in reverse order.
    assert lines[-len(STOPS) :] == ["stop d", *(x for x in STOPS if x != "stop d")]
    assert "run returned" not in lines
    assert "supervision.run: the supervision tree gave up and was shut down (app)." in err
    assert "SupervisorGaveUp: supervisor /user/app gave up: more than 2 restarts" in err
    assert "caused by: RuntimeError: d is broken" in err
