"""Nodes of a cluster on the real nats-server: links over NATS subjects
carrying the handshake, the wire and the peer; on both backends."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from nats_kit import NatsServer
from process_kit import Echo
from tcp_kit import SECRET, Canary, Keeper, unpickled

import actors
from actors import ActorFailed, ActorStopped, AskTimeout, NodeDown, Terminated
from actors._cluster_stream import LinkStream
from actors._codec import dumps
from actors._nats import Client
from actors.cluster import NatsCluster
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 20.0

_NAMES = itertools.count(1)
NODE = Path(__file__).resolve().parent / "cluster_node.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One server for the module: each test has a cluster name of its own."""
    from nats_kit import nats_server

    with nats_server(tmp_path_factory.mktemp("nats"), jetstream=False) as server:
        yield server


class ClusterLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def cluster_log() -> Iterator[ClusterLog]:
    handler = ClusterLog()
    logger = logging.getLogger("actors.cluster")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# --8<-- [start:two-nodes]
def cluster_of(server: NatsServer, **options: Any) -> NatsCluster:
    options.setdefault("secret", SECRET)
    options.setdefault("name", f"t{next(_NAMES)}")
    return NatsCluster([server.url], **options)


@asynccontextmanager
async def two_nodes(
    server: NatsServer, **options: Any
) -> AsyncIterator[tuple[actors.ActorSystem, actors.ActorSystem]]:
    """Nodes ``a`` and ``b`` of one cluster; ``b`` runs an Echo registered as ``echo``."""
    cluster = cluster_of(server, **options)
    async with (
        actors.ActorSystem("a", cluster=cluster) as a,
        actors.ActorSystem("b", cluster=cluster) as b,
    ):
        await b.spawn(Keeper, "echo", name="keeper")
        yield a, b


async def test_tell_and_ask_across_nodes(server: NatsServer) -> None:
    async with two_nodes(server) as (a, b):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None and echo.path == "/user/keeper/echo"
        with anyio.fail_after(WAIT):
            assert await echo.ask("hi") == ("echo", "echo", "hi")
            await echo.tell("told")
            assert await echo.ask("seen") == ["hi", "told"]
            # A ref of a's crosses to b and back: b tells it.
            probe = await TestProbe.start(a)
            await echo.ask(("tell", probe.ref, "from b"))
            assert await probe.receive(timeout=WAIT) == "from b"
            with pytest.raises(ActorFailed) as failed:
                await echo.ask("boom")
            cause = failed.value.__cause__
            assert isinstance(cause, ValueError)
            assert cause.node == "b"  # type: ignore[attr-defined]
            assert "Traceback" in cause.remote_traceback  # type: ignore[attr-defined]
        assert await a.cluster.whereis("b", "nobody") is None
        assert a.cluster.statistics().links == 1
        assert b.cluster.statistics().links == 1


# --8<-- [end:two-nodes]


