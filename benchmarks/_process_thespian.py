"""thespian's ``multiprocTCPBase`` across processes, for ``benchmarks.process``.

Each thespian actor runs in a process of its own, started by an admin
process, and messages travel over TCP. The caller uses the system from
outside, as this process uses an actor in a child: ``tell`` a sink ``n``
messages and ``ask`` it for its count as the barrier, or ``ask`` an echo
actor ``n`` times. The actor classes are importable by name, as thespian's
children need. Only imported where thespian is installed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from thespian.actors import Actor, ActorSystem

from ._messages import Order

BASE = "multiprocTCPBase"
#: thespian's logger process: warnings and worse only, to standard error.
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
#: How long an ``ask`` may wait, in seconds, before the run is called lost.
ASK_TIMEOUT = 60.0


class Sink(Actor):  # type: ignore[misc]  # thespian ships no types
    """Counts ``Order`` messages; answers ``"count"`` with the count."""

    count = 0

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if type(message) is Order:
            self.count += 1
        elif message == "count":
            self.send(sender, self.count)


class Echo(Actor):  # type: ignore[misc]
    """Sends every ``Order`` back."""

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if type(message) is Order:
            self.send(sender, message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def system() -> Iterator[Any]:
    """A ``multiprocTCPBase`` system on a free admin port, shut down on exit
    (which ends its admin and every actor process)."""
    # A port of its own: another system on the default port would be joined.
    actors = ActorSystem(
        BASE, capabilities={"Admin Port": _free_port()}, logDefs=LOGGING, transientUnique=True
    )
    try:
        yield actors
    finally:
        actors.shutdown()


def tell_rate(actors: Any, n: int) -> float:
    """Messages per second told to a sink in its own process, then counted."""
    sink = actors.createActor(Sink)
    try:
        message = Order(12345, "ABC-123", 3, 9.99)
        tell = actors.tell
        start = time.perf_counter()
        for _ in range(n):
            tell(sink, message)
        counted = actors.ask(sink, "count", ASK_TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        actors.tell(sink, _exit_request())
    if counted != n:
        raise RuntimeError(f"thespian lost messages: {counted} counted, not {n}")
    return n / elapsed


def ask_us(actors: Any, n: int) -> float:
    """µs per ``ask`` round trip to an echo actor in its own process."""
    echo = actors.createActor(Echo)
    try:
        message = Order(12345, "ABC-123", 3, 9.99)
        ask = actors.ask
        start = time.perf_counter()
        for _ in range(n):
            if ask(echo, message, ASK_TIMEOUT) != message:
                raise RuntimeError("thespian echo answered wrong")
        return (time.perf_counter() - start) / n * 1e6
    finally:
        actors.tell(echo, _exit_request())


def _exit_request() -> Any:
    from thespian.actors import ActorExitRequest

    return ActorExitRequest()
