"""The cancel scope around an actor's (or goroutine's) own task.

Every actor task runs inside one scope that ``kill()``, a failing goroutine or
a shutdown timeout cancels. On trio that is ``trio.CancelScope``. On asyncio
an ``anyio.CancelScope`` would do, but entering one gives the task an anyio
task state (a weak-keyed entry, two sets and a weak reference): measured, that
was the largest single cost of spawning an actor. ``TaskScope`` does the one
thing an actor's scope needs, cancelling its own host task, the way anyio's
root scope does it:

- level-triggered: once cancelled, it cancels the task again on every loop
  pass until the task leaves the scope, so code that swallows one
  ``CancelledError`` is cancelled at its next await;
- it waits while the task sits in a shielded anyio scope (user code cleaning
  up under ``anyio.CancelScope(shield=True)``), as anyio and trio do, looking
  again every millisecond;
- it never cancels a task whose awaited future already has its result (that
  result would be lost); it tries again on the next pass;
- on exit it takes back exactly the cancellations it made (``uncancel``) and
  swallows the ``CancelledError`` only if no other cancellation (a native
  ``Task.cancel()``, an enclosing anyio scope) is pending for the task.

Seeing shields means reading anyio's private task states. ``task_scope()``
checks once, at the first asyncio scope it makes, that they read as expected;
if not, asyncio actors get ``anyio.CancelScope`` instead and one warning is
logged, so a change in anyio costs speed, never a shield. Python 3.10 (no
``Task.uncancel``) always gets ``anyio.CancelScope``.

# Invariants:
# - ``_pending`` counts this scope's ``Task.cancel()`` calls not yet taken
#   back; ``__exit__`` takes all of them back.
# - ``_handle`` is the scheduled next delivery, only while active and
#   cancelled.
"""

from __future__ import annotations

import itertools
import logging
import math
import sys
from asyncio import CancelledError, Task, current_task, get_running_loop
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import anyio

from ._backend import asyncio_loop
from ._trio import trio

logger = logging.getLogger("actors")


