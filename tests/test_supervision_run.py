"""``supervision.run`` in a real process: signals, shutdown order, exit status.

Each test starts a script in a subprocess, waits for a line it prints when it
is where the test wants it (``started``, printed by the last child's
``on_start``, when the whole tree is up), sends signals, and reads what the
children printed as they stopped. Nothing sleeps: the test blocks on the
pipes, each wait bounded, and the process is killed in the end whatever
happened.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

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
        def __init__(
            self, label, *, hang=False, crash=False, shield=False, hang_start=False,
            slow_start=False,
        ):
            self.label, self.hang, self.crash = label, hang, crash
            self.shield, self.hang_start, self.slow_start = shield, hang_start, slow_start

        async def on_start(self):
            print(f"start {self.label}", flush=True)
            if self.crash:
                self.context.schedule_once(0, "crash")
            if self.hang_start:
                await anyio.sleep_forever()
            if self.slow_start:  # until the test writes a line
                await anyio.to_thread.run_sync(sys.stdin.readline)

        async def receive(self, message):
            if message == "crash":
                raise RuntimeError(f"{self.label} is broken")

        async def on_stop(self):
            print(f"stop {self.label}", flush=True)
            if self.hang:
                await anyio.sleep_forever()
            if self.shield:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep_forever()


    class Stopper(actors.Actor):
        async def on_start(self):
            print("start a", flush=True)
            await self.context.stop()  # ends the tree (auto_shutdown)

        async def on_stop(self):
            print("stop a", flush=True)


    class Ready(actors.Actor):
        async def on_start(self):
            print("started", flush=True)

        async def on_stop(self):
            print("stop ready", flush=True)


    mode = sys.argv[1]
    if mode.startswith("signal_"):
        # Raise a signal in the instants before the event loop starts or after
        # it has ended (a real one arrives there by chance, now and then).
        import signal

        serve = actors.run
        signum = getattr(signal, sys.argv[2])

        def run_with_a_signal(*args, **kwargs):
            if mode == "signal_before":
                signal.raise_signal(signum)
            result = serve(*args, **kwargs)
            if mode == "signal_after":
                print("loop ended", flush=True)
                signal.raise_signal(signum)
            return result

        actors.run = run_with_a_signal
    inner = ChildSpec(
        Supervisor,
        [ChildSpec(Worker, "b1", name="b1"), ChildSpec(Worker, "b2", name="b2")],
        name="b",
    )
    children = [
        ChildSpec(Worker, "a", name="a"),
        inner,
        ChildSpec(
            Worker, "c", name="c", hang=mode == "hang", shield=mode == "shield",
            shutdown="infinity",
        ),
        ChildSpec(
            Worker, "d", name="d", crash=mode == "crash", hang_start=mode == "hang_start",
            slow_start=mode == "slow_start",
        ),
        ChildSpec(Ready, name="ready"),
    ]
    if mode == "signal_after":
        children = [ChildSpec(Stopper, name="a", restart="transient", significant=True)]
    supervision.run(
        ChildSpec(
            Supervisor, children, name="app", max_restarts=2,
            auto_shutdown="any_significant" if mode == "signal_after" else "never",
        )
    )
    print("run returned", flush=True)
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "tree.py"
    path.write_text(SCRIPT)
    return path


WAIT = 30  # seconds any one wait may take before the test fails


class Process:
    """A script in a subprocess, its output read line by line by two threads,
    so that every wait is bounded."""

    def __init__(self, script: Path, backend: str, *args: str) -> None:
        env = {**os.environ, "ACTORS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.err_seen: list[str] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        for pipe, lines in [(self.popen.stdout, self.out), (self.popen.stderr, self.err)]:
            threading.Thread(target=_pump, args=(pipe, lines), daemon=True).start()

    def send(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def write(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def line(self) -> str:
        """The next line of stdout."""
        line = self.out.get(timeout=WAIT)
        assert line is not None, f"stdout ended; stderr: {self.stderr()}"
        return line

    def until(self, wanted: str) -> list[str]:
        """Lines of stdout up to and including ``wanted``."""
        lines = []
        while True:
            lines.append(self.line())
            if lines[-1] == wanted:
                return lines

    def err_until(self, fragment: str) -> None:
        """Wait for a line of stderr that contains ``fragment``."""
        while True:
            line = self.err.get(timeout=WAIT)
            assert line is not None, f"stderr ended without {fragment!r}: {self.err_seen}"
            self.err_seen.append(line)
            if fragment in line:
                return

    def finish(self) -> tuple[list[str], str, int]:
        """Wait for the exit; the rest of stdout, all of stderr, the status."""
        status = self.popen.wait(timeout=WAIT)
        return _drain(self.out), self.stderr(), status

    def stderr(self) -> str:
        if self.popen.poll() is not None:
            self.err_seen += _drain(self.err)
        return "\n".join(self.err_seen)


def _pump(pipe: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in pipe:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _drain(lines: queue.Queue[str | None]) -> list[str]:
    rest = []
    while (line := lines.get(timeout=WAIT)) is not None:
        rest.append(line)
    lines.put(None)  # drained for good: later reads see the end too
    return rest


@pytest.fixture
def run_script(script: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(backend: str, *args: str) -> Process:
        process = Process(script, backend, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
        process.popen.wait()
        for pipe in (process.popen.stdin, process.popen.stdout, process.popen.stderr):
            assert pipe is not None
            pipe.close()


STARTS = ["start a", "start b1", "start b2", "start c", "start d", "started"]
# Reverse start order, a sub-supervisor's children before the ones before it.
STOPS = ["stop ready", "stop d", "stop c", "stop b2", "stop b1", "stop a"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_the_tree_in_reverse_order(
    run_script: Callable[..., Process], backend: str, signum: signal.Signals
) -> None:
    proc = run_script(backend, "serve")
    assert proc.until("started") == STARTS
    proc.send(signum)
    out, err, status = proc.finish()
    assert out == [*STOPS, "run returned"]
    assert status == 0
    assert f"{signum.name} received: stopping /user/app" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_cancels_what_is_left(
    run_script: Callable[..., Process], backend: str
) -> None:
    proc = run_script(backend, "hang")
    proc.until("started")
    proc.send(signal.SIGINT)
    assert proc.until("stop c") == ["stop ready", "stop d", "stop c"]  # c hangs in on_stop
    proc.send(signal.SIGTERM)
    out, err, status = proc.finish()
    # Cancelled: on_stop of c is interrupted and the rest are killed, so
    # theirs do not run.
    assert out == ["run returned"]
    assert status == 0
    assert "SIGTERM received again: cancelling /user/app" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_signals_are_handled_while_the_tree_starts(
    run_script: Callable[..., Process], backend: str
) -> None:
    proc = run_script(backend, "hang_start")
    proc.until("start d")  # d's on_start never returns
    proc.send(signal.SIGINT)
    proc.err_until("SIGINT received: stopping /user/app once it has started")
    proc.send(signal.SIGINT)
    out, err, status = proc.finish()
    assert out == ["run returned"]  # all cancelled: no on_stop ran
    assert status == 0
    assert "SIGINT received again: cancelling /user/app" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signal_while_the_tree_starts_stops_it_once_started(
    run_script: Callable[..., Process], backend: str
) -> None:
    proc = run_script(backend, "slow_start")
    proc.until("start d")  # d's on_start waits for a line on stdin
    proc.send(signal.SIGTERM)
    proc.err_until("SIGTERM received: stopping /user/app once it has started")
    proc.write("go on")
    out, err, status = proc.finish()
    assert "received again" not in err
    assert out == ["started", *STOPS, "run returned"]
    assert status == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_third_signal_exits_at_once_naming_what_was_running(
    run_script: Callable[..., Process], backend: str, signum: signal.Signals
) -> None:
    proc = run_script(backend, "shield")  # c's on_stop blocks under a shield
    proc.until("started")
    proc.send(signum)
    proc.until("stop c")
    proc.send(signum)
    proc.err_until(f"{signum.name} received again: cancelling /user/app")
    proc.send(signum)
    out, err, status = proc.finish()
    assert status == 128 + signum
    assert out == []  # nothing else ran: no other on_stop, and run did not return
    assert f"{signum.name} received a third time: exiting at once" in err
    assert "/user/app/c (stopping)" in err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_after_a_clean_shutdown_is_still_handled(
    run_script: Callable[..., Process], backend: str, signum: signal.Signals
) -> None:
    # The tree stops by itself (auto_shutdown); the signal comes after the
    # event loop has ended, before run() returned: it must not kill the
    # process (it has nothing left to stop).
    proc = run_script(backend, "signal_after", signum.name)
    out, err, status = proc.finish()
    assert out == ["start a", "stop a", "loop ended", "run returned"], err
    assert status == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_before_the_tree_starts_means_it_never_starts(
    run_script: Callable[..., Process], backend: str, signum: signal.Signals
) -> None:
    proc = run_script(backend, "signal_before", signum.name)
    out, err, status = proc.finish()
    assert out == ["run returned"], err
    assert status == 0
    assert f"{signum.name} received before the tree started: not starting it" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tree_that_gives_up_exits_non_zero_with_a_report(
    run_script: Callable[..., Process], backend: str
) -> None:
    proc = run_script(backend, "crash")
    lines, err, status = proc.finish()
    assert status == 1
    assert lines.count("start d") == 3  # the first start and two restarts
    # d's last failure, then the supervisor stops the others in reverse order.
    assert lines[-len(STOPS) :] == ["stop d", *(x for x in STOPS if x != "stop d")]
    assert "run returned" not in lines
    assert "supervision.run: the supervision tree gave up and was shut down (app)." in err
    assert "SupervisorGaveUp: supervisor /user/app gave up: more than 2 restarts" in err
    assert "caused by: RuntimeError: d is broken" in err
