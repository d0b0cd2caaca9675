"""The broker seam: the one small interface topic delivery goes through.

The registry and everything above it (``system.publish``, ``Context``, pull
subscriptions) talk to a :class:`Broker` only. The first release ships the
in-process broker (``actors._topics.LocalBroker``); a later release can put
NATS (topics as subjects, groups as queue groups) or a durable store behind
the same methods without touching callers.

A broker delivers to :class:`Endpoint` objects: the local sinks (an actor's
mailbox, a pull subscription's channel) that a remote broker would feed from
its connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

if TYPE_CHECKING:
    import anyio

    from ._channel import Channel
    from ._ref import ActorRef

#: The topic every :class:`DeadLetter` is published to (without blocking, and
#: without dead letters of its own when nobody listens).
DEAD_LETTERS_TOPIC: Final = "actors.dead_letters"

Overflow = Literal["block", "drop_newest", "drop_oldest", "fail"]

#: ``dead_letter(message, recipient, reason, topic)``: how a broker reports a
#: message that nobody took.
DeadLetterSink = Callable[[Any, "ActorRef | None", str, "str | None"], None]


class Endpoint:
    """A local place a broker delivers to (internal).

    ``channel`` is where messages go; ``overflow`` says what a full channel
    means (``"block"``: wait for room; the others as for mailboxes). ``waits``
    holds the cancel scopes of publishes waiting for room here, so that an
    unsubscribe can call them off: nothing reaches an endpoint after it
    unsubscribed.
    """

    __slots__ = ("channel", "name", "overflow", "waits")

    def __init__(self, name: str, channel: Channel[Any], overflow: Overflow = "block") -> None:
        self.name = name
        self.channel = channel
        self.overflow: Overflow = overflow
        self.waits: set[anyio.CancelScope] = set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def ref(self) -> ActorRef | None:
        """The actor behind this endpoint, if it is an actor."""
        return None

    def dead_letter(self, message: Any, reason: str, topic: str | None) -> None:
        """Report a message this endpoint could not take (or left unread)."""
        raise NotImplementedError

    def drop_oldest(self) -> Any:
        """Remove and return the oldest queued message (``"drop_oldest"``)."""
        raise NotImplementedError

    def call_off_waits(self) -> None:
        """Cancel every publish waiting for room here (they re-plan)."""
        for scope in self.waits:
            scope.cancel()


@dataclass(frozen=True)
class GroupInfo:
    """One group in a :class:`TopicInfo`: its name and members, in turn order.

    Examples:
        >>> GroupInfo("workers", ("/user/w1", "/user/w2")).members[0]
        '/user/w1'
    """

    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class TopicInfo:
    """Who subscribes to one pattern, from ``system.registry.topics()``.

    ``subscribers`` are the plain subscribers (each gets every message),
    ``groups`` the groups (each gets one copy per message, given to one
    member). Subscribers are named by their actor path; pull subscriptions
    by ``subscription#<n>``.

    Examples:
        >>> info = TopicInfo("orders.*", ("/user/audit",), (GroupInfo("w", ("/user/w1",)),))
        >>> info.groups[0].name
        'w'
    """

    pattern: str
    subscribers: tuple[str, ...]
    groups: tuple[GroupInfo, ...]


class Broker(Protocol):
    """Topic delivery, as the registry needs it (internal seam).

    Patterns and topics are checked by the broker. Subscribing is synchronous
    and takes effect at once (a networked broker sends its SUB in order with
    later publishes, which NATS keeps ordered per connection); ``unsubscribe``
    returning means nothing more reaches the endpoint through that
    subscription.
    """

    def subscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        """Subscribe; False if that exact subscription exists already."""
        ...

    def unsubscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        """Unsubscribe; False if there was no such subscription."""
        ...

    def drop(self, endpoint: Endpoint) -> int:
        """Remove every subscription of ``endpoint``; return how many."""
        ...

    async def publish(self, topic: str, message: Any) -> int:
        """Deliver, waiting for room; return how many endpoints got it.

        A message that matches nobody is reported to the dead-letter sink.
        """
        ...

    def offer(self, topic: str, message: Any) -> int:
        """Deliver only where there is room now, never blocking and never
        reporting dead letters; return how many endpoints got it."""
        ...

    def subscriptions(self, endpoint: Endpoint) -> list[tuple[str, str | None]]:
        """``(pattern, group)`` of every subscription of ``endpoint``."""
        ...

    def topics(self) -> list[TopicInfo]:
        """Every pattern with its subscribers and groups, sorted by pattern."""
        ...
