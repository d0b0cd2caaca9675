"""Redelivery timing of durable consumers on the virtual clock: ack waits,
naks with a delay, backoff for naks and timeouts, dedup windows and ages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from durable_kit import opened, parked

import actors
from actors import durable
from actors.testing import virtual_time
from supervision import Backoff

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return virtual_time(request.param)


def within(elapsed: float, delay: float) -> bool:
    """The promise: no earlier than the delay, at most 20% later."""
    return delay <= elapsed <= delay * 1.2


async def test_an_unsettled_delivery_comes_back_after_ack_wait(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=30)
        await orders.publish("orders.a", "x")
        (first,) = await billing.fetch(1)
        start = anyio.current_time()
        (second,) = await billing.fetch(1, expires=120)
        assert within(anyio.current_time() - start, 30)
        assert (second.seq, second.deliveries) == (first.seq, 2)
        assert await first.ack() is False  # stale: dropped
        assert await second.ack() is True


@pytest.mark.parametrize("delay", [0.25, 1.0, 10.0, 300.0])
async def test_nak_with_a_delay_is_precise(tmp_path: Path, delay: float) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=3600)
        await orders.publish("orders.a", "x")
        (m,) = await billing.fetch(1)
        start = anyio.current_time()
        await m.nak(delay=delay)
        (again,) = await billing.fetch(1, expires=delay * 2)
        assert within(anyio.current_time() - start, delay)
        assert again.deliveries == 2


@pytest.mark.parametrize(
    "backoff", [[1.0, 5.0, 20.0], Backoff(min=1.0, max=20.0, factor=5, jitter=0)]
)
async def test_backoff_applies_to_naks_and_to_timeouts(tmp_path: Path, backoff: Any) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=10, max_deliver=4, backoff=backoff)
        await orders.publish("orders.a", "x")
        (m,) = await billing.fetch(1)
        waited = []
        for _ in range(2):  # two naks: 1 s, then 5 s
            start = anyio.current_time()
            await m.nak()
            (m,) = await billing.fetch(1, expires=100)
            waited.append(anyio.current_time() - start)
        start = anyio.current_time()  # a timeout: the ack wait, then 20 s
        (m,) = await billing.fetch(1, expires=100)
        waited.append(anyio.current_time() - start)
        assert m.deliveries == 4
        for elapsed, expected in zip(waited, [1.0, 5.0, 30.0], strict=True):
            assert within(elapsed, expected), waited
        await m.nak(error="still failing")  # the last delivery: to the dead letters
        (entry,) = await orders.dead_letters("billing").browse()
        assert (entry.deliveries, entry.last_error) == (4, "still failing")


async def test_the_last_delay_of_a_backoff_repeats(tmp_path: Path) -> None:
    # The store gets the list as given (a Backoff: its first 64 delays) and
    # repeats its last delay for later redeliveries.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=10, max_deliver=5, backoff=[2.0])
        await orders.publish("orders.a", "x")
        (m,) = await billing.fetch(1)
        for deliveries in (2, 3, 4):
            start = anyio.current_time()
            (m,) = await billing.fetch(1, expires=100)  # the ack wait, then 2 s
            assert within(anyio.current_time() - start, 12.0)
            assert m.deliveries == deliveries


async def test_timeouts_alone_reach_the_dead_letters(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=5, max_deliver=2)
        await orders.publish("orders.a", "x")
        assert [m.deliveries for m in await billing.fetch(1)] == [1]
        assert [m.deliveries for m in await billing.fetch(1, expires=10)] == [2]
        assert await billing.fetch(1, expires=10) == []
        (entry,) = await orders.dead_letters("billing").browse()
        assert (entry.deliveries, entry.last_error) == (2, "no ack within ack_wait")


async def test_in_progress_restarts_the_ack_wait(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=10)
        await orders.publish("orders.a", "x")
        (m,) = await billing.fetch(1)
        await anyio.sleep(8)
        assert await m.in_progress() is True
        assert await billing.fetch(1, expires=9) == []  # 17 s after the delivery
        assert await m.ack() is True


async def test_dedup_window_and_max_age(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create(
            "ORDERS", subjects=["orders.>"], dedup_window=60, max_age=3600
        )
        assert await orders.publish("orders.a", 1, msg_id="a") == 1
        await anyio.sleep(30)
        assert await orders.publish("orders.a", 1, msg_id="a") == 1
        await anyio.sleep(31)
        assert await orders.publish("orders.a", 1, msg_id="a") == 2  # the window passed
        await anyio.sleep(3600 - 60)
        await orders.publish("orders.a", 3)  # publishing drops what is too old
        info = await orders.info()
        assert (info.messages, info.last_seq) == (2, 3)


class Crash(Exception):
    """A crash after the effect committed and before the ack."""


@pytest.mark.parametrize("mode", ["at-least-once", "idempotent", "transaction"])
async def test_a_crash_between_the_effect_and_the_ack(tmp_path: Path, mode: str) -> None:
    async with opened(tmp_path / "s.db") as system:
        streams = system.streams
        orders = await streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=30)
        async with streams.transaction() as tx:
            await tx.execute("CREATE TABLE charges (seq INTEGER)")
            await tx.execute("CREATE TABLE charged (seq INTEGER PRIMARY KEY)")
        await orders.publish("orders.a", "charge me")

        async def handle(m: Any, crash: bool) -> None:
            if mode == "transaction":
                async with streams.transaction() as tx:
                    await tx.execute("INSERT INTO charges VALUES (?)", (m.seq,))
                    await tx.ack(m)
                    if crash:
                        raise Crash
                return
            async with streams.transaction() as tx:  # the effect commits on its own
                if mode == "idempotent":
                    await tx.execute("INSERT OR IGNORE INTO charged VALUES (?)", (m.seq,))
                else:
                    await tx.execute("INSERT INTO charges VALUES (?)", (m.seq,))
            if crash:
                raise Crash
            await m.ack()

        (m,) = await billing.fetch(1)
        with pytest.raises(Crash):
            await handle(m, crash=True)
        (m,) = await billing.fetch(1, expires=60)  # after the ack wait
        assert m.deliveries == 2
        await handle(m, crash=False)
        async with streams.transaction() as tx:
            charges = await tx.execute("SELECT count(*) FROM charges")
            charged = await tx.execute("SELECT count(*) FROM charged")
        expected = {"at-least-once": (2, 0), "idempotent": (0, 1), "transaction": (1, 0)}
        assert (charges[0][0], charged[0][0]) == expected[mode]
        assert (await billing.info()).pending == 0


async def test_credit_comes_back_when_an_unsettled_delivery_times_out(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=1.5, max_in_flight=1)
        await orders.publish_many([("orders.a", 1), ("orders.a", 2)])
        assert [m.data for m in await billing.fetch(1)] == [1]
        start = anyio.current_time()
        (again,) = await billing.fetch(1, expires=100)  # no credit until the ack wait ends
        assert within(anyio.current_time() - start, 1.5)
        assert (again.data, again.deliveries) == (1, 2)


async def test_deliveries_waiting_out_a_delay_keep_out_of_the_claims_way(tmp_path: Path) -> None:
    # A retry storm: most of a consumer's messages wait out a nak's delay.
    # They are parked out of the rows a claim walks (a claim would otherwise
    # step over each of them, every time), still count as pending, and come
    # back in order when due.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=3600, max_in_flight=1000)
        await orders.publish_many([("orders.a", i) for i in range(300)])
        start = anyio.current_time()
        first = await billing.fetch(200)
        for m in first[:100]:
            assert await m.nak(delay=60, error="later") == "nak"
        for m in first[100:]:
            assert await m.nak(delay=30) == "nak"
        assert await parked(system) == 200
        assert (await billing.info()).pending == 300
        rest = await billing.fetch(300)
        assert [m.data for m in rest] == list(range(200, 300))
        assert await billing.ack(rest) == [True] * 100
        info = await billing.info()  # the parked ones hold the ack floor
        assert (info.pending, info.in_flight, info.ack_floor) == (200, 0, 0)
        # Nothing deliverable until the first delay ends: a fetch waits for it.
        again = await billing.fetch(300, expires=100)
        assert within(anyio.current_time() - start, 30)
        assert [(m.data, m.deliveries) for m in again] == [(i, 2) for i in range(100, 200)]
        last = await billing.fetch(300, expires=100)
        assert within(anyio.current_time() - start, 60)
        assert [(m.data, m.deliveries) for m in last] == [(i, 2) for i in range(100)]
        assert await parked(system) == 0


async def test_a_delivery_parked_by_one_store_comes_back_through_another(tmp_path: Path) -> None:
    # Two stores on one file, as two processes would have: what one parks
    # waiting out a delay, the other's claim brings back when it is due.
    path = tmp_path / "s.db"
    first, second = durable.SQLiteStore(path), durable.SQLiteStore(path)
    async with (
        actors.ActorSystem("one", store=first) as one,
        actors.ActorSystem("two", store=second) as two,
    ):
        orders = await one.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish_many([("orders.a", i) for i in range(3)])
        billing = await orders.consumer("billing", ack_wait=3600)
        (m,) = await billing.fetch(1)
        start = anyio.current_time()
        assert await m.nak(delay=20, error="later") == "nak"
        there = await (await two.streams.get("ORDERS")).consumer("billing", ack_wait=3600)
        # Each store sets its clock from the wall clock when it opens, and the
        # virtual clock stood still meanwhile: the second runs ahead by the
        # real time between the two opens (over 0.1 s on a loaded machine).
        ahead = second.clock() - first.clock()
        assert ahead >= 0
        assert (await there.info()).pending == 3
        assert [x.data for x in await there.fetch(10)] == [1, 2]
        (again,) = await there.fetch(10, expires=60)
        assert within(anyio.current_time() - start + ahead + 1e-3, 20)
        assert (again.data, again.deliveries) == (0, 2)


async def test_max_age_drops_hundreds_at_once(tmp_path: Path) -> None:
    # A trim reads the oldest messages in chunks that double from a few: 600
    # too old go in one publish, with the deliveries pending for them.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"], max_age=60)
        billing = await orders.consumer("billing")
        await orders.publish_many([("orders.a", i) for i in range(600)])
        await anyio.sleep(61)
        await orders.publish("orders.a", "new")
        info = await orders.info()
        assert (info.messages, info.last_seq) == (1, 601)
        assert (await billing.info()).pending == 1
        assert [m.data for m in await billing.fetch(10)] == ["new"]


async def test_a_message_moved_to_the_dead_letters_leaves_the_fetch_its_room(
    tmp_path: Path,
) -> None:
    # The row moved by the claim counted against the batch: fetch(1) gave
    # nothing while the next message was ready (or waited a poll for it), and
    # the entry's last delivery was the time of that claim.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=30, max_deliver=1)
        await orders.publish("orders.a", "bad")
        (bad,) = await billing.fetch(1)
        await orders.publish("orders.a", "good")
        await anyio.sleep(31)  # its ack wait runs out (virtual time)
        start = anyio.current_time()
        (good,) = await billing.fetch(1)
        assert (good.data, anyio.current_time()) == ("good", start)
        (entry,) = await orders.dead_letters("billing").browse()
        assert (entry.seq, entry.deliveries) == (bad.seq, 1)
        assert entry.last_delivered is not None
        assert abs(entry.last_delivered - (entry.first_delivered or 0)) < 1
        assert entry.last_delivered < system.streams.store.clock() - 30


async def test_a_handle_opened_without_a_backoff_uses_the_consumers(tmp_path: Path) -> None:
    # The backoff was the handle's only: a Push (which opens the consumer)
    # nak'ed with none, and its failures came back at once.
    async with opened(tmp_path / "s.db") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.consumer("billing", ack_wait=3600, backoff=[5.0, 20.0])
        billing = await orders.open_consumer("billing")
        await orders.publish("orders.a", "x")
        (m,) = await billing.fetch(1)
        start = anyio.current_time()
        await m.nak()
        (again,) = await billing.fetch(1, expires=60)
        assert within(anyio.current_time() - start, 5.0)
        own = await orders.open_consumer("billing", backoff=[1.0])
        await again.nak()
        start = anyio.current_time()
        assert len(await own.fetch(1, expires=60)) == 1
        assert within(anyio.current_time() - start, 20.0)  # the nak's handle decides
        await orders.consumer("billing", ack_wait=3600)  # updated: no backoff now
        assert (await orders.open_consumer("billing"))._delays() == []
