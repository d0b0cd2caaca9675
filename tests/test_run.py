"""``actors.run`` in a real process: Ctrl-C, SIGTERM, ``sys.exit`` and exit status.

Each test starts a small script in a child Python, waits for a line it prints
(so the system is up and the signal handlers are in place), sends signals,
and reads what the actors printed as they stopped. Every wait is bounded, and
the child is killed in a ``finally`` whatever happens.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BACKENDS = ["asyncio", "trio"]
WAIT = 20.0  # seconds any one line may take to come (a loaded machine)

SCRIPT = textwrap.dedent(
    """
    import math
    import sys

    import anyio

    import actors


    class Worker(actors.Actor):
        def __init__(self, label, hang=False):
            self.label, self.hang = label, hang

        async def receive(self, message):
            if message == "exit":
                sys.exit(4)

        async def on_stop(self):
            print(f"stop {self.label}", flush=True)
            if self.hang:
                try:
                    await anyio.sleep_forever()
                finally:
                    print(f"cancelled {self.label}", flush=True)


    async def main(mode):
        if mode == "idle":
            print("started", flush=True)
            await anyio.sleep_forever()
        async with actors.ActorSystem() as system:
            await system.spawn(Worker, "a")
            b = await system.spawn(Worker, "b", hang=mode == "hang", shutdown=math.inf)
            if mode == "exit-body":
                sys.exit(3)
            if mode == "exit-actor":
                await b.tell("exit")
            print("started", flush=True)
            await anyio.sleep_forever()
        print("after the block", flush=True)


    actors.run(main, sys.argv[1])
    print("run returned", flush=True)
    """
)


class Child:
    """A child Python running the script, its output read line by line in a
    thread, so that every wait can have a timeout."""

    def __init__(self, script: Path, backend: str, mode: str) -> None:
        env = {**os.environ, "ACTORS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.append(self.proc.stderr.read())

    def wait_for(self, wanted: str) -> None:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {wanted!r} within {WAIT} s; got {self.stdout}") from None
            if line is None:
                raise AssertionError(f"the child ended before {wanted!r}; got {self.stdout}")
            self.stdout.append(line)
            if line == wanted:
                return

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for the exit: (status, every stdout line, stderr)."""
        status = self.proc.wait(timeout=WAIT)
        for reader in self._readers:
            reader.join(timeout=WAIT)
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.stdout.append(line)
        return status, self.stdout, "".join(self.stderr)

    def kill(self) -> None:
        """Kill it if it still runs, and close the pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=WAIT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def run_child(tmp_path: Path) -> Iterator[type[Child]]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    started: list[Child] = []

    class Started(Child):
        def __init__(self, backend: str, mode: str) -> None:
            super().__init__(script, backend, mode)
            started.append(self)

    try:
        yield Started
    finally:
        for child in started:
            child.kill()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_stops_every_actor_gracefully_and_exits_130(
    run_child: type[Child], backend: str
) -> None:
    child = run_child(backend, "serve")  # type: ignore[call-arg]
    child.wait_for("started")
    child.proc.send_signal(signal.SIGINT)
    status, out, err = child.finish()
    assert out == ["started", "stop b", "stop a"]  # reverse spawn order; no "after the block"
    assert status == 130
    assert "Traceback" not in err
    assert err.splitlines() == [
        "actors.run: SIGINT received: stopping gracefully (every actor's on_stop runs); "
        "send it again to cancel what is left"
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_gracefully_too_and_exits_143(run_child: type[Child], backend: str) -> None:
    child = run_child(backend, "serve")  # type: ignore[call-arg]
    child.wait_for("started")
    child.proc.send_signal(signal.SIGTERM)
    status, out, err = child.finish()
    assert out == ["started", "stop b", "stop a"]
    assert status == 143
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_ctrl_c_cancels_what_is_left_and_exits_1(
    run_child: type[Child], backend: str
) -> None:
    child = run_child(backend, "hang")  # type: ignore[call-arg]
    child.wait_for("started")
    child.proc.send_signal(signal.SIGINT)
    child.wait_for("stop b")  # b's on_stop never ends by itself
    child.proc.send_signal(signal.SIGINT)
    status, out, err = child.finish()
    # b's on_stop is cancelled; a, never asked to stop, is cancelled too.
    assert out == ["started", "stop b", "cancelled b"]
    assert status == 1
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "actors.run: SIGINT received again: cancelling what is left"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_with_no_system_open_cancels_main(run_child: type[Child], backend: str) -> None:
    child = run_child(backend, "idle")  # type: ignore[call-arg]
    child.wait_for("started")
    child.proc.send_signal(signal.SIGINT)
    status, out, err = child.finish()
    assert out == ["started"]
    assert status == 130
    assert err.splitlines() == ["actors.run: SIGINT received: cancelling main"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sys_exit_in_the_body_exits_with_its_status_after_a_graceful_stop(
    run_child: type[Child], backend: str
) -> None:
    child = run_child(backend, "exit-body")  # type: ignore[call-arg]
    status, out, err = child.finish()
    assert (status, out, err) == (3, ["stop b", "stop a"], "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sys_exit_in_an_actor_exits_with_its_status(run_child: type[Child], backend: str) -> None:
    child = run_child(backend, "exit-actor")  # type: ignore[call-arg]
    status, out, err = child.finish()
    assert status == 4
    assert "stop" not in " ".join(out)  # the system is cancelled, not stopped
    assert err == ""
