"""``run()``: an event loop for a script, and what Ctrl-C does to it.

While ``main`` runs, SIGINT (Ctrl-C) and SIGTERM are received by ``run``
instead of raising ``KeyboardInterrupt`` wherever the program happens to be
(each only if Python's default handler is in place: a program, or a runner
such as ``supervision.run``, that installed its own keeps it).
The first one stops every actor system open under this run gracefully (or, if
none is open, cancels ``main``); a second one cancels what is left; a third
finds Python's own handlers back in place.

# Invariants:
# - ``_active`` is the run whose ``main`` is running, in the main thread (the
#   only thread that receives signals, so there is one at most), else None.
#   Not a context variable: every actor task's context copies the spawner's,
#   and one more variable in it made each idle actor larger.
# - ``_Run.systems`` holds the systems entered under this run and not yet
#   left; a system adds and removes itself.
# - ``_Run.signals`` counts the signals received; ``signum`` is the first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.abc import TaskStatus

from ._trio import require_trio

if TYPE_CHECKING:
    from ._system import ActorSystem

T = TypeVar("T")

#: The exit status after a second signal cancelled what was left (a first
#: signal, everything stopped gracefully, exits with 128 + its number: 130
#: for Ctrl-C, 143 for SIGTERM, as a shell reports a program ended by it).
CANCELLED_STATUS = 1

#: The signals ``run`` stops the program on.
_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class _Run:
    __slots__ = ("cancelled", "scope", "signals", "signum", "systems", "taken")

    def __init__(self, taken: tuple[signal.Signals, ...]) -> None:
        self.taken = taken  # the signals it receives
        self.systems: set[ActorSystem] = set()
        self.scope: anyio.CancelScope | None = None  # around main, made in the loop
        self.signals = 0
        self.signum = 0
        self.cancelled = False  # main's scope was cancelled by a signal

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals == 1:
            self.signum = signum
            if self.systems:
                _say(
                    f"{name} received: stopping gracefully (every actor's on_stop runs); "
                    f"send it again to cancel what is left"
                )
                for system in list(self.systems):
                    system._interrupt(128 + signum)
                return
            _say(f"{name} received: cancelling main")
        else:
            _say(f"{name} received again: cancelling what is left")
        self.cancelled = True
        assert self.scope is not None  # signals are received only while main runs
        self.scope.cancel()


_active: _Run | None = None
_MAIN_THREAD = threading.main_thread().ident


def current_run() -> _Run | None:
    """The ``run`` whose ``main`` is running here, if any (for the systems
    opened under it)."""
    if _active is not None and threading.get_ident() == _MAIN_THREAD:
        return _active
    return None


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
) -> T:
    """Run ``main(*args)`` on an event loop, like ``anyio.run``, for scripts.

    Called from the main thread, ``run`` also receives SIGINT (Ctrl-C) and
    SIGTERM while ``main`` runs, so that a script stops in order:

    * The first signal stops every :class:`ActorSystem` open under this run
      gracefully: the body of its ``async with`` is cancelled, every actor is
      stopped (each ``on_stop`` runs, within its shutdown timeout), and the
      block raises ``SystemExit(128 + signal)``, so the script exits with
      status 130 after Ctrl-C (143 after SIGTERM). If no system is open,
      ``main`` is cancelled, with the same exit status.
    * A second signal cancels what is left (actors are cancelled, ``on_stop``
      is interrupted), and the script exits with status 1. A third one gets
      Python's default handling.

    A note on stderr says which. An exception raised meanwhile (an actor's
    failure in ``on_stop``, say) is raised instead, as usual. A ``main`` that
    receives these signals itself (``anyio.open_signal_receiver``) takes them
    over while it does. A signal whose handler is not Python's default when
    ``run`` is called (a program's own, or ignored) is left alone, and so
    are all of them outside the main thread or without POSIX signals.

    Args:
        main: an async function, typically opening an :class:`ActorSystem`.
        *args: its arguments.
        backend: ``"asyncio"`` or ``"trio"``; default: the ``ACTORS_BACKEND``
            environment variable, else ``"asyncio"``.
        backend_options: passed to ``anyio.run``.

    Returns:
        What ``main`` returned.

    Raises:
        ValueError: an unknown backend.
        ModuleNotFoundError: ``"trio"`` without trio installed (the
            ``structured-actors[trio]`` extra).
        SystemExit: a signal stopped the program (see above).

    Examples:
        >>> async def main():
        ...     return "ran"
        >>> run(main, backend="trio")
        'ran'
    """
    chosen = backend or os.environ.get("ACTORS_BACKEND") or "asyncio"
    if chosen not in ("asyncio", "trio"):
        raise ValueError(
            f"unknown backend {chosen!r} (from {'backend=' if backend else 'ACTORS_BACKEND'}); "
            f"use 'asyncio' or 'trio'"
        )
    if chosen == "trio":
        require_trio()
    taken = _default_handled()
    if not taken:
        return anyio.run(main, *args, backend=chosen, backend_options=backend_options)
    state = _Run(taken)
    saved = {signum: signal.getsignal(signum) for signum in taken}
    try:
        result = anyio.run(
            _main, state, main, args, backend=chosen, backend_options=backend_options
        )
    finally:
        # asyncio's loop puts back Python's defaults, not what was there.
        for signum, handler in saved.items():
            if handler is not None:
                signal.signal(signum, handler)
    if state.cancelled and state.scope is not None and state.scope.cancelled_caught:
        status = CANCELLED_STATUS if state.signals > 1 else 128 + state.signum
        raise SystemExit(status)
    return result  # type: ignore[return-value]


async def _main(state: _Run, main: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T | None:
    global _active
    _active = state
    state.scope = anyio.CancelScope()
    error: BaseException | None = None
    result = None
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(_receive_signals, state)
            try:
                with state.scope:
                    result = await main(*args)
            except BaseException as exc:  # raised below, outside the task group
                error = exc
            finally:
                tg.cancel_scope.cancel()
    finally:
        _active = None
    if error is not None:
        raise error
    return result


async def _receive_signals(state: _Run, *, task_status: TaskStatus[None]) -> None:
    try:
        receiver = anyio.open_signal_receiver(*state.taken)
        received = receiver.__enter__()
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
        task_status.started()  # this loop cannot receive signals: leave them be
        return
    try:
        task_status.started()
        async for signum in received:
            state.on_signal(signum)
            if state.signals > 1:
                break  # leaving puts back the handlers of before
    finally:
        receiver.__exit__(None, None, None)


def _default_handled() -> tuple[signal.Signals, ...]:
    """The signals ``run`` may take: those with Python's default handler, in
    the main thread, where there are POSIX signals."""
    if threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
        return ()
    defaults = (signal.default_int_handler, signal.SIG_DFL)
    return tuple(signum for signum in _SIGNALS if signal.getsignal(signum) in defaults)


def _say(text: str) -> None:
    print(f"actors.run: {text}", file=sys.stderr, flush=True)
