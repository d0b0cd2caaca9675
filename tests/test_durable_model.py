"""A model test of durable consumers: random interleavings of publish, fetch,
ack, nak, term, crash (the handler's messages are dropped unsettled), restart
(the system and the store close and reopen) and the passing of time, for each
retention, on both stores: SQLite on the virtual clock, JetStream on a real
server in real time (shorter waits, fewer examples). At the end, after
draining, every published message was acked exactly once or sits in the
dead-letter queue, never both, and none is lost."""

from __future__ import annotations

import collections
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from durable_kit import Opener
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from actors import durable
from actors.testing import virtual_time

Retention = Literal["limits", "interest", "workqueue"]
MAX_DELIVER = 3
#: The consumer's ack wait: seconds of virtual time on SQLite, real on JetStream.
SQLITE_ACK_WAIT = 10.0
JETSTREAM_ACK_WAIT = 0.5

ops = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 4)),
        st.tuples(st.just("fetch"), st.integers(1, 5)),
        st.tuples(st.just("ack"), st.integers(0, 20)),
        st.tuples(st.just("ack_many"), st.integers(0, 20)),
        st.tuples(st.just("nak"), st.integers(0, 20)),
        st.tuples(st.just("nak_later"), st.integers(0, 20)),
        st.tuples(st.just("term"), st.integers(0, 20)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(st.just("restart"), st.just(0)),
        # In ack waits: within one, about one, past one.
        st.tuples(st.just("wait"), st.sampled_from([0.1, 1.0, 2.0])),
    ),
    max_size=40,
)


async def scenario(
    open_system: Opener, steps: list[tuple[str, Any]], retention: Retention, ack_wait: float
) -> None:
    published: list[int] = []
    acked: collections.Counter[int] = collections.Counter()
    held: list[durable.Message] = []
    latest: dict[int, int] = {}  # the deliveries count of each message's last delivery

    def settled(m: durable.Message, done: bool) -> None:
        # Only the last delivery of a message can settle it (older ones are stale).
        assert not done or m.deliveries == latest[m.data], (m, latest[m.data])
        acked[m.data] += done

    def delivered(m: durable.Message) -> None:
        assert 1 <= m.deliveries <= MAX_DELIVER
        assert m.deliveries > latest.get(m.data, 0)
        assert acked[m.data] == 0, f"{m.data} delivered after its ack"
        latest[m.data] = m.deliveries

    async def session(steps: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        # Runs steps until a restart; returns the rest.
        async with open_system() as system:
            orders = await system.streams.create(
                "ORDERS", subjects=["orders.>"], retention=retention
            )
            billing = await orders.consumer(
                "billing", ack_wait=ack_wait, max_deliver=MAX_DELIVER, backoff=[0.0, 0.2 * ack_wait]
            )
            while steps:
                (op, arg), steps = steps[0], steps[1:]
                if op == "restart":
                    held.clear()
                    return steps
                if op == "publish":
                    first = len(published)
                    values = list(range(first, first + arg))
                    await orders.publish_many([("orders.a", v, str(v)) for v in values])
                    published.extend(values)
                elif op == "fetch":
                    got = await billing.fetch(arg)
                    for m in got:
                        delivered(m)
                    held.extend(got)
                elif op == "crash":
                    held.clear()
                elif op == "wait":
                    await anyio.sleep(arg * ack_wait)
                elif held:
                    m = held.pop(arg % len(held))
                    if op == "ack":
                        settled(m, await m.ack())
                    elif op == "ack_many":
                        more = [m, *held[:2]]
                        del held[:2]
                        for message, done in zip(more, await billing.ack(more), strict=True):
                            settled(message, done)
                    elif op == "nak":
                        await m.nak(error="failed")
                    elif op == "nak_later":
                        await m.nak(delay=0.3 * ack_wait)
                    elif op == "term":
                        await m.term("poison")
            # Drain: everything left is delivered again (after its ack wait
            # and backoff), acked or dead-lettered; fetches wait for it (on
            # JetStream in real time) until every message is accounted for.
            # Bounded by rounds, not by a deadline: on the virtual clock a
            # wait for the store's thread lets time jump to the next timer.
            held.clear()
            letters = orders.dead_letters("billing")
            for _ in range(20):
                buried = {e.data for e in await letters.browse()}
                if all(acked[v] or v in buried for v in published):
                    break
                for m in await billing.fetch(100, expires=ack_wait * 3):
                    delivered(m)
                    settled(m, await m.ack())
            info = await billing.info()
            assert info.pending == 0, info
            dead = [e.data for e in await letters.browse()]
            assert len(dead) == len(set(dead))
            for value in published:
                assert (acked[value], value in dead) in ((1, False), (0, True)), (
                    value,
                    acked[value],
                    dead,
                )
            assert set(acked) <= set(published)
            kept = (await orders.info()).messages
            assert kept == (len(published) if retention == "limits" else 0), kept
        return []

    while True:
        steps = await session(steps)
        if not steps:
            break


# A stale ack after a redelivery; a nak on the last delivery; a crash and a
# restart; every delivery left to time out, the last to the dead letters.
EXAMPLES = [
    [("publish", 1), ("fetch", 1), ("wait", 2.0), ("fetch", 1), ("ack", 0), ("ack", 0)],
    [
        *[("publish", 2), ("fetch", 2), ("nak", 0), ("fetch", 2), ("nak", 0)],
        *[("fetch", 1), ("nak", 0), ("fetch", 2), ("term", 1)],
    ],
    [
        ("publish", 3),
        ("fetch", 2),
        ("crash", 0),
        ("restart", 0),
        ("fetch", 3),
        ("ack_many", 0),
        ("wait", 2.0),
        ("fetch", 5),
        ("ack", 1),
    ],
    [("publish", 1), *[("fetch", 1), ("wait", 2.0)] * MAX_DELIVER, ("fetch", 1)],
]


def with_examples(**more: Any) -> Callable[[Any], Any]:
    def add(test: Any) -> Any:
        for steps in EXAMPLES:
            test = example(steps=steps, **more)(test)
        return test

    return add


# At FULL, claims commit on the loop's connection and settles on the worker's.
@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
@pytest.mark.parametrize("retention", ["workqueue", "interest", "limits"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=ops)
@with_examples()
def test_every_message_is_acked_once_or_dead_lettered(
    backend: str, retention: Retention, synchronous: str, steps: list[tuple[str, Any]]
) -> None:
    name, options = virtual_time(backend)
    with tempfile.TemporaryDirectory() as directory:
        store = Opener("sqlite", Path(directory) / "s.db", synchronous=synchronous)
        wait = SQLITE_ACK_WAIT
        anyio.run(scenario, store, steps, retention, wait, backend=name, backend_options=options)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=ops, retention=st.sampled_from(["workqueue", "interest", "limits"]))
@with_examples(retention="interest")
def test_every_message_is_acked_once_or_dead_lettered_on_jetstream(
    shared_nats_server: Any, backend: str, retention: Retention, steps: list[tuple[str, Any]]
) -> None:
    # Each example starts on an empty server (the opener's first open wipes it).
    store = Opener("jetstream", Path("unused"), shared_nats_server.url)
    anyio.run(scenario, store, steps, retention, JETSTREAM_ACK_WAIT, backend=backend)
