"""A cluster link's byte stream (``actors._cluster_stream.LinkStream``) on
its own, with a stand-in for the NATS client: data taken inline by the
client's reader, the credit given back for it, and the poke that hands
frames back to the reading task."""

from __future__ import annotations

import struct

import anyio
import pytest

from actors._cluster_stream import CREDIT, DATA, LinkStream

pytestmark = pytest.mark.anyio

_U64 = struct.Struct("!Q")


class Client:
    """What a LinkStream uses of the NATS client; ``direct`` says whether
    ``try_publish`` takes what it is given (else the caller must wait)."""

    max_payload = 1 << 20
    is_closed = False

    def __init__(self) -> None:
        self.direct = True
        self.sent_direct: list[bytes] = []
        self.published: list[bytes] = []

    def try_publish(self, subject: str, payload: bytes) -> bool:
        if self.direct:
            self.sent_direct.append(payload)
        return self.direct

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append(payload)


def data(sequence: int, body: bytes) -> bytes:
    return DATA + _U64.pack(sequence) + body


def credit(amount: int) -> bytes:
    return CREDIT + _U64.pack(amount)


async def test_data_taken_inline_while_the_reader_waits_gives_its_credit_back() -> None:
    client = Client()
    stream = LinkStream(client, "link", 8192, 8192, "b")  # type: ignore[arg-type]
    taken: list[bytes] = []
    accept = True

    def inline(chunk: memoryview) -> bool:
        if accept:
            taken.append(bytes(chunk))
        return accept

    stream.inline = inline
    received: list[bytes] = []
    async with anyio.create_task_group() as tg:

        async def read() -> None:
            while True:
                received.append(await stream.receive())

        # Not waiting yet: fed data is buffered for the reader, not taken inline.
        stream.feed(data(0, b"a" * 1000))
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        assert received == [b"a" * 1000] and taken == []
        # Waiting: taken inline. Credit goes back once a quarter window is read.
        stream.feed(data(1, b"b" * 1000))
        assert taken == [b"b" * 1000] and client.sent_direct == []
        stream.feed(data(2, b"c" * 1000))
        assert taken == [b"b" * 1000, b"c" * 1000]
        assert client.sent_direct == [credit(3000)]
        # The client cannot take the credit now: the waiting reader sends it.
        client.direct = False
        for sequence in range(3, 6):
            stream.feed(data(sequence, b"d" * 1000))
        assert client.published == []
        await anyio.wait_all_tasks_blocked()
        assert client.published == [credit(3000)]
        # What inline refuses is buffered for the reader, in order.
        accept = False
        stream.feed(data(6, b"f" * 10))
        await anyio.wait_all_tasks_blocked()
        assert received[-1] == b"f" * 10
        # A poke makes the waiting receive return no bytes, once.
        stream.poke()
        await anyio.wait_all_tasks_blocked()
        assert received[-1] == b""
        tg.cancel_scope.cancel()
    assert len(received) == 3


async def test_a_poke_before_data_is_taken_is_cleared_by_the_data() -> None:
    client = Client()
    stream = LinkStream(client, "link", 8192, 8192, "b")  # type: ignore[arg-type]
    stream.poke()
    stream.feed(data(0, b"x"))
    assert await stream.receive() == b"x"
    with anyio.move_on_after(0.05) as waited:  # nothing more: it waits
        await stream.receive()
    assert waited.cancelled_caught
