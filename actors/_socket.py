"""A byte stream straight over a connected socket, for the wire's fast path.

anyio's own socket streams cost a connection (to a child process, or to
another system over TCP) event-loop turns on reads and writes that the wire
does not need: on asyncio
they sit on a transport whose writes are buffered out of the caller's sight,
and each call checkpoints even when the bytes are already there.
:class:`SocketStream` is the plain thing: a nonblocking socket, ``recv`` and
``send`` at once when they can, ``anyio.wait_readable``/``wait_writable``
when they cannot. Since it buffers nothing, :meth:`SocketStream.try_send`
can write synchronously from any task while no :meth:`~SocketStream.send`
is in progress: the wire writes an ask or a reply from the task that made
it, saving the switch to its writer task (``benchmarks.process``, ask row).

On asyncio, reads wait on a reader callback that stays registered with the
loop's selector while the stream is read, and that reads the bytes itself:
``anyio.wait_readable`` registers and unregisters the socket (two
``epoll_ctl`` calls and their bookkeeping) on every wait, which a round trip
pays on each side. The callback reads at most one chunk while nobody waits,
then stops watching until the next wait: what it holds is bounded, and a
reader that stops reading still pushes back on the peer. While a receive
waits with nothing held, the callback first offers what it read to
:attr:`SocketStream.inline` (the wire's peer delivers whole frames there
with plain calls, saving the switch to its reading task on each side of a
round trip); what that leaves wakes the receive, as :meth:`~SocketStream.poke`
does.

Examples:
    >>> import anyio, socket
    >>> async def main():
    ...     left, right = socket.socketpair()
    ...     a, b = SocketStream(left), SocketStream(right)
    ...     await a.send(b"ping")
    ...     data = await b.receive()
    ...     await a.aclose(); await b.aclose()
    ...     return data
    >>> anyio.run(main)
    b'ping'
"""

# Invariants:
# - The socket is nonblocking from the constructor on, and closed once, by
#   aclose; waiters on it are woken first (anyio.notify_closing).
# - Nothing sent is buffered here: a byte that send accepted, or that
#   try_send counted, is in the kernel.
# - Bytes read by the reader callback wait in ``_received``, in order, and
#   are returned before the socket is read again; the callback reads only
#   while ``_watching`` (asyncio), and stops after a chunk nobody waited for,
#   at the end of the stream or at an error (kept in ``_read_error``).
# - ``inline`` is offered a chunk only while a receive waits and nothing is
#   held in ``_received``; a chunk it took is not held (it took all of it).

from __future__ import annotations

import errno
import os
import select
import socket
from asyncio import AbstractEventLoop, Future
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

from ._backend import asyncio_loop

#: Calls that complete at once checkpoint once every this many, so that a
#: peer that always has bytes ready cannot starve the other tasks.
YIELD_EVERY: Final = 64
#: Bytes the asyncio reader callback reads at once.
_CHUNK: Final = 1 << 16


