"""Connecting to one NATS server: server URLs, credentials, TLS and the
handshake (INFO, CONNECT, PING, PONG)."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from .._socket import connect_tcp
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
    #: A ``tls://`` URL: the connection must be encrypted.
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{self.host}:{self.port}"


class NkeySigner:
    """Signs the server's nonce with an nkey seed (ed25519), through the
    ``nkeys`` package (the ``nkeys`` extra).

    Raises:
        ImportError: ``nkeys`` is not installed.
        ValueError: Not a valid nkey seed.
    """

    def __init__(self, seed: str | bytes) -> None:
        try:
            import nkeys
        except ImportError as error:
            raise ImportError(
                "nkey authentication needs the nkeys package: "
                "pip install 'structured-actors[nkeys]'"
            ) from error
        self._nkeys = nkeys
        self._seed = bytes(seed.encode() if isinstance(seed, str) else seed).strip()
        try:
            pair = nkeys.from_seed(bytearray(self._seed))
        except (nkeys.NkeysError, ValueError) as error:
            raise ValueError(
                "not a valid nkey seed (expected the 'SU...' line of an nkey seed file)"
            ) from error
        self.public_key: str = pair.public_key.decode()
        pair.wipe()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NkeySigner:
        """The signer for the seed in the file at ``path`` (its first line
        starting with ``SU``, as ``nk -gen user`` writes it).

        Raises:
            OSError: The file cannot be read.
            ValueError: It holds no nkey seed.
        """
        with open(path, "rb") as file:
            lines = [line.strip() for line in file.read().splitlines()]
        seeds = [line for line in lines if line.startswith(b"SU")]
        if not seeds:
            raise ValueError(f"no nkey user seed (a line starting with 'SU') in {path}")
        return cls(seeds[0])

    def sign(self, nonce: str) -> str:
        """The signature of ``nonce``, as the server wants it (base64url)."""
        pair = self._nkeys.from_seed(bytearray(self._seed))
        try:
            signature: bytes = pair.sign(nonce.encode())
        finally:
            pair.wipe()
        return base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Security:
    """What a client brings to every server besides the URL's credentials:
    an nkey, and TLS."""

    nkey: NkeySigner | None = None
    tls: ssl.SSLContext | None = None
    tls_hostname: str | None = None
    tls_handshake_first: bool = False


def parse_server(url: str) -> Server:
    """``nats://[user:password@|token@]host[:port]`` (``tls://`` for an
    encrypted connection), or ``host[:port]``.

    Raises:
        NotSupported: A ``ws://`` or ``wss://`` URL (no websockets).
        ValueError: Not a NATS URL.
    """
    if "://" not in url:
        url = "nats://" + url
    parts = urlsplit(url)
    if parts.scheme in ("wss", "ws"):
        raise NotSupported(f"{url!r}: this NATS client does not support websockets")
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(f"not a NATS server URL: {url!r} (expected nats://host:port)")
    try:
        port = parts.port or 4222
    except ValueError:
        raise ValueError(f"bad port in the NATS server URL {url!r}") from None
    server = Server(parts.hostname, port, tls=parts.scheme == "tls")
    if parts.username is not None and parts.password is not None:
        server.user, server.password = unquote(parts.username), unquote(parts.password)
    elif parts.username:
        server.token = unquote(parts.username)
    return server


async def handshake(
    server: Server, *, name: str | None, timeout: float, security: Security = Security()
) -> tuple[anyio.abc.ByteStream, Parser, dict[str, Any]]:
    """A connected, authenticated stream to ``server``, the parser holding
    what came after the PONG, and the server's INFO.

    TLS is used when the server requires it (INFO ``tls_required``), or the
    client wants it (a ``tls://`` URL, or an SSL context) and the server
    offers it; with ``tls_handshake_first``, before the server's INFO.

    Raises:
        OSError: TCP or TLS failed (an ``ssl.SSLError`` for a certificate
            that does not verify), or the server closed the connection.
        TimeoutError: It took longer than ``timeout``.
        AuthorizationError: The server refused the credentials.
        ServerError: Another -ERR, or TLS wanted from a server without it.
        ProtocolError: The server does not speak NATS.
    """
    want_tls = server.tls or security.tls is not None or security.tls_handshake_first
    with anyio.fail_after(timeout):
        stream: anyio.abc.ByteStream = await connect_tcp(server.host, server.port)
        try:
            encrypted = False
            if security.tls_handshake_first:
                stream = await _start_tls(stream, server, security)
                encrypted = True
            parser = Parser()
            info: dict[str, Any] | None = None
            while info is None:
                for op in parser.feed(await stream.receive()):
                    if op[0] == INFO:
                        info = op[1]
                    elif op[0] == ERR:
                        raise server_error(op[1])
            if not encrypted:
                if info.get("tls_required") or (want_tls and info.get("tls_available")):
                    stream = await _start_tls(stream, server, security)
                elif want_tls:
                    raise ServerError(
                        f"{server.url} does not offer TLS, and this client asked for it "
                        "(a tls:// URL or an SSL context)"
                    )
            options: dict[str, Any] = {
                "verbose": False,
                "pedantic": False,
                "headers": True,
                "no_responders": True,
                "protocol": 1,
                "lang": "python-actors",
                "version": _version(),
                "tls_required": want_tls or bool(info.get("tls_required")),
            }
            if name:
                options["name"] = name
            if server.user is not None:
                options["user"] = server.user
                options["pass"] = server.password or ""
            elif server.token is not None:
                options["auth_token"] = server.token
            if security.nkey is not None:
                options["nkey"] = security.nkey.public_key
                if info.get("nonce"):
                    options["sig"] = security.nkey.sign(info["nonce"])
            await stream.send(encode_connect(options) + PING_LINE)
            while True:
                ops = parser.feed(await stream.receive())
                pong = False
                for op in ops:
                    if op[0] == PONG:
                        pong = True
                    elif op[0] == ERR:
                        error = server_error(op[1])
                        if isinstance(error, AuthorizationError):
                            error = AuthorizationError(
                                op[1],
                                f"{server.url} refused {_credentials(server, security)}; "
                                "check them against the server's authorization settings",
                            )
                        raise error
                    elif op[0] == INFO:
                        info.update(op[1])
                    elif op[0] == PING:
                        await stream.send(PONG_LINE)
                if pong:
                    break
        except (anyio.EndOfStream, anyio.BrokenResourceError) as error:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise ConnectionError(
                f"{server.url} closed the connection during the handshake"
            ) from error
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            raise
    return stream, parser, info


async def _start_tls(
    stream: anyio.abc.ByteStream, server: Server, security: Security
) -> anyio.abc.ByteStream:
    context = security.tls or ssl.create_default_context()
    # NATS servers close without a TLS close_notify: not an error here.
    return await TLSStream.wrap(
        stream,
        hostname=security.tls_hostname or server.host,
        ssl_context=context,
        standard_compatible=False,
    )


def _credentials(server: Server, security: Security) -> str:
    """What was offered, for an error message (never a secret)."""
    offered = []
    if server.user is not None:
        offered.append(f"the password of user {server.user!r}")
    elif server.token is not None:
        offered.append("the token")
    if security.nkey is not None:
        offered.append(f"the nkey {security.nkey.public_key}")
    return " and ".join(offered) if offered else "a connection without credentials"


def server_error(text: str) -> ServerError:
    """The error for the text of a ``-ERR``."""
    lower = text.lower()
    if "authorization" in lower or "authentication" in lower:
        return AuthorizationError(text)
    return ServerError(text)


def _version() -> str:
    from .. import __version__

    return __version__
