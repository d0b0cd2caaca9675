"""The connection: envelopes arrive in order, bursts are batched into few frames,
the queue pushes back, and closing and cancelling leave what they say."""

from __future__ import annotations

import threading

import anyio
import pytest
from wire_kit import (
    PairFactory,
    direct_pair,
    handshake_pair,
    memory_pair,
    socketpair,
    tcp_pair,
    tell,
    wire_pair,
)

from actors import WouldBlock
from actors._codec import dumps, loads
from actors._envelope import Envelope, Kind
from actors._exceptions import UnpicklableMessage
from actors._mac import SMALL_PAYLOAD
from actors._wire import WireConnection

pytestmark = pytest.mark.anyio

PAIRS = [
    pytest.param(socketpair, id="socketpair"),
    pytest.param(direct_pair, id="direct"),
    pytest.param(tcp_pair, id="tcp"),
]


@pytest.mark.parametrize("make", PAIRS)
async def test_many_envelopes_arrive_in_order_both_ways(make: PairFactory) -> None:
    n = 5000
    async with wire_pair(make) as (a, b):

        async def send_all(wire: WireConnection, prefix: str) -> None:
            for i in range(n):
                await wire.send(tell(f"/user/{prefix}", dumps((prefix, i)), n=str(i)))

        async def receive_all(wire: WireConnection, prefix: str) -> None:
            for i in range(n):
                envelope = await wire.receive()
                assert envelope.to == f"/user/{prefix}"
                assert envelope.headers == {"n": str(i)}
                assert loads(envelope.body) == (prefix, i)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_all, a, "ab")
            tg.start_soon(send_all, b, "ba")
            tg.start_soon(receive_all, b, "ab")
            tg.start_soon(receive_all, a, "ba")
        await a.flush()  # the writer counts a frame once the stream took it
        stats = a.statistics()
        assert stats.envelopes_sent == stats.envelopes_received == n


async def test_each_sender_keeps_its_order_among_concurrent_senders() -> None:
    n, senders = 1000, 4
    async with wire_pair() as (a, b):

        async def send_all(k: int) -> None:
            for i in range(n):
                await a.send(tell(f"/user/{k}", dumps(i)))

        async with anyio.create_task_group() as tg:
            for k in range(senders):
                tg.start_soon(send_all, k)
            last = dict.fromkeys(range(senders), -1)
            for _ in range(n * senders):
                envelope = await b.receive()
                k, i = int(envelope.to.rsplit("/", 1)[1]), loads(envelope.body)
                assert i == last[k] + 1
                last[k] = i


async def test_every_field_and_a_large_body_cross() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: tagged with HMAC-SHA256, not BLAKE2b
    assert len(big) > SMALL_PAYLOAD
    sent = [
        Envelope(Kind.ASK, "/user/a", "/user/b", 7, {"traceparent": "00-ab-cd-01"}, b"q"),
        Envelope(Kind.REPLY, "/user/b", "", 7, {}, big),
        Envelope(Kind.CANCEL, "/user/a", "/user/b", 8, {}, b""),
        Envelope(Kind.SIGNAL, "/system", "", 0, {"deliveries": "2"}, b"s"),
    ]
    async with wire_pair() as (a, b):
        for envelope in sent:
            await a.send(envelope)
        assert [await b.receive() for _ in sent] == sent


async def test_a_burst_of_tells_becomes_few_frames() -> None:
    n = 2000
    async with wire_pair() as (a, b):
        for i in range(n):
            await a.send(tell("/user/x", dumps(i)))
        await a.flush()
        assert [loads((await b.receive()).body) for _ in range(n)] == list(range(n))
        sent, received = a.statistics(), b.statistics()
    assert sent.envelopes_sent == n
    assert sent.frames_sent <= n // 100, sent
    assert received.frames_received == sent.frames_sent


async def test_a_batch_is_bounded_by_the_batch_size() -> None:
    body = bytes(1000)
    async with wire_pair(batch_size=4096) as (a, b):
        for _ in range(40):
            a.send_nowait(tell("/user/x", body))
        await a.flush()
        for _ in range(40):
            await b.receive()
        frames = a.statistics().frames_sent
    # About 1 KiB each, at most 4 KiB a frame: at least 10 frames, not 40.
    assert 10 <= frames < 40


async def test_an_envelope_larger_than_a_batch_goes_alone() -> None:
    async with wire_pair(batch_size=100) as (a, b):
        await a.send(tell("/user/x", bytes(1000)))
        assert len((await b.receive()).body) == 1000


