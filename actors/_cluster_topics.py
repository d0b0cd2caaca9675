"""Topics as NATS subjects: the broker of a cluster's node.

In a cluster, ``publish(topic)`` delivers to this node's plain subscribers
at once (the count it returns is theirs), and publishes the message on
``actors.<cluster>.topic.<topic>``. Each node subscribes there for its own
subscriptions: one NATS subscription per pattern for its plain subscribers
(skipping what it published itself: they have it already), and one per
pattern and group in a NATS queue group of that name, so that the members of
a group compete across nodes (its own publishes included). A message that
matches no subscriber here is not a dead letter: other nodes may have some.

Anyone who can publish on those subjects must not be able to run code: each
message carries its sender's node name and a sequence number, and a tag
(:class:`~actors._mac.Tagger`) under a key drawn from the cluster's secret
over both, the topic and the body::

    "AT1" | sender length u8 | sender | sequence u64 | tag (16 bytes) | body

It is checked before the body is unpickled, and so is the sequence: it must
be greater than the last one taken from that sender (a copy of a message
that matched two patterns here is the same number, and is dropped) and not
older than :data:`MAX_AGE` seconds (sequences start at the sender's clock in
nanoseconds, so a restarted node goes on above its old numbers). A message
that fails is refused, counted and logged once, as on the links.

# Invariants:
# - ``_subs[(pattern, group)]`` exists exactly while this node has at least
#   one endpoint subscribed there, and holds its NATS subscription.
# - Nothing from a topic subject is unpickled before its tag and sequence
#   are checked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from . import _tracing
from ._broker import DeadLetterSink, Endpoint, TopicInfo
from ._codec import dumps, loads
from ._mac import TAG_SIZE, Tagger
from ._matcher import check_topic
from ._topics import LocalBroker

if TYPE_CHECKING:
    from ._cluster import Node
    from ._nats import Msg, Subscription

logger = logging.getLogger("actors.cluster")

MAGIC: Final = b"AT1"
_SEQUENCE: Final = struct.Struct("!Q")
#: Seconds a topic message may be old (by its sender's clock) and still be taken.
MAX_AGE: Final = 300.0
#: Messages a node's topic subscription buffers before its reader waits.
PENDING: Final = 4096


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that completes without waiting (the NATS client's
    ``subscribe`` and ``unsubscribe``), from synchronous code: the broker's
    subscribe is synchronous, and NATS keeps a SUB in order with the
    publishes after it."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the NATS client had to wait to subscribe")  # pragma: no cover


def topic_key(secret: bytes, cluster: str) -> bytes:
    """The key topic messages of ``cluster`` are tagged with."""
    return hmac.digest(secret, b"actors topics " + cluster.encode(), hashlib.sha256)


class ClusterTopics:
    """A node's :class:`~actors._broker.Broker` (internal; see the module)."""

    def __init__(self, node: Node, dead_letter: DeadLetterSink) -> None:
        self._node = node
        self._dead_letter = dead_letter
        self._plain = LocalBroker(dead_letter)
        self._groups: dict[tuple[str, str], LocalBroker] = {}
        self._subs: dict[tuple[str, str | None], list[Any]] = {}  # [count, Subscription]
        self._tagger = Tagger(topic_key(node.config._secret, node.config.name))
        self._prefix = f"actors.{node.config.name}.topic."
        self._sender = node.node.encode()
        self._sequence = time.time_ns()
        #: The last sequence taken from each sender (per group subscription,
        #: or for all plain ones), and the subscriptions it came through.
        self._last: dict[tuple[bytes, str, str | None], tuple[int, set[int]]] = {}
        self.closed = False

    def __repr__(self) -> str:
        return f"<ClusterTopics of {self._node.node}: {len(self._subs)} NATS subscriptions>"

    # -- subscribing ---------------------------------------------------------------

    def _broker(self, pattern: str, group: str | None) -> LocalBroker:
        if group is None:
            return self._plain
        broker = self._groups.get((pattern, group))
        if broker is None:
            broker = self._groups[(pattern, group)] = LocalBroker(self._dead_letter)
        return broker

    def subscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        if not self._broker(pattern, group).subscribe(pattern, endpoint, group):
            return False
        key = (pattern, group)
        held = self._subs.get(key)
        if held is not None:
            held[0] += 1
            return True
        client = self._node.topic_client
        if client is None or self.closed:
            return True  # the node is closing: here only
        sub: Subscription = run_now(
            client.subscribe(self._prefix + pattern, group or "", pending_msgs=PENDING)
        )
        self._subs[key] = [1, sub]
        self._node.system._start(self._consume, key, sub, name=f"topic {pattern}")
        return True

    def _release(self, pattern: str, group: str | None) -> None:
        key = (pattern, group)
        held = self._subs.get(key)
        if held is None:
            return
        held[0] -= 1
        if held[0] == 0:
            del self._subs[key]
            run_now(held[1].unsubscribe())
            if group is not None:
                self._groups.pop((pattern, group), None)

    def unsubscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        broker = self._plain if group is None else self._groups.get((pattern, group))
        if broker is None or not broker.unsubscribe(pattern, endpoint, group):
            return False
        self._release(pattern, group)
        return True

    def drop(self, endpoint: Endpoint) -> int:
        dropped = 0
        for pattern, group in self.subscriptions(endpoint):
            if self.unsubscribe(pattern, endpoint, group):
                dropped += 1
        return dropped

    def subscriptions(self, endpoint: Endpoint) -> list[tuple[str, str | None]]:
        found = self._plain.subscriptions(endpoint)
        for broker in list(self._groups.values()):
            found.extend(broker.subscriptions(endpoint))
        return found

    def topics(self) -> list[TopicInfo]:
        merged: dict[str, tuple[tuple[str, ...], list[Any]]] = {}
        for broker in [self._plain, *self._groups.values()]:
            for info in broker.topics():
                plain, groups = merged.get(info.pattern, ((), []))
                merged[info.pattern] = (plain + info.subscribers, groups + list(info.groups))
        return [
            TopicInfo(pattern, plain, tuple(sorted(groups, key=lambda group: group.name)))
            for pattern, (plain, groups) in sorted(merged.items())
        ]

    def close(self) -> None:
        """Stop taking messages from NATS (the node is closing)."""
        self.closed = True
        for _, sub in self._subs.values():
            run_now(sub.unsubscribe())

    # -- publishing ----------------------------------------------------------------

    async def publish(self, topic: str, message: Any) -> int:
        check_topic(topic)
        if _tracing.tracer is not None and type(message) is not _tracing.Traced:
            # One PRODUCER span for the publish on every node (as
            # actors._topics._traced_publish does for one system's).
            span = _tracing.start_publish(topic)
            try:
                traced = _tracing.Traced(message, _tracing.context_of(span))
                return await self.publish(topic, traced)
            except Exception as error:
                _tracing.failed(span, error)
                raise
            finally:
                span.end()
        # A traced message crosses with its context, inside the tagged body.
        if type(message) is _tracing.Traced:
            context = message.context
            plain: Any = message.message
            if context is not None and _tracing.tracer is not None:
                plain = _tracing.Stored(plain, _tracing.inject(context))
        else:
            plain = message
        body = dumps(plain)  # fails here, before anything is delivered
        delivered = 0
        if not self._plain._matcher.lookup(topic).empty:
            delivered = await self._plain.publish(topic, message)
        client = self._node.topic_client
        if client is None or self.closed:
            return delivered
        self._sequence = max(self._sequence + 1, time.time_ns())
        head = self._head(self._sender, self._sequence)
        tag = self._tagger.tag(head + topic.encode(), body)
        await client.publish(self._prefix + topic, head + tag + body)
        return delivered

    def offer(self, topic: str, message: Any) -> int:
        # Dead letters and other offers stay on this node.
        return self._plain.offer(topic, message)

    @staticmethod
    def _head(sender: bytes, sequence: int) -> bytes:
        return MAGIC + bytes((len(sender),)) + sender + _SEQUENCE.pack(sequence)

    # -- receiving -----------------------------------------------------------------

    async def _consume(self, key: tuple[str, str | None], sub: Subscription) -> None:
        pattern, group = key
        async for msg in sub:
            taken = self._check(key, msg)
            if taken is None:
                continue
            topic, body = taken
            try:
                message = loads(body)
            except Exception as error:
                logger.error("a message on topic %r could not be unpickled: %r", topic, error)
                continue
            if type(message) is _tracing.Stored:  # published while tracing
                message = _tracing.incoming(message.message, message.headers)
            if group is None:
                await self._plain.publish(topic, message)
            else:
                broker = self._groups.get((pattern, group))
                if broker is not None:
                    await broker.publish(topic, message)

    def _check(self, key: tuple[str, str | None], msg: Msg) -> tuple[str, bytes] | None:
        """The topic and body of ``msg`` if it is genuine and fresh, else None."""
        data = msg.data
        node = self._node
        topic = msg.subject[len(self._prefix) :]
        if len(data) < len(MAGIC) + 1 or not data.startswith(MAGIC):
            node._reject(f"a malformed message on {msg.subject!r}")
            return None
        size = data[len(MAGIC)]
        start = len(MAGIC) + 1 + size + _SEQUENCE.size
        if len(data) < start + TAG_SIZE:
            node._reject(f"a malformed message on {msg.subject!r}")
            return None
        head = data[:start]
        sender = head[len(MAGIC) + 1 : len(MAGIC) + 1 + size]
        (sequence,) = _SEQUENCE.unpack_from(head, start - _SEQUENCE.size)
        tag = data[start : start + TAG_SIZE]
        body = data[start + TAG_SIZE :]
        if not hmac.compare_digest(tag, self._tagger.tag(head + topic.encode(), body)):
            node._reject(f"a message on {msg.subject!r} whose tag is wrong (forged?)")
            return None
        if key[1] is None and sender == self._sender:
            return None  # published here: the plain subscribers here have it
        # Plain subscriptions share one count per sender: a message that
        # matched two patterns here came twice, and is delivered once.
        last_key = (sender, "", None) if key[1] is None else (sender, *key)
        last, sids = self._last.get(last_key, (0, set()))
        if sequence == last and msg.sid not in sids:
            sids.add(msg.sid)
            return None  # the same message through another pattern here
        if sequence <= last or sequence < time.time_ns() - int(MAX_AGE * 1e9):
            node._reject(f"a message on {msg.subject!r} sent again (a replay?)")
            return None
        self._last[last_key] = (sequence, {msg.sid})
        return topic, body
