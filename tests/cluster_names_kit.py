"""Nodes with cluster-wide names for tests: actor systems in this process,
each with its own NATS client (directly, or through a `PausableProxy` that
can cut it off from NATS without closing anything), and a node in a
subprocess to kill -9."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

import actors
from actors._cluster_names import ClusterNames
from actors._nats import Client

NODE_SCRIPT = """
import sys, anyio, actors
from actors._cluster_names import ClusterNames
from actors._nats import Client

async def main():
    url, cluster, lease, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    async with Client(url) as client:
        system = actors.ActorSystem("far")
        names = ClusterNames(system, client, cluster, lease=lease)
        async with system:
            await names.open()
            system.registry._cluster = names
            names.start()
            if sys.argv[6] == "singleton":
                from supervision import ChildSpec, Supervisor

                spec = ChildSpec(actors.Actor, register_as=name, singleton=True)
                await system.spawn(Supervisor, [spec], name="sup")
                assert system.registry.whereis(name) is not None
            else:
                ref = await system.spawn(actors.Actor, name="holder")
                await system.registry.claim(name, ref)
            print("ready", flush=True)
            await anyio.sleep_forever()

anyio.run(main, backend=sys.argv[5])
"""


CLUSTER_NODE_SCRIPT = """
import sys, anyio, actors
from actors.cluster import NatsCluster

class Echo(actors.Actor):
    async def receive(self, message):
        return ("far", message)

async def main():
    url, cluster, lease, name, secret = sys.argv[1:6]
    config = NatsCluster(
        [url], name=cluster, secret=bytes.fromhex(secret), lease=float(lease), heartbeat=30.0
    )
    async with actors.ActorSystem("far", cluster=config) as system:
        ref = await system.spawn(Echo, name="holder")
        await system.registry.claim(name, ref)
        print("ready", flush=True)
        await anyio.sleep_forever()

anyio.run(main, backend=sys.argv[6])
"""


def cluster_name() -> str:
    """A cluster (bucket) of a test's own, on a server shared by a module."""
    return "t" + secrets.token_hex(4)


@dataclass
class Nodes:
    """The systems of one test's cluster, by node name."""

    cluster: str
    systems: dict[str, actors.ActorSystem] = field(default_factory=dict)

    def resolve(self, node: str, path: str, uid: int) -> actors.ActorRef | None:
        system = self.systems.get(node)
        if system is None:
            return None
        cell = system._cell_by_uid(uid)
        return None if cell is None or cell.path != path else cell.ref

    @asynccontextmanager
    async def node(
        self, name: str, url: str, *, lease: float = 10.0
    ) -> AsyncIterator[actors.ActorSystem]:
        async with Client(url) as client:
            system = actors.ActorSystem(name)
            names = ClusterNames(system, client, self.cluster, lease=lease, resolve=self.resolve)
            try:
                async with system:
                    await names.open()
                    system.registry._cluster = names
                    names.start()
                    self.systems[name] = system
                    try:
                        yield system
                    finally:
                        self.systems.pop(name, None)
            finally:
                await names.close()


def names_of(system: actors.ActorSystem) -> ClusterNames:
    names = system.registry._cluster
    assert names is not None
    return names


async def until(condition: Callable[[], object], timeout: float, step: float = 0.01) -> float:
    """Poll ``condition`` (state kept by the watch, not luck) until true;
    return the seconds it took."""
    start = anyio.current_time()
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - state the watch keeps, no event
            await anyio.sleep(step)
    return anyio.current_time() - start


class PausableProxy:
    """A loopback TCP relay to a NATS server; ``pause()`` holds every byte
    in both directions (a partition: nothing is closed, nothing arrives)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.running = anyio.Event()
        self.running.set()
        self.port = 0

    def pause(self) -> None:
        self.running = anyio.Event()

    def resume(self) -> None:
        self.running.set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def _pipe(
        self, source: anyio.abc.ByteReceiveStream, sink: anyio.abc.ByteSendStream
    ) -> None:
        try:
            async for data in source:
                await self.running.wait()
                await sink.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            await sink.aclose()

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        server = await anyio.connect_tcp("127.0.0.1", self.upstream)
        async with client, server, anyio.create_task_group() as task_group:
            task_group.start_soon(self._pipe, client, server)
            task_group.start_soon(self._pipe, server, client)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[PausableProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as task_group:
            task_group.start_soon(listener.serve, self._relay)
            try:
                yield self
            finally:
                self.resume()
                task_group.cancel_scope.cancel()


@asynccontextmanager
async def far_node(
    url: str,
    cluster: str,
    lease: float,
    name: str,
    backend: str,
    *,
    singleton: bool = False,
    secret: bytes | None = None,
) -> AsyncIterator[anyio.abc.Process]:
    """A node ``far`` in a subprocess holding ``name`` (claimed, or as a
    supervised singleton's), once it says so; with ``secret``, a system of
    an ``actors.cluster.NatsCluster`` (links with a 30 s heartbeat, so that
    its death is seen by its lease)."""
    how = "singleton" if singleton else "claim"
    argv = [sys.executable, "-c", NODE_SCRIPT, url, cluster, str(lease), name, backend, how]
    if secret is not None:
        argv = [sys.executable, "-c", CLUSTER_NODE_SCRIPT, url, cluster, str(lease), name]
        argv += [secret.hex(), backend]
    process = await anyio.open_process(argv)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive(1)
                line += chunk
        assert line == b"ready\n", line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.wait()
        await process.aclose()


__all__ = [
    "Nodes",
    "PausableProxy",
    "cluster_name",
    "far_node",
    "names_of",
    "until",
]
