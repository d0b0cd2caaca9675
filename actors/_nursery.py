"""The owner of an actor system's tasks: a nursery at the cost of a bare task.

Every actor, goroutine and timer task of a system is started here, and the
system's ``async with`` block does not end before all of them have. The rules
are a nursery's, on both backends:

- ``start_soon`` starts a task; once the nursery is closed it raises.
- ``close()`` returns when every task has ended. If the wait is cancelled,
  the tasks are cancelled, waited for under a shield, and the cancellation
  propagates (so ``move_on_after`` around a system leaves at its deadline,
  and leaves nothing running).
- ``cancel()`` cancels every task, including those started afterwards. Each
  task runs in a cancel scope of its own (an actor's, a goroutine's), so the
  nursery asks its owner to cancel them: ``cancel_children``.
- An exception that ends a task (actors catch every ``Exception``, so this
  is a ``KeyboardInterrupt``, a ``SystemExit`` or a bug) crashes the
  nursery: the first is kept in ``crash`` (never a group), the owner's
  ``crashed`` hook runs (it cancels the body), and every task is cancelled.
  Tasks report it with ``crashed()`` and end normally rather than let it
  escape: on asyncio a ``KeyboardInterrupt`` or ``SystemExit`` escaping a
  task escapes the event loop itself, past every cleanup.

On trio this is a trio nursery, whose exception groups are taken apart at
``close()``. On asyncio the tasks are plain tasks, counted: anyio's
``start_soon`` costs a cancel scope, an event and a wrapper per task, which
nearly doubled an idle actor's size.

# Invariants:
# - asyncio: ``_running`` counts the tasks started and not yet done; while
#   ``close()`` waits, ``_all_done`` is set when it reaches 0.
# - trio: every task runs in ``_trio``, open from ``open()`` to ``close()``.
# - ``crash`` is the first exception that escaped a task, or None; it is
#   never a cancellation (those end a task normally as far as we care).
# - ``cancel_called`` never goes back to False; ``closed`` is set when
#   ``close()`` returns or raises, and then nothing is running.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from asyncio import CancelledError, Task
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import anyio

from ._backend import asyncio_loop
from ._signal import Signal
from ._trio import trio

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("actors")


class Nursery:
    """The tasks of one actor system (internal)."""

    __slots__ = (
        "_all_done",
        "_callback_context",
        "_cancel_children",
        "_crashed",
        "_manager",
        "_on_task_done",
        "_running",
        "_trio",
        "cancel_called",
        "closed",
        "crash",
    )

    def __init__(
        self, cancel_children: Callable[[], None], crashed: Callable[[BaseException], None]
    ) -> None:
        self._cancel_children = cancel_children
        self._crashed = crashed
        self._manager: Any = None
        self._trio: trio.Nursery | None = None
        self._running = 0
        self._all_done: Signal | None = None
        # One bound method and one (empty) context for every task's done
        # callback: add_done_callback would otherwise allocate both per task.
        self._on_task_done = self._task_done
        self._callback_context = contextvars.Context()
        self.cancel_called = False
        self.closed = False
        self.crash: BaseException | None = None

    async def open(self) -> None:
        """Open the nursery in the running task (on trio, a trio nursery)."""
        if asyncio_loop() is None:
            self._manager = trio.open_nursery()
            self._trio = await self._manager.__aenter__()

    def start_soon(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str
    ) -> None:
        """Start ``fn(*args)`` as a task of this nursery.

        Raises:
            RuntimeError: the nursery is closed.
        """
        # The spawn path: a task and a done callback, nothing else per task.
        loop = asyncio_loop()
        if loop is None:
            if self._trio is None or self.closed:
                raise RuntimeError("the actor system's nursery is closed: no task can start")
            self._trio.start_soon(fn, *args, name=name)
            return
        if self.closed:
            raise RuntimeError("the actor system's nursery is closed: no task can start")
        task: Task[Any] = loop.create_task(fn(*args), name=name)
        self._running += 1
        task.add_done_callback(self._on_task_done, context=self._callback_context)

    def cancel(self) -> None:
        """Cancel every task, now and started later (idempotent)."""
        self.cancel_called = True
        self._cancel_children()

    async def close(self) -> None:
        """Wait until every task has ended, then close the nursery.

        Raises:
            BaseException: the cancellation that interrupted the wait; the
                tasks were cancelled and have all ended.

        Cancellation: cancelling the wait cancels the tasks, and it returns
        (raising the cancellation) only once they have ended.
        """
        try:
            if self._trio is not None:
                await self._close_trio()
                return
            try:
                await self._wait()
            except CancelledError:
                self.cancel()
                with anyio.CancelScope(shield=True):
                    await self._wait(uncancellable=True)
                raise
        finally:
            self.closed = True
            self._all_done = None

    async def _wait(self, *, uncancellable: bool = False) -> None:
        # asyncio. ``uncancellable``: a native Task.cancel() (which a shield
        # does not stop) does not end the wait either; it is raised after.
        cancelled: CancelledError | None = None
        while self._running:
            self._all_done = Signal()
            try:
                await self._all_done.wait()
            except CancelledError as exc:
                if not uncancellable:
                    raise
                cancelled = cancelled or exc
        if cancelled is not None:
            raise cancelled

    async def _close_trio(self) -> None:
        try:
            await self._manager.__aexit__(None, None, None)
        except BaseException as error:
            # A task that raised: trio cancelled everything and grouped what it
            # caught. Cancellations are the wait's own (raise one, bare).
            cancelled = None
            for leaf in _leaves(error):
                if isinstance(leaf, trio.Cancelled):
                    cancelled = cancelled or leaf
                else:
                    self.crashed(leaf, "a task")
            if cancelled is not None and self.crash is None:
                raise cancelled from None

    def _task_done(self, task: Task[Any]) -> None:
        self._running -= 1
        if not task.cancelled() and (error := task.exception()) is not None:
            self.crashed(error, task.get_name())
        if not self._running and self._all_done is not None:
            self._all_done.set()

    def crashed(self, error: BaseException, where: str) -> None:
        """An exception ended the task ``where``: keep the first, cancel the
        body (the owner's hook) and every task."""
        if not isinstance(error, (KeyboardInterrupt, SystemExit)):
            logger.error("actor task %s crashed", where, exc_info=error)
        if self.crash is None:
            self.crash = error
            self._crashed(error)
        self.cancel()


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
