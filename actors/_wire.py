"""The wire: envelopes over an authenticated, framed, batching byte stream.

After the handshake (:mod:`actors._handshake`), each direction of a stream is
a sequence of frames::

    length u32 | sequence u64 | tag (16 bytes) | payload (length bytes)

The payload is a batch of envelopes (:mod:`actors._envelope`); the sequence
numbers count frames from 0 in each direction; the tag is the MAC
(:mod:`actors._mac`) of length, sequence and payload under the key of the
direction. The receiver checks the tag with ``hmac.compare_digest``, then that
the sequence number is the next one, before it decodes anything: a frame
altered, replayed, reordered or dropped on the way closes the connection with
:class:`AuthenticationError`, and nothing in it or after it is decoded, let
alone unpickled.

One writer task per connection sends the envelopes queued by :meth:`send`: it
takes everything queued (up to a batch size) into one frame, so a burst of
messages pays one MAC and one system call. The queue is bounded in bytes;
:meth:`send` waits for room (backpressure), ``send_nowait`` raises.

Examples:
    >>> import anyio, anyio.abc, socket
    >>> from actors._envelope import Envelope, Kind
    >>> from actors._handshake import handshake
    >>> async def end(sock, initiator, received):
    ...     stream = await anyio.abc.SocketStream.from_socket(sock)
    ...     session = await handshake(stream, b"0123456789abcdef", initiator)
    ...     async with WireConnection(stream, session) as wire:
    ...         if initiator:
    ...             await wire.send(Envelope(Kind.TELL, "/user/a", "", 0, {}, b"hello"))
    ...         else:
    ...             received.append(await wire.receive())
    >>> async def main():
    ...     received = []
    ...     left, right = socket.socketpair()
    ...     async with anyio.create_task_group() as tg:
    ...         tg.start_soon(end, left, True, received)
    ...         tg.start_soon(end, right, False, received)
    ...     return received[0].body
    >>> anyio.run(main)
    b'hello'
"""

# Invariants:
# - Every envelope accepted by ``send`` is in exactly one place: ``_pending``,
#   the batch the writer is sending, or sent (``_written`` counts those) --
#   until the connection fails or is left with an error, which drops them all.
# - ``_pending_bytes`` is the sum of the sizes in ``_pending``.
# - Frames leave in sequence: only the writer sends, one frame at a time, and
#   it numbers them ``_send_sequence`` 0, 1, 2...
# - Nothing is decoded before its frame's tag and sequence number are checked;
#   once one check fails (``_failure`` set), nothing more is read.
# - ``_error`` is set once, first cause wins; after it nothing more is sent
#   and every waiter has been woken.

from __future__ import annotations

import hmac
import logging
import select
import struct
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import anyio.lowlevel

from ._cluster_stream import LinkStream
from ._envelope import Envelope, decode_batch, encode
from ._exceptions import AuthenticationError, IncompatiblePeer, MessageTooLarge, WouldBlock
from ._mac import TAG_SIZE, Tagger
from ._socket import SocketStream

if TYPE_CHECKING:
    from ._handshake import Session

logger = logging.getLogger("actors.wire")

#: A frame's length and sequence number; its tag follows.
FRAME_HEAD: Final = struct.Struct("!IQ")
#: Bytes before a frame's payload.
FRAME_PREFIX: Final = FRAME_HEAD.size + TAG_SIZE
#: The writer puts up to this many bytes of envelopes in one frame (one
#: envelope larger than this goes alone).
DEFAULT_BATCH_SIZE: Final = 1 << 16
#: :meth:`WireConnection.send` waits while this many bytes are queued.
DEFAULT_MAX_PENDING: Final = 1 << 20
#: The largest frame sent or accepted: one envelope must fit in it.
DEFAULT_MAX_FRAME: Final = 1 << 28
#: As ``Channel``'s fast paths: an operation that completes at once checkpoints
#: once every this many times, so a busy sender or receiver cannot starve the
#: other tasks, yet a burst of sends still reaches the writer as one batch.
YIELD_EVERY: Final = 256
_READ_SIZE: Final = 1 << 16
_MAX_READ: Final = 1 << 20


