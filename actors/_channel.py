"""Go-style channels: rendezvous or buffered, closeable, selectable.

A channel is the one primitive everything else stands on: mailboxes, the actor
loop and supervisors all wait on channels. It follows Go's ``runtime/chan.go``:
a buffer plus two queues of parked operations, and a parked operation may be a
``select`` waiting on several channels at once.
"""

# Invariants:
# - A value is in exactly one place: a sender's hands, a parked sender's
#   waiter, the buffer, a parked receiver's waiter (once handed over), or the
#   hands of the receiver that returned it.
# - A live parked receiver implies an empty buffer; a live parked sender implies
#   a full buffer. ("Live": its operation has not completed yet.)
# - An operation completes exactly once: whoever sets ``op.winner`` first owns
#   it. Waiters of a completed operation may linger in other queues until their
#   owner removes them, so every queue reader skips them.
# - A waiter queue is a circular doubly linked list through its waiters; the
#   channel holds its head (``None`` when empty). A waiter is in at most one
#   queue, and ``waiter.next is None`` exactly when it is in none, so that
#   taking a waiter out from anywhere is O(1) and harmless if already out.
# - Once ``op.winner`` is set, anyio cancel scopes no longer interrupt the
#   parked task (trio: the task is already rescheduled; asyncio: anyio skips
#   tasks whose awaited future is done). Only a native ``Task.cancel()`` can
#   land in between; ``_park`` then undoes a receive or re-arms the
#   cancellation after a completed send, so nothing is lost or doubled.

from __future__ import annotations

import asyncio
import enum
import math
import random
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar, cast, overload

import anyio
import anyio.lowlevel
import trio
import trio.lowlevel

from ._backend import asyncio_loop
from ._exceptions import ChannelDrained, SendOnClosed, WouldBlock

T = TypeVar("T")

#: An operation that completed without parking checkpoints once every this many
#: times per channel, so that a busy producer or consumer cannot starve the
#: other tasks and a cancelled scope is noticed within a bounded number of
#: operations. At about a microsecond an operation, others wait a quarter of
#: a millisecond at most; a checkpoint costs a whole scheduler pass (on trio
#: 64 made one-way messaging 40% slower than 256).
YIELD_EVERY: Final = 256


class _Closed(enum.Enum):
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return "CLOSED"


#: What a receive case yields in ``select`` when its channel is closed and
#: drained (Go's ``v, ok := <-ch`` with ``ok == false``).
CLOSED: Final = _Closed.CLOSED


class _Op:
    """One parked operation: a plain send or receive, or a whole select.

    Parking uses each backend's cheapest primitive (an asyncio future, or
    trio's ``wait_task_rescheduled``) rather than ``anyio.Event``, which costs
    about twice as much per wake-up on asyncio (5.0 vs 10.4 µs measured) and
    1.3 times on trio; both keep the rule that a woken task is not
    interrupted by an anyio cancel scope.
    """

    __slots__ = ("_future", "_task", "winner")

    def __init__(self) -> None:
        self.winner: _Waiter | Literal[False] | None = None  # False: abandoned
        loop = asyncio_loop()
        if loop is not None:
            self._future: asyncio.Future[None] | None = loop.create_future()
            self._task: Any = None
        else:
            self._future = None
            self._task = trio.lowlevel.current_task()

    def live(self) -> bool:
        # A future cancelled by Task.cancel() marks a task that will abandon
        # this operation as soon as it runs: do not hand it anything.
        return self.winner is None and (self._future is None or not self._future.done())

    def fire(self, winner: _Waiter) -> None:
        self.winner = winner
        if self._future is not None:
            if not self._future.done():
                self._future.set_result(None)
        else:
            trio.lowlevel.reschedule(self._task)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        # trio asks before delivering a cancellation; we only get here if
        # nobody fired us first, and from now on nobody can.
        self.winner = False
        return trio.lowlevel.Abort.SUCCEEDED


