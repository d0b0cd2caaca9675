"""Actors and helpers for the process tests: importable by the children."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import anyio

import actors


class Echo(actors.Actor):
    """Answers ``("echo", m)``; ``"pid"`` with its pid; raises on ``"boom"``."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.seen: list[Any] = []

    async def receive(self, message: Any) -> Any:
        match message:
            case "pid":
                return os.getpid()
            case "boom":
                raise ValueError("boom")
            case "seen":
                return self.seen
            case ("sleep", seconds):
                await anyio.sleep(seconds)
                return "slept"
            case "spin":
                while True:  # holds the GIL and the event loop: no heartbeats
                    pass
            case ("tell", ref, value):
                await ref.tell(value)
                return None
            case ("ask", ref, value):
                return await ref.ask(value)
            case _:
                self.seen.append(message)
                return ("echo", self.tag, message)


class FailsToStart(actors.Actor):
    async def on_start(self) -> None:
        raise RuntimeError("no database here")


class Handlers(actors.Actor):
    """Counts the handlers running; each sleeps as asked."""

    def __init__(self) -> None:
        self.running = 0

    async def receive(self, message: Any) -> Any:
        match message:
            case "running":
                return self.running
            case ("sleep", seconds):
                self.running += 1
                try:
                    await anyio.sleep(seconds)
                finally:
                    self.running -= 1
                return seconds


class StartsSlowly(actors.Actor):
    """Tells ``report`` its pid from ``on_start``, which then takes a minute."""

    def __init__(self, report: actors.ActorRef) -> None:
        self.report = report

    async def on_start(self) -> None:
        await self.report.tell(os.getpid())
        await anyio.sleep(60)


class Stubborn(actors.Actor):
    """Its on_stop takes ``seconds``; it records when on_stop ran."""

    def __init__(self, marker: str, seconds: float = 0.0, ignore_term: bool = False) -> None:
        self.marker = marker
        self.seconds = seconds
        if ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    async def receive(self, message: Any) -> Any:
        return os.getpid()

    async def on_stop(self) -> None:
        await anyio.Path(self.marker).write_text("stopped")
        await anyio.sleep(self.seconds)


def _parents() -> dict[int, int]:
    """Every process's parent now (pid to parent pid), read from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def children_of(pid: int, running: bytes = b"actors._child") -> list[int]:
    """Live (not zombie) processes whose parent is ``pid`` and whose command
    line holds ``running``."""
    found = []
    for child, parent in _parents().items():
        if parent != pid:
            continue
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()  # a zombie's is empty
        except OSError:
            continue
        if running in cmdline:
            found.append(child)
    return found


def descendants_of(pid: int) -> set[int]:
    """The processes under ``pid`` now, at any depth (zombies included)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill(pid: int, signum: int = signal.SIGKILL) -> None:
    os.kill(pid, signum)


class Spawner(actors.Actor):
    """Spawns a child: a Spawner in a process of its own (``"spawn"``), or an
    Echo in its own process (``"local"``); answers its ref."""

    async def receive(self, message: Any) -> Any:
        match message:
            case "spawn":
                return await self.context.spawn(Spawner, placement=actors.Subprocess())
            case "local":
                return await self.context.spawn(Echo, "local")
            case "pid":
                return os.getpid()


class Announcer(actors.Actor):
    """Prints its pid when started and a line when it stops (from its process)."""

    async def on_start(self) -> None:
        print(f"child {os.getpid()}", flush=True)

    async def on_stop(self) -> None:
        print("stopped in the child", flush=True)


class Member(actors.Actor):
    """A topic subscriber for the cross-process topic tests.

    Subscribes in ``on_start`` to ``patterns`` (each ``"pattern"`` or
    ``("pattern", group)``) and tells ``report`` ``("started", tag, pid)``;
    every other message it gets is told to ``report`` as ``(tag, message)``.
    Commands (asks) publish, subscribe, unsubscribe, register, unregister,
    whereis, spawn a local ``Member`` here, and tell what it is subscribed
    to.
    """

    def __init__(self, tag: str, report: actors.ActorRef, patterns: Any = ()) -> None:
        self.tag = tag
        self.report = report
        self.patterns = list(patterns)

    async def on_start(self) -> None:
        for entry in self.patterns:
            pattern, group = (entry, None) if isinstance(entry, str) else entry
            self.context.subscribe(pattern, group=group)
        await self.report.tell(("started", self.tag, os.getpid()))

    async def receive(self, message: Any) -> Any:
        match message:
            case ("publish", topic, value):
                try:
                    return await self.context.publish(topic, value)
                except (TypeError, ValueError) as error:
                    return error  # bad input: answered, not a crash
            case ("subscribe", pattern, group):
                try:
                    return self.context.subscribe(pattern, group=group)
                except (TypeError, ValueError) as error:
                    return error
            case ("unsubscribe", pattern, group):
                return self.context.unsubscribe(pattern, group=group)
            case "subscriptions":
                return self.context.system.registry.subscriptions(self.ref)
            case ("spawn", tag, patterns):
                return await self.context.spawn(Member, tag, self.report, patterns)
            case ("spawn process", tag, patterns):
                return await self.context.spawn(
                    Member, tag, self.report, patterns, placement=actors.Subprocess()
                )
            case ("register", name):
                try:
                    return self.context.system.registry.register(name, self.ref)
                except actors.NameTaken:
                    return "taken"
            case ("unregister", name):
                return self.context.system.registry.unregister(name)
            case ("whereis", name):
                return self.context.system.registry.whereis(name)
            case "names":
                return list(self.context.system.registry.names())
            case ("pull", pattern):
                try:
                    async with self.context.system.subscription(pattern):
                        return "subscribed"
                except actors.ActorsError as error:
                    return error
            case "pid":
                return os.getpid()
            case _:
                await self.report.tell((self.tag, message))
                return None