async def test_an_envelope_larger_than_a_frame_fails_in_the_sender() -> None:
    async with wire_pair(batch_size=1000, max_frame=1000) as (a, b):
        with pytest.raises(ValueError, match="more than a frame holds"):
            await a.send(tell("/user/x", bytes(2000)))
        await a.send(tell("/user/x", b"small"))
        await a.flush()
        assert (await b.receive()).body == b"small"
        assert a.statistics().envelopes_sent == 1


async def test_an_unpicklable_message_fails_in_the_sender_and_nothing_is_sent() -> None:
    async with wire_pair() as (a, b):
        with pytest.raises(UnpicklableMessage, match="lock"):
            await a.send(tell("/user/x", dumps({"lock": threading.Lock()})))
        with pytest.raises(ValueError, match="NUL"):
            await a.send(tell("/user/x", dumps("ok"), bad="\0"))
        await a.send(tell("/user/x", dumps("after")))
        await a.flush()
        assert loads((await b.receive()).body) == "after"
        assert a.statistics().frames_sent == 1
        assert b.statistics().envelopes_received == 1


async def test_send_waits_for_room_and_send_nowait_refuses() -> None:
    left, right = await memory_pair()  # the peer reads nothing until told
    session_a, session_b = await handshake_pair(left, right)
    async with (
        WireConnection(left, session_a, max_pending=300) as a,
        WireConnection(right, session_b) as b,
    ):
        # The writer takes the first one and blocks sending it; two more fill the queue.
        await a.send(tell("/user/x", bytes(200)))
        await anyio.wait_all_tasks_blocked()
        assert a.statistics().pending_envelopes == 0
        a.send_nowait(tell("/user/x", bytes(200)))
        a.send_nowait(tell("/user/x", bytes(200)))
        assert a.statistics().pending_envelopes == 2
        with pytest.raises(WouldBlock, match="wait with send"):
            a.send_nowait(tell("/user/x", b"nowait"))

        # A send that is cancelled while waiting for room queued nothing.
        with anyio.CancelScope() as scope:
            scope.cancel()
            await a.send(tell("/user/x", b"cancelled"))
        assert a.statistics().pending_envelopes == 2

        async def blocked_send() -> None:
            await a.send(tell("/user/x", b"last"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked_send)
            await anyio.wait_all_tasks_blocked()
            assert a.statistics().pending_envelopes == 2  # still waiting for room
            bodies = [(await b.receive()).body for _ in range(4)]
        assert bodies == [bytes(200)] * 3 + [b"last"]


async def test_a_cancelled_receive_takes_nothing() -> None:
    async with wire_pair() as (a, b):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await b.receive()
        async with anyio.create_task_group() as tg:

            async def receive_once() -> None:
                await b.receive()

            tg.start_soon(receive_once)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        await a.send(tell("/user/x", b"one"))
        await a.send(tell("/user/x", b"two"))
        assert (await b.receive()).body == b"one"
        assert (await b.receive()).body == b"two"


async def test_receive_nowait_takes_only_what_is_buffered() -> None:
    async with wire_pair() as (a, b):
        with pytest.raises(WouldBlock, match="wait with receive"):
            b.receive_nowait()
        for i in range(3):
            a.send_nowait(tell("/user/x", dumps(i)))
        assert loads((await b.receive()).body) == 0  # one frame brought all three
        assert [loads(b.receive_nowait().body) for _ in range(2)] == [1, 2]
        with pytest.raises(WouldBlock):
            b.receive_nowait()


async def test_two_receivers_at_once_are_refused() -> None:
    async with wire_pair() as (_, b), anyio.create_task_group() as tg:

        async def receive_once() -> None:
            await b.receive()

        tg.start_soon(receive_once)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await b.receive()
        tg.cancel_scope.cancel()


async def test_leaving_normally_sends_what_is_queued_then_ends_the_stream() -> None:
    a_stream, b_stream = await socketpair()
    session_a, session_b = await handshake_pair(a_stream, b_stream)
    async with WireConnection(b_stream, session_b) as b:
        async with WireConnection(a_stream, session_a) as a:
            for i in range(1000):
                a.send_nowait(tell("/user/x", dumps(i)))
        assert [loads(envelope.body) async for envelope in b] == list(range(1000))
        with pytest.raises(anyio.EndOfStream):
            await b.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await a.send(tell("/user/x", b""))


async def test_leaving_with_an_error_drops_what_is_queued() -> None:
    left, right = await memory_pair()
    session_a, session_b = await handshake_pair(left, right)
    async with WireConnection(right, session_b) as b:
        with pytest.raises(RuntimeError, match="boom"):
            async with WireConnection(left, session_a) as a:
                a.send_nowait(tell("/user/x", b"in flight"))
                a.send_nowait(tell("/user/x", b"queued"))
                await anyio.wait_all_tasks_blocked()  # the writer blocks on the first
                raise RuntimeError("boom")
        assert a.statistics().envelopes_sent == 0
        with pytest.raises((anyio.EndOfStream, anyio.IncompleteRead)):
            await b.receive()


async def test_a_broken_stream_fails_the_senders() -> None:
    async with wire_pair() as (a, b):
        await b._stream.aclose()  # the peer's end goes away
        with pytest.raises(anyio.BrokenResourceError):
            for _ in range(10_000):  # until the writer has seen the broken stream
                await a.send(tell("/user/x", bytes(1000)))
                await a.flush()


async def test_a_connection_is_entered_once() -> None:
    async with wire_pair() as (a, _):
        with pytest.raises(RuntimeError, match="only once"):
            await a.__aenter__()


@pytest.mark.parametrize(
    "option, value",
    [("batch_size", 0), ("max_pending", -1), ("max_frame", 1.5), ("max_frame", 2**33)],
)
async def test_bad_sizes_are_refused(option: str, value: object) -> None:
    a, b = await socketpair()
    async with a, b:
        session, _ = await handshake_pair(a, b)
        with pytest.raises(ValueError, match=r"max_frame|batch_size|max_pending"):
            WireConnection(a, session, **{option: value})  # type: ignore[arg-type]


# -- writing from the sender's task (actors._socket.SocketStream) ---------------


@pytest.mark.parametrize(("make", "now"), [(direct_pair, True), (socketpair, False)])
async def test_an_ask_or_a_reply_is_written_by_its_sender_when_the_stream_allows(
    make: PairFactory, now: bool
) -> None:
    async with wire_pair(make) as (a, b):
        await anyio.wait_all_tasks_blocked()  # the writer is parked
        await a.send_now(tell("/user/x", b"ask"))
        # No await since: only the sender's own task can have written it.
        assert (a.statistics().frames_sent == 1) is now
        a.send_urgent(tell("/user/x", b"reply"))
        assert (a.statistics().frames_sent == 2) is now
        assert [(await b.receive()).body for _ in range(2)] == [b"ask", b"reply"]


async def test_tells_are_left_to_the_writer_to_batch() -> None:
    async with wire_pair(direct_pair) as (a, b):
        for i in range(100):
            await a.send(tell("/user/x", dumps(i)))
        assert a.statistics().frames_sent == 0
        assert [loads((await b.receive()).body) for _ in range(100)] == list(range(100))
        assert a.statistics().frames_sent < 100


async def test_a_frame_too_big_to_write_at_once_is_finished_by_the_writer_in_order() -> None:
    big = bytes(range(256)) * (16 * 1024)  # 4 MiB: more than a socket buffer
    async with wire_pair(direct_pair) as (a, b):
        await anyio.wait_all_tasks_blocked()  # the writer is parked
        a.send_urgent(tell("/user/x", big))
        assert a.statistics().pending_envelopes == 0  # taken, partly written
        await a.send(tell("/user/x", b"after"))
        a.send_urgent(tell("/user/x", b"urgent after"))
        bodies = [(await b.receive()).body for _ in range(3)]
        assert bodies == [big, b"after", b"urgent after"]
        await a.flush()
        assert a.statistics().envelopes_sent == 3


async def test_take_decodes_whole_checked_frames_and_takes_nothing_else() -> None:
    # WireConnection.take, for a reader that hands frames over in a call
    # (a cluster link's LinkStream.inline): whole frames in sequence with
    # their MAC, and only when nothing is buffered before them; else None,
    # and the frame is still there for receive.
    from wire_kit import receive_frame

    left, right = await socketpair()
    session_a, session_b = await handshake_pair(left, right)
    taker = WireConnection(right, session_b)  # never entered: take alone reads
    async with WireConnection(left, session_a) as a:
        frames = []
        for i in range(3):
            await a.send(tell("/user/x", dumps(i)))
            await a.flush()
            frames.append(await receive_frame(right))
        first, second, third = frames
        tampered = first[:-1] + bytes([first[-1] ^ 1])

        def bodies(data: bytes) -> list[int] | None:
            envelopes = taker.take(memoryview(data))
            return None if envelopes is None else [loads(e.body) for e in envelopes]

        assert bodies(first[:-1]) is None  # not a whole frame
        assert bodies(second) is None  # out of sequence
        assert bodies(tampered) is None  # its MAC fails
        assert bodies(first + third) is None  # the second of them out of sequence
        assert bodies(first) == [0]
        # Envelopes put back come first: take refuses until they are received.
        taker.put_back([tell("/user/x", dumps("back"))])
        assert bodies(second) is None
        assert loads(taker.receive_nowait().body) == "back"
        assert bodies(second + third) == [1, 2]
        assert taker.statistics().frames_received == 3
    await right.aclose()
