"""The actors ``benchmarks.process_channel`` places in child processes
(importable by name, as an application's process actors must be)."""

from __future__ import annotations

from typing import Any

from actors import Actor, Channel


class Producer(Actor):
    """``("produce", channel, n)``: sends ``range(n)`` into ``channel`` in a
    goroutine, then closes it."""

    async def receive(self, message: Any) -> Any:
        match message:
            case ("produce", channel, count):
                self.context.go(self._produce, channel, count)
        return None

    async def _produce(self, channel: Channel[int], count: int) -> None:
        for i in range(count):
            await channel.send(i)
        channel.close()


class Consumer(Actor):
    """``("consume", channel, report)``: receives from ``channel`` until it is
    drained, in a goroutine, then tells ``report`` how many it got."""

    async def receive(self, message: Any) -> Any:
        match message:
            case ("consume", channel, report):
                self.context.go(self._consume, channel, report)
        return None

    async def _consume(self, channel: Channel[int], report: Any) -> None:
        count = 0
        async for _ in channel:
            count += 1
        await report.tell(count)
