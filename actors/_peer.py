"""Peers: two actor systems talking over one authenticated connection.

A :class:`Peer` is this system's end of a :class:`~actors._wire.WireConnection`
to another system: a child process, the parent of this child process, or a
system joined over TCP. It carries tells, asks and their replies, cancels,
watches and the other side's control messages, and turns the connection's
end into failures: pending asks raise :class:`ConnectionLost`, watchers get
``Terminated(ref, ConnectionLost(...))``, and the local stand-ins of actors
that lived there fail.

Actors are addressed by ``uid NUL node NUL path``
(:func:`actors._remote.address`); an ``actors._remote.RemoteRef`` is an
``ActorRef`` whose messages go through a peer. The
layers above add control messages (``handlers``), and services the other
side tells or asks like an actor, with the ask's backpressure and
cancellation (``services``, at :func:`service_address`): the topics and
names one system keeps for another (``actors._remote_topics``,
``actors._remote_names``), a TCP peer's registry lookups (``actors._tcp``).

Delivery never blocks the reader on one full mailbox, or a reply behind it
could never be read (an actor that asks while its mailbox is full would wait
forever): a message for a full mailbox joins that actor's backlog, drained
in order by a task of the peer, and the reader stops reading only when the
backlogs together hold :data:`MAX_BACKLOG` messages (backpressure on the
sender through the connection).

On a cluster link, the NATS client's reader delivers a frame itself while
the peer's reader waits (``_take_inline``): the same fast paths, with no
switch of task; the first envelope that needs an await, and the rest, go
back to the peer's reader in order.

# Invariants:
# - Every ask in ``_pending`` is answered: by its reply, or with
#   ``ConnectionLost`` when the connection ends (``_lose``).
# - Every ask in ``_serving`` is answered over the wire by whoever answers
#   it locally (``WireAsk.expire``), or dropped when the connection ends.
# - Messages to one actor are delivered in arrival order: while its backlog
#   is not empty, new ones join the backlog.
# - After ``_lose`` nothing is sent and every waiter has been woken.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc

from . import _tracing
from ._ask import DROPPED, ERROR, FAILED, STOPPED, UNHANDLED, Ask, Outcome
from ._cluster_stream import LinkStream
from ._codec import dumps, loads
from ._deadlines import now
from ._envelope import Envelope, Kind, encode_reply
from ._exceptions import (
    UNSENDABLE,
    ActorsError,
    ConnectionLost,
    MailboxFull,
    MessageTooLarge,
    SendOnClosed,
    UnpicklableMessage,
    WouldBlock,
)
from ._go import current_owner
from ._messages import DeadLetter, Terminated, describe
from ._ref import ActorRef, current_system
from ._remote import RemoteRef, dump_error, load_error, parse_address
from ._signal import Signal
from ._socket import SocketStream
from ._wire_channel import WireChannels

if TYPE_CHECKING:
    from ._cell import Cell
    from ._system import ActorSystem
    from ._wire import WireConnection

logger = logging.getLogger("actors.peer")

#: Messages held for full mailboxes before the reader stops reading.
MAX_BACKLOG: Final = 10_000
#: Parsed wire addresses kept (the cache is cleared when it is full).
_MAX_ADDRESSES: Final = 4096

# The outcome header of a reply: how the ask ended.
_OK: Final = ""
_OUTCOMES: Final = {FAILED: "f", STOPPED: "s", DROPPED: "d", UNHANDLED: "u", ERROR: "e"}
_KINDS: Final = {code: kind for kind, code in _OUTCOMES.items()}
_NO_HEADERS: Final[dict[str, str]] = {}


# -- asks served for the other side -------------------------------------------


class WireAsk(Ask):
    """An ask from the other side, in a local mailbox: answering it sends the
    reply; the other side's cancel cancels its handler (``scope``)."""

    __slots__ = ("peer", "scope", "token")

    def __init__(self, message: Any, peer: Peer, token: int) -> None:
        super().__init__(message)
        self.peer = peer
        self.token = token
        self.scope: anyio.CancelScope | None = None

    def expire(self) -> None:
        if self.answered:
            self.peer._reply(self)

    def cancel(self) -> None:
        self.close()  # an ask passed on to another process is cancelled there too
        if self.scope is not None:
            self.scope.cancel()


