"""Systems joined over TCP: ``system.listen()`` and ``system.connect()``.

A system listens on a TCP address; another connects to it. Each connection
runs the handshake (the connecting side is the initiator) with a secret both
were given, then each side says its node name (its system's name) in a first
``hello`` control message over the authenticated connection: the connecting
side first, the listening side once it has accepted the name. A name equal
to the receiver's own, or of a system already connected to it, is refused
with :class:`NameTaken` on both ends, since refs are told apart by their
node's name. Then the connection is a :class:`~actors._peer.Peer` in
``system._peers`` under that name: refs that cross it unpickle as
``RemoteRef`` s through it, in both directions, and the peers exchange
heartbeats (a ping every interval; silence for ``misses`` intervals ends the
connection). Its end is the peer's: asks in flight raise
:class:`ConnectionLost`, watchers get ``Terminated(ref, ConnectionLost(...))``.

The listening side keeps topics for the other (``serve_topics``); a system
that connects with ``topics=True`` forwards its topics there
(:class:`SharedTopics`), until the connection ends.

Listeners and connections are tasks of the system's nursery, like its
actors: the system closes them once its actors have stopped (each within
:data:`CLOSE_GRACE` seconds), so none outlives ``async with ActorSystem()``.

# Invariants:
# - Every listener and connection of a system is in its ``Network`` from its
#   start until its task ends; ``Network.close`` (the system's closing hook)
#   closes all of them, and nothing starts after it.
# - A connection's peer is in ``system._peers`` under the other side's name
#   only between its accepted hello and its end, and no two peers there
#   share a name (the check and the registration happen in one step).
# - ``Link.joined`` is set exactly once: when the hello is accepted, or when
#   the connection ends before that, with ``Link.error`` saying why.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc

from ._exceptions import (
    ActorsError,
    ConnectionLost,
    IncompatiblePeer,
    NameTaken,
)
from ._go import current_owner
from ._handshake import check_secret, handshake, read_cookie
from ._peer import Peer, Silent
from ._remote import RemoteRef
from ._remote_topics import UpstreamBroker, serve_topics
from ._signal import Signal
from ._socket import accept, connect_tcp
from ._wire import WireConnection

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors.tcp")

#: Seconds between heartbeats on a TCP connection, by default.
DEFAULT_HEARTBEAT: Final = 1.0
#: Heartbeats missed before the other side is declared lost, by default.
DEFAULT_MISSES: Final = 3
#: Seconds for a new connection's handshake and hello, by default.
DEFAULT_TIMEOUT: Final = 10.0
#: Seconds a closing connection gets to send what is queued.
CLOSE_GRACE: Final = 1.0
#: The service that answers registry lookups (``RemoteSystem.whereis``).
WHEREIS: Final = "names.whereis"


@dataclass(frozen=True)
class _Hello:
    """Each side's first control message: who it is, and its heartbeat."""

    node: str
    heartbeat: float


# -- arguments ------------------------------------------------------------------


def shared_secret(secret: object, cookie: str | os.PathLike[str] | None, what: str) -> bytes:
    """The secret from exactly one of ``secret=`` and ``cookie=``."""
    if (secret is None) == (cookie is None):
        given = "both" if secret is not None else "neither"
        raise TypeError(
            f"{what} needs the shared secret, by secret=b'...' (16 bytes or more) or "
            f"cookie='path' (a file only you can read, made by actors.create_cookie); "
            f"{given} was given"
        )
    if cookie is not None:
        return read_cookie(cookie)
    return check_secret(secret)


