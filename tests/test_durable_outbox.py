"""The transactional outbox (durable.relay): your SQL and a publish commit
together in the SQLite store, and the relay forwards the outbox to JetStream.
A crash between the forward and the outbox's ack publishes again under the
same message id: the JetStream stream holds one copy (issue test 3)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio
import pytest
from durable_kit import opened
from nats_kit import NatsServer

from actors import durable

pytestmark = pytest.mark.anyio


class Crash(Exception):
    """The relay dies after the target acknowledged and before the outbox ack."""


async def test_a_crash_between_the_publish_and_the_outbox_ack_leaves_one_copy(
    tmp_path: Path, shared_nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        durable.JetStreamStore(shared_nats_server.url) as jetstream,
        opened(tmp_path / "app.db") as system,
    ):
        remote = durable.Streams(jetstream)
        await remote.delete("ORDERS")
        orders = await remote.create("ORDERS", subjects=["orders.>"], dedup_window=600)
        outbox = await system.streams.create("OUTBOX", subjects=["orders.>"])
        async with system.streams.transaction() as tx:
            await tx.execute("CREATE TABLE placed (id INTEGER PRIMARY KEY)")
            for i in range(3):
                await tx.execute("INSERT INTO placed VALUES (?)", (i,))
                await tx.publish(f"orders.eu.{i}", {"id": i})
        relaying = await outbox.consumer("relay", ack_wait=1)

        real_ack = durable.Consumer.ack
        crashes: list[int] = []
        acked = anyio.Event()

        async def crash_once(self: durable.Consumer, messages: Any) -> list[bool]:
            if not crashes:
                crashes.append(len(messages))
                raise Crash
            done = await real_ack(self, messages)
            acked.set()
            return done

        monkeypatch.setattr(durable.Consumer, "ack", crash_once)
        with pytest.raises(Crash), anyio.fail_after(30):
            await durable.relay(relaying, remote, expires=1)
        assert crashes == [3]
        assert (await orders.info()).messages == 3  # forwarded, not acked on the outbox

        relaying = await outbox.open_consumer("relay")  # a restarted relay
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(durable.relay, relaying, remote, expires=1))
            with anyio.fail_after(30):
                await acked.wait()  # after the outbox consumer's ack wait
            tg.cancel_scope.cancel()
        assert (await relaying.info()).pending == 0
        reader = await orders.consumer("reader")
        got = await reader.fetch(10)
        expected = [(f"orders.eu.{i}", {"id": i}) for i in range(3)]
        assert [(m.subject, m.data) for m in got] == expected
        assert [m.deliveries for m in got] == [1, 1, 1]
        info = await orders.info()
        assert (info.messages, info.last_seq) == (3, 3)  # the republish stored nothing
        await remote.delete("ORDERS")


async def test_two_outboxes_of_one_name_relay_to_one_stream_without_losing(
    tmp_path: Path, shared_nats_server: NatsServer
) -> None:
    # Two services, each with its own file and an outbox named OUTBOX: the
    # ids were OUTBOX:<seq> for both, so the target kept the first one's
    # messages and dropped the other's as duplicates, acked on its outbox.
    # The same held for an outbox deleted and created again.
    async with (
        durable.JetStreamStore(shared_nats_server.url) as jetstream,
        opened(tmp_path / "a.db") as a,
        opened(tmp_path / "b.db") as b,
    ):
        remote = durable.Streams(jetstream)
        await remote.delete("ORDERS")
        orders = await remote.create("ORDERS", subjects=["orders.>"], dedup_window=600)
        reader = await orders.consumer("reader")
        for system, tag in ((a, "a"), (b, "b"), (a, "a again")):
            if tag == "a again":
                await system.streams.delete("OUTBOX")
            outbox = await system.streams.create("OUTBOX", subjects=["orders.>"])
            await outbox.publish("orders.x", tag)
            relaying = await outbox.consumer("relay", ack_wait=5)
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(durable.relay, relaying, remote, expires=1))
                with anyio.fail_after(30):
                    (m,) = await reader.fetch(1, expires=10)
                tg.cancel_scope.cancel()
            assert m.data == tag
            await m.ack()
        await remote.delete("ORDERS")
