"""Systems joined over TCP: system.listen() and system.connect(), on both
backends; two systems in this process, and one in a subprocess on either
backend that is killed."""

from __future__ import annotations

import os
import re
import signal
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from process_kit import Echo, Handlers
from tcp_kit import (
    CANARY_MARK,
    SECRET,
    Canary,
    Keeper,
    other_backend,
    run_node,
    tcp_log,
    tcp_proxy,
    unpickled,
)

import actors
from actors import (
    ActorFailed,
    ActorStopped,
    AuthenticationError,
    ConnectionLost,
    IncompatiblePeer,
    NameTaken,
    Terminated,
)
from actors._handshake import handshake, local_versions
from actors.testing import TestProbe

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 20.0

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def two_systems(
    **options: Any,
) -> AsyncIterator[tuple[actors.ActorSystem, actors.ActorSystem, actors.RemoteSystem]]:
    """``server`` (with an Echo registered as ``echo``) listening, and
    ``client`` joined to it."""
    async with actors.ActorSystem("server") as server:
        echo = await server.spawn(Echo, "server", name="echo")
        server.registry.register("echo", echo)
        listener = await server.listen(secret=SECRET, **options)
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(listener.address, secret=SECRET, **options)
            yield server, client, remote


def terminated(message: Any) -> bool:
    return isinstance(message, Terminated)


# -- joining ----------------------------------------------------------------------------


async def test_a_system_joins_another_and_finds_its_actors_by_name() -> None:
    async with two_systems() as (server, client, remote):
        assert remote.node == "server" and remote.connected
        assert repr(remote) == "<RemoteSystem 'server' connected>"
        ref = await remote.whereis("echo")
        assert isinstance(ref, actors.ActorRef) and ref.path == "/user/echo"
        assert await remote.whereis("nobody") is None
        assert await ref.ask("hi") == ("echo", "server", "hi")
        for i in range(500):
            await ref.tell(i)
        assert await ref.ask("seen") == ["hi", *range(500)]  # FIFO
        assert await remote.whereis("echo") == ref
        assert set(server._peers) == {"client"} and set(client._peers) == {"server"}


async def test_refs_asks_watches_and_stops_flow_both_ways() -> None:
    async with two_systems() as (server, client, remote):
        ref = await remote.whereis("echo")
        assert ref is not None
        probe = await TestProbe.start(client)
        local = await client.spawn(Echo, "client", name="local")
        # The server's actor tells and asks actors of the client through refs it was sent.
        await ref.tell(("tell", probe.ref, "from the server"))
        await probe.expect("from the server", timeout=WAIT)
        assert await ref.ask(("ask", local, "question")) == ("echo", "client", "question")
        # A ref that went there and back is the same ref.
        await ref.tell(("tell", probe.ref, local))
        assert await probe.expect(lambda m: isinstance(m, actors.ActorRef), timeout=WAIT) == local
        # The server watches an actor of the client, which stops.
        watcher = await TestProbe.start(server, name="watcher")
        server.registry.register("watcher", watcher.ref)
        far_watcher = await remote.whereis("watcher")
        assert far_watcher is not None
        await far_watcher.tell(local)
        there = await watcher.expect(lambda m: isinstance(m, actors.ActorRef), timeout=WAIT)
        watcher.watch(there)
        await local.stop()
        notice = await watcher.expect(terminated, timeout=WAIT)
        assert notice.ref == there and notice.reason is None
        # The client watches, joins and stops an actor of the server.
        probe.watch(ref)
        await ref.stop()
        notice = await probe.expect(terminated, timeout=WAIT)
        assert notice.ref == ref and notice.reason is None
        assert (await ref.join()).reason is None
        assert server.registry.whereis("echo") is None
        with pytest.raises(ActorStopped):
            await ref.ask("late")


