"""Which backend runs the current task: one cheap question for the hot paths.

The runtime parks, times and starts tasks with each backend's own primitives,
so it must know whether the current task is asyncio's or trio's. Asking
asyncio for its running loop is not enough: in trio's guest mode
(``trio.lowlevel.start_guest_run`` on an asyncio host) trio's tasks run
inside the host loop's callbacks, where asyncio reports that loop as running.
Trio marks every stretch of its own work, guest ticks included, in sniffio's
thread-local (``sniffio.thread_local.name == "trio"``), and leaves it unset
around the host's callbacks; that one attribute read is all this adds to
asyncio's own lookup, which the channel (``benchmarks.channel``) and the
actors' signals (``benchmarks.actors``) pay per operation.
"""

from __future__ import annotations

from asyncio import AbstractEventLoop, _get_running_loop
from collections.abc import Callable
from typing import Any

from sniffio import thread_local as _sniffio_thread

from ._trio import trio


def asyncio_loop() -> AbstractEventLoop | None:
    """The running asyncio loop, or None when the current task is trio's.

    Trio's tasks in guest mode on an asyncio host get None too. Outside any
    async library it returns None; callers that need a backend then fail in
    trio's own calls, with trio's message.
    """
    if _sniffio_thread.name is None:
        return _get_running_loop()
    return None


def threadsafe_scheduler() -> Callable[..., Any]:
    """How another thread hands a callback to the running loop: asyncio's
    ``call_soon_threadsafe`` or trio's ``TrioToken.run_sync_soon`` (both raise
    once the loop has ended: see ``LOOP_ENDED``). Call it in the loop."""
    loop = asyncio_loop()
    if loop is not None:
        return loop.call_soon_threadsafe
    return trio.lowlevel.current_trio_token().run_sync_soon
