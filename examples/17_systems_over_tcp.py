"""Two actor systems in two processes, joined over TCP: a message board and its readers.

This example shows:

- ``await system.listen(cookie=...)``: a system that accepts others on a TCP
  address (port 0: the system picks one), with a shared secret read from a
  cookie file that only its owner can read (``actors.create_cookie``);
- ``await system.connect(address, cookie=...)``: another system joins it, and
  ``await remote.whereis("board")`` finds an actor there by its registered
  name: an ordinary ``ActorRef``, for ``ask`` and ``tell``;
- refs crossing both ways: the client sends refs to its own ``Reader``
  actors, and the board tells them every post;
- a channel crossing: the client hands the board a ``Channel`` of its own,
  and reads the history the board sends into it (a buffered channel keeps
  Go's semantics across the wire: the board waits while it is full);
- watching across the wire: the board watches its readers, and learns both
  how one stopped (``Terminated(ref, None)``) and that the others' system went
  away (``Terminated(ref, ConnectionLost(...))``);
- after ``remote.close()``, asks to the other system raise ``ConnectionLost``.

One script plays both parts, so that the lesson runs with one command: run
plain, it is the client, and first starts itself with ``--serve`` as the
server, in another process (on the same backend), which prints its address.
The server's output is shown at the end. To run the parts yourself::

    python examples/17_systems_over_tcp.py --serve --cookie /tmp/board.cookie
    python examples/17_systems_over_tcp.py --join 127.0.0.1:PORT --cookie /tmp/board.cookie

The messages are tuples and strings: a class defined in a script crosses by
value, and the other side gets a copy of the class, not its own (even when
it runs the same script), so ``match`` against its own class would not match
it. Message classes that both sides match belong in a module both import.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

import anyio
from _lifelines import exit_with_parent
from anyio.streams.buffered import BufferedByteReceiveStream

import actors
from actors import Actor, ActorRef, ActorSystem, Terminated


# --8<-- [start:server]
class Board(Actor):
    """Posts go to every reader; the board closes when its last reader leaves."""

    def __init__(self) -> None:
        self.readers: dict[ActorRef, str] = {}
        self.posts: list[str] = []

    async def receive(self, message: object) -> object:
        match message:
            case ("join", str(name), ActorRef() as reader):
                self.readers[reader] = name
                self.context.watch(reader)  # a reader in another system
                print(f"board: {name} joined")
                return len(self.readers)
            case ("post", str(author), str(text)):
                self.posts.append(f"{author}: {text}")
                for reader in self.readers:
                    await reader.tell(self.posts[-1])
                return len(self.readers)
            case ("history", actors.Channel() as channel):  # a channel over there
                for post in self.posts:
                    await channel.send(post)
                channel.close()
            case Terminated(ref=reader, reason=reason):
                name = self.readers.pop(reader)
                how = "stopped" if reason is None else f"{type(reason).__name__}: {reason}"
                print(f"board: {name} left ({how})")
                if not self.readers:
                    print("board: no readers left, closing")
                    await self.context.stop()
        return None


async def serve(cookie: str, host: str, port: int) -> None:
    async with ActorSystem("server") as system:
        board = await system.spawn(Board, name="board")
        system.registry.register("board", board)
        listener = await system.listen(host, port, cookie=cookie)
        print(listener, flush=True)  # "127.0.0.1:PORT", for the client
        await board.join()


# --8<-- [end:server]
# --8<-- [start:client]
class Reader(Actor):
    """Keeps what the board tells it; ``"read"`` returns it."""

    def __init__(self) -> None:
        self.posts: list[str] = []

    async def receive(self, message: object) -> object:
        if message == "read":
            return self.posts
        self.posts.append(str(message))
        return None


async def join(address: str, cookie: str) -> None:
    async with ActorSystem("client") as system:
        remote = await system.connect(address, cookie=cookie)
        print(f"joined {remote.node!r}")
        board = await remote.whereis("board")
        assert board is not None
        alice = await system.spawn(Reader, name="alice")
        bob = await system.spawn(Reader, name="bob")
        print("readers:", await board.ask(("join", "alice", alice)))
        print("readers:", await board.ask(("join", "bob", bob)))
        print("posted to", await board.ask(("post", "alice", "hello from the client")))
        print("posted to", await board.ask(("post", "bob", "hi, alice")))
        # The board's tells travelled before its answer: they are here.
        print("alice read:", await alice.ask("read"))
        history = actors.Channel[str](1)  # the board runs at most one post ahead
        await board.tell(("history", history))
        print("history:", [post async for post in history])
        await bob.stop()  # the board sees him stop
        await remote.close()  # and alice's system leave
        try:
            await board.ask(("post", "alice", "anyone?"))
        except actors.ConnectionLost as error:
            print("after close:", error)


# --8<-- [end:client]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="be the server")
    parser.add_argument("--join", metavar="HOST:PORT", help="be a client of this server")
    parser.add_argument("--cookie", help="the cookie file (made if missing, for --serve)")
    parser.add_argument("--host", default="127.0.0.1", help="where --serve listens")
    parser.add_argument("--port", type=int, default=0, help="where --serve listens")
    parser.add_argument(
        "--child", action="store_true", help="started by this script: end when it ends"
    )
    args = parser.parse_args()
    if args.child:
        exit_with_parent()  # a kill -9 of the script included (_lifelines.py)
    if args.serve or args.join:
        if args.cookie is None:
            parser.error("--serve and --join need --cookie")
        if args.serve:
            with contextlib.suppress(FileExistsError):  # else make one
                actors.create_cookie(args.cookie)
            await serve(args.cookie, args.host, args.port)
        else:
            await join(args.join, args.cookie)
        return
    with tempfile.TemporaryDirectory() as directory:
        cookie = os.path.join(directory, "cookie")
        actors.create_cookie(cookie)  # readable by its owner only
        command = [sys.executable, __file__, "--serve", "--cookie", cookie, "--child"]
        server = await anyio.open_process(command, stderr=None)
        try:
            assert server.stdout is not None
            output = BufferedByteReceiveStream(server.stdout)
            with anyio.fail_after(20):
                address = (await output.receive_until(b"\n", 100)).decode()
            await join(address, cookie)
            with anyio.fail_after(20):
                print("the server exited with", await server.wait(), "and printed:")
            rest = b""
            while True:
                try:
                    rest += await output.receive()
                except anyio.EndOfStream:
                    break
            for line in rest.decode().splitlines():
                print("  |", line)
        finally:
            if server.returncode is None:
                server.kill()
            await server.aclose()


if __name__ == "__main__":
    actors.run(main)
