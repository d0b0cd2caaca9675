"""The runtime of one actor incarnation: its task, mailbox loop and lifecycle.

# Invariants:
# - One cell per incarnation; its task runs ``Cell.run`` and nothing else
#   receives from its mailbox.
# - A cell is in its parent's ``children`` (or the system's top level) from
#   spawn until its task has finished all cleanup; a name is free again only
#   then.
# - The task never ends before its children and goroutines have ended: the
#   graceful path stops them, and ``run``'s ``finally`` kills whatever is left
#   under a shield. So no actor outlives its parent.
# - Every failure reaches exactly one handler: the spawner (``on_start``
#   failed: ``spawn`` raises), the parent's ``on_child_failed``, or the
#   system, which raises it from ``async with``. A failure is an ``Exception``
#   or a cancellation that is not the task's own (``_fails``); anything else
#   (``KeyboardInterrupt``, ``SystemExit``) ends the task and the system.
# - ``terminated`` is set last, after watchers and the parent were told.
# - A watch is one entry on each side: the watcher's ``watching[target ref]``
#   is the target's cell, and the target's ``watchers`` holds the watcher's
#   cell. When the target ends, its watchers are told and the entry becomes
#   ``None`` (a notice is pending) until the watcher's loop takes the
#   ``Terminated``, so that watching again meanwhile sends no second one.
#   When the watcher ends, it leaves every target's ``watchers`` (as Erlang
#   drops a monitor when either side dies): nothing holds an ended watcher.
"""

from __future__ import annotations

import logging
import math
import sys
from asyncio import CancelledError
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.lowlevel import checkpoint

from . import _tracing
from ._actor import UNHANDLED, Actor
from ._ask import STOPPED, Ask
from ._backend import asyncio_loop
from ._channel import _NOTHING
from ._deadlines import now
from ._exceptions import ActorFailed, ActorsError
from ._go import current_owner
from ._mailbox import _WAKE, Mailbox, _MailboxQueue
from ._messages import Terminated
from ._peer import WireAsk
from ._ref import ActorRef
from ._reply import Reply
from ._scope import task_scope
from ._signal import Signal
from ._trio import trio

_Traced: Final = _tracing.Traced

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from ._system import ActorSystem

logger = logging.getLogger("actors")

#: The cell whose task is running (for ``go()``, ask-self detection, ref
#: resolution and ``Actor.ref`` inside ``__init__``): the owner ``go()`` uses,
#: so one context variable is set per actor task, not three.
current_cell: ContextVar[Cell | None] = current_owner  # type: ignore[assignment]

#: The actor whose goroutine or timer is running. Goroutines inherit
#: ``current_cell`` (they belong to the actor), but they are not its task: a
#: goroutine may ask its own actor, and ``context.stop()`` from one must wake it.
_goroutine_of: ContextVar[Cell | None] = ContextVar("actors_goroutine_of", default=None)

#: Seconds a stopping actor gets before it is cancelled, unless spawned with
#: another ``shutdown``. Erlang's default for workers is 5 seconds too.
DEFAULT_SHUTDOWN: Final = 5.0


class _Stop:
    __slots__ = ()


_STOP: Final = _Stop()


#: The signal of every incarnation that has started (or ended) and that
#: nobody waits on any more: one shared object instead of one per actor.
_SET: Final = Signal()
_SET.set()


class _ChildFailed:
    __slots__ = ("error", "ref")

    def __init__(self, ref: ActorRef, error: BaseException) -> None:
        self.ref = ref
        self.error = error


