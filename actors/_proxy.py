"""Process actors: the local stand-in of an actor that runs in a child process.

``spawn(..., placement=Subprocess())`` spawns a :class:`ProcessActor` in the
caller's tree. Its ref is the ref users get: messages sent to it are
forwarded over the child's connection to the real actor, which carries the
stand-in's identity (its refs pickle as the stand-in's), so the stand-in's
lifetime is the remote actor's lifetime. Supervisors, watches, the registry
and topics see an ordinary local actor; the stand-in turns what happens over
there into what happens here:

- the remote actor stopped: the stand-in stops;
- it failed: the stand-in fails with the same exception (its original type
  where importable, with the remote traceback);
- its process died: the stand-in fails with :class:`ProcessExited`
  (``code`` -9 for ``kill -9``); asks in flight raise :class:`ConnectionLost`;
- its process hung (missed heartbeats): killed, then :class:`ProcessHung`.

The process is a :class:`~actors._worker.Worker`: one of its own
(``Subprocess()``), or one of a process pool's (``Subprocess(pool=...)``),
shared with other actors. Stopping the stand-in stops the remote actor (its
``on_stop`` runs there) and waits up to its shutdown timeout; then a process
of its own is ended (the connection closes, then SIGTERM, a second later
SIGKILL, and the process is always reaped), while on a pool's worker the
host is asked to kill the actor and the process lives on.

# Invariants:
# - A process of its own is ended and reaped when the stand-in ends, however
#   it ends (``on_stop``, or the worker's serving task when it was killed).
# - A pooled stand-in is in its worker's ``stand_ins`` from the moment it
#   picked the worker until its cell is gone (``_release``, from the
#   system's gone hook); when it ends before its remote actor did, the host
#   is asked to kill that actor.
# - An ask the stand-in took is answered by the remote reply, or with
#   ``ConnectionLost`` when the connection ends (the peer's invariant).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from . import _tracing
from ._actor import Actor
from ._codec import dumps_spec
from ._exceptions import UNSENDABLE, ConnectionLost, unsent_reason
from ._mailbox import Mailbox
from ._pool import pool_named
from ._process import TERM_GRACE
from ._remote import RemoteRef, address, load_error
from ._worker import Spawn, Worker

if TYPE_CHECKING:
    from ._cell import Cell
    from ._placement import Subprocess

logger = logging.getLogger("actors")

#: Seconds a failed start waits for its process's death to be read: the
#: serving task waits up to 5 s for the exit, then kills and reaps.
_DEATH_READ = 10.0


class ProcessActor(Actor):
    """The local stand-in of an actor in a child process (see the module)."""

    #: While tracing, the cell loop hands ``receive`` a message (or a
    #: question) in its ``Traced`` wrapper, sent on with its context.
    _actors_relay = True

    def __init__(
        self,
        placement: Subprocess,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.placement = placement
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        self.actor_class = getattr(factory, "__qualname__", repr(factory))
        self.worker: Worker | None = None
        self._address = ""
        self._ended = anyio.Event()  # the remote actor ended, or its process did
        self._running = False  # on_start succeeded
        self._stopping = False
        self._released = False
        self._direct: RemoteRef | None = None

    @property
    def _owns_worker(self) -> bool:
        return self.placement.pool is None

    async def on_start(self) -> None:
        cell: Cell = self._actors_cell
        system = cell.system
        placement = self.placement
        spec = dumps_spec((self.factory, self.args, self.kwargs))  # fails here, not there
        if placement.by_value:
            _register_by_value(placement.by_value)
        self._address = address(system.name, cell.uid, cell.path)
        starting: anyio.CancelScope | None = None
        waiting = "its process did not start"  # for the timeout's message
        try:
            with anyio.fail_after(placement.start_timeout) as starting:
                if placement.pool is None:
                    backend = placement.backend or sniffio.current_async_library()
                    worker = self.worker = Worker(system, placement, backend, owner=cell)
                    await worker.start()
                    details = {"pid": str(worker.pid)}
                else:
                    waiting = f"no worker of process pool {placement.pool!r} was ready"
                    pool = pool_named(system, placement.pool, cell.path)
                    worker = self.worker = await pool._pick(cell.path)
                    details = {"pid": str(worker.pid), "pool": pool.name}
                waiting = f"its on_start in process {worker.pid} did not finish"
                worker.stand_ins[cell.uid] = self
                cell.details = {**(cell.details or {}), **details}
                assert worker.host is not None
                outcome = await worker.host.ask(
                    Spawn(
                        spec,
                        system.name,
                        cell.path,
                        cell.uid,
                        cell.name,
                        cell.shutdown,
                        Mailbox(cell.mailbox.capacity, cell.mailbox.overflow),
                        tuple(system.registry.subscriptions(cell.ref)),
                    ),
                    timeout=None,
                )
        except BaseException as error:
            lost = self.worker
            try:
                if isinstance(error, ConnectionLost) and lost is not None:
                    # How the process died says more: its serving task
                    # learns it once the process is reaped (before
                    # _abandon, which would make the end its owner's).
                    with anyio.move_on_after(_DEATH_READ):
                        await lost.done.wait()
            finally:
                await self._abandon()
            if isinstance(error, ConnectionLost) and lost is not None and lost.error:
                raise lost.error from None
            if (
                isinstance(error, TimeoutError)
                and starting is not None
                and starting.cancelled_caught
            ):
                raise TimeoutError(
                    f"{cell.path}: {waiting} within {placement.start_timeout:g} s "
                    f"(Subprocess(start_timeout=...))"
                ) from None
            raise
        if outcome is not None:
            await self._abandon()
            raise load_error(outcome)
        self._running = True
        self._direct = RemoteRef(worker.peer, system.name, cell.path, cell.uid)  # type: ignore[arg-type]
        self._go_direct()

    async def _abandon(self) -> None:
        # on_start failed: no remote actor may outlive the stand-in.
        worker = self.worker
        if worker is None:
            return
        if self._owns_worker:
            await worker.end(kill=True)
        elif not self._ended.is_set():
            cell: Cell = self._actors_cell
            worker.drop(self._address, cell.system.name, cell.uid)

    def _go_direct(self) -> None:
        # Once nothing waits in the stand-in's mailbox, refs send straight
        # to the connection (pickled by the sender, which sees pickling
        # errors); until then through the mailbox, so nothing overtakes.
        cell: Cell = self._actors_cell
        if not cell.mailbox._user._buffer and cell.alive and not cell.stop_requested:
            cell.remote = self._direct

    def _remote_ended(self, reason: bytes | None) -> None:
        # The host's report: the remote actor ended (stopped, or failed).
        self._ended.set()
        if not self._running:
            return  # on_start takes it from here
        if reason is not None:
            self._fail(load_error(reason))
        elif not self._stopping:
            self._actors_cell.request_stop()

    def _lost(self, error: BaseException | None, by_owner: bool = False) -> None:
        # The worker's connection ended: the process died (``error``), or
        # whoever owns it ended it (no error; a pool's error ``by_owner``).
        cell = self._actors_cell
        cell.remote = None
        self._ended.set()  # nothing more will come from there
        if error is not None and (cell.alive or not by_owner):
            # A death while it stops fails the stop, as an on_stop that
            # raises does; its pool's ending it is the end of that stop.
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        cell: Cell = self._actors_cell
        cell.remote = None
        cell.fail_late(error)

    def _release(self) -> None:
        # The stand-in's cell is gone (however it ended): leave the worker,
        # and kill the remote actor if it may still run.
        if self._released:
            return
        self._released = True
        cell: Cell = self._actors_cell
        cell.remote = None
        worker = self.worker
        if worker is None or worker.peer is None:
            return
        worker.stand_ins.pop(cell.uid, None)
        if not self._ended.is_set() and not self._owns_worker:
            worker.drop(self._address, cell.system.name, cell.uid)

    async def receive(self, message: Any) -> Any:
        worker = self.worker
        assert worker is not None and worker.peer is not None
        peer = worker.peer
        cell: Cell = self._actors_cell
        ask = cell._current_ask
        if ask is not None:
            cell._current_ask = None  # the remote reply answers it
            try:
                await peer.forward(self._address, ask, _tracing.onward(message))
            except UNSENDABLE as error:
                ask.put_error(error)  # the asker learns why; the actor lives on
        else:
            assert self._direct is not None  # set once on_start has succeeded
            try:
                await self._direct.tell(message)
            except UNSENDABLE as error:
                logger.error("%s: %s", cell.path, error)
                cell.dead_letter(message, unsent_reason(error))
        if self._direct is not None and cell.remote is None:
            self._go_direct()
        return None

    async def on_stop(self) -> None:
        self._actors_cell.remote = None  # from now on, messages are dead letters here
        self._stopping = True
        worker = self.worker
        if worker is None or worker.peer is None or worker.peer.error is not None:
            return
        peer = worker.peer
        polite = False
        try:
            if not self._ended.is_set():
                peer.signal("stop", self._address)
                await self._ended.wait()  # until our shutdown timeout cancels us
            polite = True
        finally:
            if self._owns_worker:
                # Cancelled (the shutdown timeout, a kill): SIGTERM at once, a
                # second later SIGKILL; either way the process is reaped
                # before the stand-in ends.
                await worker.end(kill=False, grace=1.0 if polite else 0.0)
            elif not self._ended.is_set():
                # The worker lives on: its host kills the actor.
                peer.signal("kill", self._address)
                with anyio.CancelScope(shield=True), anyio.move_on_after(TERM_GRACE):
                    await self._ended.wait()

    def __repr__(self) -> str:
        return f"<ProcessActor {self.actor_class}>"


def release(cell: Cell) -> None:
    """The system's gone hook while it has process pools: a pooled stand-in
    leaves its worker when its cell is gone."""
    instance = cell.instance
    if type(instance) is ProcessActor:
        instance._release()


def _register_by_value(modules: tuple[str, ...]) -> None:
    import importlib

    import cloudpickle

    for name in modules:
        cloudpickle.register_pickle_by_value(importlib.import_module(name))


__all__ = ["ProcessActor", "release"]
