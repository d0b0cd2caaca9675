"""The envelope: what travels between processes for each message.

One envelope format serves every transport (a socketpair to a child process,
TCP between systems, NATS later): a kind, the addressee, the sender, a reply
token, string headers (``traceparent``, ``msg-id``, ``deliveries``...) and the
body, already pickled by :mod:`actors._codec`. The envelope itself needs no
pickle: a fixed header of lengths, then the fields' bytes::

    kind u8 | reply_token u64 | len(to) u16 | len(sender) u16 |
    len(headers) u32 | len(body) u32 | to | sender | headers | body

``to`` and ``sender`` are UTF-8; headers are UTF-8 ``key NUL value NUL ...``
(so neither may contain NUL). A batch is envelopes end to end.

Examples:
    >>> envelope = Envelope(Kind.TELL, "/user/a", "/user/b", 0, {"msg-id": "7"}, b"...")
    >>> decode_batch(encode(envelope) + encode(envelope._replace(reply_token=1)))[1].reply_token
    1
"""

from __future__ import annotations

import enum
import struct
from typing import Final, NamedTuple


class Kind(enum.IntEnum):
    """What an envelope is for.

    Examples:
        >>> Kind(1).name
        'ASK'
    """

    TELL = 0
    ASK = 1
    REPLY = 2
    CANCEL = 3
    SIGNAL = 4
    #: Traffic of a channel with an end in another process (``actors._wire_channel``).
    CHANNEL = 5


_KINDS: Final = tuple(Kind)
_KIND_VALUES: Final = frozenset(_KINDS)


class Envelope(NamedTuple):
    """One message on the wire.

    Examples:
        >>> Envelope(Kind.TELL, "/user/a", "", 0, {}, b"").to
        '/user/a'
    """

    kind: Kind
    #: The addressee (an actor path, or whatever the layer above routes by).
    to: str
    #: Who sent it, for replies and ``Terminated``; ``""`` for nobody.
    sender: str
    #: Pairs a reply or a cancel with its ask; ``0`` for none.
    reply_token: int
    headers: dict[str, str]
    #: The message, pickled.
    body: bytes


#: The fixed part of an encoded envelope.
HEAD: Final = struct.Struct("!BQHHII")
_TELL_HEAD: Final = HEAD.pack
_MAX_NAME: Final = 0xFFFF
_MAX_BODY: Final = 0xFFFF_FFFF


def _encode_headers(headers: dict[str, str]) -> bytes:
    parts = [text for item in headers.items() for text in item]
    try:
        joined = "\0".join(parts)
    except TypeError:
        raise TypeError(
            f"envelope headers map str to str, got {headers!r}: convert the values with str()"
        ) from None
    if joined.count("\0") != len(parts) - 1:
        raise ValueError(f"envelope headers {headers!r} contain a NUL character")
    return joined.encode()


def encode(envelope: Envelope) -> bytes:
    """The envelope's bytes, for :func:`decode_batch`.

    Args:
        envelope: The envelope.

    Returns:
        Its encoding; envelopes encoded one after another form a batch.

    Raises:
        ValueError: A field is too long (``to`` or ``sender`` over 65,535
            bytes, the body over 4 GiB), a header contains a NUL, or the kind
            or the reply token is out of range.
        TypeError: A header key or value is not a ``str``.

    Examples:
        >>> len(encode(Envelope(Kind.TELL, "/user/a", "", 0, {}, b"body")))
        32
    """
    kind, to, sender, reply_token, headers, body = envelope
    to_bytes = to.encode()
    sender_bytes = sender.encode()
    header_bytes = _encode_headers(headers) if headers else b""
    if len(to_bytes) > _MAX_NAME or len(sender_bytes) > _MAX_NAME or len(body) > _MAX_BODY:
        raise ValueError(
            f"envelope to {to[:80]!r} is too large to encode: 'to' and 'sender' hold "
            f"at most {_MAX_NAME:,} bytes (got {len(to_bytes):,} and {len(sender_bytes):,}), "
            f"the body at most {_MAX_BODY:,} (got {len(body):,})"
        )
    try:
        if kind not in _KIND_VALUES:
            raise struct.error("unknown kind")
        head = HEAD.pack(
            kind, reply_token, len(to_bytes), len(sender_bytes), len(header_bytes), len(body)
        )
    except struct.error as error:
        raise ValueError(
            f"cannot encode the envelope to {to[:80]!r}: kind {kind!r} must be a Kind and "
            f"the reply token {reply_token!r} a whole number from 0 to 2**64 - 1 ({error})"
        ) from None
    return b"".join(
        (
            head,
            to_bytes,
            sender_bytes,
            header_bytes,
            body,
        )
    )


