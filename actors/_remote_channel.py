"""An end of a channel owned by another system: what a ``Channel`` sent to
this process unpickles as (see :mod:`actors._wire_channel` for the protocol
and the owner's side)."""

# Invariants:
# - ``_available`` credits, plus tasks parked on ``_credits``, plus values
#   sent and not yet credited, make ``capacity`` (until the end is closed or
#   lost). A credit goes to a parked sender first.
# - Every receive parked on ``_inbox`` has one ``want`` at the owner or its
#   value on the way; a value that finds no parked receive goes back. The
#   inbox holds no value once the operation that put one back has ended.
# - Once the end is drained or lost, it sends nothing more, and every task
#   that waited on it has been woken.

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.lowlevel

from ._channel import CLOSED, YIELD_EVERY, Channel, ChannelStatistics, ReceiveCase, SendCase
from ._codec import dumps
from ._exceptions import (
    UNSENDABLE,
    ActorsError,
    ChannelDrained,
    ConnectionLost,
    MessageTooLarge,
    SendOnClosed,
    WouldBlock,
)
from ._parking import Op, Waiter, count_live, park

if TYPE_CHECKING:
    from ._wire_channel import WireChannels

T = TypeVar("T")

_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError)


class RemoteChannel(Channel[T]):
    """An end of a channel owned by another process: what a ``Channel`` sent
    to this process unpickles as.

    It has the channel's API, with these differences:

    - ``send`` spends one of ``capacity`` credits and returns once the value
      is on its way; it waits while none is left (the owner returns one when
      a value enters the channel). ``send_nowait`` raises ``WouldBlock``
      while none is left.
    - ``receive`` asks the owner for a value and waits for it. It cannot be
      polled: ``receive_nowait`` raises ``ActorsError`` (unless the channel is
      known drained), and so does a ``select`` with ``default=True`` or
      ``timeout=0`` that has a receive case on an end.
    - ``len()`` and ``statistics().buffered`` count the values sent from this
      end that have not entered the channel yet.
    - When the connection to the owner ends, every operation raises
      :class:`ConnectionLost`, including the ones waiting.

    Examples:
        >>> issubclass(RemoteChannel, Channel)
        True
    """

    __slots__ = (
        "_available",
        "_credits",
        "_drained",
        "_inbox",
        "_lost",
        "_number",
        "_owner",
        "_wires",
    )

    def __init__(self, wires: WireChannels, owner: str, number: int, capacity: int) -> None:
        super().__init__(capacity)
        self._wires = wires
        self._owner = owner
        self._number = number
        self._available = capacity
        # Senders waiting for a credit park here; credits are handed to them.
        self._credits: Channel[None] = Channel()
        # Receivers waiting for a value from the owner park here.
        self._inbox: Channel[Any] = Channel()
        self._drained = False
        self._lost: BaseException | None = None

    def __repr__(self) -> str:
        if self._lost is not None:
            state = "lost"
        elif self._drained:
            state = "drained"
        else:
            state = "closed" if self._closed else "open"
        return f"<RemoteChannel #{self._number} of {self._owner} {self._capacity} {state}>"

    def __reduce__(self) -> tuple[Any, ...]:
        from ._channel_export import restore

        return (restore, (self._owner, self._number, int(self._capacity)))

    def __len__(self) -> int:
        return int(self._capacity) - self._available

    def statistics(self) -> ChannelStatistics:
        """A snapshot of this end: ``buffered`` counts the values sent from here
        that have not entered the channel yet."""
        return ChannelStatistics(
            buffered=len(self),
            capacity=self._capacity,
            closed=self._closed,
            waiting_senders=count_live(self._credits._receivers),
            waiting_receivers=count_live(self._inbox._receivers),
        )

    # -- talking to the owner ----------------------------------------------------------

    def _lost_error(self) -> ConnectionLost:
        return ConnectionLost(f"{self!r}: the connection to its owner ended ({self._lost})")

    def _ship(self, op: str, count: int = 0, body: bytes = b"") -> None:
        if self._lost is not None:
            raise self._lost_error()
        try:
            self._wires.send(self._owner, self._number, op, count, body)
        except _BROKEN as error:
            raise ConnectionLost(
                f"{self!r}: the connection to its owner is ending ({error})"
            ) from None

    def _put(self, body: bytes) -> None:
        # Ship a value whose credit was spent; one too large for a frame
        # went nowhere, and its credit is given back.
        try:
            self._ship("put", 0, body)
        except MessageTooLarge:
            self._grant(1)
            raise MessageTooLarge(
                f"{self!r}: a value of {len(body):,} bytes pickled is more than a frame "
                f"holds; nothing was sent: send it in parts"
            ) from None

    def _grant(self, count: int) -> None:
        credits = self._credits
        for _ in range(count):
            if not credits._wake_receiver(None):
                self._available += 1

    def _settle_credits(self) -> None:
        # A credit handed to a sender cancelled before it ran was put back
        # in the credits' buffer: count it again.
        if self._credits._buffer:
            self._available += len(self._credits._take_buffered())

    def _settle(self) -> None:
        # A value handed to a receive cancelled before it ran was put back in
        # the inbox: it goes back to the channel (to its head).
        if not self._inbox._buffer:
            return
        for value in self._inbox._take_buffered():
            try:
                self._ship("back", 0, dumps(value))
            except ConnectionLost:
                self._wires.dead_letter(value, f"{self!r} lost its connection with it")
            except UNSENDABLE as error:  # it came in a frame: all but impossible
                self._wires.dead_letter(value, f"{self!r} could not give it back ({error})")

    def _closed_by_owner(self) -> None:
        self._closed = True
        self._credits.close()

    def _drained_by_owner(self) -> None:
        self._closed_by_owner()
        self._drained = True
        self._inbox.close()

    def _lose(self, error: BaseException) -> None:
        self._lost = error
        self._credits.close()
        self._inbox.close()

    # -- sending -------------------------------------------------------------------

    def _check_send(self) -> None:
        if self._closed:
            raise SendOnClosed(f"send on closed {self!r}")
        if self._lost is not None:
            raise self._lost_error()

    def send_nowait(self, value: T) -> None:
        """Send ``value`` if a credit is left.

        Raises:
            SendOnClosed: the channel is closed.
            ConnectionLost: the connection to the owner ended.
            WouldBlock: ``capacity`` values from this end are on their way.
            UnpicklableMessage: ``value`` cannot be pickled; nothing was sent.
            MessageTooLarge: ``value`` is larger than a frame; nothing was sent.
        """
        self._check_send()
        body = dumps(value)
        if not self._available:
            raise WouldBlock(
                f"{self!r}: {int(self._capacity)} values from here have not entered the "
                f"channel yet; wait for room with send()"
            )
        self._available -= 1
        self._put(body)

    async def send(self, value: T) -> None:
        """Send ``value``: spend a credit, waiting for one if none is left.

        Returns once the value is on its way to the owner. Atomic with
        respect to cancellation: a cancelled send has sent nothing.

        Raises:
            SendOnClosed: the channel is closed, or closes while we wait.
            ConnectionLost: the connection to the owner ended.
            UnpicklableMessage: ``value`` cannot be pickled; nothing was sent.
            MessageTooLarge: ``value`` is larger than a frame; nothing was sent.
        """
        self._tick += 1
        if self._tick >= YIELD_EVERY:
            self._tick = 0
            await anyio.lowlevel.checkpoint()
        self._check_send()
        body = dumps(value)
        if self._available:
            self._available -= 1
        else:
            # Parked at once, with no schedule point between the check above
            # and the park (Channel.receive takes one every YIELD_EVERY
            # receives): a credit granted then would go to _available, and
            # this send would wait for one that never comes.
            op = Op()
            waiter = Waiter(op, self._credits, None, 0, False)
            try:
                await park(op, waiter)
            except BaseException:
                self._settle_credits()
                raise
            self._check_send()
            if waiter.closed:  # pragma: no cover - closed or lost is why
                raise SendOnClosed(f"{self!r} closed while a send was waiting")
        self._put(body)

    def sending(self, value: T) -> SendCase[T]:
        """A send case for :func:`select`: ready while a credit is left."""
        return _RemoteSendCase(self, value)

    # -- receiving -----------------------------------------------------------------

    def _check_receive(self) -> None:
        if self._drained:
            raise ChannelDrained(f"receive from closed and drained {self!r}")
        if self._lost is not None:
            raise self._lost_error()

    def _unpark(self, op: Op, waiter: Waiter) -> None:
        # A receive parked on the inbox has ended: withdraw its want unless
        # it was answered.
        if op.winner is not waiter and not self._drained and self._lost is None:
            with contextlib.suppress(ConnectionLost):
                self._ship("unwant", 1)
        self._settle()

    def receive_nowait(self) -> T:
        """Not for an end: it cannot know of a value without asking the owner.

        Raises:
            ChannelDrained: the channel is known closed and drained.
            ConnectionLost: the connection to the owner ended.
            ActorsError: otherwise; use ``await receive()`` (under
                ``anyio.move_on_after`` for a deadline) or ``select`` with a
                timeout.
        """
        self._check_receive()
        raise ActorsError(
            f"receive_nowait() cannot poll {self!r}: an end of a channel in another "
            f"process learns of a value only by asking for it, a round trip. Use "
            f"`await receive()` (under anyio.move_on_after for a deadline) or "
            f"select(..., timeout=seconds)"
        )

    async def receive(self) -> T:
        """Ask the owner for the next value and wait for it.

        Atomic with respect to cancellation: a cancelled receive has taken
        nothing (a value already on its way goes back to the channel's head).

        Raises:
            ChannelDrained: the channel is closed and empty.
            ConnectionLost: the connection to the owner ended.
        """
        self._tick += 1
        if self._tick >= YIELD_EVERY:
            self._tick = 0
            await anyio.lowlevel.checkpoint()
        self._check_receive()
        self._ship("want", 1)
        op = Op()
        waiter = Waiter(op, self._inbox, None, 0, False)
        try:
            await park(op, waiter)
        except BaseException:
            self._unpark(op, waiter)
            raise
        if waiter.closed:
            self._check_receive()
        return waiter.value  # type: ignore[no-any-return]

    def receiving(self) -> ReceiveCase[T]:
        """A receive case for :func:`select` (which then waits: it cannot
        poll an end with ``default=True`` or ``timeout=0``)."""
        return _RemoteReceiveCase(self)

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        """Close the channel; idempotent.

        Sends from this end fail from now on; the close reaches the owner
        after the values sent before it, and receives there and at other ends
        drain the channel first.
        """
        if self._closed:
            return
        self._closed = True
        self._credits.close()
        if self._lost is None and not self._drained:
            with contextlib.suppress(ConnectionLost):
                self._ship("close")


