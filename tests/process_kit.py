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


def children_of(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid`` and that run
    ``actors._child``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and b"actors._child" in cmdline:
            found.append(int(entry.name))
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