async def test_a_remote_ref_is_not_alive_once_it_learns_the_end() -> None:
    # It said alive while the connection was up, after a stop it had made.
    async with two_systems() as (server, client, remote):
        stopped_here = await server.spawn(Echo, name="a")
        server.registry.register("a", stopped_here)
        for name in ("b", "c"):
            server.registry.register(name, await server.spawn(Echo, name=name))
        a, b, c = [await remote.whereis(name) for name in ("a", "b", "c")]
        assert a is not None and b is not None and c is not None
        assert alive(a) and alive(b) and alive(c)
        await b.stop()  # waits for the end: learns it
        assert not alive(b)
        await stopped_here.stop()  # over there: nothing said here yet
        assert alive(a)
        with pytest.raises(ActorStopped):
            await a.ask("hi")
        assert not alive(a)
        probe = await TestProbe.start(client)
        probe.watch(c)
        c_here = server.registry.whereis("c")
        assert c_here is not None
        await c_here.stop()
        await probe.expect(terminated, timeout=WAIT)
        assert not alive(c)
        d = await remote.whereis("echo")
        assert d is not None and alive(d)
        await remote.close()
        assert not alive(d)  # the connection's end


def alive(ref: actors.ActorRef) -> bool:
    return ref.alive  # read anew each time (a property mypy would narrow)


async def test_a_remote_failure_arrives_as_the_original_exception() -> None:
    async with two_systems() as (server, client, remote):
        await server.spawn(Keeper, "fragile")
        handlers = await server.spawn(Handlers, name="handlers")
        server.registry.register("handlers", handlers)
        ref = await remote.whereis("fragile")
        assert ref is not None
        probe = await TestProbe.start(client)
        probe.watch(ref)
        with pytest.raises(ActorFailed) as caught:
            await ref.ask("boom")
        cause = caught.value.__cause__
        assert isinstance(cause, ValueError) and str(cause) == "boom"
        assert "Traceback" in cause.remote_traceback  # type: ignore[attr-defined]
        assert cause.node == "server"  # type: ignore[attr-defined]
        notice = await probe.expect(terminated, timeout=WAIT)
        assert isinstance(notice.reason, ValueError)
        # Cancelling an ask cancels the remote handler (before the next message).
        far = await remote.whereis("handlers")
        assert far is not None
        with anyio.move_on_after(0.2):
            await far.ask(("sleep", 60), timeout=None)
        with anyio.fail_after(10):
            assert await far.ask("running") == 0


async def test_closing_the_connection_is_connection_lost_for_everything_in_flight() -> None:
    async with two_systems() as (server, client, remote):
        server_side = server._peers["client"]
        ref = await remote.whereis("echo")
        assert ref is not None
        probe = await TestProbe.start(client)
        probe.watch(ref)
        outcome: list[BaseException] = []
        async with client.dead_letters() as letters:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:

                    async def ask() -> None:
                        try:
                            await ref.ask(("sleep", 30), timeout=20)
                        except Exception as error:
                            outcome.append(error)

                    tg.start_soon(ask)
                    await anyio.wait_all_tasks_blocked()
                    await remote.close()
            assert isinstance(outcome[0], ConnectionLost)
            notice = await probe.expect(terminated, timeout=WAIT)
            assert notice.ref == ref and isinstance(notice.reason, ConnectionLost)
            assert isinstance((await ref.join()).reason, ConnectionLost)
            assert not ref.alive and not remote.connected
            await ref.tell("after")
            letter = await letters.receive()
            assert (letter.message, letter.reason) == ("after", "connection lost")
        with pytest.raises(ConnectionLost):
            await ref.ask("after")
        with pytest.raises(ConnectionLost):
            await remote.whereis("echo")
        assert client._peers == {}
        await server_side.closed.wait()
        assert server._peers == {}
        echo = server.registry.whereis("echo")
        assert echo is not None
        await echo.kill()  # it still sleeps: the connection's end is not a cancel


