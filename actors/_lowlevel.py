"""The low-level API for library authors, re-exported by ``actors.lowlevel``.

Each function here is a thin, documented door into the runtime: the state it
touches stays owned by the module of its concept (the cell, the system, the
registry), which keeps its invariants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from . import _tracing
from ._actor import Actor, Context
from ._exceptions import ActorsError
from ._ref import ActorRef
from ._registry import _check_name
from ._system import ActorSystem
from ._typevars import M, R

if TYPE_CHECKING:
    from ._cell import Cell
    from ._mailbox import Mailbox
    from ._placement import Subprocess


class Incarnation:
    """The runtime's record of one actor incarnation, from :func:`resolve`.

    A view, not a copy: it reads the live state each time. It stays valid
    after the incarnation has ended (``state`` is then ``"stopped"`` or
    ``"failed"``); ``await incarnation.ref.join()`` waits for that. Only the
    runtime builds one.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(actors.Actor, name="a")
        ...         incarnation = lowlevel.resolve(ref)
        ...         incarnation.details["role"] = "cache"
        ...         before = incarnation.state
        ...         await ref.stop()
        ...         return before, incarnation.state, incarnation.path
        >>> actors.run(main)
        ('running', 'stopped', '/user/a')
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        return f"<Incarnation {self._cell.path} {self._cell.state}>"

    @property
    def ref(self) -> ActorRef:
        """The incarnation's ref."""
        return self._cell.ref

    @property
    def path(self) -> str:
        """Its path from the root, e.g. ``/user/sup/worker``."""
        return self._cell.path

    @property
    def system(self) -> ActorSystem:
        """The actor system it runs in."""
        return self._cell.system

    @property
    def state(self) -> str:
        """``"starting"``, ``"running"``, ``"stopping"``, ``"stopped"`` or
        ``"failed"``."""
        return self._cell.state

    @property
    def reason(self) -> BaseException | None:
        """Why it ended: ``None`` while it runs and after a normal stop, the
        exception after a failure."""
        return self._cell.reason

    @property
    def restarts(self) -> int:
        """The restart count ``system.tree()`` shows for it.

        The runtime does not count restarts (each restart is a new
        incarnation): whoever restarts it says, with :func:`spawn`'s
        ``restarts`` or by setting this.

        Raises:
            TypeError: setting something other than an int.
            ValueError: setting a negative number.
        """
        return self._cell.restarts

    @restarts.setter
    def restarts(self, value: int) -> None:
        self._cell.restarts = _check_restarts(value)

    @property
    def last_failure(self) -> str | None:
        """Why the incarnation before this one failed, as the live page and
        ``python -m actors`` show it (``"ValueError: bad input"``), or ``None``.

        Like :attr:`restarts`, whoever restarts it says, with :func:`spawn`'s
        ``last_failure`` (supervisors do) or by setting this.

        Raises:
            TypeError: setting something other than a str or None.
        """
        return self._cell.last_failure

    @last_failure.setter
    def last_failure(self, value: str | None) -> None:
        self._cell.last_failure = _check_last_failure(value)

    @property
    def details(self) -> MutableMapping[str, str]:
        """The extra ``key value`` pairs ``system.tree()`` shows for it.

        The same dict for the incarnation's life; write to it at any time. The
        registry adds its own ``registered`` and ``subscribed`` entries when
        the tree is taken (they are not in this dict).
        """
        cell = self._cell
        if cell.details is None:
            cell.details = {}
        return cell.details

    @property
    def restarting(self) -> MutableMapping[str, tuple[str, int, str | None]]:
        """Children it will start again, which have no incarnation meanwhile
        (a supervisor's, waiting out a backoff delay), by name.

        Each is ``(class name, restarts, last failure)`` as its next
        incarnation will show them; the live page and ``python -m actors``
        show these children as ``"restarting"``. The same dict for the
        incarnation's life: add a child when it ends and remove it when its
        next incarnation starts.
        """
        cell = self._cell
        if cell.restarting is None:
            cell.restarting = {}
        return cell.restarting


