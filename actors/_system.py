"""The actor system: a structured-concurrency scope that owns every actor.

# Invariants:
# - Every actor and goroutine task is started in ``_nursery`` (see
#   ``_nursery.py``), which ``__aexit__`` closes last: nothing outlives the
#   block, whether it is left normally, by a failure or by cancellation.
# - ``_top`` holds the live top-level cells in spawn order; ``_cells`` maps the
#   uid of every live incarnation to its cell (refs unpickled in this system
#   resolve through it).
# - The first failure that reaches the root is kept in ``_failure``; it cancels
#   the body of the ``async with`` and is raised once everything has stopped.
#   An exception that escaped a task (``_nursery.crash``) outranks it.
# - Once the nursery is cancelled, every actor is killed, and so is every
#   actor spawned after.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ._actor import Actor, check_factory
from ._ask import Ask
from ._cell import DEFAULT_SHUTDOWN, Cell
from ._channel import Channel
from ._deadletters import DEFAULT_LOG_INTERVAL, DEFAULT_LOG_LIMIT, DeadLetterLog
from ._deadlines import Deadlines
from ._exceptions import ActorFailed, ActorsError, NameTaken, WouldBlock
from ._mailbox import Mailbox
from ._messages import DeadLetter
from ._nursery import Nursery
from ._peer import Peer
from ._placement import Subprocess, place
from ._pool import ProcessPool, pool_named
from ._portal import ThreadPortal
from ._pubsub import PubSub
from ._ref import ActorRef, check_thread, current_system
from ._registry import Registry
from ._remote import RemoteRef
from ._run import current_run
from ._tcp import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MISSES,
    DEFAULT_TIMEOUT,
    Listener,
    Network,
    RemoteSystem,
)
from ._tcp import connect as _connect
from ._tcp import listen as _listen
from ._tracing import Traced
from ._tree import ActorInfo, ActorTree
from ._typevars import M, R
from ._watchdog import DEFAULT_THRESHOLD as DEFAULT_BLOCKING_THRESHOLD
from ._watchdog import Watchdog, default_threshold

if TYPE_CHECKING:
    from ._cluster import NatsCluster, Node
    from .durable import Store, Streams

logger = logging.getLogger("actors")

_DEFAULT_MAILBOX = Mailbox()

#: Incarnation ids, unique in the process: refs of two systems that share a
#: name never compare equal.
_UIDS = itertools.count(1)


@dataclass(frozen=True)
class SystemStatistics:
    """Counters of an :class:`ActorSystem`, from ``system.statistics()``.

    Examples:
        >>> SystemStatistics(0, 0, 0, 0, 0).dead_letters
        0
    """

    actors: int
    spawned: int
    dead_letters: int
    dead_letters_unobserved: int
    late_replies: int


class ActorSystem(PubSub):
    """The root of an actor tree, and the scope that owns all its actors.

    ``async with ActorSystem() as system:`` opens a nursery for the tasks of
    its actors (a trio nursery on trio; counted tasks on asyncio). Leaving the
    block normally, by an exception or by ``sys.exit()`` stops every actor
    gracefully (children before parents, siblings in reverse spawn order, each
    within its shutdown timeout, then cancelled); when the block is left no
    task of the system is still running.

    A failure that travels up to the root cancels the body of the block, stops
    everything, and is raised from the ``async with`` as the original exception
    (not wrapped in a group), with a note naming the actor it came from. If the
    block is left by cancellation (or a ``KeyboardInterrupt``), or is
    cancelled while it stops the actors, the actors left are cancelled rather
    than stopped, and the block is left as soon as they are gone. A
    ``KeyboardInterrupt`` or ``SystemExit`` raised in an actor ends the whole
    system the same way and is raised from the block as it is.

    Args:
        name: the system's name (refs carry it).
        shutdown: default seconds each actor gets to stop before it is
            cancelled (``None``: wait forever).
        log_dead_letters: how many dead letters are logged one by one (at
            WARNING, logger ``actors.dead_letters``) before they are only
            summarised; 0 turns the logging off. Dead letters during
            shutdown are not logged. All are counted in ``statistics()``.
        log_dead_letters_interval: seconds between summary lines.
        warn_blocking: report code that holds the event loop longer than
            this many seconds (the actor, its message and the line, at
            WARNING on the ``actors.blocking`` logger); ``True`` for 0.1 s,
            ``False`` off; ``None`` (default): 0.1 s in a debug run
            (``ACTORS_DEBUG=1`` or ``python -X dev``), else off.
        store: where durable topics keep their messages (``actors.durable``).
        cluster: make the system a node of a cluster on NATS
            (:class:`actors.cluster.NatsCluster`); its name is then its node
            id, unique in the cluster. The system connects to NATS when
            entered (raising ``NameTaken`` if a node of that name is up)
            and disconnects when left; ``system.cluster`` is its
            :class:`~actors.cluster.Node`.

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem("demo") as system:
        ...         ref = await system.spawn(actors.Actor, name="idle")
        ...         return ref.path
        >>> actors.run(main)
        '/user/idle'
    """

    def __init__(
        self,
        name: str = "actors",
        *,
        shutdown: float | None = DEFAULT_SHUTDOWN,
        log_dead_letters: int = DEFAULT_LOG_LIMIT,
        log_dead_letters_interval: float = DEFAULT_LOG_INTERVAL,
        warn_blocking: float | bool | None = None,
        store: Store | None = None,
        cluster: NatsCluster | None = None,
    ):
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"system name must be a non-empty string without '/', got {name!r}")
        self._dead_letter_log = DeadLetterLog(log_dead_letters, log_dead_letters_interval)
        self._blocking_threshold = _blocking_threshold(warn_blocking)
        self._watchdog: Watchdog | None = None
        self.name = name
        self.shutdown = shutdown
        self._top: dict[str, Cell] = {}
        self._cells: dict[int, Cell] = {}
        # Other systems: connections by node name; in a child process, the
        # parent's connection routes every node not connected directly.
        self._peers: dict[str, Peer] = {}
        self._upstream: Peer | None = None
        # Actors this process hosts for another system, by their identity there.
        self._aliases: dict[tuple[str, int], Cell] = {}
        self._pools: dict[str, ProcessPool] = {}  # open process pools, by name
        self._nursery = Nursery(self._kill_all, self._crashed)
        self._start = self._nursery.start_soon
        self._deadlines = Deadlines(self._start)
        self._body_scope: anyio.CancelScope | None = None
        self._run: Any = None  # the actors.run() that this system runs under
        self._interrupted: int | None = None  # the exit status actors.run asked for
        self._failure: BaseException | None = None
        self._open = False
        self._closed = False
        self._spawned = 0
        self._anonymous: dict[str, itertools.count[int]] = {}
        self._dead_letters = 0
        self._dead_unobserved = 0
        self._late_replies = 0
        self._dead_letter_streams: list[Channel[DeadLetter]] = []
        self._token: Any = None
        self._portal: ThreadPortal | None = None
        self._thread: int | None = None  # the event loop's thread, once entered
        # The pytest fixture cannot wrap the test body in a cancel scope, so it
        # turns this off and the failure is raised at teardown instead.
        self._cancel_body_on_failure = True
        # Called with each cell when its incarnation is gone (the registry
        # releases names and subscriptions here).
        self._gone_hooks: list[Callable[[Cell], None]] = []
        # Called once the actors have stopped, before the nursery closes: the
        # tasks that are not actors (listeners, connections) end here.
        self._closing_hooks: list[Callable[[], None]] = []
        self._network: Network | None = None  # listeners and TCP connections
        #: Names and topics (see :class:`Registry`).
        self.registry = Registry(self)
        self._store = store
        self._streams: Streams | None = None
        self._cluster: Node | None = None
        # Incarnation ids of a node start at a random offset: a node that
        # restarts under the same name spawns the same actors in the same
        # order, and a ref to the old incarnation must not reach the new one.
        self._uid_base = 0
        if cluster is not None:
            from ._cluster import NatsCluster, Node

            if not isinstance(cluster, NatsCluster):
                raise TypeError(f"cluster must be an actors.cluster.NatsCluster, got {cluster!r}")
            self._cluster = Node(self, cluster)
            self._uid_base = secrets.randbits(48) << 16

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name!r} {len(self._cells)} actors>"

    @property
    def cluster(self) -> Node:
        """This node's membership of its cluster (``ActorSystem(cluster=...)``):
        ``await system.cluster.whereis(node, name)`` finds an actor on another
        node.

        Raises:
            ActorsError: The system is not a node of a cluster.
        """
        if self._cluster is None:
            raise ActorsError(
                f"actor system {self.name!r} is not in a cluster: create it with "
                "ActorSystem(name, cluster=actors.cluster.NatsCluster(...))"
            )
        return self._cluster

    # -- the scope ------------------------------------------------------------

    async def __aenter__(self) -> ActorSystem:
        if self._open or self._closed:
            raise ActorsError(f"actor system {self.name!r} can only be entered once")
        if self._cluster is not None:
            # Its NATS client outlives the nursery, where the links run.
            await self._cluster.open()
        await self._nursery.open()
        self._body_scope = anyio.CancelScope()
        self._body_scope.__enter__()
        self._token = current_system.set(self)
        self._portal = ThreadPortal(self)
        if self._blocking_threshold is not None:
            self._watchdog = Watchdog(self._blocking_threshold, _ACTOR_FRAMES)
        self._thread = threading.get_ident()
        self._open = True
        if self._cluster is not None:
            self._cluster.start()
        self._run = current_run()
        if self._run is not None:
            self._run.systems.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._body_scope is not None and self._portal is not None
        self._portal.close()
        self._dead_letter_log.shutting_down = True
        if self._body_scope.__exit__(exc_type, exc, tb):
            exc = None  # our own cancellation
        # What ends the wait for the actors early: a cancellation (or Ctrl-C
        # on trio) while they stop, after which the rest are cancelled.
        leaving: BaseException | None = None
        try:
            if exc is None or isinstance(exc, (Exception, SystemExit)):
                await self._stop_all()
                for pool in reversed(list(self._pools.values())):
                    await pool.close()  # their actors have stopped
            else:
                self._nursery.cancel()
        except BaseException as error:
            leaving = error
            self._nursery.cancel()
        finally:
            for hook in list(self._closing_hooks):
                hook()
            if self._streams is not None:
                with anyio.CancelScope(shield=True):
                    await self._streams.aclose()
            self._deadlines.close()
            try:
                await self._nursery.close()
            except BaseException as error:
                leaving = leaving or error
            self._open = False
            self._closed = True
            if self._cluster is not None:
                await self._cluster.close()
            current_system.reset(self._token)
            self._dead_letter_log.close()
            if self._watchdog is not None:
                self._watchdog.stop()
            if self._run is not None:
                self._run.systems.discard(self)
        failure = self._nursery.crash or self._failure
        if failure is not None:
            if exc is not None and exc is not failure and failure.__context__ is None:
                failure.__context__ = exc
            raise failure
        if leaving is not None and not (exc is not None and _is_cancellation(exc)):
            if leaving.__context__ is None:
                leaving.__context__ = exc
            raise leaving
        if exc is None and self._interrupted is not None:
            raise SystemExit(self._interrupted)

    @property
    def streams(self) -> Streams:
        """The durable streams of this system (an :class:`actors.durable.Streams`),
        kept in the ``store`` given to the system.

        Examples:
            >>> ActorSystem().streams
            <Streams store=None>
        """
        if self._streams is None:
            from .durable import Streams

            self._streams = Streams(self._store)
        return self._streams

    def _interrupt(self, status: int) -> None:
        # actors.run's first Ctrl-C: cancel the body, stop every actor
        # gracefully, then raise SystemExit(status) from the block.
        if self._interrupted is None:
            self._interrupted = status
        if self._body_scope is not None:
            self._body_scope.cancel()

    @property
    def from_thread(self) -> ThreadPortal:
        """The thread-safe way to tell, ask, stop and publish from threads
        that are not the system's event loop (see :class:`ThreadPortal`).

        Raises:
            ActorsError: the system has not been entered yet.
        """
        if self._portal is None:
            raise ActorsError(
                f"actor system {self.name!r} has not started: use from_thread "
                f"after `async with ActorSystem() as system:` has begun"
            )
        return self._portal

    def _kill_all(self) -> None:
        for cell in list(self._cells.values()):
            cell.kill()
        for pool in list(self._pools.values()):
            pool.abort()

    def _crashed(self, error: BaseException) -> None:
        # An exception escaped a task (the nursery cancels every task).
        if self._body_scope is not None and self._cancel_body_on_failure:
            self._body_scope.cancel()

    async def _stop_all(self) -> None:
        while self._top:
            await next(reversed(self._top.values())).stop_and_wait()

    def _root_failure(self, cell: Cell, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
            if self._body_scope is not None and self._cancel_body_on_failure:
                self._body_scope.cancel()
        else:
            logger.error("actor %s also failed while the system was failing", cell.path)

    # -- spawning -------------------------------------------------------------

    async def spawn(
        self,
        factory: Callable[..., Actor[M, R]],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        shutdown: float | None = None,
        placement: Subprocess | None = None,
        **kwargs: Any,
    ) -> ActorRef[M, R]:
        """Spawn a top-level actor and wait until its ``on_start`` has run.

        The instance is built inside the actor's own task by calling
        ``factory(*args, **kwargs)``, on every (re)start.

        Args:
            factory: an :class:`Actor` subclass, or a callable returning one.
            *args: positional arguments for ``factory``.
            name: unique among its siblings; anonymous actors get
                ``<class>-<n>``. No ``/``.
            mailbox: capacity and overflow policy (default
                ``Mailbox(1000, "block")``).
            shutdown: seconds it gets to stop before it is cancelled (default:
                the system's); ``math.inf`` waits forever (for sub-trees).
            placement: where it runs: ``None`` in this process,
                :class:`Subprocess` in a child process of its own,
                ``Subprocess(pool=name)`` on a worker of a process pool
                (:meth:`process_pool`); its class and arguments are pickled
                by value, and the ref is an ordinary ref.
            **kwargs: keyword arguments for ``factory``. ``name``, ``mailbox``,
                ``shutdown`` and ``placement`` are taken by ``spawn``: wrap
                the factory with ``functools.partial`` if the actor needs them.

        Returns:
            The new actor's ref.

        Raises:
            TypeError: ``factory`` is not an Actor subclass or callable.
            NameTaken: a live sibling already has ``name``.
            ValueError: ``name`` is empty or contains ``/``.
            ActorFailed: the actor failed to start: building it raised or gave
                something that is not an Actor (a ``TypeError``), or
                ``on_start`` raised; the original is ``__cause__`` and the
                message says which.
            ActorsError: the system is not running, or ``placement`` names
                a process pool it does not have (or one that is closed or
                gave up).

        Cancellation: if the caller is cancelled while the actor starts, the
        actor keeps starting and lives on under its parent.
        """
        return await self._spawn(
            None, factory, args, kwargs, name, mailbox, shutdown, placement=placement
        )

    def spawn_nowait(
        self,
        factory: Callable[..., Actor[M, R]],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        shutdown: float | None = None,
        placement: Subprocess | None = None,
        **kwargs: Any,
    ) -> ActorRef[M, R]:
        """Spawn a top-level actor and return its ref at once, without waiting
        for ``on_start`` (trio's ``start_soon``, Akka's ``actorOf``, Erlang's
        ``spawn_link``).

        Takes what :meth:`spawn` takes. Messages sent before the actor has
        started wait in its mailbox. Since nobody waits for the start, a
        failure while building the instance or in ``on_start`` is a failure
        of the actor like one in ``receive``: it is raised from
        ``async with ActorSystem()`` (a child's goes to its parent's
        ``on_child_failed``). Use it to start many actors at once; use
        :meth:`spawn` when the caller must know the actor started.

        Raises:
            TypeError: ``factory`` is not an Actor subclass or callable.
            NameTaken: a live sibling already has ``name``.
            ValueError: ``name`` is empty or contains ``/``.
            ActorsError: the system is not running.
        """
        return self._spawn_nowait(
            None, factory, args, kwargs, name, mailbox, shutdown, placement=placement
        )

    def _spawn_nowait(
        self,
        parent: Cell | None,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        mailbox: Mailbox | None,
        shutdown: float | None,
        setup: Callable[[Cell], None] | None = None,
        *,
        placement: Subprocess | None = None,
    ) -> ActorRef:
        cell = self._prepare(parent, factory, args, kwargs, name, mailbox, shutdown, placement)
        cell.start_awaited = False
        if setup is not None:
            setup(cell)  # the low-level spawn's options, in place before on_start
        self._launch(cell)
        return cell.ref

    async def _spawn(
        self,
        parent: Cell | None,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        mailbox: Mailbox | None,
        shutdown: float | object | None = None,
        setup: Callable[[Cell], None] | None = None,
        *,
        placement: Subprocess | None = None,
    ) -> ActorRef:
        cell = self._prepare(parent, factory, args, kwargs, name, mailbox, shutdown, placement)
        if setup is not None:
            setup(cell)  # the low-level spawn's options, in place before on_start
        self._launch(cell)
        await cell.started.wait()
        if cell.start_error is not None:
            error = cell.start_error
            raise ActorFailed(
                f"{cell.path} failed to start {cell.start_failed_in}: {error!r}"
            ) from error
        return cell.ref

    def _prepare(
        self,
        parent: Cell | None,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        mailbox: Mailbox | None,
        shutdown: float | object | None,
        placement: Subprocess | None = None,
    ) -> Cell:
        if not self._open:
            raise ActorsError(
                f"actor system {self.name!r} is not running: spawn actors inside "
                f"`async with ActorSystem() as system:`"
            )
        check_thread(self, "spawn")
        named_after = factory
        if placement is not None:
            factory, args, kwargs = place(placement, factory, args, kwargs)
        else:
            check_factory(factory, args, kwargs)
        if parent is not None and not parent.alive:
            raise ActorsError(f"{parent.path} is {parent.state}: it cannot spawn children")
        if mailbox is not None and not isinstance(mailbox, Mailbox):
            raise TypeError(f"mailbox must be an actors.Mailbox, got {mailbox!r}")
        siblings = self._top if parent is None else parent.children
        if name is None:
            name = self._anonymous_name(named_after, siblings)
        elif not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"actor name must be a non-empty string without '/', got {name!r}")
        where = parent.path if parent else "/user"
        if name in siblings:
            raise NameTaken(
                f"{where}/{name} is already taken by a live actor: choose another "
                f"name, or stop the existing one first"
            )
        if placement is not None and placement.pool is not None:
            pool_named(self, placement.pool, f"{where}/{name}")  # refused here, not later
        if shutdown is None:
            shutdown = self.shutdown
        elif shutdown == math.inf:
            shutdown = None
        cell = Cell(
            self,
            parent,
            name,
            factory,
            args,
            kwargs,
            mailbox or _DEFAULT_MAILBOX,
            shutdown,  # type: ignore[arg-type]
        )
        siblings[name] = cell
        self._cells[cell.uid] = cell
        self._spawned += 1
        return cell

    def _launch(self, cell: Cell) -> None:
        if self._nursery.cancel_called:
            cell.kill()  # the system is being cancelled: so is a late spawn
        self._start(cell.run, name=cell.path)

    def _anonymous_name(self, factory: Callable[..., Actor], siblings: dict[str, Cell]) -> str:
        # <class>-1, <class>-2, ... per class and system, skipping names taken.
        base = getattr(factory, "__name__", "actor").lower()
        counter = self._anonymous.get(base)
        if counter is None:
            counter = self._anonymous[base] = itertools.count(1)
        while True:
            name = f"{base}-{next(counter)}"
            if name not in siblings:
                return name

    def _next_uid(self) -> int:
        return self._uid_base + next(_UIDS)

    def _cell_by_uid(self, uid: int) -> Cell | None:
        return self._cells.get(uid)

    def _cell_gone(self, cell: Cell) -> None:
        self._cells.pop(cell.uid, None)
        for hook in self._gone_hooks:
            hook(cell)

    # -- process pools ----------------------------------------------------------

    def process_pool(
        self,
        name: str,
        size: int | None = None,
        *,
        placement: Subprocess | None = None,
        max_restarts: int = 5,
        within: float = 10.0,
    ) -> ProcessPool:
        """A pool of ``size`` long-lived worker processes that host many
        actors: ``spawn(..., placement=Subprocess(pool=name))`` puts an
        actor on the live worker with the fewest actors.

        Start it one of two ways. ``async with system.process_pool(...)``:
        leaving the block stops the actors still on it, then ends its
        workers. ``await system.process_pool(...)``: it lives as long as the
        system, which closes it after every actor has stopped (the form for
        supervisors whose children use it), or until ``await pool.close()``.
        Either way, starting waits until every worker is ready.

        Args:
            name: what ``Subprocess(pool=...)`` calls it; unique among the
                system's open pools.
            size: how many worker processes (default: ``os.cpu_count()``).
            placement: how each worker is started (``Subprocess(...)``:
                backend, interpreter, environment, heartbeat, start timeout,
                modules by value); not ``pool=``.
            max_restarts: dead workers it replaces within ``within``
                seconds before it gives up (then spawns on it fail).
            within: the window of ``max_restarts``, in seconds.

        Returns:
            The :class:`ProcessPool`, not started yet: enter or await it.

        Raises:
            ValueError: a bad name, size, ``max_restarts`` or ``within``, or
                a placement that names a pool.
            TypeError: ``placement`` is not a :class:`Subprocess`.

        Starting it raises :class:`ActorsError` if the system is not running
        or has an open pool of that name, and what kept a worker from
        starting (:class:`ProcessExited`, ``TimeoutError``,
        :class:`IncompatiblePeer`), after ending the workers that did start.
        Cancellation while it starts leaves no worker running.
        """
        return ProcessPool(self, name, size, placement, max_restarts, within)

    # -- watching -------------------------------------------------------------

    def _own_cell(self, ref: ActorRef, what: str) -> Cell | None:
        if not isinstance(ref, ActorRef):
            raise TypeError(f"{what} needs an ActorRef, got {type(ref).__name__} {ref!r}")
        cell = ref._cell
        if cell is not None and cell.system is self:
            return cell
        if ref._system_name != self.name:
            cell = self._aliases.get((ref._system_name, ref._uid))
            if cell is not None:
                return cell
            raise ActorsError(
                f"{ref!r} belongs to actor system {ref._system_name!r}, not "
                f"{self.name!r}: {what} only works within one system (or with "
                f"refs that came over a connection to another)"
            )
        cell = ref._resolve()
        if cell is not None and cell.system is not self:
            raise ActorsError(
                f"{ref!r} belongs to another actor system also named "
                f"{self.name!r}: {what} only works within one system; give "
                f"systems distinct names to tell their refs apart"
            )
        return cell

    def _watch(self, target: ActorRef, watcher: ActorRef) -> None:
        if isinstance(target, RemoteRef):
            watcher_cell = watcher._resolve()
            if watcher_cell is not None:
                target._watch(watcher_cell)
            return
        cell = self._own_cell(target, "watch")
        watcher_cell = watcher._resolve()
        if watcher_cell is not None:
            watcher_cell.watch(target, cell)

    def _unwatch(self, target: ActorRef, watcher: ActorRef) -> None:
        if isinstance(target, RemoteRef):
            watcher_cell = watcher._resolve()
            if watcher_cell is not None:
                target._unwatch(watcher_cell)
            return
        self._own_cell(target, "unwatch")
        watcher_cell = watcher._resolve()
        if watcher_cell is not None:
            watcher_cell.unwatch(target)

    # -- other systems ----------------------------------------------------------

    def _route(self, node: str) -> Peer | None:
        """The connection that reaches ``node``, if any."""
        peer = self._peers.get(node)
        head = node
        while peer is None and ":" in head:  # a child process of a child: "a:12:34"
            head = head.rsplit(":", 1)[0]
            peer = self._peers.get(head)
        return peer if peer is not None else self._upstream

    async def listen(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret: bytes | None = None,
        cookie: str | os.PathLike[str] | None = None,
        heartbeat: float = DEFAULT_HEARTBEAT,
        misses: int = DEFAULT_MISSES,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Listener:
        """Accept other systems joining this one over TCP (:meth:`connect`).

        Each connection must prove it holds the same secret (a handshake
        over both sides' random nonces; the secret never travels) before
        anything it sends is read, and every frame after that is
        authenticated. Then the other system says its name: a name equal
        to this system's, or of a system already connected, is refused
        (:class:`NameTaken` there, a warning here). Refused connections are
        logged on the ``actors.tcp`` logger and never reach an actor.

        Joined systems find actors by registered name
        (:meth:`RemoteSystem.whereis`), and refs cross in messages both
        ways. The listener and its connections belong to this system: they
        close when the system's actors have stopped.

        Args:
            host: The address to bind; the default accepts connections
                from this machine only. ``"0.0.0.0"`` accepts from anywhere:
                the secret is then all that keeps strangers out, and frames
                are authenticated but not encrypted.
            port: The port; 0 picks a free one (see the result).
            secret: The shared secret, 16 bytes or more.
            cookie: Instead of ``secret``, a file holding it that only its
                owner can read or write (:func:`actors.create_cookie`).
            heartbeat: Seconds between heartbeats on each connection (the
                slower of the two sides' settings is used).
            misses: A connection silent for ``misses`` heartbeats is lost.
            timeout: Seconds a new connection gets for its handshake and
                its name.

        Returns:
            The listener: ``str(listener)`` is the bound ``"host:port"``;
            ``await listener.close()`` stops accepting.

        Raises:
            TypeError: Neither or both of ``secret`` and ``cookie``.
            ValueError: A secret shorter than 16 bytes, a bad port or setting.
            AuthenticationError: The cookie file can be read or written by
                others.
            OSError: The address cannot be bound (in use, or not local).
            ActorsError: The system is not running.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem("server") as system:
            ...         listener = await system.listen(secret=b"0123456789abcdef")
            ...         return str(listener).startswith("127.0.0.1:")
            >>> actors.run(main)
            True
        """
        return await _listen(
            self,
            host,
            port,
            secret=secret,
            cookie=cookie,
            heartbeat=heartbeat,
            misses=misses,
            timeout=timeout,
        )

    async def connect(
        self,
        address: str | tuple[str, int],
        *,
        secret: bytes | None = None,
        cookie: str | os.PathLike[str] | None = None,
        topics: bool = False,
        heartbeat: float = DEFAULT_HEARTBEAT,
        misses: int = DEFAULT_MISSES,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RemoteSystem:
        """Join the system listening at ``address`` (see :meth:`listen`).

        Connects, proves this side holds the shared secret and checks that
        the other does, exchanges the two systems' names, and returns a
        handle on the other system. Refs then cross in both directions as
        ordinary ``ActorRef`` s: ``tell``, ``ask``, ``stop``, ``join`` and
        ``watch`` work across the connection. If it ends (the other system
        exits or dies, or misses ``misses`` heartbeats), asks in flight
        raise :class:`ConnectionLost`, watchers get ``Terminated(ref,
        ConnectionLost(...))`` and tells become dead letters.

        The connection belongs to this system: it closes when the system's
        actors have stopped, or with ``await remote.close()``.

        Blocks until joined or refused. Cancellation closes the connection.

        Args:
            address: ``"host:port"`` (``"[::1]:7000"`` for IPv6) or
                ``(host, port)``.
            secret: The shared secret, 16 bytes or more.
            cookie: Instead of ``secret``, a file holding it that only its
                owner can read or write (:func:`actors.create_cookie`).
            topics: Make this system's topics those of the system it joins:
                subscriptions made here join that system's topics (groups
                compete across both), and a publish here is published there,
                reaching subscribers in both. Only before anything here
                subscribes, and with one system at most; when the connection
                ends, the subscriptions made here stay, here only.
            heartbeat: Seconds between heartbeats.
            misses: The connection is lost after this many silent heartbeats.
            timeout: Seconds to connect, authenticate and exchange names.

        Returns:
            The other system (:class:`RemoteSystem`): ``await
            remote.whereis(name)`` finds its registered actors.

        Raises:
            AuthenticationError: The secrets differ, or the cookie file can
                be read or written by others.
            IncompatiblePeer: The other side runs a different Python,
                cloudpickle or actors version, or is not an actors system.
            NameTaken: The two systems have the same name, or a system of
                this name is already connected there (or that one here).
            TimeoutError: No connection, handshake or name within ``timeout``.
            ConnectionLost: The other side closed the connection while
                joining.
            OSError: Nothing listens at ``address``, or it cannot be reached.
            TypeError: Neither or both of ``secret`` and ``cookie``.
            ValueError: A malformed address, a short secret, a bad setting.
            ActorsError: The system is not running; or ``topics=True`` and
                something here has subscribed already, or this system's
                topics are another's already.
        """
        return await _connect(
            self,
            address,
            secret=secret,
            cookie=cookie,
            topics=topics,
            heartbeat=heartbeat,
            misses=misses,
            timeout=timeout,
        )

    def _peer_lost(self, peer: Peer) -> None:
        if self._peers.get(peer.node) is peer:
            del self._peers[peer.node]
        if self._upstream is peer:
            self._upstream = None

    # -- dead letters and statistics ------------------------------------------

    def _dead_letter(
        self, message: Any, recipient: ActorRef | None, reason: str, *, topic: str | None = None
    ) -> None:
        if type(message) is Traced:
            message = message.message  # the user's message, never the wrapper
        if isinstance(message, Ask):
            message = message.undeliverable(reason)  # the asker learns why
        letter = DeadLetter(message, recipient, reason, topic)
        self._dead_letters += 1
        if recipient is not None and (cell := recipient._cell) is not None:
            cell.dead_letters += 1
        self._dead_letter_log.record(letter)
        observed = False
        for stream in self._dead_letter_streams:
            try:
                stream.send_nowait(letter)
                observed = True
            except WouldBlock:
                pass
        if self.registry._offer_dead_letter(letter):
            observed = True
        if self._upstream is not None:
            # A child process: the parent's system counts, logs and offers it too.
            self._upstream.dead_letter(letter)
            observed = True
        if not observed:
            self._dead_unobserved += 1

    def _late_reply(self) -> None:
        self._late_replies += 1

    @asynccontextmanager
    async def dead_letters(self, capacity: float = 1000) -> AsyncIterator[Channel[DeadLetter]]:
        """Observe dead letters: ``async with system.dead_letters() as letters``.

        Yields a channel that receives every :class:`DeadLetter` from now until
        the block is left. If it is full a letter is not queued for it (never
        blocking the sender) and counts as unobserved unless another stream
        took it.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         await ref.stop()
            ...         async with system.dead_letters() as letters:
            ...             await ref.tell("anyone?")
            ...             return (await letters.receive()).message
            >>> actors.run(main)
            'anyone?'
        """
        stream: Channel[DeadLetter] = Channel(capacity)
        self._dead_letter_streams.append(stream)
        try:
            yield stream
        finally:
            self._dead_letter_streams.remove(stream)
            stream.close()

    def statistics(self) -> SystemStatistics:
        """Counters: live actors, spawned, dead letters, late replies."""
        return SystemStatistics(
            actors=len(self._cells),
            spawned=self._spawned,
            dead_letters=self._dead_letters,
            dead_letters_unobserved=self._dead_unobserved,
            late_replies=self._late_replies,
        )

    def tree(self) -> ActorTree:
        """A snapshot of every live actor, printable as an indented tree.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         await system.spawn(actors.Actor, name="a")
            ...         return system.tree().actors[0].path
            >>> actors.run(main)
            '/user/a'
        """
        return ActorTree(
            tuple(_info(cell, self.registry) for cell in list(self._top.values())),
            self._dead_letters,
        )


#: The runtime's frames that name the actor running on a blocked loop.
_ACTOR_FRAMES = {
    Cell._loop.__code__: "handling",
    Cell._start.__code__: "starting",
    Cell._shutdown.__code__: "stopping",
    Cell._goroutine.__code__: "in a goroutine",
    Cell.run.__code__: "running",
}


def _blocking_threshold(warn: float | bool | None) -> float | None:
    if warn is None:
        return default_threshold()
    if warn is True:
        return DEFAULT_BLOCKING_THRESHOLD
    if warn is False:
        return None
    if not isinstance(warn, (int, float)) or not 0 < warn < math.inf:
        raise ValueError(
            f"warn_blocking must be a positive number of seconds, True, False or None, got {warn!r}"
        )
    return float(warn)


def _info(cell: Cell, registry: Registry) -> ActorInfo:
    factory = cell.factory
    shown: str | None = getattr(cell.instance, "actor_class", None)  # a process actor's
    return ActorInfo(
        path=cell.path,
        actor_class=shown or str(getattr(factory, "__qualname__", repr(factory))),
        state=cell.state,
        mailbox=len(cell.mailbox),
        mailbox_capacity=cell.mailbox.capacity,
        processed=cell.processed,
        restarts=cell.restarts,
        dead_letters=cell.dead_letters,
        children=tuple(_info(child, registry) for child in list(cell.children.values())),
        details=tuple(sorted({**(cell.details or {}), **registry._details(cell)}.items())),
    )


def _is_cancellation(error: BaseException) -> bool:
    return isinstance(error, anyio.get_cancelled_exc_class())
