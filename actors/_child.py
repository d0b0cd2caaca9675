"""A child process: ``python -m actors._child --fd N --backend B --parent-pid P``.

Started by :mod:`actors._process`, never by hand. It reads its key from the
inherited socket ``N``, answers the handshake, and runs an actor system
named by the parent (``parent:pid``) whose :class:`Host` actor starts the
actors the parent places here; each carries the identity of its stand-in in
the parent. It exits when the connection ends, and on Linux when the parent
dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._actor import Actor
from ._codec import loads
from ._exceptions import AuthenticationError, ConnectionLost
from ._handshake import handshake
from ._peer import Peer, Silent
from ._process import KEY_SIZE, kill_with_parent
from ._ref import ActorRef
from ._remote import dump_error
from ._remote_names import forward_names
from ._remote_topics import forward_topics
from ._socket import SocketStream
from ._system import ActorSystem
from ._tracing import instrument
from ._wire import WireConnection
from ._worker import Census, Drop, Hello, Ready, Spawn

if TYPE_CHECKING:
    from ._cell import Cell
    from ._reply import Reply

#: Seconds between checks that the parent is still there.
_ORPHAN_POLL = 0.2


def _die_with_parent(parent_pid: int, pdeathsig: bool) -> None:
    # The end of the connection stops this process gracefully; these kill it
    # when its event loop cannot see that end (a handler that never yields).
    if pdeathsig:
        # Only when the parent started us from its event loop's thread: the
        # signal comes when the thread that forked exits, and trio forks from
        # a worker thread that exits after ten idle seconds.
        kill_with_parent()
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(1)

    def watch() -> None:  # everywhere: the parent gone means reparented
        while True:
            time.sleep(_ORPHAN_POLL)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="actors: parent watch", daemon=True).start()


class Host(Actor):
    """Starts the actors the parent places in this process and reports their end.

    Many actors may share the process (a pool's worker): each spawn runs on
    its own (a slow ``on_start`` holds up no other), and each hosted actor's
    end is reported when its cell is gone, not through this mailbox.
    """

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.identities: dict[Cell, tuple[str, int]] = {}

    async def on_start(self) -> None:
        self.context.system._gone_hooks.append(self._gone)

    async def receive(self, message: Any) -> Any:
        match message:
            case Spawn():
                return self._spawn(message)
            case Drop(node=node, uid=uid):
                cell = self.context.system._aliases.get((node, uid))
                if cell is not None:
                    cell.kill()
            case Census():
                return len(self.identities)
        return None

    def _spawn(self, request: Spawn) -> bytes | None:
        system = self.context.system
        try:
            factory, args, kwargs = loads(request.spec)
        except Exception as error:
            return dump_error(error, system.name)
        identity = (request.node, request.uid)
        hosted: list[Cell] = []

        def setup(cell: Cell) -> None:
            # Its refs are its stand-in's: they pickle as the parent's.
            cell.ref = ActorRef(cell, request.node, request.path, request.uid)
            cell.path = request.path
            cell.start_awaited = True  # a start failure answers the Spawn
            system._aliases[identity] = cell
            self.identities[cell] = identity
            hosted.append(cell)
            if request.subscriptions:  # known here too, so it can unsubscribe them
                system.registry._adopt(cell, None, list(request.subscriptions))

        try:
            system._spawn_nowait(
                self._actors_cell,
                factory,
                args,
                kwargs,
                f"{request.name}.{request.uid}",
                request.mailbox,
                request.shutdown,
                setup,
            )
        except Exception as error:
            return dump_error(error, system.name)
        reply = self.context.reply_later()
        self.context.go(self._started, hosted[0], reply)
        return None

    async def _started(self, cell: Cell, reply: Reply) -> None:
        await cell.started.wait()
        error = cell.start_error
        reply.send(None if error is None else dump_error(error, self.context.system.name))

    def _gone(self, cell: Cell) -> None:
        identity = self.identities.pop(cell, None)
        if identity is not None:
            system = self.context.system
            system._aliases.pop(identity, None)
            reason = cell.reason
            body = None if reason is None else dump_error(reason, system.name)
            self.peer.signal("ended", (identity[1], body, cell.killed))

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        pass  # reported to the parent when its cell is gone: the stand-in fails with it


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    stream = SocketStream(sock)
    key = b""
    while len(key) < KEY_SIZE:
        key += await stream.receive(KEY_SIZE - len(key))
    session = await handshake(stream, key, initiator=False)
    wire = WireConnection(stream, session)
    first = await wire.receive()
    hello: Hello = loads(first.body)
    if hello.initializer is not None:
        hello.initializer()  # an error ends this process: the parent's spawn fails
    if hello.tracing:
        try:
            instrument()  # with the provider the initializer set up, if any
        except ImportError as error:
            logging.getLogger("actors").warning("process %d is not traced: %s", os.getpid(), error)
    # Its dead letters go to the parent, which logs them.
    async with ActorSystem(hello.node, log_dead_letters=0) as system:
        peer = Peer(system, wire, hello.parent, heartbeat=hello.heartbeat, misses=None)
        system._peers[hello.parent] = peer
        system._upstream = peer
        forward_topics(system, peer)  # topics and names are the parent's:
        forward_names(system, peer)  # one set per system
        host = await system.spawn(Host, peer, name="host")
        peer.signal("ready", Ready(os.getpid(), host))
        # The parent gone, or it closed the connection: stop everything.
        with contextlib.suppress(ConnectionLost, Silent, AuthenticationError):
            await peer.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actors._child")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--by-value", action="append", default=[])
    parser.add_argument("--pdeathsig", action="store_true")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid, args.pdeathsig)
    # Ctrl-C in a terminal reaches the whole process group: the parent
    # decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in args.by_value:
        try:
            import cloudpickle

            cloudpickle.register_pickle_by_value(importlib.import_module(name))
        except ImportError:
            pass
    anyio.run(_serve, args.fd, backend=args.backend)


if __name__ == "__main__":
    main()
