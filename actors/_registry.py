"""The registry: names for actors, and topics that reach actor groups.

# Invariants:
# - ``_names`` maps each registered name to a live incarnation's ref, and
#   ``_names_of`` holds the same pairs by cell for this system's actors; both
#   lose a cell's entries in the gone hook, before its watchers and parent
#   hear that it is gone. Names of actors of other systems (a process whose
#   names this system keeps, or the one that keeps this one's) have no cell.
# - Every change of ``_names`` is reported to ``_name_hooks`` once, after it.
# - ``_endpoints`` has an entry exactly for the cells that have (or had, until
#   their gone hook) a topic subscription; the broker never holds an endpoint
#   of a cell that is gone.
# - The tree's ``registered`` and ``subscribed`` details of a cell are computed
#   from ``_names_of`` and ``_endpoints`` when the tree is taken, never stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._broker import DEAD_LETTERS_TOPIC, Broker, Endpoint, TopicInfo
from ._exceptions import ActorsError, ActorStopped, NameTaken
from ._mailbox import DEFAULT_CAPACITY
from ._matcher import check_pattern
from ._ref import ActorRef, check_thread
from ._subscription import Subscription
from ._topics import LocalBroker, check_group

if TYPE_CHECKING:
    from ._cell import Cell
    from ._cluster_names import ClusterNames
    from ._messages import DeadLetter
    from ._system import ActorSystem

# Names are valid NATS key-value keys, so that a later release can keep the
# registry in a JetStream bucket without renaming anything.
_NAME = re.compile(r"[-/_=.A-Za-z0-9]+")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a registered name must be a str, got {name!r}")
    if not _NAME.fullmatch(name) or name.startswith(".") or name.endswith("."):
        raise ValueError(
            f"invalid registered name {name!r}: use letters, digits and - / _ = . "
            f"(not first or last), e.g. 'db' or 'orders.store'"
        )
    return name


class _ActorEndpoint(Endpoint):
    __slots__ = ("cell",)

    def __init__(self, cell: Cell) -> None:
        mailbox = cell.mailbox
        super().__init__(cell.path, mailbox._user, mailbox.overflow)
        self.cell = cell

    @property
    def ref(self) -> ActorRef:
        return self.cell.ref

    def dead_letter(self, message: Any, reason: str, topic: str | None) -> None:
        self.cell.system._dead_letter(message, self.cell.ref, reason, topic=topic)

    def drop_oldest(self) -> Any:
        return self.cell.mailbox.drop_oldest()


class Registry:
    """Names for actors, and topics that reach actors: ``system.registry``.

    Names: ``register(name, ref)``, ``whereis(name)``, ``unregister(name)``.
    A name belongs to one actor incarnation and is released when it stops.

    Topics: ``subscribe(pattern, ref, group=None)``, ``unsubscribe``,
    ``await publish(topic, message)``, pull subscriptions with
    ``subscription(pattern)``. Topics are dotted tokens; patterns may use
    ``*`` (one token) and ``>`` (one or more trailing tokens). Plain
    subscribers each get every matching message; subscribers sharing a group
    on the same pattern get one copy per message between them (round-robin,
    skipping full mailboxes). See the user guide page on the registry for the
    full delivery rules.

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(actors.Actor, name="db")
        ...         system.registry.register("db", ref)
        ...         system.registry.subscribe("orders.*", ref, group="store")
        ...         return (system.registry.whereis("db") == ref,
        ...                 await system.registry.publish("orders.eu", "o1"))
        >>> actors.run(main)
        (True, 1)
    """

    __slots__ = (
        "_broker",
        "_cluster",
        "_endpoints",
        "_name_hooks",
        "_names",
        "_names_of",
        "_system",
    )

    def __init__(self, system: ActorSystem, broker: Broker | None = None) -> None:
        self._system = system
        self._names: dict[str, ActorRef] = {}
        self._names_of: dict[Cell, list[str]] = {}
        #: Called after each change of a name: ``hook(name, ref, previous,
        #: here)``; ``ref`` is None when the name is released, ``here`` False
        #: when the change came from the system that keeps this one's names.
        self._name_hooks: list[Callable[[str, ActorRef | None, ActorRef | None, bool], None]] = []
        self._endpoints: dict[Cell, _ActorEndpoint] = {}
        self._broker: Broker = LocalBroker(self._report) if broker is None else broker
        #: The cluster-wide names, when the system is a node of a cluster.
        self._cluster: ClusterNames | None = None
        system._gone_hooks.append(self._on_gone)

    def __repr__(self) -> str:
        return f"<Registry of {self._system.name!r}: {len(self._names)} names>"

    # -- names ----------------------------------------------------------------

    def register(self, name: str, ref: ActorRef) -> None:
        """Give the live actor ``ref`` the unique ``name``.

        The name is released when the actor stops (a restarted supervised
        child gets it back if its spawn options say ``register_as``). An actor
        may have several names; registering the same name for the same actor
        again does nothing.

        Args:
            name: letters, digits and ``- / _ = .`` (not first or last).
            ref: the actor.

        Raises:
            NameTaken: another actor has the name.
            ActorStopped: the actor has stopped or is stopping.
            TypeError: ``name`` is not a str, or ``ref`` not an ActorRef.
            ValueError: ``name`` has other characters.
            ActorsError: ``ref`` belongs to another actor system.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.registry.register("cache", ref)
            ...         return system.registry.whereis("cache") == ref
            >>> actors.run(main)
            True
        """
        check_thread(self._system, "registry.register")
        _check_name(name)
        cell = self._live_cell(ref, "register", f"register {name!r} for")
        holder = self._names.get(name)
        if holder is not None:
            if holder == ref:
                return
            raise NameTaken(
                f"the name {name!r} is already registered to {holder.path}: pick "
                f"another name, or unregister it first; a name is free again "
                f"once its actor has stopped"
            )
        self._names[name] = cell.ref
        self._names_of.setdefault(cell, []).append(name)
        if self._name_hooks:
            self._name_changed(name, cell.ref, None, True)

    def whereis(self, name: str) -> ActorRef | None:
        """The actor registered as ``name``, or ``None``.

        Raises:
            TypeError: ``name`` is not a str.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         return system.registry.whereis("nobody")
            >>> print(actors.run(main))
            None
        """
        if not isinstance(name, str):
            raise TypeError(f"a registered name must be a str, got {name!r}")
        ref = self._names.get(name)
        if ref is None and self._cluster is not None:
            return self._cluster._found.get(name) or self._cluster.whereis(name)
        return ref

    async def claim(self, name: str, ref: ActorRef) -> None:
        """Give the live actor ``ref`` the unique ``name`` in the whole cluster.

        In a system that is a node of a cluster (``ActorSystem(name,
        cluster=...)``) the name is claimed in the cluster's key-value bucket
        with a compare-and-set, so of any number of claimers on any nodes
        exactly one wins; ``whereis(name)`` on every node then finds the
        actor (on other nodes from a cache kept by a watch of the bucket,
        stale by at most one lease). The node renews the name's lease while
        the actor lives, and releases the name when it stops. A node that
        cannot renew in time ends the actor with :class:`NameLost` before
        another node can claim the name (see the cluster page of the guide).
        Outside a cluster it is :meth:`register`.

        Blocks for one round trip to the bucket (two if the name is taken).
        Cancellation: the name may have been claimed; if so it is released
        when the actor stops, or expires after a lease.

        Args:
            name: letters, digits and ``- / _ = .`` (not first or last).
            ref: a live actor of this system.

        Raises:
            NameTaken: another actor, here or on another node, has the name
                (the message names its node and path).
            ActorStopped: the actor has stopped, or stopped meanwhile.
            TypeError: ``name`` is not a str, or ``ref`` not an ActorRef.
            ValueError: ``name`` has other characters.
            ActorsError: the system is a node of a cluster whose NATS servers
                have no JetStream.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         await system.registry.claim("billing", ref)
            ...         return system.registry.whereis("billing") == ref
            >>> actors.run(main)
            True
        """
        check_thread(self._system, "registry.claim")
        if self._cluster is None:
            if getattr(self._system, "_cluster", None) is not None:
                raise ActorsError(
                    f"cannot claim {name!r} cluster-wide: the cluster's names live in a "
                    "JetStream key-value bucket, and its NATS servers have no JetStream "
                    "(start them with -js); register() gives a name on this node only"
                )
            self.register(name, ref)
        else:
            await self._cluster.claim(name, ref)

    def unregister(self, name: str) -> ActorRef | None:
        """Release ``name``; return the actor that had it, or ``None``.

        Releasing a name nobody has is not an error (it may have been released
        already because its actor stopped).

        Raises:
            TypeError: ``name`` is not a str.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.registry.register("cache", ref)
            ...         system.registry.unregister("cache")
            ...         return system.registry.whereis("cache")
            >>> print(actors.run(main))
            None
        """
        check_thread(self._system, "registry.unregister")
        if not isinstance(name, str):
            raise TypeError(f"a registered name must be a str, got {name!r}")
        ref = self._names.pop(name, None)
        if ref is not None:
            self._forget(name, ref)
            if self._name_hooks:
                self._name_changed(name, None, ref, True)
        return ref

    def _forget(self, name: str, ref: ActorRef) -> None:
        cell = ref._cell  # set for the actors this process runs, hosted ones too
        if cell is None and ref._system_name == self._system.name:
            cell = ref._resolve()
        if cell is not None and name in self._names_of.get(cell, ()):
            names = self._names_of[cell]
            names.remove(name)
            if not names:
                del self._names_of[cell]

    def names(self) -> dict[str, ActorRef]:
        """A snapshot of every registered name, sorted by name.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor, name="a")
            ...         system.registry.register("alpha", ref)
            ...         return {n: r.path for n, r in system.registry.names().items()}
            >>> actors.run(main)
            {'alpha': '/user/a'}
        """
        return dict(sorted(self._names.items()))

    # -- topics ---------------------------------------------------------------

    def subscribe(self, pattern: str, ref: ActorRef, group: str | None = None) -> bool:
        """Deliver messages published to topics matching ``pattern`` to ``ref``.

        Without a group the actor gets every matching message; with one it
        shares the messages with the other members of the same group on the
        same pattern (each message goes to one member). Takes effect at once:
        the next publish sees it. Ends when the actor stops.

        Args:
            pattern: dotted tokens; ``*`` matches one token, ``>`` one or
                more trailing tokens (last only).
            ref: the subscriber.
            group: a group name, or ``None`` for a plain subscription.

        Returns:
            False if the actor already had this exact subscription.

        Raises:
            ActorStopped: the actor has stopped or is stopping.
            TypeError: a bad type of pattern, ref or group.
            ValueError: an invalid pattern or group name.
            ActorsError: ``ref`` belongs to another actor system.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         return system.registry.subscribe("news.>", ref)
            >>> actors.run(main)
            True
        """
        check_thread(self._system, "subscribe")
        check_pattern(pattern)
        check_group(group)
        cell = self._live_cell(ref, "subscribe", f"subscribe to {pattern!r}:")
        endpoint = self._endpoints.get(cell)
        if endpoint is None:
            endpoint = self._endpoints[cell] = _ActorEndpoint(cell)
        return self._broker.subscribe(pattern, endpoint, group)

    def unsubscribe(self, pattern: str, ref: ActorRef, group: str | None = None) -> bool:
        """Remove the subscription ``(pattern, group)`` of ``ref``.

        When it returns, nothing more reaches the actor through that
        subscription: a publish that was waiting for room in its mailbox is
        called off (and delivers elsewhere, or not at all). Messages already
        in the mailbox stay there.

        Returns:
            False if there was no such subscription (or the actor is gone).

        Raises:
            TypeError: a bad type of pattern, ref or group.
            ValueError: an invalid pattern or group name.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.registry.subscribe("news.>", ref)
            ...         return system.registry.unsubscribe("news.>", ref)
            >>> actors.run(main)
            True
        """
        check_thread(self._system, "unsubscribe")
        check_pattern(pattern)
        check_group(group)
        cell = self._system._own_cell(ref, "unsubscribe")
        endpoint = None if cell is None else self._endpoints.get(cell)
        if endpoint is None:
            return False
        return self._broker.unsubscribe(pattern, endpoint, group)

    async def publish(self, topic: str, message: Any) -> int:
        """Deliver ``message`` to every subscriber and group matching ``topic``.

        Plain subscribers get a copy each, each group one copy for one
        member; nobody gets it twice. Blocks while a subscriber's mailbox is
        full (backpressure), or, in a group, while every member's is. Each
        subscriber gets one publisher's messages in publish order.

        Args:
            topic: a concrete topic (no wildcards).
            message: anything; it is not copied.

        Returns:
            How many subscribers (actors and pull subscriptions) got it. A
            message nobody got becomes a :class:`DeadLetter` with reason
            ``"no subscribers"``.

        Raises:
            TypeError: ``topic`` is not a str.
            ValueError: ``topic`` is invalid or has a wildcard.
            ActorsError: the system is not running.

        Cancellation: not atomic; subscribers that got the message before the
        cancellation keep it, the others never get it.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         return await system.registry.publish("nobody.listens", "hi")
            >>> actors.run(main)
            0
        """
        self._check_running("publish")
        return await self._broker.publish(topic, message)

    def subscription(
        self, pattern: str, group: str | None = None, capacity: float = DEFAULT_CAPACITY
    ) -> Subscription:
        """A pull subscription, for ``async with``; see :class:`Subscription`.

        Raises:
            TypeError: a bad type of pattern, group or capacity.
            ValueError: an invalid pattern or group, or a negative capacity.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         async with system.registry.subscription("jobs") as jobs:
            ...             await system.publish("jobs", 1)
            ...             return jobs.receive_nowait()
            >>> actors.run(main)
            1
        """
        return Subscription(self, pattern, group, capacity)

    def subscriptions(self, ref: ActorRef) -> list[tuple[str, str | None]]:
        """The ``(pattern, group)`` subscriptions of ``ref``, oldest first.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         system.registry.subscribe("jobs", ref, group="workers")
            ...         return system.registry.subscriptions(ref)
            >>> actors.run(main)
            [('jobs', 'workers')]
        """
        cell = self._system._own_cell(ref, "subscriptions")
        endpoint = None if cell is None else self._endpoints.get(cell)
        return [] if endpoint is None else self._broker.subscriptions(endpoint)

    def topics(self) -> list[TopicInfo]:
        """Every subscribed pattern with its subscribers and groups.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor, name="w")
            ...         system.registry.subscribe("jobs", ref, group="workers")
            ...         return system.registry.topics()[0].groups[0].members
            >>> actors.run(main)
            ('/user/w',)
        """
        return self._broker.topics()

    # -- the runtime's side ---------------------------------------------------

    def _check_running(self, what: str) -> None:
        if not self._system._open:
            raise ActorsError(
                f"actor system {self._system.name!r} is not running: {what} inside "
                f"`async with ActorSystem() as system:`"
            )

    def _live_cell(self, ref: ActorRef, what: str, doing: str) -> Cell:
        cell = self._system._own_cell(ref, what)
        if cell is None or not cell.alive:
            state = "stopped" if cell is None else cell.state
            raise ActorStopped(
                f"cannot {doing} {ref.path}: it is {state}; only a live actor can "
                f"be registered or subscribed (its names and subscriptions end when "
                f"it stops)"
            )
        return cell

    def _report(
        self, message: Any, recipient: ActorRef | None, reason: str, topic: str | None
    ) -> None:
        self._system._dead_letter(message, recipient, reason, topic=topic)

    def _offer_dead_letter(self, letter: DeadLetter) -> bool:
        """Offer a dead letter to its topic without blocking; True if taken."""
        return self._broker.offer(DEAD_LETTERS_TOPIC, letter) > 0

    def _check_spawn_options(
        self, register_as: str | None, subscriptions: Iterable[str | tuple[str, str | None]]
    ) -> list[tuple[str, str | None]]:
        """Check the registry's spawn options before the actor exists; return
        the subscriptions as checked ``(pattern, group)`` pairs."""
        if register_as is not None:
            _check_name(register_as)
            holder = self._names.get(register_as)
            if holder is not None:
                raise NameTaken(
                    f"spawn option register_as={register_as!r}: the name is already "
                    f"registered to {holder.path}; stop that actor or unregister "
                    f"the name first"
                )
        return _subscriptions(subscriptions)

    def _adopt(
        self, cell: Cell, register_as: str | None, subscriptions: list[tuple[str, str | None]]
    ) -> None:
        """Apply checked spawn options to a new incarnation before it starts,
        so it has its name and subscriptions before its first message."""
        if register_as is not None:
            self.register(register_as, cell.ref)
        for pattern, group in subscriptions:
            self.subscribe(pattern, cell.ref, group)

    def _on_gone(self, cell: Cell) -> None:
        for name in self._names_of.pop(cell, ()):
            if self._names.get(name) == cell.ref:
                del self._names[name]
                if self._name_hooks:
                    self._name_changed(name, None, cell.ref, True)
        endpoint = self._endpoints.pop(cell, None)
        if endpoint is not None:
            self._broker.drop(endpoint)

    # -- names kept across a connection (actors._remote_names) ----------------

    def _name_changed(
        self, name: str, ref: ActorRef | None, previous: ActorRef | None, here: bool
    ) -> None:
        for hook in list(self._name_hooks):
            hook(name, ref, previous, here)

    def _hold(self, name: str, ref: ActorRef) -> ActorRef | None:
        """Give ``name`` to ``ref``, an actor of a system whose names this one
        keeps; return the actor that already holds it, if another."""
        holder = self._names.get(name)
        if holder is not None:
            return None if holder == ref else holder
        self._names[name] = ref
        if self._name_hooks:
            self._name_changed(name, ref, None, True)
        return None

    def _mirror(self, name: str, ref: ActorRef | None, previous: ActorRef | None) -> None:
        """Apply a change of a name made by the system that keeps this one's
        names: ``ref`` holds it now, or (None) ``previous`` released it."""
        holder = self._names.get(name)
        if ref is None:
            if holder is None or holder != previous:
                return  # taken again since
            del self._names[name]
        else:
            if holder == ref:
                return
            self._names[name] = ref
            cell = ref._cell
            if cell is not None:
                self._names_of.setdefault(cell, []).append(name)
        if holder is not None:
            self._forget(name, holder)
        if self._name_hooks:
            self._name_changed(name, ref, holder, False)

    def _details(self, cell: Cell) -> dict[str, str]:
        """The registry's lines in ``system.tree()`` for ``cell``."""
        details: dict[str, str] = {}
        names = self._names_of.get(cell)
        if names:
            details["registered"] = ", ".join(names)
        endpoint = self._endpoints.get(cell)
        subscribed = [] if endpoint is None else self._broker.subscriptions(endpoint)
        if subscribed:
            details["subscribed"] = ", ".join(
                pattern if group is None else f"{pattern} [{group}]"
                for pattern, group in subscribed
            )
        return details


def _subscriptions(
    entries: Iterable[str | tuple[str, str | None]],
) -> list[tuple[str, str | None]]:
    """The checked ``subscriptions`` spawn option, as ``(pattern, group)``."""
    if isinstance(entries, str) or not isinstance(entries, Iterable):
        raise TypeError(
            f"spawn option subscriptions must be a list of patterns or "
            f"(pattern, group) pairs, got {entries!r}"
        )
    checked: list[tuple[str, str | None]] = []
    for entry in entries:
        if isinstance(entry, str):
            pattern, group = entry, None
        elif isinstance(entry, tuple) and len(entry) == 2:
            pattern, group = entry
        else:
            raise TypeError(
                f"spawn option subscriptions: {entry!r} is neither a pattern nor a "
                f"(pattern, group) pair"
            )
        check_pattern(pattern)
        checked.append((pattern, check_group(group)))
    return checked
