"""Child processes: start ``python -m actors._child``, authenticate it, end it.

The parent makes a Unix socketpair, passes one end to a fresh interpreter
(never ``fork``: threads and a running event loop do not survive it), writes
a fresh random key into the socket, and runs the handshake with that key
over it. The key never appears in ``argv`` or the environment, where
``ps`` would show it. The child exits when the socket ends (its parent is
gone) and, on Linux, when the parent dies (``PR_SET_PDEATHSIG``).

Ending a child: :meth:`ChildProcess.end` closes the connection, waits
``grace`` seconds, sends SIGTERM, waits a second, sends SIGKILL, and always
reaps; :meth:`ChildProcess.kill` is SIGKILL and reap.

# Invariants:
# - Every started process is reaped: whoever starts one ends it with ``end``
#   or ``kill`` in a ``finally`` (shielded from cancellation).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import sniffio

from ._exceptions import ProcessExited
from ._handshake import handshake
from ._socket import SocketStream
from ._wire import WireConnection

if TYPE_CHECKING:
    from ._placement import Subprocess

#: Bytes of the key a child gets through its socket.
KEY_SIZE: Final = 32
#: Seconds between SIGTERM and SIGKILL.
TERM_GRACE: Final = 1.0
_PR_SET_PDEATHSIG: Final = 1


def kill_with_parent() -> None:
    """Have Linux send this process SIGKILL when the thread that started it
    exits (``PR_SET_PDEATHSIG``); elsewhere, or without ``prctl``, nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc/musl: nothing
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_with_parent_from_here() -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=...)`` of a server that must not outlive this
    process, ``kill -9`` included: :func:`kill_with_parent` on the main
    thread; None on another, whose end (a worker thread ends when idle)
    would kill the server early."""
    return kill_with_parent if threading.current_thread() is threading.main_thread() else None


def describe_exit(code: int | None, pid: int) -> str:
    """``exited with status 3`` or ``was killed by SIGKILL``."""
    if code is None:
        return f"process {pid} is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"process {pid} was killed by {name}"
    return f"process {pid} exited with status {code}"


class ChildProcess:
    """One child interpreter and the authenticated connection to it."""

    def __init__(self, process: anyio.abc.Process, wire: WireConnection) -> None:
        self.process = process
        self.wire = wire
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def exited(self, why: str = "") -> ProcessExited:
        """The error that says how the process ended (after :meth:`wait`)."""
        text = describe_exit(self.process.returncode, self.pid)
        return ProcessExited(text + why, code=self.process.returncode, pid=self.pid)

    async def wait(self) -> int:
        return await self.process.wait()

    def signal(self, signum: signal.Signals) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it just ended
                self.process.send_signal(signum)

    async def kill(self) -> int:
        """SIGKILL (and SIGCONT, for a stopped process) and reap. Shielded."""
        with anyio.CancelScope(shield=True):
            self.signal(signal.SIGKILL)
            code = await self.process.wait()
        return code

    async def end(self, grace: float) -> int:
        """Close the connection, wait ``grace`` s for an exit, then SIGTERM,
        a second later SIGKILL; always reap. Shielded from cancellation."""
        with anyio.CancelScope(shield=True):
            await self.wire.close_stream()
            with anyio.move_on_after(grace):
                return await self.process.wait()
            self.signal(signal.SIGTERM)
            with anyio.move_on_after(TERM_GRACE):
                return await self.process.wait()
        return await self.kill()


def _command(placement: Subprocess, fd: int, backend: str) -> list[str]:
    command = [
        placement.python,
        "-m",
        "actors._child",
        "--fd",
        str(fd),
        "--backend",
        backend,
        "--parent-pid",
        str(os.getpid()),
    ]
    for module in placement.by_value:
        command += ["--by-value", module]
    if sniffio.current_async_library() == "asyncio":
        command.append("--pdeathsig")  # asyncio forks from the loop's own thread
    return command


def _environment(placement: Subprocess) -> dict[str, str]:
    env = dict(os.environ if placement.env is None else placement.env)
    # The child imports what the parent can: its sys.path, in order.
    paths = [p for p in sys.path if p]
    if os.getcwd() not in paths and "" in sys.path:
        paths.insert(0, os.getcwd())
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


async def start(placement: Subprocess, backend: str) -> ChildProcess:
    """Start a child interpreter and authenticate it; the caller owns the
    result (and must :meth:`ChildProcess.end` it). The wire is not entered.

    Raises:
        ProcessExited: the child ended before the handshake.
        TimeoutError: no handshake within the placement's start timeout.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process: anyio.abc.Process | None = None
    stream: SocketStream | None = None
    try:
        with theirs:
            process = await anyio.open_process(
                _command(placement, theirs.fileno(), backend),
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=None,
                cwd=placement.cwd,
                env=_environment(placement),
                pass_fds=(theirs.fileno(),),
            )
        stream = SocketStream(ours)
        key = secrets.token_bytes(KEY_SIZE)
        with anyio.fail_after(placement.start_timeout):
            try:
                await stream.send(key)
                session = await handshake(stream, key, initiator=True)
            except (anyio.IncompleteRead, anyio.BrokenResourceError, OSError):
                await stream.aclose()
                code = await process.wait()
                raise ProcessExited(
                    describe_exit(code, process.pid) + " before its handshake",
                    code=code,
                    pid=process.pid,
                ) from None
        return ChildProcess(process, WireConnection(stream, session))
    except BaseException:
        if stream is not None:  # unwatched first: the loop must not keep the closed fd
            with anyio.CancelScope(shield=True):
                await stream.aclose()
        ours.close()
        if process is not None:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                await process.wait()
        raise