def _seconds(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not 0 < value < math.inf:
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _misses(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"misses must be a whole number >= 1, got {value!r}")
    return value


def parse_address(address: object) -> tuple[str, int]:
    """``"host:port"``, ``"[v6 host]:port"`` or ``(host, port)`` as a pair.

    Examples:
        >>> parse_address("127.0.0.1:7000"), parse_address("[::1]:7000")
        (('127.0.0.1', 7000), ('::1', 7000))
    """
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
    elif isinstance(address, str):
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
    else:
        raise TypeError(f"an address is 'host:port' or (host, port), got {address!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = -1
    if not isinstance(host, str) or not host or not 0 < port < 65536:
        raise ValueError(
            f"an address is 'host:port' with a port from 1 to 65535, e.g. "
            f"'127.0.0.1:7000', got {address!r}"
        )
    return host, port


def format_address(host: str, port: int) -> str:
    """The text form of an address (brackets around an IPv6 host)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_name(stream: anyio.abc.ByteStream) -> str:
    try:
        remote = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except (anyio.TypedAttributeLookupError, OSError):
        return "?"
    if isinstance(remote, tuple):
        return format_address(str(remote[0]), int(remote[1]))
    return str(remote)


# -- the connections of one system -----------------------------------------------


class Network:
    """The listeners and TCP connections of one system (internal)."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self.listeners: set[Listener] = set()
        self.links: set[Link] = set()
        self.closed = False
        system._closing_hooks.append(self.close)

    @staticmethod
    def of(system: ActorSystem, what: str) -> Network:
        """The system's network, if the system runs and is not closing."""
        network: Network | None = system._network
        if not system._open or (network is not None and network.closed):
            raise ActorsError(
                f"actor system {system.name!r} is not running: call {what} inside "
                f"`async with ActorSystem() as system:`"
            )
        if network is None:
            network = system._network = Network(system)
        return network

    def close(self) -> None:
        """Close every listener and connection (the system is closing)."""
        self.closed = True
        for listener in list(self.listeners):
            listener._stop()
        for link in list(self.links):
            link.close()


class Link:
    """One TCP connection to another system, served by a task of the
    system's nursery (internal; users hold a :class:`RemoteSystem`)."""

    def __init__(
        self,
        network: Network,
        *,
        initiator: bool,
        secret: bytes,
        heartbeat: float,
        misses: int,
        timeout: float,
        label: str,
        expect: str | None = None,
        lost: type[ConnectionLost] = ConnectionLost,
        transport: str = "TCP",
        deadline: float | None = None,
    ) -> None:
        self.network = network
        self.system = network.system
        self.initiator = initiator
        self.secret = secret
        self.heartbeat = heartbeat
        self.misses = misses
        self.timeout = timeout
        #: When the handshake and the names must be done (``connect``: its
        #: one ``timeout`` covers the TCP connection too); else ``timeout``
        #: from the start of serving.
        self.deadline = deadline
        #: Where the other side is, until it says its name.
        self.label = label
        #: The name the other side must say (a cluster's node), if known.
        self.expect = expect
        self.lost = lost
        self.transport = transport
        self.peer: Peer | None = None
        #: Set once: joined (the hello was accepted), or ended before that.
        self.joined = Signal()
        self.ended = Signal()
        #: Why it did not join, or why it ended.
        self.error: BaseException | None = None
        self.closing = False
        #: This system's broker while its topics are the other side's.
        self.upstream: SharedTopics | None = None
        self.scope = anyio.CancelScope()
        network.links.add(self)

    @property
    def node(self) -> str:
        return self.peer.node if self.peer is not None else self.label

    def close(self) -> None:
        """End the connection: what is queued is sent within :data:`CLOSE_GRACE`."""
        self.closing = True
        if self.peer is None or not self.joined.is_set():
            self.scope.cancel()
            return
        self.peer.close()
        self.scope.deadline = min(self.scope.deadline, anyio.current_time() + CLOSE_GRACE)

    async def serve(self, stream: anyio.abc.ByteStream) -> None:
        """The connection's task: handshake, hello, then the peer until the end."""
        current_owner.set(None)  # unpickled refs resolve against this system
        try:
            with self.scope:
                if not self.closing:
                    await self._serve(stream)
        except Exception as error:  # never out of the task: it would crash the system
            self.error = self.error or error
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)
            self.network.links.discard(self)
            if not self.joined.is_set():
                if self.error is None:
                    self.error = ConnectionLost(
                        f"the connection to {self.label} was closed before it joined"
                    )
                self.joined.set()
                if not self.initiator and not self.closing:
                    logger.warning(
                        "refused a connection from %s: %s: %s",
                        self.label,
                        type(self.error).__name__,
                        self.error,
                    )
            else:
                self._log_end()
            self._own_topics_again()
            self.ended.set()

    def share_topics(self) -> None:
        """Make this system's topics the other side's (``topics=True``)."""
        assert self.peer is not None
        check_topics_free(self.system)
        registry = self.system.registry
        broker = self.upstream = SharedTopics(self.peer, registry._report)
        registry._broker = broker

    def _own_topics_again(self) -> None:
        # The subscriptions made here while shared stay, now local only.
        registry = self.system.registry
        if self.upstream is not None and registry._broker is self.upstream:
            registry._broker = self.upstream._local

    async def _serve(self, stream: anyio.abc.ByteStream) -> None:
        deadline = self.deadline
        if deadline is None:
            deadline = anyio.current_time() + self.timeout
        with anyio.CancelScope(deadline=deadline) as waiting:
            session = await handshake(stream, self.secret, self.initiator)
        if waiting.cancelled_caught:
            raise TimeoutError(f"no handshake with {self.label} within {self.timeout:g} s")
        peer = self.peer = Peer(
            self.system, WireConnection(stream, session), self.label, lost=self.lost
        )
        peer.handlers["hello"] = self._on_hello
        peer.handlers["refused"] = self._on_refused
        peer.services[WHEREIS] = self._whereis
        if not self.initiator:
            serve_topics(peer)  # for a system that joins with topics=True
        if self.initiator:
            peer.signal("hello", _Hello(self.system.name, self.heartbeat))
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._hello_deadline, deadline)
            try:
                await peer.run()
            except Exception as error:
                self.error = self.error or error
            task_group.cancel_scope.cancel()

    async def _hello_deadline(self, deadline: float) -> None:
        await anyio.sleep_until(deadline)
        if not self.joined.is_set() and self.peer is not None:
            self.error = TimeoutError(
                f"{self.label} did not say its name within {self.timeout:g} s"
            )
            self.peer.close()

    # -- the hello ------------------------------------------------------------------

    def _on_hello(self, hello: _Hello) -> Awaitable[None] | None:
        peer = self.peer
        assert peer is not None
        if self.joined.is_set():
            raise IncompatiblePeer(f"{peer.node} said hello twice")
        system = self.system
        name = hello.node
        problem = None
        if not isinstance(name, str) or not name or "/" in name or "\0" in name:
            problem = f"its node name {name!r} is not a valid system name"
        elif self.expect is not None and name != self.expect:
            problem = f"it says it is {name!r}, but the link was made for {self.expect!r}"
        elif name == system.name:
            problem = (
                f"it has the same name as this system, {name!r}: refs are told apart by "
                "their system's name, so give each system a unique name "
                "(ActorSystem('api-1'))"
            )
        elif name in system._peers:
            problem = (
                f"a system named {name!r} is already connected to {system.name!r}: "
                "give each system a unique name, or close the other connection first"
            )
        if problem is not None:
            return self._refuse(name, problem)
        peer.node = name
        system._peers[name] = peer
        if not self.initiator:
            peer.signal("hello", _Hello(system.name, self.heartbeat))
        # Both ends beat at the slower of the two rates, so neither declares
        # a healthy peer silent.
        peer.start_heartbeat(max(self.heartbeat, _positive(hello.heartbeat)), self.misses)
        self.joined.set()
        logger.info(
            "%s joined %s over %s (%s)",
            *((system.name, name) if self.initiator else (name, system.name)),
            self.transport,
            self.label,
        )
        return None

    async def _refuse(self, name: object, problem: str) -> None:
        peer = self.peer
        assert peer is not None
        peer.signal("refused", (self.system.name, problem))
        with anyio.move_on_after(CLOSE_GRACE):
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await peer.wire.flush()
        raise NameTaken(f"refused the system {name!r} at {self.label}: {problem}")

    def _on_refused(self, payload: tuple[str, str]) -> None:
        node, problem = payload
        raise NameTaken(
            f"{node!r} at {self.label} refused this system ({self.system.name!r}): {problem}"
        )

    async def _whereis(self, name: object) -> ActorRef | None:
        return self.system.registry.whereis(name)  # type: ignore[arg-type]

    def _log_end(self) -> None:
        error = self.error
        node = self.node
        if error is None or (self.closing and isinstance(error, ConnectionLost)):
            logger.info("the connection to %s was closed", node)
        elif isinstance(error, ConnectionLost):
            logger.info("the connection to %s ended: %s", node, error)
        elif isinstance(error, Silent):
            logger.warning("the connection to %s was lost: %s", node, error)
        else:
            logger.warning("the connection to %s ended: %s: %s", node, type(error).__name__, error)