def encode_tell(to: bytes, body: bytes) -> bytes:
    """``encode(Envelope(Kind.TELL, to.decode(), "", 0, {}, body))``, for the
    hot path of a tell to an actor whose address is already encoded.

    Examples:
        >>> tell = Envelope(Kind.TELL, "/user/a", "", 0, {}, b"body")
        >>> encode_tell(b"/user/a", b"body") == encode(tell)
        True
    """
    if len(body) > _MAX_BODY:
        raise ValueError(
            f"a message of {len(body):,} bytes is too large to send (at most {_MAX_BODY:,})"
        )
    return b"".join((_TELL_HEAD(0, 0, len(to), 0, 0, len(body)), to, body))


def encode_reply(reply_token: int, body: bytes) -> bytes:
    """``encode(Envelope(Kind.REPLY, "", "", reply_token, {}, body))``, for
    the hot path of an answer to an ask.

    Raises:
        ValueError: As :func:`encode`.

    Examples:
        >>> reply = Envelope(Kind.REPLY, "", "", 7, {}, b"body")
        >>> encode_reply(7, b"body") == encode(reply)
        True
    """
    try:
        return b"".join((HEAD.pack(Kind.REPLY, reply_token, 0, 0, 0, len(body)), body))
    except struct.error as error:
        raise ValueError(
            f"cannot encode a reply: the reply token {reply_token!r} must be a whole "
            f"number from 0 to 2**64 - 1, the body at most {_MAX_BODY:,} bytes ({error})"
        ) from None


def _decode_headers(data: bytes) -> dict[str, str]:
    parts = data.decode().split("\0")
    if len(parts) % 2:
        raise ValueError("malformed envelope headers: a key without a value")
    return dict(zip(parts[::2], parts[1::2], strict=True))


def decode_batch(payload: bytes) -> list[Envelope]:
    """The envelopes of a batch, in order.

    Args:
        payload: Encoded envelopes end to end (see :func:`encode`).

    Returns:
        The envelopes.

    Raises:
        ValueError: The payload is not a well-formed batch.

    Examples:
        >>> decode_batch(b"")
        []
    """
    envelopes: list[Envelope] = []
    append = envelopes.append
    unpack_from = HEAD.unpack_from
    head_size = HEAD.size
    kinds = _KINDS
    new = tuple.__new__  # an Envelope without NamedTuple's Python-level __new__
    position = 0
    end = len(payload)
    try:
        while position < end:
            kind, token, to_size, sender_size, headers_size, body_size = unpack_from(
                payload, position
            )
            to_at = position + head_size
            sender_at = to_at + to_size
            headers_at = sender_at + sender_size
            body_at = headers_at + headers_size
            position = body_at + body_size
            headers = _decode_headers(payload[headers_at:body_at]) if headers_size else {}
            to = payload[to_at:sender_at].decode()
            sender = payload[sender_at:headers_at].decode() if sender_size else ""
            body = payload[body_at:position]
            append(new(Envelope, (kinds[kind], to, sender, token, headers, body)))
    except (struct.error, UnicodeDecodeError, IndexError) as error:
        raise ValueError(f"malformed envelope batch: {error}") from error
    if position != end:
        raise ValueError("malformed envelope batch: the last envelope runs past its end")
    return envelopes
