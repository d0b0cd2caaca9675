"""``run()``: serve a supervision tree from a script until Ctrl-C or SIGTERM.

# Invariants:
# - From ``run``'s first instruction to its last, SIGINT and SIGTERM go to
#   ``_Signals._handle``; the handlers found are put back when it ends.
# - The handler only counts (``received``) and hands the signal over; the
#   third exits the process at once. The first two are carried out by
#   ``_obey`` in the event loop, in arrival order; while no loop serves the
#   tree (before it starts, after it has ended) they are only counted, since
#   there is nothing to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, TextIO

import anyio

try:
    import trio
    import trio.lowlevel
except ModuleNotFoundError:  # the asyncio-only install (no [trio] extra)
    trio = None  # type: ignore[assignment]

import actors
from actors import ActorRef, ActorSystem, Channel, SupervisorGaveUp, lowlevel

from ._spec import ChildSpec

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

#: How many live actors the exit on a third signal names at most.
_NAMED: Final = 20


def run(tree: ChildSpec, *, backend: str | None = None) -> None:
    """Start an actor system, spawn ``tree`` in it, and serve until told to stop.

    The tree (usually a :class:`Supervisor` spec) is spawned as the one
    top-level actor. SIGINT (Ctrl-C) and SIGTERM are handled from the moment
    ``run`` is called until it returns, while the tree starts and while it
    stops included (``run`` replaces their handlers meanwhile, and puts the
    previous ones back when it returns):

    * The first signal stops the tree gracefully: children in reverse start
      order, each within its own shutdown timeout (a supervisor spec's
      default is ``"infinity"``, so the children's timeouts decide). A tree
      still starting is stopped as soon as its start is over. ``run`` then
      returns. A signal before the tree started means it is not started.
    * A second signal cancels whatever is left at once (brutal kill), an
      ``on_start`` that hangs included, and ``run`` returns.
    * A third signal ends the process at once, whatever still runs (an
      ``on_stop`` shielded from cancellation, say): ``run`` writes to stderr
      which actors were still running and exits with status 128 + the signal
      number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process
      a signal ended. Nothing else runs: no ``finally`` block, no ``atexit``.
    * If the tree stops by itself (``auto_shutdown``, or ``stop()``), ``run``
      returns.
    * If the tree fails (a supervisor gave up, or the root actor crashed or
      did not start), everything is stopped, a report naming what failed and
      why is written to stderr, and ``run`` exits with status 1
      (``SystemExit(1)``).

    Args:
        tree: the spec of the root actor.
        backend: ``"asyncio"`` or ``"trio"``; default: the ``ACTORS_BACKEND``
            environment variable, else asyncio.

    Raises:
        SystemExit: with status 1 if the tree failed.
        TypeError: ``tree`` is not a ``ChildSpec``.
        ValueError: an unknown backend.
        RuntimeError: called from a thread other than the main thread (only
            it receives signals).

    Examples:
        >>> import actors
        >>> from supervision import ChildSpec, Supervisor
        >>> class OneShot(actors.Actor):
        ...     async def on_start(self):
        ...         print("working")
        ...         await self.context.stop()
        >>> run(ChildSpec(Supervisor, [ChildSpec(OneShot, restart="transient", significant=True)],
        ...               auto_shutdown="any_significant", name="app"))
        working
    """
    if not isinstance(tree, ChildSpec):
        raise TypeError(
            f"supervision.run needs the ChildSpec of the tree's root, got {tree!r}; "
            f"e.g. run(ChildSpec(Supervisor, [...], name='app'))"
        )
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "supervision.run must be called from the main thread: only it receives "
            "SIGINT and SIGTERM"
        )
    signals = _Signals()
    signals.install()
    try:
        failure = actors.run(_serve, tree, signals, backend=backend)
        if failure is not None:
            _report(tree, failure, sys.stderr)
            raise SystemExit(1)
    finally:
        signals.restore()


class _Signals:
    """SIGINT and SIGTERM for the whole of one ``run``."""

    def __init__(self) -> None:
        self.received = 0
        self.first: signal.Signals | None = None
        self.system: ActorSystem | None = None
        self._deliver: Callable[[signal.Signals, int], None] | None = None
        self._previous: dict[signal.Signals, Any] = {}
        self._undo_wakeup: Callable[[], None] | None = None

    def install(self) -> None:
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            # None: a handler not set from Python; the default is all we can put back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def attach(self, system: ActorSystem, inbox: Channel[tuple[signal.Signals, int]]) -> None:
        """From now on, hand signals to ``inbox`` in the running event loop."""
        soon: Callable[..., Any]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio, which sets a wake-up fd of its own
            soon = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            soon = loop.call_soon_threadsafe
            self._wake_loop_on_signals(loop)
        self.system = system

        def deliver(signum: signal.Signals, count: int) -> None:
            soon(inbox.send_nowait, (signum, count))

        self._deliver = deliver

    def _wake_loop_on_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        # A signal the kernel delivers to another thread (any thread of the
        # process may take it) does not interrupt the loop's wait in the main
        # thread, so the Python handler would not run until something else
        # woke the loop, perhaps never. A wake-up fd the loop watches makes
        # every signal wake it; the handler then runs in the main thread.
        # (asyncio sets one only for its own add_signal_handler; trio always.)
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)

        def drain() -> None:
            with contextlib.suppress(OSError):
                while reader.recv(4096):
                    pass

        loop.add_reader(reader.fileno(), drain)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

        def undo() -> None:
            signal.set_wakeup_fd(previous)
            loop.remove_reader(reader.fileno())
            reader.close()
            writer.close()

        self._undo_wakeup = undo

    def detach(self) -> None:
        self._deliver = None
        undo, self._undo_wakeup = self._undo_wakeup, None
        if undo is not None:
            undo()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of whatever runs
        # there, event loop included: count and hand over, nothing more (the
        # loop's own wake-up is the signal-safe call above).
        self.received += 1
        which = signal.Signals(signum)
        if self.first is None:
            self.first = which
        if self.received >= 3:
            self._exit_now(which)
        deliver = self._deliver
        if deliver is not None:
            # RuntimeError: the loop has just ended, and nothing is left to stop.
            with contextlib.suppress(RuntimeError):
                deliver(which, self.received)

    def _exit_now(self, signum: signal.Signals) -> None:
        status = 128 + signum
        text = (
            f"supervision.run: {signum.name} received a third time: exiting at once "
            f"with status {status}; {self._still_running()}\n"
        )
        for stream in (sys.stdout, sys.stderr):
            # What the actors printed, if the stream was not interrupted mid-write.
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                stream.flush()
        try:
            os.write(2, text.encode(errors="replace"))
        finally:
            os._exit(status)

    def _still_running(self) -> str:
        system = self.system
        if system is None:
            return "the tree had not started"
        try:
            running = [f"{info.path} ({info.state})" for info in system.tree().walk()]
        except Exception:  # pragma: no cover - the tree changed under our feet
            return "what was still running could not be listed"
        if not running:
            return "no actor was still running"
        more = len(running) - _NAMED
        return (
            "still running: "
            + ", ".join(running[:_NAMED])
            + (f" and {more} more" if more > 0 else "")
        )


async def _serve(tree: ChildSpec, signals: _Signals) -> BaseException | None:
    inbox: Channel[tuple[signal.Signals, int]] = Channel(math.inf)
    try:
        async with actors.ActorSystem() as system:
            signals.attach(system, inbox)
            if signals.first is not None:
                _say(f"{signals.first.name} received before the tree started: not starting it")
                return None
            # Not waiting for its start: a start that hangs can still be killed.
            root = tree._spawn_incarnation_nowait(system, tree.default_name)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_obey, inbox, root)
                await root.join()
                tg.cancel_scope.cancel()
    except Exception as exc:
        return exc
    finally:
        signals.detach()
    return None


async def _obey(inbox: Channel[tuple[signal.Signals, int]], root: ActorRef) -> None:
    async for signum, count in inbox:
        if count == 1:
            incarnation = lowlevel.resolve(root)
            starting = incarnation is not None and incarnation.state == "starting"
            _say(
                f"{signum.name} received: stopping {root.path}"
                f"{' once it has started' if starting else ''} (children in reverse "
                f"start order); send another to cancel what is left, a third to exit "
                f"at once"
            )
            root.stop_nowait()
        else:
            _say(
                f"{signum.name} received again: cancelling {root.path} and everything "
                f"under it now; send another to exit at once"
            )
            await root.kill()


def _say(text: str) -> None:
    print(f"supervision.run: {text}", file=sys.stderr, flush=True)


def _report(tree: ChildSpec, failure: BaseException, out: TextIO) -> None:
    if isinstance(failure, SupervisorGaveUp):
        headline = "the supervision tree gave up and was shut down"
    else:
        headline = "the supervision tree failed and was shut down"
    lines = [f"supervision.run: {headline} ({tree.default_name}).", ""]
    error: BaseException | None = failure
    depth = 0
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        prefix = "  " if depth == 0 else "  caused by: "
        lines.append(f"{prefix}{type(error).__name__}: {error}")
        lines.extend(f"      ({note})" for note in getattr(error, "__notes__", ()))
        error = error.__cause__
        depth += 1
    lines += ["", "Traceback of the failure:", ""]
    lines.append("".join(traceback.format_exception(failure)).rstrip())
    print("\n".join(lines), file=out, flush=True)