class SharedTopics(UpstreamBroker):
    """The broker of a system that joined another with ``topics=True``: the
    other system's topics while the connection is up; from the moment it
    ends, the subscriptions made here, here only.

    Dead letters made here are offered to the subscribers here (which also
    get the other system's, through their subscriptions there): unlike a
    child process, this system does not pass its dead letters on."""

    __slots__ = ()

    async def publish(self, topic: str, message: Any) -> int:
        if self._peer.error is not None:
            return await self._local.publish(topic, message)
        return await super().publish(topic, message)

    def offer(self, topic: str, message: Any) -> int:
        return self._local.offer(topic, message)


def check_topics_free(system: ActorSystem) -> None:
    """Refuse ``topics=True`` where it would drop or mix subscriptions."""
    broker = system.registry._broker
    if isinstance(broker, UpstreamBroker):
        raise ActorsError(
            f"the topics of {system.name!r} are already those of {broker._peer.node!r}: "
            "a system shares the topics of one other system at most"
        )
    taken = system.registry.topics()
    if taken:
        raise ActorsError(
            f"connect(topics=True) makes the topics of {system.name!r} those of the "
            f"system it joins, so it must come before anything here subscribes; "
            f"{', '.join(repr(t.pattern) for t in taken)} already "
            f"{'has' if len(taken) == 1 else 'have'} subscribers: connect first"
        )


