"""Durable streams: messages that survive crashes, acks, redelivery, dead letters.

A stream keeps the messages published to its subjects in a store (an SQLite
file by default); durable consumers pull them, settle each (ack, nak,
in progress, term), get what they did not settle again after their ack wait,
move what keeps failing to a dead-letter queue, and resume after a restart
exactly where they stopped. ``streams.transaction()`` commits your own SQL,
acks and publishes together.

Examples:
    >>> import actors, os, tempfile
    >>> from actors import durable
    >>> async def main(path):
    ...     async with actors.ActorSystem(store=durable.SQLiteStore(path)) as system:
    ...         orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    ...         await orders.publish("orders.eu.created", {"id": 1})
    ...         billing = await orders.consumer("billing")
    ...         (m,) = await billing.fetch(1)
    ...         await m.ack()
    ...         return m.data, m.deliveries
    >>> actors.run(main, os.path.join(tempfile.mkdtemp(), "orders.db"))
    ({'id': 1}, 1)
"""

from ._consumer import Consumer as Consumer
from ._consumer import ConsumerInfo as ConsumerInfo
from ._consumer import Message as Message
from ._dlq import DeadLetterEntry as DeadLetterEntry
from ._dlq import DeadLetters as DeadLetters
from ._dlq import Unreadable as Unreadable
from ._errors import ConsumerNotFound as ConsumerNotFound
from ._errors import DurableError as DurableError
from ._errors import StoreNotConfigured as StoreNotConfigured
from ._errors import StreamNotFound as StreamNotFound
from ._jetstream import JetStreamStore as JetStreamStore
from ._outbox import relay as relay
from ._push import Push as Push
from ._store import SQLiteStore as SQLiteStore
from ._store import Store as Store
from ._streams import Stream as Stream
from ._streams import StreamInfo as StreamInfo
from ._streams import Streams as Streams
from ._transaction import Transaction as Transaction

__all__ = [
    "Consumer",
    "ConsumerInfo",
    "ConsumerNotFound",
    "DeadLetterEntry",
    "DeadLetters",
    "DurableError",
    "JetStreamStore",
    "Message",
    "Push",
    "SQLiteStore",
    "Store",
    "StoreNotConfigured",
    "Stream",
    "StreamInfo",
    "StreamNotFound",
    "Streams",
    "Transaction",
    "Unreadable",
    "relay",
]


def _fix_modules() -> None:
    # Tracebacks, docs and pickles name ``actors.durable.X``.
    for name in __all__:
        globals()[name].__module__ = __name__


_fix_modules()
del _fix_modules