class Cell:
    """One actor incarnation (internal; users hold an ``ActorRef``)."""

    __slots__ = (
        "_current_ask",
        "_goroutines",
        "_goroutines_done",
        "_late_failures",
        "_terminated",
        "args",
        "children",
        "dead_letters",
        "deferred",
        "details",
        "factory",
        "failure",
        "instance",
        "killed",
        "kwargs",
        "last_failure",
        "mailbox",
        "name",
        "parent",
        "path",
        "processed",
        "reason",
        "ref",
        "remote",
        "restarting",
        "restarts",
        "scope",
        "shutdown",
        "start_awaited",
        "start_error",
        "start_failed_in",
        "started",
        "state",
        "stop_deadline",
        "stop_requested",
        "system",
        "uid",
        "watchers",
        "watching",
    )

    def __init__(
        self,
        system: ActorSystem,
        parent: Cell | None,
        name: str,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        mailbox: Mailbox,
        shutdown: float | None,
    ) -> None:
        self.system = system
        self.parent = parent
        self.name = name
        self.path: str = f"{parent.path if parent else '/user'}/{name}"
        self.uid = system._next_uid()
        self.ref = ActorRef(self, system.name, self.path, self.uid)
        #: For the stand-in of an actor in another process: the ref that
        #: sends there directly (see actors._proxy).
        self.remote: ActorRef | None = None
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        self.mailbox = _MailboxQueue(mailbox)
        self.shutdown = shutdown
        self.children: dict[str, Cell] = {}
        # Allocated on first watch (see the invariants).
        self.watchers: dict[Cell, None] | None = None
        self.watching: dict[ActorRef, Cell | None] | None = None
        self.state = "starting"
        self.instance: Actor | None = None
        self.scope = task_scope()
        self.killed = False
        self.started = Signal()
        self._terminated: Signal | None = None  # allocated when first awaited
        self.reason: BaseException | None = None
        self.start_error: BaseException | None = None
        self.start_failed_in = ""  # "in on_start" or "while being built"
        self.failure: BaseException | None = None
        self.processed = 0
        self.dead_letters = 0  # addressed to this incarnation
        self.restarts = 0  # shown by system.tree(); set by whoever restarts it
        self.last_failure: str | None = None  # why the one before it failed (the same)
        self.details: dict[str, str] | None = None  # more for system.tree()
        # Children its owner will start again (a supervisor's backoff), by name,
        # as (class, restarts, last failure): the live page shows them.
        self.restarting: dict[str, tuple[str, int, str | None]] | None = None
        self.stop_requested = False
        self.stop_deadline: float | None = None  # when a timed stop cancels it
        self.start_awaited = True  # False: spawn_nowait, a start failure is a failure
        self._current_ask: Ask | None = None
        self.deferred: set[Reply] | None = None  # replies taken by reply_later()
        # Allocated on first use: most actors never start a goroutine or
        # outlive a failing child, and every container costs garbage-collector time.
        self._goroutines: set[anyio.CancelScope] | None = None
        self._goroutines_done: Signal | None = None
        self._late_failures: list[tuple[ActorRef, BaseException]] | None = None

    def __repr__(self) -> str:
        return f"<Cell {self.path} #{self.uid} {self.state}>"

    def is_current(self) -> bool:
        """Whether this actor's own task (not a goroutine of it) is running."""
        return current_cell.get() is self and _goroutine_of.get() is not self

    def is_ancestor_of_current(self) -> bool:
        """Whether the running actor task (or goroutine) is a descendant."""
        cell = current_cell.get()
        while cell is not None:
            cell = cell.parent
            if cell is self:
                return True
        return False

    @property
    def terminated(self) -> Signal:
        """Set once the incarnation is gone (after watchers and parent were told)."""
        if self._terminated is None:
            self._terminated = Signal()
        return self._terminated

    @property
    def alive(self) -> bool:
        return self.state in ("starting", "running")

    # -- messages from outside ----------------------------------------------

    def deliver_system(self, message: Any) -> None:
        if self.mailbox.closed:
            return
        self.mailbox.put_system(message)

    def watch(self, target: ActorRef, cell: Cell | None) -> None:
        """Send this actor one ``Terminated`` when ``target`` (its cell, or
        None if it no longer resolves) ends; at once if it has ended."""
        if self.mailbox.closed:
            return  # ending: it could not be told
        watching = self.watching
        if watching is None:
            watching = self.watching = {}
        elif target in watching:
            return  # watched already, or its notice is still to be handled
        if cell is None or cell.state in ("stopped", "failed"):
            watching[target] = None
            if cell is None:
                self.mailbox.put_system(Terminated(target, None))
            else:
                self.mailbox.put_system(Terminated(target, cell.reason, cell.killed))
            return
        watching[target] = cell
        if cell.watchers is None:
            cell.watchers = {}
        cell.watchers[self] = None

    def unwatch(self, target: ActorRef) -> None:
        """Stop watching ``target`` (a notice already sent stays queued)."""
        if self.watching:
            cell = self.watching.pop(target, None)
            if cell is not None and cell.watchers:
                cell.watchers.pop(self, None)

    def dead_letter(self, message: Any, reason: str) -> None:
        self.system._dead_letter(message, self.ref, reason)

    def request_stop(self, *, timed: bool = False) -> None:
        """Ask the actor to stop; ``timed``: cancel it if it takes longer
        than its shutdown timeout (a stop from outside: ``ref.stop()``)."""
        if (
            timed
            and self.stop_deadline is None
            and self.shutdown is not None
            and (self.state == "stopping" or (self.alive and not self._idle()))
        ):
            self.stop_deadline = now() + self.shutdown
            self.scope.deadline = self.stop_deadline
        if self.stop_requested or not self.alive:
            return
        self.stop_requested = True
        # Also from the actor's own code: a goroutine or timer of this actor
        # runs in its context while the loop may be parked on the mailbox.
        self.deliver_system(_STOP)

    def _idle(self) -> bool:
        # Parked on its mailbox with nothing to stop and no on_stop: it cannot
        # overrun a shutdown timeout, so it needs no timer. (Parked, not just
        # inside receive(): one that was handed a message and has not run yet
        # will handle it before it sees the stop.)
        return (
            self.state == "running"
            and self.mailbox.parked()
            and not self.children
            and not self._goroutines
            and not _has_on_stop(self.instance)
        )

    async def stop_and_wait(self) -> None:
        if self.terminated.is_set():
            return
        self.request_stop(timed=True)
        await self.terminated.wait()

    def _check_overrun(self, failing: bool) -> None:
        # The only canceller of a cell's scope besides kill() and a failure
        # (``failing``: a goroutine's, before the shutdown) is the stop deadline.
        if self.scope.cancelled_caught and not self.killed and not failing:
            logger.warning(
                "%s did not stop within its shutdown timeout of %s s; cancelled it",
                self.path,
                self.shutdown,
            )
            self.killed = True

    def fail_late(self, error: BaseException) -> None:
        """Fail the actor with ``error``, found elsewhere (a process actor's
        remote end). While it runs, as a failing goroutine does; while it
        stops, the stop ends with ``error``: the failure came first and was
        heard late (the asker's reply overtakes the remote end's report)."""
        if self.failure is not None:
            return
        if self.alive:
            self.failure = error
            self.scope.cancel()
        elif self.state == "stopping":
            self.failure = error

    def kill(self) -> None:
        """Cancel the actor at once (brutal kill); cleanup still runs."""
        self.stop_requested = True
        self.killed = True
        self.scope.cancel()

    # -- goroutines -----------------------------------------------------------

    def start_soon(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: object = None
    ) -> None:
        if not self.alive:
            raise ActorsError(f"{self.path} is {self.state}: it cannot start goroutines or timers")
        scope = task_scope()
        if self._goroutines is None:
            self._goroutines = set()
        self._goroutines.add(scope)
        self.system._start(
            self._goroutine,
            scope,
            fn,
            args,
            name=f"{self.path} go {getattr(fn, '__qualname__', fn)}",
        )

    async def _goroutine(
        self,
        scope: anyio.CancelScope,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
    ) -> None:
        _goroutine_of.set(self)
        try:
            with scope:
                await fn(*args)
        except BaseException as exc:
            if not _fails(exc, scope):
                if _cancellation(exc):
                    raise
                self.system._nursery.crashed(exc, self.path)  # see run()
                return
            exc = _as_failure(exc, self.path, "a goroutine")
            if self.failure is None and self.alive:
                self.failure = exc
                self.scope.cancel()
            else:
                _log_failure(self.path, exc, "in a goroutine while stopping")
        finally:
            assert self._goroutines is not None
            self._goroutines.discard(scope)
            if not self._goroutines and self._goroutines_done is not None:
                self._goroutines_done.set()

    async def _end_goroutines(self) -> None:
        if not self._goroutines:
            return
        self._goroutines_done = Signal()
        for scope in self._goroutines:
            scope.cancel()
        await self._goroutines_done.wait()

    # -- the task -------------------------------------------------------------

    async def run(self) -> None:
        current_owner.set(self)
        reason: BaseException | None = None
        try:
            # Phase 1, start and loop, in a scope that kill() or a failing
            # goroutine cancels; phase 2, the graceful shutdown, in a fresh one
            # that only kill() cancels.
            with self.scope:
                reason = await self._start()
                if reason is None:
                    reason = await self._loop(self.instance)  # type: ignore[arg-type]
            self._check_overrun(self.failure is not None)
            started = self.state == "running"
            if self.failure is not None and reason is None:
                reason = self.failure
            if not started and self.start_awaited:
                self.start_error = reason
            self.started.set()
            if reason is not None:
                if not started:
                    self.start_failed_in = (
                        "in on_start" if self.instance is not None else "while being built"
                    )
                _log_failure(self.path, reason, "" if started else self.start_failed_in)
            actor = self.instance if started else None
            self.state = "stopping"
            self.stop_requested = True
            self._drain_mailbox()
            # Most idle actors have nothing that could block here: skip the scope.
            if not self.killed and (
                self.children or self._goroutines or self._late_failures or _has_on_stop(actor)
            ):
                self.scope = task_scope()
                if self.stop_deadline is not None:
                    self.scope.deadline = self.stop_deadline
                with self.scope:
                    reason = await self._shutdown(actor, reason)
                self._check_overrun(False)
            if reason is None and self.failure is not None:
                reason = self.failure  # heard of while stopping (fail_late)
                _log_failure(self.path, reason, "")
        except BaseException:
            self._escaped()  # no name for it here: a local more in every actor's frame
        finally:
            self._abandon_ask()
            if not self.mailbox.closed:
                self._drain_mailbox()
            if self._goroutines or self.children:
                with anyio.CancelScope(shield=True):
                    await self._kill_the_rest()
            self._finish(reason)

    def _escaped(self) -> None:
        # What escaped run()'s phases is not a failure (those are caught where
        # they happen). A cancellation of the task goes on (re-raised); a
        # KeyboardInterrupt or SystemExit ends the system: escaping the task
        # would, on asyncio, also escape the event loop, past every cleanup.
        error = sys.exc_info()[1]
        if _cancellation(error):
            raise
        assert error is not None
        self.system._nursery.crashed(error, self.path)

    async def _start(self) -> BaseException | None:
        try:
            actor = self._build()
            await actor.on_start()
        except BaseException as exc:
            if not _fails(exc, self.scope):
                raise
            return _as_failure(exc, self.path, "on_start")
        self.state = "running"
        self.started.set()
        self.started = _SET  # the spawner holds the old one; free it with them
        return None

    def _build(self) -> Actor:
        actor = self.factory(*self.args, **self.kwargs)
        if not isinstance(actor, Actor):
            raise TypeError(
                f"the factory {getattr(self.factory, '__qualname__', self.factory)} "
                f"spawned at {self.path} returned "
                f"{type(actor).__name__}, not an Actor: spawn an Actor subclass "
                f"or a callable that returns an Actor instance"
            )
        actor._actors_cell = self
        self.instance = actor
        return actor

    async def _loop(self, actor: Actor) -> BaseException | None:
        # The hot path: _MailboxQueue.get() inlined, one coroutine frame less
        # per message.
        # Only what every message needs is cached in locals: a parked actor's
        # frame is walked by the garbage collector, and bound methods count.
        mailbox = self.mailbox
        user = mailbox._user
        receive = actor.receive
        try:
            while not self.stop_requested:
                if mailbox._system:
                    message = mailbox._system.pop(0)
                    kind = type(message)
                    if kind is _Stop:
                        break
                    if kind is _ChildFailed:
                        await actor.on_child_failed(message.ref, message.error)
                    else:  # a Terminated: the watch it ends is over
                        if self.watching:
                            self.watching.pop(message.ref, None)
                        if await receive(message) is UNHANDLED:
                            self.dead_letter(message, "unhandled")
                    self.processed += 1
                    continue
                message = user._receive_fast()
                if message is _NOTHING:
                    if user._checkpoint_due():
                        # Here rather than inside receive(), where a system
                        # message arriving meanwhile would find the loop
                        # neither busy nor parked.
                        await checkpoint()
                        continue
                    mailbox.receiving = True
                    message = await user.receive()
                    mailbox.receiving = False
                    if message is _WAKE:
                        continue
                kind = type(message)
                if kind is Ask:
                    self._current_ask = message
                    result = await receive(message.message)
                    if self._current_ask is not None:  # else: reply_later()
                        self._current_ask = None
                        if result is UNHANDLED:
                            self.dead_letter(message, "unhandled")
                        elif not message.put(result):
                            self.system._late_reply()
                elif kind is WireAsk:
                    await self._wire_ask(message, receive)
                elif kind is _Traced:
                    await self._traced(message, receive)
                elif await receive(message) is UNHANDLED:
                    self.dead_letter(message, "unhandled")
                self.processed += 1
        except BaseException as exc:
            if not _fails(exc, self.scope):
                raise
            exc = _as_failure(exc, self.path, "receive")
            ask = self._current_ask
            if ask is not None:
                self._current_ask = None
                ask.put_failure(exc)
            return exc
        return None

    async def _traced(
        self, traced: _tracing.Traced, receive: Callable[[Any], Awaitable[Any]]
    ) -> None:
        # A message sent while tracing: handled as above, in a CONSUMER (tell)
        # or SERVER (ask) span, current in this task while the handler runs.
        message = traced.message
        kind = type(message)
        if kind is not WireAsk and getattr(self.instance, "_actors_relay", False):
            # The stand-in of an actor in another process passes the wrapper
            # on (and a question in it): the remote actor's span is the
            # sender's child, as when the sender sends there directly.
            if isinstance(message, Ask):
                self._current_ask = message
            await receive(traced)
        elif kind is WireAsk:
            with _tracing.handling(self.path, traced.context, True):
                await self._wire_ask(message, receive)
        elif isinstance(message, Ask):
            with _tracing.handling(self.path, traced.context, True) as span:
                self._current_ask = message
                result = await receive(message.message)
                if self._current_ask is not None:  # else: reply_later()
                    self._current_ask = None
                    if result is UNHANDLED:
                        span.set_attribute("error.type", "UnhandledMessage")
                        self.dead_letter(message, "unhandled")
                    elif not message.put(result):
                        self.system._late_reply()
        else:
            with _tracing.handling(self.path, traced.context, False):
                if await receive(message) is UNHANDLED:
                    self.dead_letter(message, "unhandled")

    async def _wire_ask(self, ask: WireAsk, receive: Callable[[Any], Awaitable[Any]]) -> None:
        # An ask from another process: as above, in a scope its asker's
        # cancel cancels (the handler stops at its next checkpoint).
        self._current_ask = ask
        # task_scope(): on asyncio a TaskScope, a fraction of an anyio
        # scope's cost to enter and leave (benchmarks.process, ask row).
        with task_scope() as scope:
            ask.scope = scope
            if ask.closed:
                scope.cancel()
            result = await receive(ask.message)
        ask.scope = None
        if self._current_ask is not None:  # else: reply_later()
            self._current_ask = None
            if scope.cancelled_caught:
                return  # its asker gave up: nobody to answer
            if result is UNHANDLED:
                self.dead_letter(ask, "unhandled")
            elif not ask.put(result):
                self.system._late_reply()

    async def _shutdown(
        self, actor: Actor | None, reason: BaseException | None
    ) -> BaseException | None:
        await self._end_goroutines()
        if actor is not None and type(actor).on_stop_children is not Actor.on_stop_children:
            # Supervisors stop their children themselves, in their own order.
            try:
                await actor.on_stop_children()
            except Exception as exc:
                _log_failure(self.path, exc, "in on_stop_children")
                if reason is None:
                    reason = exc
        # What the default on_stop_children does, and what an override left.
        for child in reversed(list(self.children.values())):
            await child.stop_and_wait()
        if actor is not None:
            for ref, error in self._late_failures or ():
                try:
                    await actor.on_child_failed(ref, error)
                except BaseException as exc:
                    if not _fails(exc, self.scope):
                        raise
                    exc = _as_failure(exc, self.path, "on_child_failed")
                    # Logged here unless it is the child's own error, already
                    # logged where it happened; only the first one fails this
                    # actor, so a later one would otherwise go unseen.
                    _log_failure(self.path, exc, "in on_child_failed")
                    if reason is None:
                        reason = exc
            self._late_failures = None
            try:
                await actor.on_stop()
            except BaseException as exc:
                if not _fails(exc, self.scope):
                    raise
                exc = _as_failure(exc, self.path, "on_stop")
                _log_failure(self.path, exc, "in on_stop")
                if reason is None:
                    reason = exc
        return reason

    def _late_failure(self, ref: ActorRef, error: BaseException) -> None:
        if self._late_failures is None:
            self._late_failures = []
        self._late_failures.append((ref, error))

    def _drain_mailbox(self) -> None:
        for message in self.mailbox.close():
            kind = type(message)
            if kind is _ChildFailed:
                self._late_failure(message.ref, message.error)
            elif kind is not _Stop and kind is not Terminated:
                self.dead_letter(message, "stopped")

    def _abandon_ask(self) -> None:
        if self._current_ask is not None:
            self._current_ask.put_outcome(STOPPED)
            self._current_ask = None
        while self.deferred:
            self.deferred.pop()._abandon()

    def reply_later(self) -> Reply:
        ask = self._current_ask
        if ask is None or not self.is_current():
            raise ActorsError(
                f"{self.path}: reply_later() takes the reply of the ask being "
                f"handled; call it in receive() while handling an ask"
            )
        self._current_ask = None
        reply = Reply(ask, self)
        if self.deferred is None:
            self.deferred = set()
        self.deferred.add(reply)
        return reply

    def deferred_done(self, reply: Reply) -> None:
        if self.deferred:
            self.deferred.discard(reply)

    async def _kill_the_rest(self) -> None:
        # Normally nothing is left; after a kill or a cancellation from outside,
        # cancel goroutines and children and wait for them (they end quickly).
        for scope in self._goroutines or ():
            scope.cancel()
        if self._goroutines:
            self._goroutines_done = Signal()
            await self._goroutines_done.wait()
        for child in reversed(list(self.children.values())):
            child.kill()
            await child.terminated.wait()

    def _finish(self, reason: BaseException | None) -> None:
        self.state = "failed" if reason is not None else "stopped"
        self.reason = reason
        self.started.set()
        siblings = self.parent.children if self.parent else self.system._top
        if siblings.get(self.name) is self:
            del siblings[self.name]
        self.system._cell_gone(self)
        if self.watching:
            for target in self.watching.values():
                if target is not None and target.watchers:
                    target.watchers.pop(self, None)
            self.watching = None
        if self.watchers:
            notice = Terminated(self.ref, reason, self.killed)
            for watcher in self.watchers:
                if watcher.watching:
                    watcher.watching[self.ref] = None  # the notice is pending
                watcher.deliver_system(notice)
            self.watchers = None
        if reason is not None and self.start_error is None:
            if self.parent is None:
                self.system._root_failure(self, reason)
            else:
                self.parent.child_failed(self.ref, reason)
        self.instance = None
        if self._terminated is None:
            self._terminated = _SET
        else:
            self._terminated.set()

    def child_failed(self, ref: ActorRef, error: BaseException) -> None:
        if self.mailbox.closed:
            if self.alive or self.state == "stopping":
                self._late_failure(ref, error)
            else:  # pragma: no cover - children end before their parent
                _log_failure(ref.path, error, "after its parent ended")
        else:
            self.deliver_system(_ChildFailed(ref, error))