async def test_a_system_that_exits_closes_its_connections() -> None:
    async with actors.ActorSystem("client") as client:
        probe = await TestProbe.start(client)
        async with actors.ActorSystem("server") as server:
            echo = await server.spawn(Echo, name="echo")
            server.registry.register("echo", echo)
            listener = await server.listen(secret=SECRET)
            remote = await client.connect(str(listener), secret=SECRET)
            ref = await remote.whereis("echo")
            assert ref is not None
            probe.watch(ref)
            await ref.ask("the watch has arrived")  # a watch is a message too
        # The server has exited: its connection and listener went with it,
        # after its actors stopped (the watcher learns that first).
        assert server._network is not None
        assert not server._network.links and not server._network.listeners
        notice = await probe.expect(terminated, timeout=WAIT)
        assert notice.ref == ref and notice.reason is None
        with anyio.fail_after(5):
            await remote.wait_closed()
        assert not remote.connected
        with pytest.raises(ConnectionLost, match="closed the connection"):
            await ref.ask("anyone?")
        with pytest.raises(OSError):
            await client.connect(str(listener), secret=SECRET)


async def test_a_cancelled_system_ends_its_connections_and_listeners() -> None:
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        with anyio.fail_after(10), anyio.CancelScope() as scope:
            async with actors.ActorSystem("client") as client:
                await client.listen(secret=SECRET)
                remote = await client.connect(str(listener), secret=SECRET)
                server_side = server._peers["client"]
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert client._network is not None
        assert not client._network.links and not client._network.listeners
        assert not remote.connected
        with anyio.fail_after(5):
            await server_side.closed.wait()
        assert isinstance(server_side.error, ConnectionLost)


async def test_a_listener_that_is_closed_accepts_no_more() -> None:
    async with two_systems() as (server, _, remote):
        assert server._network is not None
        (listener,) = server._network.listeners
        await listener.close()
        assert "closed" in repr(listener)
        async with actors.ActorSystem("late") as late:
            with pytest.raises(OSError):
                await late.connect(str(listener), secret=SECRET)
        ref = await remote.whereis("echo")  # the joined connection goes on
        assert ref is not None and await ref.ask(1) == ("echo", "server", 1)


# -- topics ---------------------------------------------------------------------------------


async def test_a_system_that_joins_with_topics_shares_them() -> None:
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        here = await TestProbe.start(server, name="here")
        server.registry.subscribe("news.*", here.ref)
        server.registry.subscribe("jobs", here.ref, group="workers")
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(str(listener), secret=SECRET, topics=True)
            server_side = server._peers["client"]
            there = await TestProbe.start(client, name="there")
            client.registry.subscribe("news.>", there.ref)
            client.registry.subscribe("jobs", there.ref, group="workers")
            # A publish from the client is published at the server, after
            # its subscriptions: both see it.
            assert await client.publish("news.eu", 1) == 2
            assert await server.publish("news.us", 2) == 2
            assert await here.receive_n(2, timeout=WAIT) == [1, 2]
            assert await there.receive_n(2, timeout=WAIT) == [1, 2]
            # One group across the two systems: each job to one member, in turn.
            for i in range(10):
                assert await server.publish("jobs", i) == 1
            got = await here.receive_n(5, timeout=WAIT) + await there.receive_n(5, timeout=WAIT)
            assert sorted(got) == list(range(10))
            assert client.registry.subscriptions(there.ref) == [
                ("news.>", None),
                ("jobs", "workers"),
            ]
            members = [t.groups[0].members for t in server.registry.topics() if t.groups]
            assert members == [("/user/here", "/user/there on client")]
            # Dead letters: the client's subscriber gets both systems'.
            letters = await TestProbe.start(client, name="letters")
            client.registry.subscribe(actors.DEAD_LETTERS_TOPIC, letters.ref)
            gone = await client.spawn(actors.Actor)
            await gone.stop()
            await gone.tell("made here")
            assert await client.publish("nobody.listens", "made there") == 0
            got = await letters.receive_n(2, timeout=WAIT)
            assert sorted(letter.message for letter in got) == ["made here", "made there"]
            with pytest.raises(actors.ActorsError, match="already those of 'server'"):
                await client.connect(str(listener), secret=SECRET, topics=True)
            await remote.close()
            with anyio.fail_after(WAIT):
                await server_side.closed.wait()
            # Each system has its own topics again, and its own subscribers.
            assert await client.publish("news.eu", 3) == 1
            assert await server.publish("news.eu", 4) == 1
            await there.expect(3, timeout=WAIT)
            await here.expect(4, timeout=WAIT)
            assert [t.pattern for t in server.registry.topics()] == ["jobs", "news.*"]