async def test_asks_between_nodes_skip_the_wires_writer_and_reader_tasks(
    server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ask and its reply go to NATS from the task that makes them
    # (LinkStream.try_send), not through the wire's writer task (which
    # calls LinkStream.send) and the client's flusher. What arrives, asks,
    # tells and replies, is delivered by the NATS client's reader while the
    # link's reader waits (LinkStream.inline): the wire's reading of frames
    # (_receive_frame) is not used.
    from actors._wire import WireConnection

    sent: list[int] = []
    read: list[int] = []
    send, receive_frame = LinkStream.send, WireConnection._receive_frame

    async def counted_send(self: LinkStream, item: bytes) -> None:
        sent.append(len(item))
        await send(self, item)

    async def counted_read(self: WireConnection) -> bytes | None:
        read.append(1)
        return await receive_frame(self)

    async with two_nodes(server) as (a, _b):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        with anyio.fail_after(WAIT):
            assert await echo.ask("warm") == ("echo", "echo", "warm")
            monkeypatch.setattr(LinkStream, "send", counted_send)
            monkeypatch.setattr(WireConnection, "_receive_frame", counted_read)
            for number in range(20):
                assert await echo.ask(number) == ("echo", "echo", number)
            assert sent == []
            for number in range(20):  # tells are left to the writer, which batches
                await echo.tell(number)
                assert await echo.ask(number) == ("echo", "echo", number)
        assert read == []


class Slow(actors.Actor):
    """Keeps what it is told or asked, in order, a checkpoint for each."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def receive(self, message: Any) -> Any:
        if message == "seen":
            return self.seen
        await anyio.lowlevel.checkpoint()
        self.seen.append(message)
        return message


async def test_tells_and_asks_keep_their_order_through_a_full_mailbox(server: NatsServer) -> None:
    # A mailbox of 2 fills within a frame: what does not fit is left to
    # the link's reader (and the peer's backlog), while later frames keep
    # arriving at the NATS client's reader; one sender's order is kept.
    count = 600
    async with two_nodes(server) as (a, b):
        slow = await b.spawn(Slow, name="slow", mailbox=actors.Mailbox(capacity=2))
        b.registry.register("slow", slow)
        remote = await a.cluster.whereis("b", "slow")
        assert remote is not None
        with anyio.fail_after(WAIT):
            for number in range(count):
                if number % 25 == 24:
                    assert await remote.ask(number) == number
                else:
                    await remote.tell(number)
            assert await remote.ask("seen") == list(range(count))
        assert a.statistics().dead_letters == b.statistics().dead_letters == 0


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "through-the-writers"])
async def test_frames_taken_inline_give_credit_back(
    server: NatsServer, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    # 200 asks of 1000 bytes through a window of 8192 bytes: the receiver
    # gives back credit for what it takes inline, or the sender would stall
    # after eight. Without direct publishes (the client's buffer taken), the
    # credit goes from the link's reader instead.
    if not direct:
        monkeypatch.setattr(Client, "try_publish", lambda self, subject, payload: False)
    payload = bytes(1000)
    async with two_nodes(server, window=8192) as (a, _b):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        with anyio.fail_after(WAIT):
            for number in range(200):
                assert await echo.ask((number, payload)) == ("echo", "echo", (number, payload))


async def test_node_that_is_not_up_is_down_at_once(server: NatsServer) -> None:
    cluster = cluster_of(server)
    async with actors.ActorSystem("a", cluster=cluster) as a:
        with anyio.fail_after(WAIT), pytest.raises(NodeDown, match="no responders"):
            await a.cluster.whereis("nowhere", "echo")


async def test_ask_silence_is_ask_timeout(server: NatsServer) -> None:
    async with two_nodes(server) as (a, _):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        with pytest.raises(AskTimeout):
            await echo.ask(("sleep", 30), timeout=0.2)


async def test_stop_and_watch_across_nodes(server: NatsServer) -> None:
    async with two_nodes(server) as (a, b):
        echo = await b.spawn(Echo, "x", name="x")
        b.registry.register("x", echo)
        remote = await a.cluster.whereis("b", "x")
        assert remote is not None
        probe = await TestProbe.start(a)
        probe.watch(remote)
        await remote.stop()
        notice = await probe.receive(timeout=WAIT)
        assert isinstance(notice, Terminated) and notice.ref == remote
        assert notice.reason is None
        with pytest.raises(ActorStopped):
            await remote.ask("hi")


async def test_node_names_are_unique(server: NatsServer) -> None:
    cluster = cluster_of(server)
    async with actors.ActorSystem("a", cluster=cluster):
        with pytest.raises(actors.NameTaken, match="already in cluster"):
            async with actors.ActorSystem("a", cluster=cluster):
                pass


async def test_wrong_secret_is_refused(server: NatsServer) -> None:
    cluster = cluster_of(server)
    other = NatsCluster([server.url], name=cluster.name, secret=b"another secret, 32 bytes long...")
    async with (
        actors.ActorSystem("a", cluster=cluster) as a,
        actors.ActorSystem("b", cluster=other) as b,
    ):
        await b.spawn(Keeper, "echo", name="keeper")
        with anyio.fail_after(WAIT), pytest.raises(NodeDown) as down:
            await a.cluster.whereis("b", "echo")
        assert isinstance(down.value.__cause__, actors.AuthenticationError)
        assert a.cluster.statistics().links == 0


async def test_forged_messages_are_refused_before_unpickling(
    server: NatsServer, tmp_path: Path, cluster_log: ClusterLog
) -> None:
    canary = tmp_path / "canary"
    forged = dumps(Canary(canary))
    async with two_nodes(server) as (a, b):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        prefix = f"actors.{b.cluster.name}"
        async with Client(server.url) as intruder:
            # On a link subject that belongs to no link, and on the connect subject.
            await intruder.publish(f"{prefix}.link.b.a.0123456789abcdef", b"D" + bytes(8) + forged)
            await intruder.publish(f"{prefix}.node.b.connect", forged)
            await intruder.flush()
            with anyio.fail_after(WAIT):
                # The node's counter: no event to wait on.
                while b.cluster.statistics().rejected < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            assert unpickled(canary) == 0
            assert echo.alive and await echo.ask("still") == ("echo", "echo", "still")
            # On the live link, as the next message it expects: the stream takes
            # it, the wire refuses its frame (no MAC) and ends the link.
            ((sender, link_id), stream) = next(iter(b.cluster._streams.items()))
            sequence = stream._receive_sequence.to_bytes(8, "big")
            frame = bytes(8) + bytes(16) + forged
            probe = await TestProbe.start(a)
            probe.watch(echo)
            await intruder.publish(f"{prefix}.link.b.{sender}.{link_id}", b"D" + sequence + frame)
            notice = await probe.receive(timeout=WAIT)
            assert isinstance(notice, Terminated) and isinstance(notice.reason, NodeDown)
            with anyio.fail_after(WAIT):
                while b.cluster.statistics().rejected < 3:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        assert unpickled(canary) == 0
        # The ref links again on its next use.
        with anyio.fail_after(WAIT):
            assert await echo.ask("again") == ("echo", "echo", "again")
        # Logged once, counted every time.
        assert len(cluster_log.messages) == 1, cluster_log.messages
        assert b.cluster.statistics().rejected == 3


class Gate(actors.Actor):
    """Takes nothing until ``open`` is set; then keeps what it is told, in order."""

    def __init__(self, open: anyio.Event) -> None:
        self.open = open
        self.seen: list[int] = []

    async def receive(self, message: Any) -> Any:
        if message == "seen":
            return self.seen
        await self.open.wait()
        self.seen.append(message[0])
        return None


async def test_a_slow_receiver_slows_the_sender_and_nothing_is_lost(
    server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small window and a small backlog: the receiving node stops reading soon.
    monkeypatch.setattr("actors._peer.MAX_BACKLOG", 20)
    window = 8192
    count = 1500
    payload = bytes(1000)
    async with two_nodes(server, window=window) as (a, b):
        gate_open = anyio.Event()
        gate = await b.spawn(Gate, gate_open, name="gate", mailbox=actors.Mailbox(capacity=10))
        b.registry.register("gate", gate)
        remote = await a.cluster.whereis("b", "gate")
        assert remote is not None
        sent = 0

        async def send() -> None:
            nonlocal sent
            for i in range(count):
                await remote.tell((i, payload))
                sent = i + 1

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                # The sender's link has no credit left and its wire's queue is
                # full: its tells wait (the link's state: no event to wait on).
                peer = a._peers["b"]
                stream = next(iter(a.cluster._streams.values()))
                while not (  # noqa: ASYNC110
                    stream._credit == 0 and peer.wire.statistics().pending_bytes >= 1 << 20
                ):
                    await anyio.sleep(0.01)
                stalled = sent
                assert stalled < count
                # The receiver holds at most one window of unread bytes.
                assert all(len(s._buffer) <= window for s in b.cluster._streams.values())
                gate_open.set()
            assert sent == count
            while len(seen := await remote.ask("seen")) < count:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert seen == list(range(count))
        assert a.statistics().dead_letters == b.statistics().dead_letters == 0


@asynccontextmanager
async def node_process(
    server: NatsServer, cluster: str, name: str, cookie: Path, backend: str, heartbeat: float
) -> AsyncIterator[anyio.abc.Process]:
    """``tests/cluster_node.py`` as node ``name``, ready; always killed and reaped."""
    process = await anyio.open_process(
        [
            sys.executable,
            str(NODE),
            *("--backend", backend, "--parent-pid", str(os.getpid())),
            *("--server", server.url, "--cluster", cluster, "--name", name),
            *("--cookie", str(cookie), "--heartbeat", str(heartbeat)),
        ],
        stdin=None,
        stdout=subprocess.PIPE,
        stderr=None,
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(WAIT):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 4096)
        assert line.decode() == f"ready {name}"
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


async def test_kill_9_of_a_node_is_node_down(
    server: NatsServer, tmp_path: Path, anyio_backend: tuple[str, object]
) -> None:
    cookie = tmp_path / "cookie"
    actors.create_cookie(cookie)
    heartbeat = 0.5
    cluster = cluster_of(server, secret=None, secret_file=cookie, heartbeat=heartbeat)
    other = "trio" if anyio_backend[0] == "asyncio" else "asyncio"
    async with (
        actors.ActorSystem("near", cluster=cluster) as near,
        node_process(server, cluster.name, "far", cookie, other, heartbeat) as process,
    ):
        echo = await near.cluster.whereis("far", "echo")
        assert echo is not None
        assert await echo.ask("pid") == process.pid
        probe = await TestProbe.start(near)
        probe.watch(echo)
        outcome: list[BaseException] = []

        async def ask() -> None:
            try:
                await echo.ask(("sleep", 30), timeout=WAIT)
            except Exception as error:
                outcome.append(error)

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                await echo.ask("seen")  # the ask above is in flight, behind it
                killed = anyio.current_time()
                os.kill(process.pid, signal.SIGKILL)
                notice = await probe.receive(timeout=WAIT)
                down = anyio.current_time() - killed
        assert isinstance(notice, Terminated) and notice.ref == echo
        assert isinstance(notice.reason, NodeDown), notice.reason
        assert len(outcome) == 1 and isinstance(outcome[0], NodeDown), outcome
        # Within the bound the documentation gives (heartbeat * (misses + 1)),
        # plus slack for a loaded machine.
        assert down < heartbeat * (cluster.misses + 1) + 2.0, down
        # The node is gone: an ask fails at once.
        with anyio.fail_after(WAIT), pytest.raises(NodeDown):
            await echo.ask("hi")


async def test_losing_the_nats_connection_is_node_down(
    server: NatsServer, cluster_log: ClusterLog
) -> None:
    async with two_nodes(server) as (a, _):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        probe = await TestProbe.start(a)
        probe.watch(echo)
        assert a.cluster.client is not None
        # Drop a's connection to the server under it (the client reconnects).
        await a.cluster.client._stream.aclose()  # type: ignore[union-attr]
        notice = await probe.receive(timeout=WAIT)
        assert isinstance(notice, Terminated) and isinstance(notice.reason, NodeDown)
        assert "NATS connection" in str(notice.reason)
        # Once reconnected, the ref links again.
        with anyio.fail_after(WAIT):
            await a.cluster.client.flush()
            assert await echo.ask("back") == ("echo", "echo", "back")
        # Its own lost connection is no message refused: neither counted nor logged.
        assert a.cluster.statistics().rejected == 0
        assert not [m for m in cluster_log.messages if "refused" in m], cluster_log.messages


# -- topics as subjects -------------------------------------------------------------


async def test_publish_reaches_subscribers_on_every_node(server: NatsServer) -> None:
    async with two_nodes(server) as (a, b):
        here = await a.spawn(Echo, "here", name="here")
        there = await b.spawn(Echo, "there", name="there")
        also = await b.spawn(Echo, "also", name="also")
        a.subscribe("orders.*", here)
        b.subscribe("orders.*", there)
        b.subscribe("orders.eu", also)  # overlaps: one copy still
        # Both nodes' subscriptions at the server before the other publishes.
        await a.cluster.flush()
        await b.cluster.flush()
        # The count is this node's subscribers.
        assert await a.publish("orders.eu", "one") == 1
        assert await b.publish("orders.us", "two") == 1
        with anyio.fail_after(WAIT):
            while len(await there.ask("seen")) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            while len(await here.ask("seen")) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            while len(await also.ask("seen")) < 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        # Each once; no order between two publishers.
        assert sorted(await here.ask("seen")) == ["one", "two"]
        assert sorted(await there.ask("seen")) == ["one", "two"]
        assert await also.ask("seen") == ["one"]


async def test_a_group_competes_across_nodes(server: NatsServer) -> None:
    count = 60
    async with two_nodes(server) as (a, b):
        members = [await a.spawn(Echo, name="w"), await b.spawn(Echo, name="w")]
        a.subscribe("jobs", members[0], group="workers")
        b.subscribe("jobs", members[1], group="workers")
        await a.cluster.flush()
        await b.cluster.flush()
        for i in range(count):
            await a.publish("jobs", i)
        with anyio.fail_after(WAIT):
            while True:
                seen = [await member.ask("seen") for member in members]
                if sum(map(len, seen)) >= count:
                    break
                await anyio.sleep(0.01)
        assert sorted(seen[0] + seen[1]) == list(range(count))  # each once
        assert seen[0] and seen[1]  # both nodes took some (2**-59 to fail)


async def test_forged_and_replayed_topic_messages_are_refused(
    server: NatsServer, tmp_path: Path, cluster_log: ClusterLog
) -> None:
    canary = tmp_path / "canary"
    async with two_nodes(server) as (a, b):
        there = await b.spawn(Echo, name="there")
        b.subscribe("news", there)
        await b.cluster.flush()
        subject = f"actors.{b.cluster.name}.topic.news"
        async with Client(server.url) as intruder:
            recorded = await intruder.subscribe(subject)
            await intruder.flush()
            await a.publish("news", "genuine")
            genuine = await recorded.next_msg(timeout=WAIT)
            # A pickle with no tag, one with a tag made up, and the genuine
            # message again.
            sender = b"\x01a" + bytes(8)
            await intruder.publish(subject, b"AT1" + sender + bytes(16) + dumps(Canary(canary)))
            await intruder.publish(subject, dumps(Canary(canary)))
            await intruder.publish(subject, genuine.data)
            await intruder.flush()
            with anyio.fail_after(WAIT):
                while b.cluster.statistics().rejected < 3:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        assert unpickled(canary) == 0
        assert await there.ask("seen") == ["genuine"]
        assert len(cluster_log.messages) == 1, cluster_log.messages


async def test_a_ref_to_a_node_that_restarted_does_not_reach_the_new_actors(
    server: NatsServer, tmp_path: Path, anyio_backend: tuple[str, object]
) -> None:
    # The restarted node spawns the same actors in the same order: a ref to
    # the old incarnation must not reach the new one (it ends as ActorStopped).
    cookie = tmp_path / "cookie"
    actors.create_cookie(cookie)
    cluster = cluster_of(server, secret=None, secret_file=cookie, heartbeat=0.5)
    backend = anyio_backend[0]
    async with actors.ActorSystem("near", cluster=cluster) as near:
        async with node_process(server, cluster.name, "far", cookie, backend, 0.5) as first:
            old = await near.cluster.whereis("far", "echo")
            assert old is not None and await old.ask("pid") == first.pid
            probe = await TestProbe.start(near)
            probe.watch(old)
            first.kill()
            notice = await probe.receive(timeout=WAIT)
            assert isinstance(notice.reason, NodeDown)
        async with node_process(server, cluster.name, "far", cookie, backend, 0.5) as second:
            new = await near.cluster.whereis("far", "echo")
            assert new is not None and new != old
            assert await new.ask("pid") == second.pid
            with anyio.fail_after(WAIT), pytest.raises(ActorStopped):
                await old.ask("pid")


async def test_a_process_actor_of_a_node_reaches_another_node(server: NatsServer) -> None:
    async with two_nodes(server) as (a, _):
        echo = await a.cluster.whereis("b", "echo")
        assert echo is not None
        worker = await a.spawn(Echo, "worker", name="worker", placement=actors.Subprocess())
        # No link to b when the process actor asks: its node opens one.
        link = a.cluster._links["b"]
        a._peers["b"].close()
        with anyio.fail_after(WAIT):
            await link.ended.wait()
            assert await worker.ask(("ask", echo, "via a")) == ("echo", "echo", "via a")
