"""Workers: child processes that host actors for their local stand-ins.

A :class:`Worker` is one ``python -m actors._child`` process, its
connection (a :class:`~actors._peer.Peer`) and the ``Host`` actor over
there that spawns the actors placed on it. A process actor of its own
(``Subprocess()``) owns a worker with one actor on it; a process pool owns
a few workers with many actors each. The stand-ins on a worker are
``peer.proxies``, by uid: the host's ``ended`` reports go to the one they
name, and when the process dies every one of them fails with how it died
(:class:`ProcessExited`, or :class:`ProcessHung` after missed heartbeats).

# Invariants:
# - A started process is ended and reaped before ``done`` is set, however
#   the serving task ends (its ``finally``, shielded); only the worker's
#   owner ends it (``end``), or its death does.
# - When the process has ended, ``error`` is set, then every stand-in left in
#   ``peer.proxies`` is told (once), then ``on_lost`` is called, then ``done``
#   is set: no stand-in learns of a death while the worker still looks alive.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from . import _tracing
from ._exceptions import ConnectionLost, ProcessHung
from ._mailbox import Mailbox
from ._peer import Peer, Silent
from ._process import ChildProcess, start
from ._remote_names import serve_names
from ._remote_topics import serve_topics

if TYPE_CHECKING:
    from ._cell import Cell
    from ._placement import Subprocess
    from ._ref import ActorRef
    from ._system import ActorSystem


@dataclass(frozen=True)
class Hello:
    """The parent's first message to a child: who it is and who we are."""

    node: str
    parent: str
    heartbeat: float
    #: ``Subprocess(initializer=...)``, run before anything else.
    initializer: Callable[[], object] | None = None
    #: Whether the parent was traced (``actors.tracing.instrument``).
    tracing: bool = False


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
    #: The stand-in's topic subscriptions (spawn options), for the child's
    #: registry to know.
    subscriptions: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Drop:
    """Host request, sent after a :class:`Spawn` on the same connection (so
    it cannot overtake it): kill the actor with this identity, if it runs.
    Its stand-in gave up before it knew whether the actor started."""

    node: str
    uid: int


@dataclass(frozen=True)
class Census:
    """Host request: how many actors it hosts (for tests and debugging)."""


