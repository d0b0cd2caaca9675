"""The live page: a small HTTP server of the system's own, on anyio.

``GET /`` is one self-contained HTML page (inline script and style, nothing
fetched from elsewhere); ``/api/snapshot`` a snapshot as JSON;
``/api/events`` a server-sent-events stream (a ``snapshot`` event, then a
``delta`` event whenever something changed, at most one per ``interval``);
``/api/dead-letters`` the dead-letter counts and the latest letters;
``/api/durable/dead-letters`` a durable consumer's dead-letter queue;
``/metrics`` Prometheus's text format. Only a page with a token takes the
requests that change something (``POST``): ``/api/actors/stop`` and
``/api/actors/kill`` (``?path=``), ``/api/durable/requeue`` and
``/api/durable/replay``.

# Invariants:
# - The server's task runs in the system's nursery and ends when the page is
#   closed or the system closes (a closing hook); no request handler can
#   fail the system: every error ends that one connection.
# - One sampler task takes the snapshots while at least one event stream is
#   open, every ``interval`` seconds, so the work is bounded by the rate,
#   whatever the number of streams; ``_version`` counts the samples that
#   changed something, and ``_delta`` takes ``_version - 1`` to ``_version``.
# - A stream that fell behind by more than one version gets the whole
#   snapshot, never a delta it cannot apply.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from .._channel import Channel
from .._exceptions import ActorsError
from .._go import current_owner
from .._messages import DeadLetter
from ..durable._dlq import DeadLetterEntry, DeadLetters
from ..durable._errors import ConsumerNotFound, DurableError, StreamNotFound
from ._durable import durable_snapshot
from ._html import PAGE
from ._http import BadRequest, Request, head, read_request, respond
from ._metrics import ASK_LATENCY, prometheus, serving_ended, serving_started
from ._snapshot import DEFAULT_MAX_CHILDREN, DEFAULT_MAX_ROWS, delta, index, snapshot

if TYPE_CHECKING:
    from .._cell import Cell
    from .._system import ActorSystem

logger = logging.getLogger("actors.observe")

#: Seconds between two samples of the event stream (at most 4 a second).
DEFAULT_INTERVAL = 0.25
#: Seconds between comments on a quiet event stream (proxies close silent ones).
KEEPALIVE = 15.0
#: Seconds between two reads of the durable store's counts, at the least;
#: and at least DURABLE_SHARE times what the last read took: counting a
#: consumer's pending messages goes over each of them (about 90 ms for a
#: million on SQLite) on the store's one thread, of which the page takes a
#: twentieth at most.
DURABLE_EVERY = 1.0
DURABLE_SHARE = 20
#: The latest dead letters kept for ``/api/dead-letters``.
RECENT_DEAD_LETTERS = 100
#: The shortest token accepted.
MIN_TOKEN = 16


def serve_page(
    system: ActorSystem,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    interval: float = DEFAULT_INTERVAL,
    max_children: int = DEFAULT_MAX_CHILDREN,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Page:
    """Serve a live page of ``system``: its tree, counters and metrics.

    Start it with ``await`` (it serves until the system closes, or
    :meth:`Page.close`) or ``async with`` (until the block ends). The server
    is our own HTTP/1.1 on anyio, so it runs on asyncio and trio alike, with
    no dependency; it only reads snapshots, so the system never waits for it.

    Bound to loopback by default. Any other address (``"0.0.0.0"``, a host
    name) needs a ``token``; with one, every request must carry it
    (``?token=...``, as in :attr:`Page.url`, or ``Authorization: Bearer``).
    Without a token the page is read-only; with one it also stops and kills
    actors (its buttons) and requeues and replays durable dead letters
    (``python -m actors requeue``, ``replay``).

    Args:
        system: a running actor system.
        host: the address to bind.
        port: the port; 0 picks a free one (see :attr:`Page.port`).
        token: a secret of 16 characters or more (``secrets.token_urlsafe()``).
        interval: seconds between two updates of the page at least.
        max_children: children shown under one actor (the rest are counted).
        max_rows: actors shown in all.

    Returns:
        The page, to start.

    Raises:
        ValueError: a non-loopback ``host`` without a token, a short token,
            a bad port, interval or limit.
        TypeError: a ``host`` or ``token`` that is not a str.

    Examples:
        >>> import actors
        >>> from actors.observe import serve_page
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         async with serve_page(system) as page:
        ...             return page.url.startswith("http://127.0.0.1:")
        >>> actors.run(main)
        True
    """
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a host name or address, got {host!r}")
    if token is not None:
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, got {type(token).__name__}")
        if len(token) < MIN_TOKEN:
            raise ValueError(
                f"the page's token must be {MIN_TOKEN} characters or more, got "
                f"{len(token)}; make one with secrets.token_urlsafe()"
            )
    elif not _loopback(host):
        raise ValueError(
            f"serve_page(host={host!r}) would let other machines see the system: "
            f"pass token=secrets.token_urlsafe() (every request must then carry it), "
            f"or bind to loopback (host='127.0.0.1')"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError(
            f"port must be a whole number from 0 (any free port) to 65535, got {port!r}"
        )
    if (
        isinstance(interval, bool)
        or not isinstance(interval, (int, float))
        or not 0 < interval < 60
    ):
        raise ValueError(
            f"interval must be a number of seconds above 0 and below 60, got {interval!r}"
        )
    snapshot(system, max_children=max_children, max_rows=max_rows)  # checks the limits
    return Page(system, host, port, token, float(interval), max_children, max_rows)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


class Page:
    """A live page of an actor system, from :func:`serve_page`.

    Examples:
        >>> import actors
        >>> from actors.observe import serve_page
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         page = await serve_page(system, port=0)
        ...         return page.port > 0
        >>> actors.run(main)
        True
    """

    def __init__(
        self,
        system: ActorSystem,
        host: str,
        port: int,
        token: str | None,
        interval: float,
        max_children: int,
        max_rows: int,
    ) -> None:
        self._system = system
        #: The address it binds.
        self.host = host
        #: The port it listens on (the one picked, once started with port 0).
        self.port = port
        self._token = token
        self.interval = interval
        self._max_children = max_children
        self._max_rows = max_rows
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._started = False
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_DEAD_LETTERS)
        # The event streams' shared state (see the invariants).
        self._streams = 0
        self._sampling = False
        self._version = 0
        self._rows: dict[str, dict[str, Any]] = {}
        self._sections: dict[str, Any] = {}
        self._snap: dict[str, Any] = {}
        self._full = b""
        self._delta = b""
        self._changed = anyio.Event()
        self._durable: dict[str, Any] | None = None
        self._durable_at = -float("inf")
        self._durable_every = DURABLE_EVERY

    def __repr__(self) -> str:
        state = "closed" if self._done.is_set() else "serving" if self._started else "new"
        return f"<Page {self.url} of {self._system.name!r} {state}>"

    @property
    def url(self) -> str:
        """The page's address, with its token if it has one."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?token={self._token}" if self._token else ""
        return f"http://{host}:{self.port}/{query}"

    # -- lifetime ---------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Page]:
        return self._start().__await__()

    async def __aenter__(self) -> Page:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _start(self) -> Page:
        system = self._system
        if self._started:
            raise ActorsError(f"{self!r} was started already")
        if not system._open or system._closed:
            raise ActorsError(
                f"actor system {system.name!r} is not running: serve its page inside "
                f"`async with ActorSystem() as system:`"
            )
        self._listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        sockets = getattr(self._listener, "listeners", [self._listener])
        self.port = int(sockets[0].extra(anyio.abc.SocketAttribute.local_address)[1])
        self._started = True
        serving_started()  # ask latency, for /metrics; ended by _serve
        try:
            system._start(self._serve, name=f"live page {self.url}")
        except BaseException:
            serving_ended()
            await anyio.aclose_forcefully(self._listener)
            raise
        system._closing_hooks.append(self._scope.cancel)
        logger.info("the live page of %s is at %s", system.name, self.url)
        return self

    async def close(self) -> None:
        """Stop serving; open event streams end.

        Returns once the listening socket is closed. Cancelling the wait
        leaves the page closing.
        """
        self._scope.cancel()
        if self._started:
            await self._done.wait()

    async def _serve(self) -> None:
        current_owner.set(None)  # not an actor's task
        assert self._listener is not None
        try:
            with self._scope:
                async with (
                    self._system.dead_letters(RECENT_DEAD_LETTERS) as letters,
                    anyio.create_task_group() as task_group,
                ):
                    self._task_group = task_group
                    task_group.start_soon(self._keep_dead_letters, letters)
                    await self._listener.serve(self._connection, task_group)
        except Exception:
            logger.exception("the live page of %s stopped", self._system.name)
        finally:
            serving_ended()
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(self._listener)
            if self._scope.cancel in self._system._closing_hooks:
                self._system._closing_hooks.remove(self._scope.cancel)
            self._done.set()

    async def _keep_dead_letters(self, letters: Channel[DeadLetter]) -> None:
        async for letter in letters:
            message = letter.message
            self._recent.append(
                {
                    "time": time.time(),
                    "recipient": None if letter.recipient is None else letter.recipient.path,
                    "reason": letter.reason,
                    "topic": letter.topic,
                    "type": type(message).__name__,
                    "message": _shown(message),
                }
            )

    # -- requests ---------------------------------------------------------------

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                request = await read_request(stream)
                await self._route(stream, request)
            except BadRequest as error:
                await respond(
                    stream, error.status, "text/plain; charset=utf-8", f"{error}\n".encode()
                )
            except (
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ):
                pass  # the client went away
            except Exception:
                logger.exception("the live page of %s failed a request", self._system.name)

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        given = request.query.get("token", [""])[0]
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = bearer[7:].strip()
        return hmac.compare_digest(given.encode(), self._token.encode())

    async def _route(self, stream: anyio.abc.SocketStream, request: Request) -> None:
        path = request.path
        if path in _CHANGES:
            if request.method != "POST":
                raise BadRequest(405, f"{path} changes the system: POST it")
        elif request.method not in ("GET", "HEAD"):
            raise BadRequest(405, f"{request.method} is not served here: the page is read-only")
        if not self._authorized(request):
            raise BadRequest(401, "this page needs its token: ?token=... or Authorization: Bearer")
        send_body = request.method == "GET"
        if path in _CHANGES:
            if self._token is None:
                raise BadRequest(
                    403,
                    "this page is read-only: serve it with a token "
                    "(serve_page(system, token=secrets.token_urlsafe())) to allow changes",
                )
            body = _json(await self._change(path, request))
            await respond(stream, 200, "application/json", body)
        elif path == "/api/durable/dead-letters":
            body = _json(await self._browse(request))
            await respond(stream, 200, "application/json", body, send_body=send_body)
        elif path == "/":
            body = PAGE.encode()
            await respond(stream, 200, "text/html; charset=utf-8", body, send_body=send_body)
        elif path == "/api/snapshot":
            body = _json(await self._snapshot(fresh_durable=False))
            await respond(stream, 200, "application/json", body, send_body=send_body)
        elif path == "/api/dead-letters":
            body = _json(self._dead_letters())
            await respond(stream, 200, "application/json", body, send_body=send_body)
        elif path == "/metrics":
            snap = self._take()
            text = prometheus(snap, await self._durable_counts(fresh=True), ASK_LATENCY)
            await respond(
                stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text.encode(),
                send_body=send_body,
            )
        elif path == "/api/events":
            await self._events(stream)
        else:
            raise BadRequest(404, f"no {path} here: try /, /api/snapshot, /api/events, /metrics")

    def _take(self) -> dict[str, Any]:
        return snapshot(self._system, max_children=self._max_children, max_rows=self._max_rows)

    async def _durable_counts(self, *, fresh: bool) -> dict[str, Any] | None:
        if self._system._store is None:
            return None
        now = anyio.current_time()
        if fresh or now - self._durable_at >= self._durable_every:
            self._durable_at = now
            self._durable = await durable_snapshot(self._system)
            took = anyio.current_time() - now
            self._durable_every = max(DURABLE_EVERY, took * DURABLE_SHARE)
        return self._durable

    async def _snapshot(self, *, fresh_durable: bool) -> dict[str, Any]:
        durable = await self._durable_counts(fresh=fresh_durable)
        snap = self._take()
        snap["durable"] = durable
        return snap

    def _dead_letters(self) -> dict[str, Any]:
        snap = self._take()
        by_actor = [
            {"path": row["path"], "dead_letters": row["dead_letters"]}
            for row in snap["actors"]
            if row["dead_letters"]
        ]
        by_actor.sort(key=lambda entry: -entry["dead_letters"])
        return {
            "system": snap["system"],
            "total": snap["totals"]["dead_letters"],
            "unobserved": snap["totals"]["dead_letters_unobserved"],
            "by_actor": by_actor,
            "recent": list(self._recent),
        }

    # -- durable dead-letter queues ------------------------------------------------

    async def _dead_letter_queue(self, request: Request) -> DeadLetters:
        if self._system._store is None:
            raise BadRequest(404, "this system has no store, so no durable streams")
        name = _argument(request, "stream")
        consumer = _argument(request, "consumer")
        try:
            stream = await self._system.streams.get(name)
        except StreamNotFound as error:
            raise BadRequest(404, str(error)) from None
        return stream.dead_letters(consumer)

    async def _browse(self, request: Request) -> dict[str, Any]:
        queue = await self._dead_letter_queue(request)
        since = _number(request, "since", 1)
        until = _number(request, "until", None)
        limit = _number(request, "limit", 100)
        try:
            entries = await queue.browse(since, until)
        except ConsumerNotFound as error:
            raise BadRequest(404, str(error)) from None
        return queue_report(queue, entries, limit)

    def _actor(self, request: Request) -> Cell:
        path = _argument(request, "path")
        names = path.split("/")
        cells = self._system._top
        cell = None
        if names[:2] == ["", "user"] and len(names) > 2:
            for name in names[2:]:
                cell = cells.get(name)
                if cell is None:
                    break
                cells = cell.children
        if cell is None:
            raise BadRequest(404, f"no live actor at {path!r}")
        return cell

    async def _change(self, path: str, request: Request) -> dict[str, Any]:
        if path in ("/api/actors/stop", "/api/actors/kill"):
            ref = self._actor(request).ref
            assert self._task_group is not None
            # Not waited for here: a stop may take the actor's shutdown timeout.
            self._task_group.start_soon(ref.stop if path.endswith("stop") else ref.kill)
            return {"path": ref.path, "done": path.rsplit("/", 1)[1]}
        queue = await self._dead_letter_queue(request)
        try:
            if path == "/api/durable/requeue":
                seqs = [_seq(value) for value in request.query.get("seq", [])]
                if not seqs:
                    raise BadRequest(400, "say which entries to requeue: ?seq=N (one or more)")
                return {"requeued": [seq for seq in seqs if await queue.requeue(seq)]}
            to = request.query.get("to", [None])[0]
            published = await queue.replay(
                to, since=_number(request, "since", 1), until=_number(request, "until", None)
            )
            return {"published": published}
        except (ConsumerNotFound, StreamNotFound) as error:
            raise BadRequest(404, str(error)) from None
        except DurableError as error:
            raise BadRequest(400, str(error)) from None

    # -- the event stream -------------------------------------------------------

    async def _events(self, stream: anyio.abc.SocketStream) -> None:
        await stream.send(head(200, "text/event-stream", None, X_Accel_Buffering="no"))
        self._streams += 1
        try:
            if not self._sampling:
                assert self._task_group is not None
                self._sampling = True
                try:
                    await self._sample()  # the first snapshot, at once
                except BaseException:
                    self._sampling = False
                    raise
                self._task_group.start_soon(self._sampler)
            sent = 0  # the version this stream has; 0: nothing yet
            while True:
                version = self._version
                if sent == version:
                    with anyio.move_on_after(KEEPALIVE) as waited:
                        await self._changed.wait()
                    if waited.cancelled_caught:
                        await stream.send(b": keepalive\n\n")
                    continue
                if sent and sent == version - 1:
                    data = self._delta
                else:
                    if not self._full:  # encoded once per version, when a stream needs it
                        self._full = _event("snapshot", self._snap)
                    data = self._full
                sent = version
                await stream.send(data)
        finally:
            self._streams -= 1

    async def _sampler(self) -> None:
        try:
            while self._streams:
                await anyio.sleep(self.interval)
                await self._sample()
        except Exception:
            logger.exception("the live page of %s stopped sampling", self._system.name)
        finally:
            self._sampling = False

    async def _sample(self) -> None:
        snap = await self._snapshot(fresh_durable=False)
        rows = index(snap)
        sections = {key: value for key, value in snap.items() if key not in ("actors", "time")}
        change = delta(self._rows, rows)
        if (
            self._version
            and not change["set"]
            and not change["removed"]
            and sections == self._sections
        ):
            return
        self._rows = rows
        self._sections = sections
        self._version += 1
        self._snap = snap
        self._full = b""
        self._delta = _event("delta", {**change, **sections, "time": snap["time"]})
        self._changed.set()
        self._changed = anyio.Event()


