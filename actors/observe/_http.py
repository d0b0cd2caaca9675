"""Just enough HTTP/1.1 for the live page: one GET per connection, then close.

Our own, on anyio streams, so that it runs on both backends with no
dependency (uvicorn and most servers are asyncio-only). Requests are small
and bounded: a request head over :data:`MAX_HEAD` bytes, or slower than
:data:`HEAD_TIMEOUT` seconds, is answered with an error and closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import ByteStream
from anyio.streams.buffered import BufferedByteReceiveStream

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class BadRequest(Exception):
    """A request this server does not take (with the status to answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One parsed request head."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


async def read_request(stream: ByteStream) -> Request:
    """Read and parse one request head.

    Raises:
        BadRequest: malformed, too large or too slow.
        anyio.EndOfStream: the client closed before sending a head.
    """
    buffered = BufferedByteReceiveStream(stream)
    try:
        with anyio.fail_after(HEAD_TIMEOUT):
            head = await buffered.receive_until(b"\r\n\r\n", MAX_HEAD)
    except TimeoutError:
        raise BadRequest(408, "request head not received in time") from None
    except anyio.DelimiterNotFound:
        raise BadRequest(431, "request head too large") from None
    except anyio.IncompleteRead:
        raise anyio.EndOfStream from None
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(400, f"unsupported protocol {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    url = urlsplit(target)
    return Request(method.upper(), url.path or "/", parse_qs(url.query), headers)


def head(status: int, content_type: str, length: int | None = None, **extra: str) -> bytes:
    """A response head; no length means the body runs until the connection closes."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        "Cache-Control: no-cache",
        "Connection: close",
        "X-Content-Type-Options: nosniff",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(f"{name.replace('_', '-')}: {value}" for name, value in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(
    stream: ByteStream, status: int, content_type: str, body: bytes, *, send_body: bool = True
) -> None:
    """Send a whole response."""
    await stream.send(head(status, content_type, len(body)) + (body if send_body else b""))
