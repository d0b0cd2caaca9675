"""The Python actor peers on the suite's workloads: pykka and thespian.

Both come with the ``bench`` extra (``pip install -e '.[bench]'``); without
them :func:`missing` says so and the suite shows them as "not installed".
Neither runs on an event loop: pykka's ``ThreadingActor`` is one OS thread
per actor, and thespian's ``simpleSystemBase`` runs every actor in the calling
thread, one message at a time, while ``tell`` or ``ask`` is being called.

Each workload is written as a user of that peer would write it, at its best:

- one-way: a source actor tells a sink ``n`` messages; point-to-point: it
  deals them round-robin to 4 consumers (neither peer has competing consumers
  on a shared queue); fan-out: it tells each of ``n`` messages to each of 100
  subscribers (neither has topics).
- thespian's ``simpleSystemBase`` keeps its pending sends in a list that it
  pops from the front, so one handler that sends 200,000 messages makes the
  run quadratic. The source therefore sends at most 1,000 messages per
  handler call and then sends itself a message to go on, which keeps the
  queue short, as a bounded mailbox does for us.
- ask: the caller asks an echo actor ``n`` times, waiting for each answer.
- idle: actors started and then stopped, in a fresh interpreter
  (``python -m benchmarks.peers --child PEER N`` prints JSON). pykka's
  actors are threads, so the suite measures fewer of them
  (:data:`PYKKA_IDLE`) and reports per-actor figures.
- restart under a supervisor: neither has one (see :data:`NOT_SUPPORTED`).

Every function returns its figure and checks that nothing was lost.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ._util import idle_figures
from .actors import _rss

PEERS = ("pykka", "thespian")
#: Where each peer runs, for the table's backend column.
WHERE = {"pykka": "threads", "thespian": "in-process"}
LABELS = {"pykka": "pykka ThreadingActor", "thespian": "thespian simpleSystemBase"}
#: pykka starts an OS thread per actor (about 700 µs and 22 KB resident
#: each). 100,000 cannot start where ``kernel.pid_max`` is 32,768, the Linux
#: default, as each thread takes an id from it, and would take over a minute a
#: run where they can; so it starts this many, for per-actor figures.
PYKKA_IDLE = 2000
#: Deliveries a thespian source makes per handler call (see the docstring).
THESPIAN_BATCH = 1000
#: Workloads a peer has no way to run, with the reason the table shows.
NOT_SUPPORTED = {
    "restart": {
        "pykka": "no supervision: a failed actor stays stopped",
        "thespian": "no restarting supervisor: a failed message comes back as PoisonMessage",
    },
    "matching": {
        "pykka": "no topics or pattern subscriptions",
        "thespian": "no topics or pattern subscriptions",
    },
}


def missing(peer: str) -> str | None:
    """Why ``peer`` cannot be measured here, or ``None`` when it can."""
    module = "thespian.actors" if peer == "thespian" else peer
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return None if found else "not installed (pip install -e '.[bench]')"


class _Latch:
    """Set once ``count_down`` has been called ``n`` times, from any thread."""

    def __init__(self, n: int) -> None:
        self._left = n
        self._lock = threading.Lock()
        self.event = threading.Event()

    def count_down(self) -> None:
        with self._lock:
            self._left -= 1
            if not self._left:
                self.event.set()


# -- pykka ----------------------------------------------------------------------


def _pykka_classes() -> tuple[type[Any], type[Any], type[Any]]:
    import pykka

    class Counter(pykka.ThreadingActor):
        def __init__(self, n: int, latch: _Latch) -> None:
            super().__init__()
            self.left = n
            self.latch = latch

        def on_receive(self, message: Any) -> None:
            self.left -= 1
            if not self.left:
                self.latch.count_down()

    class Source(pykka.ThreadingActor):
        def __init__(self, targets: list[Any], n: int, each: bool) -> None:
            super().__init__()
            self.tells = [target.tell for target in targets]
            self.n = n
            self.each = each

        def on_receive(self, message: Any) -> None:
            tells = self.tells
            if self.each:
                for i in range(self.n):
                    for tell in tells:
                        tell(i)
            else:
                k = len(tells)
                for i in range(self.n):
                    tells[i % k](i)

    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message

    return Counter, Source, Echo


def _pykka_deliver(n: int, targets: int, each: bool) -> float:
    """Seconds for a pykka source to deliver ``n`` messages to ``targets`` counters."""
    import pykka

    counter, source, _ = _pykka_classes()
    per_target = n if each else n // targets
    latch = _Latch(targets)
    refs = [counter.start(per_target, latch) for _ in range(targets)]
    sender = source.start(refs, n if each else per_target * targets, each)
    try:
        start = time.perf_counter()
        sender.tell("go")
        if not latch.event.wait(timeout=600):
            raise RuntimeError("pykka lost messages")
        return time.perf_counter() - start
    finally:
        pykka.ActorRegistry.stop_all()


def pykka_one_way(n: int) -> float:
    """Messages per second from one pykka actor to another."""
    return n / _pykka_deliver(n, 1, each=False)


def pykka_fan_out(n: int, subscribers: int = 100) -> float:
    """Deliveries per second: ``n`` messages to each of ``subscribers`` actors."""
    return n * subscribers / _pykka_deliver(n, subscribers, each=True)


def pykka_point_to_point(n: int, consumers: int = 4) -> float:
    """Messages per second dealt round-robin to ``consumers`` actors."""
    return n // consumers * consumers / _pykka_deliver(n, consumers, each=False)


def pykka_ask(n: int) -> float:
    """µs per ``ask`` round trip to an echo actor."""
    import pykka

    _, _, echo = _pykka_classes()
    ref = echo.start()
    try:
        ask = ref.ask
        start = time.perf_counter()
        for i in range(n):
            if ask(i) != i:
                raise RuntimeError("pykka echo answered wrong")
        return (time.perf_counter() - start) / n * 1e6
    finally:
        pykka.ActorRegistry.stop_all()


def _pykka_idle(n: int) -> dict[str, float]:
    import pykka

    class Idle(pykka.ThreadingActor):
        pass

    before = _rss()
    start = time.perf_counter()
    refs = [Idle.start() for _ in range(n)]
    spawned = time.perf_counter()
    after = _rss()
    futures = [ref.stop(block=False) for ref in refs]
    for future in futures:
        future.get()
    stopped = time.perf_counter()
    return idle_figures(n, before, after, start, spawned, stopped)


# -- thespian -------------------------------------------------------------------


def _thespian_classes() -> tuple[type[Any], type[Any], type[Any]]:
    from thespian.actors import Actor

    class Counter(Actor):
        """Counts; answers ``("report", to)`` by sending its count to ``to``."""

        count = 0

        def receiveMessage(self, message: Any, sender: Any) -> None:
            if type(message) is int:
                self.count += 1
            elif isinstance(message, tuple) and message[0] == "report":
                self.send(message[1], self.count)

    class Source(Actor):
        """On ``(targets, n, each)`` delivers, then answers the total counted."""

        def receiveMessage(self, message: Any, sender: Any) -> None:
            if isinstance(message, tuple):
                self.targets, self.n, self.each = message
                self.asker, self.i, self.reports, self.total = sender, 0, 0, 0
                self._more()
            elif message == "more":
                self._more()
            elif type(message) is int:  # a counter's report
                self.total += message
                self.reports += 1
                if self.reports == len(self.targets):
                    self.send(self.asker, self.total)

        def _more(self) -> None:
            send, targets, k = self.send, self.targets, len(self.targets)
            if self.each:
                stop = min(self.n, self.i + max(THESPIAN_BATCH // k, 1))
                for i in range(self.i, stop):
                    for target in targets:
                        send(target, i)
            else:
                stop = min(self.n, self.i + THESPIAN_BATCH)
                for i in range(self.i, stop):
                    send(targets[i % k], i)
            self.i = stop
            if stop < self.n:
                send(self.myAddress, "more")
            else:
                for target in targets:
                    send(target, ("report", self.myAddress))

    class Echo(Actor):
        def receiveMessage(self, message: Any, sender: Any) -> None:
            if type(message) is int:
                self.send(sender, message)

    return Counter, Source, Echo


def _thespian_system() -> Any:
    from thespian.actors import ActorSystem

    # logDefs=False: leave the process's logging configuration alone.
    return ActorSystem("simpleSystemBase", logDefs=False)


def _thespian_deliver(n: int, targets: int, each: bool) -> float:
    counter, source, _ = _thespian_classes()
    system = _thespian_system()
    try:
        counters = [system.createActor(counter) for _ in range(targets)]
        sender = system.createActor(source)
        total = n if each else n // targets * targets
        start = time.perf_counter()
        counted = system.ask(sender, (counters, total, each))
        elapsed = time.perf_counter() - start
    finally:
        system.shutdown()
    expected = total * targets if each else total
    if counted != expected:
        raise RuntimeError(f"thespian lost messages: {counted} counted, not {expected}")
    return elapsed


def thespian_one_way(n: int) -> float:
    """Messages per second from one thespian actor to another."""
    return n / _thespian_deliver(n, 1, each=False)


def thespian_fan_out(n: int, subscribers: int = 100) -> float:
    """Deliveries per second: ``n`` messages to each of ``subscribers`` actors."""
    return n * subscribers / _thespian_deliver(n, subscribers, each=True)


def thespian_point_to_point(n: int, consumers: int = 4) -> float:
    """Messages per second dealt round-robin to ``consumers`` actors."""
    return n // consumers * consumers / _thespian_deliver(n, consumers, each=False)


def thespian_ask(n: int) -> float:
    """µs per ``ask`` round trip to an echo actor, from outside the system."""
    _, _, echo = _thespian_classes()
    system = _thespian_system()
    try:
        ref = system.createActor(echo)
        ask = system.ask
        start = time.perf_counter()
        for i in range(n):
            if ask(ref, i) != i:
                raise RuntimeError("thespian echo answered wrong")
        return (time.perf_counter() - start) / n * 1e6
    finally:
        system.shutdown()


def _thespian_idle(n: int) -> dict[str, float]:
    from thespian.actors import Actor, ActorExitRequest

    class Idle(Actor):
        def receiveMessage(self, message: Any, sender: Any) -> None:
            pass

    system = _thespian_system()
    try:
        before = _rss()
        start = time.perf_counter()
        refs = [system.createActor(Idle) for _ in range(n)]
        spawned = time.perf_counter()
        after = _rss()
        for ref in refs:
            system.tell(ref, ActorExitRequest())
        stopped = time.perf_counter()
    finally:
        system.shutdown()
    return idle_figures(n, before, after, start, spawned, stopped)


# -- idle actors in a fresh interpreter -----------------------------------------


_IDLE: dict[str, Callable[[int], dict[str, float]]] = {
    "pykka": _pykka_idle,
    "thespian": _thespian_idle,
}


def main(argv: list[str]) -> None:
    """``--child PEER N``: one idle-actor measurement, printed as JSON."""
    if len(argv) != 3 or argv[0] != "--child" or argv[1] not in _IDLE:
        raise SystemExit("usage: python -m benchmarks.peers --child {pykka,thespian} N")
    gc.collect()
    print(json.dumps(_IDLE[argv[1]](int(argv[2]))))


if __name__ == "__main__":
    main(sys.argv[1:])
