"""A subscription: the messages of one SUB, as an async iterator over a
bounded buffer.

Backpressure, never drops: when a subscription's buffer is full, the
client's reader waits for room before it reads anything more from the
socket. So a slow consumer slows the whole connection (head-of-line: other
subscriptions and replies wait too) and, through TCP, the server; if it stays
slow long enough the server's own slow-consumer limit (``max_pending``, 64 MiB
by default, and its write deadline) closes the connection, which the client
reports as a disconnection and repairs by reconnecting. Nothing is dropped in
the client without a trace. Give a subscription that may lag a larger
``pending_msgs``, or consume it in its own task.

# Invariants:
# - `_send` is open while the subscription is in the client's table; it is
#   closed (so iteration ends after the buffered messages) exactly when it
#   leaves the table: unsubscribe, max reached, drain, or client close.
# - `delivered` counts messages put in the buffer; with `max`, the
#   subscription leaves the table when `delivered == max`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._signal import Signal
from ._errors import NatsTimeout
from ._protocol import Msg

if TYPE_CHECKING:
    from ._client import Client


class Subscription:
    """The messages on a subject (and queue group): ``async for msg in sub``.

    Made by `Client.subscribe`; an async context manager that unsubscribes
    on exit. Iteration ends when the subscription ends (unsubscribe, its
    ``max`` reached, drain, or the client closed) and the buffer is empty.

    Example:
        >>> async with await nc.subscribe("orders.*", queue="billing") as sub:  # doctest: +SKIP
        ...     async for msg in sub:
        ...         print(msg.subject, msg.data)
    """

    def __init__(
        self, client: Client, sid: int, subject: str, queue: str, pending_msgs: int
    ) -> None:
        self._client = client
        self.sid = sid
        self.subject = subject
        self.queue = queue
        self.max: int | None = None
        self.delivered = 0
        self._limit = pending_msgs if pending_msgs > 0 else 1 << 62
        self._buffer: deque[Msg] = deque()
        #: Set by _deliver_to: takes each message instead of the buffer.
        self._callback: Callable[[Msg], None] | None = None
        self._ended = False
        self._readable = Signal()  # not anyio.Event: a fresh one per wait, cheaper
        self._room = Signal()

    @property
    def pending(self) -> int:
        """Messages in the buffer, not yet taken."""
        return len(self._buffer)

    @property
    def active(self) -> bool:
        """Whether the subscription still receives new messages."""
        return self._client._subs.get(self.sid) is self

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Msg:
        while (msg := self._take_nowait()) is None:
            if self._ended:
                raise StopAsyncIteration
            if self._readable.is_set():
                self._readable = Signal()
            await self._readable.wait()
        return msg

    async def next_msg(self, timeout: float | None = None) -> Msg:
        """The next message, waiting up to ``timeout`` seconds. Not a
        checkpoint when one is buffered; cancellation takes nothing.

        Raises:
            NatsTimeout: None came in time.
            anyio.EndOfStream: The subscription has ended and its buffer is empty.
        """
        if self._buffer or timeout is None:
            # No wait to bound: no cancel scope (one per message is most of
            # the cost of reading a burst of replies, on trio).
            try:
                return await self.__anext__()
            except StopAsyncIteration:
                raise anyio.EndOfStream from None
        with anyio.move_on_after(timeout):
            try:
                return await self.__anext__()
            except StopAsyncIteration:
                raise anyio.EndOfStream from None
        raise NatsTimeout(f"no message on {self.subject!r} within {timeout} s")

    def _take_nowait(self) -> Msg | None:
        """The next buffered message, or None if none is (a reader's fast
        path: no wait, so no clock and no cancel scope)."""
        buffer = self._buffer
        if not buffer:
            return None
        msg = buffer.popleft()
        self._room.set()
        return msg

    async def unsubscribe(self, max: int | None = None) -> None:
        """Stop receiving, now or after ``max`` messages in all.

        Messages already buffered are still given to the iterator. Does not
        wait for the server (``Client.flush`` does). Not a checkpoint.
        """
        await self._client._unsubscribe(self, max)

    async def drain(self, timeout: float | None = None) -> None:
        """Unsubscribe, then wait (a PING round trip) until every message the
        server sent before it is in the buffer; the iterator then ends after
        them. Cancellation leaves the subscription unsubscribed.

        Raises:
            NatsTimeout: The round trip took longer than ``timeout``.
        """
        await self._client._drain_subscription(self, timeout)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.active:
            await self.unsubscribe()

    # -- the client's side ---------------------------------------------------------------

    def _deliver_to(self, callback: Callable[[Msg], None]) -> None:
        """Hand every message to ``callback``, called in the client's reader,
        instead of buffering it for the iterator: for a consumer that never
        waits (a cluster's links), one switch to its task less a message.
        Messages buffered already go first. ``callback`` must not raise."""
        while self._buffer:
            callback(self._buffer.popleft())
        self._callback = callback

    def _put_nowait(self, msg: Msg) -> bool:
        callback = self._callback
        if callback is not None:
            callback(msg)
            return True
        if len(self._buffer) >= self._limit:
            return False
        self._buffer.append(msg)
        self._readable.set()
        return True

    async def _put(self, msg: Msg) -> None:
        """Wait for room, then buffer ``msg`` (the reader's backpressure).
        Cancellation (the subscription ended) drops it."""
        while len(self._buffer) >= self._limit:
            if self._room.is_set():
                self._room = Signal()
            await self._room.wait()
        self._buffer.append(msg)
        self._readable.set()

    def _end(self) -> None:
        self._ended = True
        self._readable.set()

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription {self.sid} {self.subject!r}{queue} pending={self.pending}>"
