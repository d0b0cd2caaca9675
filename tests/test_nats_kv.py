"""Key-value buckets through our NATS client, on both backends, against a
real server: compare-and-set (create, update with a revision), get, delete,
purge, keys, history, per-key and bucket expiry with markers; watchers
(initial values, then changes; deletes seen; made again after a lost consumer
or a server restart, without leaking consumers); and nats-py on the same
buckets, each side reading and watching what the other wrote."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import nats
import nats.js.errors
import nats.js.kv
import pytest
from nats_kit import NatsServer, nats_server
from test_nats_interop import AsyncioThread

from actors._nats import (
    BucketNotFound,
    JetStream,
    KeyExists,
    KeyValue,
    KeyValueError,
    KvEntry,
    NatsError,
    WrongRevision,
    bind_bucket,
    connect,
    create_bucket,
    delete_bucket,
)

pytestmark = pytest.mark.anyio

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 10.0
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One server for the module's tests; each test uses buckets of its own."""
    with nats_server(tmp_path_factory.mktemp("nats-kv")) as running:
        yield running


@pytest.fixture
async def js(server: NatsServer) -> AsyncIterator[JetStream]:
    async with connect(server.url) as nc:
        yield JetStream(nc, timeout=WAIT)


def bucket_name() -> str:
    return f"b{next(_names)}"


async def consumers(js: JetStream, kv: KeyValue) -> int:
    info = await js.stream_info(kv.stream)
    return int(info["state"]["consumer_count"])


async def test_create_is_a_compare_and_set(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), history=5)
    first = await kv.create("names.billing", b"node-1")
    with pytest.raises(KeyExists) as exists:
        await kv.create("names.billing", b"node-2")
    assert exists.value.revision == first and exists.value.key == "names.billing"
    assert "update(key, value, last=" in str(exists.value)

    second = await kv.update("names.billing", b"node-1 renewed", last=first)
    assert second > first
    with pytest.raises(WrongRevision) as stale:
        await kv.update("names.billing", b"late", last=first)
    assert (stale.value.expected, stale.value.revision) == (first, second)
    with pytest.raises(WrongRevision) as missing:
        await kv.update("names.nobody", b"x", last=3)
    assert missing.value.revision == 0  # no such key

    entry = await kv.get("names.billing")
    assert entry is not None
    assert (entry.value, entry.revision, entry.operation) == (b"node-1 renewed", second, "PUT")
    assert entry.created.tzinfo is not None
    old = await kv.get("names.billing", revision=first)
    assert old is not None and old.value == b"node-1"
    assert await kv.get("names.nobody") is None


async def test_delete_purge_and_create_again(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), history=5)
    one = await kv.put("a", b"1")
    two = await kv.put("a", b"2")
    with pytest.raises(WrongRevision):
        await kv.delete("a", last=one)
    gone = await kv.delete("a", last=two)
    assert await kv.get("a") is None
    marker = await kv.get("a", include_deleted=True)
    assert marker is not None and marker.deleted and marker.operation == "DEL"
    assert marker.revision == gone
    # A deleted key can be created again; only one of two creators wins.
    again = await kv.create("a", b"3")
    with pytest.raises(KeyExists):
        await kv.create("a", b"4")
    assert [e.operation for e in await kv.history("a")] == ["PUT", "PUT", "DEL", "PUT"]

    await kv.purge("a", last=again)
    history = await kv.history("a")
    assert [(e.operation, e.value) for e in history] == [("PURGE", b"")]
    assert await kv.get("a") is None
    await kv.create("a", b"5")

    await kv.put("b.x", b"")
    await kv.put("b.y", b"")
    await kv.delete("b.y")
    assert sorted(await kv.keys()) == ["a", "b.x"]
    assert await kv.keys("b.*") == ["b.x"]
    assert await kv.keys("c.>") == []


async def test_of_many_creators_exactly_one_wins(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name())
    won: list[int] = []
    lost: list[KeyExists] = []

    async def claim(i: int) -> None:
        try:
            await kv.create("names.singleton", b"%d" % i)
            won.append(i)
        except KeyExists as error:
            lost.append(error)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(claim, i)
    assert len(won) == 1 and len(lost) == 9
    entry = await kv.get("names.singleton")
    assert entry is not None and entry.value == b"%d" % won[0]
    assert {error.revision for error in lost} == {entry.revision}


