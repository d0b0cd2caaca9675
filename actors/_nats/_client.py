"""A NATS client on anyio streams, for asyncio and trio: the public API
(publish, subscribe, request, flush, drain, close) over the connection and
its tasks in ``_connection``, which say how the connection is kept up.

Semantics, as promised in docs/cluster.md:
- Core NATS is at most once: a message in flight when a connection drops may
  be lost; publishes made while disconnected are buffered (up to
  ``pending_size`` bytes, then `OutboundBufferFull`) and sent after the
  resubscriptions on the next connection.
- A request in flight when the connection drops raises `NatsConnectionLost`
  at once (it may or may not have reached a responder); one made while
  disconnected waits (within its timeout) for the reconnection.
- A slow subscription gets backpressure, never drops (see `Subscription`).

The invariants are in ``_connection``; this module keeps them: it adds to
`_subs`, `_requests`, `_pending` and `_pongs` only as they say.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import anyio
import anyio.abc

from .._signal import Signal
from ._connection import _LOST_ERRORS, Connection, _sub_line, _Waiter
from ._errors import (
    AuthorizationError,
    ConnectionClosed,
    NatsTimeout,
    NoResponders,
    NoServers,
    NotSupported,
    OutboundBufferFull,
    PayloadTooLarge,
    ProtocolError,
    ServerError,
)
from ._protocol import CRLF, NO_RESPONDERS, PING_LINE, Msg, check_subject, encode_headers
from ._servers import NkeySigner, Security, parse_server
from ._subscription import Subscription

DEFAULT_URL: Final = "nats://127.0.0.1:4222"
#: Above this many buffered bytes a connected publisher waits for the flusher.
FLUSH_SIZE: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """Counters of a `Client` (from `Client.statistics`)."""

    in_msgs: int
    out_msgs: int
    reconnects: int
    pending_bytes: int
    subscriptions: int
    late_replies: int


class Client(Connection):
    """A NATS connection that reconnects by itself; an async context manager.

    Args:
        servers: A URL or a list of them (``nats://[user:pass@]host:port``);
            tried in order, and servers the cluster announces (INFO
            ``connect_urls``) are added.
        user: User name, for servers whose URL has none.
        password: Password for ``user``.
        token: Authentication token, for servers whose URL has none.
        nkey_seed: An nkey user seed (``"SU..."``): the client signs the
            server's nonce with it (needs the ``nkeys`` extra).
        nkey_seed_file: A file holding the seed instead (as ``nk -gen user``
            writes it).
        user_credentials: A JWT credentials file: not supported
            (`NotSupported`); use an nkey seed or a user and password.
        tls: The SSL context for encrypted connections (CA, client
            certificate); given, every connection is encrypted. Without it,
            a ``tls://`` URL or a server that requires TLS gets
            ``ssl.create_default_context()`` (the system's CAs).
        tls_hostname: The name to check the server's certificate against
            (default: the URL's host).
        tls_handshake_first: Start TLS before the server's INFO (a server
            configured with ``handshake_first``).
        name: The connection name the server shows.
        connect_timeout: Seconds for one attempt (TCP, INFO, CONNECT, PONG).
        ping_interval: Seconds between the client's PINGs.
        max_outstanding_pings: PINGs left unanswered before the connection is
            declared stale and dropped (time to detect: about
            ``ping_interval * (max_outstanding_pings + 1)``).
        reconnect: Whether to reconnect after losing the connection.
        max_reconnect_attempts: Passes over the server list before giving up
            (``None``: never give up).
        reconnect_wait: The first pause after a failed pass; it doubles up to
            ``reconnect_wait_max``, plus up to ``reconnect_jitter`` of itself.
        reconnect_wait_max: The longest pause between passes.
        reconnect_jitter: Random extra pause, as a fraction of the pause.
        pending_size: Bytes buffered while disconnected before a publish
            raises `OutboundBufferFull`.
        pending_msgs: Default buffer size of a subscription, in messages.
        on_disconnected: Called with the reason when the connection drops.
        on_reconnected: Called with the server URL after a reconnection.
        on_closed: Called with the reason (or ``None``) when the client closes.
        on_error: Called with a `ServerError` the server sent that did not
            close the connection (a permissions violation); logged if unset.

    The callbacks run in the client's task; one that raises fails the client,
    and the error comes out of ``async with``.

    Example:
        >>> async with Client("nats://127.0.0.1:4222") as nc:  # doctest: +SKIP
        ...     await nc.publish("greet", b"hello")
    """

    def __init__(
        self,
        servers: str | list[str] = DEFAULT_URL,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        nkey_seed: str | bytes | None = None,
        nkey_seed_file: str | os.PathLike[str] | None = None,
        user_credentials: str | os.PathLike[str] | None = None,
        tls: ssl.SSLContext | None = None,
        tls_hostname: str | None = None,
        tls_handshake_first: bool = False,
        name: str | None = None,
        connect_timeout: float = 2.0,
        ping_interval: float = 120.0,
        max_outstanding_pings: int = 2,
        reconnect: bool = True,
        max_reconnect_attempts: int | None = 60,
        reconnect_wait: float = 0.05,
        reconnect_wait_max: float = 2.0,
        reconnect_jitter: float = 0.2,
        pending_size: int = 8 * 1024 * 1024,
        pending_msgs: int = 1024,
        on_disconnected: Callable[[BaseException | None], object] | None = None,
        on_reconnected: Callable[[str], object] | None = None,
        on_closed: Callable[[BaseException | None], object] | None = None,
        on_error: Callable[[ServerError], object] | None = None,
    ) -> None:
        urls = [servers] if isinstance(servers, str) else list(servers)
        if not urls:
            raise ValueError("Client needs at least one server URL")
        if user_credentials is not None:
            raise NotSupported(
                "JWT credentials files (user_credentials) are not supported by this "
                "NATS client: use nkey_seed/nkey_seed_file, a user and password, or a token"
            )
        if nkey_seed is not None and nkey_seed_file is not None:
            raise ValueError("give nkey_seed or nkey_seed_file, not both")
        nkey: NkeySigner | None = None
        if nkey_seed is not None:
            nkey = NkeySigner(nkey_seed)
        elif nkey_seed_file is not None:
            nkey = NkeySigner.from_file(nkey_seed_file)
        self._security = Security(nkey, tls, tls_hostname, tls_handshake_first)
        self._pool = [parse_server(url) for url in urls]
        self._tls = any(server.tls for server in self._pool)
        for server in self._pool:
            if server.user is None and server.token is None:
                server.user, server.password, server.token = user, password, token
        self._default_auth = (user, password, token)
        first = self._pool[0]
        if user is None and token is None:
            self._default_auth = (first.user, first.password, first.token)
        self._name = name
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._max_outstanding_pings = max_outstanding_pings
        self._reconnect = reconnect
        self._max_reconnect_attempts = max_reconnect_attempts
        self._reconnect_wait = reconnect_wait
        self._reconnect_wait_max = reconnect_wait_max
        self._reconnect_jitter = reconnect_jitter
        self._pending_size = pending_size
        self._pending_msgs = pending_msgs
        self._on_disconnected = on_disconnected
        self._on_reconnected = on_reconnected
        self._on_closed = on_closed
        self._on_error = on_error

        self._status = "new"
        self._closed_reason = None
        self._stream = None
        self._server = None
        self._info = {}
        self._max_payload = 1024 * 1024
        # Subjects already checked, as bytes (bounded): most publishers reuse a few.
        self._subjects: dict[str, bytes] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._run_scope = anyio.CancelScope()
        self._conn_scope = None
        self._lost_reason = None
        self._connected = anyio.Event()

        self._pending = bytearray()
        self._pings_in_pending = 0
        self._sending = False
        self._wake = anyio.Event()
        self._room = Signal()
        self._pongs = deque()

        self._sids = itertools.count(1)
        self._subs = {}
        self._blocked = None

        self._inbox_sid = 0
        self._inbox_prefix = ""
        self._tokens = itertools.count(1)
        self._requests = {}

        self._in_msgs = 0
        self._out_msgs = 0
        self._reconnects = 0
        self._late_replies = 0
        self._pings_answered = 0
        self._reconnect_listeners = []

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        if self._status != "new":
            raise RuntimeError("a Client can be entered once; make a new one")
        self._status = "connecting"
        errors: dict[str, BaseException] = {}
        for server in list(self._pool):
            try:
                stream, parser = await self._connect_to(server)
                break
            except (OSError, TimeoutError, ServerError, ProtocolError) as error:
                errors[server.url] = error
                if isinstance(error, AuthorizationError):
                    self._status = "closed"
                    raise
        else:
            self._status = "closed"
            raise NoServers(
                "could not connect to any NATS server: "
                + "; ".join(f"{url}: {error!r}" for url, error in errors.items()),
                errors,
            )
        self._attach(stream)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run, stream, parser)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.close()
        assert self._tg is not None
        return await self._tg.__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Close: send what is buffered (up to a second while connected),
        then drop the connection; subscriptions end, waiting requests and
        flushes raise `ConnectionClosed`. Idempotent; shielded from
        cancellation (it is bounded)."""
        if self._status in ("closed", "new"):
            return
        with anyio.CancelScope(shield=True):
            stream = self._stream
            if stream is not None and self._pending:
                data, self._pending = bytes(self._pending), bytearray()
                with anyio.move_on_after(1.0), contextlib.suppress(*_LOST_ERRORS):
                    await stream.send(data)
            self._shutdown(None)
            if stream is not None:
                await stream.aclose()

    async def drain(self, timeout: float | None = 30.0) -> None:
        """Unsubscribe everything, wait (a PING round trip) until every
        message sent before is in its subscription's buffer, end the
        subscriptions (their iterators finish the buffer), then `close`.

        Cancellation or a timeout leaves the client unsubscribed and closed.

        Raises:
            NatsTimeout: The round trip took longer than ``timeout``.
        """
        try:
            subs = list(self._subs.values())
            if self._stream is not None:
                for sub in subs:
                    self._write(b"UNSUB %d\r\n" % sub.sid)
            await self.flush(timeout)
        finally:
            await self.close()

    # -- state -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether a connection is up now."""
        return self._stream is not None

    @property
    def is_closed(self) -> bool:
        """Whether the client is closed (by `close`, or after giving up reconnecting)."""
        return self._status == "closed"

    @property
    def status(self) -> str:
        """``"connected"``, ``"reconnecting"``, ``"closed"`` (or ``"new"``, ``"connecting"``)."""
        return self._status

    @property
    def connected_url(self) -> str | None:
        """The URL of the server connected to, or ``None``."""
        return self._server.url if self._stream is not None and self._server else None

    @property
    def server_info(self) -> dict[str, Any]:
        """The current (or last) server's INFO, with updates merged in."""
        return dict(self._info)

    @property
    def servers(self) -> list[str]:
        """The URLs of the known servers, given and discovered."""
        return [server.url for server in self._pool]

    @property
    def max_payload(self) -> int:
        """The largest payload (headers included) the server accepts."""
        return self._max_payload

    def statistics(self) -> ClientStatistics:
        """Counters since the client was made."""
        return ClientStatistics(
            self._in_msgs,
            self._out_msgs,
            self._reconnects,
            len(self._pending),
            len(self._subs),
            self._late_replies,
        )

    def add_reconnect_listener(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener()`` after each reconnection, once the
        subscriptions are made again (before ``on_reconnected``), in the
        client's task: it must not block or raise. For layers that keep
        server-side state, such as a key-value watcher's consumer.

        Returns:
            A function that removes the listener (idempotent).
        """
        self._reconnect_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._reconnect_listeners.remove(listener)

        return remove

    def new_inbox(self) -> str:
        """A unique subject for replies (``_INBOX.<random>``)."""
        return "_INBOX." + secrets.token_hex(11)

    async def _wait_room(self, size: int) -> None:
        while True:
            if self._status == "closed":
                raise ConnectionClosed("the NATS client is closed") from self._closed_reason
            pending = len(self._pending)
            if self._stream is not None:
                if pending < FLUSH_SIZE:
                    return
            elif pending + size <= self._pending_size or not pending:
                return
            elif not self._reconnect:
                raise ConnectionClosed("the NATS client is closed")
            else:
                raise OutboundBufferFull(
                    f"disconnected, and {pending} bytes are buffered already "
                    f"(pending_size={self._pending_size}): this message was not sent"
                )
            await self._room.wait()

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Publish ``payload`` on ``subject`` (with ``headers`` and a ``reply`` subject).

        Queued for the flusher, which batches: `flush` waits until the server
        has it. Waits only when the outbound buffer is full (connected:
        backpressure from the socket). Cancellation while waiting sends nothing.

        Raises:
            ValueError: A bad subject, reply subject or header.
            PayloadTooLarge: Bigger than the server's ``max_payload``.
            OutboundBufferFull: Disconnected, and the buffer is full.
            ConnectionClosed: The client is closed.
        """
        subject_b = self._subjects.get(subject) or self._checked(subject)
        reply_b = check_subject(reply, "reply subject") + b" " if reply else b""
        if headers:
            block = encode_headers(headers)
            total = len(block) + len(payload)
            line = b"HPUB %s %s%d %d\r\n" % (subject_b, reply_b, len(block), total)
        else:
            block = b""
            total = len(payload)
            line = b"PUB %s %s%d\r\n" % (subject_b, reply_b, total)
        if total > self._max_payload:
            raise self._too_large(total, subject)
        if self._stream is None or len(self._pending) >= FLUSH_SIZE:
            await self._wait_room(len(line) + total + 2)
        self._queue(line, block, payload)
        self._wake.set()

    def _checked(self, subject: str) -> bytes:
        # A subject published to for the first time: checked, and remembered
        # (a bounded cache: publish, try_publish).
        subject_b = check_subject(subject)
        if len(self._subjects) < 1024:
            self._subjects[subject] = subject_b
        return subject_b

    def _too_large(self, total: int, subject: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"a {total}-byte message on {subject!r} exceeds the server's "
            f"max_payload of {self.max_payload} bytes"
        )

    def _queue(self, line: bytes, block: bytes, payload: bytes) -> None:
        # A message into the outbound buffer, once there is room; the caller
        # wakes the flusher, or writes it at once (try_publish).
        pending = self._pending
        pending += line
        if block:
            pending += block
        pending += payload
        pending += CRLF
        self._out_msgs += 1

    async def _publish_reply(self, reply: str, payload: bytes, answer_to: str = "") -> None:
        """`publish` to a reply subject the server gave (a JetStream
        message's, to settle it): it came in a ``MSG`` line, which splits on
        whitespace, so it is not checked again; nor is ``answer_to``, which
        must be an inbox of ours (`new_inbox`, perhaps with a token added)."""
        total = len(payload)
        if total > self._max_payload:
            raise self._too_large(total, reply)
        if answer_to:
            line = b"PUB %s %s %d\r\n" % (reply.encode(), answer_to.encode(), total)
        else:
            line = b"PUB %s %d\r\n" % (reply.encode(), total)
        if self._stream is None or len(self._pending) >= FLUSH_SIZE:
            await self._wait_room(len(line) + total + 2)
        self._queue(line, b"", payload)
        self._wake.set()

    def try_publish(self, subject: str, payload: bytes) -> bool:
        """`publish` without waiting, handing the bytes to the socket at once.

        For the latency path of a cluster's links (an ask, its reply): saves
        the switch to the flusher. Queues nothing and returns False when
        `publish` would wait (disconnected, or the outbound buffer full);
        what the kernel does not take at once is left for the flusher.

        Raises:
            ValueError: A bad subject.
            PayloadTooLarge: As `publish`.
        """
        if self._stream is None or len(self._pending) >= FLUSH_SIZE:
            return False
        subject_b = self._subjects.get(subject) or self._checked(subject)
        total = len(payload)
        if total > self._max_payload:
            raise self._too_large(total, subject)
        self._queue(b"PUB %s %d\r\n" % (subject_b, total), b"", payload)
        self._write_now()
        if self._pending:
            self._wake.set()
        return True

    async def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until the server has everything sent before (a PING round
        trip); while disconnected, first wait for the reconnection.

        Cancellation leaves nothing behind (the PONG is still consumed).

        Raises:
            NatsTimeout: No PONG within ``timeout``.
            NatsConnectionLost: The connection dropped before the PONG.
            ConnectionClosed: The client is closed.
        """
        with anyio.move_on_after(timeout):
            while True:
                if self._status == "closed":
                    raise ConnectionClosed("the NATS client is closed") from self._closed_reason
                if self._stream is None:
                    await self._connected.wait()
                    continue
                waiter = _Waiter()
                self._pongs.append(waiter)
                self._write(PING_LINE)
                self._pings_in_pending += 1
                await waiter.event.wait()
                if waiter.error is not None:
                    raise waiter.error
                return
        raise NatsTimeout(f"no PONG from the NATS server within {timeout} s")

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self, subject: str, queue: str = "", *, pending_msgs: int | None = None
    ) -> Subscription:
        """Subscribe to ``subject`` (wildcards ``*`` and ``>``), in queue group
        ``queue`` if given (each message goes to one member of the group).

        The server has the SUB after the next `flush`. Not a checkpoint.

        Args:
            subject: The subject or pattern.
            queue: A queue group name, or ``""``.
            pending_msgs: Buffer size in messages (default: the client's
                ``pending_msgs``; 0 is unbounded). A full buffer stops the
                client reading: backpressure, never drops.

        Raises:
            ValueError: A bad subject or queue name.
            ConnectionClosed: The client is closed.
        """
        check_subject(subject)
        if queue:
            check_subject(queue, "queue group")
        if self._status == "closed":
            raise ConnectionClosed("the NATS client is closed") from self._closed_reason
        size = self._pending_msgs if pending_msgs is None else pending_msgs
        sub = Subscription(self, next(self._sids), subject, queue, size)
        self._subs[sub.sid] = sub
        if self._stream is not None:
            self._write(_sub_line(sub))
        return sub

    async def _unsubscribe(self, sub: Subscription, max: int | None) -> None:
        if self._subs.get(sub.sid) is not sub:
            return
        if max is not None and max > sub.delivered:
            sub.max = max
            if self._stream is not None:
                self._write(b"UNSUB %d %d\r\n" % (sub.sid, max - sub.delivered))
            return
        del self._subs[sub.sid]
        sub._end()
        self._cancel_blocked(sub)
        if self._stream is not None:
            self._write(b"UNSUB %d\r\n" % sub.sid)

    async def _drain_subscription(self, sub: Subscription, timeout: float | None) -> None:
        if self._subs.get(sub.sid) is not sub:
            return
        try:
            if self._stream is not None:
                self._write(b"UNSUB %d\r\n" % sub.sid)
            await self.flush(timeout)
        finally:
            if self._subs.get(sub.sid) is sub:
                del self._subs[sub.sid]
                sub._end()

    # -- request/reply -----------------------------------------------------------------

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        timeout: float | None = 1.0,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        """Publish with a reply subject and wait for the first reply.

        Every request shares one inbox subscription (``_INBOX.<random>.*``);
        each has its own token. A late reply finds no slot and is counted
        (``statistics().late_replies``). Cancellation drops the slot.

        Raises:
            NoResponders: Nobody is subscribed to ``subject`` (at once).
            NatsTimeout: No reply within ``timeout``.
            NatsConnectionLost: The connection dropped while waiting.
            ConnectionClosed: The client is closed.
            ValueError, PayloadTooLarge, OutboundBufferFull: As `publish`.
        """
        if not self._inbox_sid:
            self._inbox_prefix = self.new_inbox() + "."
            self._inbox_sid = next(self._sids)
            if self._stream is not None:
                self._write(b"SUB %s* %d\r\n" % (self._inbox_prefix.encode(), self._inbox_sid))
        token = format(next(self._tokens), "x")
        slot = _Waiter()
        self._requests[token] = slot
        try:
            with anyio.move_on_after(timeout):
                await self.publish(
                    subject, payload, reply=self._inbox_prefix + token, headers=headers
                )
                self._write_now()
                await slot.event.wait()
        finally:
            self._requests.pop(token, None)
        if slot.error is not None:
            raise slot.error
        msg = slot.msg
        if msg is None:
            raise NatsTimeout(f"no reply to the request on {subject!r} within {timeout} s")
        if msg.status == NO_RESPONDERS and not msg.data:
            raise NoResponders(subject)
        return msg


def connect(servers: str | list[str] = DEFAULT_URL, **options: Any) -> Client:
    """A `Client` (use it as ``async with connect(...) as nc``); the options
    are `Client`'s."""
    return Client(servers, **options)
