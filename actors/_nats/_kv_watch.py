"""Watching a key-value bucket through an ordered pull consumer that is made
again, from where it stopped, whenever it may have been lost.

The consumer is ephemeral (memory, one replica, no acks). It is made again,
starting after the last stream sequence the watcher saw, after a
reconnection, a gap in its sequence, two missed heartbeats, or the server
saying it is gone; making it again deletes the old one first, so a watcher
does not pile up consumers on the server, and one left behind by a crashed
process goes after the server's ``inactive_threshold``. The delete waits at
most ``REMAKE_WAIT``, and the new consumer has a new name: in a server
cluster a consumer whose server died can be neither deleted nor made again
under its name until that server is back (the requests go unanswered), and
the watch must not wait for it; such a consumer goes after
``inactive_threshold``, unless the watcher deletes it first: it tries again
once a heartbeat interval, and on closing. Making the new one waits at most ``REMAKE_WAIT``
as well (the server cluster may place it on the server that just died,
before it knows), then it is tried again under another new name. This is
where other clients' watchers broke across reconnects (nats.go#1777,
nats.rs#1596) or leaked consumers (nats-server#5352).

The watcher pulls: the server sends a batch only when the previous one is
taken, so a slow reader holds back the server, never the client's
connection, and nothing is dropped.

# Invariants:
# - `_sub` is the inbox of the current consumer only: a new consumer gets a
#   new inbox, so nothing from an old one is ever taken for the new one's.
# - `_next_cseq` is the consumer sequence of the next message of the current
#   consumer; any other sequence is a gap, and the consumer is made again
#   from `_last_seq` + 1.
# - `_last_seq` is the stream sequence of the last message taken; every
#   entry given out has a larger one than the entry before it.
# - `_pull_left` > 0 exactly while a pull is open on the current consumer,
#   and counts the messages it may still bring.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._errors import ConnectionClosed, NatsConnectionLost, NatsError, NatsTimeout, NoResponders
from ._jetstream import JetStreamError, parse_ack_subject
from ._kv_entry import BucketNotFound, KvEntry, operation_of, time_from_ns
from ._subscription import Subscription

if TYPE_CHECKING:
    from types import TracebackType

    from ._kv import KeyValue

_NS: Final = 1_000_000_000
#: Seconds a pull stays open on the server before it ends it (and we pull again).
PULL_EXPIRES: Final = 30.0
#: Seconds the server keeps a consumer nobody pulls from (a crashed watcher's).
INACTIVE_THRESHOLD: Final = 120.0
#: Seconds making the consumer again waits for each request (deleting the
#: old one, making the new one) before going on without it.
REMAKE_WAIT: Final = 2.0
#: Seconds each try gives to deleting an old consumer left behind.
ORPHAN_WAIT: Final = 0.5
_STREAM_NOT_FOUND: Final = 10059
_CONSUMER_NOT_FOUND: Final = 10014


class KeyWatcher:
    """Changes to a bucket's keys, as `KvEntry` objects; from `KeyValue.watch`.

    An async context manager: entering makes the consumer, leaving deletes
    it. ``await initial()`` returns the entries the watcher started with
    (the last value of each key, or every kept revision with ``history``);
    ``async for entry in watcher`` gives what comes next (or everything, if
    `initial` was not called). `initial_done` says whether the starting
    entries have all been given.

    A watcher survives reconnections and lost consumers (see the module's
    notes): entries are given in revision order, none twice, none skipped
    that the bucket still keeps (a key changed several times while the
    consumer was being made again gives each change its history keeps:
    with ``history=1``, the last). Iteration raises `ConnectionClosed` if the client
    closes, and `BucketNotFound` if the bucket is deleted.

    Example:
        >>> async with kv.watch("names.>") as watcher:  # doctest: +SKIP
        ...     cache = {e.key: e for e in await watcher.initial()}
        ...     async for entry in watcher:
        ...         cache[entry.key] = entry
    """

    def __init__(
        self,
        kv: KeyValue,
        subjects: list[str],
        *,
        deliver: str,
        include_deletes: bool,
        meta_only: bool,
        heartbeat: float,
        batch: int,
    ) -> None:
        self._kv = kv
        self._nc = kv.js._nc
        self._subjects = subjects
        self._deliver = deliver
        self._include_deletes = include_deletes
        self._meta_only = meta_only
        self._heartbeat = heartbeat
        self._batch = batch
        self.consumer_name = "kvw_" + secrets.token_hex(10)
        self._sub: Subscription | None = None
        self._made = False
        self._last_seq = 0
        self._next_cseq = 1
        self._pull_left = 0
        self._stale = False
        self._wait_scope: anyio.CancelScope | None = None
        self._initial_done = False
        self._closed = False
        #: Old consumers that could not be deleted in time (their server
        #: died): tried again once a heartbeat interval, and on closing.
        self._orphans: list[str] = []
        self._orphans_due = 0.0
        self._remove_listener: object = None
        #: How many times the consumer was made again (after the first).
        self.recreations = 0

    @property
    def initial_done(self) -> bool:
        """Whether the entries the watcher started with have all been given."""
        return self._initial_done

    @property
    def last_revision(self) -> int:
        """The revision (stream sequence) of the last message taken, or 0."""
        return self._last_seq

    async def __aenter__(self) -> KeyWatcher:
        """Make the consumer.

        Raises:
            BucketNotFound: No such bucket.
            JetStreamError, NatsTimeout: The server refused, or did not answer.
        """
        self._remove_listener = self._nc.add_reconnect_listener(self._reconnected)
        try:
            await self._make()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop: unsubscribe and delete the consumer (bounded by the
        JetStream timeout; a consumer left behind goes after the server's
        inactive threshold). Idempotent; shielded from cancellation."""
        if self._closed:
            return
        self._closed = True
        remove = self._remove_listener
        if callable(remove):
            remove()
        with anyio.CancelScope(shield=True):
            if self._sub is not None:
                with contextlib.suppress(NatsError):
                    await self._sub.unsubscribe()
            if self._made and not self._nc.is_closed:
                with anyio.move_on_after(self._kv.js.timeout), contextlib.suppress(NatsError):
                    for name in [*self._orphans, self.consumer_name]:
                        await self._delete_consumer(name)

    def _reconnected(self) -> None:
        # In the client's task: only mark, and wake the waiting reader.
        self._stale = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    # -- the consumer ------------------------------------------------------------------

    async def _delete_consumer(self, name: str | None = None) -> None:
        kv = self._kv
        try:
            await kv.js._api(f"CONSUMER.DELETE.{kv.stream}.{name or self.consumer_name}")
        except JetStreamError as error:
            if error.code != 404:
                raise

    async def _drop_consumer(self) -> None:
        """Delete the consumer, waiting at most `REMAKE_WAIT`, and take a
        new name for the next (see the module's notes)."""
        deleted = False
        with anyio.move_on_after(min(REMAKE_WAIT, self._kv.js.timeout)):
            with contextlib.suppress(JetStreamError, NatsTimeout):
                await self._delete_consumer()
                deleted = True
        if not deleted:
            self._orphans.append(self.consumer_name)
        self.consumer_name = "kvw_" + secrets.token_hex(10)

    async def _delete_orphans(self) -> None:
        """Try again to delete the old consumers left behind, a moment each."""
        for name in list(self._orphans):
            with anyio.move_on_after(ORPHAN_WAIT), contextlib.suppress(NatsError):
                await self._delete_consumer(name)
                self._orphans.remove(name)

    async def _create(self, config: dict[str, object]) -> dict[str, Any]:
        """Make the consumer; when making it again, delete the old one first
        and wait at most `REMAKE_WAIT` for each (see the module's notes)."""
        kv = self._kv
        request = {"stream_name": kv.stream, "config": config}
        if not self._made:
            return await kv.js._api(f"CONSUMER.CREATE.{kv.stream}.{self.consumer_name}", request)
        await self._drop_consumer()
        subject = f"CONSUMER.CREATE.{kv.stream}.{self.consumer_name}"
        wait = min(REMAKE_WAIT, kv.js.timeout)
        with anyio.move_on_after(wait):
            return await kv.js._api(subject, request)
        raise NatsTimeout(
            f"the watcher's consumer on {kv.stream} was not made within {wait} s "
            "(it is tried again under a new name)"
        )

    async def _make(self) -> None:
        """Make the consumer (again, after deleting the old one), starting
        after `_last_seq` if a message was taken already."""
        try:
            await self._make_now()
        except BaseException:
            self._stale = True  # cancelled or failed half-way: made again next time
            raise

    async def _make_now(self) -> None:
        kv = self._kv
        nc = self._nc
        # Cleared first: a reconnection while this runs marks it again.
        self._stale = False
        self._pull_left = 0
        if self._sub is not None:
            old, self._sub = self._sub, None
            await old.unsubscribe()
        # Room for a whole batch, the heartbeats of a pull nobody reads and
        # its end: the client's reader never waits on this subscription.
        room = self._batch + math.ceil(PULL_EXPIRES / self._heartbeat) + 8
        self._sub = await nc.subscribe(nc.new_inbox(), pending_msgs=room)
        config: dict[str, object] = {
            "name": self.consumer_name,
            "ack_policy": "none",
            "max_deliver": 1,
            "replay_policy": "instant",
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": int(INACTIVE_THRESHOLD * _NS),
            "headers_only": self._meta_only,
        }
        if self._last_seq:
            config["deliver_policy"] = "by_start_sequence"
            config["opt_start_seq"] = self._last_seq + 1
        else:
            config["deliver_policy"] = self._deliver
        if len(self._subjects) == 1:
            config["filter_subject"] = self._subjects[0]
        else:
            config["filter_subjects"] = self._subjects
        try:
            info = await self._create(config)
        except JetStreamError as error:
            if error.err_code == _STREAM_NOT_FOUND:
                raise BucketNotFound(f"no key-value bucket {kv.bucket!r}") from None
            raise
        self._made = True
        self._next_cseq = 1
        if not self._initial_done and int(info.get("num_pending", 0)) == 0:
            self._initial_done = True

    async def _remake(self) -> None:
        """`_make`, retried with backoff until it works (the server may be
        electing a leader or starting up): only the caller's cancellation
        or a deleted bucket stop it."""
        self.recreations += 1
        pause = 0.05
        while True:
            if self._nc.is_closed:
                raise ConnectionClosed("the NATS client is closed: the watch ends") from None
            try:
                await self._make()
                return
            except (JetStreamError, NatsTimeout, NatsConnectionLost, NoResponders):
                await anyio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def _pull(self) -> None:
        kv = self._kv
        assert self._sub is not None
        request = {
            "batch": self._batch,
            "expires": int(PULL_EXPIRES * _NS),
            "idle_heartbeat": int(self._heartbeat * _NS),
        }
        await self._nc.publish(
            f"{kv.js.prefix}.CONSUMER.MSG.NEXT.{kv.stream}.{self.consumer_name}",
            json.dumps(request).encode(),
            reply=self._sub.subject,
        )
        self._pull_left = self._batch

    # -- reading -----------------------------------------------------------------------

    async def _step(self) -> KvEntry | None:
        """Take one message: an entry, or ``None`` for one that gives none
        (a skipped delete). Waits for it."""
        while True:
            if self._closed:
                raise anyio.ClosedResourceError("the watcher is closed")
            if self._stale:
                await self._remake()
                continue
            if self._orphans and anyio.current_time() >= self._orphans_due:
                self._orphans_due = anyio.current_time() + self._heartbeat
                await self._delete_orphans()
            sub = self._sub
            assert sub is not None
            if not self._pull_left:
                await self._pull()
            with anyio.CancelScope() as scope:
                self._wait_scope = scope
                try:
                    msg = await sub.next_msg(2 * self._heartbeat)
                except NatsTimeout:
                    self._stale = True  # two heartbeats missed: the consumer is gone
                    continue
                except anyio.EndOfStream:
                    if self._nc.is_closed:
                        raise ConnectionClosed("the NATS client closed: the watch ends") from None
                    self._stale = True
                    continue
                finally:
                    self._wait_scope = None
            if scope.cancelled_caught:
                continue  # reconnected: `_stale` is set
            status = msg.status
            if status is None:
                meta = parse_ack_subject(msg.reply)
                if meta.consumer_seq != self._next_cseq:
                    self._stale = True  # a gap: start again after the last taken
                    continue
                self._next_cseq += 1
                self._pull_left -= 1
                if meta.stream_seq <= self._last_seq:
                    continue
                self._last_seq = meta.stream_seq
                if meta.num_pending == 0:
                    self._initial_done = True
                operation = operation_of(msg.headers)
                if operation != "PUT" and not self._include_deletes:
                    return None
                kv = self._kv
                return KvEntry(
                    kv.bucket,
                    msg.subject[len(kv.prefix) :],
                    msg.data,
                    meta.stream_seq,
                    operation,
                    time_from_ns(meta.timestamp_ns),
                    meta.num_pending,
                )
            if status == "100":
                continue  # an idle heartbeat
            if status == "503" or (status == "409" and "deleted" in msg.description.lower()):
                self._stale = True  # the consumer is gone
                continue
            # 404, 408 and the other 409s end the pull: pull again.
            self._pull_left = 0

    async def initial(self) -> list[KvEntry]:
        """The entries the watcher starts with, once all have come (``[]``
        if there are none, or they were taken by iterating already).

        Cancellation leaves the watcher usable; entries taken before it are
        lost to this call (not to the bucket).

        Raises:
            ConnectionClosed: The client closed.
            BucketNotFound: The bucket was deleted.
        """
        got: list[KvEntry] = []
        while not self._initial_done:
            entry = await self._step()
            if entry is not None:
                got.append(entry)
        return got

    def __aiter__(self) -> KeyWatcher:
        return self

    async def __anext__(self) -> KvEntry:
        if self._closed:
            raise StopAsyncIteration
        while True:
            entry = await self._step()
            if entry is not None:
                return entry

    def __repr__(self) -> str:
        return (
            f"<KeyWatcher {self._kv.bucket!r} {self._subjects} "
            f"revision={self._last_seq} recreations={self.recreations}>"
        )
