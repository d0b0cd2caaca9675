"""One timer per actor system for the deadlines of every pending ask.

A timer per ask (``call_later`` on asyncio, a cancel scope with a deadline on
trio) was a fifth of an ask's round trip on asyncio and a third on trio. Asks
register their deadline here instead (a dict entry, removed when the answer
comes), and one task of the system sleeps until the earliest deadline, then
expires what is due. Asks almost always share one timeout, so deadlines arrive
in increasing order and registering one does not wake the task.

# Invariants:
# - ``pending`` maps each waiting reply slot to its deadline; the asker
#   removes its entry however its wait ends.
# - ``target`` is the time the task will wake at (``inf``: not sleeping on a
#   deadline); a deadline earlier than it wakes the task to sleep less.
# - After ``close()`` (``pending`` None) nothing is registered: an ask then
#   waits without a deadline, which cannot hang since every actor of the
#   system has ended.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from ._backend import asyncio_loop
from ._signal import Signal
from ._trio import trio


class _Expirable(Protocol):
    def expire(self) -> None: ...


def now() -> float:
    """The running backend's clock (virtual clocks included)."""
    loop = asyncio_loop()
    return loop.time() if loop is not None else trio.current_time()


class Deadlines:
    """The deadlines of pending asks, and the task that expires them.

    The ask registers inline (it is the hot path): ``pending[slot] =
    deadline``, then ``earlier(deadline)`` if ``deadline < target``; it
    unregisters with ``pending.pop(slot, None)`` however its wait ends.
    ``pending`` is None once closed: nothing is registered then.
    """

    __slots__ = ("_start", "_started", "_wake", "pending", "target")

    def __init__(self, start: Callable[..., None]) -> None:
        self.pending: dict[_Expirable, float] | None = {}
        self.target = math.inf
        self._wake: Signal | None = None
        self._started = False
        self._start = start  # starts a system task: start(fn, name=...)

    def earlier(self, deadline: float) -> None:
        """A deadline before ``target`` was registered: wake sooner."""
        self.target = deadline
        if not self._started:
            self._started = True
            self._start(self._run, name="actors ask deadlines")
        elif self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        self.pending = None
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while (pending := self.pending) is not None:
            t = now()
            earliest = math.inf
            due = []
            for slot, deadline in pending.items():
                if deadline <= t:
                    due.append(slot)
                elif deadline < earliest:
                    earliest = deadline
            for slot in due:
                del pending[slot]
                slot.expire()
            self.target = earliest
            self._wake = Signal()
            await self._wake.wait(earliest - t)