def resolve(ref: ActorRef) -> Incarnation | None:
    """The runtime's record of the incarnation ``ref`` addresses.

    Args:
        ref: a ref of an actor of the running system.

    Returns:
        Its :class:`Incarnation`, or ``None`` if the system no longer knows it
        (a ref that was pickled, of an incarnation that has ended since; a ref
        that never left its process still reaches an ended incarnation).

    Raises:
        TypeError: ``ref`` is not an ``ActorRef``.
        actors.ActorsError: ``ref`` was unpickled outside its actor system.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(actors.Actor)
        ...         return lowlevel.resolve(ref).state
        >>> actors.run(main)
        'running'
    """
    if not isinstance(ref, ActorRef):
        raise TypeError(f"resolve() needs an ActorRef, got {type(ref).__name__} {ref!r}")
    cell = ref._resolve()
    return None if cell is None else Incarnation(cell)


async def spawn(
    owner: ActorSystem | Context,
    factory: Callable[..., Actor[M, R]],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    mailbox: Mailbox | None = None,
    shutdown: float | None = None,
    register_as: str | None = None,
    subscriptions: Iterable[str | tuple[str, str | None]] = (),
    restarts: int = 0,
    last_failure: str | None = None,
    details: Mapping[str, str] | None = None,
    placement: Subprocess | None = None,
) -> ActorRef[M, R]:
    """Spawn an actor with the options a supervisor gives each incarnation.

    Like :meth:`ActorSystem.spawn` (``owner`` is a system) or
    :meth:`Context.spawn` (``owner`` is an actor's context: the actor becomes
    the parent), and waits the same way until ``on_start`` has run. The
    factory's arguments are passed as a tuple and a mapping, so that none of
    them can clash with the keywords below. The options are in place before
    ``on_start`` runs, and they belong to this incarnation only: a restart
    passes them again.

    Args:
        owner: the ``ActorSystem`` (a top-level actor) or the parent's
            ``Context``.
        factory: an ``Actor`` subclass, or a callable returning one.
        args: positional arguments for ``factory``.
        kwargs: keyword arguments for ``factory``.
        name: as for ``spawn``.
        mailbox: as for ``spawn``.
        shutdown: as for ``spawn``: seconds it gets to stop before it is
            cancelled (``None``: the system's default, ``math.inf``: no limit).
        register_as: a registry name the actor holds from before
            ``on_start`` until it ends; in a cluster, cluster-wide
            (claimed before the actor is made: see ``Registry.claim``).
        subscriptions: topics it is subscribed to from before ``on_start``,
            each ``"pattern"`` or ``("pattern", group)``.
        restarts: the restart count ``system.tree()`` shows for it.
        last_failure: why the incarnation before it failed, as the live page
            shows it (see :attr:`Incarnation.last_failure`).
        details: extra ``key value`` pairs ``system.tree()`` shows for it
            (copied; see :attr:`Incarnation.details`).
        placement: as for ``spawn``: ``actors.Subprocess()`` runs it in a
            child process.

    Returns:
        The new actor's ref.

    Raises:
        TypeError: a bad ``owner``, ``factory``, ``restarts``, ``details`` or
            ``subscriptions``.
        ValueError: a bad ``name``, ``restarts``, registry name, pattern or
            group.
        actors.NameTaken: a live sibling has ``name``, or another actor holds
            the registry name ``register_as``.
        actors.ActorFailed: ``on_start`` raised (the original is
            ``__cause__``); what the options took is released.
        actors.ActorsError: the system is not running, or the parent is
            stopping.

    Cancellation: as for ``spawn``, the actor keeps starting and lives on.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         await lowlevel.spawn(
        ...             system, actors.Actor, name="db", register_as="db",
        ...             subscriptions=["jobs"], restarts=2, details={"restart": "permanent"},
        ...         )
        ...         print(system.tree())
        >>> actors.run(main)
        /user
          db  Actor  running  mailbox 0/1000  processed 0  restarts 2  registered db  restart permanent  subscribed jobs
    """  # noqa: E501
    system, parent = _owner(owner, "spawn")
    setup = _setup(system, register_as, subscriptions, restarts, details, last_failure)
    names = system.registry._cluster
    if register_as is None or names is None:
        names = None
    else:
        # In a cluster the name is claimed cluster-wide before the actor exists.
        await names.reserve(register_as)
    try:
        return await system._spawn(
            parent,
            factory,
            tuple(args),
            dict(kwargs or {}),
            name,
            mailbox,
            shutdown,
            setup,
            placement=placement,
        )
    finally:
        if names is not None and register_as is not None:
            names.unreserve(register_as)  # nothing if the actor took it