class _Waiter:
    """One case of a parked operation, queued on one channel.

    Making one puts it last in its channel's senders (``is_send``) or
    receivers; :func:`_discard` takes it out.
    """

    __slots__ = ("channel", "closed", "index", "is_send", "next", "op", "prev", "value")

    #: Its neighbours in the queue; ``None`` once out of it.
    next: _Waiter | None
    prev: _Waiter | None

    def __init__(
        self, op: _Op, channel: Channel[Any], value: Any, index: int, is_send: bool
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


def _discard(waiter: _Waiter) -> None:
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


def _pop_live(ch: Channel[Any], senders: bool) -> _Waiter | None:
    """Take the first live waiter out of ``ch``'s senders or receivers,
    dropping the dead ones before it."""
    while (waiter := ch._senders if senders else ch._receivers) is not None:
        _discard(waiter)
        if waiter.op.live():
            return waiter
    return None


def _has_live(ch: Channel[Any], senders: bool) -> bool:
    while (waiter := ch._senders if senders else ch._receivers) is not None:
        if waiter.op.live():
            return True
        _discard(waiter)
    return False


def _count_live(head: _Waiter | None) -> int:
    count = 0
    waiter = head
    while waiter is not None:
        count += waiter.op.live()
        waiter = waiter.next
        if waiter is head:
            break
    return count


_NO_BUFFER: Any = ()
_NOTHING: Any = object()  # what _receive_fast returns when it cannot


def _check_capacity(capacity: object) -> float:
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)):
        raise TypeError(
            f"Channel capacity must be a non-negative int or math.inf, "
            f"got {type(capacity).__name__} {capacity!r}"
        )
    if isinstance(capacity, float) and capacity != math.inf:
        raise TypeError(f"Channel capacity must be a whole number or math.inf, got {capacity!r}")
    if capacity < 0:
        raise ValueError(f"Channel capacity must be >= 0, got {capacity!r}")
    return capacity


@dataclass(frozen=True)
class ChannelStatistics:
    """A snapshot of a channel, from :meth:`Channel.statistics`.

    Examples:
        >>> Channel(3).statistics().capacity
        3
    """

    buffered: int
    capacity: float
    closed: bool
    waiting_senders: int
    waiting_receivers: int