async def test_topics_are_shared_only_before_anything_subscribes() -> None:
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            probe = await TestProbe.start(client)
            client.registry.subscribe("news", probe.ref)
            with pytest.raises(actors.ActorsError, match="before anything here subscribes"):
                await client.connect(str(listener), secret=SECRET, topics=True)
            assert server._network is not None and not server._network.links
            async with await client.connect(str(listener), secret=SECRET) as remote:
                assert remote.node == "server"  # without topics=True: fine
            assert await client.publish("news", 1) == 1


# -- names ---------------------------------------------------------------------------------


async def test_node_names_must_be_unique() -> None:
    async with two_systems() as (server, client, remote):
        (listener,) = server._network.listeners  # type: ignore[union-attr]
        with tcp_log() as log:
            async with actors.ActorSystem("server") as twin:
                with pytest.raises(NameTaken, match="same name as this system"):
                    await twin.connect(str(listener), secret=SECRET)
                # The listening side refuses a name it has connected already...
                async with actors.ActorSystem("client") as again:
                    with pytest.raises(NameTaken, match="'client' is already connected"):
                        await again.connect(str(listener), secret=SECRET)
                # ... and the connecting side a name it has connected already.
                twin_listener = await twin.listen(secret=SECRET)
                with pytest.raises(NameTaken, match="'server' is already connected"):
                    await client.connect(str(twin_listener), secret=SECRET)
                refused = await log.wait(3)
                assert twin._peers == {}
        assert all("NameTaken" in text for text in refused), refused
        assert "refused this system ('server')" in refused[2]
        # Refusals changed nothing: the first connection and the listener go on.
        assert set(server._peers) == {"client"} and set(client._peers) == {"server"}
        assert remote.connected
        async with (
            actors.ActorSystem("third") as third,
            await third.connect(str(listener), secret=SECRET) as other,
        ):
            assert other.node == "server"
            assert set(server._peers) == {"client", "third"}


# -- security ------------------------------------------------------------------------------


async def test_a_wrong_secret_is_refused_at_the_handshake() -> None:
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            with tcp_log() as log:
                with pytest.raises(AuthenticationError, match="secret"):
                    await client.connect(str(listener), secret=b"another secret, 32 bytes long..")
                (refused,) = await log.wait(1)
            assert "AuthenticationError" in refused
            assert server._peers == {} and client._peers == {}
            async with await client.connect(str(listener), secret=SECRET) as remote:
                assert remote.node == "server"


