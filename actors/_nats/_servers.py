"""Connecting to one NATS server: server URLs and the handshake (INFO,
CONNECT, PING, PONG)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

from ._errors import AuthorizationError, NotSupported, ServerError
from ._protocol import ERR, INFO, PING, PING_LINE, PONG, PONG_LINE, Parser, encode_connect


@dataclass(slots=True)
class Server:
    """A server to connect to, with its credentials (given or learnt of)."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    token: str | None = None
    discovered: bool = False

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


def parse_server(url: str) -> Server:
    """``nats://[user:password@|token@]host[:port]``, or ``host[:port]``.

    Raises:
        NotSupported: A ``tls://`` or ``wss://`` URL (no TLS yet).
        ValueError: Not a NATS URL.
    """
    if "://" not in url:
        url = "nats://" + url
    parts = urlsplit(url)
    if parts.scheme in ("tls", "wss", "ws"):
        raise NotSupported(f"{url!r}: this NATS client does not support TLS or websockets yet")
    if parts.scheme != "nats" or not parts.hostname:
        raise ValueError(f"not a NATS server URL: {url!r} (expected nats://host:port)")
    try:
        port = parts.port or 4222
    except ValueError:
        raise ValueError(f"bad port in the NATS server URL {url!r}") from None
    server = Server(parts.hostname, port)
    if parts.username is not None and parts.password is not None:
        server.user, server.password = unquote(parts.username), unquote(parts.password)
    elif parts.username:
        server.token = unquote(parts.username)
    return server


async def handshake(
    server: Server, *, name: str | None, timeout: float
) -> tuple[anyio.abc.ByteStream, Parser, dict[str, Any]]:
    """A connected, authenticated stream to ``server``, the parser holding
    what came after the PONG, and the server's INFO.

    Raises:
        OSError: TCP failed.
        TimeoutError: It took longer than ``timeout``.
        AuthorizationError: The server refused the credentials.
        ServerError: Another -ERR.
        ProtocolError: The server does not speak NATS.
        NotSupported: The server requires TLS.
    """
    with anyio.fail_after(timeout):
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(server.host, server.port)
        try:
            parser = Parser()
            info: dict[str, Any] | None = None
            while info is None:
                for op in parser.feed(await stream.receive()):
                    if op[0] == INFO:
                        info = op[1]
                    elif op[0] == ERR:
                        raise server_error(op[1])
            if info.get("tls_required"):
                raise NotSupported(
                    f"{server.url} requires TLS, which this NATS client does not support yet"
                )
            options: dict[str, Any] = {
                "verbose": False,
                "pedantic": False,
                "headers": True,
                "no_responders": True,
                "protocol": 1,
                "lang": "python-actors",
                "version": _version(),
            }
            if name:
                options["name"] = name
            if server.user is not None:
                options["user"] = server.user
                options["pass"] = server.password or ""
            elif server.token is not None:
                options["auth_token"] = server.token
            await stream.send(encode_connect(options) + PING_LINE)
            while True:
                ops = parser.feed(await stream.receive())
                pong = False
                for op in ops:
                    if op[0] == PONG:
                        pong = True
                    elif op[0] == ERR:
                        raise server_error(op[1])
                    elif op[0] == INFO:
                        info.update(op[1])
                    elif op[0] == PING:
                        await stream.send(PONG_LINE)
                if pong:
                    break
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
    return stream, parser, info


def server_error(text: str) -> ServerError:
    """The error for the text of a ``-ERR``."""
    lower = text.lower()
    if "authorization" in lower or "authentication" in lower:
        return AuthorizationError(text)
    return ServerError(text)


def _version() -> str:
    from .. import __version__

    return __version__