class Producer(actors.Actor):
    """Sends ``range(count)`` into a channel it is given, in a goroutine.

    Each send is tried with ``send_nowait`` first; when that would block it
    tells ``report`` ``("waiting", i)`` and waits with ``send``. After each
    send it tells ``report`` ``("sent", i)``. ``"status"`` answers
    ``(sent, done, error)``.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.done = False
        self.error: BaseException | None = None

    async def receive(self, message: Any) -> Any:
        match message:
            case ("produce", channel, count, close, report):
                self.context.go(self._produce, channel, count, close, report)
            case "status":
                return (self.sent, self.done, self.error)
            case "pid":
                return os.getpid()
            case ("close", channel):
                channel.close()
        return None

    async def _produce(
        self, channel: actors.Channel[int], count: int, close: bool, report: Any
    ) -> None:
        try:
            for i in range(count):
                if report is None:
                    await channel.send(i)
                else:
                    try:
                        channel.send_nowait(i)
                    except actors.WouldBlock:
                        await report.tell(("waiting", i))
                        await channel.send(i)
                    await report.tell(("sent", i))
                self.sent += 1
            if close:
                channel.close()
        except Exception as error:
            self.error = error
            if report is not None:
                await report.tell(("error", error))
        self.done = True


class Consumer(actors.Actor):
    """Receives from a channel it is given until it is drained, in a goroutine,
    then tells ``report`` ``("consumed", count, error)``; with ``"consume each"``
    also ``("got", value)`` for each value. ``"collected"`` answers ``(values,
    done, error)``."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.done = False
        self.error: BaseException | None = None

    async def receive(self, message: Any) -> Any:
        match message:
            case ("consume", channel, report):
                self.context.go(self._consume, channel, report, False)
            case ("consume each", channel, report):
                self.context.go(self._consume, channel, report, True)
            case "collected":
                return (self.values, self.done, self.error)
            case "pid":
                return os.getpid()
        return None

    async def _consume(self, channel: actors.Channel[Any], report: Any, each: bool) -> None:
        try:
            async for value in channel:
                self.values.append(value)
                if each:
                    await report.tell(("got", value))
        except Exception as error:
            self.error = error
        self.done = True
        if report is not None:
            await report.tell(("consumed", len(self.values), self.error))


class Source(actors.Actor):
    """Owns a ``Channel(capacity)``: ``"channel"`` hands it out (``("fresh",
    capacity)`` a new one), ``("emit", v)``
    sends ``v`` into it, ``"close"`` closes it, ``"stats"`` answers its
    statistics, ``"drain"`` takes and answers what it holds, ``("produce",
    n)`` sends ``range(n)`` then closes it."""

    def __init__(self, capacity: int = 4) -> None:
        self.channel = actors.Channel[Any](capacity)

    async def receive(self, message: Any) -> Any:
        match message:
            case "channel":
                return self.channel
            case ("fresh", capacity):
                self.channel = actors.Channel[Any](capacity)
                return self.channel
            case "pid":
                return os.getpid()
            case ("emit", value):
                await self.channel.send(value)
            case "close":
                self.channel.close()
            case "stats":
                return self.channel.statistics()
            case ("produce", count):
                self.context.go(self._produce, count)
            case "drain":
                values = []
                while True:
                    try:
                        values.append(self.channel.receive_nowait())
                    except (actors.WouldBlock, actors.ChannelDrained):
                        return values
        return None

    async def _produce(self, count: int) -> None:
        for i in range(count):
            await self.channel.send(i)
        self.channel.close()


class Pusher(actors.Actor):
    """Sends ``values`` into the channel it was spawned with, then closes it."""

    def __init__(self, channel: actors.Channel[Any], values: list[Any]) -> None:
        self.channel = channel
        self.values = values

    async def on_start(self) -> None:
        self.context.go(self._push)  # spawn returns after on_start

    async def _push(self) -> None:
        for value in self.values:
            await self.channel.send(value)
        self.channel.close()
