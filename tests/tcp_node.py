"""Another actor system for the TCP tests, in a process of its own.

    python tests/tcp_node.py --backend trio --parent-pid P --name far --cookie PATH
        (--listen | --connect HOST:PORT) [--heartbeat S]

It runs an ``Echo`` registered as ``echo`` and subscribed to ``news``, a
``Channels`` registered as ``channels``, and a ``Control`` registered as
``control`` (``"exit"`` ends the node in order). Listening, it prints
``listening HOST:PORT``; connecting, it joins, tells the other side's
``probe`` ``("joined", echo ref)`` and prints ``joined NODE``. It ends on
``"exit"``, when its connection ends (connecting), or with its parent.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_kit import Echo

import actors


def die_with_parent(parent_pid: int) -> None:
    """Killed when the test process is gone (reparented), even mid-test."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


class Channels(actors.Actor):
    """``("fill", channel, n)`` sends ``0 .. n-1`` into ``channel`` and closes
    it; ``("make", capacity)`` answers a new channel of this system."""

    def __init__(self) -> None:
        self.made: list[actors.Channel[Any]] = []

    async def receive(self, message: Any) -> Any:
        match message:
            case ("fill", channel, count):
                for i in range(count):
                    await channel.send(i)
                channel.close()
            case ("make", capacity):
                self.made.append(actors.Channel(capacity))
                return self.made[-1]
        return None


class Control(actors.Actor):
    def __init__(self, done: anyio.Event) -> None:
        self.done = done

    async def receive(self, message: Any) -> Any:
        if message == "exit":
            self.done.set()
        return os.getpid()


async def main(args: argparse.Namespace) -> None:
    done = anyio.Event()
    async with actors.ActorSystem(args.name) as system:
        echo = await system.spawn(Echo, args.name, name="echo")
        system.registry.register("echo", echo)
        system.registry.subscribe("news", echo)
        control = await system.spawn(Control, done, name="control")
        system.registry.register("control", control)
        channels = await system.spawn(Channels, name="channels")
        system.registry.register("channels", channels)
        options: dict[str, Any] = {"cookie": args.cookie, "heartbeat": args.heartbeat}
        if args.listen:
            listener = await system.listen(**options)
            print("listening", listener, flush=True)
            await done.wait()
            return
        async with await system.connect(args.connect, **options) as remote:
            probe = await remote.whereis("probe")
            assert probe is not None
            await probe.tell(("joined", echo))
            print("joined", remote.node, flush=True)
            async with anyio.create_task_group() as tg:

                async def until_lost() -> None:
                    await probe.join()
                    tg.cancel_scope.cancel()

                tg.start_soon(until_lost)
                await done.wait()
                tg.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("asyncio", "trio"), required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--listen", action="store_true")
    mode.add_argument("--connect")
    arguments = parser.parse_args()
    die_with_parent(arguments.parent_pid)
    anyio.run(main, arguments, backend=arguments.backend)