class _RemoteReceiveCase(ReceiveCase[T]):
    """A receive case on an end: parks on its inbox after asking for a value."""

    __slots__ = ()
    _remote = True

    def _end(self) -> RemoteChannel[T]:
        return cast("RemoteChannel[T]", self.channel)

    def _ready(self) -> bool:
        end = self._end()
        return end._drained or end._lost is not None

    def _complete(self) -> Any:
        end = self._end()
        if end._drained:
            return CLOSED
        raise end._lost_error()

    def _park(self, op: Op, index: int) -> Waiter:
        end = self._end()
        # If the connection is ending, its end wakes the waiter.
        with contextlib.suppress(ConnectionLost):
            end._ship("want", 1)
        return Waiter(op, end._inbox, None, index, False)

    def _unpark(self, op: Op, waiter: Waiter) -> None:
        self._end()._unpark(op, waiter)

    def _result(self, winner: Waiter) -> Any:
        if winner.closed:
            return self._complete()
        return winner.value


class _RemoteSendCase(SendCase[T]):
    """A send case on an end: parks for a credit, sends when it wins."""

    __slots__ = ("_body",)
    _remote = True

    def __init__(self, channel: RemoteChannel[T], value: T) -> None:
        super().__init__(channel, value)
        self._body: bytes | None = None

    def _end(self) -> RemoteChannel[T]:
        return cast("RemoteChannel[T]", self.channel)

    def _pickled(self) -> bytes:
        if self._body is None:
            self._body = dumps(self.value)
        return self._body

    def _ready(self) -> bool:
        end = self._end()
        self._pickled()  # an unpicklable value fails the select before it waits
        return end._closed or end._lost is not None or end._available > 0

    def _complete(self) -> Any:
        end = self._end()
        end._check_send()
        end._available -= 1
        end._put(self._pickled())
        return None

    def _park(self, op: Op, index: int) -> Waiter:
        return Waiter(op, self._end()._credits, None, index, False)

    def _unpark(self, op: Op, waiter: Waiter) -> None:
        self._end()._settle_credits()

    def _result(self, winner: Waiter) -> Any:
        end = self._end()
        end._check_send()
        if winner.closed:  # pragma: no cover - closed or lost is why
            raise SendOnClosed(f"{end!r} closed while select was sending")
        end._put(self._pickled())
        return None
