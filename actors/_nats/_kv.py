"""JetStream key-value buckets: a bucket is the stream ``KV_<bucket>`` on
``$KV.<bucket>.>``; each key is a subject, its revision the stream sequence
of its last message.

Compare-and-set comes from the server: ``Nats-Expected-Last-Subject-Sequence``
makes a write conditional on the key's last revision (0: no message at all),
which `KeyValue.create` and `KeyValue.update` use; a refusal names the
current revision. Deletes and purges are messages too (``KV-Operation``), and
nats-server 2.11+ writes a marker (``Nats-Marker-Reason``) when a key expires
in a bucket with ``marker_ttl``, so watchers see expiry as they see a delete.

Buckets are the same as nats-py's and the other official clients': either
side reads and watches what the other wrote.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any, Final, Literal

from ._errors import NoResponders, NotSupported
from ._jetstream import JetStream, JetStreamError
from ._kv_entry import (
    KV_OPERATION,
    BucketNotFound,
    KeyExists,
    KeyValueError,
    KvEntry,
    WrongRevision,
    check_key,
    operation_of,
    parse_time,
)
from ._kv_watch import KeyWatcher
from ._protocol import Msg, parse_headers

EXPECTED_LAST_SUBJECT_SEQ: Final = "Nats-Expected-Last-Subject-Sequence"
MSG_TTL: Final = "Nats-TTL"
ROLLUP: Final = "Nats-Rollup"
#: The server's "wrong last sequence" error codes (a failed compare-and-set).
_WRONG_LAST: Final = (10071, 10164)
_STREAM_NOT_FOUND: Final = 10059
_STREAM_NAME_IN_USE: Final = 10058
_NS: Final = 1_000_000_000

_BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")
_PATTERN = re.compile(r"^[-/_=.a-zA-Z0-9*>]+$")
_WRONG_LAST_TEXT = re.compile(r"wrong last sequence: (\d+)")


def _check_pattern(pattern: str) -> None:
    if not _PATTERN.match(pattern) or pattern[0] == "." or pattern[-1] == ".":
        raise ValueError(
            f"bad key pattern {pattern!r}: keys' characters, with * for one token "
            "and > for the rest (e.g. 'names.>')"
        )


def _ttl_header(ttl: float) -> str:
    if not ttl >= 1:
        raise ValueError(f"a key's ttl must be at least 1 second, not {ttl!r}")
    # The server keeps whole seconds: round up, never expire early.
    return f"{math.ceil(ttl)}s"


def _server_version(js: JetStream) -> tuple[int, int]:
    version = str(js._nc.server_info.get("version", "0.0.0"))
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


async def create_bucket(
    js: JetStream,
    bucket: str,
    *,
    history: int = 1,
    ttl: float | None = None,
    marker_ttl: float | None = None,
    allow_msg_ttl: bool | None = None,
    replicas: int = 1,
    storage: Literal["file", "memory"] = "file",
    max_value_size: int = -1,
    max_bytes: int = -1,
    direct: bool = True,
    description: str = "",
) -> KeyValue:
    """Create the bucket ``bucket`` (or bind it, if it exists with the same
    configuration).

    Args:
        js: JetStream on a connected client.
        bucket: Its name: letters, digits, ``-`` and ``_``.
        history: Revisions kept per key (1 to 64).
        ttl: Seconds an entry lives after it was written (the stream's
            ``max_age``); ``None``: forever.
        marker_ttl: With it, a key that expires (``ttl``, or its own ``ttl=``)
            leaves a marker, kept this many seconds, that watchers see as a
            ``PURGE`` (nats-server 2.11+; without it expiry is silent).
        allow_msg_ttl: Whether writes may give a key its own ``ttl=``;
            default: when the server can (2.11+).
        replicas: Copies in a cluster (use 3 for what must survive a server).
        storage: ``"file"`` or ``"memory"``.
        max_value_size: The largest value, in bytes (-1: the server's limit).
        max_bytes: The bucket's size limit (-1: none).
        direct: Let any replica answer `KeyValue.get` (faster; in a cluster a
            follower may answer from slightly behind the leader).
        description: Shown by the server's tools.

    Raises:
        ValueError: A bad name or setting.
        NotSupported: ``marker_ttl`` or ``allow_msg_ttl`` on a server older
            than 2.11.
        KeyValueError: The bucket exists with another configuration.
        JetStreamError: The server refused (no JetStream...).
    """
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise ValueError(f"bad bucket name {bucket!r}: use letters, digits, - and _")
    if not 1 <= history <= 64:
        raise ValueError(f"a bucket keeps 1 to 64 revisions per key, not history={history}")
    if ttl is not None and ttl < 0:
        raise ValueError(f"a bucket's ttl must be positive (or None), not {ttl}")
    if marker_ttl is not None and marker_ttl < 1:
        raise ValueError(f"marker_ttl must be at least 1 second, not {marker_ttl}")
    if storage not in ("file", "memory"):
        raise ValueError(f"storage is 'file' or 'memory', not {storage!r}")
    supported = _server_version(js) >= (2, 11)
    if allow_msg_ttl is None:
        allow_msg_ttl = supported
    elif allow_msg_ttl and not supported:
        raise NotSupported(
            "per-key TTLs (allow_msg_ttl) need nats-server 2.11 or later; this server is "
            f"{js._nc.server_info.get('version')}"
        )
    if marker_ttl is not None and not (supported and allow_msg_ttl):
        raise NotSupported(
            "expiry markers (marker_ttl) need nats-server 2.11 or later and allow_msg_ttl; "
            f"this server is {js._nc.server_info.get('version')}"
        )
    duplicate_window = 120 * _NS
    if ttl:
        duplicate_window = min(duplicate_window, int(ttl * _NS))
    config: dict[str, Any] = {
        "subjects": [f"$KV.{bucket}.>"],
        "retention": "limits",
        "discard": "new",
        "max_msgs_per_subject": history,
        "max_msgs": -1,
        "max_bytes": max_bytes,
        "max_msg_size": max_value_size,
        "max_consumers": -1,
        "max_age": int(ttl * _NS) if ttl else 0,
        "duplicate_window": duplicate_window,
        "num_replicas": replicas,
        "storage": storage,
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "deny_purge": False,
        "allow_direct": direct,
    }
    if description:
        config["description"] = description
    if allow_msg_ttl:
        config["allow_msg_ttl"] = True
    if marker_ttl is not None:
        config["subject_delete_marker_ttl"] = int(marker_ttl * _NS)
    try:
        info = await js.add_stream(f"KV_{bucket}", **config)
    except JetStreamError as error:
        if error.err_code == _STREAM_NAME_IN_USE:
            raise KeyValueError(
                f"bucket {bucket!r} exists with another configuration: bind_bucket() "
                "uses it as it is; or delete_bucket() it first"
            ) from error
        raise
    return KeyValue(js, bucket, direct=bool(info["config"].get("allow_direct")))


async def bind_bucket(js: JetStream, bucket: str) -> KeyValue:
    """The existing bucket ``bucket`` (made by us or by another client).

    Raises:
        ValueError: A bad name.
        BucketNotFound: There is none.
        KeyValueError: Its stream is not a bucket.
    """
    if not isinstance(bucket, str) or not _BUCKET.match(bucket):
        raise ValueError(f"bad bucket name {bucket!r}: use letters, digits, - and _")
    try:
        info = await js.stream_info(f"KV_{bucket}")
    except JetStreamError as error:
        if error.err_code == _STREAM_NOT_FOUND:
            raise BucketNotFound(
                f"no key-value bucket {bucket!r} (no stream KV_{bucket}): create_bucket() it"
            ) from None
        raise
    if int(info["config"].get("max_msgs_per_subject", 0)) < 1:
        raise KeyValueError(f"the stream KV_{bucket} is not a key-value bucket")
    return KeyValue(js, bucket, direct=bool(info["config"].get("allow_direct")))


async def delete_bucket(js: JetStream, bucket: str) -> None:
    """Delete the bucket, its keys and its watchers' consumers.

    Raises:
        BucketNotFound: There is none.
    """
    try:
        await js.delete_stream(f"KV_{bucket}")
    except JetStreamError as error:
        if error.err_code == _STREAM_NOT_FOUND:
            raise BucketNotFound(f"no key-value bucket {bucket!r}") from None
        raise


class KeyValue:
    """A key-value bucket: made by `create_bucket` or `bind_bucket`.

    Every method is one JetStream request (or two: see `create`), bounded
    by the `JetStream`'s timeout; a cancelled write may or may not have been
    stored (read the key again).

    Example:
        >>> kv = await create_bucket(js, "names", ttl=10.0, replicas=3)  # doctest: +SKIP
        >>> rev = await kv.create("names.billing", b"node-1")  # doctest: +SKIP
        >>> rev = await kv.update("names.billing", b"node-1", last=rev)  # doctest: +SKIP
    """

    def __init__(self, js: JetStream, bucket: str, *, direct: bool) -> None:
        self.js = js
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."
        self._direct = direct

    def __repr__(self) -> str:
        return f"<KeyValue {self.bucket!r}>"

    # -- writes ------------------------------------------------------------------------

    async def _write(
        self,
        key: str,
        value: bytes,
        *,
        last: int | None,
        headers: dict[str, str] | None = None,
        ttl: float | None = None,
    ) -> int:
        check_key(key)
        all_headers = dict(headers or {})
        if last is not None:
            all_headers[EXPECTED_LAST_SUBJECT_SEQ] = str(last)
        if ttl is not None:
            all_headers[MSG_TTL] = _ttl_header(ttl)
        try:
            ack = await self.js.publish(self.prefix + key, value, headers=all_headers or None)
        except JetStreamError as error:
            if error.err_code in _WRONG_LAST and last is not None:
                match = _WRONG_LAST_TEXT.search(error.description)
                revision = int(match.group(1)) if match else -1
                raise WrongRevision(key, last, revision) from None
            if error.code == 503 and error.err_code == 0:
                raise BucketNotFound(
                    f"no key-value bucket {self.bucket!r} takes writes (deleted?)"
                ) from error
            raise
        return ack.seq

    async def put(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Set ``key`` to ``value``, whatever it held.

        Args:
            key: The key.
            value: The value.
            ttl: Seconds this revision lives (whole seconds, at least 1; the
                bucket needs ``allow_msg_ttl``).

        Returns:
            The new revision.

        Raises:
            ValueError: A bad key or ttl.
            BucketNotFound: The bucket is gone.
            JetStreamError: The server refused it (too large, per-key TTLs
                not allowed...).
            NatsTimeout: No answer in time: it may have been stored.
        """
        return await self._write(key, value, last=None, ttl=ttl)

    async def create(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Set ``key`` only if it holds no value (never set, deleted, purged
        or expired): a compare-and-set, so of many creators exactly one wins.

        A key whose last message is a delete marker takes a second request
        (it is replaced only if that marker is still the last).

        Returns:
            The new revision.

        Raises:
            KeyExists: The key holds a value; ``revision`` is its revision.
            ValueError, BucketNotFound, JetStreamError, NatsTimeout: As `put`.
        """
        last = 0
        for _ in range(8):
            try:
                return await self._write(key, value, last=last, ttl=ttl)
            except WrongRevision as wrong:
                current = wrong.revision
            if current < 0:  # the server's text did not say: look
                marker = await self.get(key, include_deleted=True)
                current = marker.revision if marker is not None else 0
            if current == 0:
                last = 0
                continue  # the marker just expired: try again as new
            entry = await self.get(key, revision=current)
            if entry is not None and entry.key == key and not entry.deleted:
                raise KeyExists(key, current)
            last = current  # deleted: replace the marker, if still the last
        raise KeyValueError(f"create({key!r}): the key kept changing; try again")

    async def update(self, key: str, value: bytes, *, last: int, ttl: float | None = None) -> int:
        """Set ``key`` only if its revision is still ``last``: a
        compare-and-set (a lease renews itself this way).

        Returns:
            The new revision.

        Raises:
            WrongRevision: The key is at another revision (``revision``).
            ValueError, BucketNotFound, JetStreamError, NatsTimeout: As `put`.
        """
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ValueError(f"update needs last= a revision (an int >= 0), not {last!r}")
        return await self._write(key, value, last=last, ttl=ttl)

    async def delete(self, key: str, *, last: int | None = None) -> int:
        """Delete ``key``: a ``DEL`` marker that watchers see; earlier
        revisions stay in the history. With ``last``, only if the key is
        still at that revision.

        Returns:
            The marker's revision.

        Raises:
            WrongRevision: ``last`` given, and the key is at another revision.
            ValueError, BucketNotFound, JetStreamError, NatsTimeout: As `put`.
        """
        return await self._write(key, b"", last=last, headers={KV_OPERATION: "DEL"})

    async def purge(self, key: str, *, last: int | None = None) -> int:
        """Delete ``key`` and its history: a ``PURGE`` marker that watchers
        see replaces every earlier revision.

        Returns:
            The marker's revision.

        Raises:
            WrongRevision: ``last`` given, and the key is at another revision.
            ValueError, BucketNotFound, JetStreamError, NatsTimeout: As `put`.
        """
        headers = {KV_OPERATION: "PURGE", ROLLUP: "sub"}
        return await self._write(key, b"", last=last, headers=headers)

    # -- reads -------------------------------------------------------------------------

    async def get(
        self, key: str, *, revision: int | None = None, include_deleted: bool = False
    ) -> KvEntry | None:
        """The key's entry, or ``None`` if it holds no value (never set,
        deleted, purged or expired).

        Args:
            key: The key.
            revision: That revision instead of the last (``None`` if that
                revision is not this key's, or no longer kept).
            include_deleted: Return a delete, purge or expiry marker as an
                entry (``deleted`` true) instead of ``None``.

        Raises:
            ValueError: A bad key.
            BucketNotFound: The bucket is gone.
            NatsTimeout: No answer in time.
        """
        check_key(key)
        subject = self.prefix + key
        entry = await (self._get_direct if self._direct else self._get_api)(subject, revision)
        if entry is None or entry.key != key:
            return None
        if entry.deleted and not include_deleted and revision is None:
            return None
        return entry

    async def _get_direct(self, subject: str, revision: int | None) -> KvEntry | None:
        js = self.js
        try:
            if revision is None:
                msg = await js._nc.request(
                    f"{js.prefix}.DIRECT.GET.{self.stream}.{subject}", timeout=js.timeout
                )
            else:
                msg = await js._nc.request(
                    f"{js.prefix}.DIRECT.GET.{self.stream}",
                    json.dumps({"seq": revision}).encode(),
                    timeout=js.timeout,
                )
        except NoResponders:
            raise BucketNotFound(f"no key-value bucket {self.bucket!r} answers") from None
        if msg.status is not None:
            if msg.status == "404":
                return None
            raise JetStreamError(int(msg.status), 0, msg.description or "direct get failed")
        return self._entry_from_direct(msg)

    def _entry_from_direct(self, msg: Msg) -> KvEntry:
        headers = msg.headers or {}
        subject = headers.get("Nats-Subject", msg.subject)
        return KvEntry(
            self.bucket,
            subject[len(self.prefix) :],
            msg.data,
            int(headers.get("Nats-Sequence", "0")),
            operation_of(headers),
            parse_time(headers.get("Nats-Time-Stamp", "1970-01-01T00:00:00Z")),
        )

    async def _get_api(self, subject: str, revision: int | None) -> KvEntry | None:
        query: dict[str, Any] = {"seq": revision} if revision else {"last_by_subj": subject}
        try:
            answer = await self.js._api(f"STREAM.MSG.GET.{self.stream}", query)
        except JetStreamError as error:
            if error.code == 404 and error.err_code != _STREAM_NOT_FOUND:
                return None
            if error.err_code == _STREAM_NOT_FOUND:
                raise BucketNotFound(f"no key-value bucket {self.bucket!r}") from None
            raise
        message = answer["message"]
        headers: dict[str, str] | None = None
        if message.get("hdrs"):
            headers = parse_headers(base64.b64decode(message["hdrs"]))[0]
        subject = message["subject"]
        return KvEntry(
            self.bucket,
            subject[len(self.prefix) :] if subject.startswith(self.prefix) else "",
            base64.b64decode(message.get("data") or b""),
            int(message["seq"]),
            operation_of(headers),
            parse_time(message["time"]),
        )

    async def keys(self, pattern: str = ">") -> list[str]:
        """The keys (matching ``pattern``) that hold a value now; ``[]`` if none.

        Reads through a short-lived watcher (headers only).

        Raises:
            ValueError: A bad pattern.
            BucketNotFound: The bucket is gone.
        """
        async with self.watch(pattern, include_deletes=False, meta_only=True) as watcher:
            return [entry.key for entry in await watcher.initial()]

    async def history(self, key: str) -> list[KvEntry]:
        """Every revision of ``key`` the bucket keeps, oldest first (markers included).

        Raises:
            ValueError: A bad key.
            BucketNotFound: The bucket is gone.
        """
        check_key(key)
        async with self.watch(key, history=True) as watcher:
            return await watcher.initial()

    def watch(
        self,
        pattern: str | list[str] = ">",
        *,
        history: bool = False,
        updates_only: bool = False,
        include_deletes: bool = True,
        meta_only: bool = False,
        heartbeat: float = 2.0,
        batch: int = 256,
    ) -> KeyWatcher:
        """Watch the keys matching ``pattern`` (``*``: one token, ``>``: the
        rest; or a list of patterns): use ``async with kv.watch(...) as w``,
        then ``await w.initial()`` for the values now and ``async for entry
        in w`` for what comes next (the iterator alone gives both).

        See `KeyWatcher` for how it survives reconnections and lost consumers.

        Args:
            pattern: The key pattern(s).
            history: Start with every kept revision, not only the last of
                each key.
            updates_only: Start with nothing: only later changes.
            include_deletes: Give deletes, purges and expiries as entries.
            meta_only: Leave values out (``b""``): for listing keys.
            heartbeat: Seconds between the server's heartbeats while idle;
                two missed mean the consumer is lost, and it is made again.
            batch: Messages per pull (bounds what the watcher buffers).

        Raises:
            ValueError: A bad pattern or setting.
        """
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        if not patterns:
            raise ValueError("watch needs at least one key pattern")
        for one in patterns:
            _check_pattern(one)
        if history and updates_only:
            raise ValueError("watch: history and updates_only exclude each other")
        if heartbeat <= 0 or batch < 1:
            raise ValueError(f"watch needs heartbeat > 0 and batch >= 1: {heartbeat}, {batch}")
        if history:
            deliver = "all"
        elif updates_only:
            deliver = "new"
        else:
            deliver = "last_per_subject"
        return KeyWatcher(
            self,
            [self.prefix + one for one in patterns],
            deliver=deliver,
            include_deletes=include_deletes,
            meta_only=meta_only,
            heartbeat=heartbeat,
            batch=batch,
        )
