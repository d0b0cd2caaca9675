"""Topics across a connection: one system keeps the topics, the other forwards.

Two systems joined by a :class:`~actors._peer.Peer` share one set of topics
when one side is the authority and the other forwards to it: a child process
forwards to its parent. On the forwarding side (:func:`forward_topics`) the
registry's broker is an :class:`UpstreamBroker`:

- ``subscribe``, ``unsubscribe`` and the end of a subscriber are control
  messages to the authority (``topics.subscribe`` ..., urgent: they overtake
  anything queued before them, never a publish, which is awaited);
- ``publish`` asks the authority's ``topics.publish`` service, which
  publishes there and answers how many subscribers got the message: a round
  trip per publish (while tracing, the publish span's context goes with the
  message, and the deliveries over there are its children);
- ``offer`` (dead letters to :data:`~actors._broker.DEAD_LETTERS_TOPIC`)
  offers to nobody: every subscriber is over there, and a child process
  passes its dead letters to its parent's system, which offers them there.

Nothing is delivered by the forwarding side's own broker: it only keeps the
subscriptions made there, to answer ``subscribe``'s "already subscribed" and
``subscriptions()`` at once.

On the authority's side (:func:`serve_topics`) a subscriber is the ref the
forwarding side sent:

- an actor it hosts for the authority (a process actor) pickles as its
  stand-in, a local actor here: the stand-in is subscribed, and delivery is
  the stand-in's (its mailbox, then the connection). Its membership in
  groups follows its life: a killed process fails the stand-in, whose
  subscriptions end with it.
- any other actor over there is a :class:`~actors._remote.RemoteRef`: it gets a
  :class:`_RemoteEndpoint`, a bounded queue here (its mailbox's capacity and
  policy) drained to the connection by a task of the peer, which ends when
  the actor ends or the connection does.

So groups compete across processes with the in-process rules: one member
gets each message, in turn, skipping members whose queue here is full.

# Invariants:
# - A forwarding side's broker holds a subscription exactly when it has sent
#   its ``topics.subscribe`` and not its ``topics.unsubscribe``/``drop``; each
#   ``subscribe`` there sends one (the authority may have ended it since).
# - ``_Authority.remote`` has an entry for each remote actor with a live
#   ``_RemoteEndpoint``; its pump's end (the actor's, the connection's, or a
#   drop) removes the entry, drops its subscriptions, closes its queue and
#   turns what was left in it into dead letters.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import _tracing
from ._broker import Endpoint, Overflow, TopicInfo
from ._channel import Channel
from ._exceptions import (
    UNSENDABLE,
    ActorsError,
    ActorStopped,
    ChannelDrained,
    ConnectionLost,
    unsent_reason,
)
from ._matcher import check_topic
from ._remote import RemoteRef
from ._topics import LocalBroker

if TYPE_CHECKING:
    from ._broker import DeadLetterSink
    from ._peer import Peer
    from ._ref import ActorRef
    from ._registry import Registry
    from ._system import ActorSystem

logger = logging.getLogger("actors.topics")

#: Control messages and services of the protocol.
SUBSCRIBE: Final = "topics.subscribe"  # (ref, pattern, group, capacity, overflow)
UNSUBSCRIBE: Final = "topics.unsubscribe"  # (ref, pattern, group)
DROP: Final = "topics.drop"  # ref: every subscription of it ends
PUBLISH: Final = "topics.publish"  # ask (topic, message[, headers]) -> delivered count


# -- the forwarding side ------------------------------------------------------


class UpstreamBroker:
    """A :class:`~actors._broker.Broker` that forwards to the system at the
    other end of ``peer`` (see the module)."""

    __slots__ = ("_local", "_peer", "_publish_to")

    def __init__(self, peer: Peer, dead_letter: DeadLetterSink) -> None:
        self._peer = peer
        self._local = LocalBroker(dead_letter)  # bookkeeping: nothing is published to it
        # A service is reached like an actor, at an address no actor has.
        self._publish_to = RemoteRef(peer, "", PUBLISH, 0)

    def __repr__(self) -> str:
        return f"<UpstreamBroker to {self._peer.node}>"

    def subscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        ref = endpoint.ref
        if ref is None:
            raise ActorsError(
                f"pull subscriptions (system.subscription({pattern!r})) are not "
                f"available in a process whose topics are kept by {self._peer.node}: "
                f"subscribe an actor instead (context.subscribe)"
            )
        new = self._local.subscribe(pattern, endpoint, group)
        # Sent even if held here: the authority may have ended it (an
        # unsubscribe made over there); there it changes nothing otherwise.
        capacity = endpoint.channel.capacity
        self._peer.signal(
            SUBSCRIBE,
            (ref, pattern, group, None if capacity == math.inf else capacity, endpoint.overflow),
        )
        return new

    def unsubscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        removed = self._local.unsubscribe(pattern, endpoint, group)
        # Sent even if unknown here: the authority may hold it (a spawn
        # option given over there).
        if endpoint.ref is not None:
            self._peer.signal(UNSUBSCRIBE, (endpoint.ref, pattern, group))
        return removed

    def drop(self, endpoint: Endpoint) -> int:
        dropped = self._local.drop(endpoint)
        if endpoint.ref is not None:
            self._peer.signal(DROP, endpoint.ref)
        return dropped

    async def publish(self, topic: str, message: Any) -> int:
        check_topic(topic)
        if _tracing.tracer is not None or type(message) is _tracing.Traced:
            return await self._traced_publish(topic, message)
        count: int = await self._publish_to.ask((topic, message), timeout=None)
        return count

    async def _traced_publish(self, topic: str, message: Any) -> int:
        # As above, with the trace context beside the message: a PRODUCER
        # span here covers the round trip, and the deliveries over there are
        # its children. A message that came with its context (a publish
        # passed on from a process further down) keeps it, without a span.
        span = None
        if type(message) is _tracing.Traced:
            context, message = message.context, message.message
        else:
            span = _tracing.start_publish(topic)
            context = _tracing.context_of(span)
        if _tracing.tracer is None or context is None:
            request: tuple[Any, ...] = (topic, message)
        else:
            request = (topic, message, _tracing.inject(context))
        try:
            if span is None:
                count: int = await self._publish_to.ask(request, timeout=None)
                return count
            with _tracing.use(span):  # the round trip's ask is its child
                count = await self._publish_to.ask(request, timeout=None)
                return count
        except Exception as error:
            if span is not None:
                _tracing.failed(span, error)
            raise
        finally:
            if span is not None:
                span.end()

    def offer(self, topic: str, message: Any) -> int:
        return 0  # every subscriber is over there (see the module)

    def subscriptions(self, endpoint: Endpoint) -> list[tuple[str, str | None]]:
        return self._local.subscriptions(endpoint)

    def topics(self) -> list[TopicInfo]:
        return self._local.topics()


def forward_topics(system: ActorSystem, peer: Peer) -> None:
    """Make ``system``'s topics those of the system at the other end of
    ``peer``, which must :func:`serve_topics`. Call it before anything in
    ``system`` subscribes."""
    registry = system.registry
    registry._broker = UpstreamBroker(peer, registry._report)


# -- the authority's side -----------------------------------------------------


class _RemoteEndpoint(Endpoint):
    """A subscriber over there without a stand-in here: a queue drained to
    the connection."""

    __slots__ = ("_authority", "_remote")

    def __init__(
        self, authority: _Authority, ref: RemoteRef, capacity: float, overflow: Overflow
    ) -> None:
        super().__init__(f"{ref.path} on {ref._system_name}", Channel(capacity), overflow)
        self._authority = authority
        self._remote = ref

    @property
    def ref(self) -> ActorRef:
        return self._remote

    def dead_letter(self, message: Any, reason: str, topic: str | None) -> None:
        self._authority.registry._system._dead_letter(message, self._remote, reason, topic=topic)

    def drop_oldest(self) -> Any:
        return self.channel.receive_nowait()

    async def pump(self) -> None:
        # A task of the peer: cancelled when the connection ends.
        why = "connection lost"
        try:
            async with anyio.create_task_group() as task_group:

                async def until_it_ends() -> None:
                    nonlocal why
                    ended = await self._remote.join()
                    if not isinstance(ended.reason, ConnectionLost):
                        why = "stopped"
                    task_group.cancel_scope.cancel()

                task_group.start_soon(until_it_ends)
                async for message in self.channel:
                    try:
                        await self._remote.tell(message)
                    except UNSENDABLE as error:
                        self.dead_letter(message, unsent_reason(error), None)
                why = "stopped"  # closed by a drop
                task_group.cancel_scope.cancel()
        finally:
            self.close(why)

    def close(self, why: str = "stopped") -> None:
        """Leave every topic; what is left in the queue becomes a dead letter."""
        authority = self._authority
        if authority.remote.get(self._remote) is self:
            del authority.remote[self._remote]
        authority.registry._broker.drop(self)
        self.channel.close()
        while True:
            try:
                message = self.channel.receive_nowait()
            except ChannelDrained:
                break
            self.dead_letter(message, why, None)


class _Authority:
    """The subscriptions one peer made here, and its services."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.registry: Registry = peer.system.registry
        self.remote: dict[ActorRef, _RemoteEndpoint] = {}

    def on_subscribe(
        self, payload: tuple[ActorRef, str, str | None, float | None, Overflow]
    ) -> None:
        ref, pattern, group, capacity, overflow = payload
        try:
            if isinstance(ref, RemoteRef):
                endpoint = self.remote.get(ref)
                if endpoint is None:
                    if self.peer.error is not None:
                        return
                    endpoint = _RemoteEndpoint(
                        self, ref, math.inf if capacity is None else capacity, overflow
                    )
                    self.remote[ref] = endpoint
                    self.peer.start_soon(endpoint.pump)
                self.registry._broker.subscribe(pattern, endpoint, group)
            else:
                self.registry.subscribe(pattern, ref, group)
        except ActorStopped:
            pass  # it is ending (here first): its subscriptions end with it
        except Exception:
            logger.exception("%s: cannot subscribe %r to %r", self.peer.node, ref, pattern)

    def on_unsubscribe(self, payload: tuple[ActorRef, str, str | None]) -> None:
        ref, pattern, group = payload
        try:
            if isinstance(ref, RemoteRef):
                endpoint = self.remote.get(ref)
                if endpoint is not None:
                    self.registry._broker.unsubscribe(pattern, endpoint, group)
            else:
                self.registry.unsubscribe(pattern, ref, group)
        except Exception:
            logger.exception("%s: cannot unsubscribe %r from %r", self.peer.node, ref, pattern)

    def on_drop(self, ref: ActorRef) -> None:
        try:
            if isinstance(ref, RemoteRef):
                endpoint = self.remote.get(ref)
                if endpoint is not None:
                    endpoint.close()  # its pump ends at the closed queue
            else:
                for pattern, group in self.registry.subscriptions(ref):
                    self.registry.unsubscribe(pattern, ref, group)
        except Exception:
            logger.exception("%s: cannot drop the subscriptions of %r", self.peer.node, ref)

    async def publish(self, request: tuple[Any, ...]) -> int:
        # (topic, message), or with the trace context's headers third.
        topic, message = request[0], request[1]
        if len(request) > 2:
            message = _tracing.incoming(message, request[2])
        return await self.registry.publish(topic, message)


def serve_topics(peer: Peer) -> None:
    """Keep the topics of the system at the other end of ``peer`` here (it
    calls :func:`forward_topics`): its subscriptions join this system's, its
    publishes are published here."""
    authority = _Authority(peer)
    peer.handlers[SUBSCRIBE] = authority.on_subscribe
    peer.handlers[UNSUBSCRIBE] = authority.on_unsubscribe
    peer.handlers[DROP] = authority.on_drop
    peer.services[PUBLISH] = authority.publish
