"""JetStream's JSON API on the NATS client: streams, publish with acks and
message-id dedup, pull consumers, fetch with expiry and heartbeats, and
ack/nak(delay)/in-progress/term.

Every call is a request on ``$JS.API.>`` answered with JSON; an ``error`` in
the answer raises `JetStreamError` with the server's codes.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio

from ._client import Client
from ._errors import NatsError, NatsTimeout, NoResponders, NotSupported
from ._protocol import Msg, parse_headers

API: Final = "$JS.API"
MSG_ID: Final = "Nats-Msg-Id"
EXPECTED_STREAM: Final = "Nats-Expected-Stream"
#: The headers of an atomic batch publish (nats-server 2.12+, ADR-50).
BATCH_ID: Final = "Nats-Batch-Id"
BATCH_SEQ: Final = "Nats-Batch-Sequence"
BATCH_COMMIT: Final = "Nats-Batch-Commit"
#: The most messages nats-server takes in one atomic batch (its default
#: ``max_batch_size``; a server may be configured lower).
MAX_BATCH: Final = 1000
#: The first nats-server version with atomic batch publish.
ATOMIC_SINCE: Final = (2, 12)
_NS: Final = 1_000_000_000


class JetStreamError(NatsError):
    """The JetStream API answered with an error (or not at all).

    Attributes:
        code: The HTTP-like status (404: not found, 400: bad request, 503: no
            JetStream or no stream for the subject).
        err_code: JetStream's own error number (10059: stream not found,
            10014: consumer not found), or 0.
        description: The server's text.
    """

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream: {description} (code {code}, err_code {err_code})")
        self.code = code
        self.err_code = err_code
        self.description = description


@dataclass(frozen=True, slots=True)
class PubAck:
    """The stream's acknowledgement of a publish: it is stored (``duplicate``:
    it had been already, within the stream's dedup window, under this
    message id; ``seq`` is then the first copy's)."""

    stream: str
    seq: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class StoredMsg:
    """A message read from a stream by sequence (`JetStream.get_msg`)."""

    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class MsgMetadata:
    """Where a consumed message comes from, parsed from its ack subject."""

    stream: str
    consumer: str
    num_delivered: int
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    num_pending: int


class JsMsg:
    """A message fetched from a pull consumer; settle it with one of `ack`,
    `nak`, `in_progress` (then settle later) or `term`."""

    __slots__ = ("_js", "_metadata", "msg")

    def __init__(self, js: JetStream, msg: Msg) -> None:
        if not msg.reply.startswith("$JS.ACK."):
            raise JetStreamError(0, 0, f"not a JetStream message (reply subject {msg.reply!r})")
        self._js = js
        self.msg = msg
        self._metadata: MsgMetadata | None = None

    @property
    def metadata(self) -> MsgMetadata:
        """Where it comes from, parsed from its ack subject on first use (a
        consumer that only acks never pays for it).

        Raises:
            JetStreamError: The ack subject is not one JetStream makes.
        """
        metadata = self._metadata
        if metadata is None:
            metadata = self._metadata = parse_ack_subject(self.msg.reply)
        return metadata

    @property
    def subject(self) -> str:
        return self.msg.subject

    @property
    def data(self) -> bytes:
        return self.msg.data

    @property
    def headers(self) -> dict[str, str] | None:
        return self.msg.headers

    async def ack(self) -> None:
        """Acknowledge: the consumer will not deliver it again. Not confirmed
        by the server (`ack_sync` is)."""
        await self._js._nc._publish_reply(self.msg.reply, b"+ACK")

    async def ack_sync(self, timeout: float | None = None) -> None:
        """Acknowledge and wait for the server to confirm it.

        Raises:
            NatsTimeout: No confirmation in time (the ack may still count).
        """
        await self._js._nc.request(
            self.msg.reply, b"+ACK", timeout=self._js.timeout if timeout is None else timeout
        )

    async def nak(self, delay: float | None = None) -> None:
        """Give it back: redelivered at once, or after ``delay`` seconds."""
        if delay is None:
            await self._js._nc._publish_reply(self.msg.reply, b"-NAK")
        else:
            body = json.dumps({"delay": int(delay * _NS)}).encode()
            await self._js._nc._publish_reply(self.msg.reply, b"-NAK " + body)

    async def in_progress(self) -> None:
        """Still working on it: the consumer's ack wait starts again."""
        await self._js._nc._publish_reply(self.msg.reply, b"+WPI")

    async def term(self, reason: str = "") -> None:
        """Never deliver it again, without processing it."""
        body = b"+TERM " + reason.encode() if reason else b"+TERM"
        await self._js._nc._publish_reply(self.msg.reply, body)

    def __repr__(self) -> str:
        try:
            where: object = self.metadata
        except JetStreamError:
            where = self.msg.reply
        return f"<JsMsg {self.subject!r} {where}>"


