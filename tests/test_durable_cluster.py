"""The JetStream store on a three-server cluster: kill -9 of the stream's
leader while a publisher and a consumer run. No acknowledged publish is lost,
no acknowledged message is delivered again, and the consumer resumes by
itself within 10 s (the client reconnects, the stream elects a leader, the
store retries). Bounded throughout; the killed server is started again."""

from __future__ import annotations

import anyio
import pytest
from nats_kit import NatsServer

import actors
from actors import durable

pytestmark = pytest.mark.anyio

#: Messages published in all; the leader dies after a third of them.
TOTAL = 300
#: The promise: the consumer acks again this soon after the kill.
RESUME = 10.0


async def test_kill_9_of_the_stream_leader_loses_and_repeats_nothing(
    nats_cluster: list[NatsServer],
) -> None:
    urls = [server.url for server in nats_cluster]
    async with durable.JetStreamStore(urls, timeout=15.0) as store:
        assert store.replicas == 3  # a cluster: R3 by default
        async with actors.ActorSystem("cluster-test", store=store) as system:
            await system.streams.delete("ORDERS")
            orders = await system.streams.create("ORDERS", subjects=["orders.>"])
            billing = await orders.consumer("billing", ack_wait=5, max_deliver=20)
            leader_name = (await store.js.stream_info("ORDERS"))["cluster"]["leader"]
            (leader,) = [s for s in nats_cluster if s.name == leader_name]

            published: set[int] = set()  # publish returned: durable
            acked: set[int] = set()  # ack returned True
            repeated: list[int] = []  # delivered again after an ack returned True
            killed_at: list[float] = []
            resumed_at: list[float] = []
            half = anyio.Event()
            done_publishing = anyio.Event()

            async def publish() -> None:
                for i in range(TOTAL):
                    await orders.publish("orders.a", i, msg_id=f"order-{i}")
                    published.add(i)
                    if i == TOTAL // 3:
                        half.set()
                done_publishing.set()

            async def consume() -> None:
                while not (done_publishing.is_set() and published <= acked):
                    for m in await billing.fetch(10, expires=1):
                        if m.data in acked:
                            repeated.append(m.data)
                        if await m.ack():
                            acked.add(m.data)
                            if killed_at and not resumed_at:
                                resumed_at.append(anyio.current_time())

            try:
                with anyio.fail_after(120):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(publish)
                        tg.start_soon(consume)
                        await half.wait()
                        leader.kill()
                        killed_at.append(anyio.current_time())
            finally:
                if not leader.running:
                    await leader.astart()
            assert published == set(range(TOTAL))
            assert published <= acked  # nothing acknowledged was lost
            assert repeated == []  # nothing acknowledged came again
            assert resumed_at and resumed_at[0] - killed_at[0] < RESUME
            await system.streams.delete("ORDERS")
