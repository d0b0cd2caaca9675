"""The connection side of the NATS client: one connection at a time and the
three tasks on it, the reader (parses, answers PINGs, hands messages to
subscriptions and replies to requests), the flusher (writes the outbound
buffer in one send, so publishes batch) and the pinger (stale connection
detection); and, when the connection drops, the reconnection (server
rotation, backoff with jitter), then the resubscriptions, then what was
buffered meanwhile. `Client` (in ``_client``) adds the public API on top.

# Invariants:
# - `_stream is not None` exactly while connected (status "connected"); the
#   three connection tasks run in `_conn_scope` and end together.
# - `_pending` holds bytes not yet handed to the socket, in order; it holds
#   `_pings_in_pending` PINGs, whose waiters are the last ones in `_pongs`.
#   Bytes go to the socket from the flusher, or from `_write_now` while the
#   flusher is not in a send (`_sending`): in order either way.
#   Every other waiter in `_pongs` belongs to a PING already sent on the
#   current connection, in order, so each PONG pops the oldest.
# - `_subs` holds exactly the active subscriptions; the server has a SUB for
#   each (sent on this connection, or queued in `_pending` ahead of publishes).
# - `_requests` holds the reply slot of every request waiting for a reply; a
#   slot leaves it when answered, failed, timed out or cancelled.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import anyio
import anyio.abc

from .._signal import Signal
from .._socket import SocketStream
from ._errors import (
    ConnectionClosed,
    NatsConnectionLost,
    NatsTimeout,
    NoServers,
    NotSupported,
    ProtocolError,
    ServerError,
)
from ._protocol import ERR, INFO, MSG, PING, PING_LINE, PONG, PONG_LINE, Msg, Parser
from ._servers import Security, Server, handshake, parse_server, server_error
from ._subscription import Subscription

logger = logging.getLogger("actors.nats")

_LOST_ERRORS: Final = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


class _Waiter:
    """A PONG or a reply awaited by one task."""

    __slots__ = ("error", "event", "msg")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.msg: Msg | None = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.event.set()


class Connection:
    """The connection state and its tasks; `Client` sets the state up (its
    ``__init__``) and is the only subclass."""

    # Settings.
    _pool: list[Server]
    _default_auth: tuple[str | None, str | None, str | None]
    _security: Security
    _tls: bool
    _name: str | None
    _connect_timeout: float
    _ping_interval: float
    _max_outstanding_pings: int
    _reconnect: bool
    _max_reconnect_attempts: int | None
    _reconnect_wait: float
    _reconnect_wait_max: float
    _reconnect_jitter: float
    _on_disconnected: Callable[[BaseException | None], object] | None
    _on_reconnected: Callable[[str], object] | None
    _on_closed: Callable[[BaseException | None], object] | None
    _on_error: Callable[[ServerError], object] | None
    _reconnect_listeners: list[Callable[[], object]]
    # The connection.
    _status: str
    _closed_reason: BaseException | None
    _stream: anyio.abc.ByteStream | None
    _server: Server | None
    _info: dict[str, Any]
    _max_payload: int
    _run_scope: anyio.CancelScope
    _conn_scope: anyio.CancelScope | None
    _lost_reason: BaseException | None
    _connected: anyio.Event
    # Writing.
    _pending: bytearray
    _pings_in_pending: int
    _sending: bool
    _wake: anyio.Event
    _room: Signal
    _pongs: deque[_Waiter | None]
    # Subscriptions and requests.
    _subs: dict[int, Subscription]
    _blocked: tuple[Subscription, anyio.CancelScope] | None
    _inbox_sid: int
    _inbox_prefix: str
    _requests: dict[str, _Waiter]
    # Counters.
    _in_msgs: int
    _late_replies: int
    _reconnects: int
    _pings_answered: int

    def _shutdown(self, reason: BaseException | None) -> None:
        if self._status == "closed":
            return
        self._status = "closed"
        self._closed_reason = reason
        self._stream = None
        error = ConnectionClosed("the NATS client is closed")
        if reason is not None:
            error.__cause__ = reason
        for waiter in self._pongs:
            if waiter is not None:
                waiter.fail(error)
        self._pongs.clear()
        for slot in self._requests.values():
            slot.fail(error)
        self._requests.clear()
        for sub in list(self._subs.values()):
            sub._end()
        self._subs.clear()
        self._cancel_blocked(None)
        self._connected.set()
        self._signal_room()
        self._run_scope.cancel()
        if self._on_closed is not None:
            self._on_closed(reason)

    async def _connect_to(self, server: Server) -> tuple[anyio.abc.ByteStream, Parser]:
        """A connected, authenticated stream to ``server`` (as `handshake`),
        now the current server."""
        stream, parser, info = await handshake(
            server, name=self._name, timeout=self._connect_timeout, security=self._security
        )
        self._info = info
        self._max_payload = int(info.get("max_payload", self._max_payload))
        self._server = server
        self._discover(info)
        return stream, parser

    def _discover(self, info: dict[str, Any]) -> None:
        known = {(server.host, server.port) for server in self._pool}
        for url in info.get("connect_urls") or ():
            try:
                server = parse_server(url)
            except (ValueError, NotSupported):
                continue
            if (server.host, server.port) not in known:
                server.discovered = True
                server.tls = self._tls
                server.user, server.password, server.token = self._default_auth
                self._pool.append(server)
                known.add((server.host, server.port))

    def _attach(self, stream: anyio.abc.ByteStream) -> None:
        """Make ``stream`` the connection: queue the resubscriptions ahead of
        what was buffered."""
        subs = bytearray()
        if self._inbox_sid:
            subs += b"SUB %s* %d\r\n" % (self._inbox_prefix.encode(), self._inbox_sid)
        for sub in self._subs.values():
            subs += _sub_line(sub)
            if sub.max is not None:
                subs += b"UNSUB %d %d\r\n" % (sub.sid, sub.max - sub.delivered)
        self._pending[:0] = subs
        self._stream = stream
        self._status = "connected"
        self._connected.set()
        self._wake.set()

    async def _run(self, stream: anyio.abc.ByteStream, parser: Parser) -> None:
        # Its own scope: closing must not cancel the body of `async with Client()`.
        with self._run_scope:
            await self._connection_loop(stream, parser)

    async def _connection_loop(self, stream: anyio.abc.ByteStream, parser: Parser) -> None:
        while True:
            self._lost_reason = None
            async with anyio.create_task_group() as tg:
                self._conn_scope = tg.cancel_scope
                tg.start_soon(self._read_loop, stream, parser)
                tg.start_soon(self._flush_loop, stream)
                tg.start_soon(self._ping_loop)
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            reason = self._lost_reason
            self._lost()
            if self._on_disconnected is not None:
                self._on_disconnected(reason)
            if not self._reconnect:
                self._shutdown(reason)
                return
            try:
                stream, parser = await self._reconnect_loop()
            except NoServers as error:
                self._shutdown(error)
                return
            self._attach(stream)
            self._reconnects += 1
            for listener in list(self._reconnect_listeners):
                listener()
            if self._on_reconnected is not None:
                assert self._server is not None
                self._on_reconnected(self._server.url)

    def _lose(self, reason: BaseException) -> None:
        """End the connection tasks (from one of them): the connection is lost."""
        if self._lost_reason is None:
            self._lost_reason = reason
        assert self._conn_scope is not None
        self._conn_scope.cancel()

    def _lost(self) -> None:
        self._stream = None
        self._status = "reconnecting"
        self._connected = anyio.Event()
        error = NatsConnectionLost(
            f"the connection to {self._server.url if self._server else 'NATS'} was lost"
        )
        error.__cause__ = self._lost_reason
        # PINGs still in `_pending` will go out on the next connection; the
        # others went out on this one and will never be answered.
        keep = self._pings_in_pending
        sent = len(self._pongs) - keep
        for _ in range(sent):
            waiter = self._pongs.popleft()
            if waiter is not None:
                waiter.fail(error)
        for slot in self._requests.values():
            slot.fail(error)
        self._requests.clear()
        self._signal_room()

    async def _reconnect_loop(self) -> tuple[anyio.abc.ByteStream, Parser]:
        lost = self._server
        errors: dict[str, BaseException] = {}
        passes = 0
        while True:
            # The others first, the server just lost last.
            order = [s for s in self._pool if s is not lost] + [s for s in self._pool if s is lost]
            for server in order:
                try:
                    return await self._connect_to(server)
                except (OSError, TimeoutError, ServerError, ProtocolError, NotSupported) as error:
                    errors[server.url] = error
            passes += 1
            if self._max_reconnect_attempts is not None and passes >= self._max_reconnect_attempts:
                raise NoServers(
                    f"gave up reconnecting after {passes} passes over {len(order)} servers",
                    errors,
                )
            pause = min(self._reconnect_wait_max, self._reconnect_wait * 2 ** (passes - 1))
            await anyio.sleep(pause * (1 + self._reconnect_jitter * random.random()))

    async def _read_loop(self, stream: anyio.abc.ByteStream, parser: Parser) -> None:
        subs = self._subs
        try:
            while True:
                for op in parser.feed(await stream.receive(65536)):
                    kind = op[0]
                    if kind == MSG:
                        msg: Msg = op[1]
                        self._in_msgs += 1
                        if msg.sid == self._inbox_sid:
                            self._reply(msg)
                            continue
                        sub = subs.get(msg.sid)
                        if sub is None:
                            continue  # unsubscribed while this was on its way
                        sub.delivered += 1
                        if sub.max is not None and sub.delivered >= sub.max:
                            del subs[sub.sid]
                            if not sub._put_nowait(msg):
                                await self._deliver(sub, msg)
                            sub._end()
                            continue
                        if not sub._put_nowait(msg):
                            await self._deliver(sub, msg)
                    elif kind == PING:
                        self._write(PONG_LINE)
                        self._pings_answered += 1
                    elif kind == PONG:
                        if self._pongs:
                            waiter = self._pongs.popleft()
                            if waiter is not None:
                                waiter.event.set()
                    elif kind == ERR:
                        self._server_error(op[1])
                    elif kind == INFO:
                        self._info.update(op[1])
                        self._discover(op[1])
        except (*_LOST_ERRORS, ProtocolError) as error:
            self._lose(error)

    async def _deliver(self, sub: Subscription, msg: Msg) -> None:
        """Put ``msg`` in ``sub``'s buffer, waiting for room: backpressure."""
        with anyio.CancelScope() as scope:
            self._blocked = (sub, scope)
            try:
                await sub._put(msg)
            finally:
                self._blocked = None

    def _cancel_blocked(self, sub: Subscription | None) -> None:
        """Give up a delivery waiting for room in ``sub`` (any, if ``None``):
        the subscription has ended."""
        if self._blocked is not None and (sub is None or self._blocked[0] is sub):
            self._blocked[1].cancel()

    def _server_error(self, text: str) -> None:
        error = server_error(text)
        if self._on_error is not None:
            self._on_error(error)
        else:
            logger.warning("%s (from %s)", error, self._server.url if self._server else None)
        if self._lost_reason is None and not text.lower().startswith("permissions violation"):
            # The server closes the connection after any other -ERR: keep the reason.
            self._lost_reason = error

    async def _flush_loop(self, stream: anyio.abc.ByteStream) -> None:
        try:
            while True:
                if not self._pending:
                    await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                self._sending = True
                try:
                    data = bytes(self._pending)
                    self._pending = bytearray()
                    self._pings_in_pending = 0
                    self._signal_room()
                    await stream.send(data)
                finally:
                    self._sending = False
        except _LOST_ERRORS as error:
            self._lose(error)

    async def _ping_loop(self) -> None:
        while True:
            await anyio.sleep(self._ping_interval)
            if self._blocked is not None:
                continue  # not reading: the PONG may be waiting behind a full subscription
            if len(self._pongs) > self._max_outstanding_pings:
                self._lose(
                    NatsTimeout(
                        f"stale connection: {len(self._pongs)} PINGs unanswered "
                        f"after {self._ping_interval} s each"
                    )
                )
                return
            self._pongs.append(None)
            self._write(PING_LINE)
            self._pings_in_pending += 1

    # -- writing -----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        self._pending += data
        self._wake.set()

    def _write_now(self) -> None:
        """Hand `_pending` to the socket from the caller's task, when that
        can be done at once: connected over a `SocketStream`, the flusher
        not in a send (so every byte before is in the kernel already), no
        PING waiting in it. What the kernel does not take stays for the
        flusher. Saves the switch to the flusher on the latency path
        (`Client.request`; ``benchmarks.nats``, request row)."""
        stream = self._stream
        pending = self._pending
        if self._sending or self._pings_in_pending or not pending:
            return
        if not isinstance(stream, SocketStream):
            return
        try:
            sent = stream.try_send(memoryview(pending))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # the reader or the flusher finds out, and reconnects
        if sent:
            del pending[:sent]
            self._signal_room()

    def _signal_room(self) -> None:
        room, self._room = self._room, Signal()  # made per write: cheaper than an anyio.Event
        room.set()

    def _reply(self, msg: Msg) -> None:
        slot = self._requests.pop(msg.subject[len(self._inbox_prefix) :], None)
        if slot is None:
            self._late_replies += 1  # timed out, cancelled or failed already
            return
        slot.msg = msg
        slot.event.set()


def _sub_line(sub: Subscription) -> bytes:
    if sub.queue:
        return b"SUB %s %s %d\r\n" % (sub.subject.encode(), sub.queue.encode(), sub.sid)
    return b"SUB %s %d\r\n" % (sub.subject.encode(), sub.sid)
