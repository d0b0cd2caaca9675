"""Nodes of a cluster: actor systems on many machines, linked through NATS.

``ActorSystem("api-1", cluster=NatsCluster(...))`` is a node: its name is its
id in the cluster. On entering, the system connects its own NATS client and
subscribes to two subjects of its own::

    actors.<cluster>.node.<node>.connect    requests to link with this node
    actors.<cluster>.link.<node>.<from>.<link id>   the links' byte streams

Two nodes talk over one link, opened on first use of a ref to the other node
(a ref unpickled here whose node is another node is a :class:`ClusterRef`).
The dialing node asks ``…node.<to>.connect`` (no responders: the node is
down, :class:`NodeDown` at once); then the link is a byte stream over NATS
(:class:`~actors._cluster_stream.LinkStream`, with a credit window) carrying
exactly what a TCP connection between two systems carries
(:class:`actors._tcp.Link`): the handshake with the cluster's secret, then a
:class:`~actors._wire.WireConnection` (every frame MAC'd and numbered before
anything is unpickled) and a :class:`~actors._peer.Peer` (tells, asks,
replies, cancels, stop, watches, heartbeats). Its end is :class:`NodeDown`
for the asks in flight and the watchers of actors over there.

One link per pair: a node that is dialed while it dials the same node
itself keeps the link dialed by the node whose name sorts first; a node
dialed while it has a joined link to the dialer takes the new link (the
dialer lost the old one, or restarted) and ends the old.

# Invariants:
# - ``_links[node]`` is the link to ``node`` from its start until its task
#   ends (or a newer link to the same node replaces it); ``_streams`` has the
#   stream of every link whose task runs, by (node, link id).
# - ``_dialing[node]`` is set while this node asks ``node`` for a link, and
#   at most one such request per node is in flight.
# - Nothing that comes on a link subject is decoded but by the link's wire,
#   after its MAC and sequence checks; a message for no link is counted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._cluster_names import DEFAULT_LEASE, ClusterNames, MemberDown, MemberUp, check_lease
from ._cluster_stream import DEFAULT_WINDOW, LinkStream
from ._exceptions import (
    ActorsError,
    AskTimeout,
    AuthenticationError,
    IncompatiblePeer,
    MailboxFull,
    NameTaken,
    NodeDown,
)
from ._handshake import check_secret, read_cookie
from ._messages import Terminated
from ._remote import RemoteRef, address
from ._signal import Signal
from ._tcp import CLOSE_GRACE, WHEREIS, Link, Network

if TYPE_CHECKING:
    from ._cell import Cell
    from ._cluster_topics import ClusterTopics
    from ._nats import Client, Msg
    from ._peer import Peer
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors.cluster")

#: A cluster's and a node's name: one NATS subject token.
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LINK_ID: Final = re.compile(r"[0-9a-f]{16}")
_MIN_WINDOW: Final = 1 << 12
#: Ended links remembered.
_ENDED: Final = 1024
#: Asks whether a node of a name is up (it answers; nobody else does).
_PROBE: Final = b'{"probe": true}'


def _check_token(what: str, value: object) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValueError(
            f"a {what} in a cluster must be 1 to 64 letters, digits, '-' or '_' (it is a "
            f"NATS subject token), got {value!r}"
        )
    return value


def _seconds(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not 0 < value < math.inf:
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


class NatsCluster:
    """Where a cluster's nodes meet, and the secret they share.

    Give it to :class:`~actors.ActorSystem` (``cluster=``): the system is
    then a node of the cluster, named by the system's name, which must be
    unique in the cluster. One ``NatsCluster`` may serve several systems.

    Args:
        servers: The NATS server URLs (``nats://host:port``); the client
            tries them in order and reconnects by itself.
        name: The cluster's name: nodes of one cluster see only each
            other's subjects (``actors.<name>.>``).
        secret: The cluster's secret, 16 bytes or more: every link proves
            it holds it, and every frame is authenticated with keys drawn
            from it, before anything is unpickled.
        secret_file: Instead of ``secret``, a file holding it that only its
            owner can read or write (:func:`actors.create_cookie`).
        heartbeat: Seconds between heartbeats on a link.
        misses: A link silent for this many heartbeats is down (the node
            is reported down within ``heartbeat * (misses + 1)`` seconds).
        timeout: Seconds to link with a node (request, handshake, names).
        lease: Seconds a node's cluster-wide names and membership last
            without renewal (at least 1): a node that dies or is cut off is
            down, and its names free, within it (see the guide's cluster
            page). A third of it must outlast a NATS server cluster's
            leader election (4 to 9 s), or the names are fenced by one.
            Names need JetStream on the servers.
        window: Bytes a link accepts unread from the other node before that
            node's sends wait (backpressure, never drops).
        user: NATS user name (when the URLs carry none).
        password: Password for ``user``.
        token: NATS authentication token.

    Raises:
        TypeError: Neither or both of ``secret`` and ``secret_file``.
        ValueError: A bad name, a short secret, a bad setting.
        AuthenticationError: The secret file can be read or written by others.

    Examples:
        >>> from actors.cluster import NatsCluster
        >>> cluster = NatsCluster(["nats://127.0.0.1:4222"], name="prod",
        ...                       secret=b"0123456789abcdef")
        >>> cluster.name
        'prod'
    """

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        name: str = "actors",
        secret: bytes | None = None,
        secret_file: str | os.PathLike[str] | None = None,
        heartbeat: float = 1.0,
        misses: int = 3,
        timeout: float = 10.0,
        window: int = DEFAULT_WINDOW,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        if not self.servers or not all(isinstance(url, str) for url in self.servers):
            raise ValueError(f"servers must be NATS URLs, got {servers!r}")
        self.name = _check_token("cluster name", name)
        if (secret is None) == (secret_file is None):
            given = "both" if secret is not None else "neither"
            raise TypeError(
                "NatsCluster needs the cluster's secret, by secret=b'...' (16 bytes or "
                "more) or secret_file='path' (a file only you can read, made by "
                f"actors.create_cookie); {given} was given"
            )
        self._secret = read_cookie(secret_file) if secret_file is not None else check_secret(secret)
        self.heartbeat = _seconds("heartbeat", heartbeat)
        if isinstance(misses, bool) or not isinstance(misses, int) or misses < 1:
            raise ValueError(f"misses must be a whole number >= 1, got {misses!r}")
        self.misses = misses
        self.timeout = _seconds("timeout", timeout)
        if isinstance(window, bool) or not isinstance(window, int) or window < _MIN_WINDOW:
            raise ValueError(
                f"window must be a whole number of bytes >= {_MIN_WINDOW}, got {window!r}"
            )
        self.window = window
        self.lease = check_lease(lease)
        self._user, self._password, self._token = user, password, token

    def __repr__(self) -> str:
        return f"<NatsCluster {self.name!r} {self.servers}>"


@dataclass(frozen=True)
class ClusterStatistics:
    """Counters of a node, from :meth:`Node.statistics`."""

    #: Links up now.
    links: int
    #: Messages on this node's subjects refused before anything in them was
    #: decoded: for no link, out of sequence, malformed, or links whose
    #: handshake failed.
    rejected: int


class Node:
    """A system's membership of a cluster: ``system.cluster``.

    Examples:
        >>> from actors._cluster import Node
        >>> Node.whereis.__name__
        'whereis'
    """

    def __init__(self, system: ActorSystem, config: NatsCluster) -> None:
        self.system = system
        self.config = config
        #: This node's name (its system's).
        self.node = _check_token("node name (the system's name)", system.name)
        self._prefix = f"actors.{config.name}"
        self.client: Client | None = None
        #: Topics have a connection of their own: a slow subscriber there
        #: must not hold up the links.
        self.topic_client: Client | None = None
        self.topics: ClusterTopics | None = None
        self._links: dict[str, Link] = {}
        self._streams: dict[tuple[str, str], LinkStream] = {}
        #: Links ended lately: what the other end sent before it learnt is
        #: dropped without a count.
        self._ended: dict[tuple[str, str], None] = {}
        self._dialing: dict[str, anyio.Event] = {}
        self._awaited: dict[str, anyio.Event] = {}
        self._rejected = 0
        self._warned = False
        self._closing = False
        self._closed = Signal()
        self._scope = anyio.CancelScope()
        #: Cluster-wide names and membership (None without JetStream).
        self.names: ClusterNames | None = None

    def __repr__(self) -> str:
        return f"<Node {self.node!r} of cluster {self.config.name!r}>"

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.config.name

    def statistics(self) -> ClusterStatistics:
        """The node's counters so far."""
        up = sum(
            1
            for link in self._links.values()
            if link.peer is not None and link.joined.is_set() and link.peer.error is None
        )
        return ClusterStatistics(links=up, rejected=self._rejected)

    # -- lifetime (called by the system) ------------------------------------------

    async def open(self) -> None:
        """Connect to NATS and take this node's subjects (before the system's
        nursery opens: the client outlives every link)."""
        from ._nats import Client, NatsTimeout, NoResponders

        config = self.config
        client = Client(
            config.servers,
            name=f"actors {config.name}/{self.node}",
            on_disconnected=self._on_disconnected,
            user=config._user,
            password=config._password,
            token=config._token,
        )
        await client.__aenter__()
        self.client = client
        try:
            topic_client = Client(
                config.servers,
                name=f"actors {config.name}/{self.node} topics",
                user=config._user,
                password=config._password,
                token=config._token,
            )
            await topic_client.__aenter__()
            self.topic_client = topic_client
            try:
                await client.request(self._connect_subject(self.node), _PROBE, timeout=1.0)
            except NoResponders:
                pass
            except NatsTimeout:
                pass
            else:
                raise NameTaken(
                    f"a node named {self.node!r} is already in cluster {config.name!r}: "
                    "give each node (its ActorSystem) a unique name"
                )
            link_sub = await client.subscribe(
                f"{self._prefix}.link.{self.node}.*.*", pending_msgs=0
            )
            # Routed in the client's reader, not by a task iterating the
            # subscription: a switch less per frame (benchmarks.cluster, ask row).
            link_sub._deliver_to(self._route_link)
            self._connect_sub = await client.subscribe(self._connect_subject(self.node))
            await client.flush(config.timeout)
            await self._open_names(client)
        except BaseException:
            await self.close()
            raise

    def start(self) -> None:
        """Serve this node's subjects in a task of the system, and take its topics."""
        from ._cluster_topics import ClusterTopics

        registry = self.system.registry
        self.topics = ClusterTopics(self, registry._report)
        registry._broker = self.topics
        self.system._closing_hooks.append(self._on_closing)
        self.system._start(self._serve, name=f"cluster node {self.node}")
        if self.names is not None:
            self.names.start()

    async def close(self) -> None:
        """Close the NATS clients (after the system's nursery has closed)."""
        names, self.names = self.names, None
        if names is not None:
            await names.close()
        client, self.client = self.client, None
        topic_client, self.topic_client = self.topic_client, None
        # Left in the order they were entered, the last first.
        if topic_client is not None:
            await topic_client.__aexit__(None, None, None)
        if client is not None:
            # Its task group must be left in this task's current scope.
            await client.__aexit__(None, None, None)

    def _on_closing(self) -> None:
        self._closing = True
        if self.topics is not None:
            self.topics.close()
        for link in list(self._links.values()):
            link.close()
        self._closed.set()

    async def _serve(self) -> None:
        with self._scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._serve_connects)
                await self._closed.wait()
                # The links send what they have queued, then the node stops.
                with anyio.move_on_after(CLOSE_GRACE + 1.0):
                    for link in list(self._links.values()):
                        await link.ended.wait()
                task_group.cancel_scope.cancel()

    # -- names and membership (actors._cluster_names) ----------------------------------

    async def _open_names(self, client: Client) -> None:
        if not client.server_info.get("jetstream"):
            return  # names stay local to each node; claim() says why
        names = ClusterNames(
            self.system,
            client,
            self.config.name,
            lease=self.config.lease,
            timeout=self.config.timeout,
        )
        # No node of this name answered the probe: a key left by a dead
        # incarnation of it is taken over, not waited out.
        await names.open(take_over=True)
        names._on_member_down.append(self._member_down)
        self.system.registry._cluster = self.names = names

    def _member_down(self, node: str, reason: BaseException) -> None:
        # Its lease expired: its links are dead even if no heartbeat has
        # missed yet; watchers of its actors learn NodeDown now.
        link = self._links.get(node)
        if link is not None:
            if link.peer is not None and isinstance(reason, NodeDown):
                link.peer.lose(reason)
            link.close()

    def membership(self) -> AsyncGenerator[MemberUp | MemberDown, None]:
        """The cluster's nodes coming and going: a ``MemberUp`` for each
        other node up now, then ``MemberUp`` and ``MemberDown`` events as they
        happen (a node that dies or is cut off is down within its lease plus
        about a second).

        Iterating blocks between events; cancellation leaves the iterator
        usable (``aclose()`` it when done).

        Raises:
            ActorsError: The NATS servers have no JetStream, which keeps
                the membership.

        Examples:
            >>> from actors._cluster import Node
            >>> Node.membership.__name__
            'membership'
        """
        if self.names is None:
            raise ActorsError(
                f"node {self.node!r}: membership needs JetStream on the NATS servers "
                "(nats-server -js)"
            )
        return self.names.membership()

    # -- subjects -------------------------------------------------------------------

    def _connect_subject(self, node: str) -> str:
        return f"{self._prefix}.node.{node}.connect"

    def _link_subject(self, to: str, sender: str, link_id: str) -> str:
        return f"{self._prefix}.link.{to}.{sender}.{link_id}"

    def _reject(self, what: str) -> None:
        self._rejected += 1
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s refused %s; nothing in it was decoded (logged once; see "
                "system.cluster.statistics().rejected for the count)",
                self.node,
                what,
            )

    def _route_link(self, msg: Msg) -> None:
        # What comes on this node's link subjects, to the link's stream
        # (feed never blocks: each stream has its credit window).
        parts = msg.subject.split(".")
        stream = self._streams.get((parts[-2], parts[-1])) if len(parts) == 6 else None
        if stream is not None:
            stream.feed(msg.data)
        elif (parts[-2], parts[-1]) not in self._ended:
            self._reject(
                f"a message on {msg.subject!r}, which belongs to no link (forged, or "
                "for a link already closed)"
            )

    def _broken(self, stream: LinkStream, why: str) -> None:
        if not self._closing:
            self._reject(f"the link with {stream.label}: {why}")

    # -- accepting links ---------------------------------------------------------------

    async def _serve_connects(self) -> None:
        async for msg in self._connect_sub:
            answer = self._on_connect(msg)
            if answer is not None and msg.reply:
                from ._nats import NatsError

                try:
                    assert self.client is not None
                    await self.client.publish(msg.reply, answer)
                except (NatsError, ValueError) as error:
                    logger.warning("%s could not answer a link request: %r", self.node, error)

    def _on_connect(self, msg: Msg) -> bytes | None:
        try:
            request = json.loads(msg.data)
            if msg.data == _PROBE:
                return b"taken"
            sender = request["from"]
            link_id = request["link"]
            window = request["window"]
            valid = (
                isinstance(sender, str)
                and _TOKEN.fullmatch(sender) is not None
                and sender != self.node
                and isinstance(link_id, str)
                and _LINK_ID.fullmatch(link_id) is not None
                and isinstance(window, int)
                and not isinstance(window, bool)
                and _MIN_WINDOW <= window <= 1 << 30
            )
        except (ValueError, TypeError, KeyError):
            valid = False
        if not valid:
            self._reject(f"a malformed link request on {msg.subject!r}")
            return None
        if self._closing:
            return b"refused this node is closing"
        current = self._links.get(sender)
        dialing = sender in self._dialing or (
            current is not None and current.initiator and not current.joined.is_set()
        )
        if dialing and self.node < sender:
            return b"crossed"  # the link this node dials wins
        if current is not None and not current.ended.is_set():
            if current.peer is not None and current.joined.is_set():
                current.peer.lose(
                    NodeDown(f"{sender} linked again: it lost the link, or restarted")
                )
            current.close()
        awaited = self._awaited.pop(sender, None)
        if awaited is not None:
            awaited.set()
        key = (sender, link_id)
        assert self.client is not None
        stream = LinkStream(
            self.client,
            self._link_subject(sender, self.node, link_id),
            self.config.window,
            window,
            sender,
        )
        self._start_link(stream, key, initiator=False)
        return b"ok %d" % self.config.window

    def _start_link(self, stream: LinkStream, key: tuple[str, str], *, initiator: bool) -> Link:
        node = key[0]
        config = self.config
        stream.on_broken = self._broken
        link = Link(
            Network.of(self.system, "a cluster link"),
            initiator=initiator,
            secret=config._secret,
            heartbeat=config.heartbeat,
            misses=config.misses,
            timeout=config.timeout,
            label=node,
            expect=node,
            lost=NodeDown,
            transport="NATS",
        )
        self._streams[key] = stream
        self._links[node] = link
        try:
            self.system._start(self._run_link, link, stream, key, name=f"link {self.node}-{node}")
        except BaseException:
            self._streams.pop(key, None)
            del self._links[node]
            link.network.links.discard(link)
            raise
        return link

    async def _run_link(self, link: Link, stream: LinkStream, key: tuple[str, str]) -> None:
        try:
            await link.serve(stream)
        finally:
            if self._streams.get(key) is stream:
                del self._streams[key]
            if len(self._ended) >= _ENDED:
                del self._ended[next(iter(self._ended))]
            self._ended[key] = None
            if self._links.get(key[0]) is link:
                del self._links[key[0]]
            if isinstance(link.error, (AuthenticationError, IncompatiblePeer)):
                self._reject(f"a link with {key[0]}: {link.error}")

    # -- dialing -----------------------------------------------------------------------

    def _down(self, node: str, why: object) -> NodeDown:
        return NodeDown(f"node {node!r} of cluster {self.config.name!r} cannot be reached: {why}")

    async def link(self, node: str) -> Peer:
        """The link to ``node``, opened if there is none.

        Blocks while linking (bounded by the cluster's ``timeout``).
        Cancellation leaves the link opening.

        Raises:
            NodeDown: No such node is up, or linking with it failed (its
                reason is the ``__cause__``).
        """
        while True:
            peer = self.system._peers.get(node)
            if peer is not None and peer.error is None:
                return peer
            if self._closing or self.client is None:
                raise self._down(node, f"{self.node} is closing")
            link = self._links.get(node)
            # A link that joined and is now lost is on its way out: link anew.
            if link is not None and not link.ended.is_set() and not link.joined.is_set():
                await link.joined.wait()
                peer = link.peer
                if link.error is None and peer is not None and peer.error is None:
                    return peer
                if self._links.get(node) not in (None, link):
                    continue  # a newer link replaced it
                error = link.error or (peer.error if peer is not None else None)
                raise self._down(node, error) from error
            dialing = self._dialing.get(node)
            if dialing is not None:
                await dialing.wait()
                continue
            await self._dial(node)

    async def _dial(self, node: str) -> None:
        from ._nats import NatsError, NatsTimeout, NoResponders

        _check_token("node name", node)
        if node == self.node:
            raise ActorsError(f"{node!r} is this node: it needs no link")
        client = self.client
        assert client is not None
        done = self._dialing[node] = anyio.Event()
        link_id = secrets.token_hex(8)
        key = (node, link_id)
        stream = LinkStream(
            client, self._link_subject(node, self.node, link_id), self.config.window, 0, node
        )
        self._streams[key] = stream
        started = False
        try:
            request = json.dumps({"from": self.node, "link": link_id, "window": self.config.window})
            try:
                reply = await client.request(
                    self._connect_subject(node), request.encode(), timeout=self.config.timeout
                )
            except NoResponders:
                raise self._down(node, "no node of that name is up (no responders)") from None
            except NatsTimeout:
                raise self._down(
                    node, f"it did not answer within {self.config.timeout:g} s"
                ) from None
            except NatsError as error:
                raise self._down(node, error) from error
            answer = reply.data
            if answer == b"crossed":
                # It is dialing this node at the same moment, and its link wins.
                if node not in self._links:
                    waiting = self._awaited.setdefault(node, anyio.Event())
                    with anyio.move_on_after(self.config.timeout):
                        await waiting.wait()
                return
            if not answer.startswith(b"ok "):
                raise self._down(node, answer.decode(errors="replace"))
            try:
                window = int(answer[3:])
            except ValueError:
                raise self._down(node, f"it answered {answer[:100]!r}") from None
            stream.grant(window)
            self._start_link(stream, key, initiator=True)
            started = True
        finally:
            if not started and self._streams.get(key) is stream:
                del self._streams[key]
            del self._dialing[node]
            done.set()

    async def onward(self, node: str) -> Peer | None:
        """The link to the node of ``node`` (a node, or a process of one),
        for a message passed on from a process of this node; None if it is
        not another node's, or cannot be reached (the message is then not
        delivered)."""
        target = node.split(":", 1)[0]
        if target == self.node or not _TOKEN.fullmatch(target) or self._closing:
            return None
        try:
            return await self.link(target)
        except NodeDown as error:
            logger.info("%s", error)
            return None

    async def _dial_quietly(self, node: str) -> None:
        try:
            await self.link(node)
        except NodeDown as error:
            logger.info("%s", error)

    def dial_soon(self, node: str) -> None:
        """Start linking with ``node`` in a task of the system."""
        if not self._closing and node not in self._dialing:
            self.system._start(self._dial_quietly, node, name=f"dial {node}")

    # -- the NATS connection -------------------------------------------------------------

    def _on_disconnected(self, reason: BaseException | None) -> None:
        # Frames in flight may be lost: every link ends now (its watchers
        # learn NodeDown), and the next use of a ref links again.
        why = f"the NATS connection of {self.node} was lost ({reason!r})"
        for stream in list(self._streams.values()):
            stream.fail(why)
        for link in list(self._links.values()):
            if link.peer is not None:
                link.peer.lose(NodeDown(f"{link.node}: {why}"))
            link.close()

    # -- refs ---------------------------------------------------------------------------

    def restore(self, node: str, path: str, uid: int, peer: Peer | None) -> ActorRef | None:
        """A ref to an actor of another node, unpickled here; None if
        ``node`` is not a node of the cluster but a system reached otherwise."""
        target = node.split(":", 1)[0]
        if target == self.node or not _TOKEN.fullmatch(target):
            return None
        if peer is not None and peer.lost is not NodeDown:
            return None
        return ClusterRef(self, target, node, path, uid)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until the NATS server has this node's topic subscriptions
        (one round trip): publishes from other nodes after it reach them.

        A subscription takes effect here at once, and for publishes from
        this node; other nodes' publishes reach it once the server has it.
        Cancellation leaves nothing behind.

        Raises:
            TimeoutError: The server did not answer within ``timeout``.
            ActorsError: The node's NATS client is closed.
        """
        client = self.topic_client
        if client is None:
            raise ActorsError(f"node {self.node!r} is not connected to NATS")
        await client.flush(timeout)

    async def whereis(
        self, node: str, name: str, *, timeout: float | None = 10.0
    ) -> ActorRef | None:
        """The actor registered as ``name`` on ``node``, or ``None``.

        Asks that node's registry (``system.registry.register`` or
        ``register_as=`` there), linking with it first if needed. The ref
        works from every node.

        Blocks for the link and one round trip. Cancellation leaves nothing
        behind but, perhaps, the link opening.

        Args:
            node: The node's name (its system's).
            name: A registered name there.
            timeout: Seconds to wait for the answer once linked.

        Returns:
            A ref to the actor, or ``None`` if no live actor has that name.

        Raises:
            NodeDown: The node is not up, or cannot be linked with.
            AskTimeout: No answer within ``timeout``.
            TypeError: ``name`` is not a str.
            ValueError: ``name`` or ``node`` is not valid.
        """
        from ._registry import _check_name

        _check_name(name)
        _check_token("node name", node)
        if node == self.node:
            return self.system.registry.whereis(name)
        peer = await self.link(node)
        ref: ActorRef | None = await RemoteRef(peer, "", WHEREIS, 0).ask(name, timeout=timeout)
        return ref


class ClusterRef(RemoteRef):
    """A ref to an actor of another node: its messages go over the link to
    that node, opened on first use and again after it was lost."""

    __slots__ = ("_node", "_target")

    def __init__(self, node: Node, target: str, system_name: str, path: str, uid: int) -> None:
        from ._ref import ActorRef as _ActorRef

        _ActorRef.__init__(self, None, system_name, path, uid)
        self._node = node
        #: The node the link goes to (a process actor's node is its parent).
        self._target = target
        self._peer = None  # type: ignore[assignment]
        self._address = address(system_name, uid, path)
        self._address_bytes = self._address.encode()
        self._ended = False

    def _live(self) -> Peer | None:
        peer: Peer | None = self._peer
        if peer is not None and peer.error is None:
            return peer
        peer = self._node.system._peers.get(self._target)
        if peer is not None and peer.error is None:
            self._peer = peer
            return peer
        return None

    async def _linked(self) -> Peer:
        peer = self._live()
        if peer is None:
            peer = self._peer = await self._node.link(self._target)
        return peer

    async def tell(self, message: Any) -> None:
        if self._live() is None:
            try:
                await self._linked()
            except NodeDown as error:
                self._node.system._dead_letter(message, self, f"node down: {error}")
                return
        await super().tell(message)

    def tell_nowait(self, message: Any) -> None:
        if self._live() is None:
            self._node.dial_soon(self._target)
            raise MailboxFull(
                f"no link to node {self._target!r} yet: it is being opened; nothing was "
                f"sent to {self._path}; retry later or use `await tell()`"
            )
        super().tell_nowait(message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        if self._live() is None:
            with anyio.move_on_after(math.inf if timeout is None else timeout) as waiting:
                await self._linked()
            if waiting.cancelled_caught:
                raise AskTimeout(
                    f"no link to node {self._target!r} within {timeout:g} s: nothing was "
                    f"sent to {self._path}"
                )
        return await super().ask(message, timeout)

    async def stop(self) -> None:
        try:
            await self._linked()
        except NodeDown:
            return
        await super().stop()

    def stop_nowait(self) -> None:
        if self._live() is None:
            self._node.system._start(self.stop, name=f"stop {self._path}")
            return
        super().stop_nowait()

    async def kill(self) -> None:
        try:
            await self._linked()
        except NodeDown:
            return
        await super().kill()

    @property
    def alive(self) -> bool:
        return not self._ended and (self._live() is not None or self._peer is None)

    async def join(self) -> Terminated:
        try:
            await self._linked()
        except NodeDown as error:
            return Terminated(self, error)
        return await super().join()

    def _watch(self, cell: Cell) -> None:
        peer = self._live()
        if peer is not None:
            peer.watch(self, self._address, cell)
            return
        if cell.mailbox.closed:
            return
        watching = cell.watching
        if watching is None:
            watching = cell.watching = {}
        elif self in watching:
            return
        watching[self] = None
        self._node.system._start(self._watch_linked, cell, name=f"watch {self._path}")

    async def _watch_linked(self, cell: Cell) -> None:
        try:
            peer = await self._linked()
        except NodeDown as error:
            if cell.watching and self in cell.watching and not cell.mailbox.closed:
                cell.mailbox.put_system(Terminated(self, error))
            return
        if not cell.watching or self not in cell.watching or cell.mailbox.closed:
            return  # unwatched meanwhile
        if peer.error is not None:
            cell.mailbox.put_system(Terminated(self, peer._lost_error()))
            return
        peer._watch_entry(self, self._address).cells[cell] = None

    def _unwatch(self, cell: Cell) -> None:
        peer: Peer | None = self._peer
        if peer is not None:
            super()._unwatch(cell)
        elif cell.watching:
            cell.watching.pop(self, None)


__all__ = ["ClusterRef", "ClusterStatistics", "NatsCluster", "Node"]