class Channel(Generic[T]):
    """A Go channel on anyio: ``Channel(0)`` rendezvous, ``Channel(n)`` buffered.

    ``capacity=0`` makes every send wait until a receiver takes the value;
    ``capacity=n`` buffers up to ``n`` values; ``math.inf`` never blocks a
    sender. Any number of tasks may send and receive; values come out in the
    order they went in.

    Closing (``close()``) is idempotent. Values already buffered are still
    received; after them ``receive`` raises :class:`ChannelDrained`. ``send``
    on a closed channel raises :class:`SendOnClosed`, and senders parked when
    the channel closes are woken with it.

    Scheduling: an operation that can complete at once does so without a trip
    through the event loop, except that every ``YIELD_EVERY`` (256) such
    operations on one channel checkpoint first (a schedule point and a
    cancellation point), so a busy task cannot starve the others. An operation
    that has to wait is always a checkpoint.

    Args:
        capacity: how many values the buffer holds: a non-negative ``int`` or
            ``math.inf``.

    Raises:
        TypeError: ``capacity`` is not an int or ``math.inf``.
        ValueError: ``capacity`` is negative.

    Examples:
        >>> import anyio
        >>> async def main():
        ...     ch = Channel[int](1)
        ...     await ch.send(1)
        ...     ch.close()
        ...     return [v async for v in ch]
        >>> anyio.run(main)
        [1]
    """

    __slots__ = ("_buffer", "_capacity", "_closed", "_receivers", "_senders", "_tick")

    def __init__(self, capacity: float = 0) -> None:
        self._capacity = _check_capacity(capacity)
        # No deque until the first value is buffered: an idle channel (most
        # mailboxes) saves its 760 bytes. ``()`` reads like an empty deque.
        self._buffer: deque[T] = _NO_BUFFER
        # The heads of the waiter queues (see _Waiter).
        self._senders: _Waiter | None = None
        self._receivers: _Waiter | None = None
        self._closed = False
        self._tick = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {len(self._buffer)}/{self._capacity} {state}>"

    @property
    def capacity(self) -> float:
        """How many values the buffer holds (0 for a rendezvous channel)."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._buffer)

    def statistics(self) -> ChannelStatistics:
        """Return a snapshot of the buffer and the parked tasks."""
        return ChannelStatistics(
            buffered=len(self._buffer),
            capacity=self._capacity,
            closed=self._closed,
            waiting_senders=_count_live(self._senders),
            waiting_receivers=_count_live(self._receivers),
        )

    # -- the non-blocking core ------------------------------------------------

    def send_nowait(self, value: T) -> None:
        """Send ``value`` if that can be done without waiting.

        Raises:
            SendOnClosed: the channel is closed.
            WouldBlock: no receiver is waiting and the buffer is full.
        """
        if self._closed:
            raise SendOnClosed(f"send on closed {self!r}")
        if not self._offer(value):
            raise WouldBlock(f"{self!r} is full and no receiver is waiting")

    def _offer(self, value: T) -> bool:
        # The one non-blocking step of every send: hand ``value`` to a parked
        # receiver, else buffer it; False if neither can be done. The caller
        # has checked that the channel is open.
        while (waiter := self._receivers) is not None:
            # _pop_live, _discard, _Op.live and _Op.fire inlined: this hand-off
            # is half of every ask's round trip.
            after = waiter.next
            if after is waiter:
                self._receivers = None
            else:
                before = waiter.prev
                before.next = after  # type: ignore[union-attr]
                after.prev = before  # type: ignore[union-attr]
                self._receivers = after
            waiter.next = waiter.prev = None
            op = waiter.op
            if op.winner is not None:
                continue
            future = op._future
            if future is None:
                waiter.value = value
                op.winner = waiter
                trio.lowlevel.reschedule(op._task)
                return True
            if not future.done():
                waiter.value = value
                op.winner = waiter
                future.set_result(None)
                return True
        buffer = self._buffer
        if len(buffer) < self._capacity:
            try:
                buffer.append(value)
            except AttributeError:  # no deque yet (see __init__)
                self._buffer = deque((value,))
            return True
        return False

    def receive_nowait(self) -> T:
        """Receive a value if one is ready.

        Raises:
            ChannelDrained: the channel is closed and empty.
            WouldBlock: nothing is buffered and no sender is waiting.
        """
        buffer = self._buffer
        if buffer:
            value = buffer.popleft()
            if self._senders and len(buffer) < self._capacity:
                waiter = _pop_live(self, True)
                if waiter is not None:
                    buffer.append(waiter.value)
                    waiter.fire()
            return value
        waiter = _pop_live(self, True)
        if waiter is not None:
            waiter.fire()
            return waiter.value  # type: ignore[no-any-return]
        if self._closed:
            raise ChannelDrained(f"receive from closed and drained {self!r}")
        raise WouldBlock(f"{self!r} is empty and no sender is waiting")

    def close(self) -> None:
        """Close the channel; idempotent (Go panics on a second close; we don't).

        Buffered values can still be received. Parked receivers wake and find
        the channel drained; parked senders wake with :class:`SendOnClosed`.
        """
        if self._closed:
            return
        self._closed = True
        for senders in (False, True):
            while (waiter := _pop_live(self, senders)) is not None:
                waiter.closed = True
                waiter.fire()

    # Sync fast paths for the actor runtime's hot loop (tell and the mailbox
    # loop): they complete an operation that needs no parking and no
    # checkpoint without creating a coroutine, and count against the same
    # ``YIELD_EVERY`` budget; when they return ``False`` / ``_NOTHING`` the
    # caller falls back to the awaitable operation, which checkpoints.

    def _send_fast(self, value: T) -> bool:
        tick = self._tick + 1
        if tick >= YIELD_EVERY or self._closed or not self._offer(value):
            return False
        self._tick = tick
        return True

    def _receive_fast(self) -> Any:
        tick = self._tick + 1
        buffer = self._buffer
        if tick >= YIELD_EVERY or not buffer or self._senders:
            return _NOTHING
        self._tick = tick
        return buffer.popleft()

    def _take_buffered(self) -> list[T]:
        """Remove and return everything buffered (for mailboxes closing)."""
        taken = list(self._buffer)
        self._buffer = _NO_BUFFER
        return taken

    def _checkpoint_due(self) -> bool:
        # For a receiver that takes the fairness checkpoint itself before it
        # calls receive() (the mailbox loop: nothing must reach it unseen
        # while it sits at the checkpoint inside receive()). True if the next
        # operation would checkpoint; the budget then starts again, so that
        # receive() does not checkpoint a second time.
        if self._tick + 1 >= YIELD_EVERY:
            self._tick = 0
            return True
        return False

    def _receiver_parked(self) -> bool:
        # Whether a receiver is parked and has not been handed a value yet.
        return _has_live(self, False)

    def _wake_receiver(self, value: Any) -> bool:
        # Hand ``value`` to a parked receiver; False if none is parked. Never
        # buffers, so it takes no room from senders (a mailbox wakes its
        # parked owner for a system message with it).
        waiter = _pop_live(self, False)
        if waiter is None:
            return False
        waiter.value = value
        waiter.fire()
        return True

    def _put_back(self, value: T) -> None:
        # A receiver was handed ``value`` but got cancelled before it could
        # return it: give it to the next receiver, or to the head of the buffer
        # (beyond capacity if need be) so that order and the value survive.
        if self._wake_receiver(value):
            return
        if self._buffer:
            self._buffer.appendleft(value)
        else:
            self._buffer = deque((value,))

    # -- blocking operations --------------------------------------------------

    async def send(self, value: T) -> None:
        """Send ``value``, waiting for a receiver or for room in the buffer.

        On a rendezvous channel this returns once a receiver has the value.
        Atomic with respect to cancellation: a cancelled send has sent nothing.

        Raises:
            SendOnClosed: the channel is closed, or closes while we wait.
        """
        self._tick += 1
        if self._tick >= YIELD_EVERY:
            self._tick = 0
            await anyio.lowlevel.checkpoint()
        if self._closed:
            raise SendOnClosed(f"send on closed {self!r}")
        if self._offer(value):
            return
        op = _Op()
        waiter = _Waiter(op, self, value, 0, True)
        await _park(op, waiter)
        if waiter.closed:
            raise SendOnClosed(f"{self!r} closed while a send was waiting")

    async def receive(self) -> T:
        """Receive the next value, waiting for one if none is ready.

        Atomic with respect to cancellation: a cancelled receive has taken
        nothing, and the value it would have taken stays first in line.

        Raises:
            ChannelDrained: the channel is closed and empty.
        """
        self._tick += 1
        if self._tick >= YIELD_EVERY:
            self._tick = 0
            await anyio.lowlevel.checkpoint()
        buffer = self._buffer
        if buffer and not self._senders:  # the common case, inlined
            return buffer.popleft()
        if buffer or self._senders:
            try:
                return self.receive_nowait()
            except WouldBlock:
                pass
        elif self._closed:
            raise ChannelDrained(f"receive from closed and drained {self!r}")
        op = _Op()
        waiter = _Waiter(op, self, None, 0, False)
        # _park() inlined for the hottest wait (every idle actor's mailbox):
        # one coroutine frame less to create and to resume through.
        try:
            if op._future is not None:
                await op._future
            else:
                await trio.lowlevel.wait_task_rescheduled(op._abort)
        except BaseException:
            _abandon(op, waiter)  # a receive: never a completed send
            raise
        if waiter.closed:
            raise ChannelDrained(f"receive from closed and drained {self!r}")
        return waiter.value  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except ChannelDrained:
            raise StopAsyncIteration from None

    # -- select cases ---------------------------------------------------------

    def receiving(self) -> ReceiveCase[T]:
        """A receive case for :func:`select`."""
        return ReceiveCase(self)

    def sending(self, value: T) -> SendCase[T]:
        """A send case for :func:`select` that offers ``value``."""
        return SendCase(self, value)


async def _park(op: _Op, waiters: _Waiter | list[_Waiter]) -> None:
    """Wait until ``op`` completes; on cancellation, leave no trace.

    ``waiters`` is the one waiter of a plain send or receive (no tuple to
    hold while parked), or the list of a select's.
    """
    try:
        # _Op.wait() inlined: one coroutine less held by every parked task.
        if op._future is not None:
            await op._future
        else:
            await trio.lowlevel.wait_task_rescheduled(op._abort)
    except BaseException as exc:
        # A send that completed before a native asyncio cancellation landed
        # has delivered its value, so report success and let the cancellation
        # hit the task at its next checkpoint instead.
        if not (_abandon(op, waiters) and _redeliver_cancellation(exc)):
            raise
    else:
        if isinstance(waiters, list):
            for waiter in waiters:
                if waiter is not op.winner:
                    _discard(waiter)


def _abandon(op: _Op, waiters: _Waiter | list[_Waiter]) -> bool:
    """Undo a parked operation that was interrupted, so it takes nothing:
    unqueue its waiters, or give back a value it was handed. True if a send
    had already completed (its value is delivered: nothing to undo)."""
    winner = op.winner
    if not winner:
        op.winner = False
        for waiter in waiters if isinstance(waiters, list) else (waiters,):
            _discard(waiter)
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


class ReceiveCase(Generic[T]):
    """A receive case for :func:`select`; make it with :meth:`Channel.receiving`.

    Examples:
        >>> ch = Channel[int](1)
        >>> ch.receiving().channel is ch
        True
    """

    __slots__ = ("channel",)
    is_send: Final = False

    def __init__(self, channel: Channel[T]) -> None:
        self.channel = channel

    def __repr__(self) -> str:
        return f"<ReceiveCase on {self.channel!r}>"

    def _ready(self) -> bool:
        ch = self.channel
        return bool(ch._buffer) or _has_live(ch, True) or ch._closed

    def _complete(self) -> Any:
        try:
            return self.channel.receive_nowait()
        except ChannelDrained:
            return CLOSED


class SendCase(Generic[T]):
    """A send case for :func:`select`; make it with :meth:`Channel.sending`.

    Examples:
        >>> ch = Channel[int](1)
        >>> ch.sending(5).value
        5
    """

    __slots__ = ("channel", "value")
    is_send: Final = True

    def __init__(self, channel: Channel[T], value: T) -> None:
        self.channel = channel
        self.value = value

    def __repr__(self) -> str:
        return f"<SendCase {self.value!r} on {self.channel!r}>"

    def _ready(self) -> bool:
        ch = self.channel
        return ch._closed or _has_live(ch, False) or len(ch._buffer) < ch._capacity

    def _complete(self) -> Any:
        self.channel.send_nowait(self.value)
        return None


Case = ReceiveCase[Any] | SendCase[Any]


@dataclass(frozen=True, slots=True)
class Selected:
    """What :func:`select` returns: which case fired, and its value.

    ``index`` is the case's position among the arguments, ``case`` the case
    itself, ``value`` the received value for a receive case (``CLOSED`` when
    the channel was closed and drained) and ``None`` for a send case. It
    unpacks as ``index, case, value`` and matches ``Selected(index, case,
    value)`` patterns.

    Examples:
        >>> index, case, value = Selected(0, Channel[int]().receiving(), 5)
        >>> index, value
        (0, 5)
    """

    index: int
    case: Case
    value: Any

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.case, self.value))


@overload
async def select(
    *cases: Case | None, timeout: float | None = ..., default: Literal[False] = ...
) -> Selected: ...
@overload
async def select(
    *cases: Case | None, timeout: float | None = ..., default: bool
) -> Selected | None: ...
async def select(
    *cases: Case | None, timeout: float | None = None, default: bool = False
) -> Selected | None:
    """Wait for the first ready case among sends and receives, as Go's ``select``.

    When several cases are ready one is picked uniformly at random. ``None``
    cases are ignored (Go's nil channel). A receive case on a closed, drained
    channel is ready and yields ``CLOSED``; a send case on a closed channel is
    ready and raises :class:`SendOnClosed` if picked, as Go panics.

    Atomic with respect to cancellation: a cancelled or timed-out select has
    sent nothing and received nothing.

    Args:
        *cases: ``ch.receiving()`` and ``ch.sending(v)`` cases, or ``None``.
        timeout: seconds to wait before raising ``TimeoutError``.
        default: return ``None`` at once when no case is ready.

    Returns:
        A :class:`Selected` ``(index, case, value)``, where ``index`` is the
        position of the case in the arguments; ``None`` only with
        ``default=True``.

    Raises:
        TimeoutError: ``timeout`` passed with no case ready.
        SendOnClosed: a send case on a closed channel was picked.
        TypeError: an argument is not a case (a channel itself, say).
        ValueError: no case, no default and no timeout: it would wait forever;
            or a negative timeout.

    Examples:
        >>> import anyio
        >>> async def main():
        ...     a, b = Channel[str](1), Channel[str](1)
        ...     await b.send("from b")
        ...     return await select(a.receiving(), b.receiving())
        >>> anyio.run(main).value
        'from b'
    """
    live: list[tuple[int, Case]] = []
    for index, case in enumerate(cast("tuple[object, ...]", cases)):
        if case is None:
            continue
        if not isinstance(case, (ReceiveCase, SendCase)):
            hint = (
                " (pass ch.receiving() or ch.sending(value), not the channel)"
                if isinstance(case, Channel)
                else ""
            )
            raise TypeError(
                f"select() argument {index} is {type(case).__name__} {case!r}, not a case{hint}"
            )
        live.append((index, case))
    if timeout is not None and timeout < 0:
        raise ValueError(f"select() timeout must be >= 0, got {timeout!r}")
    if not live and not default and timeout is None:
        raise ValueError("select() with no case, default or timeout waits forever")

    if _tick_all(live):
        await anyio.lowlevel.checkpoint()
    ready = [(index, case) for index, case in live if case._ready()]
    if ready:
        index, case = ready[0] if len(ready) == 1 else random.choice(ready)
        return Selected(index, case, case._complete())
    if default:
        return None
    if timeout == 0:
        raise TimeoutError("select() timed out: no case was ready")

    op = _Op()
    waiters = []
    for index, case in live:
        is_send = case.is_send
        waiter = _Waiter(op, case.channel, getattr(case, "value", None), index, is_send)
        waiters.append(waiter)
    if timeout is None:
        await _park(op, waiters)
    else:
        with anyio.fail_after(timeout):
            await _park(op, waiters)
    winner = op.winner
    assert isinstance(winner, _Waiter)
    case = cases[winner.index]
    assert case is not None
    if winner.is_send:
        if winner.closed:
            raise SendOnClosed(f"{winner.channel!r} closed while select was sending")
        return Selected(winner.index, case, None)
    return Selected(winner.index, case, CLOSED if winner.closed else winner.value)


def _tick_all(live: list[tuple[int, Case]]) -> bool:
    # Fairness for select: the same per-channel budget as plain operations.
    due = False
    for _, case in live:
        ch = case.channel
        ch._tick += 1
        if ch._tick >= YIELD_EVERY:
            ch._tick = 0
            due = True
    return due