def spawn_nowait(
    owner: ActorSystem | Context,
    factory: Callable[..., Actor[M, R]],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    mailbox: Mailbox | None = None,
    shutdown: float | None = None,
    register_as: str | None = None,
    subscriptions: Iterable[str | tuple[str, str | None]] = (),
    restarts: int = 0,
    last_failure: str | None = None,
    details: Mapping[str, str] | None = None,
    placement: Subprocess | None = None,
) -> ActorRef[M, R]:
    """Spawn as :func:`spawn` does, and return the ref at once, without
    waiting for ``on_start`` (as ``ActorSystem.spawn_nowait`` does).

    For a library that must be able to stop or kill an actor while it is
    still starting (a start that hangs). The options are in place before
    ``on_start`` runs. Since nobody waits for the start, a failure while
    building the instance or in ``on_start`` is a failure of the actor like
    one in ``receive``: it goes to the parent's ``on_child_failed``, or is
    raised from ``async with ActorSystem()`` for a top-level actor. Stopping
    an actor that is still starting lets ``on_start`` finish first; killing
    it cancels ``on_start``.

    Takes what :func:`spawn` takes.

    Returns:
        The new actor's ref.

    Raises:
        TypeError: a bad ``owner``, ``factory``, ``restarts``, ``details`` or
            ``subscriptions``.
        ValueError: a bad ``name``, ``restarts``, registry name, pattern or
            group.
        actors.NameTaken: a live sibling has ``name``, or another actor holds
            the registry name ``register_as``.
        actors.ActorsError: the system is not running, or the parent is
            stopping.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = lowlevel.spawn_nowait(system, actors.Actor, name="a", restarts=1)
        ...         state = lowlevel.resolve(ref).state
        ...         await ref.stop()
        ...         return state, (await ref.join()).reason
        >>> actors.run(main)
        ('starting', None)
    """
    system, parent = _owner(owner, "spawn_nowait")
    if register_as is not None and system.registry._cluster is not None:
        raise ActorsError(
            f"spawn_nowait cannot give register_as={register_as!r} in a cluster: the "
            "name is claimed cluster-wide, which takes a round trip; use spawn()"
        )
    setup = _setup(system, register_as, subscriptions, restarts, details, last_failure)
    return system._spawn_nowait(
        parent,
        factory,
        tuple(args),
        dict(kwargs or {}),
        name,
        mailbox,
        shutdown,
        setup,
        placement=placement,
    )


def _owner(owner: ActorSystem | Context, what: str) -> tuple[ActorSystem, Cell | None]:
    if isinstance(owner, ActorSystem):
        return owner, None
    if isinstance(owner, Context):
        return owner._cell.system, owner._cell
    raise TypeError(
        f"lowlevel.{what}() needs the ActorSystem or the parent actor's Context as "
        f"owner, got {type(owner).__name__} {owner!r}"
    )


def _setup(
    system: ActorSystem,
    register_as: str | None,
    subscriptions: Iterable[str | tuple[str, str | None]],
    restarts: int,
    details: Mapping[str, str] | None,
    last_failure: str | None = None,
) -> Callable[[Cell], None]:
    """Check the spawn options (before anything exists) and return what
    applies them to the new cell before its task starts."""
    _check_restarts(restarts)
    _check_last_failure(last_failure)
    own_details = _check_details(details)
    registry = system.registry
    checked = registry._check_spawn_options(register_as, subscriptions)

    def setup(cell: Cell) -> None:
        cell.restarts = restarts
        cell.last_failure = last_failure
        cell.details = own_details
        if register_as is not None or checked:
            registry._adopt(cell, register_as, checked)

    return setup


def watch(target: ActorRef, watcher: ActorRef) -> None:
    """Send ``watcher`` one ``Terminated(target, reason)`` when ``target`` ends.

    What ``context.watch(target)`` does for the running actor, for any
    watcher of the same system (a probe, a proxy); at once if ``target`` has
    already ended. Watching twice still gives one notice. Nothing happens if
    ``watcher`` has ended.

    Raises:
        TypeError: ``target`` or ``watcher`` is not an ``ActorRef``.
        actors.ActorsError: they belong to different actor systems.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> class Logger(actors.Actor):
        ...     async def receive(self, message):
        ...         if isinstance(message, actors.Terminated):
        ...             print("gone:", message.ref.path)
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         logger = await system.spawn(Logger, name="log")
        ...         worker = await system.spawn(actors.Actor, name="w")
        ...         lowlevel.watch(worker, logger)
        ...         await worker.stop()
        ...         await logger.stop()
        >>> actors.run(main)
        gone: /user/w
    """
    cell = _watcher_cell(watcher, "watch")
    if cell is not None:
        cell.system._watch(target, watcher)


