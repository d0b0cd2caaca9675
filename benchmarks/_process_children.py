"""The yardsticks' child processes, for ``benchmarks.process``.

``python -m benchmarks._process_children KIND FD BACKEND`` runs one child on
the socket it inherited as descriptor ``FD``, on an anyio event loop of
``BACKEND``:

- ``stream``: reads length-prefixed pickles and unpickles each; a zero length
  is a barrier, answered with the count so far (8 bytes, big-endian). Ends at
  end of stream.
- ``echo``: reads length-prefixed pickles, unpickles each and sends it back
  pickled again, length-prefixed. Ends at end of stream.
- ``bare_echo``: ``echo`` on ``actors._socket.SocketStream`` (the socket
  itself and the event loop's readiness waits, no anyio stream layer).
- ``handshake``: reads a 32-byte secret, does the actors handshake as the
  acceptor (what a process actor's child does first), then waits for the end
  of the stream.

:func:`pipe_echo` is the ``multiprocessing`` child: it answers every message
on its ``Connection`` with the message, until ``None``.

It lives in a module of its own, importable by name, because a ``spawn``
child imports its target by name.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import struct
import sys
from multiprocessing.connection import Connection

import anyio
import anyio.abc

from actors._socket import SocketStream

LENGTH = struct.Struct("!I")
COUNT = struct.Struct("!Q")
SECRET_SIZE = 32


def pipe_echo(conn: Connection) -> None:
    """Send back every message received on ``conn``, until ``None``."""
    recv, send = conn.recv, conn.send
    while (message := recv()) is not None:
        send(message)
    conn.close()


async def _stream(stream: anyio.abc.ByteStream) -> None:
    buffer = bytearray()
    got = 0
    unpack_from = LENGTH.unpack_from
    loads = pickle.loads
    while True:
        try:
            buffer += await stream.receive()
        except anyio.EndOfStream:
            return
        position = 0
        while len(buffer) - position >= 4:
            (size,) = unpack_from(buffer, position)
            end = position + 4 + size
            if end > len(buffer):
                break
            if size:
                loads(buffer[position + 4 : end])
                got += 1
            else:
                await stream.send(COUNT.pack(got))
            position = end
        del buffer[:position]


async def _echo(stream: anyio.abc.ByteStream) -> None:
    buffer = bytearray()
    unpack_from, pack = LENGTH.unpack_from, LENGTH.pack
    loads, dumps = pickle.loads, pickle.dumps
    while True:
        try:
            buffer += await stream.receive()
        except anyio.EndOfStream:
            return
        position, replies = 0, list[bytes]()
        while len(buffer) - position >= 4:
            (size,) = unpack_from(buffer, position)
            end = position + 4 + size
            if end > len(buffer):
                break
            data = dumps(loads(buffer[position + 4 : end]), protocol=5)
            replies += (pack(len(data)), data)
            position = end
        del buffer[:position]
        if replies:
            await stream.send(b"".join(replies))


async def _handshake(stream: anyio.abc.SocketStream, secret: bytes) -> None:
    from actors._handshake import handshake

    await handshake(stream, secret, False)
    with contextlib.suppress(anyio.EndOfStream):
        await stream.receive()


async def _main(kind: str, fd: int) -> None:
    sock = socket.socket(fileno=fd)
    secret = b""
    if kind == "handshake":
        # Read before the loop takes the socket: exactly the secret, so the
        # handshake's first bytes stay in the socket for the handshake.
        secret = sock.recv(SECRET_SIZE, socket.MSG_WAITALL)
    sock.setblocking(False)
    if kind == "bare_echo":
        async with SocketStream(sock) as bare:
            await _echo(bare)
        return
    async with await anyio.abc.SocketStream.from_socket(sock) as stream:
        if kind == "stream":
            await _stream(stream)
        elif kind == "echo":
            await _echo(stream)
        else:
            await _handshake(stream, secret)


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("stream", "echo", "bare_echo", "handshake"):
        raise SystemExit(
            "usage: python -m benchmarks._process_children "
            "{stream,echo,bare_echo,handshake} FD BACKEND"
        )
    kind, fd, backend = argv
    anyio.run(_main, kind, int(fd), backend=backend)


if __name__ == "__main__":
    main(sys.argv[1:])
