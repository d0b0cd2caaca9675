"""Helpers for the durable-stream tests, and a child process that uses a store.

Run as a script (``python durable_kit.py MODE WHERE BACKEND``) it opens the
store at WHERE (an SQLite file's path, or a JetStream server's ``nats://``
URL), does what MODE says, prints ``ready <details>`` and then waits to be
killed with SIGKILL:

- ``consume``: claims one message of consumer ``billing`` of ``ORDERS`` (ack
  wait 1 s) and holds it, as a handler in the middle of its work.
- ``transaction``: publishes ``committed`` to ``orders.ok`` and claims one
  message of ``billing``; then, inside a transaction, inserts into table
  ``effects`` and publishes ``uncommitted`` to ``orders.lost``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

import actors
from actors import durable
from actors._nats import JetStreamError


class Opener:
    """Opens an actor system on one store of a test: ``"sqlite"`` (a file in
    the test's directory) or ``"jetstream"`` (a server the module shares; the
    first open of a test deletes every stream the tests before left there,
    unless ``wipe`` is false: a test's child process opens what it set up).
    Each open is a new system and a new store on the same data, like a
    restart."""

    def __init__(
        self,
        kind: str,
        path: Path,
        url: str | None = None,
        *,
        wipe: bool = True,
        synchronous: str = "NORMAL",
    ) -> None:
        self.kind = kind
        self.path = path
        self.url = url
        self._wiped = not wipe
        self.synchronous = synchronous  # the SQLite store's

    def __repr__(self) -> str:
        return self.kind

    @property
    def jetstream(self) -> bool:
        return self.kind == "jetstream"

    @property
    def where(self) -> str:
        """What another process opens: the server's URL, or the file's path."""
        return self.url if self.url is not None else str(self.path)

    @asynccontextmanager
    async def __call__(self, synchronous: str | None = None) -> AsyncIterator[actors.ActorSystem]:
        if not self.jetstream:
            async with opened(self.path, synchronous or self.synchronous) as system:
                yield system
            return
        assert self.url is not None
        async with durable.JetStreamStore(self.url, timeout=10.0) as store:
            if not self._wiped:
                self._wiped = True
                await wipe(store)
            async with actors.ActorSystem("durable-test", store=store) as system:
                yield system


async def wipe(store: durable.JetStreamStore) -> None:
    """Delete every stream on the store's server, until it lists none (a
    leftover dead-letter stream would hold the last test's entries)."""
    with anyio.fail_after(10):
        while names := [info["config"]["name"] for info in await store.js.stream_names()]:
            for name in names:
                with contextlib.suppress(JetStreamError):  # gone meanwhile
                    await store.js.delete_stream(name)


@asynccontextmanager
async def opened(
    path: Path | str, synchronous: str = "NORMAL"
) -> AsyncIterator[actors.ActorSystem]:
    store = durable.SQLiteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
    async with actors.ActorSystem("durable-test", store=store) as system:
        yield system


async def parked(system: actors.ActorSystem) -> int:
    """The SQLite store's deliveries parked until due (their rows' consumer
    ids negated, out of the claims' way), counted in the file."""
    async with system.streams.transaction() as tx:
        rows = await tx.execute("SELECT count(*) FROM durable_pending WHERE cid < 0")
    return int(rows[0][0])


async def _child(mode: str, where: str) -> None:
    if where.startswith("nats://"):  # the test's server: open, never wiped
        store = Opener("jetstream", Path(), where, wipe=False)
    else:
        store = Opener("sqlite", Path(where))
    async with store() as system:
        orders = await system.streams.get("ORDERS")
        billing = await orders.consumer("billing", ack_wait=1.0)
        if mode == "consume":
            # The clock before the claim: the claim's own time is at least
            # this (one read after the fetch could be late by a busy moment).
            before = system.streams.store.clock()
            (m,) = await billing.fetch(1, expires=10)
            print("ready", m.seq, m.deliveries, before, flush=True)
        elif mode == "transaction":
            await orders.publish("orders.ok", "committed")
            (m,) = await billing.fetch(1, expires=10)
            async with system.streams.transaction() as tx:
                await tx.execute("INSERT INTO effects VALUES (?)", (m.seq,))
                await tx.publish("orders.lost", "uncommitted")
                print("ready", m.seq, flush=True)
                await anyio.sleep_forever()
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(_child, sys.argv[1], sys.argv[2], backend=sys.argv[3])