def parse_ack_subject(reply: str) -> MsgMetadata:
    """The metadata in ``$JS.ACK.[domain.account.]stream.consumer.delivered.
    stream_seq.consumer_seq.timestamp.pending[.random]``.

    Raises:
        JetStreamError: Not a JetStream ack subject.
    """
    tokens = reply.split(".")
    if len(tokens) == 9 and tokens[:2] == ["$JS", "ACK"]:
        fields = tokens[2:]
    elif len(tokens) >= 11 and tokens[:2] == ["$JS", "ACK"]:
        fields = tokens[4:11]
    else:
        raise JetStreamError(0, 0, f"not a JetStream message (reply subject {reply!r})")
    stream, consumer, delivered, sseq, cseq, ts, pending = fields
    return MsgMetadata(
        stream, consumer, int(delivered), int(sseq), int(cseq), int(ts), int(pending)
    )


class JetStream:
    """JetStream through a connected `Client`.

    Args:
        nc: The client.
        timeout: Seconds each API call may take.
        prefix: The API subject prefix (another domain's, or ``$JS.API``).

    Example:
        >>> js = JetStream(nc)  # doctest: +SKIP
        >>> await js.add_stream("ORDERS", ["orders.>"])  # doctest: +SKIP
        >>> ack = await js.publish("orders.1", b"{}", msg_id="order-1")  # doctest: +SKIP
    """

    def __init__(self, nc: Client, *, timeout: float = 5.0, prefix: str = API) -> None:
        self._nc = nc
        self.timeout = timeout
        self.prefix = prefix

    async def _api(self, what: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = json.dumps(request).encode() if request is not None else b""
        try:
            msg = await self._nc.request(f"{self.prefix}.{what}", payload, timeout=self.timeout)
        except NoResponders:
            raise JetStreamError(503, 0, "JetStream is not enabled on this server") from None
        return _answer(msg)

    # -- streams -----------------------------------------------------------------------

    async def add_stream(self, name: str, subjects: list[str], **config: Any) -> dict[str, Any]:
        """Create the stream ``name`` on ``subjects`` (more of JetStream's
        stream configuration as keywords: ``max_age`` in nanoseconds,
        ``duplicate_window``, ``num_replicas``, ``storage``, ``retention``...).
        Creating it again with the same configuration is not an error.

        Returns:
            The stream's info (``config``, ``state``...).

        Raises:
            JetStreamError: The server refused (another configuration under
                that name, subjects overlapping another stream's...).
        """
        return await self._api(
            f"STREAM.CREATE.{name}", {"name": name, "subjects": subjects, **config}
        )

    async def update_stream(self, name: str, subjects: list[str], **config: Any) -> dict[str, Any]:
        """Change the stream's configuration (as `add_stream`)."""
        return await self._api(
            f"STREAM.UPDATE.{name}", {"name": name, "subjects": subjects, **config}
        )

    async def stream_info(self, name: str) -> dict[str, Any]:
        """The stream's ``config`` and ``state`` (``messages``, ``first_seq``,
        ``last_seq``...).

        Raises:
            JetStreamError: No such stream (code 404, err_code 10059).
        """
        return await self._api(f"STREAM.INFO.{name}")

    async def delete_stream(self, name: str) -> None:
        """Delete the stream and its messages and consumers.

        Raises:
            JetStreamError: No such stream.
        """
        await self._api(f"STREAM.DELETE.{name}")

    # -- publish -----------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
        expected_stream: str | None = None,
        timeout: float | None = None,
    ) -> PubAck:
        """Publish and wait until a stream has stored it.

        ``msg_id`` (the ``Nats-Msg-Id`` header) makes a retry safe: within
        the stream's duplicate window, a second publish with the same id is
        acknowledged with ``duplicate=True`` and not stored again.

        Raises:
            JetStreamError: No stream takes ``subject`` (code 503), or the
                stream refused it.
            NatsTimeout: No acknowledgement in time: it may have been stored;
                retry with the same ``msg_id``.
        """
        all_headers = dict(headers or {})
        if msg_id is not None:
            all_headers[MSG_ID] = msg_id
        if expected_stream is not None:
            all_headers[EXPECTED_STREAM] = expected_stream
        try:
            msg = await self._nc.request(
                subject,
                payload,
                headers=all_headers or None,
                timeout=self.timeout if timeout is None else timeout,
            )
        except NoResponders:
            raise JetStreamError(503, 0, f"no stream takes the subject {subject!r}") from None
        answer = _answer(msg)
        return PubAck(answer["stream"], answer["seq"], bool(answer.get("duplicate", False)))

    async def publish_many(
        self,
        items: Sequence[tuple[str, bytes, dict[str, str] | None]],
        *,
        timeout: float | None = None,
    ) -> list[PubAck | JetStreamError | None]:
        """Publish ``(subject, payload, headers)`` items pipelined: all are
        sent, in order, before the first acknowledgement is awaited.

        Returns:
            For each item its `PubAck`, the `JetStreamError` the server
            answered, or ``None`` if no answer came within ``timeout`` (it
            may have been stored: publish it again with the same message id).

        Cancellation: some of the items may have been stored.
        """
        nc = self._nc
        inbox = nc.new_inbox()
        results: list[PubAck | JetStreamError | None] = [None] * len(items)
        async with await nc.subscribe(inbox + ".*", pending_msgs=0) as sub:
            for i, (subject, payload, headers) in enumerate(items):
                await nc.publish(subject, payload, reply=f"{inbox}.{i:x}", headers=headers)
            left = len(items)
            with anyio.move_on_after(self.timeout if timeout is None else timeout):
                while left:
                    msg = await sub.next_msg(None)
                    i = int(msg.subject.rpartition(".")[2], 16)
                    if results[i] is not None:
                        continue
                    left -= 1
                    if msg.status == "503":
                        subject = items[i][0]
                        results[i] = JetStreamError(
                            503, 0, f"no stream takes the subject {subject!r}"
                        )
                        continue
                    try:
                        answer = _answer(msg)
                    except JetStreamError as error:
                        results[i] = error
                    else:
                        results[i] = PubAck(
                            answer["stream"], answer["seq"], bool(answer.get("duplicate", False))
                        )
        return results

    async def publish_batch(
        self,
        items: Sequence[tuple[str, bytes, dict[str, str] | None]],
        *,
        timeout: float | None = None,
    ) -> list[PubAck]:
        """Publish ``(subject, payload, headers)`` items as one atomic batch:
        the stream stores all of them, at consecutive sequences, or none.

        The items go out pipelined with the batch headers (``Nats-Batch-Id``,
        ``Nats-Batch-Sequence``, ``Nats-Batch-Commit`` on the last); only the
        commit is answered. All items must go to one stream, created with
        ``allow_atomic=True``, on nats-server 2.12 or later. A ``Nats-Msg-Id``
        is allowed in an item, but one the stream has seen within its
        duplicate window (or twice in the batch) refuses the whole batch
        (err_code 10201), where a lone publish would be acknowledged as a
        duplicate.

        Returns:
            Each item's `PubAck`, in order.

        Raises:
            ValueError: No items, more than `MAX_BATCH`, or a header the
                batch cannot carry (``Nats-Expected-Last-Msg-Id``).
            NotSupported: The server is older than 2.12.
            JetStreamError: The stream refused the batch (nothing of it is
                stored): 10174 atomic publish disabled on the stream, 10176
                incomplete (an item was refused, e.g. too large), 10199 too
                many items for this server, 10201 a duplicate message id,
                10210 too many batches in flight (try again), 503 no stream.
            NatsTimeout: No answer to the commit in time: the batch may or
                may not have been stored (all of it, or none).

        Cancellation: before the commit is sent nothing is stored (the
        server drops the open batch after 10 s); after, all or none.
        """
        if not items:
            raise ValueError("an atomic batch needs at least one message")
        if len(items) > MAX_BATCH:
            raise ValueError(
                f"an atomic batch holds at most {MAX_BATCH} messages on nats-server, "
                f"got {len(items)}: split it, or publish it without atomic"
            )
        version = str(self._nc.server_info.get("version", "0"))
        if _version(version) < ATOMIC_SINCE:
            raise NotSupported(
                f"atomic batch publish needs nats-server 2.12 or later; this server is {version}"
            )
        for _, _, headers in items:
            if headers and "Nats-Expected-Last-Msg-Id" in headers:
                raise ValueError(
                    "an atomic batch cannot carry Nats-Expected-Last-Msg-Id "
                    "(the server refuses it inside a batch)"
                )
        nc = self._nc
        batch = secrets.token_hex(8)  # unique among the stream's open batches (50 at most)
        inbox = nc.new_inbox()
        last = len(items)
        async with await nc.subscribe(inbox, pending_msgs=0) as sub:
            for i, (subject, payload, headers) in enumerate(items, 1):
                all_headers = {**(headers or {}), BATCH_ID: batch, BATCH_SEQ: str(i)}
                if i == last:
                    all_headers[BATCH_COMMIT] = "1"
                    await nc.publish(subject, payload, reply=inbox, headers=all_headers)
                else:
                    await nc.publish(subject, payload, headers=all_headers)
            wait = self.timeout if timeout is None else timeout
            try:
                msg = await sub.next_msg(wait)
            except NatsTimeout:
                raise NatsTimeout(
                    f"no answer to the commit of an atomic batch of {last} within {wait} s: "
                    f"all or none of it may have been stored"
                ) from None
        if msg.status == "503":
            raise JetStreamError(503, 0, f"no stream takes the subject {items[-1][0]!r}")
        answer = _answer(msg)
        if answer.get("batch") != batch or int(answer.get("count", 0)) != last:
            raise JetStreamError(
                0,
                0,
                f"the server did not publish the batch atomically (answer {answer}): "
                f"its messages may have been stored one by one",
            )
        first = int(answer["seq"]) - last + 1
        return [PubAck(answer["stream"], first + i) for i in range(last)]

    # -- reading and removing stored messages ------------------------------------------

    async def get_msg(
        self, stream: str, seq: int, *, next_by_subject: str | None = None
    ) -> StoredMsg | None:
        """The stored message ``seq`` (with ``next_by_subject``: the first at
        or after ``seq`` on that subject), or ``None`` if there is none.

        Raises:
            JetStreamError: No such stream, or another refusal.
        """
        request: dict[str, Any] = {"seq": seq}
        if next_by_subject is not None:
            request["next_by_subj"] = next_by_subject
        try:
            answer = await self._api(f"STREAM.MSG.GET.{stream}", request)
        except JetStreamError as error:
            if error.err_code == 10037:  # no message found
                return None
            raise
        m = answer["message"]
        headers: dict[str, str] = {}
        if m.get("hdrs"):
            headers = parse_headers(base64.b64decode(m["hdrs"]))[0]
        data = base64.b64decode(m["data"]) if m.get("data") else b""
        return StoredMsg(m["subject"], int(m["seq"]), data, headers)

    async def delete_msg(self, stream: str, seq: int) -> bool:
        """Remove message ``seq`` from ``stream``; False if it was not there."""
        try:
            answer = await self._api(f"STREAM.MSG.DELETE.{stream}", {"seq": seq, "no_erase": True})
        except JetStreamError as error:
            if error.err_code in (10057, 10037):  # sequence not found
                return False
            raise
        return bool(answer.get("success"))

    async def purge(self, stream: str, subject: str | None = None) -> int:
        """Remove every message of ``stream`` (on ``subject`` only, if given);
        return how many."""
        request = {"filter": subject} if subject is not None else None
        answer = await self._api(f"STREAM.PURGE.{stream}", request)
        return int(answer.get("purged", 0))

    async def stream_names(self) -> list[dict[str, Any]]:
        """The info of every stream, by pages of the server's size."""
        found: list[dict[str, Any]] = []
        while True:
            answer = await self._api("STREAM.LIST", {"offset": len(found)})
            page = answer.get("streams") or []
            found += page
            if not page or len(found) >= int(answer.get("total", 0)):
                return found

    async def consumers(self, stream: str) -> list[dict[str, Any]]:
        """The info of every consumer of ``stream``, by pages."""
        found: list[dict[str, Any]] = []
        while True:
            answer = await self._api(f"CONSUMER.LIST.{stream}", {"offset": len(found)})
            page = answer.get("consumers") or []
            found += page
            if not page or len(found) >= int(answer.get("total", 0)):
                return found

    async def stream_subjects(self, stream: str, subject: str) -> dict[str, int]:
        """How many messages ``stream`` holds on each subject matching ``subject``."""
        answer = await self._api(f"STREAM.INFO.{stream}", {"subjects_filter": subject})
        return dict(answer["state"].get("subjects") or {})

    # -- consumers ---------------------------------------------------------------------

    async def add_consumer(self, stream: str, name: str, **config: Any) -> dict[str, Any]:
        """Create (or find, with the same configuration) the durable pull
        consumer ``name`` on ``stream``. Defaults: explicit acks, deliver all.
        More configuration as keywords: ``ack_wait`` (nanoseconds),
        ``max_deliver``, ``filter_subject``, ``max_ack_pending``, ``backoff``...

        Returns:
            The consumer's info.

        Raises:
            JetStreamError: The server refused (no such stream...).
        """
        full = {"durable_name": name, "ack_policy": "explicit", "deliver_policy": "all", **config}
        return await self._api(
            f"CONSUMER.CREATE.{stream}.{name}", {"stream_name": stream, "config": full}
        )

    async def consumer_info(self, stream: str, name: str) -> dict[str, Any]:
        """The consumer's ``config``, ``num_pending``, ``num_ack_pending``,
        ``delivered`` and ``ack_floor``.

        Raises:
            JetStreamError: No such consumer (code 404, err_code 10014).
        """
        return await self._api(f"CONSUMER.INFO.{stream}.{name}")

    async def delete_consumer(self, stream: str, name: str) -> None:
        """Delete the consumer (its unacknowledged messages stay in the stream).

        Raises:
            JetStreamError: No such consumer.
        """
        await self._api(f"CONSUMER.DELETE.{stream}.{name}")

    async def reset_consumer(self, stream: str, name: str, seq: int) -> dict[str, Any]:
        """Move the consumer to deliver from stream sequence ``seq`` on, as if
        nothing after it had been delivered (nats-server 2.14+).

        Raises:
            JetStreamError: No such consumer, or a server without the API.
        """
        return await self._api(f"CONSUMER.RESET.{stream}.{name}", {"seq": seq})

    async def settle(
        self, replies: Sequence[str], body: bytes, *, timeout: float | None = None
    ) -> list[bool]:
        """Send ``body`` (``+ACK``, ``-NAK``, ``+WPI``, ``+TERM ...``) to each
        delivery's reply subject, pipelined, and wait for the server to
        confirm each.

        Returns:
            For each, whether the server confirmed it within ``timeout`` (a
            False one may still have counted: settling again is safe).

        Cancellation: some of them may have been settled.
        """
        nc = self._nc
        inbox = nc.new_inbox()
        done = [False] * len(replies)
        async with await nc.subscribe(inbox + ".*", pending_msgs=0) as sub:
            for i, reply in enumerate(replies):
                await nc._publish_reply(reply, body, f"{inbox}.{i:x}")
            left = len(replies)
            with anyio.move_on_after(self.timeout if timeout is None else timeout):
                while left:
                    msg = await sub.next_msg(None)
                    i = int(msg.subject.rpartition(".")[2], 16)
                    if not done[i] and msg.status is None:
                        done[i] = True
                        left -= 1
        return done

    async def fetch(
        self,
        stream: str,
        consumer: str,
        batch: int = 1,
        *,
        expires: float = 5.0,
        heartbeat: float | None = None,
        no_wait: bool = False,
        into: list[JsMsg] | None = None,
    ) -> list[JsMsg]:
        """Up to ``batch`` messages from the pull consumer: returns when it has
        ``batch``, or when ``expires`` seconds have passed with fewer (maybe
        none: an empty list, not an error).

        With ``heartbeat``, the server sends a heartbeat every ``heartbeat``
        seconds while it has nothing; two missed in a row mean the server or
        the link is gone. Cancellation ends the pull (the server ends it at
        ``expires``); messages it delivered meanwhile are redelivered after
        the consumer's ack wait.

        With ``no_wait``, the server answers at once with what it has (maybe
        nothing). With ``into``, each message is appended to that list as it
        arrives (and the list is returned), so a caller that is cancelled or
        fails midway still has what came.

        Raises:
            ValueError: ``batch`` < 1, or ``expires`` not above 0 (or below
                twice ``heartbeat``).
            NatsTimeout: Heartbeats missed, or the server never ended the pull.
            JetStreamError: The pull was refused (no such consumer, too many
                pulls waiting, the consumer deleted meanwhile...).
        """
        if batch < 1:
            raise ValueError(f"fetch needs a batch of at least 1, not {batch}")
        if not no_wait and (expires <= 0 or (heartbeat is not None and expires < 2 * heartbeat)):
            raise ValueError(
                f"fetch needs expires > 0 and at least twice the heartbeat: "
                f"expires={expires}, heartbeat={heartbeat}"
            )
        nc = self._nc
        inbox = nc.new_inbox()
        request: dict[str, Any] = {"batch": batch, "expires": int(expires * _NS)}
        if no_wait:
            request = {"batch": batch, "no_wait": True}
            heartbeat = None
        if heartbeat is not None:
            request["idle_heartbeat"] = int(heartbeat * _NS)
        got: list[JsMsg] = [] if into is None else into
        wanted = len(got) + batch
        async with await nc.subscribe(inbox, pending_msgs=batch + 16) as sub:
            await nc.publish(
                f"{self.prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
                json.dumps(request).encode(),
                reply=inbox,
            )
            # The server ends the pull at `expires`; allow it a second more.
            deadline = anyio.current_time() + expires + 1.0
            take = sub._take_nowait
            while len(got) < wanted:
                msg = take()  # one already here: no clock read, no wait
                if msg is None:
                    wait = deadline - anyio.current_time()
                    if heartbeat is not None:
                        wait = min(wait, 2 * heartbeat)
                    try:
                        msg = await sub.next_msg(max(wait, 0))
                    except NatsTimeout:
                        if anyio.current_time() < deadline:
                            raise NatsTimeout(
                                f"fetch from {stream}/{consumer}: two heartbeats missed "
                                f"({heartbeat} s each)"
                            ) from None
                        raise NatsTimeout(
                            f"fetch from {stream}/{consumer}: the server did not end the "
                            f"pull {expires} s + 1 s after it"
                        ) from None
                if msg.status is None:
                    got.append(JsMsg(self, msg))
                elif msg.status == "100":
                    continue  # an idle heartbeat
                elif msg.status in ("404", "408"):
                    break  # nothing (more) before the pull expired
                elif msg.status == "409" and len(got) + batch > wanted:
                    break  # e.g. the batch's byte limit: what came is good
                else:
                    raise JetStreamError(
                        int(msg.status),
                        0,
                        f"fetch from {stream}/{consumer}: {msg.description or msg.status}",
                    )
        return got


def _version(version: str) -> tuple[int, int]:
    # "2.15.1" (or "2.15.0-dev") -> (2, 15); unparsable -> (0, 0).
    try:
        major, minor = version.split("-")[0].split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def _answer(msg: Msg) -> dict[str, Any]:
    try:
        answer = json.loads(msg.data)
    except ValueError:
        raise JetStreamError(0, 0, f"not a JetStream API answer: {msg.data[:200]!r}") from None
    if not isinstance(answer, dict):
        raise JetStreamError(0, 0, f"not a JetStream API answer: {msg.data[:200]!r}")
    error = answer.get("error")
    if error:
        raise JetStreamError(
            int(error.get("code", 0)), int(error.get("err_code", 0)), error.get("description", "")
        )
    return answer