class Worker:
    """One child process that hosts actors for stand-ins here (see the module).

    Args:
        system: the system the stand-ins live in.
        placement: how to start the process.
        backend: the child's event loop.
        owner: a stand-in's cell whose end also ends the process (a process
            of its own), or ``None`` (a pool's worker: the pool ends it).
        on_lost: called with the worker and the error when the process died
            or hung (not when its owner ended it).
    """

    def __init__(
        self,
        system: ActorSystem,
        placement: Subprocess,
        backend: str,
        *,
        owner: Cell | None = None,
        on_lost: Callable[[Worker, BaseException], None] | None = None,
    ) -> None:
        self.system = system
        self.placement = placement
        self.backend = backend
        self.owner = owner
        self.on_lost = on_lost
        self.child: ChildProcess | None = None
        self.peer: Peer | None = None
        self.host: ActorRef | None = None
        self.pid = 0
        #: How the process died; None while it lives and after ``end``.
        self.error: BaseException | None = None
        self.closing = False
        #: Set once the process has been reaped.
        self.done = anyio.Event()
        self._settled = anyio.Event()  # ready, or the process ended first
        self._scope: anyio.CancelScope | None = None  # the serving task's
        self._serving = False

    def __repr__(self) -> str:
        state = "up" if self.alive else f"down ({self.error})" if self.error else "ending"
        return f"<Worker {self.pid} {state}>"

    @property
    def alive(self) -> bool:
        """Ready, and neither dead nor being ended."""
        return (
            self.host is not None
            and not self.closing
            and self.peer is not None
            and self.peer.error is None
        )

    @property
    def stand_ins(self) -> dict[int, Any]:
        """The local stand-ins of the actors on this worker, by uid."""
        assert self.peer is not None
        return self.peer.proxies

    async def start(self) -> None:
        """Start the process and wait for its host to be ready.

        Raises:
            ProcessExited: it ended before it was ready.
            ConnectionLost: its connection ended before it was ready.

        Cancellation (the caller's start timeout, typically): the process
        is killed and reaped before the cancellation goes on.
        """
        system, placement = self.system, self.placement
        try:
            child = self.child = await start(placement, self.backend)
            self.pid = child.pid
            node = f"{system.name}:{child.pid}"
            peer = self.peer = Peer(
                system,
                child.wire,
                node,
                pid=child.pid,
                heartbeat=placement.heartbeat,
                misses=placement.misses,
            )
            answers: list[Ready] = []

            def on_ready(message: Ready) -> None:
                answers.append(message)
                self._settled.set()

            peer.handlers["ready"] = on_ready
            peer.handlers["ended"] = self._on_ended
            serve_topics(peer)  # the child's topics and names are this system's
            serve_names(peer)
            system._peers[node] = peer
            hello = Hello(
                node,
                system.name,
                placement.heartbeat,
                placement.initializer,
                _tracing.tracer is not None,
            )
            peer.signal("hello", hello)
            # Not a goroutine of the owner: those end before its on_stop,
            # which still needs the connection to stop the remote actor.
            system._start(self._serve, name=f"process {child.pid}")
            self._serving = True
            await self._settled.wait()
            if not answers:
                raise self.error or ConnectionLost(f"process {child.pid} ended while starting")
            self.host = answers[0].host
        except BaseException:
            await self.end(kill=True)
            if not self._serving:  # else the serving task sets it
                if self.peer is not None:
                    system._peer_lost(self.peer)
                self.done.set()
            raise

    def _on_ended(self, payload: tuple[int, bytes | None, bool]) -> None:
        uid, reason, _killed = payload
        stand_in = self.stand_ins.get(uid)
        if stand_in is not None:
            stand_in._remote_ended(reason)

    async def _serve(self) -> None:
        # A task of the system's nursery: serves the connection, turns the
        # process's death into failures, and always ends and reaps it.
        from ._cell import current_cell

        current_cell.set(None)
        child, peer = self.child, self.peer
        assert child is not None and peer is not None
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._scope = task_group.cancel_scope
                if self.closing:  # aborted before it ran
                    task_group.cancel_scope.cancel()
                owner = self.owner
                if owner is not None:

                    async def end_with_owner() -> None:
                        await owner.terminated.wait()
                        task_group.cancel_scope.cancel()

                    task_group.start_soon(end_with_owner)
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
                    if not self.closing:
                        with anyio.move_on_after(5):
                            await child.wait()
                        error = child.exited()
                except Exception as exc:  # AuthenticationError, a handler's bug
                    error = exc
                task_group.cancel_scope.cancel()
        finally:
            closing = self.closing  # its owner ended it: not a failure
            await self.end(kill=not closing)
            if closing:
                error = None
            self.error = error
            # The stand-ins left learn that the connection is gone: with the
            # error, they fail; a stand-in that owns the process ended it
            # itself, so it detaches; on a pool's worker that its pool ended
            # (a cancelled close), they fail with that.
            for stand_in in list(peer.proxies.values()):
                if error is not None:
                    stand_in._lost(_own_copy(error))
                elif self.owner is None:
                    stand_in._lost(child.exited(" (its process pool ended it)"), by_owner=True)
                else:
                    stand_in._lost(None)
            if error is not None and self.on_lost is not None:
                self.on_lost(self, error)
            self._settled.set()
            self.done.set()

    def abort(self) -> None:
        """Kill the process now, from any code that cannot wait (the system
        is being cancelled); the serving task reaps it."""
        self.closing = True
        if self._scope is not None:
            self._scope.cancel()
        elif self.peer is not None:
            self.peer.close()

    def drop(self, to: str, node: str, uid: int) -> None:
        """Kill the actor ``uid`` over there, whether or not its spawn has
        been handled yet; does not wait."""
        host, peer = self.host, self.peer
        if host is None or peer is None or peer.error is not None:
            return
        try:
            host.tell_nowait(Drop(node, uid))  # after its Spawn, on the same queue
        except Exception:  # a full send queue: at least kill it if it runs
            peer.signal("kill", to)

    async def end(self, *, kill: bool, grace: float = 1.0) -> None:
        """End the process: close the connection, wait ``grace`` seconds for
        it to exit, SIGTERM, a second later SIGKILL (``kill``: SIGKILL at
        once); always reap. Shielded from cancellation."""
        child = self.child
        if child is None:
            return
        self.closing = True
        with anyio.CancelScope(shield=True):
            if self.peer is not None:
                self.peer.close()
            if kill:
                await child.kill()
            else:
                await child.end(grace=grace)


def _own_copy(error: BaseException) -> BaseException:
    # One exception per failing actor: each is logged on its own and gets
    # its own notes (which name the actor).
    try:
        return copy.copy(error)
    except Exception:  # pragma: no cover - an exception that cannot be rebuilt
        return error


__all__ = ["Census", "Drop", "Hello", "Ready", "Spawn", "Worker"]
