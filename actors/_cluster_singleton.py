"""Cluster singletons: a child that runs on one node of the cluster at a time.

A :class:`Singleton` runs on every node whose supervisor has the singleton's
spec; it starts the real child, registered cluster-wide, only where its
claim of the name succeeds. The others wait for the name's key to go
(released, or expired after its node died or was cut off), then claim it
and start the child there. A child that loses its name (``NameLost``: its
node fenced itself) is not restarted in place: the keeper waits for the name
again, like the others.

# Invariants:
# - ``_child`` is the running child, or None while this keeper waits; the
#   child holds the name (it was spawned with ``register_as``), so at most
#   one keeper in the cluster has a child.
# - At most one wait for the name runs at a time (``_waiting``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._actor import Actor
from ._exceptions import NameLost, NameTaken
from ._messages import Terminated

if TYPE_CHECKING:
    from ._ref import ActorRef


class _Free:
    """The name's key is gone: claim it."""


_FREE = _Free()


class Singleton(Actor):
    """Keeps one actor alive in the whole cluster, under the name ``name``.

    Spawn it (or give a supervisor ``ChildSpec(..., register_as=name,
    singleton=True)``) on every node that may run the actor: the child
    ``factory(*args, **kwargs)`` runs where the cluster-wide claim of
    ``name`` succeeds, and another node's keeper starts it once the name is
    free again (its node stopped it, died, or was cut off and fenced it).
    Outside a cluster the child simply runs here. The child's failures are
    the keeper's (its supervisor restarts both), but for ``NameLost``,
    after which the keeper waits for the name again.

    Args:
        factory: the child's ``Actor`` subclass or factory.
        name: the cluster-wide name the child holds.
        args: positional arguments for ``factory``.
        kwargs: keyword arguments for ``factory``.
        options: more options for the child's ``actors.lowlevel.spawn``
            (``mailbox``, ``shutdown``, ``subscriptions``...).

    Examples:
        >>> import actors
        >>> from actors.lowlevel import Singleton
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         await system.spawn(Singleton, actors.Actor, "billing", name="keeper")
        ...         return system.registry.whereis("billing").path
        >>> actors.run(main)
        '/user/keeper/billing'
    """

    def __init__(
        self,
        factory: Callable[..., Actor],
        name: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._factory = factory
        self._name = name
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._options = dict(options or {})
        self._child_name = self._options.pop("name", None) or name.replace("/", "_")
        self._child: ActorRef | None = None
        self._waiting = False

    async def on_start(self) -> None:
        await self._claim()

    async def _claim(self) -> None:
        from ._lowlevel import spawn

        if self._child is not None:
            return
        try:
            self._child = await spawn(
                self.context,
                self._factory,
                self._args,
                self._kwargs,
                name=self._child_name,
                register_as=self._name,
                **self._options,
            )
        except NameTaken:
            self._wait()
            return
        self.context.watch(self._child)

    def _wait(self) -> None:
        names = self.context.system.registry._cluster
        if self._waiting or names is None:
            return
        self._waiting = True
        self.context.go(self._wait_free, names)

    async def _wait_free(self, names: Any) -> None:
        await names.wait_free(self._name)
        self._waiting = False
        await self.ref.tell(_FREE)

    async def receive(self, message: Any) -> Any:
        if message is _FREE:
            await self._claim()
        elif isinstance(message, Terminated) and message.ref == self._child:
            self._child = None
            if isinstance(message.reason, NameLost):
                self._wait()
            elif message.reason is None:
                await self.context.stop()  # it ended by itself: so does its keeper
        return None

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        if isinstance(error, NameLost):
            return  # the Terminated that follows starts the wait
        raise error


__all__ = ["Singleton"]