def unwatch(target: ActorRef, watcher: ActorRef) -> None:
    """Undo :func:`watch`: ``watcher`` gets no ``Terminated`` for ``target``
    (one already sent stays in its mailbox).

    Raises:
        TypeError: ``target`` or ``watcher`` is not an ``ActorRef``.
        actors.ActorsError: they belong to different actor systems.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         a = await system.spawn(actors.Actor)
        ...         b = await system.spawn(actors.Actor)
        ...         lowlevel.watch(a, b)
        ...         lowlevel.unwatch(a, b)
        >>> actors.run(main)
    """
    cell = _watcher_cell(watcher, "unwatch")
    if cell is not None:
        cell.system._unwatch(target, watcher)


def dead_letter(system: ActorSystem, message: Any, recipient: ActorRef | None, reason: str) -> None:
    """Make ``message`` a :class:`DeadLetter`, as the runtime does with a
    message nobody can take: counted, logged at debug level, sent to
    ``system.dead_letters()`` streams and the dead-letter topic.

    For an actor or a library that got a message it cannot handle and must
    not lose silently. An ask's envelope cannot reach here (an actor's
    ``receive`` gets the question, not the envelope).

    Args:
        system: the actor system.
        message: the undeliverable message.
        recipient: whom it was for, or ``None``.
        reason: why it was not delivered, for people reading the letter.

    Raises:
        TypeError: ``system`` is not an ``ActorSystem``, or ``reason`` not a
            str.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         async with system.dead_letters() as letters:
        ...             lowlevel.dead_letter(system, "hello?", None, "nobody home")
        ...             return (await letters.receive()).reason
        >>> actors.run(main)
        'nobody home'
    """
    if not isinstance(system, ActorSystem):
        raise TypeError(f"dead_letter() needs the ActorSystem, got {system!r}")
    if not isinstance(reason, str):
        raise TypeError(f"dead_letter() reason must be a str, got {reason!r}")
    system._dead_letter(message, recipient, reason)


def _watcher_cell(watcher: ActorRef, what: str) -> Cell | None:
    if not isinstance(watcher, ActorRef):
        raise TypeError(f"{what}() watcher must be an ActorRef, got {watcher!r}")
    return watcher._resolve()


def _check_last_failure(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"last_failure must be a str or None, got {value!r}")
    return value


def _check_restarts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"restarts must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"restarts must be >= 0, got {value!r}")
    return value


def _check_details(details: Mapping[str, str] | None) -> dict[str, str] | None:
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise TypeError(f"details must be a mapping of str to str, got {details!r}")
    for key, value in details.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"details must map str to str, got {key!r}: {value!r}; convert values "
                f"with str() first"
            )
    return dict(details) if details else None


def check_name(name: object) -> str:
    """Check a registry name as ``system.registry.register`` would, without
    registering it (for libraries that take names to register later).

    Returns:
        ``name``.

    Raises:
        TypeError: ``name`` is not a str.
        ValueError: ``name`` has characters a registered name cannot have.

    Examples:
        >>> from actors import lowlevel
        >>> lowlevel.check_name("orders.store")
        'orders.store'
    """
    return _check_name(name)


def trace_event(name: str, attributes: Mapping[str, str], owner: ActorRef) -> None:
    """Record an event of ``owner``'s in the trace (``actors.tracing``): on
    the current span, or on a short span ``<name> <owner's path>`` when none
    is recording (as when a supervisor handles a child's failure). Does
    nothing when tracing is off.

    Args:
        name: the event's name, e.g. ``"restart"``.
        attributes: string attributes of the event.
        owner: the actor it happened to.

    Examples:
        >>> import actors
        >>> from actors import lowlevel
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(actors.Actor, name="a")
        ...         lowlevel.trace_event("restart", {"actors.child": "b"}, ref)
        >>> actors.run(main)
    """
    if _tracing.tracer is not None:
        _tracing.event(name, dict(attributes), owner.path)
