"""The store's one worker thread: runs its calls in order, off the event loop.

A thread of our own fed by a queue, rather than ``anyio.to_thread`` with a
``CapacityLimiter(1)``: a round trip measured 62 µs against 144 µs on asyncio
and 100 µs against 194 µs on trio (2-core machine), where a commit at
``synchronous=NORMAL`` takes about 30 µs (``benchmarks.durable``; at NORMAL
the store runs small calls on the loop's thread while this one is idle).

Calls queued (``submit``) with the same *group* runner while the thread is
busy are run together, by one call of that runner (the store commits them
in one transaction: group commit); the others run alone. Replies of a batch
reach each event loop in one callback. ``background`` work (a checkpoint)
runs in turn, and nobody waits for it.

# Invariants:
# - Calls run in the order they were queued, on one thread; a batch is calls
#   of one group that were next to each other in the queue, and nothing
#   queued after a call runs before it.
# - A call that was taken off the queue always reports back (its result or
#   its error, set before its caller is woken); the caller waits for it even
#   if cancelled, then sees the cancellation: a commit is never mistaken for a
#   failure.
# - ``finished`` is written by the thread only, after a call's work (and
#   ``submitted`` by the event loop only): ``idle()`` true means no call is
#   queued or running (background work aside).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

import anyio

from .._backend import threadsafe_scheduler
from .._signal import Signal

T = TypeVar("T")

#: The most calls one batch takes (they wait for each other's commit).
MAX_BATCH = 256


class Job:
    """One call on the thread: ``fn(*args)``, or ``fn(..., *args)`` by a group runner.

    The runner sets ``result`` or ``error`` (a group runner for each job of
    its batch).
    """

    __slots__ = ("args", "done", "error", "fn", "group", "result", "schedule")

    def __init__(
        self,
        group: Callable[[Sequence[Job]], None] | None,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.group = group
        self.fn = fn
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = Signal()
        #: How the thread wakes its caller's loop (set by ``submit``: a job
        #: the store runs on the loop's thread never needs it).
        self.schedule: Callable[..., Any] | None = None


class _Stop:
    pass


_STOP = _Stop()


class _Background:
    """Work nobody waits for (a checkpoint): run in turn, errors dropped."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn


class StoreThread:
    """A daemon thread that runs callables from a queue until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[Job | _Stop | _Background] = SimpleQueue()
        self.submitted = 0  # calls queued (the event loop counts)
        self.finished = 0  # calls done (the thread counts)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self._queue
        held: Job | _Stop | _Background | None = None
        while True:
            job = held if held is not None else queue.get()
            held = None
            if isinstance(job, _Stop):
                return
            if isinstance(job, _Background):
                with contextlib.suppress(Exception):  # nobody to tell; the next one tries
                    job.fn()
                continue
            group = job.group
            if group is None:
                try:
                    job.result = job.fn(*job.args)
                except BaseException as error:
                    job.error = error
                self.finished += 1
                _reply([job])
                continue
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    more = queue.get_nowait()
                except Empty:
                    break
                if isinstance(more, Job) and more.group is group:
                    batch.append(more)
                else:
                    held = more  # runs next, after this batch
                    break
            run_group(group, batch)
            self.finished += len(batch)
            _reply(batch)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread, alone, and return (or raise) its result.

        Cancellation: shielded: waits for the call to end, then the caller
        sees the cancellation at its next checkpoint.
        """
        job = Job(None, fn, args)
        self.submit(job)
        return await wait(job)  # type: ignore[no-any-return]

    def submit(self, job: Job) -> None:
        """Queue ``job`` (in the event loop); :func:`wait` gives its outcome."""
        job.schedule = threadsafe_scheduler()
        self.submitted += 1
        self._queue.put(job)

    def background(self, fn: Callable[[], object]) -> None:
        """Queue ``fn()``, which nobody waits for; ``idle()`` does not count it."""
        self._queue.put(_Background(fn))

    def idle(self) -> bool:
        """Whether every call queued so far has been run (in the event loop)."""
        return self.finished == self.submitted

    def stop(self) -> None:
        """End the thread after the calls already queued."""
        self._queue.put(_STOP)


def run_group(group: Callable[[Sequence[Job]], None], batch: Sequence[Job]) -> None:
    """Have ``group`` run ``batch``; a failure of the runner itself is every call's."""
    try:
        group(batch)
    except BaseException as error:
        for each in batch:
            if each.error is None:
                each.error = error


async def wait(job: Job) -> Any:
    """Wait for ``job``'s end; return its result or raise its error.

    Cancellation: shielded: waits for the end, then the caller sees the
    cancellation at its next checkpoint.
    """
    cancelled = await settle(job)
    if cancelled is not None:
        raise cancelled
    return outcome(job)


async def settle(job: Job) -> BaseException | None:
    """Wait for ``job``'s end, even if cancelled meanwhile; return that
    cancellation (None if none) for the caller to raise."""
    done = job.done
    try:
        await done.wait()
    except BaseException as error:
        # Cancelled: the call may be running; wait for its end, shielded
        # (a shield costs more than the wait: only when needed).
        with anyio.CancelScope(shield=True):
            await _wait_uncancellable(done)
        return error
    return None


def outcome(job: Job) -> Any:
    """A finished ``job``'s result, or its error raised."""
    error = job.error
    if error is not None:
        job.error = None
        raise error
    return job.result


async def _wait_uncancellable(done: Signal) -> None:
    # A native Task.cancel() on asyncio (which a shield does not stop) does
    # not end the wait either; it is raised after.
    cancelled: BaseException | None = None
    while not done.is_set():
        try:
            await done.wait()
        except BaseException as error:
            cancelled = cancelled or error
    if cancelled is not None:
        raise cancelled


def _reply(jobs: Sequence[Job]) -> None:
    # One callback per event loop for the whole batch (usually one loop).
    first = jobs[0].schedule
    assert first is not None  # set by submit, in the caller's loop
    if all(job.schedule == first for job in jobs):
        _schedule(first, [job.done for job in jobs])
        return
    by_loop: dict[Any, list[Signal]] = {}
    for job in jobs:
        by_loop.setdefault(job.schedule, []).append(job.done)
    for schedule, signals in by_loop.items():
        _schedule(schedule, signals)


def _schedule(schedule: Callable[..., Any], signals: list[Signal]) -> None:
    try:
        if len(signals) == 1:
            schedule(signals[0].set)
        else:
            schedule(_set_all, signals)
    except RuntimeError:  # the loop has ended: nobody waits
        pass


def _set_all(signals: list[Signal]) -> None:
    for signal in signals:
        signal.set()