async def test_bad_input_and_missing_buckets(js: JetStream) -> None:
    with pytest.raises(ValueError, match="bucket name"):
        await create_bucket(js, "no.dots")
    with pytest.raises(ValueError, match="history"):
        await create_bucket(js, bucket_name(), history=65)
    with pytest.raises(BucketNotFound, match="create_bucket"):
        await bind_bucket(js, "nothing_here")
    name = bucket_name()
    kv = await create_bucket(js, name, history=2)
    assert (await create_bucket(js, name, history=2)).bucket == name  # same: binds
    with pytest.raises(KeyValueError, match="another configuration"):
        await create_bucket(js, name, history=3)
    with pytest.raises(ValueError, match="bad key"):
        await kv.put("trailing.", b"")
    with pytest.raises(ValueError, match="bad key"):
        await kv.put("a b", b"")
    with pytest.raises(ValueError, match="at least 1 second"):
        await kv.put("a", b"", ttl=0.5)
    with pytest.raises(ValueError, match="last="):
        await kv.update("a", b"", last=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pattern"):
        kv.watch("a b")
    await delete_bucket(js, name)
    with pytest.raises(BucketNotFound):
        await kv.get("a")
    with pytest.raises(BucketNotFound):
        await kv.put("a", b"")


async def test_a_watcher_gives_the_initial_values_then_changes(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), history=5)
    async with kv.watch("names.>") as empty:
        assert await empty.initial() == [] and empty.initial_done

    await kv.put("names.a", b"1")
    await kv.put("names.a", b"2")
    await kv.put("names.b", b"1")
    await kv.put("other", b"x")
    async with kv.watch("names.>") as watcher, kv.watch(["names.b", "other"]) as two:
        with anyio.fail_after(WAIT):
            initial = await watcher.initial()
            assert [(e.key, e.value) for e in initial] == [("names.a", b"2"), ("names.b", b"1")]
            assert [e.key for e in await two.initial()] == ["names.b", "other"]
        await kv.put("names.c", b"new")
        await kv.delete("names.a")
        await kv.purge("names.b")
        await kv.put("other", b"y")
        with anyio.fail_after(WAIT):
            changes = [await anext_entry(watcher) for _ in range(3)]
            theirs = [await anext_entry(two) for _ in range(2)]
        assert [(e.key, e.operation) for e in changes] == [
            ("names.c", "PUT"),
            ("names.a", "DEL"),
            ("names.b", "PURGE"),
        ]
        assert [(e.key, e.operation) for e in theirs] == [("names.b", "PURGE"), ("other", "PUT")]
        assert [e.revision for e in changes] == sorted(e.revision for e in changes)
        assert await consumers(js, kv) == 2
    assert await consumers(js, kv) == 0  # deleted on exit


async def anext_entry(watcher: Any) -> KvEntry:
    entry: KvEntry = await watcher.__anext__()
    return entry


async def test_watch_options(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), history=5)
    await kv.put("k", b"1")
    await kv.put("k", b"2")
    await kv.put("gone", b"1")
    await kv.delete("gone")
    with anyio.fail_after(WAIT):
        async with kv.watch(history=True) as everything:
            assert [(e.key, e.value) for e in await everything.initial()] == [
                ("k", b"1"),
                ("k", b"2"),
                ("gone", b"1"),
                ("gone", b""),
            ]
        async with kv.watch(include_deletes=False) as live:
            assert [e.key for e in await live.initial()] == ["k"]
        async with kv.watch(updates_only=True) as later:
            assert await later.initial() == []
            await kv.put("k", b"3")
            assert (await anext_entry(later)).value == b"3"
        async with kv.watch(meta_only=True) as meta:
            assert [(e.key, e.value) for e in await meta.initial()] == [("gone", b""), ("k", b"")]


async def test_expiry_leaves_a_marker_watchers_see(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), ttl=60.0, marker_ttl=5.0)
    async with kv.watch() as watcher:
        assert await watcher.initial() == []
        await kv.create("lease", b"node-1", ttl=1.0)
        with anyio.fail_after(WAIT):
            put = await anext_entry(watcher)
            expired = await anext_entry(watcher)
        assert (put.key, put.operation) == ("lease", "PUT")
        assert (expired.key, expired.operation, expired.deleted) == ("lease", "PURGE", True)
    assert await kv.get("lease") is None
    # The name is free again: a create replaces the marker.
    assert await kv.create("lease", b"node-2") > expired.revision


async def test_a_watcher_remakes_a_deleted_consumer(js: JetStream) -> None:
    kv = await create_bucket(js, bucket_name(), history=5)
    await kv.put("k", b"1")
    async with kv.watch(heartbeat=0.5) as watcher:
        assert len(await watcher.initial()) == 1
        await js.delete_consumer(kv.stream, watcher.consumer_name)
        await kv.put("k", b"2")
        await kv.put("k", b"3")
        with anyio.fail_after(WAIT):
            got = [(await anext_entry(watcher)).value for _ in range(2)]
        assert got == [b"2", b"3"]  # nothing skipped, nothing twice
        assert watcher.recreations >= 1
        assert await consumers(js, kv) == 1
    assert await consumers(js, kv) == 0