async def test_a_cookie_others_can_read_is_refused(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    actors.create_cookie(cookie)
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(cookie=cookie)
        async with actors.ActorSystem("client") as client:
            async with await client.connect(str(listener), cookie=str(cookie)) as remote:
                assert remote.node == "server"
            cookie.chmod(0o644)
            with pytest.raises(AuthenticationError, match="chmod 600"):
                await client.connect(str(listener), cookie=cookie)
            with pytest.raises(AuthenticationError, match="chmod 600"):
                await server.listen(cookie=cookie)
    assert stat.S_IMODE(cookie.stat().st_mode) == 0o644


async def test_a_peer_with_another_actors_version_is_refused() -> None:
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        versions = {**local_versions(), "actors": "0.0.1"}
        with tcp_log() as log:
            async with await anyio.connect_tcp("127.0.0.1", listener.port) as stream:
                with pytest.raises(IncompatiblePeer, match=re.escape("0.0.1 here")):
                    await handshake(stream, SECRET, True, versions=versions)
            (refused,) = await log.wait(1)
        assert "IncompatiblePeer" in refused
        assert "actors 0.0.1 there" in refused
        assert server._peers == {}


@pytest.mark.parametrize("tamper", [False, True], ids=["honest", "flipped"])
async def test_a_flipped_byte_closes_the_connection_and_nothing_is_unpickled(
    tmp_path: Path, tamper: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("ERROR", logger="actors.wire")
    canary = tmp_path / "canary"

    def flip(index: int, frame: bytes) -> list[bytes]:
        if tamper and CANARY_MARK in frame:
            altered = bytearray(frame)
            altered[-3] ^= 0x01  # inside the pickled body
            return [bytes(altered)]
        return [frame]

    async with actors.ActorSystem("server") as server:
        echo = await server.spawn(Echo, name="echo")
        server.registry.register("echo", echo)
        listener = await server.listen(secret=SECRET)
        with tcp_log() as log:
            async with (
                tcp_proxy(str(listener), to_target=flip) as proxy,
                actors.ActorSystem("client") as client,
            ):
                remote = await client.connect(proxy.address, secret=SECRET)
                ref = await remote.whereis("echo")
                assert ref is not None
                probe = await TestProbe.start(client)
                probe.watch(ref)
                await ref.tell(Canary(canary))
                if tamper:
                    notice = await probe.expect(terminated, timeout=WAIT)
                    assert isinstance(notice.reason, ConnectionLost)
                    (ended,) = await log.wait(1)
                else:
                    assert len(await ref.ask("seen")) == 1
                await remote.close()
        if tamper:
            assert await echo.ask("seen") == []
            assert unpickled(canary) == 0
            assert "the connection to client ended: AuthenticationError" in ended
            assert "failed its MAC check" in ended
            wire = [r.getMessage() for r in caplog.records if r.name == "actors.wire"]
            assert len(wire) == 1 and "failed its MAC check" in wire[0], wire
        else:
            assert unpickled(canary) == 1


async def test_a_partitioned_peer_is_lost_after_missed_heartbeats() -> None:
    async with actors.ActorSystem("server") as server:
        echo = await server.spawn(Echo, name="echo")
        server.registry.register("echo", echo)
        listener = await server.listen(secret=SECRET, heartbeat=0.2)
        async with (
            tcp_proxy(str(listener)) as proxy,
            actors.ActorSystem("client") as client,
        ):
            remote = await client.connect(proxy.address, secret=SECRET, heartbeat=0.2)
            server_side = server._peers["client"]
            ref = await remote.whereis("echo")
            assert ref is not None
            probe = await TestProbe.start(client)
            probe.watch(ref)
            proxy.cut = True
            notice = await probe.expect(terminated, timeout=10)
            assert isinstance(notice.reason, ConnectionLost)
            assert "server sent nothing" in str(notice.reason)
            with anyio.fail_after(10):
                await server_side.closed.wait()
            assert "client sent nothing" in str(server_side.error)


# -- arguments and cancellation --------------------------------------------------------


async def test_bad_arguments_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    async with actors.ActorSystem("a") as system:
        with pytest.raises(TypeError, match="neither was given"):
            await system.listen()
        with pytest.raises(TypeError, match="both was given"):
            await system.connect("127.0.0.1:1", secret=SECRET, cookie=tmp_path / "c")
        with pytest.raises(ValueError, match="at least 16 bytes"):
            await system.listen(secret=b"short")
        with pytest.raises(TypeError, match="must be bytes"):
            await system.listen(secret="text")  # type: ignore[arg-type]
        with pytest.raises(FileNotFoundError):
            await system.listen(cookie=tmp_path / "missing")
        with pytest.raises(ValueError, match="host:port"):
            await system.connect("nowhere", secret=SECRET)
        with pytest.raises(ValueError, match="host:port"):
            await system.connect("127.0.0.1:0", secret=SECRET)
        with pytest.raises(ValueError, match="heartbeat"):
            await system.listen(secret=SECRET, heartbeat=0)
        with pytest.raises(ValueError, match="misses"):
            await system.connect("127.0.0.1:1", secret=SECRET, misses=0)
        with pytest.raises(ValueError, match="port"):
            await system.listen(port=70000, secret=SECRET)
        with pytest.raises(ConnectionRefusedError, match=r"cannot connect to 127\.0\.0\.1:1"):
            await system.connect("127.0.0.1:1", secret=SECRET)
        listener = await system.listen(secret=SECRET)
        with pytest.raises(OSError, match=r"cannot listen on .*port=0 takes any free port"):
            await system.listen(port=listener.port, secret=SECRET)
    with pytest.raises(actors.ActorsError, match="not running"):
        await system.listen(secret=SECRET)
    with pytest.raises(actors.ActorsError, match="not running"):
        await actors.ActorSystem("b").connect("127.0.0.1:1", secret=SECRET)


async def test_a_silent_listener_times_out_and_a_cancelled_connect_leaves_nothing() -> None:
    # Something that accepts connections and says nothing.
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as mute:
        port = mute.extra(anyio.abc.SocketAttribute.local_port)
        accepted: list[anyio.abc.SocketStream] = []

        async def hold(stream: anyio.abc.SocketStream) -> None:
            accepted.append(stream)
            async with stream:
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(mute.serve, hold)
            with anyio.fail_after(10):
                async with actors.ActorSystem("client") as client:
                    with pytest.raises(TimeoutError, match="no handshake"):
                        await client.connect(f"127.0.0.1:{port}", secret=SECRET, timeout=0.2)
                    assert client._network is not None
                    with anyio.move_on_after(0.2):
                        await client.connect(f"127.0.0.1:{port}", secret=SECRET)
                    (link,) = client._network.links  # cancelled: it is closing
                    with anyio.fail_after(5):
                        await link.ended.wait()
                    assert client._network.links == set() and client._peers == {}
            tg.cancel_scope.cancel()
        assert len(accepted) == 2


async def test_connects_timeout_covers_the_tcp_connection_and_the_handshake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The handshake got a timeout of its own after the TCP connection had
    # used some: up to twice the timeout in all.
    from actors import _socket, _tcp

    started: list[float] = []
    deadlines: list[float] = []
    real_connect = _socket.connect_tcp

    async def slow_connect(host: str, port: int) -> _socket.SocketStream:
        started.append(anyio.current_time())
        await anyio.sleep(0.3)
        return await real_connect(host, port)

    async def watched_handshake(stream: Any, secret: bytes, initiator: bool) -> Any:
        if initiator:
            deadlines.append(anyio.current_effective_deadline())
        return await handshake(stream, secret, initiator)

    monkeypatch.setattr(_tcp, "connect_tcp", slow_connect)
    monkeypatch.setattr(_tcp, "handshake", watched_handshake)
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(listener.address, secret=SECRET, timeout=5)
            assert remote.connected
    (start,) = started
    (deadline,) = deadlines
    assert deadline <= start + 5 + 0.01  # was start + 0.3 + 5


# -- another process, on either backend ------------------------------------------------


@pytest.fixture(params=["same", "other"])
def node_backend(request: pytest.FixtureRequest, anyio_backend: Any) -> str:
    """The subprocess's backend: this test's, or the other one."""
    backend: str = anyio_backend[0]
    return backend if request.param == "same" else other_backend(backend)


@pytest.fixture
def cookie(tmp_path: Path) -> Path:
    path = tmp_path / "cookie"
    actors.create_cookie(path)
    return path


async def test_a_system_in_another_process_on_either_backend(
    node_backend: str, cookie: Path
) -> None:
    args = ("--name", "far", "--cookie", str(cookie), "--listen")
    async with run_node(*args, backend=node_backend) as node:
        assert node.line.startswith("listening ")
        async with (
            actors.ActorSystem("near") as system,
            await system.connect(node.line.split()[1], cookie=cookie) as remote,
        ):
            assert remote.node == "far"
            echo = await remote.whereis("echo")
            control = await remote.whereis("control")
            assert echo is not None and control is not None
            assert await echo.ask("pid") == node.pid != os.getpid()
            probe = await TestProbe.start(system)
            local = await system.spawn(Echo, "near", name="local")
            for i in range(200):
                await echo.tell(i)
            assert await echo.ask("seen") == list(range(200))
            await echo.tell(("tell", probe.ref, "from far"))
            await probe.expect("from far", timeout=WAIT)
            assert await echo.ask(("ask", local, "q")) == ("echo", "near", "q")
            probe.watch(echo)
            await control.tell("exit")  # the node ends in order: its actors stop
            notice = await probe.expect(terminated, timeout=10)
            assert notice.ref == echo and notice.reason is None
            with anyio.fail_after(10):  # then it closes its connections
                await remote.wait_closed()
        with anyio.fail_after(10):
            assert await node.process.wait() == 0


async def test_two_systems_joined_over_tcp_one_killed(node_backend: str, cookie: Path) -> None:
    """Gate: asks, watches, topics and channels between two systems; one
    killed with -9: the other sees Terminated/ConnectionLost, asks in flight
    and a receive from its channel raise, tells are dead letters, and nothing
    hangs."""
    args = ("--name", "far", "--cookie", str(cookie), "--listen")
    async with run_node(*args, backend=node_backend) as node:
        async with actors.ActorSystem("near") as system:
            remote = await system.connect(node.line.split()[1], cookie=cookie, topics=True)
            echo = await remote.whereis("echo")
            assert echo is not None and await echo.ask("ping") == ("echo", "far", "ping")
            probe = await TestProbe.start(system)
            system.registry.subscribe("news", probe.ref)
            assert await system.publish("news", "extra!") == 2  # far's echo, and here
            await probe.expect("extra!", timeout=WAIT)
            assert await echo.ask("seen") == ["ping", "extra!"]
            # A channel of this system filled there, and one of theirs here.
            channels = await remote.whereis("channels")
            assert channels is not None
            mine = actors.Channel[int](2)
            await channels.tell(("fill", mine, 5))
            with anyio.fail_after(WAIT):
                assert [value async for value in mine] == [0, 1, 2, 3, 4]
            theirs = await channels.ask(("make", 2))
            assert "of far" in repr(theirs)
            await theirs.send(7)
            assert await theirs.receive() == 7
            probe.watch(echo)
            outcome: list[BaseException] = []
            async with system.dead_letters() as letters:
                with anyio.fail_after(5):  # well before the asks' own timeout
                    async with anyio.create_task_group() as tg:

                        async def ask() -> None:
                            try:
                                await echo.ask(("sleep", 30), timeout=20)
                            except Exception as error:
                                outcome.append(error)

                        async def receive() -> None:
                            try:
                                await theirs.receive()
                            except Exception as error:
                                outcome.append(error)

                        for _ in range(3):
                            tg.start_soon(ask)
                        tg.start_soon(receive)
                        await anyio.wait_all_tasks_blocked()
                        node.kill()
                assert len(outcome) == 4
                assert all(isinstance(error, ConnectionLost) for error in outcome), outcome
                notice = await probe.expect(terminated, timeout=WAIT)
                assert notice.ref == echo and isinstance(notice.reason, ConnectionLost)
                assert isinstance((await echo.join()).reason, ConnectionLost)
                await echo.tell("anyone?")
                letter = await letters.receive()
                assert (letter.message, letter.reason) == ("anyone?", "connection lost")
            with pytest.raises(ConnectionLost):
                await remote.whereis("echo")
            with pytest.raises(ConnectionLost):
                await theirs.send(8)
            assert system._peers == {}
            assert await system.publish("news", "here only") == 1  # its own topics again
            await probe.expect("here only", timeout=WAIT)
        assert await node.process.wait() == -signal.SIGKILL


async def test_a_joined_process_killed_is_seen_by_the_listener(
    node_backend: str, cookie: Path
) -> None:
    async with actors.ActorSystem("near") as system:
        probe = await TestProbe.start(system, name="probe")
        system.registry.register("probe", probe.ref)
        listener = await system.listen(cookie=cookie)
        args = ("--name", "far", "--cookie", str(cookie), "--connect", str(listener))
        async with run_node(*args, backend=node_backend) as node:
            assert node.line == "joined near"
            _, far_echo = await probe.expect(lambda m: isinstance(m, tuple), timeout=WAIT)
            assert await far_echo.ask("pid") == node.pid
            probe.watch(far_echo)
            node.kill()
            notice = await probe.expect(terminated, timeout=WAIT)
            assert isinstance(notice.reason, ConnectionLost)
            assert "far" in str(notice.reason)
        assert system._peers == {}


async def test_a_stopped_process_is_lost_after_missed_heartbeats(
    anyio_backend: Any, cookie: Path
) -> None:
    args = ("--name", "far", "--cookie", str(cookie), "--listen", "--heartbeat", "0.2")
    async with (
        run_node(*args, backend=anyio_backend[0]) as node,
        actors.ActorSystem("near") as system,
    ):
        remote = await system.connect(node.line.split()[1], cookie=cookie, heartbeat=0.2)
        echo = await remote.whereis("echo")
        assert echo is not None
        probe = await TestProbe.start(system)
        probe.watch(echo)
        os.kill(node.pid, signal.SIGSTOP)
        try:
            notice = await probe.expect(terminated, timeout=10)
            assert isinstance(notice.reason, ConnectionLost)
            assert "far sent nothing" in str(notice.reason)
        finally:
            os.kill(node.pid, signal.SIGCONT)


class Big(actors.Actor):
    """Answers ``n`` with ``n`` bytes."""

    async def receive(self, message: int) -> bytes:
        return b"x" * message


async def test_a_reply_too_large_for_a_frame_fails_the_ask_not_the_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It raised in the replying actor's loop: the actor died, and (here, at
    # the top of its system) took the server down; the asker saw only the
    # connection end.
    from actors._wire import WireConnection

    defaults = WireConnection.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "max_frame", 1 << 16)
    async with two_systems() as (server, _client, remote):
        server.registry.register("big", await server.spawn(Big))
        big = await remote.whereis("big")
        assert big is not None
        with pytest.raises(ValueError, match=r"a reply of .* more than a frame holds .*with less"):
            await big.ask(1 << 17)
        assert await big.ask(10) == b"x" * 10  # alive, and so is its system
        echo = await remote.whereis("echo")
        assert echo is not None
        with pytest.raises(ValueError, match=r"message to '/user/echo' is .* send it in parts"):
            await echo.ask(b"x" * (1 << 17))
        assert await echo.ask("hi") == ("echo", "server", "hi")


async def test_a_connect_that_gets_no_answer_names_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As an address whose packets a firewall drops: it was a bare TimeoutError.
    from actors import _tcp

    async def dropped(host: str, port: int) -> None:
        await anyio.sleep_forever()

    monkeypatch.setattr(_tcp, "connect_tcp", dropped)
    async with actors.ActorSystem() as system:
        with pytest.raises(
            TimeoutError, match=r"no TCP connection to 10\.9\.8\.7:4000 within 0\.2 s"
        ):
            await system.connect("10.9.8.7:4000", secret=SECRET, timeout=0.2)
