"""The NATS client protocol: an incremental parser of what the server sends,
and the encoders of what the client sends.

The server sends control lines ending in CRLF: ``INFO {json}``, ``MSG subject
sid [reply] size``, ``HMSG subject sid [reply] header_size total_size``,
``PING``, ``PONG``, ``+OK``, ``-ERR 'text'``; a MSG or HMSG line is followed by
its payload and a CRLF. Headers are an HTTP-like block opened by ``NATS/1.0``
(with an optional status, e.g. ``NATS/1.0 503``) and closed by an empty line.

# Invariants:
# - `Parser._buffer[:_start]` has been parsed; bytes are only ever appended at
#   the end and dropped from the front, so a split read resumes where it stopped.
# - `_need` > 0 means a MSG/HMSG control line has been read and its payload
#   (`_need` bytes, the trailing CRLF included) is awaited.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import ProtocolError

CRLF: Final = b"\r\n"
#: The longest control line (INFO with many connect_urls included) we accept.
MAX_CONTROL_LINE: Final = 1 << 20
HEADER_LINE: Final = b"NATS/1.0"
NO_RESPONDERS: Final = "503"

# Server operations, by their first bytes (upper-cased).
MSG: Final = 1
HMSG: Final = 2
PING: Final = 3
PONG: Final = 4
OK: Final = 5
ERR: Final = 6
INFO: Final = 7

PING_LINE: Final = b"PING\r\n"
PONG_LINE: Final = b"PONG\r\n"

_WHITESPACE = re.compile(r"\s")


@dataclass(slots=True)
class Msg:
    """A message delivered to a subscription (or the reply to a request).

    Attributes:
        subject: The subject it was published on.
        data: The payload.
        reply: The reply subject, or ``""``.
        headers: Its headers (``None`` when it had none); a header given
            several times keeps the last value.
        status: The status of a status message (``"503"`` for no
            responders), else ``None``.
        description: The status's description, if any.
    """

    subject: str
    data: bytes
    reply: str = ""
    headers: dict[str, str] | None = None
    status: str | None = None
    description: str = ""
    sid: int = field(default=0, repr=False)


def parse_headers(block: bytes) -> tuple[dict[str, str], str | None, str]:
    """The headers, status and description of a ``NATS/1.0`` header block.

    Raises:
        ProtocolError: The block does not start with ``NATS/1.0``.
    """
    lines = block.split(CRLF)
    first = lines[0]
    if not first.startswith(HEADER_LINE):
        raise ProtocolError(f"a header block must start with NATS/1.0, not {first[:40]!r}")
    status: str | None = None
    description = ""
    rest = first[len(HEADER_LINE) :].strip()
    if rest:
        parts = rest.split(None, 1)
        status = parts[0].decode()
        if len(parts) > 1:
            description = parts[1].decode("utf-8", "surrogateescape")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"a header line needs a colon: {line[:80]!r}")
        headers[key.decode("utf-8", "surrogateescape").strip()] = value.decode(
            "utf-8", "surrogateescape"
        ).strip()
    return headers, status, description


def encode_headers(headers: dict[str, str]) -> bytes:
    """The ``NATS/1.0`` block for ``headers`` (closed by the empty line).

    Raises:
        ValueError: A key is empty or holds a colon, whitespace or a control
            character, or a value holds CR or LF.
    """
    parts = [b"NATS/1.0\r\n"]
    for key, value in headers.items():
        if not key or ":" in key or _WHITESPACE.search(key):
            raise ValueError(
                f"a NATS header name must be non-empty, without ':' or whitespace: {key!r}"
            )
        if "\r" in value or "\n" in value:
            raise ValueError(f"the NATS header {key!r} has a CR or LF in its value: {value!r}")
        parts.append(b"%s: %s\r\n" % (key.encode(), value.encode("utf-8", "surrogateescape")))
    parts.append(CRLF)
    return b"".join(parts)


def check_subject(subject: str, what: str = "subject") -> bytes:
    """``subject`` as bytes, after checking it is a valid NATS subject.

    Raises:
        ValueError: It is empty or holds whitespace (or is not a ``str``).
    """
    if not isinstance(subject, str) or not subject or _WHITESPACE.search(subject):
        raise ValueError(f"a NATS {what} must be a non-empty str without whitespace: {subject!r}")
    return subject.encode()


def encode_connect(options: dict[str, Any]) -> bytes:
    return b"CONNECT " + json.dumps(options, separators=(",", ":")).encode() + CRLF


class Parser:
    """Turns the server's bytes, however split, into operations.

    ``feed(data)`` returns the complete operations now available, as tuples:
    ``(MSG, Msg)``, ``(PING,)``, ``(PONG,)``, ``(OK,)``, ``(ERR, text)``,
    ``(INFO, dict)``. Incomplete input waits for the next ``feed``.
    """

    __slots__ = ("_buffer", "_need", "_pending")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need = 0
        # The parsed MSG/HMSG line awaiting its payload:
        # (subject, sid, reply, header size or -1).
        self._pending: tuple[str, int, str, int] = ("", 0, "", -1)

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """The operations completed by ``data``.

        Raises:
            ProtocolError: Unknown operation, malformed line, or a control line
                longer than `MAX_CONTROL_LINE`.
        """
        buffer = self._buffer
        buffer += data
        ops: list[tuple[Any, ...]] = []
        start = 0
        end = len(buffer)
        while start < end:
            if self._need:
                if end - start < self._need:
                    break
                stop = start + self._need
                if buffer[stop - 2 : stop] != CRLF:
                    raise ProtocolError("a message payload is not followed by CRLF")
                subject, sid, reply, header_size = self._pending
                payload = bytes(buffer[start : stop - 2])
                start = stop
                self._need = 0
                if header_size < 0:
                    ops.append((MSG, Msg(subject, payload, reply, sid=sid)))
                else:
                    headers, status, description = parse_headers(payload[:header_size])
                    ops.append(
                        (
                            MSG,
                            Msg(
                                subject,
                                payload[header_size:],
                                reply,
                                headers,
                                status,
                                description,
                                sid,
                            ),
                        )
                    )
                continue
            eol = buffer.find(CRLF, start)
            if eol < 0:
                if end - start > MAX_CONTROL_LINE:
                    raise ProtocolError(f"a control line longer than {MAX_CONTROL_LINE} bytes")
                break
            line = bytes(buffer[start:eol])
            start = eol + 2
            op = line[:4].upper()
            if op == b"MSG ":
                self._start_msg(line, headers=False)
            elif op == b"HMSG":
                self._start_msg(line, headers=True)
            elif op == b"PING":
                ops.append((PING,))
            elif op == b"PONG":
                ops.append((PONG,))
            elif op == b"+OK":
                ops.append((OK,))
            elif op == b"-ERR":
                text = line[4:].strip().strip(b"'").decode("utf-8", "replace")
                ops.append((ERR, text))
            elif op == b"INFO":
                try:
                    info = json.loads(line[4:])
                except ValueError as error:
                    raise ProtocolError(f"INFO is not JSON: {line[:200]!r}") from error
                ops.append((INFO, info))
            else:
                raise ProtocolError(f"unknown operation from the server: {line[:80]!r}")
        del buffer[:start]
        return ops

    def _start_msg(self, line: bytes, *, headers: bool) -> None:
        parts = line.split()
        try:
            if headers:
                if len(parts) == 5:
                    _, subject, sid, header_size, total = parts
                    reply = b""
                elif len(parts) == 6:
                    _, subject, sid, reply, header_size, total = parts
                else:
                    raise ValueError
                hsize, size = int(header_size), int(total)
                if not 0 <= hsize <= size:
                    raise ValueError
            else:
                if len(parts) == 4:
                    _, subject, sid, total = parts
                    reply = b""
                elif len(parts) == 5:
                    _, subject, sid, reply, total = parts
                else:
                    raise ValueError
                hsize, size = -1, int(total)
            self._pending = (subject.decode(), int(sid), reply.decode(), hsize)
        except ValueError:
            raise ProtocolError(f"malformed message line: {line[:200]!r}") from None
        self._need = size + 2
