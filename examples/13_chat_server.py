"""A TCP chat server: one actor per connection, a topic per room, all under a supervisor.

This example shows:

- a real network server on anyio, the same code on asyncio and trio:
  ``anyio.create_tcp_listener`` on loopback, port 0 (the system picks one);
- a ``Listener`` actor that serves connections from a goroutine and starts a
  ``Session`` actor for each under a ``DynamicSupervisor``, as a temporary
  child (a session that ends, or crashes, is not restarted: its client is gone);
- let it crash in a server: a room name that is no valid topic crashes that
  session, which closes its connection in ``on_stop``; everyone else carries on;
- rooms as topics: joining ``#lobby`` subscribes the session to
  ``rooms.lobby``, and a line said there is published to it, so the sessions
  never need to know about one another;
- the tree ``chat`` (``rest_for_one``: sessions, then the listener, which
  depends on them), with names from ``register_as`` to find its parts;
- a graceful shutdown: leaving ``async with ActorSystem()`` stops the tree,
  children in reverse order, and each session closes its connection.

The protocol is lines of text: the first is your nickname, ``/join <room>``
enters a room, anything else is said in it. Here ``main`` drives the server
with four real TCP clients and prints what each one sends (``->``) and hears
(``<-``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

import actors
from actors import Actor, ActorSystem
from supervision import ChildSpec, DynamicSupervisor, Supervisor, start_child

# -- the server -----------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A line the client sent."""

    text: str


@dataclass(frozen=True)
class RoomLine:
    """A line for everyone in a room, published on the room's topic."""

    text: str


class Session(Actor):
    """One client connection: reads its lines, and writes what its room says."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.nick: str | None = None
        self.room: str | None = None

    async def on_start(self) -> None:
        self.context.go(self.read_lines)

    async def read_lines(self) -> None:
        lines = BufferedByteReceiveStream(self.stream)
        try:
            while True:
                line = await lines.receive_until(b"\n", max_bytes=1024)
                await self.ref.tell(Line(line.decode().strip()))
        except (anyio.EndOfStream, anyio.IncompleteRead):
            await self.context.stop()  # the client hung up

    # --8<-- [start:rooms]
    async def receive(self, message: object) -> None:
        match message:
            case Line(nick) if self.nick is None:
                self.nick = nick
                await self.write(f"* welcome, {nick}: /join a room")
            case Line(text) if text.startswith("/join "):
                await self.leave()
                room = text.removeprefix("/join ")
                self.context.subscribe(f"rooms.{room}")  # a bad name crashes this session
                self.room = room
                await self.say(f"* {self.nick} joined #{self.room}")
            case Line(text) if self.room is not None:
                await self.say(f"<{self.nick}> {text}")
            case Line(_):
                await self.write("* /join a room first")
            case RoomLine(text):
                await self.write(text)

    async def say(self, text: str) -> None:
        assert self.room is not None
        await self.context.publish(f"rooms.{self.room}", RoomLine(text))

    async def leave(self) -> None:
        if self.room is not None:
            self.context.unsubscribe(f"rooms.{self.room}")
            await self.say(f"* {self.nick} left #{self.room}")
            self.room = None

    # --8<-- [end:rooms]

    async def write(self, text: str) -> None:
        await self.stream.send(f"{text}\n".encode())

    async def on_stop(self) -> None:
        await self.leave()
        await self.stream.aclose()


class Listener(Actor):
    """Accepts connections, and starts a session for each under ``chat.sessions``."""

    async def on_start(self) -> None:
        self.listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.context.go(self.listener.serve, self.start_session)

    async def start_session(self, stream: SocketStream) -> None:
        sessions = self.context.system.registry.whereis("chat.sessions")
        assert sessions is not None, "rest_for_one: the sessions start before us"
        await start_child(sessions, ChildSpec(Session, stream, restart="temporary"))

    async def receive(self, message: object) -> int | None:
        if message == "port":
            port: int = self.listener.extra(SocketAttribute.local_port)
            return port
        return None

    async def on_stop(self) -> None:
        await self.listener.aclose()


CHAT = [
    ChildSpec(DynamicSupervisor, max_children=100, name="sessions", register_as="chat.sessions"),
    ChildSpec(Listener, name="listener", register_as="chat.listener"),
]

# -- the clients ------------------------------------------------------------------


class Client:
    """A chat user on a real TCP connection, printing what it sends and hears."""

    def __init__(self, nick: str, stream: SocketStream) -> None:
        self.nick = nick
        self.stream = stream
        self.lines = BufferedByteReceiveStream(stream)

    @classmethod
    async def connect(cls, nick: str, port: int) -> Client:
        client = cls(nick, await anyio.connect_tcp("127.0.0.1", port))
        await client.send(nick)
        await client.hear()  # the welcome
        return client

    async def send(self, text: str) -> None:
        print(f"{self.nick} -> {text}")
        await self.stream.send(f"{text}\n".encode())

    async def hear(self) -> None:
        with anyio.fail_after(5):
            line = await self.lines.receive_until(b"\n", max_bytes=1024)
        print(f"  {self.nick} <- {line.decode()}")

    async def hear_the_end(self) -> None:
        try:
            while True:  # nothing more should come: any line would show here
                await self.hear()
        except (anyio.EndOfStream, anyio.IncompleteRead):
            print(f"  {self.nick} <- end of stream: the server closed the connection")
        await self.stream.aclose()


async def main() -> None:
    async with ActorSystem() as system:
        await system.spawn(
            Supervisor, CHAT, strategy="rest_for_one", name="chat", shutdown=math.inf
        )
        listener = system.registry.whereis("chat.listener")
        assert listener is not None
        port = await listener.ask("port")

        alice = await Client.connect("alice", port)
        bob = await Client.connect("bob", port)
        carol = await Client.connect("carol", port)
        # Each step waits until everyone it reaches has heard it, so the
        # transcript reads the same on every run.
        await alice.send("/join lobby")
        await alice.hear()
        await bob.send("/join lobby")
        await alice.hear()
        await bob.hear()
        await carol.send("/join kitchen")
        await carol.hear()
        await bob.send("hi alice!")
        await alice.hear()
        await bob.hear()
        await carol.send("anyone in the kitchen?")  # alice and bob are in the lobby
        await carol.hear()
        eve = await Client.connect("eve", port)
        await eve.send("/join the void")  # not a topic: it crashes eve's session alone
        await eve.hear_the_end()
        print("alice hangs up")
        await alice.stream.aclose()
        await bob.hear()

    print("-- the system is closed: the server stopped, and closed every connection")
    await bob.hear_the_end()
    await carol.hear_the_end()


if __name__ == "__main__":
    actors.run(main)
