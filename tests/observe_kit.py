"""A plain HTTP client on anyio sockets for the live page's tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def get(
    url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request; (status, headers, body)."""
    host, port = address(url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())
            data = b""
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return status, parsed, body


async def get_json(url: str, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status, _, body = await get(url, path, headers)
    assert status == 200, (status, body)
    return json.loads(body)


class Events:
    """A server-sent-events stream: ``await events.next()`` is ``(event, data)``."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffered = BufferedByteReceiveStream(stream)
        self.bytes = 0

    async def next(self) -> tuple[str, Any]:
        while True:
            block = await self.buffered.receive_until(b"\n\n", 10 * 1024 * 1024)
            self.bytes += len(block) + 2
            if block.startswith(b":"):
                continue  # a keepalive comment
            event, data = "message", b""
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    event = line[7:].decode()
                elif line.startswith(b"data: "):
                    data += line[6:]
            return event, json.loads(data)


async def open_events(url: str, query: str = "") -> Events:
    host, port = address(url)
    stream = await anyio.connect_tcp(host, port)
    await stream.send(f"GET /api/events{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    events = Events(stream)
    head = await events.buffered.receive_until(b"\r\n\r\n", 16384)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"text/event-stream" in head
    return events


async def until(condition: Callable[[], Any], timeout: float = 10) -> None:
    """Wait until ``condition()`` holds (state another task changes)."""
    with anyio.fail_after(timeout):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


async def until_async(condition: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    """Wait until ``await condition()`` is true (a page's answer); return it."""
    with anyio.fail_after(timeout):
        while True:
            result = await condition()
            if result:
                return result
            await anyio.sleep(0.01)