# -- the peer -----------------------------------------------------------------


class _Watch:
    """The local watchers of one remote actor."""

    __slots__ = ("cells", "ref", "signals")

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref
        self.cells: dict[Cell, None] = {}
        self.signals: list[tuple[Signal, list[Terminated]]] = []


class Peer:
    """This system's end of a connection to another system."""

    def __init__(
        self,
        system: ActorSystem,
        wire: WireConnection,
        node: str,
        *,
        pid: int | None = None,
        heartbeat: float | None = None,
        misses: int | None = 3,
        lost: type[ConnectionLost] = ConnectionLost,
    ) -> None:
        self.system = system
        self.wire = wire
        #: The other side's node name (its system's name).
        self.node = node
        self.pid = pid
        self.heartbeat = heartbeat
        self.misses = misses
        #: Why the connection ended; None while it is up.
        self.error: BaseException | None = None
        #: What pending asks raise and watchers are told when it ends (a
        #: cluster's links say ``NodeDown``).
        self.lost = lost
        self.closed = Signal()
        self._tokens = itertools.count(1)
        self._pending: dict[int, Ask] = {}
        self._serving: dict[int, WireAsk] = {}
        self._backlogs: dict[Cell, deque[Any]] = {}
        self._addresses: dict[str, tuple[int, str, str]] = {}
        self._backlog_size = 0
        self._backlog_room: anyio.Event | None = None
        self._watches: dict[str, _Watch] = {}  # remote actors watched from here
        self._watched: dict[str, anyio.CancelScope] = {}  # local actors watched from there
        #: Handlers of control messages, by name (the layer above adds its own).
        self.handlers: dict[str, Callable[[Any], Any]] = {
            "ping": _ignore,
            "stop": self._on_stop,
            "kill": self._on_kill,
            "watch": self._on_watch,
            "unwatch": self._on_unwatch,
            "terminated": self._on_terminated,
            "dead_letter": self._on_dead_letter,
        }
        #: Services of this system the other side tells or asks like an
        #: actor, at :func:`service_address` (the layer above adds its own):
        #: an async ``handler(message)`` run in a task of the peer; what it
        #: returns answers an ask, what it raises is raised in the asker, and
        #: the asker's cancel cancels it.
        self.services: dict[str, Callable[[Any], Awaitable[Any]]] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._failure: Exception | None = None
        self._heard = 0.0
        #: Local stand-ins of actors that live over there, by their uid.
        self.proxies: dict[int, Any] = {}
        #: Channels with an end on each side of this connection.
        self.channels = WireChannels(self)

    def __repr__(self) -> str:
        state = "up" if self.error is None else f"lost: {self.error}"
        return f"<Peer {self.node} {state}>"

    # -- running ---------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the connection until it ends; then every pending ask,
        watcher and stand-in has been told.

        Returns if :meth:`close` ended it; else raises why it ended:
        :class:`ConnectionLost`, :class:`AuthenticationError`, :class:`Silent`
        (missed heartbeats), or what a control message's handler raised.
        """
        current_system.set(self.system)  # unpickled refs resolve against it
        error: BaseException | None = None
        try:
            async with self.wire:
                async with anyio.create_task_group() as task_group:
                    self._task_group = task_group
                    self._heard = anyio.current_time()
                    if self.heartbeat is not None:
                        task_group.start_soon(self._guard, self._beat)
                    task_status.started()
                    stream: LinkStream | SocketStream | None = None
                    if isinstance(self.wire.stream, (LinkStream, SocketStream)):
                        stream = self.wire.stream
                    if stream is not None:
                        stream.inline = self._take_inline
                    try:
                        await self._guard(self._read)
                    finally:
                        if stream is not None:
                            stream.inline = None
                if self._failure is not None:
                    raise self._failure
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._lose(error or self.lost(f"the connection to {self.node} was closed"))

    async def _guard(self, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
            assert self._task_group is not None
            self._task_group.cancel_scope.cancel()

    def start_soon(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` in a task of the connection while it is served: the
        connection's end cancels it, and what it raises ends the connection.

        Raises:
            ActorsError: the connection is not being served.
        """
        if self._task_group is None or self.error is not None:
            raise ActorsError(f"the connection to {self.node} is not being served")
        self._task_group.start_soon(self._guard, work)

    def close(self) -> None:
        """End the connection from this side."""
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def lose(self, error: BaseException) -> None:
        """Declare the connection lost for ``error`` now (pending asks and
        watchers are told at once), then end it."""
        self._lose(error)
        self.close()

    def start_heartbeat(self, interval: float, misses: int | None = 3) -> None:
        """Start heartbeats on a running peer (:meth:`run` started without
        them): a ping every ``interval`` s, and the end with :class:`Silent`
        after ``interval * misses`` s without a word from the other side."""
        assert self._task_group is not None, "the peer is not running"
        self.heartbeat = interval
        self.misses = misses
        self._heard = anyio.current_time()
        self._task_group.start_soon(self._guard, self._beat)

    async def _beat(self) -> None:
        interval = self.heartbeat
        assert interval is not None
        limit = float("inf") if self.misses is None else interval * self.misses
        ping = Envelope(Kind.SIGNAL, "ping", "", 0, _NO_HEADERS, b"")
        while True:
            await anyio.sleep(interval)
            silent = anyio.current_time() - self._heard
            if silent > limit and not self.wire.input_waiting():
                raise Silent(
                    f"{self.node} sent nothing for {silent:.2f} s "
                    f"({self.misses} heartbeats of {interval:g} s)"
                )
            try:
                self.wire.send_urgent(ping)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return

    async def _read(self) -> None:
        wire = self.wire
        receive_nowait = wire.receive_nowait
        while True:
            try:
                envelope = await wire.receive()
            except anyio.EndOfStream:
                raise ConnectionLost(f"{self.node} closed the connection") from None
            except (anyio.IncompleteRead, anyio.BrokenResourceError, OSError) as error:
                raise ConnectionLost(f"the connection to {self.node} broke: {error!r}") from None
            self._heard = now()  # the backend's clock, without anyio's lookup of it
            # The rest of the frame with plain calls: one await per frame,
            # not per envelope (the benchmarks.process tell row).
            while True:
                kind = envelope.kind
                if not (
                    (kind is Kind.TELL and self._tell_now(envelope))
                    or (kind is Kind.ASK and self._ask_now(envelope))
                ):
                    await self._dispatch(envelope)
                try:
                    envelope = receive_nowait()
                except WouldBlock:
                    break

    def _take_inline(self, data: memoryview) -> bool:
        # LinkStream.inline or SocketStream.inline, called by the NATS
        # client's reader or asyncio's reader callback while _read
        # waits for data: the frames' envelopes delivered with plain calls,
        # as _read would; the first that needs an await, and all after it,
        # are left to _read. False: nothing was taken.
        if self.error is not None or self._failure is not None:
            return False
        envelopes = self.wire.take(data)
        if envelopes is None:
            return False
        # The context of _read's task: unpickled refs resolve against this system.
        owner = current_owner.set(None)
        system = current_system.set(self.system)
        try:
            self._heard = now()
            for index, envelope in enumerate(envelopes):
                kind = envelope.kind
                if kind is Kind.REPLY:
                    self._on_reply(envelope)
                elif not (
                    (kind is Kind.TELL and self._tell_now(envelope))
                    or (kind is Kind.ASK and self._ask_now(envelope))
                ):
                    self.wire.put_back(envelopes[index:])
                    stream = self.wire.stream
                    assert isinstance(stream, (LinkStream, SocketStream))
                    stream.poke()
                    break
        except Exception as error:  # as _guard: the connection ends
            if self._failure is None:
                self._failure = error
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
        finally:
            current_system.reset(system)
            current_owner.reset(owner)
        return True

    async def _dispatch(self, envelope: Envelope) -> None:
        kind = envelope.kind
        if kind is Kind.TELL:
            await self._on_tell(envelope)
        elif kind is Kind.ASK:
            await self._on_ask(envelope)
        elif kind is Kind.REPLY:
            self._on_reply(envelope)
        elif kind is Kind.CANCEL:
            ask = self._serving.pop(envelope.reply_token, None)
            if ask is not None:
                ask.cancel()
        elif kind is Kind.CHANNEL:
            self.channels.receive(envelope)
        else:
            handler = self.handlers.get(envelope.to)
            if handler is None:
                logger.warning("%s sent an unknown control message %r", self.node, envelope.to)
                return
            result = handler(loads(envelope.body) if envelope.body else None)
            if result is not None:
                await result

    # -- delivering to local actors ---------------------------------------------

    def _local(self, to: str) -> tuple[Cell | None, ActorRef]:
        parsed = self._addresses.get(to)
        if parsed is None:
            if len(self._addresses) >= _MAX_ADDRESSES:
                self._addresses.clear()
            parsed = self._addresses[to] = parse_address(to)
        uid, node, path = parsed
        system = self.system
        cell = system._cells.get(uid) if node == system.name else system._aliases.get((node, uid))
        if cell is not None:
            return cell, cell.ref
        return None, ActorRef(None, node, path, uid)

    def _unpickle(self, envelope: Envelope, ref: ActorRef) -> tuple[bool, Any]:
        try:
            return True, loads(envelope.body)
        except Exception as error:
            logger.error(
                "a message from %s to %s could not be unpickled (%r): it is a dead letter; "
                "make its classes importable in both processes, or register their module "
                "with Subprocess(by_value=...)",
                self.node,
                ref.path,
                error,
            )
            return False, error

    def _onward(self, to: str) -> Peer | None:
        # The connection to pass an envelope for another system on to: a
        # child process of this one's (or of one it reaches).
        node = to.split("\0", 2)[1]
        if node == self.system.name:
            return None
        peer = self.system._route(node)
        return None if peer is self else peer

    async def _onward_linked(self, to: str) -> Peer | None:
        # As _onward; in a cluster, the link to another node is opened if
        # there is none (the reader waits: what follows keeps its order).
        onward = self._onward(to)
        cluster = self.system._cluster
        if onward is not None or cluster is None:
            return onward
        return await cluster.onward(to.split("\0", 2)[1])

    def _ready_cell(self, envelope: Envelope) -> Cell | None:
        # The live local actor of a tell or ask that may take the fast path
        # (a blocking mailbox; no trace context to keep), else None.
        to = envelope.to
        parsed = self._addresses.get(to)
        if parsed is None:
            if len(self._addresses) >= _MAX_ADDRESSES:
                self._addresses.clear()
            parsed = self._addresses[to] = parse_address(to)
        uid, node, _ = parsed
        if envelope.headers and _tracing.tracer is not None:
            return None  # the slow path keeps its trace context
        system = self.system
        cell = system._cells.get(uid) if node == system.name else system._aliases.get((node, uid))
        if cell is None or cell.mailbox.overflow != "block":
            return None
        return cell

    def _ask_now(self, envelope: Envelope) -> bool:
        # As _tell_now for an ask: into a mailbox with room, with no backlog.
        cell = self._ready_cell(envelope)
        if cell is None or cell in self._backlogs or not _has_room(cell):
            return False
        try:
            message = loads(envelope.body)
        except Exception:
            return False  # the slow path says why
        token = envelope.reply_token
        ask = WireAsk(message, self, token)
        self._serving[token] = ask  # before it is answered: the answer is sent from there
        if _put_now(cell, ask):
            return True
        del self._serving[token]  # pragma: no cover - room was checked
        return False  # pragma: no cover

    def _tell_now(self, envelope: Envelope) -> bool:
        # The fast path, without an await: a live local actor with room in a
        # blocking mailbox. False: take the slow path (nothing was done).
        # _ready_cell, _has_room and _put_now written out: the hottest path
        # of all (benchmarks.process's tell row), where three calls cost 10%.
        to = envelope.to
        parsed = self._addresses.get(to)
        if parsed is None:
            if len(self._addresses) >= _MAX_ADDRESSES:
                self._addresses.clear()
            parsed = self._addresses[to] = parse_address(to)
        uid, node, _ = parsed
        if envelope.headers and _tracing.tracer is not None:
            return False  # the slow path keeps its trace context
        system = self.system
        cell = system._cells.get(uid) if node == system.name else system._aliases.get((node, uid))
        if cell is None or cell.mailbox.overflow != "block":
            return False
        backlog = self._backlogs.get(cell) if self._backlogs else None
        if backlog is not None:
            if self._backlog_size >= MAX_BACKLOG:
                return False  # the slow path waits for room
            try:
                backlog.append(loads(envelope.body))
            except Exception:
                return False  # the slow path says why
            self._backlog_size += 1
            return True
        user = cell.mailbox._user
        if len(user._buffer) >= user._capacity:
            return False
        try:
            message = loads(envelope.body)
        except Exception:
            return False  # the slow path says why
        try:
            if cell.mailbox.try_put(message):
                return True
        except SendOnClosed:
            cell.dead_letter(message, "stopped")
            return True
        return False  # pragma: no cover - room was checked

    async def _on_tell(self, envelope: Envelope) -> None:
        to = envelope.to
        cell, ref = self._local(to)
        if cell is None and not ref._system_name:  # a service
            ok, message = self._unpickle(envelope, ref)
            if ok:
                self._serve(ref._path, message, None)
            return
        if cell is None and (onward := await self._onward_linked(envelope.to)) is not None:
            await onward._send_raw(envelope, ref)  # not unpickled here
            return
        ok, message = self._unpickle(envelope, ref)
        if not ok:
            self.system._dead_letter(envelope.body, ref, f"cannot unpickle: {message!r}")
            return
        if envelope.headers:
            message = _tracing.incoming(message, envelope.headers)
        await self._deliver(cell, ref, message)

    async def _on_ask(self, envelope: Envelope) -> None:
        cell, ref = self._local(envelope.to)
        token = envelope.reply_token
        if cell is None and not ref._system_name:  # a service
            ok, message = self._unpickle(envelope, ref)
            ask = WireAsk(message if ok else None, self, token)
            self._serving[token] = ask
            if ok:
                self._serve(ref._path, message, ask)
            else:
                ask.put_error(ActorsError(f"could not unpickle a request: {message!r}"))
            return
        if cell is None and (onward := await self._onward_linked(envelope.to)) is not None:
            ask = WireAsk(None, self, token)  # its reply goes back through here
            self._serving[token] = ask
            await onward._forward_body(envelope.to, envelope.body, ask, envelope.headers)
            return
        ok, message = self._unpickle(envelope, ref)
        ask = WireAsk(message if ok else None, self, token)
        self._serving[token] = ask  # before it is answered: the answer is sent from there
        if not ok:
            ask.put_error(
                ActorsError(f"{ref.path} could not unpickle the message it was asked: {message!r}")
            )
            return
        await self._deliver(cell, ref, _tracing.incoming(ask, envelope.headers))

    async def _deliver(self, cell: Cell | None, ref: ActorRef, message: Any) -> None:
        if cell is None:
            self.system._dead_letter(message, ref, "stopped")
            return
        backlog = self._backlogs.get(cell)
        if backlog is not None:
            backlog.append(message)
            self._backlog_size += 1
            await self._wait_backlog()
            return
        mailbox = cell.mailbox
        if mailbox.overflow != "block":
            try:
                cell.ref.tell_nowait(message)  # the drop policies dead-letter themselves
            except MailboxFull:
                cell.dead_letter(message, "mailbox full: refused")
            return
        try:
            if mailbox.try_put(message):
                return
        except SendOnClosed:
            cell.dead_letter(message, "stopped")
            return
        self._backlogs[cell] = deque([message])
        self._backlog_size += 1
        assert self._task_group is not None
        self._task_group.start_soon(self._drain, cell)
        await self._wait_backlog()

    async def _wait_backlog(self) -> None:
        while self._backlog_size >= MAX_BACKLOG:
            if self._backlog_room is None:
                self._backlog_room = anyio.Event()
            await self._backlog_room.wait()

    async def _drain(self, cell: Cell) -> None:
        backlog = self._backlogs[cell]
        mailbox = cell.mailbox
        try:
            while backlog:
                # What fits at once with plain calls, then wait for room for one.
                try:
                    while backlog and mailbox.try_put(backlog[0]):
                        backlog.popleft()
                        self._backlog_size -= 1
                except SendOnClosed:
                    pass  # tell() below dead-letters them one by one
                if backlog:
                    await cell.ref.tell(backlog[0])
                    backlog.popleft()
                    self._backlog_size -= 1
                if self._backlog_room is not None and self._backlog_size < MAX_BACKLOG:
                    self._backlog_room.set()
                    self._backlog_room = None
        finally:
            del self._backlogs[cell]
            for message in backlog:  # the connection ended: they stay undelivered
                self._backlog_size -= 1
                cell.dead_letter(message, "connection lost")

    # -- services -------------------------------------------------------------------

    def _serve(self, name: str, message: Any, ask: WireAsk | None) -> None:
        service = self.services.get(name)
        if service is None:
            error = ActorsError(
                f"{self.system.name} has no service {name!r} for {self.node}: run the "
                f"same actors release on both sides"
            )
            if ask is not None:
                ask.put_error(error)
            else:
                logger.warning("%s", error)
            return
        assert self._task_group is not None
        self._task_group.start_soon(self._run_service, name, service, message, ask)

    async def _run_service(
        self,
        name: str,
        service: Callable[[Any], Awaitable[Any]],
        message: Any,
        ask: WireAsk | None,
    ) -> None:
        # In the peer's task group: the connection's end cancels it (and
        # answers nothing: the asker gets ConnectionLost); the asker's cancel
        # cancels it through ``ask.scope``.
        scope = anyio.CancelScope()
        if ask is not None:
            if ask.closed:  # cancelled before it started
                return
            ask.scope = scope
        with scope:
            try:
                value = await service(message)
            except Exception as error:
                if ask is not None:
                    ask.put_error(error)
                else:
                    logger.exception("service %r failed on a message from %s", name, self.node)
                return
            if ask is not None:
                ask.put(value)

    # -- answering asks from there ------------------------------------------------

    def _reply(self, ask: WireAsk) -> None:
        if self._serving.pop(ask.token, None) is None or self.error is not None:
            return  # cancelled, or nobody to answer
        value = ask.value
        if type(value) is Outcome:
            code = _OUTCOMES[value.kind]
            body = b"" if value.error is None else dump_error(value.error, self.system.name)
        else:
            try:
                body = dumps(value)
            except UnpicklableMessage as error:
                code = _OUTCOMES[ERROR]
                body = dump_error(error, self.system.name)
            else:
                # An answer, the usual case: no headers (the receiver reads
                # no "o" as an answer), encoded without the general encoder.
                data = encode_reply(ask.token, body)
                try:
                    self.wire.send_urgent_encoded(data)
                    return
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the reader ends the peer
                except MessageTooLarge as error:  # the asker hears why
                    code = _OUTCOMES[ERROR]
                    body = dump_error(error, self.system.name)
        self._send_urgent(Envelope(Kind.REPLY, "", "", ask.token, {"o": code}, body))

    def _on_reply(self, envelope: Envelope) -> None:
        ask = self._pending.pop(envelope.reply_token, None)
        if ask is None:
            self.system._late_reply()  # its asker gave up
            return
        code = envelope.headers.get("o", _OK)
        try:
            if code == _OK:
                answered = ask.put(loads(envelope.body))
            else:
                kind = _KINDS[code]
                if envelope.body:
                    error = load_error(envelope.body)
                    answered = ask.put(Outcome(kind, error))
                else:
                    answered = ask.put_outcome(kind)
        except Exception as error:
            answered = ask.put_error(
                ActorsError(f"the reply from {self.node} could not be unpickled: {error!r}")
            )
        if not answered:
            self.system._late_reply()

    # -- sending ------------------------------------------------------------------

    def _send_urgent(self, envelope: Envelope) -> None:
        # If it fails, the reader ends the peer and answers what waits.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.wire.send_urgent(envelope)

    def signal(self, op: str, payload: Any = None) -> None:
        """Send a control message (not held back by a full send queue)."""
        if self.error is None:
            body = b"" if payload is None else dumps(payload)
            self._send_urgent(Envelope(Kind.SIGNAL, op, "", 0, _NO_HEADERS, body))

    def dead_letter(self, letter: DeadLetter) -> None:
        """Pass a dead letter of this system on to the other side's."""
        if self.error is not None:
            return
        message = letter.message
        for _ in range(2):
            try:
                body = dumps((message, letter.recipient, letter.reason, letter.topic))
                self._send_urgent(Envelope(Kind.SIGNAL, "dead_letter", "", 0, _NO_HEADERS, body))
                return
            except UNSENDABLE:
                message = describe(message)  # what it was, if it cannot go itself

    def _on_dead_letter(self, payload: tuple[Any, ActorRef | None, str, str | None]) -> None:
        message, recipient, reason, topic = payload
        self.system._dead_letter(message, recipient, f"{reason} (in {self.node})", topic=topic)

    def tell_nowait(
        self, to: str, ref: ActorRef, message: Any, headers: dict[str, str] = _NO_HEADERS
    ) -> None:
        body = dumps(message)
        if self.error is None:
            try:
                self.wire.send_nowait(Envelope(Kind.TELL, to, "", 0, headers, body))
                return
            except WouldBlock:
                raise MailboxFull(
                    f"the connection to {self.node} has a full send queue: nothing was "
                    f"sent to {ref.path}; retry later or use `await tell()`"
                ) from None
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        self.system._dead_letter(message, ref, "connection lost")

    async def _send_raw(self, envelope: Envelope, ref: ActorRef) -> None:
        if self.error is None:
            try:
                await self.wire.send(envelope)
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
        self.system._dead_letter(envelope.body, ref, "connection lost")

    async def forward(self, to: str, ask: Ask, headers: dict[str, str] = _NO_HEADERS) -> int:
        """Send ``ask``'s question to ``to`` (with envelope ``headers``, the
        trace context); its reply answers ``ask``. Returns the token; closing
        ``ask`` cancels the remote handler."""
        return await self._forward_body(to, dumps(ask.message), ask, headers)

    async def _forward_body(
        self, to: str, body: bytes, ask: Ask, headers: dict[str, str] = _NO_HEADERS
    ) -> int:
        token = next(self._tokens)
        if self.error is not None:
            ask.put_error(self._lost_error())
            return token
        self._pending[token] = ask
        ask.on_close = lambda _ask: self._cancel(token)
        try:
            await self.wire.send_now(Envelope(Kind.ASK, to, "", token, headers, body))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the reader answers it with ConnectionLost
        except BaseException:
            self._pending.pop(token, None)
            raise
        return token

    def _cancel(self, token: int) -> None:
        if self._pending.pop(token, None) is not None and self.error is None:
            self._send_urgent(Envelope(Kind.CANCEL, "", "", token, _NO_HEADERS, b""))

    def _lost_error(self) -> ConnectionLost:
        error = self.error
        if isinstance(error, ConnectionLost):
            return self.lost(str(error))
        return self.lost(f"the connection to {self.node} ended: {error}")

    # -- watching ---------------------------------------------------------------

    def watch(self, ref: ActorRef, to: str, cell: Cell) -> None:
        """``cell`` gets ``Terminated(ref, ...)`` when the remote actor ends or
        the connection does."""
        if cell.mailbox.closed:
            return
        watching = cell.watching
        if watching is None:
            watching = cell.watching = {}
        elif ref in watching:
            return
        watching[ref] = None
        if self.error is not None:
            cell.mailbox.put_system(Terminated(ref, self._lost_error()))
            return
        self._watch_entry(ref, to).cells[cell] = None

    def unwatch(self, ref: ActorRef, to: str, cell: Cell) -> None:
        if cell.watching:
            cell.watching.pop(ref, None)
        entry = self._watches.get(to)
        if entry is not None:
            entry.cells.pop(cell, None)
            if not entry.cells and not entry.signals:
                del self._watches[to]
                self.signal("unwatch", to)

    async def join(self, ref: ActorRef, to: str) -> Terminated:
        if self.error is not None:
            return Terminated(ref, self._lost_error())
        done = Signal()
        box: list[Terminated] = []
        self._watch_entry(ref, to).signals.append((done, box))
        await done.wait()
        return box[0]

    def _watch_entry(self, ref: ActorRef, to: str) -> _Watch:
        entry = self._watches.get(to)
        if entry is None:
            entry = self._watches[to] = _Watch(ref)
            self.signal("watch", to)
        return entry

    def _on_watch(self, to: str) -> None:
        if to in self._watched:
            return
        cell, ref = self._local(to)
        if cell is None and (onward := self._onward(to)) is not None:
            relay = anyio.CancelScope()
            self._watched[to] = relay
            assert self._task_group is not None
            self._task_group.start_soon(self._relay_watch, onward, ref, to, relay)
            return
        node = ref._system_name
        if cell is None and self.system._cluster is not None and node and node != self.system.name:
            relay = anyio.CancelScope()  # another node's actor: linked first
            self._watched[to] = relay
            assert self._task_group is not None
            self._task_group.start_soon(self._relay_watch_linked, ref, to, relay)
            return
        if cell is None or cell.terminated.is_set():
            reason = None if cell is None else cell.reason
            killed = False if cell is None else cell.killed
            self._terminated(to, reason, killed)
            return
        scope = anyio.CancelScope()
        self._watched[to] = scope
        assert self._task_group is not None
        self._task_group.start_soon(self._watch_local, to, cell, scope)

    async def _watch_local(self, to: str, cell: Cell, scope: anyio.CancelScope) -> None:
        with scope:
            await cell.terminated.wait()
            self._watched.pop(to, None)
            self._terminated(to, cell.reason, cell.killed)

    async def _relay_watch_linked(self, ref: ActorRef, to: str, scope: anyio.CancelScope) -> None:
        with scope:
            onward = await self._onward_linked(to)
            if onward is None:
                self._watched.pop(to, None)
                self._terminated(to, ConnectionLost(f"{ref._system_name} cannot be reached"), False)
                return
            notice = await onward.join(ref, to)
            self._watched.pop(to, None)
            self._terminated(to, notice.reason, notice.killed)

    async def _relay_watch(
        self, onward: Peer, ref: ActorRef, to: str, scope: anyio.CancelScope
    ) -> None:
        # A watch of an actor another connection reaches: its notice, passed back.
        with scope:
            notice = await onward.join(ref, to)
            self._watched.pop(to, None)
            self._terminated(to, notice.reason, notice.killed)

    def _terminated(self, to: str, reason: BaseException | None, killed: bool) -> None:
        body = None if reason is None else dump_error(reason, self.system.name)
        self.signal("terminated", (to, body, killed))

    def _on_unwatch(self, to: str) -> None:
        scope = self._watched.pop(to, None)
        if scope is not None:
            scope.cancel()

    def _on_terminated(self, payload: tuple[str, bytes | None, bool]) -> None:
        to, body, killed = payload
        entry = self._watches.pop(to, None)
        if entry is not None:
            reason = None if body is None else load_error(body)
            self._notify(entry, reason, killed)

    def _notify(self, entry: _Watch, reason: BaseException | None, killed: bool) -> None:
        notice = Terminated(entry.ref, reason, killed)
        if isinstance(entry.ref, RemoteRef):
            entry.ref._learn(notice)
        for cell in entry.cells:
            if not cell.mailbox.closed:
                cell.mailbox.put_system(notice)
        for done, box in entry.signals:
            box.append(notice)
            done.set()

    def _on_stop(self, to: str) -> None:
        cell, _ = self._local(to)
        if cell is not None:
            cell.request_stop(timed=True)

    def _on_kill(self, to: str) -> None:
        cell, _ = self._local(to)
        if cell is not None:
            cell.kill()

    # -- the end ------------------------------------------------------------------

    def _lose(self, error: BaseException) -> None:
        if self.error is not None:
            return
        self.error = error
        lost = self._lost_error()
        pending, self._pending = self._pending, {}
        for ask in pending.values():
            ask.put_error(self.lost(str(lost)))
        for ask in self._serving.values():
            ask.closed = True
        self._serving.clear()
        watches, self._watches = self._watches, {}
        for entry in watches.values():
            self._notify(entry, self.lost(str(lost)), False)
        if self._backlog_room is not None:
            self._backlog_room.set()
        self.channels.lose(lost)
        self.system._peer_lost(self)
        self.closed.set()


class Silent(ActorsError):
    """The peer missed its heartbeats."""


def _has_room(cell: Cell) -> bool:
    user = cell.mailbox._user
    return len(user._buffer) < user._capacity


def _put_now(cell: Cell, message: Any) -> bool:
    # Into a mailbox with room (checked); a stopped actor's is a dead letter.
    try:
        return cell.mailbox.try_put(message)
    except SendOnClosed:
        cell.dead_letter(message, "stopped")
        return True


def _ignore(payload: Any) -> None:
    return None
