"""A byte stream between two nodes over NATS subjects, with a credit window.

Two nodes of a cluster talk over a link (:mod:`actors._cluster`): the
handshake, then a :class:`~actors._wire.WireConnection` and a
:class:`~actors._peer.Peer`, all made for a byte stream. This module is that
stream over NATS. Each end publishes to the other's link subject
``actors.<cluster>.link.<to>.<from>.<link id>`` messages of three kinds::

    "D" sequence u64 | bytes     data, numbered from 0 in each direction
    "C" bytes u64                credit: the receiver read this many bytes more
    "E"                          the end of the stream

A sender sends data only while it holds credit: it starts with the window
the receiver announced, each byte sent spends one, and the receiver gives
credit back as it reads. So the receiver never holds more than one window of
unread data, its NATS client never has to stop reading for it (the server's
slow-consumer limit, which drops messages, is never reached because of a
link), and a receiver that does not read slows its sender down instead.

Core NATS may still lose a message (a reconnection, or the server's limits):
a data message out of sequence, more data than the credit allowed, or a
malformed message breaks the stream (:class:`anyio.BrokenResourceError` on
its next read), and nothing after it is read: the wire above would have
refused it anyway (its frames carry a MAC and their own sequence numbers).

# Invariants:
# - ``_buffer`` holds the data received and not yet read, at most
#   ``window`` bytes: a sender that sends more breaks the stream.
# - ``_credit`` is what this end may still send; it never goes below 0.
# - ``_error`` is set once; after it nothing is received or sent, and every
#   waiter has been woken.
# - ``inline`` takes data only while a receive waits with ``_buffer`` empty,
#   so nothing it takes overtakes data for the reader; what it takes counts
#   towards the credit given back like what the reader reads.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc

from ._signal import Signal

if TYPE_CHECKING:
    from ._nats import Client

DATA: Final = b"D"
CREDIT: Final = b"C"
END: Final = b"E"
_U64: Final = struct.Struct("!Q")
#: The default window: bytes a receiver accepts unread.
DEFAULT_WINDOW: Final = 1 << 20
#: Bytes of data in one message at most.
CHUNK: Final = 1 << 16


class LinkStream(anyio.abc.ByteStream):
    """One end of a byte stream over NATS (internal).

    The cluster feeds it what arrives on its link subject (:meth:`feed`,
    never blocking); :meth:`send` publishes to the other end's.

    Args:
        client: The node's NATS client.
        subject: The other end's link subject.
        window: Bytes this end accepts unread (announced to the other end).
        peer_window: Bytes the other end accepts unread: this end's first credit.
        label: The other end, for messages.
    """

    def __init__(
        self, client: Client, subject: str, window: int, peer_window: int, label: str
    ) -> None:
        self._client = client
        self.subject = subject
        self.window = window
        self.label = label
        self._credit = peer_window
        self._chunk = max(1, min(CHUNK, client.max_payload - 64))
        self._send_sequence = 0
        self._receive_sequence = 0
        self._buffer = bytearray()
        self._read = 0  # bytes read since credit was last given back
        # Signals, not anyio.Event: a fresh one per wait, on the path of every
        # remote ask, and a fraction of the cost to make.
        self._readable = Signal()
        self._room = Signal()
        self._end = False
        self._closed = False
        self._error: BaseException | None = None
        #: Called once with the reason when what came from the other end breaks
        #: the stream (the cluster counts it as refused); not by ``fail``.
        self.on_broken: Callable[[LinkStream, str], None] | None = None
        #: Takes data at once in :meth:`feed`, from the NATS client's reader,
        #: while the reader of this stream waits with nothing buffered: True
        #: if it took all of it (``Peer._take_inline``). Saves each frame the
        #: switch to the reading task.
        self.inline: Callable[[memoryview], bool] | None = None
        self._waiting = False  # a receive waits for data
        self._poked = False  # the next receive returns b"" (see poke)

    # -- what arrives --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take one message from the other end's link subject (never blocks)."""
        if self._error is not None or self._closed:
            return
        kind = data[:1]
        if kind == DATA and len(data) >= 1 + _U64.size:
            (sequence,) = _U64.unpack_from(data, 1)
            if sequence != self._receive_sequence:
                self._break(
                    f"a message from {self.label} arrived as number {sequence} where "
                    f"{self._receive_sequence} was expected (lost on the way, or forged)"
                )
                return
            chunk = memoryview(data)[1 + _U64.size :]
            if len(self._buffer) + len(chunk) > self.window:
                self._break(f"{self.label} sent more than its credit allows")
                return
            self._receive_sequence += 1
            inline = self.inline
            if self._waiting and not self._buffer and inline is not None and inline(chunk):
                self._read += len(chunk)
                if self._credit_due():
                    self._give_credit_now()
                return
            self._buffer += chunk
            self._readable.set()
        elif kind == CREDIT and len(data) == 1 + _U64.size:
            (credit,) = _U64.unpack_from(data, 1)
            self._credit += credit
            self._room.set()
        elif kind == END and len(data) == 1:
            self._end = True
            self._readable.set()
        else:
            self._break(f"a malformed message came on the link from {self.label}")

    def _break(self, why: str, *, refused: bool = True) -> None:
        if self._error is not None:
            return
        self._error = anyio.BrokenResourceError(why)
        self._buffer.clear()
        self._readable.set()
        self._room.set()
        if refused and self.on_broken is not None:
            self.on_broken(self, why)

    def _credit_due(self) -> bool:
        return self._read >= self.window // 4 or (not self._buffer and self._read >= CHUNK)

    def _give_credit_now(self) -> None:
        # Credit for data taken inline, without waiting; if the client cannot
        # take it now, the reader gives it (it wakes and finds it due).
        from ._nats import NatsError

        credit, self._read = self._read, 0
        try:
            if self._client.try_publish(self.subject, CREDIT + _U64.pack(credit)):
                return
        except (NatsError, ValueError):
            pass  # the reader's publish meets the same error and breaks the stream
        self._read += credit
        self._readable.set()

    async def _give_credit(self) -> None:
        # Credit for what was read or taken, from the reader (may wait).
        credit, self._read = self._read, 0
        await self._publish(CREDIT + _U64.pack(credit))

    def poke(self) -> None:
        """Make the waiting receive return ``b""`` (once): ``inline`` left
        frames for the reader above (see ``WireConnection.receive``)."""
        self._poked = True
        self._readable.set()

    def grant(self, credit: int) -> None:
        """Add ``credit`` bytes this end may send (the other end's window)."""
        self._credit += credit
        self._room.set()

    def fail(self, why: str) -> None:
        """Break the stream from outside (the NATS connection was lost):
        nothing was refused, so ``on_broken`` is not called."""
        self._break(why, refused=False)

    @property
    def broken(self) -> bool:
        return self._error is not None

    def input_waiting(self) -> bool:
        """Whether data from the other end waits to be read."""
        return bool(self._buffer)

    # -- the ByteStream ------------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next data (at least one byte), or ``b""`` once after :meth:`poke`."""
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise anyio.ClosedResourceError
            if self._end:
                raise anyio.EndOfStream
            if self._poked:
                self._poked = False
                return b""
            if self._credit_due():  # data taken inline
                await self._give_credit()
                continue
            if self._readable.is_set():
                self._readable = Signal()
            self._waiting = True
            try:
                await self._readable.wait()
            finally:
                self._waiting = False
        if self._error is not None:
            raise self._error
        self._poked = False
        data = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        self._read += len(data)
        if self._credit_due():
            await self._give_credit()
        return data

    async def send(self, item: bytes) -> None:
        view = memoryview(item)
        while view:
            while self._credit <= 0:
                self._check_sendable()
                if self._room.is_set():
                    self._room = Signal()
                await self._room.wait()
            self._check_sendable()
            size = min(len(view), self._chunk, self._credit)
            head = DATA + _U64.pack(self._send_sequence)
            self._send_sequence += 1
            self._credit -= size
            await self._publish(head + view[:size])
            view = view[size:]

    def try_send(self, data: bytes | memoryview) -> int:
        """Send all of ``data`` now if that needs no wait (credit, and room
        in the client's buffer): ``len(data)``; else 0, having sent nothing.
        For the wire's writes from the task that asks or answers
        (``WireConnection.write_now``): no switch to its writer task, nor
        to the client's flusher.

        Raises:
            anyio.BrokenResourceError: The stream broke.
            anyio.ClosedResourceError: This end was closed.
        """
        self._check_sendable()
        size = len(data)
        if size > self._credit or size > self._chunk:
            return 0
        from ._nats import NatsError

        message = b"".join((DATA, _U64.pack(self._send_sequence), data))
        try:
            if not self._client.try_publish(self.subject, message):
                return 0
        except (NatsError, ValueError) as error:
            self._break(f"publishing to {self.label} failed: {error!r}")
            raise anyio.BrokenResourceError(str(error)) from error
        self._send_sequence += 1
        self._credit -= size
        return size

    def _check_sendable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise anyio.ClosedResourceError

    async def _publish(self, data: bytes) -> None:
        from ._nats import NatsError

        try:
            await self._client.publish(self.subject, data)
        except (NatsError, ValueError) as error:
            self._break(f"publishing to {self.label} failed: {error!r}")
            raise anyio.BrokenResourceError(str(error)) from error

    async def send_eof(self) -> None:
        self._check_sendable()
        await self._publish(END)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._client.is_closed:
            # Tell the other end (also when this end broke: it learns now,
            # not from missed heartbeats), without waiting: a publish
            # checkpoints only when the client's buffer is full.
            from ._nats import NatsError

            with contextlib.suppress(NatsError, ValueError):
                await self._client.publish(self.subject, END)
        self._readable.set()
        self._room.set()