class SocketStream(anyio.abc.ByteStream):
    """An anyio byte stream over a connected stream socket it owns.

    Args:
        sock: A connected ``SOCK_STREAM`` socket (Unix or TCP); made
            nonblocking here, and closed by :meth:`aclose`.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socket = sock
        self._fd = sock.fileno()
        self._closed = False
        self._unyielded = 0
        #: asyncio: the loop whose selector calls _on_readable, while it does.
        self._watching: AbstractEventLoop | None = None
        #: asyncio: the receive waiting for _on_readable, if one is.
        self._waiter: Future[None] | None = None
        self._received: deque[bytes] = deque()
        self._read_error: OSError | None = None
        #: asyncio: takes a chunk the reader callback read while a receive
        #: waits with nothing held; True if it took all of it.
        self.inline: Callable[[memoryview], bool] | None = None
        self._poked = False  # the next receive returns b"" (see poke)

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    async def _yield_sometimes(self) -> None:
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await anyio.lowlevel.checkpoint()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Bytes from the peer, at most ``max_bytes``; waits while none are
        there. Cancelling the wait loses nothing: bytes read meanwhile are
        the next call's.

        Raises:
            anyio.EndOfStream: The peer closed its side.
            anyio.ClosedResourceError: This stream was closed.
            anyio.BrokenResourceError: The connection broke.
            anyio.BusyResourceError: Another task is receiving.
        """
        sock = self.socket
        while True:
            self._check_open()
            if self._poked:
                self._poked = False
                return b""
            received = self._received
            if received:
                data = received[0]
                if len(data) <= max_bytes:
                    received.popleft()
                else:
                    received[0] = data[max_bytes:]
                    data = data[:max_bytes]
            elif self._read_error is not None:
                raise anyio.BrokenResourceError from self._read_error
            else:
                try:
                    data = sock.recv(max_bytes)
                except BlockingIOError:
                    self._unyielded = 0
                    await self._wait_readable()
                    continue
                except OSError as error:
                    raise anyio.BrokenResourceError from error
                if not data:
                    raise anyio.EndOfStream
            await self._yield_sometimes()
            return data

    async def _wait_readable(self) -> None:
        loop = asyncio_loop()
        if loop is None or (self._watching is not None and self._watching is not loop):
            try:
                await anyio.wait_readable(self.socket)
            except anyio.ClosedResourceError:
                raise anyio.ClosedResourceError from None
            return
        if self._waiter is not None:
            raise anyio.BusyResourceError("reading from")
        if self._watching is None:
            loop.add_reader(self._fd, self._on_readable)
            self._watching = loop
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _on_readable(self) -> None:
        # asyncio's selector found the socket readable: read here, so that
        # the socket is not readable still at the next select (which would
        # call this again for nothing), and wake the receive waiting.
        try:
            data = self.socket.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._read_error = error
            data = b""
        waiter = self._waiter
        if data:
            inline = self.inline
            if (
                waiter is not None
                and not self._received
                and inline is not None
                and inline(memoryview(data))
            ):
                return  # taken: the receive waits on
            self._received.append(data)
        self._waiter = None
        if waiter is None or not data:
            self._unwatch()  # nobody waits (the chunk is held), or nothing more comes
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def poke(self) -> None:
        """Make the waiting receive return ``b""`` (once): ``inline`` left
        frames for the reader above (see ``WireConnection.receive``)."""
        self._poked = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _unwatch(self) -> None:
        loop = self._watching
        if loop is not None:
            self._watching = None
            loop.remove_reader(self._fd)

    def input_waiting(self) -> bool:
        """Whether bytes from the peer wait to be read (here or in the kernel)."""
        if self._received or self._read_error is not None:
            return True
        if self._closed:
            return False
        try:
            readable, _, _ = select.select([self.socket], [], [], 0)
        except (OSError, ValueError):  # closed meanwhile
            return False
        return bool(readable)

    def try_send(self, data: bytes | memoryview) -> int:
        """Write what the kernel takes now, without waiting: the number of
        bytes written (0 when its buffer is full). For a caller that knows
        no :meth:`send` is in progress.

        Raises:
            anyio.ClosedResourceError: This stream was closed.
            anyio.BrokenResourceError: The connection broke.
        """
        self._check_open()
        try:
            return self.socket.send(data)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise anyio.BrokenResourceError from error

    async def send(self, item: bytes) -> None:
        """Write all of ``item``; waits while the kernel's buffer is full.
        Cancelled on the way, part of ``item`` may have been written.

        Raises:
            anyio.ClosedResourceError: This stream was closed.
            anyio.BrokenResourceError: The connection broke.
        """
        view = memoryview(item)
        sent = self.try_send(view)
        if sent == len(view):
            await self._yield_sometimes()
            return
        self._unyielded = 0
        with view:
            while sent < len(view):
                try:
                    await anyio.wait_writable(self.socket)
                except anyio.ClosedResourceError:
                    raise anyio.ClosedResourceError from None
                sent += self.try_send(view[sent:])

    async def send_eof(self) -> None:
        """Close the sending side; the peer reads the end of the stream."""
        self._check_open()
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as error:
            raise anyio.BrokenResourceError from error
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close the socket; a task waiting on it gets ``ClosedResourceError``."""
        if not self._closed:
            self._closed = True
            self._unwatch()
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_exception(anyio.ClosedResourceError())
            anyio.notify_closing(self.socket)
            self.socket.close()
        await anyio.lowlevel.checkpoint()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self.socket
        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: sock.getsockname,
        }
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attributes[SocketAttribute.remote_address] = sock.getpeername
            attributes[SocketAttribute.local_port] = lambda: sock.getsockname()[1]
            attributes[SocketAttribute.remote_port] = lambda: sock.getpeername()[1]
        return attributes


async def connect_tcp(host: str, port: int) -> SocketStream:
    """A :class:`SocketStream` connected to ``host:port``: each address the
    name resolves to in turn, until one connects (``TCP_NODELAY`` set).
    Cancelling the wait closes the socket.

    Raises:
        OSError: No address could be connected (the last one's error).
    """
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            try:
                sock.connect(address)
            except BlockingIOError:
                await anyio.wait_writable(sock)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, f"{os.strerror(code)}: {address}") from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as error:
            sock.close()
            last = error
            continue
        except BaseException:
            sock.close()
            raise
        return SocketStream(sock)
    raise last or OSError(errno.EADDRNOTAVAIL, f"{host!r} resolves to no address")


async def accept(listening: socket.socket) -> SocketStream:
    """The next connection on a nonblocking listening socket, as a
    :class:`SocketStream` (``TCP_NODELAY`` set for TCP). Cancelling the wait
    accepts nothing.

    Raises:
        OSError: ``accept`` failed (out of descriptors, say).
    """
    while True:
        try:
            sock, _ = listening.accept()
        except BlockingIOError:
            await anyio.wait_readable(listening)
            continue
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return SocketStream(sock)
