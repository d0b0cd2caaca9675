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

Stopping the stand-in stops the remote actor (its ``on_stop`` runs there),
waits up to its shutdown timeout, then ends the process: the connection
closes, then SIGTERM, a second later SIGKILL, and the process is always
reaped.

# Invariants:
# - The child process is ended and reaped before the stand-in's task ends,
#   however it ends (``_serve``'s ``finally``, shielded).
# - An ask the stand-in took is answered by the remote reply, or with
#   ``ConnectionLost`` when the connection ends (the peer's invariant).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from ._actor import Actor
from ._codec import dumps_spec
from ._exceptions import ActorsError, ConnectionLost, ProcessHung, UnpicklableMessage
from ._mailbox import Mailbox
from ._peer import Peer, RemoteRef, Silent, address, load_error
from ._process import ChildProcess, start

if TYPE_CHECKING:
    from ._cell import Cell
    from ._placement import Subprocess

logger = logging.getLogger("actors")


@dataclass(frozen=True)
class Hello:
    """The parent's first message to a child: who it is and who we are."""

    node: str
    parent: str
    heartbeat: float


@dataclass(frozen=True)
class Ready:
    """The child's answer: its pid and its host actor."""

    pid: int
    host: Any


@dataclass(frozen=True)
class Spawn:
    """Host request: run an actor with this identity (node, path, uid)."""

    spec: bytes
    node: str
    path: str
    uid: int
    name: str
    shutdown: float | None
    mailbox: Mailbox


