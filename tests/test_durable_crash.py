"""Durable streams under kill -9: of a consumer process in the middle of a
handler, and of the process that owns the file in the middle of a
transaction. Each test bounds its waits and kills what it started."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest
from durable_kit import Opener, opened

pytestmark = pytest.mark.anyio

KIT = Path(__file__).with_name("durable_kit.py")


@asynccontextmanager
async def child(
    mode: str, where: Path | str, backend: str
) -> AsyncIterator[tuple[anyio.abc.Process, list[str]]]:
    """Run durable_kit.py MODE on the store at WHERE (a file or a server's
    URL); yield it with the words of its ``ready`` line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(KIT.parent), *sys.path]))
    process = await anyio.open_process(
        [sys.executable, str(KIT), mode, str(where), backend], env=env, stderr=None
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = b""
            async for chunk in process.stdout:
                line += chunk
                if b"\n" in line:
                    break
        words = line.decode().split()
        assert words[:1] == ["ready"], line
        yield process, words[1:]
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True), anyio.fail_after(10):
            await process.wait()
        await process.aclose()


async def test_kill_9_of_a_consumer_mid_handler_redelivers_after_ack_wait(
    open_store: Opener, anyio_backend: tuple[str, object]
) -> None:
    async with open_store() as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing", ack_wait=1.0)
        await orders.publish_many([("orders.a", i) for i in range(1, 4)])
        async with child("consume", open_store.where, anyio_backend[0]) as (process, words):
            seq, deliveries, claimed_at = int(words[0]), int(words[1]), float(words[2])
            assert (seq, deliveries) == (1, 1)
            os.kill(process.pid, signal.SIGKILL)
            with anyio.fail_after(10):
                assert await process.wait() == -signal.SIGKILL
        store = system.streams.store
        # The others were never claimed: here at once, once each.
        rest = await billing.fetch(10)
        assert [(m.seq, m.deliveries) for m in rest] == [(2, 1), (3, 1)]
        await billing.ack(rest)
        with anyio.fail_after(10):
            (again,) = await billing.fetch(10, expires=5)
        assert store.clock() >= claimed_at + 1.0
        assert (again.seq, again.data, again.deliveries) == (1, 1, 2)
        assert await again.ack() is True
        assert await billing.fetch(10) == []
        assert (await billing.info()).pending == 0


async def test_kill_9_of_the_owner_mid_transaction_keeps_exactly_what_committed(
    tmp_path: Path, anyio_backend: tuple[str, object]
) -> None:
    path = tmp_path / "s.db"
    async with opened(path, "FULL") as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.consumer("billing", ack_wait=1.0)
        async with system.streams.transaction() as tx:
            await tx.execute("CREATE TABLE effects (seq INTEGER)")
        await orders.publish("orders.new", "first")
    async with child("transaction", path, anyio_backend[0]) as (process, words):
        assert words == ["1"]  # it claimed "first" and is inside its transaction
        os.kill(process.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            assert await process.wait() == -signal.SIGKILL
    async with opened(path, "FULL") as system:
        orders = await system.streams.get("ORDERS")
        info = await orders.info()
        assert (info.messages, info.last_seq) == (2, 2)  # "uncommitted" is not there
        async with system.streams.transaction() as tx:
            assert await tx.execute("SELECT * FROM effects") == []
        billing = await orders.consumer("billing", ack_wait=1.0)
        (committed,) = await billing.fetch(10)
        assert (committed.seq, committed.data, committed.deliveries) == (2, "committed", 1)
        # Settled now: a wait for "first" longer than its ack wait (a busy
        # machine) must not get it again.
        assert await committed.ack() is True
        with anyio.fail_after(10):
            (first,) = await billing.fetch(10, expires=5)
        assert (first.seq, first.data, first.deliveries) == (1, "first", 2)
        assert await first.ack() is True
        assert await orders.dead_letters("billing").browse() == []