@dataclass(frozen=True)
class WireStatistics:
    """Counts of a connection, from :meth:`WireConnection.statistics`."""

    frames_sent: int
    envelopes_sent: int
    bytes_sent: int
    frames_received: int
    envelopes_received: int
    bytes_received: int
    #: Envelopes queued and not yet handed to the stream.
    pending_envelopes: int
    pending_bytes: int
    #: Frames refused for a bad tag or sequence number (0 or 1: the first
    #: closes the connection).
    authentication_failures: int


class WireConnection:
    """Envelopes over a byte stream, authenticated frame by frame, batched.

    An async context manager: entering starts the writer task; leaving
    without an error sends what is queued, then closes the stream (this
    waits while the peer does not read: bound it with a timeout); leaving
    with an error drops what is queued and closes the stream at once.
    Delivery is at most once: envelopes still queued, or in a frame the
    stream did not finish sending, when the connection fails are lost.

    One task may :meth:`receive` at a time; any number may :meth:`send`.

    Args:
        stream: A byte stream after a successful handshake on it; the
            connection owns it from now on.
        session: What the handshake returned.
        batch_size: Bytes of envelopes the writer puts in one frame at most.
        max_pending: Bytes queued before :meth:`send` waits.
        max_frame: The largest frame sent or accepted.

    Raises:
        ValueError: A size is not a positive whole number, or
            ``batch_size`` exceeds ``max_frame``.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        session: Session,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        for name, value in (
            ("batch_size", batch_size),
            ("max_pending", max_pending),
            ("max_frame", max_frame),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of bytes >= 1, got {value!r}")
        if batch_size > max_frame:
            raise ValueError(f"batch_size ({batch_size}) must not exceed max_frame ({max_frame})")
        if max_frame > 0xFFFF_FFFF:
            raise ValueError(f"max_frame must fit the 32-bit length field, got {max_frame}")
        self._stream = stream
        #: Set when frames can be written synchronously, from the sender's task.
        self._direct = stream if isinstance(stream, (SocketStream, LinkStream)) else None
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._max_frame = max_frame
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closing = False
        #: Why nothing more can be sent (the stream broke, or a frame was refused).
        self._error: BaseException | None = None

        # Sending: filled by send, emptied by the writer.
        self._send_tagger = Tagger(session.send_key)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._queued = 0
        self._written = 0
        self._send_sequence = 0
        self._unyielded_sends = 0
        #: Parked here (not None) while the writer waits for work: nothing is
        #: being written then, so :meth:`write_now` may write.
        self._writer_wakeup: anyio.Event | None = None
        #: The end of a frame :meth:`write_now` could not finish, and how many
        #: envelopes the frame holds: the writer sends it before anything else.
        self._unsent: bytes = b""
        self._unsent_count = 0
        self._room: anyio.Event | None = None
        self._flushed: anyio.Event | None = None
        self._frames_sent = 0
        self._bytes_sent = 0

        # Receiving.
        self._receive_tagger = Tagger(session.receive_key)
        self._buffer = bytearray()
        self._ready: deque[Envelope] = deque()
        self._receive_sequence = 0
        self._receiving = False
        self._unyielded_receives = 0
        self._end_of_stream = False
        #: The frame check that failed, if one did.
        self._failure: Exception | None = None
        self._frames_received = 0
        self._envelopes_received = 0
        self._bytes_received = 0
        self._authentication_failures = 0

    # -- lifetime -------------------------------------------------------------

    async def __aenter__(self) -> WireConnection:
        if self._task_group is not None:
            raise RuntimeError("a WireConnection can be entered only once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._write_loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._task_group is not None, "not entered"
        self._closing = True
        if exc_type is None:
            self._wake_writer()  # it sends what is queued, then returns
        else:
            self._task_group.cancel_scope.cancel()
        try:
            # The body's exception is not the writer's: it goes on as it is,
            # not wrapped in the task group's exception group.
            await self._task_group.__aexit__(None, None, None)
        finally:
            self._wake_all()
            await anyio.aclose_forcefully(self._stream)

    @property
    def stream(self) -> anyio.abc.ByteStream:
        """The byte stream under the connection."""
        return self._stream

    def input_waiting(self) -> bool:
        """Whether bytes from the peer wait to be read or decoded: a peer
        that sent them is alive, however long this side took to look."""
        if self._ready or self._buffer:
            return True
        waiting = getattr(self._stream, "input_waiting", None)
        if waiting is not None:  # a stream that is not a socket (a cluster's link)
            return bool(waiting())
        sock = self._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        return bool(readable)

    async def close_stream(self) -> None:
        """Close the stream at once (the peer reads the end of the stream);
        what is queued is dropped."""
        await anyio.aclose_forcefully(self._stream)

    def statistics(self) -> WireStatistics:
        """The connection's counts so far."""
        return WireStatistics(
            frames_sent=self._frames_sent,
            envelopes_sent=self._written,
            bytes_sent=self._bytes_sent,
            frames_received=self._frames_received,
            envelopes_received=self._envelopes_received,
            bytes_received=self._bytes_received,
            pending_envelopes=len(self._pending),
            pending_bytes=self._pending_bytes,
            authentication_failures=self._authentication_failures,
        )

    # -- sending ----------------------------------------------------------------

    def _too_large(self, envelope: Envelope, size: int) -> MessageTooLarge:
        # An actor's address is "uid\0node\0path": name it by its path.
        to = envelope.to.rsplit("\0", 1)[-1] or "the other side"
        return MessageTooLarge(
            f"the message to {to!r} is {size:,} bytes encoded, more than a "
            f"frame holds ({self._max_frame:,}): send it in parts"
        )

    def _check_sendable(self) -> None:
        if self._error is not None:
            raise anyio.BrokenResourceError(f"the connection failed: {self._error}") from (
                self._error
            )
        if self._closing:
            raise anyio.ClosedResourceError("the connection is closed")

    def _append(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._queued += 1

    async def send(self, envelope: Envelope) -> None:
        """Queue an envelope for the writer.

        Returns once the envelope is queued, not when it is sent (see
        :meth:`flush`); waits while :attr:`max_pending` bytes are queued.
        Atomic with respect to cancellation: a cancelled send queued
        nothing. The envelope is encoded before anything is queued, so a bad
        one fails here and nothing of it is sent.

        Args:
            envelope: The envelope; its body already pickled.

        Raises:
            MessageTooLarge: The envelope is larger than a frame (a ``ValueError``).
            ValueError: The envelope cannot be encoded.
            TypeError: A header is not a ``str``.
            anyio.ClosedResourceError: The connection was closed.
            anyio.BrokenResourceError: The connection failed (the stream
                broke, or a frame from the peer was refused); the reason is
                its ``__cause__``.
        """
        # The fast path of benchmarks/wire.py's throughput row: send_encoded's
        # lines inline (a call less per message, measured), after encode().
        data = encode(envelope)
        size = len(data)
        if size > self._max_frame:
            raise self._too_large(envelope, size)
        self._unyielded_sends += 1
        if self._unyielded_sends >= YIELD_EVERY:
            self._unyielded_sends = 0
            await anyio.lowlevel.checkpoint()
        if self._pending_bytes >= self._max_pending or self._error is not None or self._closing:
            await self._wait_for_room()
        self._pending.append(data)
        self._pending_bytes += size
        self._queued += 1
        wakeup = self._writer_wakeup
        if wakeup is not None:
            self._writer_wakeup = None
            wakeup.set()

    async def send_encoded(self, data: bytes) -> None:
        """:meth:`send` for an envelope already encoded (``_envelope.encode_tell``)."""
        # The fast path of a tell (benchmarks.process's tell row): no call
        # that can be saved, and no checkpoint but one every YIELD_EVERY sends.
        if len(data) > self._max_frame:
            raise MessageTooLarge(
                f"a message of {len(data):,} bytes encoded is more than a frame holds "
                f"({self._max_frame:,}): send it in parts"
            )
        self._unyielded_sends += 1
        if self._unyielded_sends >= YIELD_EVERY:
            self._unyielded_sends = 0
            await anyio.lowlevel.checkpoint()
        if self._pending_bytes >= self._max_pending or self._error is not None or self._closing:
            await self._wait_for_room()
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._queued += 1
        wakeup = self._writer_wakeup
        if wakeup is not None:
            self._writer_wakeup = None
            wakeup.set()

    async def _wait_for_room(self) -> None:
        while True:
            self._check_sendable()
            if self._pending_bytes < self._max_pending:
                return
            self._unyielded_sends = 0
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def send_nowait(self, envelope: Envelope) -> None:
        """Queue an envelope for the writer if there is room now.

        Args:
            envelope: The envelope.

        Raises:
            WouldBlock: :attr:`max_pending` bytes are queued already; nothing
                was queued.
            ValueError: As :meth:`send`.
            TypeError: As :meth:`send`.
            anyio.ClosedResourceError: As :meth:`send`.
            anyio.BrokenResourceError: As :meth:`send`.
        """
        data = encode(envelope)
        if len(data) > self._max_frame:
            raise self._too_large(envelope, len(data))
        self._check_sendable()
        if self._pending_bytes >= self._max_pending:
            raise WouldBlock(
                f"{self._pending_bytes:,} bytes are queued for the writer, the limit is "
                f"{self._max_pending:,}: wait with send()"
            )
        self._append(data)
        self._wake_writer()

    def send_urgent(self, envelope: Envelope) -> None:
        """Queue an envelope even over :attr:`max_pending`: for replies and
        control messages, which must not wait behind a full queue (their
        number is bounded by what the peer asked).

        Raises:
            ValueError: As :meth:`send`.
            TypeError: As :meth:`send`.
            anyio.ClosedResourceError: As :meth:`send`.
            anyio.BrokenResourceError: As :meth:`send`.
        """
        data = encode(envelope)
        if len(data) > self._max_frame:
            raise self._too_large(envelope, len(data))
        self._check_sendable()
        self._append(data)
        self.write_now()

    def send_urgent_encoded(self, data: bytes) -> None:
        """:meth:`send_urgent` for an envelope already encoded
        (``_envelope.encode_reply``)."""
        if len(data) > self._max_frame:
            raise MessageTooLarge(
                f"a reply of {len(data):,} bytes encoded is more than a frame holds "
                f"({self._max_frame:,}): answer with less"
            )
        self._check_sendable()
        self._append(data)
        self.write_now()

    async def send_now(self, envelope: Envelope) -> None:
        """:meth:`send`, then :meth:`write_now`: for an ask, whose sender
        waits for the answer anyway."""
        data = encode(envelope)
        size = len(data)
        if size > self._max_frame:
            raise self._too_large(envelope, size)
        if self._pending_bytes >= self._max_pending or self._error is not None or self._closing:
            await self._wait_for_room()
        self._append(data)
        self.write_now()

    def write_now(self) -> None:
        """Write what is queued from the calling task when the writer is
        idle and the stream allows it (a :class:`~actors._socket.SocketStream`,
        or a cluster link's :class:`~actors._cluster_stream.LinkStream`),
        else wake the writer. Saves an ask or a reply the switch to the
        writer task; a burst of tells is left to the writer, which batches."""
        direct = self._direct
        if direct is None or self._writer_wakeup is None or self._closing:
            self._wake_writer()
            return
        if self._error is not None or not self._pending:
            return
        batch, size = self._next_batch()
        frame = self._frame(batch, size)
        try:
            sent = direct.try_send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
            self._fail(error)
            return
        if sent < len(frame):
            self._unsent, self._unsent_count = frame[sent:], len(batch)
            self._bytes_sent += sent
            self._wake_writer()
            return
        self._wrote(len(batch), len(frame))
        if self._pending:
            self._wake_writer()

    async def flush(self) -> None:
        """Wait until every envelope queued before the call was handed to the stream.

        Handed to the stream, not received: the peer may not have read it
        yet. Cancelling the wait leaves the envelopes queued.

        Raises:
            anyio.ClosedResourceError: The connection was closed first.
            anyio.BrokenResourceError: The connection failed first.
        """
        target = self._queued
        while self._written < target:
            self._check_sendable()
            if self._flushed is None:
                self._flushed = anyio.Event()
            await self._flushed.wait()
        await anyio.lowlevel.checkpoint()

    def _wake_writer(self) -> None:
        wakeup = self._writer_wakeup
        if wakeup is not None:
            self._writer_wakeup = None
            wakeup.set()

    def _wake_all(self) -> None:
        self._wake_writer()
        for name in ("_room", "_flushed"):
            event: anyio.Event | None = getattr(self, name)
            if event is not None:
                setattr(self, name, None)
                event.set()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._pending.clear()
        self._pending_bytes = 0
        self._unsent = b""
        self._wake_all()

    def _next_batch(self) -> tuple[list[bytes], int]:
        pending = self._pending
        if self._pending_bytes <= self._batch_size:
            # All of it: the usual case, taken whole rather than one by one.
            batch, size = pending, self._pending_bytes
            self._pending = []
        else:
            count, size = 1, len(pending[0])
            limit = self._batch_size
            while count < len(pending) and size + len(pending[count]) <= limit:
                size += len(pending[count])
                count += 1
            batch = pending[:count]
            del pending[:count]
        self._pending_bytes -= size
        if self._room is not None and self._pending_bytes < self._max_pending:
            self._room.set()
            self._room = None
        return batch, size

    def _frame(self, batch: list[bytes], size: int) -> bytes:
        payload = batch[0] if len(batch) == 1 else b"".join(batch)
        head = FRAME_HEAD.pack(size, self._send_sequence)
        self._send_sequence += 1
        return b"".join((head, self._send_tagger.tag(head, payload), payload))

    def _wrote(self, envelopes: int, size: int) -> None:
        self._written += envelopes
        self._frames_sent += 1
        self._bytes_sent += size
        flushed = self._flushed
        if flushed is not None:
            self._flushed = None
            flushed.set()

    async def _write_loop(self) -> None:
        """The writer: one frame per batch of queued envelopes, in order."""
        stream = self._stream
        try:
            while self._error is None:
                if self._unsent:
                    unsent, count = self._unsent, self._unsent_count
                    await stream.send(unsent)
                    self._unsent = b""
                    self._wrote(count, len(unsent))
                    continue
                if not self._pending:
                    if self._closing:
                        return
                    self._writer_wakeup = wakeup = anyio.Event()
                    await wakeup.wait()
                    continue
                batch, size = self._next_batch()
                frame = self._frame(batch, size)
                await stream.send(frame)
                self._wrote(len(batch), len(frame))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as error:
            self._fail(error)

    # -- receiving ------------------------------------------------------------

    async def receive(self) -> Envelope:
        """The next envelope from the peer, in the order it was sent.

        Waits for a frame when none is buffered. Atomic with respect to
        cancellation: a cancelled receive took nothing, and the next one
        goes on where it would have.

        Returns:
            The envelope; its body still pickled (it came from the
            authenticated peer: the frame's tag and sequence number passed).

        Raises:
            AuthenticationError: A frame failed its MAC or arrived out of
                sequence (altered, replayed, reordered or dropped on the way):
                the connection is closed and nothing of that frame was decoded.
                Logged once on the ``actors.wire`` logger.
            IncompatiblePeer: An authenticated frame could not be decoded.
            anyio.EndOfStream: The peer closed its side between frames.
            anyio.IncompleteRead: The peer closed in the middle of a frame.
            anyio.BrokenResourceError: The connection failed earlier; the
                reason is its ``__cause__``.
            anyio.BusyResourceError: Another task is receiving.
        """
        ready = self._ready
        if ready:
            self._unyielded_receives += 1
            if self._unyielded_receives < YIELD_EVERY:
                return ready.popleft()
            self._unyielded_receives = 0
            await anyio.lowlevel.checkpoint()
            if ready:
                return ready.popleft()
        if self._receiving:
            raise anyio.BusyResourceError("receiving from")
        self._receiving = True
        try:
            while not ready:
                payload = await self._receive_frame()
                if payload is None:
                    continue  # the stream was poked: ``take`` left envelopes in ready
                try:
                    envelopes = decode_batch(payload)
                except ValueError as error:
                    raise await self._refuse(
                        IncompatiblePeer(f"the peer sent a batch this side cannot read: {error}")
                    ) from error
                self._envelopes_received += len(envelopes)
                ready.extend(envelopes)
        finally:
            self._receiving = False
        self._unyielded_receives = 0
        return ready.popleft()

    def receive_nowait(self) -> Envelope:
        """The next envelope if one is here already, without reading the stream.

        For a loop that routes envelopes: take what the last frame brought
        with plain calls, and await :meth:`receive` only when it runs out.

        Returns:
            The envelope.

        Raises:
            WouldBlock: None is buffered; :meth:`receive` would wait.
        """
        if self._ready:
            return self._ready.popleft()
        raise WouldBlock("no envelope is buffered: wait with receive()")

    def take(self, data: memoryview) -> list[Envelope] | None:
        """The envelopes of ``data`` if it is whole frames that pass their
        checks, and nothing is buffered before it; else None, and nothing
        was taken (:meth:`receive` reads it and says what is wrong).

        For a stream's reader that hands data over in a call
        (``LinkStream.inline``) while :meth:`receive` waits: what the
        caller cannot deliver at once goes back with :meth:`put_back`.
        """
        if self._buffer or self._ready or self._failure is not None or self._end_of_stream:
            return None
        tagger = self._receive_tagger
        sequence = self._receive_sequence
        payloads = []
        offset, total = 0, len(data)
        while offset < total:
            if total - offset < FRAME_PREFIX:
                return None
            size, frame_sequence = FRAME_HEAD.unpack_from(data, offset)
            start = offset + FRAME_PREFIX
            end = start + size
            if size > self._max_frame or end > total or frame_sequence != sequence:
                return None
            if not _genuine(tagger, data, offset, end):
                return None
            payloads.append(bytes(data[start:end]))
            sequence += 1
            offset = end
        try:
            envelopes = [envelope for payload in payloads for envelope in decode_batch(payload)]
        except ValueError:
            return None
        self._frames_received += sequence - self._receive_sequence
        self._receive_sequence = sequence
        self._bytes_received += total
        self._envelopes_received += len(envelopes)
        return envelopes

    def put_back(self, envelopes: list[Envelope]) -> None:
        """Queue envelopes from :meth:`take` for :meth:`receive`, in order
        (the caller pokes the stream so that a waiting receive returns them)."""
        self._ready.extend(envelopes)

    def __aiter__(self) -> WireConnection:
        return self

    async def __anext__(self) -> Envelope:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def _receive_frame(self) -> bytes | None:
        """The next frame's payload, once its tag and sequence number are
        checked; None if the stream returned no bytes (a poked ``LinkStream``)."""
        if self._failure is not None:
            raise anyio.BrokenResourceError(f"the connection failed: {self._failure}") from (
                self._failure
            )
        if self._end_of_stream:
            raise anyio.EndOfStream
        buffer = self._buffer
        while True:
            if len(buffer) >= FRAME_PREFIX:
                size, sequence = FRAME_HEAD.unpack_from(buffer)
                if size > self._max_frame:
                    raise await self._refuse(
                        AuthenticationError(
                            f"a frame claims {size:,} bytes, more than the limit of "
                            f"{self._max_frame:,} (altered on the way?)"
                        )
                    )
                end = FRAME_PREFIX + size
                if len(buffer) >= end:
                    break
                missing = end - len(buffer)
            else:
                missing = FRAME_PREFIX - len(buffer)
            try:
                chunk = await self._stream.receive(min(max(missing, _READ_SIZE), _MAX_READ))
            except anyio.EndOfStream:
                self._end_of_stream = True
                if buffer:
                    raise anyio.IncompleteRead from None
                raise
            if not chunk:
                return None
            buffer += chunk
        with memoryview(buffer) as view:
            genuine = _genuine(self._receive_tagger, view, 0, end)
            payload = bytes(view[FRAME_PREFIX:end]) if genuine else b""
        del buffer[:end]
        if not genuine:
            raise await self._refuse(
                AuthenticationError(
                    f"frame {sequence} failed its MAC check (altered on the way, or not "
                    "sent by the peer)"
                )
            )
        if sequence != self._receive_sequence:
            raise await self._refuse(
                AuthenticationError(
                    f"frame {sequence} arrived where frame {self._receive_sequence} was "
                    "expected (replayed, reordered or dropped on the way)"
                )
            )
        self._receive_sequence += 1
        self._frames_received += 1
        self._bytes_received += end
        return payload

    async def _refuse(self, error: Exception) -> Exception:
        """Close the connection for ``error``, count and log it; return it to raise."""
        self._failure = error
        if isinstance(error, AuthenticationError):
            self._authentication_failures += 1
        logger.error("closing a connection: %s; nothing more from it is read", error)
        self._fail(error)
        await anyio.aclose_forcefully(self._stream)
        return error


def _genuine(tagger: Tagger, data: memoryview, start: int, end: int) -> bool:
    """Whether the whole frame ``data[start:end]`` carries the tag its head
    and payload call for: checked before anything of it is decoded."""
    tag_at = start + FRAME_HEAD.size
    payload_at = tag_at + TAG_SIZE
    expected = tagger.tag(data[start:tag_at], data[payload_at:end])
    return hmac.compare_digest(data[tag_at:payload_at], expected)
