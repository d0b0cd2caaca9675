"""The store's one worker thread: runs its calls in order, off the event loop.

A thread of our own fed by a queue, rather than ``anyio.to_thread`` with a
``CapacityLimiter(1)``: a round trip measured 62 µs against 144 µs on asyncio
and 100 µs against 194 µs on trio (2-core machine), and a store call is
mostly that round trip at ``synchronous=NORMAL`` (``benchmarks.durable``).

# Invariants:
# - Calls run one at a time, in the order they were queued, on one thread.
# - The caller waits for its call to end even if cancelled (the wait is
#   shielded): a call that started always reports back, so a commit is never
#   mistaken for a failure.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

import anyio

from .._backend import threadsafe_scheduler
from .._signal import Signal

T = TypeVar("T")


class StoreThread:
    """A daemon thread that runs callables from a queue until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[Callable[[], None] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get = self._queue.get
        while (job := get()) is not None:
            job()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread and return (or raise) its result.

        Cancellation: shielded: waits for the call to end, then the caller
        sees the cancellation at its next checkpoint.
        """
        done = Signal()
        schedule = threadsafe_scheduler()
        box: list[Any] = []

        def job() -> None:
            try:
                box.append(fn(*args))
            except BaseException as error:
                box.append(_Failed(error))
            with contextlib.suppress(RuntimeError):  # the loop has ended: nobody waits
                schedule(done.set)

        self._queue.put(job)
        with anyio.CancelScope(shield=True):
            await done.wait()
        result = box[0]
        if isinstance(result, _Failed):
            error = result.error
            del result, box
            raise error
        return result  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the thread after the calls already queued."""
        self._queue.put(None)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
