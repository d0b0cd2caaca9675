"""Go-style channels: rendezvous or buffered, closeable, selectable.

A channel is the one primitive everything else stands on: mailboxes, the actor
loop and supervisors all wait on channels. It follows Go's ``runtime/chan.go``:
a buffer plus two queues of parked operations (``_parking``), and a parked
operation may be a ``select`` (``_select``) waiting on several channels at once.
"""

# Invariants:
# - A value is in exactly one place: a sender's hands, a parked sender's
#   waiter, the buffer, a parked receiver's waiter (once handed over), or the
#   hands of the receiver that returned it.
# - A live parked receiver implies an empty buffer; a live parked sender implies
#   a full buffer. ("Live": its operation has not completed yet.)
# - ``_senders`` and ``_receivers`` are the heads of the queues of parked
#   waiters, kept as ``_parking``'s invariants say; a waiter in them may belong
#   to an operation already completed elsewhere, and every reader skips those.

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import anyio
import anyio.lowlevel

from ._exceptions import ChannelDrained, SendOnClosed, WouldBlock
from ._parking import Op, Waiter, abandon, count_live, has_live, park, pop_live
from ._trio import trio

if TYPE_CHECKING:
    from ._channel_export import Export

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

    A buffered channel pickled into a message for another process stays
    here; the other process gets an end of it (a ``Channel`` whose operations
    are messages to this one, ``capacity`` values at most on their way).
    Rendezvous and unbounded channels cannot be pickled.

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

    __slots__ = ("_buffer", "_capacity", "_closed", "_export", "_receivers", "_senders", "_tick")

    def __init__(self, capacity: float = 0) -> None:
        self._capacity = _check_capacity(capacity)
        # No deque until the first value is buffered: an idle channel (most
        # mailboxes) saves its 760 bytes. ``()`` reads like an empty deque.
        self._buffer: deque[T] = _NO_BUFFER
        # The heads of the waiter queues (see Waiter).
        self._senders: Waiter | None = None
        self._receivers: Waiter | None = None
        self._closed = False
        self._tick = 0
        # Set once an end of this channel is handed to another process
        # (``actors._wire_channel``): its close is then told over there.
        self._export: Export | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled into a message for another process: the channel stays
        # here, and the other side gets an end of it (a RemoteChannel).
        from ._channel_export import export

        return export(self)

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
            waiting_senders=count_live(self._senders),
            waiting_receivers=count_live(self._receivers),
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
            # pop_live, discard, Op.live and Op.fire inlined: this hand-off
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
            future = op.future
            if future is None:
                waiter.value = value
                op.winner = waiter
                trio.lowlevel.reschedule(op.task)
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
                waiter = pop_live(self, True)
                if waiter is not None:
                    buffer.append(waiter.value)
                    waiter.fire()
            return value
        waiter = pop_live(self, True)
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
            while (waiter := pop_live(self, senders)) is not None:
                waiter.closed = True
                waiter.fire()
        if self._export is not None:
            self._export.closed(self)

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
        return has_live(self, False)

    def _wake_receiver(self, value: Any) -> bool:
        # Hand ``value`` to a parked receiver; False if none is parked. Never
        # buffers, so it takes no room from senders (a mailbox wakes its
        # parked owner for a system message with it).
        waiter = pop_live(self, False)
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
        op = Op()
        waiter = Waiter(op, self, value, 0, True)
        await park(op, waiter)
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
        op = Op()
        waiter = Waiter(op, self, None, 0, False)
        # park() inlined for the hottest wait (every idle actor's mailbox):
        # one coroutine frame less to create and to resume through.
        try:
            if op.future is not None:
                await op.future
            else:
                await trio.lowlevel.wait_task_rescheduled(op.abort)
        except BaseException:
            abandon(op, waiter)  # a receive: never a completed send
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


class ReceiveCase(Generic[T]):
    """A receive case for :func:`select`; make it with :meth:`Channel.receiving`.

    Examples:
        >>> ch = Channel[int](1)
        >>> ch.receiving().channel is ch
        True
    """

    __slots__ = ("channel",)
    is_send: Final = False
    #: A case on a channel end in another process: ``select`` parks it
    #: through the three methods below (``actors._wire_channel``).
    _remote: ClassVar[bool] = False

    def __init__(self, channel: Channel[T]) -> None:
        self.channel = channel

    def __repr__(self) -> str:
        return f"<ReceiveCase on {self.channel!r}>"

    def _ready(self) -> bool:
        ch = self.channel
        return bool(ch._buffer) or has_live(ch, True) or ch._closed

    def _complete(self) -> Any:
        try:
            return self.channel.receive_nowait()
        except ChannelDrained:
            return CLOSED

    def _park(self, op: Op, index: int) -> Waiter:
        # Queue this case's waiter for a parking select (``_remote`` cases).
        return Waiter(op, self.channel, None, index, False)

    def _unpark(self, op: Op, waiter: Waiter) -> None:
        # The select parked with ``waiter`` has ended, whoever won.
        return None

    def _result(self, winner: Waiter) -> Any:
        # This case won the select: its value.
        return CLOSED if winner.closed else winner.value


class SendCase(Generic[T]):
    """A send case for :func:`select`; make it with :meth:`Channel.sending`.

    Examples:
        >>> ch = Channel[int](1)
        >>> ch.sending(5).value
        5
    """

    __slots__ = ("channel", "value")
    is_send: Final = True
    _remote: ClassVar[bool] = False

    def __init__(self, channel: Channel[T], value: T) -> None:
        self.channel = channel
        self.value = value

    def __repr__(self) -> str:
        return f"<SendCase {self.value!r} on {self.channel!r}>"

    def _ready(self) -> bool:
        ch = self.channel
        return ch._closed or has_live(ch, False) or len(ch._buffer) < ch._capacity

    def _complete(self) -> Any:
        self.channel.send_nowait(self.value)
        return None

    def _park(self, op: Op, index: int) -> Waiter:
        return Waiter(op, self.channel, self.value, index, True)

    def _unpark(self, op: Op, waiter: Waiter) -> None:
        return None

    def _result(self, winner: Waiter) -> Any:
        if winner.closed:
            raise SendOnClosed(f"{self.channel!r} closed while select was sending")
        return None


Case = ReceiveCase[Any] | SendCase[Any]
