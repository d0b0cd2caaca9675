"""Parked channel operations: how a send, a receive or a whole select waits.

An operation that cannot complete at once parks: one :class:`Op` for the
operation, and one :class:`Waiter` queued on each channel it waits on (one for
a plain send or receive, one per case of a ``select``). The task sleeps in
:func:`park` until a partner or ``close()`` completes the operation through
one of its waiters, or until it is cancelled, when it leaves no trace. (Go's
runtime calls these ``sudog`` and ``gopark``.)
"""

# Invariants:
# - An operation completes exactly once: whoever sets ``op.winner`` first owns
#   it. Waiters of a completed operation may linger in other queues until their
#   owner removes them, so every queue reader skips them.
# - A waiter queue is a circular doubly linked list through its waiters; the
#   channel holds its head (``_senders``, ``_receivers``: ``None`` when empty).
#   A waiter is in at most one queue, and ``waiter.next is None`` exactly when
#   it is in none, so that taking a waiter out from anywhere is O(1) and
#   harmless if already out. Only this module links and unlinks waiters, and
#   the hand-off that ``Channel._offer`` inlines.
# - Once ``op.winner`` is set, anyio cancel scopes no longer interrupt the
#   parked task (trio: the task is already rescheduled; asyncio: anyio skips
#   tasks whose awaited future is done). Only a native ``Task.cancel()`` can
#   land in between; ``park`` (and ``Channel.receive``, which inlines it) then
#   undoes a receive or re-arms the cancellation after a completed send, so
#   nothing is lost or doubled.

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Literal

from ._backend import asyncio_loop
from ._trio import trio

if TYPE_CHECKING:
    from ._channel import Channel


class Op:
    """One parked operation: a plain send or receive, or a whole select.

    Parking uses each backend's cheapest primitive (an asyncio future, or
    trio's ``wait_task_rescheduled``) rather than ``anyio.Event``, which costs
    about twice as much per wake-up on asyncio (5.0 vs 10.4 µs measured) and
    1.3 times on trio; both keep the rule that a woken task is not
    interrupted by an anyio cancel scope.
    """

    __slots__ = ("future", "task", "winner")

    def __init__(self) -> None:
        self.winner: Waiter | Literal[False] | None = None  # False: abandoned
        loop = asyncio_loop()
        if loop is not None:
            self.future: asyncio.Future[None] | None = loop.create_future()
            self.task: Any = None
        else:
            self.future = None
            self.task = trio.lowlevel.current_task()

    def live(self) -> bool:
        # A future cancelled by Task.cancel() marks a task that will abandon
        # this operation as soon as it runs: do not hand it anything.
        return self.winner is None and (self.future is None or not self.future.done())

    def fire(self, winner: Waiter) -> None:
        self.winner = winner
        if self.future is not None:
            if not self.future.done():
                self.future.set_result(None)
        else:
            trio.lowlevel.reschedule(self.task)

    def abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        # trio asks before delivering a cancellation; we only get here if
        # nobody fired us first, and from now on nobody can.
        self.winner = False
        return trio.lowlevel.Abort.SUCCEEDED


class Waiter:
    """One case of a parked operation, queued on one channel.

    Making one puts it last in its channel's senders (``is_send``) or
    receivers; :func:`discard` takes it out.
    """

    __slots__ = ("channel", "closed", "index", "is_send", "next", "op", "prev", "value")

    #: Its neighbours in the queue; ``None`` once out of it.
    next: Waiter | None
    prev: Waiter | None

    def __init__(
        self, op: Op, channel: Channel[Any], value: Any, index: int, is_send: bool
    ) -> None:
        self.op = op
        self.channel = channel
        self.value = value
        self.index = index
        self.is_send = is_send
        self.closed = False
        # Queued here rather than by a function of its own: one call less on
        # every park.
        head = channel._senders if is_send else channel._receivers
        if head is None:
            self.next = self.prev = self
            if is_send:
                channel._senders = self
            else:
                channel._receivers = self
        else:
            tail = head.prev
            assert tail is not None
            self.prev = tail
            self.next = head
            tail.next = head.prev = self

    def fire(self) -> None:
        self.op.fire(self)


# Waiter queues are linked through the waiters themselves rather than held in
# a list (remove() made cancelling n parked tasks O(n²): 45 s for 80,000), a
# deque (760 bytes for every idle mailbox's one parked receiver) or an
# OrderedDict (three times slower to push and pop, and 384 bytes): taking a
# waiter out is O(1) wherever it is, and an empty queue is just ``None``.


def discard(waiter: Waiter) -> None:
    """Take ``waiter`` out of its channel's queue, if it is still in it."""
    after = waiter.next
    if after is None:
        return
    if after is waiter:
        after = None  # it was alone: the queue is now empty
    else:
        before = waiter.prev
        assert before is not None
        before.next = after
        after.prev = before
    ch = waiter.channel
    if waiter.is_send:
        if ch._senders is waiter:
            ch._senders = after
    elif ch._receivers is waiter:
        ch._receivers = after
    # Out of the queue, a waiter keeps no neighbour alive (and no cycle).
    waiter.next = waiter.prev = None


def pop_live(ch: Channel[Any], senders: bool) -> Waiter | None:
    """Take the first live waiter out of ``ch``'s senders or receivers,
    dropping the dead ones before it."""
    while (waiter := ch._senders if senders else ch._receivers) is not None:
        discard(waiter)
        if waiter.op.live():
            return waiter
    return None


def has_live(ch: Channel[Any], senders: bool) -> bool:
    """Whether ``ch``'s senders or receivers hold a live waiter, dropping the
    dead ones before the first live one."""
    while (waiter := ch._senders if senders else ch._receivers) is not None:
        if waiter.op.live():
            return True
        discard(waiter)
    return False


def count_live(head: Waiter | None) -> int:
    """How many live waiters the queue starting at ``head`` holds."""
    count = 0
    waiter = head
    while waiter is not None:
        count += waiter.op.live()
        waiter = waiter.next
        if waiter is head:
            break
    return count


async def park(op: Op, waiters: Waiter | list[Waiter]) -> None:
    """Wait until ``op`` completes; on cancellation, leave no trace.

    ``waiters`` is the one waiter of a plain send or receive (no tuple to
    hold while parked), or the list of a select's.
    """
    try:
        # Op.wait() inlined: one coroutine less held by every parked task.
        if op.future is not None:
            await op.future
        else:
            await trio.lowlevel.wait_task_rescheduled(op.abort)
    except BaseException as exc:
        # A send that completed before a native asyncio cancellation landed
        # has delivered its value, so report success and let the cancellation
        # hit the task at its next checkpoint instead.
        if not (abandon(op, waiters) and _redeliver_cancellation(exc)):
            raise
    else:
        if isinstance(waiters, list):
            for waiter in waiters:
                if waiter is not op.winner:
                    discard(waiter)


def abandon(op: Op, waiters: Waiter | list[Waiter]) -> bool:
    """Undo a parked operation that was interrupted, so it takes nothing:
    unqueue its waiters, or give back a value it was handed. True if a send
    had already completed (its value is delivered: nothing to undo)."""
    winner = op.winner
    if not winner:
        op.winner = False
        for waiter in waiters if isinstance(waiters, list) else (waiters,):
            discard(waiter)
        return False
    if winner.closed:
        return False
    if not winner.is_send:
        winner.channel._put_back(winner.value)
        return False
    return True


def _redeliver_cancellation(exc: BaseException) -> bool:
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    if task is None:
        return False
    if sys.version_info >= (3, 11):
        task.uncancel()
    task.cancel(exc.args[0] if exc.args else None)
    return True