def _positive(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    raise IncompatiblePeer(f"the peer announced a heartbeat of {value!r} seconds")


# -- listening ----------------------------------------------------------------------


class Listener:
    """A TCP address an actor system accepts other systems on.

    Returned by :meth:`ActorSystem.listen`; ``str(listener)`` is its bound
    address (``"127.0.0.1:41234"``), ready for :meth:`ActorSystem.connect`.
    It accepts until :meth:`close` or until its system closes.

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem("server") as system:
        ...         listener = await system.listen(secret=b"0123456789abcdef")
        ...         return listener.host, listener.port > 0
        >>> actors.run(main)
        ('127.0.0.1', True)
    """

    def __init__(
        self,
        network: Network,
        sockets: anyio.abc.Listener[anyio.abc.SocketStream],
        listeners: list[anyio.abc.SocketListener],
        *,
        secret: bytes,
        heartbeat: float,
        misses: int,
        timeout: float,
    ) -> None:
        self._network = network
        self._sockets = sockets
        self._listeners = listeners
        self._secret = secret
        self._heartbeat = heartbeat
        self._misses = misses
        self._timeout = timeout
        self._scope = anyio.CancelScope()
        self._done = Signal()
        local = listeners[0].extra(anyio.abc.SocketAttribute.local_address)
        #: The host it is bound to.
        self.host: str = str(local[0])
        #: The port it is bound to (the one the system picked, for port 0).
        self.port: int = int(local[1])
        network.listeners.add(self)

    @property
    def address(self) -> str:
        """``"host:port"``, as :meth:`ActorSystem.connect` takes it."""
        return format_address(self.host, self.port)

    def __str__(self) -> str:
        return self.address

    def __repr__(self) -> str:
        state = "closed" if self._done.is_set() else "listening"
        return f"<Listener {self.address} of {self._network.system.name!r} {state}>"

    async def close(self) -> None:
        """Stop accepting connections; those already joined go on.

        Returns once the listening sockets are closed. Cancelling the wait
        leaves the listener closing.
        """
        self._stop()
        await self._done.wait()

    def _stop(self) -> None:
        self._scope.cancel()

    async def _serve(self) -> None:
        current_owner.set(None)
        try:
            with self._scope:
                async with anyio.create_task_group() as task_group:
                    for listener in self._listeners:
                        task_group.start_soon(self._accept, listener)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(self._sockets)
            self._network.listeners.discard(self)
            self._done.set()

    async def _accept(self, listener: anyio.abc.SocketListener) -> None:
        # Connections as SocketStreams (asks and replies written from their
        # sender's task), accepted from anyio's bound socket.
        network = self._network
        system = network.system
        listening = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        while True:
            try:
                stream = await accept(listening)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as error:  # out of descriptors, say: try again soon
                logger.warning("%s could not accept a connection: %r", self.address, error)
                await anyio.sleep(0.1)
                continue
            label = _peer_name(stream)
            if network.closed:
                await anyio.aclose_forcefully(stream)
                continue
            link = Link(
                network,
                initiator=False,
                secret=self._secret,
                heartbeat=self._heartbeat,
                misses=self._misses,
                timeout=self._timeout,
                label=label,
            )
            system._start(link.serve, stream, name=f"connection from {label}")


async def listen(
    system: ActorSystem,
    host: str,
    port: int,
    *,
    secret: bytes | None,
    cookie: str | os.PathLike[str] | None,
    heartbeat: float,
    misses: int,
    timeout: float,
) -> Listener:
    """See :meth:`ActorSystem.listen`."""
    network = Network.of(system, "listen()")
    key = shared_secret(secret, cookie, "listen()")
    heartbeat = _seconds("heartbeat", heartbeat)
    misses = _misses(misses)
    timeout = _seconds("timeout", timeout)
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a host name or address, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError(
            f"port must be a whole number from 0 (any free port) to 65535, got {port!r}"
        )
    try:
        sockets = await anyio.create_tcp_listener(local_host=host, local_port=port)
    except OSError as error:
        hint = " (port=0 takes any free port)" if error.errno == errno.EADDRINUSE else ""
        raise _named(error, f"cannot listen on {format_address(host, port)}", hint) from error
    listeners = [
        listener for listener in sockets.listeners if isinstance(listener, anyio.abc.SocketListener)
    ]
    listener = Listener(
        network,
        sockets,
        listeners,
        secret=key,
        heartbeat=heartbeat,
        misses=misses,
        timeout=timeout,
    )
    try:
        system._start(listener._serve, name=f"listener {listener.address}")
    except BaseException:
        network.listeners.discard(listener)
        await anyio.aclose_forcefully(sockets)
        raise
    logger.info("%s listens on %s", system.name, listener.address)
    return listener


# -- connecting -----------------------------------------------------------------------


class RemoteSystem:
    """Another actor system, joined over TCP by :meth:`ActorSystem.connect`.

    Refs to its actors are ordinary ``ActorRef`` s: tell, ask, stop, join and
    watch them as local ones. An async context manager that closes the
    connection when left.

    Examples:
        >>> import actors
        >>> async def main():
        ...     secret = b"0123456789abcdef"
        ...     async with actors.ActorSystem("server") as server:
        ...         idle = await server.spawn(actors.Actor, name="idle")
        ...         server.registry.register("idle", idle)
        ...         listener = await server.listen(secret=secret)
        ...         async with actors.ActorSystem("client") as client:
        ...             async with await client.connect(listener.address, secret=secret) as remote:
        ...                 ref = await remote.whereis("idle")
        ...                 return remote.node, ref.path
        >>> actors.run(main)
        ('server', '/user/idle')
    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._peer = link.peer

    @property
    def node(self) -> str:
        """The other system's name (the node its refs carry)."""
        return self._link.node

    @property
    def connected(self) -> bool:
        """Whether the connection is still up."""
        peer = self._peer
        return peer is not None and peer.error is None and not self._link.ended.is_set()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<RemoteSystem {self.node!r} {state}>"

    async def whereis(self, name: str, *, timeout: float | None = 10.0) -> ActorRef | None:
        """The actor registered as ``name`` in the other system, or ``None``.

        Blocks for one round trip. Cancellation leaves nothing behind.

        Args:
            name: A registered name there (``system.registry.register``, or
                ``register_as=`` at spawn).
            timeout: Seconds to wait for the answer (``None``: no limit).

        Returns:
            A ref to the actor, or ``None`` if no live actor has that name.

        Raises:
            ConnectionLost: The connection ended first.
            AskTimeout: No answer within ``timeout``.
            TypeError: ``name`` is not a str.
            ValueError: ``name`` is not a valid registered name.
        """
        from ._registry import _check_name

        _check_name(name)
        if timeout is not None:
            _seconds("timeout", timeout)
        peer = self._peer
        if peer is None:  # pragma: no cover - a RemoteSystem is made once joined
            raise ConnectionLost(f"the connection to {self.node} is closed")
        ref: ActorRef | None = await RemoteRef(peer, "", WHEREIS, 0).ask(name, timeout=timeout)
        return ref

    async def wait_closed(self) -> None:
        """Wait until the connection has ended: closed by either side, or
        lost. Cancellation leaves nothing behind."""
        await self._link.ended.wait()

    async def close(self) -> None:
        """Close the connection, sending what is queued first (for up to a
        second). Refs to the other system's actors then behave as after any
        lost connection: asks raise :class:`ConnectionLost`, watchers get
        ``Terminated(ref, ConnectionLost(...))``, tells are dead letters.

        Returns when the connection has ended. Cancelling the wait leaves
        the connection closing.
        """
        self._link.close()
        await self._link.ended.wait()

    async def __aenter__(self) -> RemoteSystem:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def connect(
    system: ActorSystem,
    address: str | tuple[str, int],
    *,
    secret: bytes | None,
    cookie: str | os.PathLike[str] | None,
    topics: bool,
    heartbeat: float,
    misses: int,
    timeout: float,
) -> RemoteSystem:
    """See :meth:`ActorSystem.connect`."""
    network = Network.of(system, "connect()")
    if topics:
        check_topics_free(system)
    key = shared_secret(secret, cookie, "connect()")
    heartbeat = _seconds("heartbeat", heartbeat)
    misses = _misses(misses)
    timeout = _seconds("timeout", timeout)
    host, port = parse_address(address)
    label = format_address(host, port)
    deadline = anyio.current_time() + timeout  # for all of it
    try:
        with anyio.fail_after(timeout):
            stream = await connect_tcp(host, port)
    except TimeoutError:
        raise TimeoutError(
            f"no TCP connection to {label} within {timeout:g} s (is the address right, "
            f"and does a firewall drop the packets?)"
        ) from None
    except OSError as error:
        raise _named(error, f"cannot connect to {label}") from error
    link = Link(
        network,
        initiator=True,
        secret=key,
        heartbeat=heartbeat,
        misses=misses,
        timeout=timeout,
        label=label,
        deadline=deadline,
    )
    try:
        system._start(link.serve, stream, name=f"connection to {label}")
    except BaseException:
        network.links.discard(link)
        await anyio.aclose_forcefully(stream)
        raise
    try:
        await link.joined.wait()
    except BaseException:
        link.close()  # cancelled while joining: the connection ends too
        raise
    if link.error is not None:
        raise link.error
    if topics:
        try:
            link.share_topics()
        except BaseException:
            link.close()
            raise
    return RemoteSystem(link)


def _named(error: OSError, what: str, hint: str = "") -> OSError:
    # The error again, saying what failed; OSError(errno, ...) keeps its
    # subclass (ConnectionRefusedError...), and one without an errno stays so.
    text = f"{what}: {error.strerror or error}{hint}"
    return OSError(error.errno, text) if error.errno is not None else OSError(text)


__all__ = ["Listener", "RemoteSystem", "connect", "listen"]
