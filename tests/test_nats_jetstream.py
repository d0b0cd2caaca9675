"""JetStream through our NATS client, on both backends, against a real
server: streams, publish with acks and message-id dedup, pull consumers,
fetch with expiry and heartbeats, ack/nak(delay)/in-progress/term; and
nats-py reading what we stored and the other way round."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import nats
import pytest
from nats_kit import NatsServer, nats_server

from actors._nats import JetStream, JetStreamError, PubAck, connect
from actors._nats._jetstream import JsMsg
from actors._nats._protocol import Msg

pytestmark = pytest.mark.anyio

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 10.0
NS = 1_000_000_000
T = TypeVar("T")


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStream]:
    async with connect(nats_server.url) as nc:
        yield JetStream(nc, timeout=WAIT)


async def test_streams_are_created_described_and_deleted(js: JetStream) -> None:
    info = await js.add_stream("ORDERS", ["orders.>"], duplicate_window=60 * NS)
    assert info["config"]["subjects"] == ["orders.>"] and info["state"]["messages"] == 0
    again = await js.add_stream("ORDERS", ["orders.>"], duplicate_window=60 * NS)
    assert again["config"]["name"] == "ORDERS"  # same configuration: not an error
    with pytest.raises(JetStreamError) as clash:
        await js.add_stream("OTHER", ["orders.eu"])  # overlapping subjects
    assert clash.value.code == 400
    await js.publish("orders.1", b"x")
    assert (await js.stream_info("ORDERS"))["state"]["messages"] == 1
    await js.delete_stream("ORDERS")
    with pytest.raises(JetStreamError) as missing:
        await js.stream_info("ORDERS")
    assert (missing.value.code, missing.value.err_code) == (404, 10059)


async def test_publish_is_acknowledged_and_deduplicated_by_message_id(js: JetStream) -> None:
    await js.add_stream("EVENTS", ["events.*"])
    first = await js.publish("events.a", b"1", msg_id="m-1", headers={"k": "v"})
    assert first == PubAck("EVENTS", 1, False)
    assert await js.publish("events.a", b"2", msg_id="m-2") == PubAck("EVENTS", 2, False)
    assert await js.publish("events.b", b"1 again", msg_id="m-1") == PubAck("EVENTS", 1, True)
    assert (await js.stream_info("EVENTS"))["state"]["messages"] == 2
    with pytest.raises(JetStreamError, match="no stream takes"):
        await js.publish("nowhere", b"")
    with pytest.raises(JetStreamError):
        await js.publish("events.c", b"", expected_stream="OTHER")


async def test_an_atomic_batch_is_stored_whole_or_not_at_all(js: JetStream) -> None:
    await js.add_stream("EVENTS", ["events.*"], allow_atomic=True, max_msg_size=300)
    await js.publish("events.a", b"before")
    items = [("events.a", b"1", {"Nats-Msg-Id": "m-1"}), ("events.b", b"2", None)]
    assert await js.publish_batch(items) == [PubAck("EVENTS", 2), PubAck("EVENTS", 3)]
    # One message too large: none of them is stored (10054 if it is the commit).
    big, small = ("events.a", b"x" * 400, None), ("events.a", b"3", None)
    for batch, err_code in (([small, big, small], 10176), ([small, big], 10054)):
        with pytest.raises(JetStreamError) as refused:
            await js.publish_batch(batch)
        assert refused.value.err_code == err_code
    # A message id seen before refuses the batch (a lone publish would be a duplicate).
    with pytest.raises(JetStreamError) as duplicate:
        await js.publish_batch(
            [("events.c", b"4", None), ("events.a", b"5", {"Nats-Msg-Id": "m-1"})]
        )
    assert duplicate.value.err_code == 10201
    assert (await js.stream_info("EVENTS"))["state"]["messages"] == 3
    await js.add_stream("PLAIN", ["plain.*"])
    with pytest.raises(JetStreamError) as disabled:
        await js.publish_batch([("plain.a", b"1", None)])
    assert disabled.value.err_code == 10174


async def test_a_pull_consumer_fetches_in_batches_and_acks(js: JetStream) -> None:
    await js.add_stream("JOBS", ["jobs.>"])
    for i in range(5):
        await js.publish(f"jobs.{i}", b"%d" % i, headers={"n": str(i)})
    await js.add_consumer("JOBS", "workers", ack_wait=30 * NS)
    first = await js.fetch("JOBS", "workers", 3, expires=WAIT)
    assert [m.data for m in first] == [b"0", b"1", b"2"]
    assert first[1].headers == {"n": "1"} and first[1].subject == "jobs.1"
    meta = first[2].metadata
    assert (meta.stream, meta.consumer, meta.stream_seq, meta.num_delivered) == (
        "JOBS",
        "workers",
        3,
        1,
    )
    assert meta.num_pending == 2
    for m in first:
        await m.ack()
    rest = await js.fetch("JOBS", "workers", 10, expires=0.3)  # 2 there: waits out expires
    assert [m.data for m in rest] == [b"3", b"4"]
    for m in rest:
        await m.ack_sync()
    assert await js.fetch("JOBS", "workers", 1, expires=0.2) == []  # nothing: not an error
    info = await js.consumer_info("JOBS", "workers")
    assert (info["num_pending"], info["num_ack_pending"]) == (0, 0)
    await js.delete_consumer("JOBS", "workers")
    with pytest.raises(JetStreamError) as missing:
        await js.consumer_info("JOBS", "workers")
    assert missing.value.err_code == 10014
    with pytest.raises(JetStreamError):
        await js.fetch("JOBS", "workers", 1, expires=1)


def test_a_fetched_message_parses_its_ack_subject_when_asked() -> None:
    # Only a JetStream ack subject makes a JsMsg; its metadata is parsed on
    # first use (a consumer that only acks never pays for it), then kept.
    with pytest.raises(JetStreamError, match="not a JetStream message"):
        JsMsg(None, Msg("jobs.1", b"", reply="_INBOX.x"))  # type: ignore[arg-type]
    odd = JsMsg(None, Msg("jobs.1", b"", reply="$JS.ACK.too.short"))  # type: ignore[arg-type]
    with pytest.raises(JetStreamError, match=r"too\.short"):
        odd.metadata  # noqa: B018
    assert repr(odd) == "<JsMsg 'jobs.1' $JS.ACK.too.short>"  # a repr never raises
    m = JsMsg(None, Msg("jobs.1", b"", reply="$JS.ACK.JOBS.w.2.7.5.1700000000000000000.3"))  # type: ignore[arg-type]
    meta = m.metadata
    assert (meta.stream, meta.consumer, meta.num_delivered, meta.stream_seq) == ("JOBS", "w", 2, 7)
    assert (meta.consumer_seq, meta.num_pending) == (5, 3)
    assert m.metadata is meta


async def test_nak_redelivers_at_once_or_after_its_delay_and_term_never(js: JetStream) -> None:
    await js.add_stream("WORK", ["work"])
    await js.publish("work", b"task")
    await js.add_consumer("WORK", "c", ack_wait=30 * NS)
    (m,) = await js.fetch("WORK", "c", expires=WAIT)
    await m.nak()
    (again,) = await js.fetch("WORK", "c", expires=WAIT)
    assert again.metadata.num_delivered == 2 and again.data == b"task"
    naked_at = anyio.current_time()
    await again.nak(delay=0.5)
    (third,) = await js.fetch("WORK", "c", expires=WAIT)
    assert anyio.current_time() - naked_at >= 0.5
    assert third.metadata.num_delivered == 3
    await third.term("poison")
    assert await js.fetch("WORK", "c", expires=0.3) == []
    assert (await js.consumer_info("WORK", "c"))["num_ack_pending"] == 0


async def test_in_progress_restarts_the_ack_wait(js: JetStream) -> None:
    await js.add_stream("SLOW", ["slow"])
    await js.publish("slow", b"long job")
    await js.add_consumer("SLOW", "c", ack_wait=2 * NS)
    (m,) = await js.fetch("SLOW", "c", expires=WAIT)
    taken = anyio.current_time()
    await anyio.sleep(1.0)  # the job runs; ack wait 2 s
    await m.in_progress()  # 2 s more from now: redelivery not before taken + 3 s
    await m._js._nc.flush()
    # Without the in-progress it would come back at taken + 2 s.
    late = await js.fetch("SLOW", "c", expires=max(0.1, taken + 2.6 - anyio.current_time()))
    assert late == []
    await m.ack_sync()
    assert (await js.consumer_info("SLOW", "c"))["num_ack_pending"] == 0


async def test_fetch_with_heartbeats_returns_empty_when_idle(js: JetStream) -> None:
    await js.add_stream("IDLE", ["idle"])
    await js.add_consumer("IDLE", "c")
    # Heartbeats of 0.5 s: two missed (1 s of silence) is a dead server, not
    # a loaded machine (0.1 s heartbeats were missed in CI at load 6).
    assert await js.fetch("IDLE", "c", 5, expires=2.0, heartbeat=0.5) == []
    await js.publish("idle", b"now")
    got = await js.fetch("IDLE", "c", 5, expires=2.0, heartbeat=0.5)
    assert [m.data for m in got] == [b"now"]
    with pytest.raises(ValueError, match="twice the heartbeat"):
        await js.fetch("IDLE", "c", expires=0.1, heartbeat=0.1)


async def test_nats_py_reads_what_we_stored_and_we_read_what_it_stored(
    nats_server: NatsServer,
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="nats-py")
    thread.start()

    async def on_their_loop(coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        return await anyio.to_thread.run_sync(future.result, WAIT)

    theirs = await on_their_loop(nats.connect(nats_server.url, allow_reconnect=False))
    try:
        async with connect(nats_server.url) as nc:
            js = JetStream(nc, timeout=WAIT)
            await js.add_stream("MIXED", ["mixed.>"])
            their_js = theirs.jetstream()

            # Ours to theirs, deduplicated on the way.
            await js.publish("mixed.ours", b"o1", msg_id="o-1", headers={"from": "us"})
            assert (await js.publish("mixed.ours", b"o1", msg_id="o-1")).duplicate

            async def their_pull() -> list[tuple[bytes, dict[str, str] | None]]:
                psub = await their_js.pull_subscribe("mixed.ours", "their-consumer")
                msgs = await psub.fetch(1, timeout=WAIT)
                for msg in msgs:
                    await msg.ack()
                return [(msg.data, msg.headers) for msg in msgs]

            got = await on_their_loop(their_pull())
            assert got == [(b"o1", {"from": "us", "Nats-Msg-Id": "o-1"})]

            # Theirs to ours, with their message id honoured by our dedup.
            async def their_publish() -> int:
                ack = await their_js.publish("mixed.theirs", b"t1", headers={"Nats-Msg-Id": "t-1"})
                return int(ack.seq)

            seq = await on_their_loop(their_publish())
            assert (await js.publish("mixed.theirs", b"t1", msg_id="t-1")).seq == seq
            await js.add_consumer("MIXED", "ours", filter_subject="mixed.theirs")
            (m,) = await js.fetch("MIXED", "ours", expires=WAIT)
            assert (m.data, m.metadata.stream_seq) == (b"t1", seq)
            await m.ack_sync()
    finally:
        await on_their_loop(theirs.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


async def test_a_server_without_jetstream_says_so(tmp_path: Path) -> None:
    with nats_server(tmp_path, jetstream=False) as server:
        async with connect(server.url) as nc:
            with pytest.raises(JetStreamError, match="not enabled") as caught:
                await JetStream(nc, timeout=WAIT).add_stream("S", ["s"])
            assert caught.value.code == 503
