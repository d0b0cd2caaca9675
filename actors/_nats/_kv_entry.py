"""Key-value entries and errors: what a key's message means (PUT, DEL,
PURGE or an expiry marker), and the server's times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from ._errors import NatsError

#: What a message on a key says about it.
Operation = Literal["PUT", "DEL", "PURGE"]

KV_OPERATION: Final = "KV-Operation"
MARKER_REASON: Final = "Nats-Marker-Reason"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class KeyValueError(NatsError):
    """A key-value operation failed (base of the errors below)."""


class BucketNotFound(KeyValueError):
    """No bucket of that name (its stream ``KV_<bucket>`` does not exist)."""


class WrongRevision(KeyValueError):
    """A conditional write found another revision than the one expected.

    Attributes:
        key: The key.
        expected: The revision the write expected (0: no entry at all).
        revision: The key's revision now (0: it has none), as the server
            reported it.
    """

    def __init__(self, key: str, expected: int, revision: int, message: str = "") -> None:
        super().__init__(
            message
            or f"key {key!r} is at revision {revision}, not {expected}: someone else wrote it; "
            "get() it again and retry with last= its revision"
        )
        self.key = key
        self.expected = expected
        self.revision = revision


class KeyExists(WrongRevision):
    """`KeyValue.create` found the key holding a value (``revision`` is its
    revision: `KeyValue.update` with ``last=revision`` replaces it)."""

    def __init__(self, key: str, revision: int) -> None:
        super().__init__(
            key,
            0,
            revision,
            f"key {key!r} exists (revision {revision}): create() only makes new keys; "
            f"update(key, value, last={revision}) replaces it",
        )


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One revision of a key.

    Attributes:
        bucket: The bucket's name.
        key: The key.
        value: The value (``b""`` for a delete or purge).
        revision: Its stream sequence: increases with every write to the bucket.
        operation: ``"PUT"``, ``"DEL"`` or ``"PURGE"`` (a purge, or an
            expiry marker the server wrote).
        created: When it was written (UTC).
        delta: For a watcher, how many more messages its consumer had
            pending after this one (0 for `KeyValue.get`).
    """

    bucket: str
    key: str
    value: bytes
    revision: int
    operation: Operation
    created: datetime
    delta: int = 0

    @property
    def deleted(self) -> bool:
        """Whether this revision removes the key (a delete, purge or expiry)."""
        return self.operation != "PUT"


def operation_of(headers: dict[str, str] | None) -> Operation:
    """The operation a key's message stands for, from its headers."""
    if not headers:
        return "PUT"
    op = headers.get(KV_OPERATION)
    if op == "DEL":
        return "DEL"
    if op == "PURGE":
        return "PURGE"
    reason = headers.get(MARKER_REASON)
    if reason is None:
        return "PUT"
    # nats-server 2.11+: "MaxAge" (expired) and "Purge" as a purge, "Remove"
    # as a delete; any other marker still means the value is gone.
    return "PURGE" if reason in ("MaxAge", "Purge") else "DEL"


def time_from_ns(ns: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch (to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def parse_time(text: str) -> datetime:
    """A UTC datetime from the server's RFC 3339 time (nanoseconds allowed,
    which ``datetime.fromisoformat`` refuses before Python 3.11).

    Raises:
        ValueError: Not an RFC 3339 time.
    """
    match = _TIME.match(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, fraction, zone = match.groups()
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return (moment.replace(microsecond=micro) - offset).replace(tzinfo=timezone.utc)


def check_key(key: str) -> None:
    """Raises ValueError unless ``key`` is a valid key (letters, digits,
    ``-/_=.``, not starting or ending with a dot)."""
    if not isinstance(key, str) or not _KEY.match(key) or key[0] == "." or key[-1] == ".":
        raise ValueError(
            f"bad key {key!r}: a key is letters, digits and -/_=. "
            "(dots separate tokens; not first or last)"
        )
