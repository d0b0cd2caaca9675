"""Push: a durable consumer feeding a supervised actor (durable.Push)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from durable_kit import Opener

import actors
from actors import durable
from actors.testing import TestProbe
from supervision import ChildSpec, Supervisor

pytestmark = pytest.mark.anyio


class Billing(actors.Actor):
    """Reports each delivery to the probe; fails on "poison" and, while the
    gate is closed, waits on it."""

    def __init__(self, probe: actors.ActorRef, gate: anyio.Event | None = None) -> None:
        self.probe = probe
        self.gate = gate

    async def receive(self, message: Any) -> Any:
        if isinstance(message, durable.Message):
            await self.probe.tell((message.data, message.deliveries))
            if self.gate is not None:
                await self.gate.wait()
            if message.data == "poison":
                raise ValueError("cannot bill a poison order")
            return None
        return ("plain", message, self.ref.path)


async def setup(system: actors.ActorSystem, **options: Any) -> durable.Stream:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    await orders.consumer("billing", **options)
    return orders


async def supervise(
    system: actors.ActorSystem, probe: TestProbe, *args: Any, max_in_flight: int
) -> None:
    """A Supervisor of one Push of Billing(probe, *args) on ORDERS/billing."""
    spec = ChildSpec(
        durable.Push,
        Billing,
        probe.ref,
        *args,
        durable=("ORDERS", "billing"),
        max_in_flight=max_in_flight,
        name="billing",
    )
    await system.spawn(Supervisor, children=[spec], max_restarts=10, within=60)


async def test_returning_acks_and_other_messages_pass_through(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await setup(system)
        probe = await TestProbe.start(system)
        ref = await system.spawn(durable.Push, Billing, probe.ref, durable=("ORDERS", "billing"))
        await orders.publish_many([("orders.a", i) for i in range(5)])
        assert await probe.receive_n(5) == [(i, 1) for i in range(5)]
        assert await ref.ask("hi") == ("plain", "hi", ref.path)
        await ref.stop()  # returns once the message in hand is settled
        consumer = await orders.open_consumer("billing")
        assert (await consumer.info()).pending == 0


async def test_a_raise_naks_crashes_and_the_poison_reaches_the_dead_letters(
    open_store: Opener,
) -> None:
    async with open_store() as system:
        orders = await setup(system, max_deliver=3)
        probe = await TestProbe.start(system)
        await supervise(system, probe, max_in_flight=1)
        await orders.publish_many(
            [("orders.a", "ok-1"), ("orders.a", "poison"), ("orders.a", "ok-2")]
        )
        got = await probe.receive_n(5)
        assert got == [("ok-1", 1), ("poison", 1), ("poison", 2), ("poison", 3), ("ok-2", 1)]
        # One in flight: ok-2 was claimed only after the poison was settled.
        (entry,) = await orders.dead_letters("billing").browse()
        assert entry.data == "poison" and entry.deliveries == 3
        assert entry.last_error == "ValueError('cannot bill a poison order')"


async def test_max_in_flight_is_backpressure_and_a_crash_gives_back_what_it_held(
    open_store: Opener,
) -> None:
    async with open_store() as system:
        orders = await setup(system, max_deliver=3)
        probe = await TestProbe.start(system)
        gate = anyio.Event()
        await supervise(system, probe, gate, max_in_flight=3)
        await orders.publish_many([("orders.a", "poison"), *[("orders.a", i) for i in range(6)]])
        assert await probe.receive() == ("poison", 1)
        consumer = await orders.open_consumer("billing")
        info = await consumer.info()
        assert (info.pending, info.in_flight) == (7, 3)  # three claimed, no more
        gate.set()  # the poison crashes the actor; 0 and 1 were in its mailbox
        got = await probe.receive_n(8)
        assert got[0] == ("poison", 2)  # again, after the restart
        # Never counted: the crash gave them back before they were handled.
        assert sorted(x for x in got if x[0] != "poison") == [(i, 1) for i in range(6)]
        assert ("poison", 3) in got
        await probe.expect_no_message(within=0.1)


async def test_bad_options_are_refused_at_spawn(open_store: Opener) -> None:
    async with open_store() as system:
        await setup(system)
        with pytest.raises(TypeError, match="durable=\\(stream name, consumer name\\)"):
            await system.spawn(durable.Push, Billing, None, durable="ORDERS")
        with pytest.raises(ValueError, match="max_in_flight"):
            await system.spawn(
                durable.Push, Billing, None, durable=("ORDERS", "b"), max_in_flight=0
            )
        with pytest.raises(actors.ActorFailed, match="create it first"):
            await system.spawn(durable.Push, Billing, None, durable=("ORDERS", "ghost"))
        # A mailbox that drops would lose deliveries (counted, never handled).
        with pytest.raises(actors.ActorFailed) as caught:
            await system.spawn(
                durable.Push,
                Billing,
                None,
                durable=("ORDERS", "b"),
                mailbox=actors.Mailbox(1, "drop_newest"),
            )
        assert "must block" in str(caught.value.__cause__)


class GatedAcks:
    """Wraps a store's ``ack``: records each call's sequences; the first call
    waits for ``gate``; ``written`` is set once ``expected`` were acked."""

    def __init__(self, store: Any, expected: int) -> None:
        self.real = store.ack
        self.gate = anyio.Event()
        self.held = anyio.Event()  # the first call waits at the gate
        self.written = anyio.Event()
        self.expected = expected
        self.calls: list[list[int]] = []
        self.acked = 0
        store.ack = self

    async def __call__(self, stream: str, cid: Any, tokens: Any) -> Any:
        self.calls.append([seq for seq, _ in tokens])
        if len(self.calls) == 1:
            self.held.set()
            await self.gate.wait()
        done = await self.real(stream, cid, tokens)
        self.acked += sum(done)
        if self.acked >= self.expected:
            self.written.set()
        return done


async def test_acks_are_written_in_batches_beside_the_actor(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await setup(system)
        acks = GatedAcks(system.streams._store, 5)
        probe = await TestProbe.start(system)
        await system.spawn(
            durable.Push, Billing, probe.ref, durable=("ORDERS", "billing"), max_in_flight=5
        )
        await orders.publish("orders.a", 0)
        assert await probe.receive() == (0, 1)
        with anyio.fail_after(10):
            await acks.held.wait()
        # The first ack is held back, and the actor goes on all the same.
        await orders.publish_many([("orders.a", i) for i in range(1, 5)])
        assert await probe.receive_n(4) == [(i, 1) for i in range(1, 5)]
        assert acks.calls == [[1]]
        consumer = await orders.open_consumer("billing")
        assert (await consumer.info()).in_flight == 5  # until their acks are written
        acks.gate.set()
        with anyio.fail_after(10):
            await acks.written.wait()
        assert acks.calls == [[1], [2, 3, 4, 5]]  # those handled meanwhile: one batch
        assert (await consumer.info()).in_flight == 0
        await probe.expect_no_message(within=0.1)  # none came again


async def test_a_crash_writes_the_acks_of_what_was_handled(open_store: Opener) -> None:
    async with open_store() as system:
        orders = await setup(system, max_deliver=2)
        acks = GatedAcks(system.streams._store, 3)
        probe = await TestProbe.start(system)
        await supervise(system, probe, max_in_flight=4)
        await orders.publish("orders.a", 0)
        assert await probe.receive() == (0, 1)
        with anyio.fail_after(10):
            await acks.held.wait()
        await orders.publish_many([("orders.a", 1), ("orders.a", 2)])
        assert await probe.receive_n(2) == [(1, 1), (2, 1)]
        assert acks.calls == [[1]]  # held back: 2 and 3 wait for the next batch
        await orders.publish("orders.a", "poison")  # the crash, with three acks unwritten
        assert await probe.receive_n(2) == [("poison", 1), ("poison", 2)]
        with anyio.fail_after(10):
            await acks.written.wait()  # by the first incarnation's on_stop
        (entry,) = await orders.dead_letters("billing").browse()
        assert entry.data == "poison" and entry.deliveries == 2
        consumer = await orders.open_consumer("billing")
        info = await consumer.info()
        assert (info.pending, info.in_flight) == (0, 0)
        await probe.expect_no_message(within=0.1)  # 0, 1 and 2 never came again


async def test_a_stop_past_the_shutdown_timeout_still_gives_back_what_it_held(
    open_store: Opener,
) -> None:
    # Killed at its shutdown timeout, the actor ran no on_stop: what it held
    # stayed out until the ack wait ran out, then came back counted (with
    # max_deliver=1, into the dead letters, never handled).
    async with open_store() as system:
        orders = await setup(system, ack_wait=600, max_deliver=1)
        probe = await TestProbe.start(system)
        await orders.publish_many([("orders.a", i) for i in range(3)])
        ref = await system.spawn(
            durable.Push,
            Billing,
            probe.ref,
            anyio.Event(),  # never set: the first message is handled for ever
            durable=("ORDERS", "billing"),
            max_in_flight=3,
            shutdown=0.2,
        )
        assert await probe.receive(timeout=10) == (0, 1)
        with anyio.fail_after(20):
            await ref.stop()  # killed after 0.2 s
        billing = await orders.open_consumer("billing")
        got = await billing.fetch(3, expires=5)  # at once, not after 600 s
        assert [(m.data, m.deliveries) for m in got] == [(0, 1), (1, 1), (2, 1)]
        assert await orders.dead_letters("billing").count() == 0