class TaskScope:
    """A cancel scope for the task that enters it (asyncio, Python 3.11+)."""

    __slots__ = (
        "_active",
        "_cancel_called",
        "_cancelled_caught",
        "_cancelling_at_enter",
        "_deadline",
        "_deadline_handle",
        "_handle",
        "_pending",
        "_task",
    )

    def __init__(self) -> None:
        self._task: Task[Any] | None = None
        self._active = False
        self._cancel_called = False
        self._cancelling_at_enter = 0
        self._pending = 0
        self._handle: Any = None
        self._deadline = math.inf
        self._deadline_handle: Any = None
        self._cancelled_caught = False

    @property
    def cancel_called(self) -> bool:
        return self._cancel_called

    @property
    def cancelled_caught(self) -> bool:
        """Whether this scope swallowed the cancellation it made."""
        return self._cancelled_caught

    @property
    def deadline(self) -> float:
        """When the scope cancels itself (the loop's clock); ``inf``: never."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline = value
        if self._active:
            self._arm_deadline()

    def _arm_deadline(self) -> None:
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        if self._deadline != math.inf and not self._cancel_called:
            self._deadline_handle = get_running_loop().call_at(self._deadline, self.cancel)

    def cancel(self) -> None:
        if self._cancel_called:
            return
        self._cancel_called = True
        if self._active:
            self._deliver()

    def __enter__(self) -> TaskScope:
        if self._active or self._task is not None:
            raise RuntimeError("a TaskScope can be entered only once")
        task = current_task()
        assert task is not None
        self._task = task
        self._active = True
        self._cancelling_at_enter = task.cancelling()
        if self._cancel_called:
            self._deliver()
        elif self._deadline != math.inf:
            self._arm_deadline()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._active = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        if not self._cancel_called:
            return False
        task = self._task
        assert task is not None
        while self._pending:
            task.uncancel()
            self._pending -= 1
        if task.cancelling() > self._cancelling_at_enter:
            return False  # someone else's cancellation is pending too: let it through
        if isinstance(exc, CancelledError):
            self._cancelled_caught = True
            return True
        if isinstance(exc, BaseExceptionGroup):  # noqa: F821 - Python 3.11+ here
            _, rest = exc.split(CancelledError)
            if rest is None:
                self._cancelled_caught = True
                return True
            if rest is not exc:
                self._cancelled_caught = True
                raise rest
        return False

    def _deliver(self) -> None:
        # Like anyio's _deliver_cancellation for a root scope with one task.
        self._handle = None
        task = self._task
        if not self._active or task is None or task.done():
            return
        loop = get_running_loop()
        if _in_shield(task):
            # Nothing tells a scope outside anyio's when the shield ends: look
            # again shortly, rather than spin (which would also stop a virtual
            # clock from ever reaching the end of the shielded work).
            self._handle = loop.call_later(SHIELD_POLL, self._deliver)
            return
        if not task._must_cancel and task is not current_task():  # type: ignore[attr-defined]
            waiter = task._fut_waiter  # type: ignore[attr-defined]
            if waiter is None or not waiter.done():
                task.cancel("actors: cancelled by the actor's scope")
                self._pending += 1
        self._handle = loop.call_soon(self._deliver)


#: Seconds between looks at a cancelled task that sits in a shielded anyio
#: scope: the most its cancellation can lag behind the end of the shield.
SHIELD_POLL = 0.001


def _anyio_scopes(task: Task[Any]) -> Iterator[anyio.CancelScope]:
    """The anyio cancel scopes ``task`` is in, innermost first.

    This reads anyio's private bookkeeping: ``_native_on_asyncio()`` checks
    once that it still reads as written here before any TaskScope relies on it.
    """
    state = _anyio_task_states.get(task)
    scope = getattr(state, "cancel_scope", None)
    while scope is not None:
        yield scope
        scope = getattr(scope, "_parent_scope", None)


def _in_shield(task: Task[Any]) -> bool:
    return any(scope.shield for scope in _anyio_scopes(task))


_anyio_task_states: Any = {}

#: Whether TaskScope serves asyncio tasks: None until the first asyncio actor
#: asks. It needs Task.cancelling() and Task.uncancel() (Python 3.11+).
_native: bool | None = None if sys.version_info >= (3, 11) else False


def _native_on_asyncio(task: Task[Any]) -> bool:
    """Whether ``_in_shield`` can see anyio's shields (looked at once).

    Enters a shielded anyio scope with a plain one inside, from ``task``, and
    checks that ``_anyio_scopes`` finds the two, in order, and that
    ``_in_shield`` sees the shield. If anyio's internals changed, a TaskScope
    would cut through users' shields: anyio's own scope serves instead, and
    one line is logged.
    """
    global _anyio_task_states
    try:
        from anyio._backends._asyncio import _task_states

        _anyio_task_states = _task_states
        with anyio.CancelScope(shield=True) as outer, anyio.CancelScope() as inner:  # noqa: ASYNC100
            scopes = list(itertools.islice(_anyio_scopes(task), 2))
            if scopes == [inner, outer] and _in_shield(task):
                return True
    except Exception:  # anything unexpected means the same: do not rely on it
        pass
    import importlib.metadata  # here: 20-50 ms that a child process's start need not pay

    logger.warning(
        "actors: anyio %s keeps its cancel scopes where this version of actors "
        "does not look; actors on asyncio use anyio.CancelScope instead (slower "
        "to spawn, same behaviour)",
        importlib.metadata.version("anyio"),
    )
    return False


def task_scope() -> anyio.CancelScope:
    """A fresh scope for the running task's backend."""
    global _native
    if asyncio_loop() is None:
        return trio.CancelScope()  # type: ignore[return-value]
    if _native is None:
        task = current_task()
        if task is None:  # not in a task: cannot look yet
            return anyio.CancelScope()
        _native = _native_on_asyncio(task)
    if _native:
        return TaskScope()  # type: ignore[return-value]
    return anyio.CancelScope()
