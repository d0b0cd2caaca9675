"""What the TCP tests share: a secret, a canary, a TCP proxy that may tamper
with frames or cut the connection, and another system in a subprocess
(``tests/tcp_node.py``) that is always reaped."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from process_kit import Echo
from wire_kit import receive_frame

import actors
from actors._handshake import HELLO_PREFIX, PROOF_SIZE

SECRET = b"a test secret, 32 bytes long...."
NODE = Path(__file__).resolve().parent / "tcp_node.py"


def other_backend(backend: str) -> str:
    return "trio" if backend == "asyncio" else "asyncio"


# -- the canary ----------------------------------------------------------------------


def _write_canary(path: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write("unpickled\n")


class Canary:
    """Unpickling it appends a line to ``path``: the proof that it happened."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write_canary, (self.path,))


#: Bytes every frame carrying a pickled canary contains.
CANARY_MARK = _write_canary.__name__.encode()


def unpickled(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


# -- what the other side logs -----------------------------------------------------


class TcpLog(logging.Handler):
    """The warnings of the ``actors.tcp`` logger, and a wait for them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._grew: anyio.Event | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self._grew is not None:
            self._grew.set()

    async def wait(self, count: int) -> list[str]:
        """The first ``count`` messages, once logged (the other side logs on
        its own time); exactly ``count`` by then."""
        with anyio.fail_after(5):
            while len(self.messages) < count:
                self._grew = anyio.Event()
                await self._grew.wait()
        assert len(self.messages) == count, self.messages
        return self.messages


@contextmanager
def tcp_log() -> Iterator[TcpLog]:
    handler = TcpLog()
    logger = logging.getLogger("actors.tcp")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# -- a TCP proxy ------------------------------------------------------------------------

#: Given the index of a frame and its bytes, what to forward (possibly nothing).
Mangle = Callable[[int, bytes], list[bytes]]


def forward(index: int, frame: bytes) -> list[bytes]:
    """The honest proxy."""
    return [frame]


async def _exactly(stream: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await stream.receive(size - len(data))
    return data


@dataclass
class Proxy:
    """Listens at ``address`` and forwards each connection to its target:
    frames from the connecting side through ``to_target``, the others
    through ``to_client``. Once ``cut``, nothing passes, not even the end of
    a connection: a network partition."""

    address: str
    to_target: Mangle
    to_client: Mangle
    cut: bool = False


async def _pipe(
    src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream, mangle: Mangle, proxy: Proxy
) -> None:
    # The handshake's messages as they are, then frame by frame through mangle.
    try:
        prefix = await _exactly(src, HELLO_PREFIX.size)
        await dst.send(prefix + await _exactly(src, HELLO_PREFIX.unpack(prefix)[2]))
        await dst.send(await _exactly(src, PROOF_SIZE))
        await dst.send(await _exactly(src, 1))
        index = 0
        while True:
            frame = await receive_frame(src)
            if not proxy.cut:
                for out in mangle(index, frame):
                    await dst.send(out)
            index += 1
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        if proxy.cut:
            await anyio.sleep_forever()  # until the proxy ends
        await anyio.aclose_forcefully(dst)


@asynccontextmanager
async def tcp_proxy(
    target: str, to_target: Mangle = forward, to_client: Mangle = forward
) -> AsyncIterator[Proxy]:
    host, port = target.rsplit(":", 1)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)
    proxy = Proxy(f"127.0.0.1:{bound}", to_target, to_client)

    async def relay(client: anyio.abc.SocketStream) -> None:
        async with (
            client,
            await anyio.connect_tcp(host, int(port)) as server,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_pipe, client, server, proxy.to_target, proxy)
            await _pipe(server, client, proxy.to_client, proxy)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()


# -- another system in a subprocess ---------------------------------------------------


@dataclass
class Node:
    """A running ``tests/tcp_node.py``; ``line`` is the first line it printed."""

    process: anyio.abc.Process
    line: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)


@asynccontextmanager
async def run_node(*args: str, backend: str) -> AsyncIterator[Node]:
    """Start ``tcp_node.py`` on ``backend``, wait for its first line, and
    always kill and reap it afterwards."""
    process = await anyio.open_process(
        [sys.executable, str(NODE), "--backend", backend, "--parent-pid", str(os.getpid()), *args],
        stdin=None,
        stdout=-1,  # subprocess.PIPE
        stderr=None,
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 4096)
        yield Node(process, line.decode())
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


class Keeper(actors.Actor):
    """Spawns an ``Echo`` child registered as ``name``, and contains its
    failures (so a test can make it fail without failing the system)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_start(self) -> None:
        child = await self.context.spawn(Echo, self.name, name=self.name)
        self.context.system.registry.register(self.name, child)

    async def on_child_failed(self, child: actors.ActorRef, error: BaseException) -> None:
        pass
