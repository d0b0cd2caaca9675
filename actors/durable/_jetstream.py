"""The JetStream store: durable streams on a NATS server or cluster.

Each stream is a JetStream stream (R3 in a cluster by default), each durable
consumer a durable pull consumer on the server, so several processes share
one consumer and its position survives them all. What JetStream does not do
the way the streams layer promises, the store does on the client:

- Backoff after a nak: JetStream's ``BackOff`` applies to ack-wait timeouts
  only, so a nak carries the computed delay; the consumer's ``BackOff`` is
  ``ack_wait + delay(attempt)`` for the timeouts.
- Dead letters: the consumer writes the entry to the stream ``DLQ_<stream>``
  (subject ``_DLQ.<stream>.<consumer>``, ``Nats-Msg-Id
  <stream>:<seq>:<consumer>``: a retry cannot write it twice) before it
  terminates the original; the server's ``MaxDeliver`` is one higher than
  ours, as a backstop only (its advisories can be lost).
- Stale settles: the server accepts an ack after the ack wait even though it
  redelivered the message; the store drops a settle for a delivery that was
  superseded or whose ack wait has run out.
- Requeue: the entry's message is published to the consumer's own subject
  ``_RQ.<stream>.<consumer>`` (a filter of that consumer only), and is
  delivered with its original sequence and subject, its count reset.

# Invariants:
# - ``_consumers[(stream, name)].deliveries`` maps each sequence this process
#   received and has not settled to its latest delivery; a settle is sent
#   only for that delivery, and only before its ``deadline`` (the loop time
#   the pull was requested plus the ack wait the server applies to it).
# - A dead-letter entry is stored (PubAck) before the original is terminated.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import anyio

from .._matcher import pattern_matches
from .._nats import (
    Client,
    JetStream,
    JetStreamError,
    JsMsg,
    NatsError,
    NotSupported,
    connect,
)
from .._nats._jetstream import MSG_ID
from . import _jsdead
from ._errors import ConsumerNotFound, DurableError, StreamNotFound
from ._jsconfig import (
    NS,
    config_of,
    consumer_options,
    hidden,
    refused,
    start_options,
    stream_options,
)
from ._jsdead import (
    H_SEQ,
    H_SUBJECT,
    H_TIME,
    TIMEOUT_ERROR,
    dlq_stream,
    dlq_subject,
    requeue_subject,
)

#: Seconds a pull stays open on the server at most (a pull whose caller went
#: away is dropped by the server when it sees no interest, or then).
PULL_MAX = 10.0
#: Idle heartbeats of a waiting pull (two missed: the server is gone, pull again).
HEARTBEAT = 2.0
#: Seconds before a delivery's ack wait ends that a settle is no longer sent
#: (at most; 5% of the ack wait for short ones): the way to the server.
SETTLE_MARGIN = 0.5
#: Seconds one attempt of a call may take before it is tried again (a
#: server that died does not answer; its peers do once they have a leader).
ATTEMPT = 3.0
#: Pauses between retries while a stream or consumer has no leader.
RETRY_MIN, RETRY_MAX = 0.05, 0.5
#: Errors of one message or first-delivery time remembered per consumer.
_REMEMBER = 10_000
#: Seconds an empty fetch without a wait waits for a message this store
#: published that the consumer has not yet counted (see _catch_up).
CATCH_UP = 1.0
#: Subjects per stream whose last publish the store remembers for that.
_SUBJECTS = 1024


@dataclass
class _Delivery:
    deliveries: int
    reply: str
    deadline: float
    subject: str  # the original's (a requeued copy has its own)
    msg_subject: str
    copy_seq: int  # the stream sequence of what was delivered (copy or original)
    data: bytes
    time: float
    server_count: int  # the server's num_delivered (it also counts give-backs)


@dataclass
class _ConsumerState:
    deliveries: dict[int, _Delivery] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    first: dict[int, float] = field(default_factory=dict)
    # Deliveries given back uncounted, per sequence (the server counted them).
    released: dict[int, int] = field(default_factory=dict)
    backoff: list[int] | None = None
    # The consumer's filter, once this store put or opened it (None: any subject).
    filter: str | None = None
    # This store's publishes up to this sequence were looked for (see _catch_up).
    confirmed: int = 0
    # This store requeued a dead letter to it since the last empty fetch.
    requeued: bool = False


class JetStreamStore:
    """Durable streams on a NATS JetStream server or cluster: the same API
    as :class:`SQLiteStore`.

    Give it server URLs and enter it (it owns the connection), or give it a
    connected ``actors._nats.Client`` of yours::

        async with durable.JetStreamStore("nats://n1:4222") as store:
            async with ActorSystem(store=store) as system:
                ...

    A ``publish`` returns once the stream's leader and a quorum of its
    replicas have stored the message; an ack returns once the consumer's
    leader confirmed it. Both retry, within ``timeout``, while a stream or
    consumer elects a new leader. How durable "stored" is depends on the
    servers' ``sync_interval`` (see docs/durable.md).

    ``publish_many(..., atomic=True)`` sends one atomic batch (all stored
    or none; at most 1000 messages); without it the messages are pipelined.

    Differences from the SQLite store: no SQL transactions; a delivery given
    back (a cancelled fetch, a crashed ``Push``) counts as a delivery; a
    requeued message is a copy (same sequence and subject, seen only by its
    consumer); ``max_bytes`` counts what the server stores (subject and
    headers too).

    Args:
        servers: a URL, a list of URLs, or a connected client.
        replicas: copies of each stream (default: 3 when the server is in a
            cluster, else 1).
        timeout: seconds a call may take, retries included.
        **options: more options for the connection (``user``, ``password``,
            ``token``, ``name``...), when it is given URLs.

    Raises:
        ValueError: ``replicas`` is not 1 to 5, or ``timeout`` not above 0.

    Examples:
        >>> store = JetStreamStore("nats://127.0.0.1:4222", replicas=1)
        >>> store.replicas
        1
    """

    def __init__(
        self,
        servers: str | Sequence[str] | Client = "nats://127.0.0.1:4222",
        *,
        replicas: int | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        if replicas is not None and (
            isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 5
        ):
            raise ValueError(f"replicas must be 1 to 5 (or None: 3 in a cluster), got {replicas!r}")
        if not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
            raise ValueError(f"timeout must be seconds > 0, got {timeout!r}")
        self._client: Client | None = None
        self._owned: Client | None = None
        if isinstance(servers, Client):
            self._client = servers
            self._urls: list[str] = []
        else:
            self._urls = [servers] if isinstance(servers, str) else list(servers)
        self._options = options
        self.replicas = replicas
        self.timeout = float(timeout)
        self._js: JetStream | None = None
        self._consumers: dict[tuple[str, str], _ConsumerState] = {}
        self._requeue_prefix = "_RQ."
        #: stream -> subject -> the sequence of this store's last publish to it.
        self._published: dict[str, dict[str, int]] = {}
        #: stream -> the sequence of this store's last publish to it.
        self._last_published: dict[str, int] = {}

    def __repr__(self) -> str:
        where = self._urls or ["<client>"]
        return f"<JetStreamStore {', '.join(where)} replicas={self.replicas}>"

    # -- connection --------------------------------------------------------------------

    async def __aenter__(self) -> JetStreamStore:
        if self._client is None:
            client = connect(self._urls, **self._options)
            await client.__aenter__()
            self._client = self._owned = client
        self._attach()
        return self

    async def __aexit__(self, *exc: object) -> None:
        owned, self._owned = self._owned, None
        self._js = None
        if owned is not None:
            self._client = None
            await owned.__aexit__(None, None, None)

    def _attach(self) -> JetStream:
        client = self._client
        if client is None:
            raise DurableError(
                "the JetStreamStore is not connected: enter it first "
                "(async with durable.JetStreamStore(url) as store), or give it a connected client"
            )
        if self.replicas is None:
            self.replicas = 3 if client.server_info.get("cluster") else 1
        self._js = JetStream(client, timeout=min(self.timeout, ATTEMPT))
        return self._js

    @property
    def js(self) -> JetStream:
        """The JetStream API on the store's connection."""
        return self._js if self._js is not None else self._attach()

    def clock(self) -> float:
        """Seconds since the epoch (the servers' clock for message times)."""
        return time.time()

    async def aclose(self) -> None:
        """Forget this process's deliveries (the connection closes with the
        ``async with`` that opened it).

        Cancellation: nothing to undo.
        """
        self._consumers.clear()

    async def _retry(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        # Calls that may meet a leader election: retried within the timeout.
        deadline = anyio.current_time() + self.timeout
        pause = RETRY_MIN
        while True:
            try:
                return await call(*args, **kwargs)
            except JetStreamError as error:
                # Not found, or an invalid config (a refusal, not an election).
                if error.code not in (0, 408, 500, 503) or error.err_code in (10059, 10014, 10052):
                    raise
                last: Exception = error
            except NatsError as error:
                last = error
            if anyio.current_time() + pause > deadline:
                raise DurableError(
                    f"JetStream: {what} failed for {self.timeout} s ({last}); it may or may "
                    f"not have happened"
                ) from last
            await anyio.sleep(pause)  # a leader election takes a moment: back off
            pause = min(pause * 2, RETRY_MAX)

    # -- streams -----------------------------------------------------------------------

    async def _stream_info(self, name: str) -> dict[str, Any] | None:
        # The server's info of a stream, or None if there is none.
        try:
            info: dict[str, Any] = await self._retry(
                f"info of stream {name!r}", self.js.stream_info, name
            )
        except JetStreamError as error:
            if error.err_code == 10059:
                return None
            raise
        return info

    async def get_stream(self, name: str) -> dict[str, Any] | None:
        info = await self._stream_info(name)
        if info is None:
            return None
        state = info["state"]
        config = config_of(info)
        config["_stats"] = (state["last_seq"], state["messages"], state["bytes"])
        return config

    async def stream_instance(self, name: str) -> str | None:
        info = await self._stream_info(name)
        # When it was created: a stream created again is another.
        return None if info is None else str(info.get("created", ""))

    async def list_streams(self) -> list[dict[str, Any]]:
        infos = await self._retry("listing streams", self.js.stream_names)
        configs = [config_of(info) for info in infos if not hidden(info["config"]["name"])]
        return sorted(configs, key=lambda c: c["name"])

    async def put_stream(self, name: str, config: dict[str, Any]) -> None:
        if hidden(name):
            raise ValueError(
                f"stream names starting with 'DLQ_' hold dead letters on JetStream: "
                f"choose another name than {name!r}"
            )
        js = self.js
        options = stream_options(config, self.replicas or 1)
        subjects = [*config["subjects"], f"{requeue_subject(name, '*')}"]
        new = await self._put(js, name, subjects, options)
        dead = {"retention": "limits", "storage": "file", "num_replicas": self.replicas}
        try:
            await self._put(js, dlq_stream(name), [dlq_subject(name, "*")], dead)
        except BaseException:
            if new:  # not half made: without its dead letters it is no stream of ours
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.delete_stream(name)
            raise

    async def _put(self, js: JetStream, name: str, subjects: list[str], options: Any) -> bool:
        # Create or update the stream; whether it was created.
        try:
            await self._retry(f"creating stream {name!r}", js.add_stream, name, subjects, **options)
            return True
        except JetStreamError as error:
            if error.err_code != 10058:  # exists with another configuration
                refused(error, f"stream {name!r}")
            try:
                await self._retry(
                    f"updating stream {name!r}", js.update_stream, name, subjects, **options
                )
            except JetStreamError as error:
                refused(error, f"stream {name!r}")
            return False

    async def delete_stream(self, name: str) -> bool:
        found = True
        for stream in (name, dlq_stream(name)):
            try:
                await self._retry(f"deleting stream {stream!r}", self.js.delete_stream, stream)
            except JetStreamError as error:
                if error.err_code != 10059:
                    raise
                found = found and stream != name
        for key in [k for k in self._consumers if k[0] == name]:
            del self._consumers[key]
        self._published.pop(name, None)
        self._last_published.pop(name, None)
        return found

    async def publish(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        js = self.js
        todo = [
            (subject, data, {MSG_ID: msg_id} if msg_id is not None else None)
            for subject, data, msg_id in items
        ]
        seqs: list[int | None] = [None] * len(items)
        deadline = anyio.current_time() + self.timeout
        pause = RETRY_MIN
        while True:
            left = [i for i, seq in enumerate(seqs) if seq is None]
            wait = min(ATTEMPT, max(0.1, deadline - anyio.current_time()))
            try:
                acks = await js.publish_many([todo[i] for i in left], timeout=wait)
            except NatsError as error:
                acks = [None] * len(left)
                last: Exception = error
            for i, ack in zip(left, acks, strict=True):
                if isinstance(ack, JetStreamError):
                    if ack.code == 503 and ack.err_code == 0:
                        if await self.get_stream(stream) is None:
                            raise StreamNotFound(
                                f"stream {stream!r} is not on the JetStream server (deleted?): "
                                f"create it with system.streams.create({stream!r}, subjects=[...])"
                            )
                    elif ack.code not in (408, 500, 503):
                        refused(ack, f"a publish to stream {stream!r}")
                    last = ack
                elif ack is not None:
                    if ack.stream != stream:
                        raise DurableError(
                            f"subject {todo[i][0]!r} belongs to stream {ack.stream!r} on the "
                            f"server, not {stream!r}"
                        )
                    seqs[i] = ack.seq
                else:
                    last = TimeoutError("no acknowledgement")
            if all(seq is not None for seq in seqs):
                self._remember(stream, [item[0] for item in items], seqs)  # type: ignore[arg-type]
                return seqs  # type: ignore[return-value]
            if anyio.current_time() + pause > deadline:
                raise DurableError(
                    f"JetStream: publish to stream {stream!r} not acknowledged within "
                    f"{self.timeout} s ({last}); it may have been stored: publish again "
                    f"with the same msg_id to be sure it is there once"
                )
            await anyio.sleep(pause)  # a leader election takes a moment: back off
            pause = min(pause * 2, RETRY_MAX)

    async def publish_atomic(
        self, stream: str, items: Sequence[tuple[str, bytes, str | None]]
    ) -> list[int]:
        """Publish ``items`` as one atomic batch: all stored, at consecutive
        sequences, or none (``publish_many(..., atomic=True)``).

        A batch the server answered with an error stored nothing, so it is
        sent again (as a new batch) while a leader is elected, within
        ``timeout``; one whose commit went unanswered raises.

        Raises:
            ValueError: more than 1000 items (the server's limit for a batch).
            DurableError: the server is older than 2.12, refused the batch,
                or did not answer its commit (then all or none of it may
                have been stored).
            StreamNotFound: the stream is not on the server.

        Cancellation: all or none of them may have been stored.
        """
        js = self.js
        todo = [
            (subject, data, {MSG_ID: msg_id} if msg_id is not None else None)
            for subject, data, msg_id in items
        ]
        deadline = anyio.current_time() + self.timeout
        pause = RETRY_MIN
        enabled = False
        while True:
            wait = min(ATTEMPT, max(0.1, deadline - anyio.current_time()))
            try:
                acks = await js.publish_batch(todo, timeout=wait)
            except NotSupported as error:
                raise DurableError(f"publish_many(atomic=True): {error}") from error
            except JetStreamError as error:
                if error.err_code == 10174 and not enabled:
                    # A stream made before atomic batches: allow them, once.
                    await self._allow_atomic(stream)
                    enabled = True
                    continue
                if error.code == 503 and error.err_code == 0:
                    if await self.get_stream(stream) is None:
                        raise StreamNotFound(
                            f"stream {stream!r} is not on the JetStream server (deleted?): "
                            f"create it with system.streams.create({stream!r}, subjects=[...])"
                        ) from error
                elif error.err_code == 10201:
                    raise DurableError(
                        f"JetStream refused the atomic batch to stream {stream!r}: one of its "
                        f"msg_ids was published before, within the dedup window, or is in it "
                        f"twice; nothing of it was stored"
                    ) from error
                elif error.err_code == 10176:
                    raise DurableError(
                        f"JetStream refused the atomic batch to stream {stream!r}: a message "
                        f"of it was refused (too large for the stream?); nothing of it was "
                        f"stored"
                    ) from error
                elif error.code not in (408, 429, 500, 503):
                    refused(error, f"an atomic batch to stream {stream!r}")
                last: Exception = error
            except NatsError as error:  # a timeout, or the connection lost
                raise DurableError(
                    f"JetStream: the atomic batch of {len(todo)} to stream {stream!r} was not "
                    f"acknowledged ({error}): all or none of it may have been stored"
                ) from error
            else:
                if acks[0].stream != stream:
                    raise DurableError(
                        f"the atomic batch went to stream {acks[0].stream!r} on the server, "
                        f"not {stream!r}: its subjects are that stream's"
                    )
                seqs = [ack.seq for ack in acks]
                self._remember(stream, [item[0] for item in items], seqs)
                return seqs
            if anyio.current_time() + pause > deadline:
                raise DurableError(
                    f"JetStream: atomic batch to stream {stream!r} refused for {self.timeout} s "
                    f"({last}); nothing of it was stored"
                )
            await anyio.sleep(pause)  # a leader election takes a moment: back off
            pause = min(pause * 2, RETRY_MAX)

    def _remember(self, stream: str, subjects: Sequence[str], seqs: Sequence[int]) -> None:
        published = self._published.setdefault(stream, {})
        for subject, seq in zip(subjects, seqs, strict=True):
            last = published.pop(subject, 0)  # back in at the end: the newest
            published[subject] = max(seq, last)  # a dedup'ed publish has an older seq
            if len(published) > _SUBJECTS:
                del published[next(iter(published))]
        self._last_published[stream] = max(self._last_published.get(stream, 0), *seqs)

    async def _allow_atomic(self, stream: str) -> None:
        info = await self._retry(f"info of stream {stream!r}", self.js.stream_info, stream)
        config = dict(info["config"])
        config["allow_atomic"] = True
        name, subjects = config.pop("name"), config.pop("subjects", [])
        await self._retry(
            f"updating stream {stream!r}", self.js.update_stream, name, subjects, **config
        )

    # -- consumers ---------------------------------------------------------------------

    async def put_consumer(
        self,
        stream: str,
        name: str,
        flt: str,
        config: dict[str, Any],
        start: tuple[str, float] | None,
    ) -> tuple[tuple[str, str], str, bool]:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(
                f"a consumer name on JetStream is letters, digits, '-' and '_', got {name!r}"
            )
        js = self.js
        cid = (stream, name)
        try:
            info = await self._retry(f"info of consumer {name!r}", js.consumer_info, stream, name)
        except JetStreamError as error:
            if error.err_code != 10014:
                raise
            info = None
        if info is not None:
            mine = json.loads(info["config"].get("metadata", {}).get("actors", "{}"))
            existing = mine.get("filter", ">")
            if (
                mine.get("ack_wait") != config["ack_wait"]
                or mine.get("max_deliver") != config.get("max_deliver")
                or mine.get("backoff") != config.get("backoff")
                or info["config"].get("max_deliver", -1) != -1  # made with a limit there
            ):
                server = dict(info["config"])
                server.update(consumer_options(existing, config))
                server["backoff"] = None
                server.pop("name", None)
                server.pop("durable_name", None)
                await self._retry(
                    f"updating consumer {name!r}", js.add_consumer, stream, name, **server
                )
                self._state(cid).backoff = None
            self._state(cid).filter = existing
            return cid, existing, False
        options = consumer_options(flt, config)
        stream_config = await self.get_stream(stream)
        if stream_config is None:
            raise StreamNotFound(f"stream {stream!r} is not on the JetStream server")
        subjects = list(stream_config["subjects"]) if flt == ">" else [flt]
        options["filter_subjects"] = [*subjects, requeue_subject(stream, name)]
        options.update(start_options(start))
        try:
            await self._retry(
                f"creating consumer {name!r}", js.add_consumer, stream, name, **options
            )
        except JetStreamError as error:
            refused(error, f"consumer {name!r} of stream {stream!r}")
        self._consumers.pop(cid, None)
        self._state(cid).filter = flt
        return cid, flt, True

    async def consumers(
        self, stream: str
    ) -> list[tuple[tuple[str, str], str, str, dict[str, Any]]]:
        try:
            infos = await self._retry(f"listing consumers of {stream!r}", self.js.consumers, stream)
        except JetStreamError as error:
            if error.err_code == 10059:
                return []
            raise
        found = []
        for info in infos:
            mine = info["config"].get("metadata", {}).get("actors")
            if mine is None:
                continue
            config = json.loads(mine)
            flt = config.pop("filter", ">")
            self._state((stream, info["name"])).filter = flt
            found.append(((stream, info["name"]), info["name"], flt, config))
        return sorted(found, key=lambda row: row[1])

    async def delete_consumer(self, stream: str, cid: tuple[str, str]) -> None:
        try:
            await self._retry(f"deleting consumer {cid[1]!r}", self.js.delete_consumer, *cid)
        except JetStreamError as error:
            if error.err_code != 10014:
                raise
        try:
            await self._retry(
                "purging dead letters", self.js.purge, dlq_stream(stream), dlq_subject(*cid)
            )
        except JetStreamError as error:
            if error.err_code != 10059:
                raise
        self._consumers.pop(cid, None)

    def _state(self, cid: tuple[str, str]) -> _ConsumerState:
        state = self._consumers.get(cid)
        if state is None:
            state = self._consumers[cid] = _ConsumerState()
        return state

    async def _apply_backoff(
        self, cid: tuple[str, str], ack_wait: float, delays: Sequence[float]
    ) -> None:
        # The server's BackOff is the ack wait of each delivery: ack_wait plus
        # our delay for it (the same deadline the SQLite store computes).
        state = self._state(cid)
        wanted = [int((ack_wait + d) * NS) for d in delays] if any(delays) else []
        if state.backoff == wanted:
            return
        info = await self._retry(f"info of consumer {cid[1]!r}", self.js.consumer_info, *cid)
        server = dict(info["config"])
        if (server.get("backoff") or []) != wanted:
            server["backoff"] = wanted or None
            server["ack_wait"] = wanted[0] if wanted else int(ack_wait * NS)
            server.pop("name", None)
            server.pop("durable_name", None)
            await self._retry(
                f"updating consumer {cid[1]!r}", self.js.add_consumer, cid[0], cid[1], **server
            )
        state.backoff = wanted

    async def claim(
        self,
        stream: str,
        cid: tuple[str, str],
        n: int,
        ack_wait: float,
        delays: Sequence[float],
        max_deliver: int,
        wait: float = 0.0,
    ) -> tuple[list[tuple[int, str, bytes, float, int, float]], float | None]:
        try:
            await self._apply_backoff(cid, ack_wait, delays)
        except JetStreamError as error:
            gone = _not_found(error, stream, cid)
            if gone is None:
                raise
            raise gone from error
        js = self.js
        got: list[JsMsg] = []
        marks: list[tuple[int, float]] = []  # (messages so far, when that pull ended)
        done = False
        try:
            try:
                await js.fetch(*cid, n, no_wait=True, into=got)
                if not got and wait <= 0:
                    await self._catch_up(stream, cid, n, got)
                marks.append((len(got), anyio.current_time()))
                if not got and wait > 0:
                    # Hold a pull open for the first one only (a pull for
                    # more would wait for all of them), then take what else
                    # is there. At most PULL_MAX: the caller pulls again.
                    wait = min(wait, PULL_MAX)
                    heartbeat = HEARTBEAT if wait >= 4 * HEARTBEAT else None
                    await js.fetch(*cid, 1, expires=wait, heartbeat=heartbeat, into=got)
                    marks.append((len(got), anyio.current_time()))
                    if got and n > 1:
                        await js.fetch(*cid, n - 1, no_wait=True, into=got)
                        marks.append((len(got), anyio.current_time()))
            except JetStreamError as error:
                gone = _not_found(error, stream, cid)
                if gone is not None:
                    raise gone from error
                if error.code == 404:
                    raise
                # The consumer's leader moved (or is being elected): what came
                # is good; the caller pulls again.
                marks.append((len(got), anyio.current_time()))
                await anyio.sleep(RETRY_MAX)
            except NatsError:
                marks.append((len(got), anyio.current_time()))
                await anyio.sleep(RETRY_MAX)
            done = True
        finally:
            if not done and got:
                with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
                    await js.settle([m.msg.reply for m in got], b"-NAK")
                _gave_back(self._state(cid), [m.metadata.stream_seq for m in got])
        state = self._state(cid)
        rows = []
        with anyio.CancelScope(shield=True):
            for i, m in enumerate(got):
                # It arrived in the pull that ended at `arrived`, or before.
                arrived = next(t for count, t in marks if count > i)
                row = await self._received(state, cid, m, arrived, ack_wait, delays, max_deliver)
                if row is not None:
                    rows.append(row)
        # Nothing yet after a wait: the caller may pull again at once.
        return rows, self.clock() if not rows and wait > 0 else None

    async def _catch_up(self, stream: str, cid: tuple[str, str], n: int, got: list[JsMsg]) -> None:
        # A pull without a wait found nothing. The server counts a stored
        # message for its consumers a moment after it acknowledged the
        # publish, and a pull without a wait in that moment finds nothing:
        # publish, then fetch, found nothing now and then. So when this store
        # published a message the consumer takes, and the consumer has not
        # been past it (its delivered sequence, from its info), pull again,
        # waiting up to CATCH_UP seconds for the first message. Once per
        # publish: the next empty pull does not ask again.
        state = self._state(cid)
        last = self._last_published.get(stream, 0)
        if last <= state.confirmed and not state.requeued:
            return
        expected = 0
        flt = state.filter
        for subject, seq in self._published.get(stream, {}).items():
            if seq > max(expected, state.confirmed) and (
                flt is None or flt == ">" or pattern_matches(flt, subject)
            ):
                expected = seq
        requeued, state.requeued = state.requeued, False
        state.confirmed = last
        if not requeued:
            if not expected:
                return
            info = await self._retry(f"info of consumer {cid[1]!r}", self.js.consumer_info, *cid)
            if info["delivered"]["stream_seq"] >= expected:
                return  # delivered already (to this consumer elsewhere): nothing is missing
        await self.js.fetch(*cid, 1, expires=CATCH_UP, into=got)
        if got and n > 1:
            await self.js.fetch(*cid, n - 1, no_wait=True, into=got)

    async def _received(
        self,
        state: _ConsumerState,
        cid: tuple[str, str],
        m: JsMsg,
        arrived: float,
        ack_wait: float,
        delays: Sequence[float],
        max_deliver: int,
    ) -> tuple[int, str, bytes, float, int, float] | None:
        meta = m.metadata
        seq, subject, t = meta.stream_seq, m.subject, meta.timestamp_ns / NS
        if subject.startswith(self._requeue_prefix) and m.headers:
            seq = int(m.headers[H_SEQ])
            subject = m.headers[H_SUBJECT]
            t = float(m.headers[H_TIME])
        deliveries = meta.num_delivered - state.released.get(seq, 0)
        now = self.clock()
        if len(state.first) >= _REMEMBER:
            state.first.clear()
        first = state.first.setdefault(seq, now) if deliveries == 1 else state.first.get(seq, now)
        delivery = _Delivery(
            deliveries,
            m.msg.reply,
            _deadline(arrived, ack_wait, delays, meta.num_delivered),
            subject,
            m.subject,
            meta.stream_seq,
            m.data,
            t,
            meta.num_delivered,
        )
        if deliveries > max_deliver:
            # Its last delivery's ack wait ran out: to the dead letters.
            error = state.errors.pop(seq, TIMEOUT_ERROR)
            await _jsdead.bury(self, cid, seq, delivery, deliveries - 1, error, first)
            return None
        state.deliveries[seq] = delivery
        return (seq, subject, m.data, t, deliveries, first)

    def _live(self, cid: tuple[str, str], token: tuple[int, int]) -> _Delivery | None:
        state = self._consumers.get(cid)
        if state is None:
            return None
        delivery = state.deliveries.get(token[0])
        if delivery is None or delivery.deliveries != token[1]:
            return None
        if anyio.current_time() >= delivery.deadline:
            del state.deliveries[token[0]]  # the server may have delivered it again
            return None
        return delivery

    async def _settle(self, what: str, replies: list[str], body: bytes) -> None:
        left = replies
        deadline = anyio.current_time() + self.timeout
        while left:
            wait = min(ATTEMPT, max(0.1, deadline - anyio.current_time()))
            try:
                done = await self.js.settle(left, body, timeout=wait)
            except NatsError:
                done = [False] * len(left)
            left = [r for r, ok in zip(left, done, strict=True) if not ok]
            if left and anyio.current_time() >= deadline:
                raise DurableError(
                    f"JetStream: {what} not confirmed within {self.timeout} s; the message may "
                    f"be delivered again"
                )
            if left:
                await anyio.sleep(RETRY_MIN)  # a leader election takes a moment: back off

    async def ack(
        self, stream: str, cid: tuple[str, str], tokens: Sequence[tuple[int, int]]
    ) -> list[bool]:
        live = [self._live(cid, token) for token in tokens]
        replies = [d.reply for d in live if d is not None]
        if replies:
            await self._settle("an ack", replies, b"+ACK")
        state = self._consumers.get(cid)
        if state is not None:
            for token, d in zip(tokens, live, strict=True):
                if d is not None:
                    state.deliveries.pop(token[0], None)
                    state.errors.pop(token[0], None)
                    state.released.pop(token[0], None)
        return [d is not None for d in live]

    async def nak(
        self,
        stream: str,
        cid: tuple[str, str],
        token: tuple[int, int],
        delay: float,
        error: str | None,
        max_deliver: int,
    ) -> str:
        delivery = self._live(cid, token)
        if delivery is None:
            return "stale"
        state = self._state(cid)
        seq = token[0]
        if token[1] >= max_deliver:
            first = state.first.get(seq, self.clock())
            await _jsdead.bury(self, cid, seq, delivery, token[1], error, first)
            state.deliveries.pop(seq, None)
            state.errors.pop(seq, None)
            return "dead"
        if error is not None:
            if len(state.errors) >= _REMEMBER:
                state.errors.clear()
            state.errors[seq] = error
        body = b"-NAK"
        backoff = state.backoff
        if backoff and delay > 0:
            # With a BackOff the server redelivers a nak'ed message at
            # now - BackOff[0] + delay + BackOff[count - 1]: correct for it
            # (a delay shorter than BackOff[count - 1] - BackOff[0] cannot
            # be asked for: it is rounded up). A bare nak is at once.
            now_index = min(delivery.server_count, len(backoff)) - 1
            delay += (backoff[0] - backoff[now_index]) / NS
            body += b" " + json.dumps({"delay": max(1, int(delay * NS))}).encode()
        elif delay > 0:
            body += b" " + json.dumps({"delay": int(delay * NS)}).encode()
        await self._settle("a nak", [delivery.reply], body)
        state.deliveries.pop(seq, None)
        return "nak"

    async def release(self, cid: tuple[str, str], tokens: Sequence[tuple[int, int]]) -> None:
        live = [(t, d) for t in tokens if (d := self._live(cid, t)) is not None]
        if not live:
            return
        await self._settle("a release", [d.reply for _, d in live], b"-NAK")
        state = self._state(cid)
        for token, _ in live:
            state.deliveries.pop(token[0], None)
        _gave_back(state, [token[0] for token, _ in live])

    async def progress(self, cid: tuple[str, str], token: tuple[int, int], ack_wait: float) -> bool:
        delivery = self._live(cid, token)
        if delivery is None:
            return False
        await self._settle("an in-progress", [delivery.reply], b"+WPI")
        delivery.deadline = _deadline(anyio.current_time(), ack_wait, (), 1)
        return True

    async def term(
        self, stream: str, cid: tuple[str, str], token: tuple[int, int], why: str
    ) -> bool:
        delivery = self._live(cid, token)
        if delivery is None:
            return False
        state = self._state(cid)
        seq = token[0]
        first = state.first.get(seq, self.clock())
        await _jsdead.bury(self, cid, seq, delivery, token[1], why, first)
        state.deliveries.pop(seq, None)
        state.errors.pop(seq, None)
        return True

    async def reset(self, stream: str, cid: tuple[str, str], flt: str, to_seq: int) -> None:
        await self._retry(f"resetting consumer {cid[1]!r}", self.js.reset_consumer, *cid, to_seq)
        state = self._consumers.get(cid)
        if state is not None:
            state.deliveries.clear()

    async def consumer_info(self, cid: tuple[str, str]) -> tuple[int, int, int, int]:
        try:
            info = await self._retry(f"info of consumer {cid[1]!r}", self.js.consumer_info, *cid)
        except JetStreamError as error:
            gone = _not_found(error, cid[0], cid)
            if gone is None:
                raise
            raise gone from error
        in_flight = int(info.get("num_ack_pending", 0))
        pending = int(info.get("num_pending", 0)) + in_flight
        floor = int(info["ack_floor"]["stream_seq"])
        dead = await _jsdead.count(self, cid)
        return pending, in_flight, floor + 1 if pending else 0, dead

    async def dead_letters(
        self, cid: tuple[str, str], since: int, until: int
    ) -> list[tuple[Any, ...]]:
        return await _jsdead.browse(self, cid, since, until)

    async def requeue(self, stream: str, cid: tuple[str, str], seq: int) -> bool:
        done = await _jsdead.requeue(self, stream, cid, seq)
        if done:
            self._state(cid).requeued = True
        return done

    async def remove_dead(self, cid: tuple[str, str], seq: int) -> bool:
        return await _jsdead.remove(self, cid, seq)

    def transaction(self) -> _NoTransaction:
        """Not on JetStream: entering it raises :class:`DurableError` (see
        docs/durable.md)."""
        return _NoTransaction()


class _NoTransaction:
    async def __aenter__(self) -> NoReturn:
        raise DurableError(
            "streams.transaction() needs the SQLite store: JetStream has no transactions "
            "over your data; publish_many(..., atomic=True) stores a batch all or none, "
            "and a msg_id makes a retried publish exact"
        )

    async def __aexit__(self, *exc: object) -> None:
        return None


def _not_found(error: JetStreamError, stream: str, cid: tuple[str, str]) -> Exception | None:
    # The server has no such consumer, or stream: deleted since the handle was made.
    if error.err_code == 10014:
        return ConsumerNotFound(f"consumer {cid[1]!r} is not on the server")
    if error.err_code == 10059:
        return StreamNotFound(f"stream {stream!r} is not on the server")
    return None


def _gave_back(state: _ConsumerState, seqs: Sequence[int]) -> None:
    # Deliveries given back uncounted: the server counted each, so the next
    # delivery of each sequence has the count this one had.
    given = state.released
    if len(given) >= _REMEMBER:
        given.clear()
    for seq in seqs:
        given[seq] = given.get(seq, 0) + 1


def _deadline(arrived: float, ack_wait: float, delays: Sequence[float], count: int) -> float:
    # The loop time after which the server may deliver again: its ack wait
    # for this delivery from when it sent it (before it arrived here), less
    # a margin for the way there and the settle's way back.
    wait = ack_wait + (delays[min(count, len(delays)) - 1] if delays else 0.0)
    return arrived + wait - min(0.05 * wait, SETTLE_MARGIN)
