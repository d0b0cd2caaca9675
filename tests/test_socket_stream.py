"""actors._socket.SocketStream: the byte stream the wire writes through at once."""

from __future__ import annotations

import socket

import anyio
import anyio.lowlevel
import pytest

from actors._socket import YIELD_EVERY, SocketStream, accept, connect_tcp

pytestmark = pytest.mark.anyio


async def test_bytes_cross_both_ways_and_large_sends_wait_for_room() -> None:
    left, right = socket.socketpair()
    a, b = SocketStream(left), SocketStream(right)
    big = bytes(range(256)) * 16384  # 4 MiB: more than the kernel buffers
    received = bytearray()

    async def read_all() -> None:
        while len(received) < len(big):
            received.extend(await b.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_all)
        await a.send(big)
    assert received == big
    await b.send(b"back")
    assert await a.receive() == b"back"
    await a.aclose()
    await b.aclose()


async def test_the_end_of_the_stream_and_a_closed_stream_are_told_apart() -> None:
    left, right = socket.socketpair()
    a, b = SocketStream(left), SocketStream(right)
    await a.send_eof()
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    await a.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await a.receive()
    with pytest.raises(anyio.ClosedResourceError):
        a.try_send(b"x")
    with pytest.raises(anyio.BrokenResourceError):
        for _ in range(1000):  # the first sends may still fill the buffer
            await b.send(b"x" * 65536)
    await b.aclose()


async def test_closing_wakes_a_task_waiting_to_receive() -> None:
    left, right = socket.socketpair()
    a = SocketStream(left)
    outcome: list[type[BaseException]] = []

    async def wait() -> None:
        try:
            await a.receive()
        except anyio.ClosedResourceError:
            outcome.append(anyio.ClosedResourceError)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        await a.aclose()
    assert outcome == [anyio.ClosedResourceError]
    right.close()


async def test_a_peer_that_always_has_bytes_ready_cannot_starve_other_tasks() -> None:
    left, right = socket.socketpair()
    a = SocketStream(left)
    other_ran = anyio.Event()

    async def other() -> None:
        other_ran.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        # Two checkpoints: trio may run this task first in the batch of the first.
        for _ in range(2 * YIELD_EVERY):
            right.send(b"x")
            await a.receive()
        assert other_ran.is_set()
    await a.aclose()
    right.close()


async def test_a_cancelled_receive_loses_nothing() -> None:
    left, right = socket.socketpair()
    a = SocketStream(left)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_once_waiting() -> None:
                await anyio.wait_all_tasks_blocked()
                scope.cancel()

            tg.start_soon(cancel_once_waiting)
            await a.receive()
    assert scope.cancelled_caught
    right.send(b"after")
    assert await a.receive() == b"after"
    await a.aclose()
    right.close()


async def test_on_asyncio_round_trips_register_the_socket_with_the_loop_once(
    anyio_backend: tuple[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    # anyio.wait_readable registers and unregisters the socket on every wait
    # (two epoll_ctl calls a read); the stream keeps its reader registered.
    if anyio_backend[0] != "asyncio":
        pytest.skip("the reader callback is asyncio's")
    import asyncio

    loop = asyncio.get_running_loop()
    added: list[int] = []
    add_reader = loop.add_reader

    def counting_add_reader(fd: object, *args: object) -> None:
        added.append(1)
        add_reader(fd, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "add_reader", counting_add_reader)
    left, right = socket.socketpair()
    a, b = SocketStream(left), SocketStream(right)

    async def echo() -> None:
        for _ in range(50):
            await b.send(await b.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(echo)
        for number in range(50):
            await a.send(b"%d" % number)
            assert await a.receive() == b"%d" % number
    assert len(added) <= 4  # once per stream, again only after a chunk nobody waited for
    await a.aclose()
    await b.aclose()


async def test_a_stream_nobody_reads_holds_at_most_one_chunk_and_pushes_back() -> None:
    left, right = socket.socketpair()
    a = SocketStream(left)
    right.setblocking(False)
    assert await _fill(right) > 0
    await a.receive(1)  # reads once, then nobody reads for a while
    for _ in range(10):
        await anyio.lowlevel.checkpoint()
    assert a.input_waiting()
    assert sum(map(len, a._received)) <= 1 << 16
    assert await _fill(right) == 0  # the kernel's buffers are still full: pushed back
    got = 1
    while got < (1 << 16):
        got += len(await a.receive())
    assert a.input_waiting()
    await a.aclose()
    assert not a.input_waiting()
    right.close()


async def _fill(sock: socket.socket) -> int:
    sent = 0
    while True:
        try:
            sent += sock.send(b"x" * 65536)
        except BlockingIOError:
            return sent


async def test_it_reports_its_socket() -> None:
    left, right = socket.socketpair()
    a = SocketStream(left)
    assert a.extra(anyio.abc.SocketAttribute.raw_socket) is left
    assert a.extra(anyio.abc.SocketAttribute.family) == socket.AF_UNIX
    await a.aclose()
    right.close()


async def test_tcp_connect_and_accept_give_socket_streams_without_delay() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        host, port = server.getsockname()
        async with anyio.create_task_group() as tg:
            accepted: list[SocketStream] = []

            async def take() -> None:
                accepted.append(await accept(server))

            tg.start_soon(take)
            client = await connect_tcp(host, port)
        (served,) = accepted
        for end in (client, served):
            assert end.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        await client.send(b"hello")
        assert await served.receive() == b"hello"
        assert served.extra(anyio.abc.SocketAttribute.remote_port) == client.socket.getsockname()[1]
        await client.aclose()
        await served.aclose()


async def test_connecting_to_a_port_nobody_listens_on_raises() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        await connect_tcp("127.0.0.1", port)


async def test_on_asyncio_a_waiting_receive_offers_what_arrives_to_inline_first(
    anyio_backend: tuple[str, object],
) -> None:
    # What inline takes never reaches the receive, which waits on; what it
    # declines does, in order; poke makes the receive return b"" once.
    if anyio_backend[0] != "asyncio":
        pytest.skip("the reader callback is asyncio's")
    left, right = socket.socketpair()
    a = SocketStream(left)
    taken: list[bytes] = []
    offered = anyio.Event()

    def inline(data: memoryview) -> bool:
        offered.set()
        if bytes(data).startswith(b"take"):
            taken.append(bytes(data))
            return True
        if bytes(data).startswith(b"poke"):
            taken.append(bytes(data))
            a.poke()
            return True
        return False

    a.inline = inline
    got: list[bytes] = []

    async def read(times: int) -> None:
        for _ in range(times):
            got.append(await a.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, 2)
        await _until_waiting(a)
        right.send(b"take 1")
        with anyio.fail_after(5):
            await offered.wait()
        offered = anyio.Event()
        assert taken == [b"take 1"] and got == []  # the receive still waits
        right.send(b"keep")
        with anyio.fail_after(5):
            while not got:
                await anyio.lowlevel.checkpoint()
        assert got == [b"keep"]
        await _until_waiting(a)
        right.send(b"poke")
    assert got == [b"keep", b""] and taken == [b"take 1", b"poke"]
    # Not offered while nobody waits: held for the next receive.
    right.send(b"take 2")
    with anyio.fail_after(5):
        while not a._received:
            await anyio.lowlevel.checkpoint()
    assert await a.receive() == b"take 2"
    assert taken == [b"take 1", b"poke"]
    await a.aclose()
    right.close()


async def _until_waiting(stream: SocketStream) -> None:
    with anyio.fail_after(5):
        while stream._waiter is None:
            await anyio.lowlevel.checkpoint()
