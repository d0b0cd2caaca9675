"""Process pools: a few long-lived worker processes that host many actors.

``system.process_pool("cpu", size=4)`` starts four workers (each a
:class:`~actors._worker.Worker`: a ``python -m actors._child`` process whose
host actor spawns the actors placed on it). ``spawn(...,
placement=Subprocess(pool="cpu"))`` spawns a stand-in here whose actor runs
on the live worker with the fewest actors (the first such, in slot order).

A worker that dies (``kill -9``) or hangs (missed heartbeats) fails every
actor on it with :class:`ProcessExited` or :class:`ProcessHung`, as a process
of its own would; supervisors restart them on the live workers, and the pool
starts a replacement in the dead worker's slot. More than ``max_restarts``
replacements within ``within`` seconds and the pool gives up: it starts no
more, and spawns on it fail with the reason.

# Invariants:
# - ``_slots[i]`` is the latest worker of slot ``i`` (starting, live or
#   dead); a dead one gets a replacement while the pool is open and has not
#   given up (``_replace``, one task per slot at most).
# - Every worker the pool started is ended and reaped before ``close()``
#   returns; if the system is cancelled instead, ``abort()`` kills them and
#   their serving tasks reap them.
# - Spawns pick live workers only; ``_changed`` wakes those that wait for one
#   when a worker becomes ready, or the pool gives up or closes.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import sniffio

from ._exceptions import ActorsError
from ._placement import Subprocess
from ._worker import Worker

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actors")

#: The delay before the second replacement within the window, doubling up to
#: :data:`BACKOFF_MAX` (the first is started at once).
BACKOFF_MIN: Final = 0.1
BACKOFF_MAX: Final = 2.0


class ProcessPool:
    """A few long-lived worker processes hosting many actors, from
    :meth:`ActorSystem.process_pool`.

    Start it with ``async with`` (the block's end closes it) or ``await``
    (it lives until the system ends, which closes it after every actor has
    stopped, or until :meth:`close`). Actors go on it with
    ``spawn(..., placement=Subprocess(pool=name))`` or a ``ChildSpec`` with
    that placement; each spawn picks the live worker with the fewest actors.

    A worker's death (``kill -9``, a crash of the interpreter) or hang
    (missed heartbeats) fails exactly the actors on it, with
    :class:`ProcessExited` or :class:`ProcessHung`; asks in flight to them
    raise :class:`ConnectionLost`. Their supervisors restart them on live
    workers, and the pool replaces the worker: at once the first time, then
    after 0.1 s, 0.2 s, ... up to 2 s while deaths keep coming. After more
    than ``max_restarts`` replacements within ``within`` seconds it gives up
    and spawns on it fail (with :class:`ActorsError` saying why).

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         async with system.process_pool("cpu", size=2) as pool:
        ...             placement = actors.Subprocess(pool="cpu")
        ...             ref = await system.spawn(actors.Actor, placement=placement)
        ...             info = system.tree().find(ref.path)
        ...             return len(pool.pids), dict(info.details)["pool"]
        >>> actors.run(main)
        (2, 'cpu')
    """

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        size: int | None,
        placement: Subprocess | None,
        max_restarts: int,
        within: float,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a process pool's name must be a non-empty string, got {name!r}")
        if size is None:
            import os

            size = os.cpu_count() or 1
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"process pool size must be a whole number >= 1, got {size!r}")
        if placement is None:
            placement = Subprocess()
        elif not isinstance(placement, Subprocess):
            raise TypeError(
                f"process_pool(placement=...) must be an actors.Subprocess, got {placement!r}"
            )
        elif placement.pool is not None:
            raise ValueError(
                f"process_pool(placement=...) says how to start the pool's workers; it "
                f"cannot name a pool itself (got pool={placement.pool!r})"
            )
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(
                f"process_pool(max_restarts=...) must be a whole number >= 0, got {max_restarts!r}"
            )
        if (
            isinstance(within, bool)
            or not isinstance(within, (int, float))
            or not 0 < within < math.inf
        ):
            raise ValueError(
                f"process_pool(within=...) must be a positive number of seconds, got {within!r}"
            )
        self._system = system
        #: The pool's name, as ``Subprocess(pool=...)`` gives it.
        self.name = name
        #: How many workers it keeps.
        self.size = size
        #: How its workers are started.
        self.placement = placement
        self.max_restarts = max_restarts
        self.within = float(within)
        #: Workers started to replace dead ones, over the pool's life.
        self.restarts = 0
        #: Why it gave up (no workers are replaced any more), or None.
        self.error: ActorsError | None = None
        self._state = "new"  # -> open -> closing -> closed
        self._slots: list[Worker | None] = [None] * size
        self._recent: deque[float] = deque()  # when the last replacements began
        self._replacing: dict[int, anyio.CancelScope] = {}
        self._changed: anyio.Event | None = None
        self._closed = anyio.Event()
        self._backend = placement.backend or ""  # the system's, when it starts

    def __repr__(self) -> str:
        return f"<ProcessPool {self.name!r} {self._state} workers {list(self.pids)}>"

    @property
    def pids(self) -> tuple[int, ...]:
        """The process ids of its live workers, in slot order."""
        return tuple(w.pid for w in self._slots if w is not None and w.alive)

    # -- lifetime ----------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, ProcessPool]:
        return self._open().__await__()

    async def __aenter__(self) -> ProcessPool:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _open(self) -> ProcessPool:
        system = self._system
        if self._state != "new":
            raise ActorsError(
                f"process pool {self.name!r} was already started: `await` it or enter it "
                f"with `async with` once"
            )
        if not system._open:
            raise ActorsError(
                f"actor system {system.name!r} is not running: open process pools inside "
                f"`async with ActorSystem() as system:`"
            )
        if self.name in system._pools:
            raise ActorsError(
                f"actor system {system.name!r} already has a process pool named "
                f"{self.name!r}: choose another name, or close that one first"
            )
        self._backend = self._backend or sniffio.current_async_library()
        self._state = "open"
        system._pools[self.name] = self
        from ._proxy import release

        if release not in system._gone_hooks:
            system._gone_hooks.append(release)
        errors: list[BaseException] = []
        try:
            async with anyio.create_task_group() as task_group:

                async def start(slot: int) -> None:
                    try:
                        await self._start_worker(slot)
                    except Exception as error:
                        errors.append(error)
                        task_group.cancel_scope.cancel()

                for slot in range(self.size):
                    task_group.start_soon(start, slot)
        finally:
            if errors or not all(w is not None and w.alive for w in self._slots):
                await self.close()
        if errors:
            raise errors[0]
        return self

    async def _start_worker(self, slot: int) -> None:
        worker = Worker(self._system, self.placement, self._backend, on_lost=self._lost)
        self._slots[slot] = worker
        timeout = self.placement.start_timeout
        try:
            with anyio.fail_after(timeout):
                await worker.start()
        except TimeoutError:
            raise TimeoutError(
                f"process pool {self.name!r}: a worker process did not start within "
                f"{timeout:g} s (Subprocess(start_timeout=...))"
            ) from None
        self._wake()

    async def close(self) -> None:
        """Stop the actors on the pool's workers, then end and reap the workers.

        Each actor stops as ``ref.stop()`` stops it, within its shutdown
        timeout; then each worker's connection closes, and a worker that does
        not exit within a second gets SIGTERM, a second later SIGKILL. Spawns
        on the pool fail from the moment it begins. Returns at once if the
        pool is closed (and waits if another task is closing it).

        Cancellation: the workers are still ended and reaped (shielded)
        before the cancellation goes on; the actors that were stopping on
        them end with them (and any other would fail with
        :class:`ProcessExited`).
        """
        if self._state == "new":
            self._state = "closed"
            self._closed.set()
            return
        if self._state != "open":
            await self._closed.wait()
            return
        self._state = "closing"
        self._wake()
        try:
            cells = [
                stand_in._actors_cell
                for worker in self._slots
                if worker is not None and worker.peer is not None
                for stand_in in list(worker.stand_ins.values())
            ]
            if cells:
                async with anyio.create_task_group() as task_group:
                    for cell in cells:
                        task_group.start_soon(cell.stop_and_wait)
        finally:
            with anyio.CancelScope(shield=True):
                for scope in list(self._replacing.values()):
                    scope.cancel()
                async with anyio.create_task_group() as task_group:
                    for worker in self._slots:
                        if worker is not None:
                            task_group.start_soon(self._end_worker, worker)
            self._state = "closed"
            if self._system._pools.get(self.name) is self:
                del self._system._pools[self.name]
            self._closed.set()

    @staticmethod
    async def _end_worker(worker: Worker) -> None:
        await worker.end(kill=False)
        await worker.done.wait()

    def abort(self) -> None:
        """Kill every worker now (the system is being cancelled); their
        serving tasks reap them."""
        if self._state in ("closed", "new"):
            return
        self._state = "closing"
        self._wake()
        for scope in list(self._replacing.values()):
            scope.cancel()
        for worker in self._slots:
            if worker is not None:
                worker.abort()

    async def wait_ready(self) -> None:
        """Wait until every one of its ``size`` workers is live: at once, but
        after a worker died, until its replacement is ready.

        Raises:
            ActorsError: the pool is closed, or it gave up replacing workers.

        Cancellation: nothing changes; the pool goes on as before.
        """
        while True:
            self.check("wait_ready()")
            if all(worker is not None and worker.alive for worker in self._slots):
                return
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    # -- placing actors ----------------------------------------------------------

    def check(self, path: str) -> None:
        """Raise if actors cannot be placed on the pool.

        Raises:
            ActorsError: it is closed, or it gave up replacing its workers.
        """
        if self._state != "open":
            raise ActorsError(
                f"{path}: process pool {self.name!r} is closed: spawn actors on it while "
                f"it is open (inside its `async with` block, or before `close()`); for a "
                f"supervisor that restarts actors on it, open it with `await "
                f"system.process_pool(...)`, which the system closes after its actors stopped"
            )
        if self.error is not None:
            raise ActorsError(f"{path}: {self.error}")

    async def _pick(self, path: str) -> Worker:
        """The live worker with the fewest actors; waits while none is live
        (a replacement is starting).

        Raises:
            ActorsError: the pool is closed or gave up.

        Cancellation: nothing is picked.
        """
        while True:
            self.check(path)
            best: Worker | None = None
            for worker in self._slots:
                if (
                    worker is not None
                    and worker.alive
                    and (best is None or len(worker.stand_ins) < len(best.stand_ins))
                ):
                    best = worker
            if best is not None:
                return best
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # -- replacing workers ---------------------------------------------------------

    def _lost(self, worker: Worker, error: BaseException) -> None:
        # A worker died (its actors have been told): replace it.
        if self._state != "open" or worker not in self._slots:
            return
        slot = self._slots.index(worker)
        logger.warning(
            "process pool %r: worker %d (pid %d) is gone: %s", self.name, slot, worker.pid, error
        )
        if slot not in self._replacing:
            scope = self._replacing[slot] = anyio.CancelScope()
            self._system._start(
                self._replace, slot, error, scope, name=f"process pool {self.name} slot {slot}"
            )

    async def _replace(self, slot: int, why: BaseException, scope: anyio.CancelScope) -> None:
        try:
            with scope:
                while self._state == "open":
                    now = anyio.current_time()
                    recent = self._recent
                    while recent and now - recent[0] > self.within:
                        recent.popleft()
                    if len(recent) >= self.max_restarts:
                        self._give_up(why)
                        return
                    if recent:
                        await anyio.sleep(min(BACKOFF_MIN * 2 ** (len(recent) - 1), BACKOFF_MAX))
                    recent.append(anyio.current_time())
                    self.restarts += 1
                    try:
                        await self._start_worker(slot)
                        return
                    except Exception as error:
                        logger.warning(
                            "process pool %r: a replacement worker did not start: %s",
                            self.name,
                            error,
                        )
                        why = error
        finally:
            self._replacing.pop(slot, None)

    def _give_up(self, why: BaseException) -> None:
        self.error = ActorsError(
            f"process pool {self.name!r} gave up: more than {self.max_restarts} worker "
            f"restarts within {self.within:g} s (the last: {why}); no actor can be placed "
            f"on it. Find why its workers die, then close it and open a new one, or allow "
            f"more (process_pool(max_restarts=..., within=...))"
        )
        logger.error("%s", self.error)
        self._wake()


def pool_named(system: ActorSystem, name: str, path: str) -> ProcessPool:
    """The open pool ``name`` of ``system``, for the actor at ``path``.

    Raises:
        ActorsError: there is no such pool, it is closed, or it gave up.
    """
    pool = system._pools.get(name)
    if pool is None:
        known = ", ".join(repr(n) for n in system._pools)
        raise ActorsError(
            f"{path}: actor system {system.name!r} has no process pool named {name!r}"
            f"{f' (it has {known})' if known else ''}: open it before spawning on it, "
            f"with `async with system.process_pool({name!r}, size=...):` or "
            f"`await system.process_pool({name!r}, size=...)`"
        )
    pool.check(path)
    return pool


__all__ = ["ProcessPool", "pool_named"]
