"""Pull subscriptions: a channel of published messages the caller drains.

# Invariants:
# - The endpoint is subscribed exactly while the ``async with`` block runs;
#   leaving it unsubscribes first, then closes the channel, then turns what
#   was left unread into dead letters, so nothing vanishes silently.
"""

from __future__ import annotations

import itertools
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from . import _tracing
from ._broker import Endpoint
from ._channel import Channel
from ._exceptions import ActorsError, ChannelDrained
from ._matcher import check_pattern
from ._topics import check_group

if TYPE_CHECKING:
    from ._registry import Registry

_numbers = itertools.count(1)
_Traced: Final = _tracing.Traced


class _PullEndpoint(Endpoint):
    __slots__ = ("_registry",)

    def __init__(self, registry: Registry, name: str, channel: Channel[Any]) -> None:
        super().__init__(name, channel, "block")
        self._registry = registry

    def dead_letter(self, message: Any, reason: str, topic: str | None) -> None:
        self._registry._system._dead_letter(message, None, reason, topic=topic)


class Subscription:
    """A pull subscription: published messages wait in a channel you drain.

    Made by ``system.subscription(pattern, group=None, capacity=1000)``; it
    subscribes when the ``async with`` block is entered and unsubscribes when
    it is left. Inside, ``async for message in sub`` (or ``await
    sub.receive()``) takes messages at your own pace. It follows the same
    rules as an actor subscriber: with a ``group`` it competes with the other
    members (actors or pull subscriptions) for one copy per message, and when
    its channel is full publishers wait (or, in a group, prefer a member with
    room). Messages still unread when the block is left become dead letters
    with reason ``"subscription closed"``; iterating afterwards ends at once.

    Args:
        registry: the registry of the system (use ``system.subscription``).
        pattern: a topic pattern; wildcards allowed.
        group: join this group instead of getting every message.
        capacity: how many messages wait unread before publishers wait
            (``math.inf``: never; ``0``: only while a receive is waiting).

    Raises:
        TypeError: a bad type of pattern, group or capacity.
        ValueError: an invalid pattern or group, or a negative capacity.

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         async with system.subscription("orders.*") as orders:
        ...             await system.publish("orders.eu", "order 1")
        ...             return await orders.receive()
        >>> actors.run(main)
        'order 1'
    """

    __slots__ = ("_channel", "_endpoint", "_entered", "_registry", "group", "pattern")

    def __init__(
        self, registry: Registry, pattern: str, group: str | None, capacity: float
    ) -> None:
        check_pattern(pattern)
        self.pattern = pattern
        self.group = check_group(group)
        self._registry = registry
        self._channel: Channel[Any] = Channel(capacity)
        self._endpoint = _PullEndpoint(registry, f"subscription#{next(_numbers)}", self._channel)
        self._entered = False

    def __repr__(self) -> str:
        group = f" group {self.group!r}" if self.group else ""
        return f"<Subscription {self._endpoint.name} {self.pattern!r}{group} {len(self)} unread>"

    @property
    def name(self) -> str:
        """How introspection names it: ``subscription#<n>``."""
        return self._endpoint.name

    @property
    def capacity(self) -> float:
        """How many messages wait unread before publishers wait."""
        return self._channel.capacity

    @property
    def closed(self) -> bool:
        """Whether the ``async with`` block has been left."""
        return self._channel.closed

    def __len__(self) -> int:
        return len(self._channel)

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise ActorsError(
                f"{self.name} ({self.pattern!r}) was already used: make a new one "
                f"with system.subscription() for each `async with`"
            )
        self._entered = True
        self._registry._check_running("subscription")
        self._registry._broker.subscribe(self.pattern, self._endpoint, self.group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._registry._broker.drop(self._endpoint)
        self._channel.close()
        left: list[Any] = []
        while True:
            try:
                left.append(self._channel.receive_nowait())
            except ChannelDrained:
                break
        for message in left:
            self._endpoint.dead_letter(message, "subscription closed", None)

    async def receive(self) -> Any:
        """The next message, waiting for one.

        Atomic with respect to cancellation: a cancelled receive has taken
        nothing.

        Raises:
            ChannelDrained: the block was left (the subscription is closed).
        """
        message = await self._channel.receive()
        if type(message) is _Traced:
            message = self._received(message)
        return message

    def receive_nowait(self) -> Any:
        """The next message if one is waiting.

        Raises:
            WouldBlock: nothing is waiting.
            ChannelDrained: the block was left.
        """
        message = self._channel.receive_nowait()
        if type(message) is _Traced:
            message = self._received(message)
        return message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        try:
            message = await self._channel.receive()
        except ChannelDrained:
            raise StopAsyncIteration from None
        if type(message) is _Traced:
            message = self._received(message)
        return message

    def _received(self, traced: _tracing.Traced) -> Any:
        # Published while tracing: a CONSUMER span marks the take, a child
        # of the publish span; the caller gets the message itself.
        if _tracing.tracer is not None:
            _tracing.received(self.pattern, traced.context)
        return traced.message
