"""Durable streams on the SQLite store: publish, consumers, acks, dead letters,
offsets, retention and bad input (real time; timing lives in
test_durable_timing.py, crashes in test_durable_crash.py)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from durable_kit import Opener, opened

import actors
from actors import durable

pytestmark = pytest.mark.anyio


async def test_publish_returns_the_sequence_and_dedups_by_msg_id(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        assert await orders.publish("orders.eu.created", {"id": 1}, msg_id="o-1") == 1
        assert await orders.publish("orders.eu.created", {"id": 1}, msg_id="o-1") == 1
        assert await orders.publish("orders.eu.created", {"id": 2}) == 2
        assert await orders.publish_many(
            [("orders.us.created", 3, "o-3"), ("orders.us.created", 3, "o-3"), ("orders.x", 4)]
        ) == [3, 3, 4]
        assert await system.streams.publish("orders.eu.paid", 5, msg_id="o-1") == 1
        info = await orders.info()
        assert (info.messages, info.last_seq) == (4, 4)
        billing = await orders.consumer("billing")
        got = await billing.fetch(10)
        assert [(m.seq, m.subject, m.data, m.deliveries) for m in got] == [
            (1, "orders.eu.created", {"id": 1}, 1),
            (2, "orders.eu.created", {"id": 2}, 1),
            (3, "orders.us.created", 3, 1),
            (4, "orders.x", 4, 1),
        ]


async def test_messages_survive_a_restart_and_offsets_resume(open_store: Opener) -> None:
    async with open_store("FULL") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish_many([("orders.a", i) for i in range(10)])
        billing = await orders.consumer("billing")
        got = await billing.fetch(4)
        await billing.ack(got[:3])  # 4 stays unacked: in flight when we stop
    async with open_store("FULL") as system:
        orders = await system.streams.get("ORDERS")
        billing = await orders.consumer("billing")
        assert (await billing.info()).ack_floor == 3
        got = await billing.fetch(10)  # 4 is still in its ack wait
        assert [m.seq for m in got] == [5, 6, 7, 8, 9, 10]
        await billing.ack(got)
        await billing.reset(2)
        assert [m.seq for m in await billing.fetch(3)] == [2, 3, 4]


@pytest.mark.parametrize("deliver", ["all", "new", ("seq", 1), "time"])
async def test_consume_500_stop_publish_500_restart_gives_exactly_the_new_500(
    open_store: Opener, deliver: object
) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        start = ("time", system.streams.store.clock() - 1) if deliver == "time" else deliver
        if deliver == "new":
            billing = await orders.consumer("billing", deliver="new")
        await orders.publish_many([("orders.a", ("old", i)) for i in range(500)])
        billing = await orders.consumer("billing", deliver=start)  # type: ignore[arg-type]
        seen = []
        async with billing.pull(batch=100, expires=0) as messages:
            async for m in messages:
                seen.append(m.data)
                await m.ack()
        assert seen == [("old", i) for i in range(500)]
    async with open_store() as system:
        orders = await system.streams.get("ORDERS")
        await orders.publish_many([("orders.a", ("new", i)) for i in range(500)])
    async with open_store() as system:
        orders = await system.streams.get("ORDERS")
        billing = await orders.consumer("billing", deliver=start)  # type: ignore[arg-type]
        seen = []
        while got := await billing.fetch(100):
            seen += [m.data for m in got]
            await billing.ack(got)
        assert seen == [("new", i) for i in range(500)]


async def test_deliver_new_seq_and_time_start_where_asked(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish_many([("orders.a", i) for i in range(1, 6)])
        new = await orders.consumer("new", deliver="new")
        from3 = await orders.consumer("from3", deliver=("seq", 3))
        later = await orders.consumer("later", deliver=("time", system.streams.store.clock() + 1))
        assert await new.fetch(10) == []
        assert [m.data for m in await from3.fetch(10)] == [3, 4, 5]
        assert await later.fetch(10) == []
        await orders.publish("orders.a", 6)
        assert [m.data for m in await new.fetch(10)] == [6]


async def test_a_start_past_the_end_skips_what_is_published_below_it(open_store: Opener) -> None:
    # SQLite gave a consumer every later publish, from the stream's end on.
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish_many([("orders.a", i) for i in range(1, 4)])
        from6 = await orders.consumer("from6", deliver=("seq", 6))
        reset = await orders.consumer("reset")
        assert [m.data for m in await reset.fetch(10, expires=5)] == [1, 2, 3]
        await reset.reset(7)
        await orders.publish_many([("orders.a", i) for i in range(4, 9)])
        assert [m.data for m in await from6.fetch(10, expires=5)] == [6, 7, 8]
        assert [m.data for m in await reset.fetch(10, expires=5)] == [7, 8]
        await reset.reset(1)  # back before the end: everything again
        assert len(await reset.fetch(10, expires=5)) == 8


@pytest.mark.parametrize("retention", ["interest", "workqueue"])
async def test_a_reset_keeps_what_the_consumer_had_pending(
    open_store: Opener, retention: Literal["interest", "workqueue"]
) -> None:
    # SQLite settled what it had pending before filling again: under interest
    # or workqueue that deleted every message, and the reset found nothing.
    async with open_store() as system:
        s = await system.streams.create("S", subjects=["s.>"], retention=retention)
        c = await s.consumer("c")
        await s.publish_many([("s.a", i) for i in range(1, 6)])
        assert [m.data for m in await c.fetch(2, expires=5)] == [1, 2]
        await c.reset(1)
        assert [m.data for m in await c.fetch(10, expires=5)] == [1, 2, 3, 4, 5]
        assert (await s.info()).messages == 5


async def test_filters_and_order_per_subject(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        eu = await orders.consumer("eu", filter="orders.eu.*")
        await orders.publish_many(
            [(f"orders.{r}.created", (r, i)) for i in range(3) for r in ("eu", "us")]
        )
        got = await eu.fetch(10)
        assert [m.data for m in got] == [("eu", 0), ("eu", 1), ("eu", 2)]
        assert eu.matches("orders.eu.paid") and not eu.matches("orders.us.paid")


async def test_nak_redelivers_at_once_and_stale_settles_are_dropped(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        await orders.publish("orders.a", "x")
        (first,) = await billing.fetch(1)
        assert await first.nak(error="db down") == "nak"
        (second,) = await billing.fetch(1)
        assert (second.seq, second.deliveries) == (first.seq, 2)
        assert await first.ack() is False  # stale: the second delivery decides
        assert await first.nak() == "stale"
        assert await first.in_progress() is False
        assert await first.term() is False
        assert await second.in_progress() is True
        assert await second.ack() is True
        assert await second.ack() is False
        assert (await billing.info()).pending == 0


async def test_acking_many_settles_the_current_ones_and_drops_the_stale(
    open_store: Opener,
) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        await orders.publish_many([("orders.a", i) for i in range(4)])
        first, *others = await billing.fetch(4)
        assert await first.nak() == "nak"
        (again,) = await billing.fetch(1)
        assert await billing.ack([*others, first]) == [True, True, True, False]
        assert (await billing.info()).pending == 1  # the redelivered one
        assert await billing.ack(others) == [False, False, False]  # settled already
        assert await billing.ack([again]) == [True]
        assert (await billing.info()).pending == 0


async def test_fetch_waits_for_a_publish_and_expires(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        got: list[durable.Message] = []
        async with anyio.create_task_group() as tg:

            async def fetch() -> None:
                got.extend(await billing.fetch(5, expires=30))

            tg.start_soon(fetch)
            await anyio.wait_all_tasks_blocked()
            await orders.publish("orders.a", "hello")
        assert [m.data for m in got] == ["hello"]
        with anyio.fail_after(5):
            assert await billing.fetch(1, expires=0.05) == []


async def test_a_cancelled_fetch_gives_its_messages_back_uncounted(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        await orders.publish_many([("orders.a", i) for i in range(3)])
        with anyio.CancelScope() as scope:
            scope.cancel()
            await billing.fetch(3)
        got = await billing.fetch(3)
        assert [(m.data, m.deliveries) for m in got] == [(0, 1), (1, 1), (2, 1)]


async def test_leaving_pull_early_gives_back_what_was_not_yielded(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        await orders.publish_many([("orders.a", i) for i in range(10)])
        async with billing.pull(batch=5) as messages:
            async for m in messages:
                await m.ack()
                if m.data == 1:
                    break
        got = await billing.fetch(10)
        if open_store.jetstream:  # what is given back comes again after the rest there
            got.sort(key=lambda m: m.seq)
        assert [(m.data, m.deliveries) for m in got] == [(i, 1) for i in range(2, 10)]


async def test_max_in_flight_is_credit(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", max_in_flight=2)
        await orders.publish_many([("orders.a", i) for i in range(5)])
        first = await billing.fetch(10)
        assert [m.data for m in first] == [0, 1]
        assert await billing.fetch(10) == []  # no credit, not waiting
        got: list[durable.Message] = []
        async with anyio.create_task_group() as tg:

            async def fetch() -> None:
                got.extend(await billing.fetch(10, expires=30))

            tg.start_soon(fetch)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            await first[0].ack()
        assert [m.data for m in got] == [2]


async def test_poison_message_reaches_the_dead_letters_after_exactly_max_deliver(
    open_store: Opener,
) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", max_deliver=3)
        await orders.publish_many(
            [("orders.a", "ok-1"), ("orders.a", "poison"), ("orders.b", "ok-2")]
        )
        deliveries = 0
        while got := await billing.fetch(10):
            for m in got:
                if m.data == "poison":
                    deliveries += 1
                    assert m.deliveries == deliveries
                    await m.nak(error=f"ValueError('bad order', {deliveries})")
                else:
                    await m.ack()
        assert deliveries == 3
        dlq = orders.dead_letters("billing")
        (entry,) = await dlq.browse()
        assert (entry.seq, entry.data, entry.deliveries) == (2, "poison", 3)
        assert entry.last_error == "ValueError('bad order', 3)"
        assert entry.first_delivered is not None and entry.last_delivered is not None
        assert entry.first_delivered <= entry.last_delivered <= entry.dead_at
        assert (await billing.info()).dead_letters == 1
        # Requeued after a fix: delivered again, counting from 1.
        assert await dlq.requeue(2) is True
        assert await dlq.requeue(2) is False
        (again,) = await billing.fetch(10)
        assert (again.seq, again.data, again.deliveries) == (2, "poison", 1)
        assert await again.term("still bad") is True
        (entry,) = await dlq.browse()
        assert (entry.deliveries, entry.last_error) == (1, "still bad")


async def test_replay_republishes_a_range_in_order(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        retry = await system.streams.create("RETRY", subjects=["retry.>"])
        billing = await orders.consumer("billing", max_deliver=1)
        await orders.publish_many([("orders.a", i) for i in range(6)])
        got: list[durable.Message] = []
        with anyio.fail_after(10):
            while len(got) < 6:  # JetStream may hand over just-stored messages in parts
                got.extend(await billing.fetch(10, expires=5))
        for m in got:
            await m.nak(error="boom")
        dlq = orders.dead_letters("billing")
        assert [e.seq for e in await dlq.browse()] == [1, 2, 3, 4, 5, 6]
        assert await dlq.replay("retry.orders", since=2, until=4) == [1, 2, 3]
        fixer = await retry.consumer("fixer")
        assert [(m.subject, m.data) for m in await fixer.fetch(10)] == [
            ("retry.orders", 1),
            ("retry.orders", 2),
            ("retry.orders", 3),
        ]
        assert await dlq.replay(since=6) == [7]  # to its own subject, in its stream
        assert await dlq.count() == 6  # replay copies; remove() drops an entry
        assert await dlq.remove(6) is True
        assert await dlq.count() == 5


async def test_retention_workqueue_and_interest(open_store: Opener) -> None:
    async with open_store() as system:
        jobs = await system.streams.create("JOBS", subjects=["jobs.>"], retention="workqueue")
        await jobs.publish("jobs.a", 1)  # kept until a consumer takes it
        worker = await jobs.consumer("worker", filter="jobs.a")
        with pytest.raises(ValueError, match="overlaps consumer 'worker'"):
            await jobs.consumer("other", filter="jobs.*")
        (m,) = await worker.fetch(1)
        await m.ack()
        assert (await jobs.info()).messages == 0

        events = await system.streams.create("EVENTS", subjects=["ev.>"], retention="interest")
        await events.publish("ev.a", "nobody listens")
        assert (await events.info()).messages == 0
        a = await events.consumer("a")
        b = await events.consumer("b", filter="ev.b")
        await events.publish_many([("ev.a", 1), ("ev.b", 2)])
        assert (await events.info()).messages == 2
        await a.ack(await a.fetch(10))
        assert (await events.info()).messages == 1  # b still holds ev.b
        await b.ack(await b.fetch(10))
        assert (await events.info()).messages == 0


async def test_limits_drop_the_oldest(open_store: Opener) -> None:
    async with open_store() as system:
        few = await system.streams.create("FEW", subjects=["few"], max_msgs=3)
        c = await few.consumer("c")
        await few.publish_many([("few", i) for i in range(5)])
        await few.publish("few", 5)
        assert [m.data for m in await c.fetch(10)] == [3, 4, 5]
        small = await system.streams.create("SMALL", subjects=["small"], max_bytes=100)
        for i in range(20):
            await small.publish("small", b"x" * 20 + bytes([i]))
        info = await small.info()
        assert info.bytes <= 100 and info.last_seq == 20
        # JetStream counts the subject and headers too: room for fewer.
        assert info.messages >= (1 if open_store.jetstream else 2)


async def test_a_transaction_commits_sql_acks_and_publishes_together(open_store: Opener) -> None:
    async with open_store() as system:
        if open_store.jetstream:
            with pytest.raises(durable.DurableError, match="needs the SQLite store"):
                async with system.streams.transaction():
                    pass
            return
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        receipts = await system.streams.create("RECEIPTS", subjects=["receipts.>"])
        billing = await orders.consumer("billing")
        audit = await receipts.consumer("audit")
        async with system.streams.transaction() as tx:
            await tx.execute("CREATE TABLE paid (id INTEGER PRIMARY KEY)")
        await orders.publish_many([("orders.a", 1), ("orders.a", 2)])
        one, two = await billing.fetch(2)

        class Crash(Exception):
            pass

        with pytest.raises(Crash):
            async with system.streams.transaction() as tx:
                await tx.execute("INSERT INTO paid VALUES (?)", (one.data,))
                await tx.ack(one)
                await tx.publish("receipts.paid", one.data)
                raise Crash
        async with system.streams.transaction() as tx:
            assert await tx.execute("SELECT id FROM paid") == []
            await tx.execute("INSERT INTO paid VALUES (?)", (two.data,))
            await tx.ack(two)
            assert await tx.publish("receipts.paid", two.data) == 1
            with pytest.raises(durable.DurableError, match=r"tx\.publish"):
                await orders.publish("orders.a", 3)
        async with system.streams.transaction() as tx:
            assert await tx.execute("SELECT id FROM paid") == [(2,)]
            with pytest.raises(durable.DurableError, match="roll back"):
                await tx.ack(two)  # already settled
        assert [m.data for m in await audit.fetch(10)] == [2]
        assert (await billing.info()).pending == 1  # the rolled-back ack did not happen
        assert await one.ack() is True


async def test_ten_thousand_unsettled_deliveries_cost_no_task_or_timer(
    open_store: Opener, anyio_backend: tuple[str, object]
) -> None:
    if anyio_backend[0] != "asyncio":
        pytest.skip("counts asyncio's tasks and timer handles")
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", max_in_flight=20_000)
        await orders.publish_many([("orders.a", i) for i in range(10_000)])
        loop = asyncio.get_running_loop()
        tasks, timers = len(asyncio.all_tasks()), len(loop._scheduled)  # type: ignore[attr-defined]
        got = []
        while batch := await billing.fetch(1000):
            got += batch
        assert len(got) == 10_000
        assert len(asyncio.all_tasks()) == tasks
        assert len(loop._scheduled) <= timers + 1  # type: ignore[attr-defined]
        assert (await billing.info()).in_flight == 10_000


async def test_bad_input_gets_a_clear_error(open_store: Opener) -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(durable.StoreNotConfigured, match="SQLiteStore"):
            await system.streams.create("ORDERS", subjects=["orders.>"])
    async with open_store() as system:
        streams = system.streams
        with pytest.raises(durable.StreamNotFound, match=r"streams.create\('NOPE'"):
            await streams.get("NOPE")
        with pytest.raises(ValueError, match="stream name"):
            await streams.create("bad name", subjects=["x"])
        with pytest.raises(ValueError, match="subjects must be"):
            await streams.create("S", subjects="orders.>")
        with pytest.raises(ValueError, match="token"):
            await streams.create("S", subjects=["orders..x"])
        with pytest.raises(ValueError, match="retention"):
            await streams.create("S", subjects=["s"], retention="forever")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_msgs"):
            await streams.create("S", subjects=["s"], max_msgs=0)
        orders = await streams.create("ORDERS", subjects=["orders.>"])
        with pytest.raises(ValueError, match=r"overlaps 'orders\.>' of stream 'ORDERS'"):
            await streams.create("EU", subjects=["orders.eu"])
        with pytest.raises(ValueError, match=r"does not take subject 'billing\.x'"):
            await orders.publish("billing.x", 1)
        with pytest.raises(ValueError, match="wildcard"):
            await orders.publish("orders.*", 1)
        with pytest.raises(durable.StreamNotFound, match=r"no stream takes subject 'billing\.x'"):
            await streams.publish("billing.x", 1)
        with pytest.raises(ValueError, match="max_deliver must be a whole number >= 1"):
            await orders.consumer("c", max_deliver=0)
        with pytest.raises(ValueError, match="deliver must be"):
            await orders.consumer("c", deliver="latest")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ack_wait"):
            await orders.consumer("c", ack_wait=0)
        with pytest.raises(ValueError, match="backoff"):
            await orders.consumer("c", backoff=[])
        with pytest.raises(ValueError, match="matches none of stream 'ORDERS'"):
            await orders.consumer("c", filter="billing.>")
        await orders.consumer("c", filter="orders.eu.>")
        with pytest.raises(ValueError, match="delete it first"):
            await orders.consumer("c", filter="orders.us.>")
        with pytest.raises(durable.ConsumerNotFound, match="no consumer 'ghost'"):
            await orders.dead_letters("ghost").browse()
        c = await orders.consumer("c", filter="orders.eu.>")
        with pytest.raises(ValueError, match="batch"):
            await c.fetch(0)
        with pytest.raises(ValueError, match="synchronous"):
            durable.SQLiteStore(open_store.path, synchronous="OFF")  # type: ignore[arg-type]


async def test_bad_values_are_refused_where_they_are_given(open_store: Opener) -> None:
    # Each would otherwise fail later, deep in the store, or park a message
    # for ever.
    class Broken:
        def delay(self, attempt: int) -> float:
            return math.nan

    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=(s for s in ["orders.>"]))
        assert orders.subjects == ("orders.>",)
        with pytest.raises(ValueError, match="deliver's seq must be finite"):
            await orders.consumer("c", deliver=("seq", math.inf))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="deliver's time must be finite"):
            await orders.consumer("c", deliver=("time", math.nan))
        for seq in (0, -5, 2.9):  # they meant 'all', or sequence 2, silently
            with pytest.raises(ValueError, match=r"deliver=\('seq', n\).*>= 1"):
                await orders.consumer("c", deliver=("seq", seq))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="gave nan for attempt 0"):
            await orders.consumer("c", backoff=Broken())
        for bad in [("orders.a",), "orders.a", ("orders.a", 1, None, "extra")]:
            with pytest.raises(TypeError, match=r"\(subject, message\) or"):
                await orders.publish_many([bad])  # type: ignore[list-item]
        c = await orders.consumer("c")
        await orders.publish("orders.a", 1)
        (m,) = await c.fetch(1)
        with pytest.raises(ValueError, match="finite seconds"):
            await m.nak(delay=math.inf)
        with pytest.raises(TypeError, match="error must be a str"):
            await m.nak(error=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="why must be a str"):
            await m.term(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="expires"):
            await c.fetch(1, expires="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="expected messages fetched from"):
            await c.ack([1])  # type: ignore[list-item]
        dlq = orders.dead_letters("c")
        for call in (dlq.browse("1"), dlq.requeue(2**70), dlq.remove(None), dlq.replay(since=-1)):  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="a sequence number"):
                await call
        assert await m.ack()  # nothing above settled it
        if open_store.kind == "sqlite":
            async with system.streams.transaction() as tx:
                with pytest.raises(TypeError, match=r"tx\.ack takes a message"):
                    await tx.ack("m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="busy_timeout"):
        durable.SQLiteStore(open_store.path, busy_timeout="10")  # type: ignore[arg-type]


async def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    async with opened(tmp_path / "no" / "s.db") as system:
        with pytest.raises(durable.DurableError, match=r"'.*/no/s\.db'.*directory exist"):
            await system.streams.create("S", subjects=["s.>"])


async def test_a_backoff_is_read_for_64_deliveries_then_repeats(tmp_path: Path) -> None:
    # A claim sends the delays with it: a max_deliver of a million must not
    # make it compute (and send) a million of them.
    class Counting:
        def __init__(self) -> None:
            self.asked: set[int] = set()

        def delay(self, attempt: int) -> float:
            self.asked.add(attempt)
            return float(attempt)

    backoff = Counting()
    async with opened(tmp_path / "s.db") as system:
        s = await system.streams.create("S", subjects=["s.>"])
        c = await s.consumer("c", max_deliver=10**6, backoff=backoff, ack_wait=0.01)
        await s.publish("s.x", 1)
        assert [m.data for m in await c.fetch(1)] == [1]
        assert max(backoff.asked) == 63
        assert c._delays() == [float(a) for a in range(64)]


async def test_concurrent_fetches_on_one_handle_share_its_credit(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", max_in_flight=1)
        await orders.publish_many([("orders.a", i) for i in range(5)])
        got: list[list[int]] = []

        async def fetch() -> None:
            got.append([m.data for m in await billing.fetch(10)])

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            tg.start_soon(fetch)
        assert sorted(got) == [[], [0]]
        assert (await billing.info()).in_flight == 1


async def test_a_message_given_back_many_times_is_delivered_again(open_store: Opener) -> None:
    # JetStream counted each give-back and stopped delivering the message
    # past twice max_deliver: neither delivered nor buried, pending 0.
    async with open_store() as system:
        s = await system.streams.create("S", subjects=["s.>"])
        c = await s.consumer("c", max_deliver=1)
        await s.publish("s.x", "m")
        for _ in range(5):
            (m,) = await c.fetch(1, expires=5)
            await c.release([m])
        (m,) = await c.fetch(1, expires=5)
        assert (m.data, m.deliveries) == ("m", 1)
        assert await m.ack()
        assert await s.dead_letters("c").count() == 0


async def test_the_stores_own_subjects_are_refused_and_a_tiny_window_works(
    open_store: Opener,
) -> None:
    # On JetStream a stream on _DLQ.> was created, then its dead-letter
    # stream was refused and the stream was left half made (and broke every
    # later create); a dedup window of 0 was refused by the server.
    async with open_store() as system:
        for subjects in (["_DLQ.>"], ["_RQ.ORDERS.x"], ["orders.>", "_DLQ.a"]):
            with pytest.raises(ValueError, match="the stores' own"):
                await system.streams.create("DL", subjects=subjects)
        assert await system.streams.names() == []
        s = await system.streams.create("S", subjects=["s.>"], dedup_window=0)
        assert await s.publish("s.a", 1, msg_id="x") == 1
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        assert await orders.publish("orders.a", 1) == 1


def _cannot_rebuild() -> None:
    raise RuntimeError("cannot rebuild")


class Broken:
    """Pickles fine; unpickling it raises."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_cannot_rebuild, ())


async def test_one_unreadable_dead_letter_leaves_the_others_readable(
    open_store: Opener,
) -> None:
    # browse, count and replay all raised a bare RuntimeError, naming no entry.
    async with open_store() as system:
        s = await system.streams.create("S", subjects=["s.>"])
        c = await s.consumer("c", max_deliver=1)
        await s.publish_many([("s.a", "fine"), ("s.a", Broken()), ("s.a", "also fine")])
        for m in await c.fetch(3, expires=5):
            await m.term("no")
        dlq = s.dead_letters("c")
        assert await dlq.count() == 3
        entries = await dlq.browse()
        assert [e.data for e in entries] == [
            "fine",
            durable.Unreadable("RuntimeError: cannot rebuild"),
            "also fine",
        ]
        with pytest.raises(durable.DurableError, match=r"entries \[2\].*nothing was replayed"):
            await dlq.replay()
        assert await dlq.replay(since=3) != []
        assert await dlq.requeue(2)  # needs no unpickling
