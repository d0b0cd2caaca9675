"""Refs to actors of other systems, their wire addresses, and exceptions
that cross to another process.

A :class:`RemoteRef` is an ``ActorRef`` whose messages are pickled and go
through a :class:`~actors._peer.Peer`; unpickling a ref of another system
makes one (``actors._ref._restore_ref``). An actor's wire address is
``uid NUL node NUL path`` (:func:`address`). An exception travels as its
pickle when it has one, and always as its type, text and traceback
(:func:`dump_error`, :func:`load_error`).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import _tracing
from ._ask import Ask
from ._codec import dumps, loads
from ._envelope import Envelope, Kind, encode, encode_tell
from ._exceptions import ActorStopped, ConnectionLost, MessageTooLarge, RemoteError
from ._messages import Terminated
from ._ref import ActorRef

if TYPE_CHECKING:
    from ._cell import Cell
    from ._peer import Peer

_NO_HEADERS: Final[dict[str, str]] = {}


def address(node: str, uid: int, path: str) -> str:
    """The wire address of one actor incarnation."""
    return f"{uid}\0{node}\0{path}"


def service_address(name: str) -> str:
    """The wire address of a service a peer serves by name (see
    :attr:`Peer.services`): an address with no node and uid 0, which no actor
    has."""
    return address("", 0, name)


def parse_address(to: str) -> tuple[int, str, str]:
    uid, node, path = to.split("\0", 2)
    return int(uid), node, path


# -- exceptions across the wire -----------------------------------------------


@dataclass(frozen=True)
class _Failure:
    type_name: str
    text: str
    traceback: str
    node: str
    pid: int
    pickled: bytes | None


def dump_error(error: BaseException, node: str) -> bytes:
    """An exception for the other side: itself if it pickles, and always its
    type, text and traceback (for :func:`load_error`)."""
    try:
        pickled: bytes | None = dumps(error)
    except Exception:
        pickled = None
    kind = type(error)
    return dumps(
        _Failure(
            f"{kind.__module__}.{kind.__qualname__}",
            str(error),
            "".join(traceback.format_exception(kind, error, error.__traceback__)),
            node,
            os.getpid(),
            pickled,
        )
    )


def load_error(data: bytes) -> BaseException:
    """The exception :func:`dump_error` sent: its original type where it can
    be imported here, else :class:`RemoteError`; with ``remote_traceback``,
    ``node`` and ``pid`` attributes and the traceback as a note."""
    failure: _Failure = loads(data)
    error: BaseException | None = None
    if failure.pickled is not None:
        try:
            error = loads(failure.pickled)
        except Exception:
            error = None
    if not isinstance(error, BaseException):
        error = RemoteError(f"{failure.type_name}: {failure.text}")
    note = f"remote traceback, node {failure.node} (pid {failure.pid}):\n{failure.traceback}"
    try:
        error.remote_traceback = failure.traceback  # type: ignore[attr-defined]
        error.node = failure.node  # type: ignore[attr-defined]
        error.pid = failure.pid  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - an exception with __slots__
        pass
    from ._cell import _add_note

    _add_note(error, note)
    return error


# -- refs to actors over there ------------------------------------------------


class RemoteRef(ActorRef[Any, Any]):
    """An ``ActorRef`` to an actor of another system: its messages are pickled
    and go through the peer's connection. Made by unpickling a ref."""

    __slots__ = ("_address", "_address_bytes", "_ended", "_peer")

    def __init__(self, peer: Peer, system_name: str, path: str, uid: int) -> None:
        super().__init__(None, system_name, path, uid)
        self._peer = peer
        self._address = address(system_name, uid, path)
        self._address_bytes = self._address.encode()
        #: This ref has learned that its actor ended (a join, a watch's
        #: notice, an ask answered ActorStopped): ``alive`` is False.
        self._ended = False

    def _learn(self, notice: Terminated) -> Terminated:
        if not isinstance(notice.reason, ConnectionLost):  # else it may live on
            self._ended = True
        return notice

    def __repr__(self) -> str:
        return f"<ActorRef {self._path} #{self._uid} on {self._system_name}>"

    def _resolve(self) -> None:
        return None

    async def tell(self, message: Any) -> None:
        # The one tell over a connection (a stand-in's mailbox uses it too).
        if _tracing.tracer is not None or type(message) is _tracing.Traced:
            await self._traced_tell(message)
            return
        body = dumps(message)  # fails here, before anything is queued
        peer = self._peer
        if peer.error is None:
            try:
                await peer.wire.send_encoded(encode_tell(self._address_bytes, body))
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            except MessageTooLarge as error:
                raise MessageTooLarge(f"to {self._path!r}: {error}") from None
        peer.system._dead_letter(message, self, "connection lost")

    async def _traced_tell(self, message: Any) -> None:
        # As above, with the trace context in the envelope's headers.
        message, headers, span = _tracing.outgoing(self._path, message)
        try:
            body = dumps(message)
            peer = self._peer
            if peer.error is None:
                try:
                    envelope = Envelope(Kind.TELL, self._address, "", 0, headers, body)
                    await peer.wire.send_encoded(encode(envelope))
                    return
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass
            peer.system._dead_letter(message, self, "connection lost")
        finally:
            if span is not None:
                span.end()

    def tell_nowait(self, message: Any) -> None:
        if _tracing.tracer is not None or type(message) is _tracing.Traced:
            message, headers, span = _tracing.outgoing(self._path, message)
            try:
                self._peer.tell_nowait(self._address, self, message, headers)
            finally:
                if span is not None:
                    span.end()
            return
        self._peer.tell_nowait(self._address, self, message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        from ._ref import check_timeout

        check_timeout(timeout)
        peer = self._peer
        headers = _NO_HEADERS
        if _tracing.tracer is None:
            envelope = Ask(message)
        else:
            envelope = _tracing.TracedAsk(message, self._path)
            headers = _tracing.inject(envelope.context())
        deadlines = peer.system._deadlines
        try:
            await peer.forward(self._address, envelope, headers)
            if not envelope.answered:
                left = float("inf") if timeout is None else timeout
                try:
                    await envelope.park(left, None if timeout is None else deadlines)
                finally:
                    envelope.unpark(deadlines)
        except BaseException:
            if not envelope.answered:
                envelope.close()
            raise
        try:
            return envelope.result(self._path, timeout)
        except ActorStopped:
            self._ended = True
            raise

    async def stop(self) -> None:
        self._peer.signal("stop", self._address)
        await self.join()

    def stop_nowait(self) -> None:
        self._peer.signal("stop", self._address)

    async def kill(self) -> None:
        self._peer.signal("kill", self._address)
        await self.join()

    @property
    def alive(self) -> bool:
        """Whether the actor has not ended, as far as this ref knows: it
        learns of the end from :meth:`join` (also through ``stop``), an ask
        answered ``ActorStopped``, a watch's notice, or the end of the
        connection; no message goes over for it."""
        return not self._ended and self._peer.error is None

    async def join(self) -> Terminated:
        return self._learn(await self._peer.join(self, self._address))

    def _watch(self, cell: Cell) -> None:
        self._peer.watch(self, self._address, cell)

    def _unwatch(self, cell: Cell) -> None:
        self._peer.unwatch(self, self._address, cell)
