"""A key-value watcher on a three-server cluster: kill -9 of the server that
holds the watcher's consumer. The watcher makes a new consumer on a live
server within seconds and goes on, instead of waiting for the dead one to
answer the delete of its old consumer (or the making of a new one placed on
it). Bounded; the killed server is started again."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest
from nats_kit import NatsServer

from actors._nats import (
    JetStream,
    KeyValue,
    KeyWatcher,
    KvEntry,
    NatsConnectionLost,
    connect,
    create_bucket,
)

pytestmark = pytest.mark.anyio

#: Each JetStream request may wait this long: longer than the whole bound
#: below, so a watcher that waits on the dead server cannot meet it.
API_TIMEOUT = 30.0
#: The promise: the watcher gives a change made after the kill this soon.
RESUME = 10.0


def meta_leader(server: NatsServer) -> str:
    """The JetStream meta leader, as ``server``'s monitoring port sees it."""
    url = f"http://127.0.0.1:{server.monitor_port}/jsz"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(json.load(answer)["meta_cluster"]["leader"])


async def next_entry(watcher: AsyncIterator[KvEntry]) -> KvEntry:
    return await watcher.__anext__()


@pytest.mark.chaos
async def test_a_watcher_whose_consumers_server_dies_goes_on_without_it(
    nats_cluster: list[NatsServer],
) -> None:
    urls = [server.url for server in nats_cluster]
    async with connect(urls, reconnect_wait=0.02) as nc, AsyncExitStack() as stack:
        js = JetStream(nc, timeout=API_TIMEOUT)
        kv: KeyValue = await create_bucket(js, f"w{anyio.current_time():.0f}", replicas=3)
        # The server to kill leads nothing (a leader's death makes the others
        # elect one first, 4 to 9 s), and holds the consumer of one watcher.
        leaders = {
            meta_leader(nats_cluster[0]),
            (await js.stream_info(kv.stream))["cluster"]["leader"],
        }
        watcher: KeyWatcher | None = None
        victim: NatsServer | None = None
        for _ in range(30):  # consumers (one replica) go to any of the three
            candidate = await stack.enter_async_context(kv.watch(heartbeat=0.5))
            assert await candidate.initial() == []
            info = await js.consumer_info(kv.stream, candidate.consumer_name)
            host = info["cluster"]["leader"]
            if host not in leaders:
                watcher = candidate
                (victim,) = [s for s in nats_cluster if s.name == host]
                break
        assert watcher is not None and victim is not None
        try:
            victim.kill()
            with anyio.fail_after(RESUME):
                while True:  # the client may have been on the victim: it reconnects
                    try:
                        await kv.put("after", b"1")
                        break
                    except NatsConnectionLost:
                        await anyio.sleep(0.05)
                entry = await next_entry(watcher)
            assert (entry.key, entry.value) == ("after", b"1")
            assert watcher.recreations >= 1
        finally:
            await victim.astart()