async def test_a_watcher_survives_a_server_restart(tmp_path: Path) -> None:
    with nats_server(tmp_path / "nats") as restarted:
        async with connect(restarted.url, reconnect_wait=0.02) as nc:
            js = JetStream(nc, timeout=WAIT)
            kv = await create_bucket(js, "restart")
            await kv.put("before", b"1")
            async with kv.watch(heartbeat=0.5) as watcher:
                assert [e.key for e in await watcher.initial()] == ["before"]
                restarted.stop()
                await restarted.astart()
                with anyio.fail_after(WAIT):
                    await nc.flush()
                    # JetStream may still be starting: a write is retried.
                    while True:
                        try:
                            await kv.put("after", b"2")
                            break
                        except NatsError:
                            await anyio.sleep(0.05)
                    entry = await anext_entry(watcher)
                assert (entry.key, entry.value) == ("after", b"2")
                assert watcher.recreations >= 1
                assert await consumers(js, kv) == 1  # the old one is gone
            assert await consumers(js, kv) == 0


# -- nats-py on the same buckets -----------------------------------------------------------


@pytest.fixture
def nats_py(server: NatsServer) -> Iterator[tuple[AsyncioThread, nats.aio.client.Client]]:
    """A nats-py client connected to the module's server, on its own loop."""
    side = AsyncioThread()
    side.thread.start()
    try:
        client = asyncio.run_coroutine_threadsafe(
            nats.connect(server.url, allow_reconnect=False), side.loop
        ).result(WAIT)
        try:
            yield side, client
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), side.loop).result(WAIT)
    finally:
        side.loop.call_soon_threadsafe(side.loop.stop)
        side.thread.join(WAIT)
        side.loop.close()


async def test_we_read_and_watch_a_nats_py_bucket(
    js: JetStream, nats_py: tuple[AsyncioThread, nats.aio.client.Client]
) -> None:
    side, theirs = nats_py
    name = bucket_name()
    their_js = theirs.jetstream(timeout=WAIT)
    their_kv: nats.js.kv.KeyValue = await side.run(
        lambda: their_js.create_key_value(bucket=name, history=3)
    )
    revision = await side.run(lambda: their_kv.put("names.a", b"from nats-py"))
    await side.run(lambda: their_kv.put("names.b", b"doomed"))

    kv = await bind_bucket(js, name)
    entry = await kv.get("names.a")
    assert entry is not None and (entry.value, entry.revision) == (b"from nats-py", revision)
    async with kv.watch("names.>") as watcher:
        assert [e.key for e in await watcher.initial()] == ["names.a", "names.b"]
        await side.run(lambda: their_kv.delete("names.b"))
        await side.run(lambda: their_kv.purge("names.a"))
        with anyio.fail_after(WAIT):
            seen = [await anext_entry(watcher) for _ in range(2)]
        assert [(e.key, e.operation) for e in seen] == [("names.b", "DEL"), ("names.a", "PURGE")]
    assert await kv.keys() == []
    with pytest.raises(WrongRevision):
        await kv.update("names.a", b"x", last=revision)


async def test_nats_py_reads_and_watches_our_bucket(
    js: JetStream, nats_py: tuple[AsyncioThread, nats.aio.client.Client]
) -> None:
    side, theirs = nats_py
    name = bucket_name()
    kv = await create_bucket(js, name, history=3)
    first = await kv.create("names.a", b"ours")
    await kv.put("names.b", b"doomed")
    their_kv: nats.js.kv.KeyValue = await side.run(
        lambda: theirs.jetstream(timeout=WAIT).key_value(name)
    )
    entry = await side.run(lambda: their_kv.get("names.a"))
    assert (entry.value, entry.revision) == (b"ours", first)

    async def start_watching() -> tuple[Any, list[tuple[str, str | None]]]:
        watcher: Any = await their_kv.watch("names.>")
        initial: list[tuple[str, str | None]] = []
        # Their "initial values done" marker (None) may come before values
        # already in flight (nats.py#842): read both values and the marker.
        done = False
        while not (done and len(initial) == 2):
            update = await watcher.updates(WAIT)
            if update is None:
                done = True
            else:
                initial.append((update.key, update.operation))
        return watcher, initial

    async def changes(watcher: Any) -> list[tuple[str, str | None]]:
        got = [(u.key, u.operation) for u in [await watcher.updates(WAIT) for _ in range(2)]]
        await watcher.stop()
        return got

    watcher, initial = await side.run(start_watching)
    assert initial == [("names.a", None), ("names.b", None)]
    await kv.update("names.a", b"ours, again", last=first)
    await kv.delete("names.b")
    assert await side.run(lambda: changes(watcher)) == [("names.a", None), ("names.b", "DEL")]
    # Read key by key: nats-py's keys() runs a watcher with the same race
    # (nats.py#842) and can find no keys at all.
    entry = await side.run(lambda: their_kv.get("names.a"))
    assert entry.value == b"ours, again"
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await side.run(lambda: their_kv.get("names.b"))
