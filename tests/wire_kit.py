"""What the wire tests share: connected byte streams, handshaken pairs, and a
proxy that forwards frames between two ends and may tamper with them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from actors._envelope import Envelope, Kind
from actors._handshake import HELLO_PREFIX, PROOF_SIZE, Session, handshake
from actors._socket import SocketStream
from actors._wire import FRAME_HEAD, FRAME_PREFIX, WireConnection

SECRET = b"a test secret, 32 bytes long...."

Pair = tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]
PairFactory = Callable[[], Awaitable[Pair]]


async def socketpair() -> Pair:
    """Two ends of a Unix socketpair, as a child process will have."""
    left, right = socket.socketpair()
    return (
        await anyio.abc.SocketStream.from_socket(left),
        await anyio.abc.SocketStream.from_socket(right),
    )


async def direct_pair() -> Pair:
    """A Unix socketpair in ``actors._socket.SocketStream``s, as a child
    process and its parent have: the wire writes asks and replies at once."""
    left, right = socket.socketpair()
    return SocketStream(left), SocketStream(right)


async def tcp_pair() -> Pair:
    """Two ends of a loopback TCP connection, as two systems will have."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    return (
        await anyio.abc.SocketStream.from_socket(client),
        await anyio.abc.SocketStream.from_socket(accepted),
    )


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-memory byte stream: a send blocks until the other end
    receives (capacity 0), so a test controls exactly when bytes move."""

    def __init__(
        self, send: MemoryObjectSendStream[bytes], receive: MemoryObjectReceiveStream[bytes]
    ) -> None:
        self._send = send
        self._receive = receive
        self._rest = b""

    async def send(self, item: bytes) -> None:
        await self._send.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = self._rest or await self._receive.receive()
        self._rest = data[max_bytes:]
        return data[:max_bytes]

    async def send_eof(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()


async def memory_pair() -> Pair:
    a_to_b, b_from_a = anyio.create_memory_object_stream[bytes](0)
    b_to_a, a_from_b = anyio.create_memory_object_stream[bytes](0)
    return MemoryByteStream(a_to_b, a_from_b), MemoryByteStream(b_to_a, b_from_a)


async def handshake_pair(
    a: anyio.abc.ByteStream,
    b: anyio.abc.ByteStream,
    secret_a: bytes = SECRET,
    secret_b: bytes = SECRET,
) -> tuple[Session, Session]:
    """Both ends' handshakes at once; ``a`` is the initiator."""
    sessions: dict[str, Session] = {}

    async def accept() -> None:
        sessions["b"] = await handshake(b, secret_b, False)

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept)
        sessions["a"] = await handshake(a, secret_a, True)
    return sessions["a"], sessions["b"]


@asynccontextmanager
async def wire_pair(
    make: PairFactory = socketpair, **options: Any
) -> AsyncIterator[tuple[WireConnection, WireConnection]]:
    """Two connected, handshaken connections; ``options`` go to both."""
    a, b = await make()
    session_a, session_b = await handshake_pair(a, b)
    async with (
        WireConnection(a, session_a, **options) as wire_a,
        WireConnection(b, session_b, **options) as wire_b,
    ):
        yield wire_a, wire_b


def tell(to: str, body: bytes, **headers: str) -> Envelope:
    return Envelope(Kind.TELL, to, "/user/sender", 0, headers, body)


# -- the proxy ------------------------------------------------------------------

#: Given the index of a frame and its bytes, what to forward now (possibly
#: nothing, or frames held back earlier).
Mangle = Callable[[int, bytes], list[bytes]]


async def _receive_exactly(stream: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await stream.receive(size - len(data))
    return data


async def _forward_handshake(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
    prefix = await _receive_exactly(src, HELLO_PREFIX.size)
    _, _, size = HELLO_PREFIX.unpack(prefix)
    await dst.send(prefix + await _receive_exactly(src, size))
    await dst.send(await _receive_exactly(src, PROOF_SIZE))
    await dst.send(await _receive_exactly(src, 1))


async def receive_frame(stream: anyio.abc.ByteReceiveStream) -> bytes:
    """One whole frame's bytes, as they travel."""
    prefix = await _receive_exactly(stream, FRAME_PREFIX)
    size, _ = FRAME_HEAD.unpack_from(prefix)
    return prefix + await _receive_exactly(stream, size)


async def _forward_frames(
    src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream, mangle: Mangle
) -> None:
    await _forward_handshake(src, dst)
    index = 0
    try:
        while True:
            frame = await receive_frame(src)
            for out in mangle(index, frame):
                await dst.send(out)
            index += 1
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    finally:
        await anyio.aclose_forcefully(dst)


def forward(index: int, frame: bytes) -> list[bytes]:
    """The honest proxy."""
    return [frame]


@asynccontextmanager
async def proxied_pair(
    mangle_a_to_b: Mangle, make: PairFactory = socketpair
) -> AsyncIterator[tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]]:
    """Ends ``a`` and ``b`` whose bytes pass through a proxy; frames from
    ``a`` to ``b`` go through ``mangle_a_to_b``, the rest unchanged."""
    a, proxy_a = await make()
    proxy_b, b = await make()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_forward_frames, proxy_a, proxy_b, mangle_a_to_b)
        tg.start_soon(_forward_frames, proxy_b, proxy_a, forward)
        try:
            yield a, b
        finally:
            tg.cancel_scope.cancel()
            for stream in (a, b, proxy_a, proxy_b):
                await anyio.aclose_forcefully(stream)
