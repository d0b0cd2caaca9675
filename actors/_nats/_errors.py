"""What the NATS client raises: one base, `NatsError` (an `ActorsError`)."""

from __future__ import annotations

import anyio

from .._exceptions import ActorsError, ConnectionLost, WouldBlock


class NatsError(ActorsError):
    """Base class of the NATS client's errors."""


class NatsTimeout(NatsError, TimeoutError):
    """No reply (or PONG) came in time. Also a ``TimeoutError``."""


class NoResponders(NatsError):
    """A request found no subscriber on its subject: the server answered at
    once with status 503, so there is no point waiting for the timeout."""

    def __init__(self, subject: str) -> None:
        super().__init__(f"no responders on {subject!r}")
        self.subject = subject


class NatsConnectionLost(NatsError, ConnectionLost):
    """The connection to the server dropped while this operation was in
    flight (a request may or may not have reached a responder: at most once)."""


class ConnectionClosed(NatsError, anyio.ClosedResourceError):
    """The client is closed (or closing): nothing more can be sent."""


class NoServers(NatsError, OSError):
    """No server in the list could be reached (each attempt's error is in
    ``errors``, by server)."""

    def __init__(self, message: str, errors: dict[str, BaseException] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


class ServerError(NatsError):
    """The server sent ``-ERR``: ``message`` is its text."""

    def __init__(self, message: str) -> None:
        super().__init__(f"nats-server: {message}")
        self.message = message


class AuthorizationError(ServerError):
    """The server refused the credentials (user/password, token or nkey);
    ``detail`` says what was offered (never a secret)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
        if detail:
            self.args = (f"nats-server: {message}: {detail}",)


class ProtocolError(NatsError):
    """The server sent something that is not the NATS protocol."""


class OutboundBufferFull(NatsError, WouldBlock):
    """The client is disconnected and its outbound buffer (``pending_size``
    bytes) is full: this publish was not buffered. Retry after reconnecting."""


class PayloadTooLarge(NatsError, ValueError):
    """The message is larger than the server's ``max_payload``; nothing was sent."""


class NotSupported(NatsError):
    """This client does not do that (yet): JWT credentials, websockets; or the
    server does not (atomic batch publish before nats-server 2.12)."""
