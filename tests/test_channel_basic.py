from __future__ import annotations

import math

import anyio
import pytest

from actors import CLOSED, Channel, ChannelDrained, SendOnClosed, WouldBlock, select

pytestmark = pytest.mark.anyio


async def test_buffered_fifo() -> None:
    ch = Channel[int](3)
    for i in range(3):
        await ch.send(i)
    assert len(ch) == 3
    with pytest.raises(WouldBlock):
        ch.send_nowait(9)
    assert [await ch.receive() for _ in range(3)] == [0, 1, 2]


async def test_rendezvous_send_waits_for_receiver() -> None:
    ch = Channel[int]()
    sent = anyio.Event()

    async def sender() -> None:
        await ch.send(1)
        sent.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        await anyio.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert await ch.receive() == 1
        await sent.wait()


async def test_close_drains_then_raises() -> None:
    ch = Channel[int](math.inf)
    await ch.send(1)
    ch.close()
    ch.close()
    assert await ch.receive() == 1
    with pytest.raises(ChannelDrained):
        await ch.receive()
    with pytest.raises(SendOnClosed):
        await ch.send(2)


async def test_cancelled_receive_takes_nothing() -> None:
    ch = Channel[int]()
    with anyio.move_on_after(0.01):
        await ch.receive()
    assert ch.statistics().waiting_receivers == 0


async def test_select_closed_receive_gives_marker() -> None:
    a = Channel[int]()
    a.close()
    sel = await select(None, a.receiving())
    assert sel.index == 1 and sel.value is CLOSED


async def test_select_timeout() -> None:
    a = Channel[int]()
    with pytest.raises(TimeoutError):
        await select(a.receiving(), timeout=0.01)
    assert a.statistics().waiting_receivers == 0
