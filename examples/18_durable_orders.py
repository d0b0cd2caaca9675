"""An order pipeline on a durable stream: it survives ``kill -9`` of its
consumer, and a poison order goes to the dead-letter queue until it is fixed.

This example shows:

- ``ActorSystem(store=durable.SQLiteStore(path))`` and
  ``system.streams.create(...)``: a stream kept in one SQLite file, its
  subjects, and ``publish(..., msg_id=...)``, which returns the sequence once
  the message is on disk and stores a repeated id only once;
- a durable consumer with an ack wait, a finite ``max_deliver`` and a
  backoff; its position lives in the file, so any process may continue it;
- ``kill -9`` of a billing process in the middle of an order: the order
  comes back after the ack wait, delivery 2, and nothing else is lost or
  charged twice;
- ``durable.Push``: a supervised actor fed by the consumer, one order at a
  time (``max_in_flight=1``): returning acks, raising naks and crashes the
  actor, which its supervisor restarts;
- the poison order: after ``max_deliver`` failed deliveries it moves to the
  consumer's dead-letter queue with its count and last error; after the
  fix, ``requeue`` delivers it again, its count reset.

The crashes are logged on the ``actors`` and ``supervision`` loggers; here
they go to stderr as one line each, tracebacks left out.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from decimal import Decimal

import anyio
from _lifelines import exit_with_parent

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


def parse(amount: str) -> Decimal:
    if accept_commas:
        amount = amount.replace(",", ".")
    if not amount.replace(".", "", 1).isdigit():
        raise ValueError(f"bad amount {amount!r}")
    return Decimal(amount)


# --8<-- [start:setup]
async def setup(system: ActorSystem) -> durable.Stream:
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    await orders.consumer("billing", ack_wait=1.0, max_deliver=3, backoff=[0.05, 0.1])
    async with system.streams.transaction() as tx:
        await tx.execute("CREATE TABLE IF NOT EXISTS charges (id INTEGER PRIMARY KEY, amount)")
    return orders


# --8<-- [end:setup]


# --8<-- [start:billing]
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
        async with self.context.system.streams.transaction() as tx:
            await tx.execute(
                "INSERT OR IGNORE INTO charges VALUES (?, ?)", (order["id"], str(amount))
            )
        await self.results.send(("charged", order["id"], message.deliveries))
        # Returning acks the message.


# --8<-- [end:billing]


async def billing_process(path: str) -> None:
    """A billing process that takes one order and hangs in the middle of it;
    it ends with this script, ``kill -9`` included (``_lifelines.py``)."""
    exit_with_parent()
    async with ActorSystem(store=durable.SQLiteStore(path)) as system:
        billing = await (await system.streams.get("ORDERS")).open_consumer("billing")
        (message,) = await billing.fetch(1, expires=10)
        print(f"charging order {message.data['id']} (delivery {message.deliveries})", flush=True)
        await anyio.sleep_forever()


class OneLine(logging.Formatter):
    """A log format of one line per event: tracebacks are left out."""

    def formatException(self, ei: object) -> str:
        return ""


async def main() -> None:
    global accept_commas
    if sys.argv[1:2] == ["--billing-process"]:
        await billing_process(sys.argv[2])
        return
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[to_stderr])
    path = os.path.join(tempfile.mkdtemp(), "orders.db")

    # --8<-- [start:publish]
    async with ActorSystem(store=durable.SQLiteStore(path)) as system:
        orders = await setup(system)
        print("-- five orders published (order 3 is malformed)")
        for order in ORDERS:
            seq = await orders.publish("orders.eu.created", order, msg_id=f"order-{order['id']}")
            print(f"  order {order['id']}: sequence {seq}")
        again = await orders.publish("orders.eu.created", ORDERS[1], msg_id="order-2")
        print(f"  order 2 published again: sequence {again} (the same: stored once)")
    # --8<-- [end:publish]

    # --8<-- [start:kill]
    print("-- a billing process takes an order; kill -9 in the middle of it")
    async with await anyio.open_process(
        [sys.executable, __file__, "--billing-process", path], stderr=None
    ) as process:
        assert process.stdout is not None
        line = (await process.stdout.receive()).decode().strip()
        print(f"  billing process: {line}")
        os.kill(process.pid, signal.SIGKILL)
        print(f"  billing process killed: exit {await process.wait()}")
    # --8<-- [end:kill]

    # --8<-- [start:push]
    print("-- a supervised Billing actor takes over, one order at a time")
    results: Channel[tuple[str, int, int]] = Channel(100)
    async with ActorSystem(store=durable.SQLiteStore(path)) as system:
        spec = ChildSpec(
            durable.Push,
            Billing,
            results,
            durable=("ORDERS", "billing"),
            max_in_flight=1,
            name="billing",
        )
        await system.spawn(Supervisor, [spec], max_restarts=10, within=60, name="sup")
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
        # --8<-- [end:push]

        # --8<-- [start:requeue]
        print("-- the parser is fixed; order 3 is requeued")
        accept_commas = True
        await dlq.requeue(3)
        outcome, order_id, delivery = await results.receive()
        print(f"  order {order_id}: {outcome} (delivery {delivery}: the count was reset)")
        billing = await orders.open_consumer("billing")
        info = await billing.info()
        print(f"  pending {info.pending}, dead letters {info.dead_letters}")
        async with system.streams.transaction() as tx:
            charges = await tx.execute("SELECT id, amount FROM charges ORDER BY id")
        print("  charges:", ", ".join(f"order {i} {amount}" for i, amount in charges))
        # --8<-- [end:requeue]


if __name__ == "__main__":
    actors.run(main)