def _cancellation(error: BaseException | None) -> bool:
    """Whether ``error`` is the running backend's cancellation (trio's is
    looked up on trio only, so that asyncio never imports it)."""
    if isinstance(error, CancelledError):
        return True
    return asyncio_loop() is None and isinstance(error, trio.Cancelled)


def _fails(error: BaseException, scope: Any) -> bool:
    """Whether ``error``, escaping code that runs in ``scope``, is a failure:
    any ``Exception``, and a cancellation that is not the task's own (neither
    ``scope`` nor, on trio, an enclosing scope cancelled it: it was raised
    through, from a future or scope that someone else cancelled)."""
    if isinstance(error, Exception):
        return True
    if not _cancellation(error) or scope.cancel_called:
        return False
    return asyncio_loop() is not None or trio.current_effective_deadline() != -math.inf


def _as_failure(error: BaseException, path: str, where: str) -> BaseException:
    if isinstance(error, Exception):
        return error
    # A stray cancellation must not leave the actor as one: every scope up the
    # tree would take it for its own.
    failure = ActorFailed(
        f"{path}: a cancellation that was not the actor's own escaped {where} "
        f"(a future or cancel scope that something else cancelled); the "
        f"original is the __cause__"
    )
    failure.__cause__ = error
    return failure


def _has_on_stop(actor: Actor | None) -> bool:
    return actor is not None and type(actor).on_stop is not Actor.on_stop


def _log_failure(path: str, error: BaseException, where: str) -> None:
    # Log each failure once, where it happened; parents that adopt it don't.
    if getattr(error, "_actors_logged", False):
        return
    try:
        error._actors_logged = True  # type: ignore[attr-defined]
        _add_note(error, f"raised in actor {path}{' ' + where if where else ''}")
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    logger.error(
        "actor %s failed%s: %r",
        path,
        " " + where if where else "",
        error,
        exc_info=(type(error), error, error.__traceback__),
    )


def _add_note(error: BaseException, note: str) -> None:
    add_note = getattr(error, "add_note", None)
    if add_note is not None:
        add_note(note)
        return
    # Python 3.10: the list add_note() keeps, by hand (its tracebacks do not
    # print it; the log line names the actor instead).
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        notes.append(note)
    else:
        error.__notes__ = [note]