class ProcessActor(Actor):
    """The local stand-in of an actor in a child process (see the module)."""

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
        self.child: ChildProcess | None = None
        self.peer: Peer | None = None
        self._address = ""
        self._ended: anyio.Event | None = None
        self._closing = False
        self._waiting: anyio.CancelScope | None = None
        self._direct: RemoteRef | None = None
        self._error: BaseException | None = None

    async def on_start(self) -> None:
        cell: Cell = self._actors_cell
        system = cell.system
        placement = self.placement
        if placement.pool is not None:
            raise ActorsError(
                f"{cell.path}: process pools are not available yet; spawn it with "
                f"Subprocess() (a process of its own)"
            )
        spec = dumps_spec((self.factory, self.args, self.kwargs))  # fails here, not there
        backend = placement.backend or sniffio.current_async_library()
        if placement.by_value:
            _register_by_value(placement.by_value)
        try:
            with anyio.fail_after(placement.start_timeout):
                child = self.child = await start(placement, backend)
                node = f"{system.name}:{child.pid}"
                peer = self.peer = Peer(
                    system,
                    child.wire,
                    node,
                    pid=child.pid,
                    heartbeat=placement.heartbeat,
                    misses=placement.misses,
                )
                ready = anyio.Event()
                answers: list[Ready] = []

                def on_ready(message: Ready) -> None:
                    answers.append(message)
                    ready.set()

                peer.handlers["ready"] = on_ready
                peer.handlers["ended"] = self._remote_ended
                system._peers[node] = peer
                peer.signal("hello", Hello(node, system.name, placement.heartbeat))
                # Not a goroutine: those end before on_stop, which still
                # needs the connection to stop the remote actor.
                system._start(self._serve, name=f"{cell.path} (process {child.pid})")
                with anyio.CancelScope() as waiting:
                    self._waiting = waiting
                    await ready.wait()
                if not answers:
                    raise self._error or ConnectionLost(f"process {child.pid} ended while starting")
                host = answers[0].host
                self._address = address(system.name, cell.uid, cell.path)
                cell.details = {**(cell.details or {}), "pid": str(child.pid)}
                self._ended = anyio.Event()
                outcome = await host.ask(
                    Spawn(
                        spec,
                        system.name,
                        cell.path,
                        cell.uid,
                        cell.name,
                        cell.shutdown,
                        Mailbox(cell.mailbox.capacity, cell.mailbox.overflow),
                    ),
                    timeout=None,
                )
        except BaseException:
            await self._end_child(kill=True)
            raise
        if outcome is not None:
            await self._end_child(kill=True)
            raise load_error(outcome)
        self._direct = RemoteRef(self.peer, system.name, cell.path, cell.uid)
        self._go_direct()

    def _go_direct(self) -> None:
        # Once nothing waits in the stand-in's mailbox, refs send straight
        # to the connection (pickled by the sender, which sees pickling
        # errors); until then through the mailbox, so nothing overtakes.
        cell: Cell = self._actors_cell
        if not cell.mailbox._user._buffer and cell.alive and not cell.stop_requested:
            cell.remote = self._direct

    async def _serve(self) -> None:
        # A task of the system's nursery: serves the connection while the
        # stand-in lives, fails it when the process dies, and always ends and
        # reaps the process.
        from ._cell import current_cell

        current_cell.set(None)
        cell: Cell = self._actors_cell
        child, peer = self.child, self.peer
        assert child is not None and peer is not None
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:

                async def end_with_cell() -> None:
                    await cell.terminated.wait()
                    task_group.cancel_scope.cancel()

                task_group.start_soon(end_with_cell)
                try:
                    await peer.run()
                except Silent as silent:
                    await child.kill()
                    why = str(silent).split(" ", 1)[1]
                    error = ProcessHung(
                        f"{child.exited()}: killed after it {why}",
                        code=child.returncode,
                        pid=child.pid,
                    )
                except (ConnectionLost, anyio.BrokenResourceError):
                    if not self._closing:
                        with anyio.move_on_after(5):
                            await child.wait()
                        error = child.exited()
                except Exception as exc:  # a remote failure, from _remote_ended
                    error = exc
                task_group.cancel_scope.cancel()
        finally:
            closing = self._closing  # we ended it: not a failure
            await self._end_child(kill=not closing)
        cell.remote = None
        if error is not None and not closing:
            self._error = error
            if self._waiting is not None:
                self._waiting.cancel()
            if cell.failure is None and cell.alive:
                cell.failure = error  # as a failing goroutine does
                cell.scope.cancel()

    def _remote_ended(self, payload: tuple[int, bytes | None, bool]) -> None:
        uid, reason, _killed = payload
        cell: Cell = self._actors_cell
        if uid != cell.uid:
            return
        if self._ended is not None:
            self._ended.set()
        if self._closing:
            return
        if reason is not None:
            raise load_error(reason)  # out of the peer: _serve fails the stand-in
        cell.request_stop()

    async def receive(self, message: Any) -> Any:
        peer = self.peer
        assert peer is not None
        cell: Cell = self._actors_cell
        ask = cell._current_ask
        if ask is not None:
            cell._current_ask = None  # the remote reply answers it
            try:
                await peer.forward(self._address, ask)
            except UnpicklableMessage as error:
                ask.put_error(error)  # the asker learns why; the actor lives on
        else:
            try:
                await peer.tell(self._address, cell.ref, message)
            except UnpicklableMessage as error:
                logger.error("%s: %s", cell.path, error)
                cell.dead_letter(message, f"unpicklable: {error}")
        if self._direct is not None and cell.remote is None:
            self._go_direct()
        return None

    async def on_stop(self) -> None:
        self._actors_cell.remote = None  # from now on, messages are dead letters here
        peer, child = self.peer, self.child
        if peer is None or child is None or peer.error is not None:
            return
        polite = False
        try:
            if self._ended is not None and not self._ended.is_set():
                peer.signal("stop", self._address)
                await self._ended.wait()  # until our shutdown timeout cancels us
            polite = True
        finally:
            # Cancelled (the shutdown timeout, a kill): SIGTERM at once, a
            # second later SIGKILL; either way the process is reaped before
            # the stand-in ends.
            await self._end_child(kill=False, grace=1.0 if polite else 0.0)

    async def _end_child(self, *, kill: bool, grace: float = 1.0) -> None:
        child = self.child
        if child is None:
            return
        self._closing = True
        with anyio.CancelScope(shield=True):
            if self.peer is not None:
                self.peer.close()
            if kill:
                await child.kill()
            else:
                await child.end(grace=grace)

    def __repr__(self) -> str:
        return f"<ProcessActor {self.actor_class}>"


def _register_by_value(modules: tuple[str, ...]) -> None:
    import importlib

    import cloudpickle

    for name in modules:
        cloudpickle.register_pickle_by_value(importlib.import_module(name))


__all__ = ["Hello", "ProcessActor", "Ready", "RemoteRef", "Spawn"]