#: The requests that change something (POST, and only on a page with a token).
_CHANGES = frozenset(
    {"/api/actors/stop", "/api/actors/kill", "/api/durable/requeue", "/api/durable/replay"}
)


def _argument(request: Request, name: str) -> str:
    values = request.query.get(name)
    if not values or not values[0]:
        raise BadRequest(400, f"missing ?{name}=...")
    return values[0]


def _seq(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(400, f"a sequence is a whole number, got {text!r}") from None
    if value < 1:
        raise BadRequest(400, f"a sequence is 1 or more, got {value}")
    return value


def _number(request: Request, name: str, default: int | None) -> Any:
    values = request.query.get(name)
    return default if not values else _seq(values[0])


def queue_report(queue: DeadLetters, entries: list[DeadLetterEntry], limit: int) -> dict[str, Any]:
    """A dead-letter queue's entries as ``/api/durable/dead-letters`` gives
    them (and ``python -m actors dlq`` prints them): at most ``limit``, each
    message shown as its ``repr``, cut at 200 characters."""
    return {
        "stream": queue.stream.name,
        "consumer": queue.consumer,
        "count": len(entries),
        "entries": [
            {
                "seq": entry.seq,
                "subject": entry.subject,
                "deliveries": entry.deliveries,
                "last_error": entry.last_error,
                "dead_at": entry.dead_at,
                "data": _shown(entry.data),
            }
            for entry in entries[:limit]
        ],
    }


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 200 else shown[:199] + "…"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _event(name: str, value: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _json(value) + b"\n\n"
