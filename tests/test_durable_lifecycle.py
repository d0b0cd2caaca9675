"""Streams and consumers deleted, created again or updated while handles on
them live: a publish follows the stream as it is now, a handle on a deleted
consumer says so, and nothing is delivered to the wrong consumer or lost."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import anyio
import pytest
from durable_kit import Opener, opened

import actors
from actors import durable

pytestmark = pytest.mark.anyio


async def test_a_stream_created_again_takes_its_new_config(open_store: Opener) -> None:
    async with open_store() as system:
        streams = system.streams
        s = await streams.create("S", subjects=["s.>"], retention="interest")
        await s.publish("s.a", "nobody wants it")  # the publisher caches the config
        assert await streams.delete("S")
        s = await streams.create("S", subjects=["s.>"])  # limits now: keep everything
        await s.publish("s.a", "kept")
        assert (await s.info()).messages == 1
        reader = await s.consumer("reader")
        assert [m.data for m in await reader.fetch(10)] == ["kept"]


async def test_a_stream_created_again_by_another_store_is_seen_by_this_one(
    tmp_path: Path,
) -> None:
    # As another process would: its delete and create leave this store's
    # cached config and consumers stale.
    path = tmp_path / "s.db"
    async with opened(path) as one, opened(path) as two:
        s = await one.streams.create("S", subjects=["s.>"], max_msgs=1)
        await s.consumer("old", filter="s.a")
        await s.publish("s.a", 0)
        assert await two.streams.delete("S")
        again = await two.streams.create("S", subjects=["s.>"])
        b = await again.consumer("b", filter="s.b")
        for i in (1, 2):
            await s.publish("s.b", i)  # through the first store's stale handle
        assert (await again.info()).messages == 2
        assert [m.data for m in await b.fetch(10)] == [1, 2]


async def test_subjects_changed_by_another_store_are_followed_by_publishes(
    tmp_path: Path,
) -> None:
    # The handles and the routes checked their own copy of the subjects: a
    # publish to s.a went to S after another process gave s.> to X, and X's
    # consumers never saw it.
    path = tmp_path / "s.db"
    async with opened(path) as one, opened(path) as two:
        s = await one.streams.create("S", subjects=["s.>"])
        assert await one.streams.publish("s.a", 0) == 1  # its route is known
        await two.streams.delete("S")
        await two.streams.create("S", subjects=["t.>"])
        x = await two.streams.create("X", subjects=["s.>"])
        c = await x.consumer("c")
        with pytest.raises(ValueError, match=r"does not take subject 's.a'.*\['t.>'\]"):
            await s.publish("s.a", 1)
        assert s.subjects == ("t.>",)  # the handle read them again
        assert await one.streams.publish("s.a", 2) == 1  # routed to X
        assert [m.data for m in await c.fetch(10)] == [2]
        assert (await one.streams.get("S")).subjects == ("t.>",)
        assert (await (await two.streams.get("S")).info()).messages == 0


async def test_a_deleted_consumers_handle_raises_and_takes_nothing(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        s = await system.streams.create("S", subjects=["s.>"])
        t = await system.streams.create("T", subjects=["t.>"])
        a = await s.consumer("a")
        await s.publish("s.x", "for a")
        (m,) = await a.fetch(1)
        await a.delete()
        b = await t.consumer("b")  # must not be mistaken for a
        await t.publish("t.x", "for b")
        for call in (a.fetch(10), m.ack(), m.nak(), m.term(), m.in_progress(), a.info(), a.reset()):
            with pytest.raises(durable.ConsumerNotFound, match="'a' of stream 'S' no longer"):
                await call
        await a.delete()  # deleting again is no error
        assert [x.data for x in await b.fetch(10)] == ["for b"]
        assert (await s.info()).messages == 1  # a's delete kept it (limits)


async def test_a_deleted_consumers_fetch_and_info_raise_on_both_stores(open_store: Opener) -> None:
    async with open_store() as system:
        s = await system.streams.create("S", subjects=["s.>"])
        a = await s.consumer("a")
        await a.delete()
        with pytest.raises(durable.ConsumerNotFound, match="create it again"):
            await a.fetch(1)
        with pytest.raises(durable.ConsumerNotFound, match="create it again"):
            await a.info()


async def test_consumer_ids_are_never_given_again(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    seen = set()
    async with opened(path) as system:
        s = await system.streams.create("S", subjects=["s.>"])
        for _ in range(3):
            c = await s.consumer("c")
            seen.add(c._cid)
            await c.delete()
    async with opened(path) as system:
        s = await system.streams.get("S")
        c = await s.consumer("c")
        assert c._cid not in seen
        assert len(seen) == 3


async def test_a_file_from_before_the_counters_counts_on_from_its_highest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with opened(path) as system:
        s = await system.streams.create("S", subjects=["s.>"])
        a, b = await s.consumer("a"), await s.consumer("b")
        await s.publish("s.x", 1)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("DROP TABLE durable_counters")
        conn.commit()
        (gen,) = conn.execute("SELECT gen FROM durable_streams").fetchone()
    async with opened(path) as system:
        s = await system.streams.get("S")
        c = await s.consumer("c")
        assert c._cid > max(a._cid, b._cid)
        await s.publish("s.x", 2)  # its gen moved past every one before
        assert [m.data for m in await c.fetch(10)] == [1, 2]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT gen FROM durable_streams").fetchone()[0] > gen


@pytest.mark.parametrize(("before", "after"), [("limits", "workqueue"), ("workqueue", "interest")])
async def test_retention_does_not_change_to_or_from_workqueue(
    open_store: Opener, before: str, after: str
) -> None:
    async with open_store() as system:
        await system.streams.create("Q", subjects=["q.>"], retention=before)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cannot change to or from 'workqueue'"):
            await system.streams.create("Q", subjects=["q.>"], retention=after)  # type: ignore[arg-type]
        assert (await system.streams.get("Q")).retention == before


async def test_an_update_may_not_leave_a_consumer_without_subjects(open_store: Opener) -> None:
    async with open_store() as system:
        f = await system.streams.create("F", subjects=["f.eu.>", "f.us.>"])
        await f.consumer("eu", filter="f.eu.>")
        with pytest.raises(ValueError, match=r"consumer 'eu' filters 'f\.eu\.>'"):
            await system.streams.create("F", subjects=["f.us.>"])
        await system.streams.create("F", subjects=["f.eu.>"])  # still takes it


async def test_an_old_handle_settles_by_the_retention_the_stream_has_now(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path / "s.db") as system:
        streams = system.streams
        s = await streams.create("S", subjects=["s.>"])
        a = await s.consumer("a")  # made under limits
        await streams.create("S", subjects=["s.>"], retention="interest")
        await s.publish("s.x", "one")
        (m,) = await a.fetch(1)
        assert await m.ack()
        assert (await s.info()).messages == 0  # every consumer settled it
        await streams.create("S", subjects=["s.>"])  # limits again
        await s.publish("s.x", "two")
        (m,) = await a.fetch(1)
        assert await m.ack()
        assert (await s.info()).messages == 1  # limits keep it


async def test_release_refuses_another_consumers_message(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        s = await system.streams.create("S", subjects=["s.>"])
        a, b = await s.consumer("a"), await s.consumer("b")
        await s.publish("s.x", 1)
        (ma,), (mb,) = await a.fetch(1), await b.fetch(1)
        with pytest.raises(ValueError, match="delivered to another consumer"):
            await a.release([mb])
        assert await ma.ack()
        assert await a.fetch(1) == []


async def test_dead_letters_follow_the_consumer_of_that_name(tmp_path: Path) -> None:
    async with opened(tmp_path / "s.db") as system:
        s = await system.streams.create("S", subjects=["s.>"])
        t = await system.streams.create("T", subjects=["t.>"])
        c = await s.consumer("c")
        dlq = s.dead_letters("c")
        await s.publish("s.x", "poison")
        (m,) = await c.fetch(1)
        await m.term("bad")
        assert [e.data for e in await dlq.browse()] == ["poison"]
        await c.delete()
        with pytest.raises(durable.ConsumerNotFound, match="has no consumer 'c'"):
            await dlq.browse()
        d = await t.consumer("d")  # must not be mistaken for c
        await t.publish("t.x", "bad too")
        (m,) = await d.fetch(1)
        await m.term("bad")
        with pytest.raises(durable.ConsumerNotFound):
            await dlq.requeue(1)
        c = await s.consumer("c")
        assert await dlq.browse() == []
        assert (await s.info()).messages == 1


async def test_a_push_on_a_deleted_consumer_fails_and_takes_nothing(tmp_path: Path) -> None:
    got: list[object] = []
    handling, go_on = anyio.Event(), anyio.Event()

    class Handler(actors.Actor):
        async def receive(self, message: durable.Message) -> None:
            got.append(message.data)
            handling.set()
            await go_on.wait()

    path = tmp_path / "s.db"
    with pytest.raises(durable.ConsumerNotFound, match="'a' of stream 'S' no longer exists"):
        async with opened(path) as system:
            s = await system.streams.create("S", subjects=["s.>"])
            t = await system.streams.create("T", subjects=["t.>"])
            a = await s.consumer("a")
            await system.spawn(durable.Push, Handler, durable=("S", "a"), max_in_flight=1)
            await s.publish("s.x", "for a")
            await handling.wait()  # the Push claims nothing more meanwhile
            await a.delete()
            await t.consumer("b")  # must not be mistaken for a
            await t.publish("t.x", "for b")
            go_on.set()
            with anyio.fail_after(10):  # until the Push's failure reaches the root
                await anyio.sleep_forever()
    async with opened(path) as system:
        b = await (await system.streams.get("T")).consumer("b")
        assert [m.data for m in await b.fetch(10)] == ["for b"]
    assert got == ["for a"]
