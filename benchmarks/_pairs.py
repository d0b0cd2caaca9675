"""The one-way workload's actors: a source telling a sink ``n`` messages.

Shared by ``benchmarks.actors`` (the one-way rows) and ``benchmarks.observe``
(the same workload with the live page open).
"""

from __future__ import annotations

from typing import Any

import anyio

from actors import Actor, ActorRef


class Sink(Actor):
    """Counts down ``n`` messages, then sets ``done``."""

    def __init__(self, n: int, done: anyio.Event) -> None:
        self.left = n
        self.done = done

    async def receive(self, message: Any) -> None:
        self.left -= 1
        if not self.left:
            self.done.set()


class Source(Actor):
    """On any message, tells ``sink`` the numbers ``0 .. n-1``."""

    def __init__(self, sink: ActorRef, n: int) -> None:
        self.sink = sink
        self.n = n

    async def receive(self, message: Any) -> None:
        tell = self.sink.tell
        for i in range(self.n):
            await tell(i)
