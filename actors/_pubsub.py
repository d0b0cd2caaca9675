"""The topic shortcuts every :class:`ActorSystem` has (``system.publish`` ...).

They delegate to ``system.registry``; they live here so that the system's own
module stays about the scope and the actors it owns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._mailbox import DEFAULT_CAPACITY

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._registry import Registry
    from ._subscription import Subscription


class PubSub:
    """Publish-subscribe shortcuts on the actor system (a mixin).

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         async with system.subscription("news.>") as news:
        ...             await system.publish("news.sport", "goal")
        ...             return await news.receive()
        >>> actors.run(main)
        'goal'
    """

    __slots__ = ()
    registry: Registry

    def subscribe(self, pattern: str, ref: ActorRef, group: str | None = None) -> bool:
        """Subscribe ``ref`` to ``pattern``; see :meth:`Registry.subscribe`.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.subscribe("jobs", ref, group="workers")
            ...         return await system.publish("jobs", "job 1")
            >>> actors.run(main)
            1
        """
        return self.registry.subscribe(pattern, ref, group)

    def unsubscribe(self, pattern: str, ref: ActorRef, group: str | None = None) -> bool:
        """Remove a subscription of ``ref``; see :meth:`Registry.unsubscribe`.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.subscribe("jobs", ref)
            ...         system.unsubscribe("jobs", ref)
            ...         return await system.publish("jobs", "job 1")
            >>> actors.run(main)
            0
        """
        return self.registry.unsubscribe(pattern, ref, group)

    async def publish(self, topic: str, message: Any) -> int:
        """Publish ``message`` to ``topic``; see :meth:`Registry.publish`.

        Blocks while subscribers' mailboxes are full (backpressure).
        Cancellation: subscribers that got the message keep it; the others
        never get it.

        Returns:
            How many subscribers got it (0: it became a dead letter).

        Raises:
            TypeError: ``topic`` is not a str.
            ValueError: ``topic`` is invalid or has a wildcard.
            ActorsError: the system is not running.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         return await system.publish("orders.eu", "order 1")
            >>> actors.run(main)
            0
        """
        return await self.registry.publish(topic, message)

    def subscription(
        self, pattern: str, group: str | None = None, capacity: float = DEFAULT_CAPACITY
    ) -> Subscription:
        """A pull subscription for ``async with``; see :class:`Subscription`.

        Args:
            pattern: a topic pattern; wildcards allowed.
            group: compete with the group's other members for each message.
            capacity: unread messages before publishers wait (default 1000).

        Raises:
            TypeError: a bad type of pattern, group or capacity.
            ValueError: an invalid pattern or group, or a negative capacity.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         async with system.subscription("jobs", group="w") as jobs:
            ...             await system.publish("jobs", "job 1")
            ...             return [await jobs.receive()]
            >>> actors.run(main)
            ['job 1']
        """
        return self.registry.subscription(pattern, group, capacity)
