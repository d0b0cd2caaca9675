"""What the JetStream store does beyond the shared behaviour tests
(test_durable.py and test_durable_push.py run on both stores): what it
configures on the server, redelivery timing in real time, stale settles and
dead letters written before the term under a dedup id, atomic batches."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import anyio
import pytest
from durable_kit import Opener, wipe
from nats_kit import NatsServer

import actors
from actors import durable
from actors._codec import dumps
from actors._nats._jetstream import BATCH_COMMIT, MSG_ID
from actors.durable._jsdead import H_SEQ, dlq_stream, dlq_subject

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def within(elapsed: float, delay: float) -> bool:
    """The promise: no earlier than the delay, at most 20% later."""
    return delay <= elapsed <= delay * 1.2


@pytest.fixture
async def system(shared_nats_server: NatsServer) -> AsyncIterator[actors.ActorSystem]:
    async with durable.JetStreamStore(shared_nats_server.url) as store:
        await wipe(store)
        async with actors.ActorSystem("jetstream-test", store=store) as system:
            yield system


def store_of(system: actors.ActorSystem) -> durable.JetStreamStore:
    store = system.streams.store
    assert isinstance(store, durable.JetStreamStore)
    return store


async def test_the_server_holds_the_streams_consumers_and_dead_letters(
    system: actors.ActorSystem,
) -> None:
    store = store_of(system)
    orders = await system.streams.create("ORDERS", subjects=["orders.>"], dedup_window=30)
    await orders.consumer("billing", ack_wait=2, max_deliver=3, backoff=[1.0, 4.0])
    info = await store.js.stream_info("ORDERS")
    config = info["config"]
    assert store.replicas == 1 and config["num_replicas"] == 1  # one server: R1
    assert config["subjects"] == ["orders.>", "_RQ.ORDERS.*"]
    assert config["duplicate_window"] == 30 * 10**9
    assert (await store.js.stream_info(dlq_stream("ORDERS")))["config"]["subjects"] == [
        "_DLQ.ORDERS.*"
    ]
    billing = await orders.open_consumer("billing", backoff=[1.0, 4.0])
    await billing.fetch(1)  # the first claim applies the backoff
    consumer = (await store.js.consumer_info("ORDERS", "billing"))["config"]
    assert consumer["max_deliver"] == -1  # ours buries; a limit there would strand
    # ack_wait + each delay; the server repeats the last, as the SQLite store does
    assert consumer["backoff"] == [3 * 10**9, 6 * 10**9]
    assert consumer["filter_subjects"] == ["orders.>", "_RQ.ORDERS.billing"]
    assert await system.streams.names() == ["ORDERS"]  # the dead letters' stream is hidden
    with pytest.raises(ValueError, match="DLQ_"):
        await system.streams.create("DLQ_X", subjects=["x"])
    with pytest.raises(ValueError, match="letters, digits"):
        await orders.consumer("billing.eu")


async def test_backoff_applies_to_naks_and_to_timeouts_in_real_time(
    system: actors.ActorSystem,
) -> None:
    # Real time, on a server and a machine shared with other work: a
    # redelivery earlier than its delay fails at once; one more than 20%
    # late is measured again (up to three times, each on a message of its
    # own), since a starved process is late whatever the store does.
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", ack_wait=1, max_deliver=5, backoff=[1.0, 2.0])
    attempts = []
    for attempt in range(3):
        await orders.publish(f"orders.{attempt}", "x")
        (m,) = await billing.fetch(1)
        waited = []
        for delay in (None, 1.5):  # the backoff's 1 s, then an explicit delay
            start = anyio.current_time()
            await m.nak(delay)
            (m,) = await billing.fetch(1, expires=10)
            waited.append(anyio.current_time() - start)
        await m.nak(0)  # at once: so the next delivery is there when fetch asks
        # The server times a redelivery from its delivery, which lies between
        # the fetch's call and its return: measured from the call, as a nak is.
        start = anyio.current_time()
        (m,) = await billing.fetch(1, expires=10)
        (m,) = await billing.fetch(1, expires=10)  # after a timeout: the ack wait, then 2 s
        waited.append(anyio.current_time() - start)
        assert m.deliveries == 5
        expected = [1.0, 1.5, 3.0]
        assert all(e >= d for e, d in zip(waited, expected, strict=True)), waited  # never early
        attempts.append(waited)
        if all(within(e, d) for e, d in zip(waited, expected, strict=True)):
            break
        await m.nak(error="late: measured again")  # its last delivery: dead-lettered
    else:
        raise AssertionError(f"redeliveries more than 20% late in three tries: {attempts}")
    assert await m.nak(error="still failing") == "dead"
    entry = (await orders.dead_letters("billing").browse())[-1]
    assert (entry.deliveries, entry.last_error) == (5, "still failing")


async def test_timeouts_alone_reach_the_dead_letters_and_late_acks_are_dropped(
    system: actors.ActorSystem,
) -> None:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", ack_wait=1, max_deliver=2)
    await orders.publish("orders.a", "x")
    (first,) = await billing.fetch(1)
    (second,) = await billing.fetch(1, expires=10)
    assert second.deliveries == 2
    assert await first.ack() is False  # the server would take it: dropped here
    assert await billing.fetch(1, expires=2) == []  # the third delivery is buried
    (entry,) = await orders.dead_letters("billing").browse()
    assert (entry.deliveries, entry.last_error) == (2, "no ack within ack_wait")
    assert await second.ack() is False  # its ack wait ran out too
    assert (await billing.info()).pending == 0


@pytest.mark.parametrize("mode", ["at-least-once", "idempotent"])
async def test_a_crash_between_the_effect_and_the_ack(
    system: actors.ActorSystem, mode: str
) -> None:
    # The effect goes to the application's own store (a list here; JetStream
    # has no transactions over it): once per delivery, or keyed by sequence.
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", ack_wait=1)
    await orders.publish("orders.a", "charge me")
    charges: list[int] = []
    charged: set[int] = set()

    def effect(m: durable.Message) -> None:
        if mode == "idempotent":
            charged.add(m.seq)
        else:
            charges.append(m.seq)

    (m,) = await billing.fetch(1)
    effect(m)  # and the handler crashes before its ack
    with anyio.fail_after(10):
        (again,) = await billing.fetch(1, expires=5)  # after the ack wait
    assert (again.seq, again.deliveries) == (m.seq, 2)
    effect(again)
    assert await again.ack() is True
    assert (charges, charged) == (([1, 1], set()) if mode == "at-least-once" else ([], {1}))
    assert await billing.fetch(1, expires=1.5) == []  # acked: never again
    assert (await billing.info()).pending == 0


async def test_a_dead_letter_written_twice_is_kept_once(system: actors.ActorSystem) -> None:
    # A crash after the entry was stored and before the term: the message
    # comes back, dies again and is written again under the same id.
    store = store_of(system)
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", max_deliver=1)
    await orders.publish("orders.a", "poison")
    (m,) = await billing.fetch(1)
    headers: dict[str, Any] = {MSG_ID: "ORDERS:1:billing", H_SEQ: "1"}
    headers |= {
        "Actors-Subject": "orders.a",
        "Actors-Time": "0.0",
        "Actors-Deliveries": "1",
        "Actors-Error": "first write",
        "Actors-First": "0.0",
        "Actors-Last": "0.0",
        "Actors-Dead": "0.0",
    }
    await store.js.publish(dlq_subject("ORDERS", "billing"), dumps("poison"), headers=headers)
    assert await m.nak(error="second write") == "dead"
    assert await orders.dead_letters("billing").count() == 1
    assert (await billing.info()).pending == 0


async def test_the_live_page_reads_consumers_on_jetstream(system: actors.ActorSystem) -> None:
    from actors.observe import durable_snapshot

    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", max_deliver=1)
    await orders.publish_many([("orders.a", i) for i in range(4)])
    first, second = await billing.fetch(2)
    await first.ack()
    await second.term("bad")
    await billing.fetch(1)  # in flight
    snapshot = await durable_snapshot(system)
    assert snapshot is not None and snapshot["error"] is None
    (row,) = snapshot["consumers"]
    assert row == {
        "stream": "ORDERS",
        "consumer": "billing",
        "pending": 2,
        "in_flight": 1,
        "ack_floor": 2,
        "last_seq": 4,
        "dead_letters": 1,
    }


async def messages_in(store: durable.JetStreamStore, stream: str) -> int:
    return int((await store.js.stream_info(stream))["state"]["messages"])


async def test_an_atomic_batch_gets_consecutive_sequences_on_both_stores(
    open_store: Opener,
) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish("orders.a", 0)
        batch: list[tuple[str, Any] | tuple[str, Any, str | None]] = [
            ("orders.a", 1, "o-1"),
            ("orders.b", 2),
            ("orders.a", 3),
        ]
        assert await orders.publish_many(batch, atomic=True) == [2, 3, 4]
        billing = await orders.consumer("billing")
        got = await billing.fetch(10)
        assert [(m.seq, m.subject, m.data) for m in got] == [
            (1, "orders.a", 0),
            (2, "orders.a", 1),
            (3, "orders.b", 2),
            (4, "orders.a", 3),
        ]


async def test_an_atomic_batch_with_a_refused_message_stores_none(
    system: actors.ActorSystem,
) -> None:
    store = store_of(system)
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    config = dict((await store.js.stream_info("ORDERS"))["config"])
    assert config["allow_atomic"] is True
    # A stream made before atomic batches (or by another tool), whose
    # messages may be 1000 bytes at most: the store allows atomic batches.
    config |= {"allow_atomic": False, "max_msg_size": 1000}
    await store.js.update_stream(config.pop("name"), config.pop("subjects"), **config)
    batch = [("orders.a", "small"), ("orders.b", "x" * 2000), ("orders.c", "small")]
    with pytest.raises(durable.DurableError, match="a message of it was refused"):
        await orders.publish_many(batch, atomic=True)
    assert await messages_in(store, "ORDERS") == 0
    # Pipelined, the others are stored each by itself.
    with pytest.raises(ValueError, match="maximum"):
        await orders.publish_many(batch)
    assert await messages_in(store, "ORDERS") == 2
    # A msg_id stored before refuses the whole batch; its other ids are free.
    await orders.publish("orders.a", "first", msg_id="a-1")
    with pytest.raises(durable.DurableError, match="msg_ids was published before"):
        await orders.publish_many([("orders.b", 1, "b-1"), ("orders.a", 2, "a-1")], atomic=True)
    assert await messages_in(store, "ORDERS") == 3
    assert await orders.publish_many([("orders.b", 1, "b-1")], atomic=True) == [4]


async def test_an_atomic_batch_cut_before_its_commit_stores_none(
    system: actors.ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(system)
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    client = store.js._nc
    real = client.publish
    at_commit = anyio.Event()
    sent = 0

    async def publish(subject: str, payload: bytes = b"", **options: Any) -> None:
        nonlocal sent
        if BATCH_COMMIT in (options.get("headers") or {}):
            at_commit.set()
            await anyio.sleep_forever()  # the connection hangs: cancelled here
        sent += 1
        await real(subject, payload, **options)

    monkeypatch.setattr(client, "publish", publish)
    batch = [("orders.a", i) for i in range(5)]
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(orders.publish_many, batch, atomic=True))
        await at_commit.wait()
        tg.cancel_scope.cancel()
    monkeypatch.undo()
    assert sent == 4  # on the server, staged
    # The stream handles its messages in order: once this one is stored,
    # the four before it were handled.
    assert await orders.publish("orders.z", "after") == 1
    assert await messages_in(store, "ORDERS") == 1
    assert await orders.publish_many(batch, atomic=True) == [2, 3, 4, 5, 6]


async def test_what_an_atomic_batch_cannot_do_is_refused_before_sending(
    system: actors.ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(system)
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    with pytest.raises(ValueError, match="at most 1000 messages"):
        await orders.publish_many([("orders.a", i) for i in range(1001)], atomic=True)
    assert len(await orders.publish_many([("orders.a", i) for i in range(1000)], atomic=True)) == (
        1000
    )
    monkeypatch.setitem(store.js._nc._info, "version", "2.11.9")
    with pytest.raises(durable.DurableError, match="needs nats-server 2\\.12 or later"):
        await orders.publish_many([("orders.a", 1)], atomic=True)
    assert await messages_in(store, "ORDERS") == 1000


class _LateCount:
    """The store's JetStream API, but the first pulls without a wait after
    ``lag()`` find nothing, as in the moment after a publish's
    acknowledgement before the server counted it for its consumers; it
    counts pulls and consumer infos."""

    def __init__(self, js: Any) -> None:
        self._js = js
        self.empty = 0  # pulls without a wait still to come back empty
        self.pulls = 0
        self.infos = 0

    def lag(self, pulls: int) -> None:
        self.empty = pulls

    async def counting(self, call: Awaitable[Any]) -> tuple[Any, tuple[int, int]]:
        """What ``call`` returns, and the pulls and consumer infos it made."""
        pulls, infos = self.pulls, self.infos
        result = await call
        return result, (self.pulls - pulls, self.infos - infos)

    async def fetch(self, *args: Any, no_wait: bool = False, **kwargs: Any) -> Any:
        self.pulls += 1
        if no_wait and self.empty:
            self.empty -= 1
            return kwargs.get("into", [])
        return await self._js.fetch(*args, no_wait=no_wait, **kwargs)

    async def consumer_info(self, *args: Any) -> Any:
        self.infos += 1
        return await self._js.consumer_info(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)


@pytest.fixture
def late(system: actors.ActorSystem, monkeypatch: pytest.MonkeyPatch) -> _LateCount:
    store = store_of(system)
    late = _LateCount(store.js)
    monkeypatch.setattr(store, "_js", late)
    return late


async def test_a_fetch_right_after_a_publish_gets_it_though_the_server_counts_late(
    system: actors.ActorSystem, late: _LateCount
) -> None:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", deliver="new")
    assert await billing.fetch(10) == []
    await orders.publish("orders.eu", 1)
    late.lag(3)
    got, asked = await late.counting(billing.fetch(10))
    assert [m.data for m in got] == [1]
    # Its info said it had not been past the publish: a pull that waited for
    # the first message, then one without a wait for the other nine.
    assert asked == (3, 1)
    await billing.ack(got)
    late.lag(0)
    # Nothing new published: an empty fetch is one pull, without an info.
    assert await late.counting(billing.fetch(10)) == ([], (1, 0))


async def test_an_empty_fetch_asks_no_more_when_nothing_it_takes_was_published(
    system: actors.ActorSystem, late: _LateCount
) -> None:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    eu = await orders.consumer("eu", filter="orders.eu.>")
    assert await eu.fetch(10) == []  # the first claim also reads the consumer's backoff
    await orders.publish("orders.us.created", 1)  # not eu's
    assert await late.counting(eu.fetch(10)) == ([], (1, 0))
    # Opened by name (another process, say), it knows its filter the same.
    store_of(system)._consumers.clear()
    eu = await orders.open_consumer("eu")
    assert await eu.fetch(10) == []  # reads the backoff
    await orders.publish("orders.us.created", 2)
    assert await late.counting(eu.fetch(10)) == ([], (1, 0))


async def test_an_empty_fetch_after_another_took_the_publish_pulls_once(
    system: actors.ActorSystem, late: _LateCount
) -> None:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing")
    await orders.publish("orders.eu", 1)
    (m,) = await billing.fetch(10)  # another process's, say: the server has been past it
    await m.ack()
    assert await late.counting(billing.fetch(10)) == ([], (1, 1))
    assert await late.counting(billing.fetch(10)) == ([], (1, 0))  # once per publish


async def one_dead_letter(system: actors.ActorSystem) -> durable.Consumer:
    """Consumer ``billing`` of stream ``ORDERS``, with ``"poison"``
    (``orders.eu``, sequence 1) in its dead-letter queue, nak'ed once with
    "bad order"."""
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing", max_deliver=1)
    await orders.publish("orders.eu", "poison")
    (m,) = await billing.fetch(10)
    await m.nak(error="bad order")
    return billing


async def test_a_fetch_right_after_a_requeue_gets_it_though_the_server_counts_late(
    system: actors.ActorSystem, late: _LateCount
) -> None:
    billing = await one_dead_letter(system)
    assert await billing.fetch(10) == []
    assert await billing.stream.dead_letters("billing").requeue(1) is True
    late.lag(2)
    (again,) = await billing.fetch(10)
    assert (again.seq, again.data, again.deliveries) == (1, "poison", 1)


async def test_the_command_line_browses_and_requeues_a_dead_letter_queue(
    system: actors.ActorSystem, shared_nats_server: NatsServer
) -> None:
    billing = await one_dead_letter(system)

    async def cli(*args: str) -> tuple[int, str, str]:
        done = await anyio.run_process(
            [sys.executable, "-m", "actors", "--jetstream", shared_nats_server.url, *args],
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    code, out, err = await cli("dlq", "ORDERS", "billing")
    assert code == 0, err
    assert out.splitlines() == [
        "ORDERS/billing  entries 1",
        "  1  orders.eu  deliveries 1  bad order  'poison'",
    ]
    assert await cli("requeue", "ORDERS", "billing", "1") == (0, "requeued 1: 1\n", "")
    (again,) = await billing.fetch(10, expires=5)
    assert (again.seq, again.data, again.deliveries) == (1, "poison", 1)


async def test_a_fetch_cancelled_between_its_pulls_gives_back_uncounted(
    system: actors.ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What its waiting pull got was nak'ed but not noted as given back: the
    # next delivery counted it (deliveries 2), and so did the server's count.
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    billing = await orders.consumer("billing")
    js = store_of(system).js
    real_fetch = js.fetch
    waiting, second = anyio.Event(), anyio.Event()

    async def watched(*args: Any, **kwargs: Any) -> Any:
        if "expires" in kwargs:  # the pull that waits for the first message
            waiting.set()
        elif kwargs.get("no_wait") and kwargs.get("into"):  # the pull for the rest
            second.set()
            await anyio.sleep_forever()
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(js, "fetch", watched)
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(billing.fetch, 2, expires=5))
        with anyio.fail_after(10):
            await waiting.wait()
            await orders.publish_many([("orders.a", i) for i in range(2)])
            await second.wait()
        tg.cancel_scope.cancel()
    monkeypatch.setattr(js, "fetch", real_fetch)
    got = await billing.fetch(2, expires=5)
    assert [(m.data, m.deliveries) for m in got] == [(0, 1), (1, 1)]
