"""Mailboxes: a bounded user lane with an overflow policy, and a system lane.

# Invariants:
# - User messages live in ``_user``, a Channel, so senders get Go's blocking,
#   FIFO and cancellation rules for free. Only user messages take its room.
# - Each system message is appended to ``_system``. The owner (``Cell._loop``,
#   which reads the lanes directly: it is the hot path) reads ``_system``
#   before ``_user``, so system messages overtake user messages and keep their
#   own order.
# - ``receiving`` is True only while the owner is inside ``_user.receive()``,
#   which it enters with no fairness checkpoint due, so it is parked there or
#   has been handed a user message and not run yet. A system message wakes a
#   parked owner by handing it the ``_WAKE`` token
#   (``Channel._wake_receiver``), never through the buffer; an owner that was
#   handed a message, or is busy, reads ``_system`` before its next message.
#   (A token handed to an owner whose receive is then cancelled is put back
#   in the buffer; the owner is ending, and closes the mailbox before anyone
#   else runs.)
# - Only the owning actor's task receives.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._channel import Channel
from ._exceptions import WouldBlock

#: The mailbox capacity when none is given: room for bursts, small enough that
#: a producer outrunning its consumer meets backpressure quickly.
DEFAULT_CAPACITY: Final = 1000

OverflowPolicy = Literal["block", "drop_newest", "drop_oldest", "fail"]
_POLICIES: Final = ("block", "drop_newest", "drop_oldest", "fail")


class _Wake(enum.Enum):
    WAKE = "WAKE"


_WAKE: Final = _Wake.WAKE


@dataclass(frozen=True, slots=True)
class Mailbox:
    """How an actor's mailbox is built, chosen at spawn.

    Args:
        capacity: how many user messages it holds (default 1000); ``math.inf``
            for unbounded. System messages never count against it.
        overflow: what ``tell`` does when it is full: ``"block"`` waits for room
            (backpressure, the default), ``"drop_newest"`` drops the message
            being sent, ``"drop_oldest"`` drops the oldest queued message,
            ``"fail"`` raises :class:`MailboxFull`. Dropped messages become
            dead letters.

    Raises:
        ValueError: an unknown policy, or a capacity below 1.

    Examples:
        >>> Mailbox(capacity=10, overflow="drop_oldest").capacity
        10
    """

    capacity: float = DEFAULT_CAPACITY
    overflow: OverflowPolicy = "block"

    def __post_init__(self) -> None:
        if self.overflow not in _POLICIES:
            raise ValueError(
                f"Mailbox overflow must be one of {', '.join(_POLICIES)}; got {self.overflow!r}"
            )
        capacity = self.capacity
        if isinstance(capacity, bool) or not isinstance(capacity, (int, float)):
            raise TypeError(f"Mailbox capacity must be an int or math.inf, got {capacity!r}")
        if capacity < 1 or (isinstance(capacity, float) and capacity != math.inf):
            raise ValueError(
                f"Mailbox capacity must be a whole number >= 1 or math.inf, got {capacity!r}"
            )


class _MailboxQueue:
    """The runtime side of a mailbox (one per actor incarnation)."""

    __slots__ = ("_system", "_user", "overflow", "receiving")

    def __init__(self, config: Mailbox) -> None:
        self._user: Channel[Any] = Channel(config.capacity)
        self._system: list[Any] | None = None  # allocated on first use
        self.overflow = config.overflow
        self.receiving = False  # the owner is inside _user.receive()

    @property
    def capacity(self) -> float:
        return self._user.capacity

    @property
    def closed(self) -> bool:
        return self._user.closed

    def __len__(self) -> int:
        return len(self._user._buffer) + len(self._system or ())

    def parked(self) -> bool:
        """Whether the owner waits in ``receive()`` and has not been handed a
        message it has yet to run."""
        return self.receiving and self._user._receiver_parked()

    def put_system(self, message: Any) -> None:
        if self._system is None:
            self._system = []
        self._system.append(message)
        if self.receiving:
            self._user._wake_receiver(_WAKE)

    def try_put(self, message: Any) -> bool:
        """Queue without waiting; False if full. Raises SendOnClosed if closed."""
        try:
            self._user.send_nowait(message)
        except WouldBlock:
            return False
        return True

    def drop_oldest(self) -> Any:
        """Remove and return the oldest queued user message (the mailbox is
        full: ``try_put`` just failed, so there is one)."""
        return self._user._buffer.popleft()

    def close(self) -> list[Any]:
        """Close to new messages; return what was queued (system lane first)."""
        self._user.close()
        left = self._system or []
        self._system = None
        left.extend(m for m in self._user._take_buffered() if m is not _WAKE)
        return left
