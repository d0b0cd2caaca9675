"""Our NATS client and nats-py (the reference client, asyncio only) against
the same server: each reads what the other wrote (messages, headers, queue
groups, request/reply, no responders). nats-py runs on an asyncio loop of its
own in a thread, so our client is tested on both backends beside it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio
import nats
import nats.aio.client
import nats.aio.msg
import nats.errors
import pytest
from nats_kit import NatsServer

from actors._nats import NoResponders, connect

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 10.0


class AsyncioThread:
    """An asyncio loop in a thread; `run` awaits a coroutine made on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats-py")

    async def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return await anyio.to_thread.run_sync(future.result, WAIT)


@pytest.fixture
def nats_py(nats_server: NatsServer) -> Iterator[tuple[AsyncioThread, nats.aio.client.Client]]:
    """A nats-py client connected to the test's server, on its own loop."""
    side = AsyncioThread()
    side.thread.start()
    try:
        client = asyncio.run_coroutine_threadsafe(
            nats.connect(nats_server.url, allow_reconnect=False), side.loop
        ).result(WAIT)
        try:
            yield side, client
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), side.loop).result(WAIT)
    finally:
        side.loop.call_soon_threadsafe(side.loop.stop)
        side.thread.join(WAIT)
        side.loop.close()


async def test_nats_py_reads_what_we_publish(
    nats_server: NatsServer, nats_py: tuple[AsyncioThread, nats.aio.client.Client]
) -> None:
    side, theirs = nats_py
    sub = await side.run(lambda: theirs.subscribe("to.them.>"))
    await side.run(theirs.flush)
    async with connect(nats_server.url) as ours:
        await ours.publish("to.them.plain", b"hello")
        await ours.publish("to.them.headed", b"with", headers={"Nats-Msg-Id": "1", "a": "b c"})
        await ours.publish("to.them.reply", b"", reply="back.here")
        await ours.flush()
    got: list[nats.aio.msg.Msg] = [await side.run(lambda: sub.next_msg(WAIT)) for _ in range(3)]
    assert [(m.subject, m.data) for m in got] == [
        ("to.them.plain", b"hello"),
        ("to.them.headed", b"with"),
        ("to.them.reply", b""),
    ]
    assert not got[0].headers
    assert got[1].headers == {"Nats-Msg-Id": "1", "a": "b c"}
    assert got[2].reply == "back.here"


async def test_we_read_what_nats_py_publishes(
    nats_server: NatsServer, nats_py: tuple[AsyncioThread, nats.aio.client.Client]
) -> None:
    side, theirs = nats_py
    async with connect(nats_server.url) as ours:
        sub = await ours.subscribe("to.us.*")
        grouped = [await ours.subscribe("to.us.work", queue="q") for _ in range(2)]
        await ours.flush()

        async def publish_all() -> None:
            await theirs.publish("to.us.plain", b"hi")
            await theirs.publish("to.us.headed", b"h", headers={"traceparent": "00-ab-cd-01"})
            for i in range(10):
                await theirs.publish("to.us.work", b"%d" % i)
            await theirs.flush()

        await side.run(publish_all)
        first, second = await sub.next_msg(WAIT), await sub.next_msg(WAIT)
        assert (first.data, first.headers) == (b"hi", None)
        assert (second.data, second.headers) == (b"h", {"traceparent": "00-ab-cd-01"})
        await ours.flush()
        assert sorted(int(m.data) for g in grouped for m in g._buffer) == list(range(10))


async def test_requests_both_ways(
    nats_server: NatsServer, nats_py: tuple[AsyncioThread, nats.aio.client.Client]
) -> None:
    side, theirs = nats_py

    async def their_responder(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"theirs:" + msg.data)

    await side.run(lambda: theirs.subscribe("their.svc", cb=their_responder))
    await side.run(theirs.flush)
    async with connect(nats_server.url) as ours, anyio.create_task_group() as tg:
        reply = await ours.request("their.svc", b"q", timeout=WAIT, headers={"k": "v"})
        assert reply.data == b"theirs:q"

        sub = await ours.subscribe("our.svc")
        await ours.flush()

        async def our_responder() -> None:
            async for msg in sub:
                await ours.publish(msg.reply, b"ours:" + msg.data, headers=msg.headers)

        tg.start_soon(our_responder)
        answer: Any = await side.run(
            lambda: theirs.request("our.svc", b"x", timeout=WAIT, headers={"id": "7"})
        )
        assert answer.data == b"ours:x" and answer.headers == {"id": "7"}

        # No responders, seen the same way by both.
        with pytest.raises(NoResponders):
            await ours.request("nobody", b"", timeout=WAIT)
        with pytest.raises(nats.errors.NoRespondersError):
            await side.run(lambda: theirs.request("nobody", b"", timeout=WAIT))
        tg.cancel_scope.cancel()
