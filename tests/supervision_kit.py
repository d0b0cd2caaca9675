"""Actors and helpers shared by the supervision tests.

Workers report their lifecycle to a ``TestProbe`` as ``("start", label)``,
``("stop", label)`` and so on; every report is a synchronous ``tell_nowait``
from one event loop thread, so the probe sees them in the order they happened.
"""

from __future__ import annotations

from typing import Any

import anyio

from actors import Actor, ActorRef
from actors.testing import TestProbe
from supervision import ChildInfo, ChildSpec, which_children


class Boom(Exception):
    """The failure the tests inject."""


class Worker(Actor):
    """Reports ``("start", label)`` and ``("stop", label)``; obeys commands.

    Args:
        probe: where to report.
        label: its name in the reports.
        fail_start: labels whose next starts fail, with how many failures are
            left (shared and consumed, so a test controls later incarnations).
        stop_for: seconds its ``on_stop`` takes; it reports ``("stopped",
            label)`` if it got to the end.
        timed: report ``(event, label, time)`` instead.
    """

    def __init__(
        self,
        probe: ActorRef,
        label: str,
        *,
        fail_start: dict[str, int] | None = None,
        stop_for: float = 0.0,
        timed: bool = False,
    ) -> None:
        self.probe = probe
        self.label = label
        self.fail_start = fail_start
        self.stop_for = stop_for
        self.timed = timed

    def report(self, event: str) -> None:
        if self.timed:
            self.probe.tell_nowait((event, self.label, anyio.current_time()))
        else:
            self.probe.tell_nowait((event, self.label))

    async def on_start(self) -> None:
        if self.fail_start and self.fail_start.get(self.label, 0) > 0:
            self.fail_start[self.label] -= 1
            self.report("start-failed")
            raise Boom(f"{self.label} cannot start")
        self.report("start")

    async def receive(self, message: Any) -> Any:
        match message:
            case "crash":
                raise Boom(f"{self.label} crashed")
            case "stop":
                await self.context.stop()
            case "ping":
                return ("pong", self.label)
        return None

    async def on_stop(self) -> None:
        self.report("stop")
        if self.stop_for:
            await anyio.sleep(self.stop_for)
            self.report("stopped")


def worker(probe: TestProbe, label: str, **options: Any) -> ChildSpec:
    """A ``ChildSpec`` of a :class:`Worker` named ``label``.

    ``options`` are split: the spec's own keywords go to the spec, the rest to
    the worker.
    """
    spec_keys = {"restart", "shutdown", "significant", "mailbox", "backoff"}
    spec_options = {k: v for k, v in options.items() if k in spec_keys}
    worker_options = {k: v for k, v in options.items() if k not in spec_keys}
    return ChildSpec(Worker, probe.ref, label, name=label, **spec_options, **worker_options)


async def child(sup: ActorRef, name: str) -> ChildInfo:
    """The ``ChildInfo`` of ``name`` under ``sup``."""
    for info in await which_children(sup):
        if info.name == name:
            return info
    raise AssertionError(f"{sup.path} has no child {name!r}")


async def ref_of(sup: ActorRef, name: str) -> ActorRef:
    """The current incarnation of ``name`` under ``sup`` (it must be running)."""
    info = await child(sup, name)
    assert info.ref is not None, f"{name} is {info.state}"
    return info.ref


async def expect_events(probe: TestProbe, *events: Any, timeout: float = 3.0) -> None:
    """The probe's next messages are exactly ``events``, in order, all within
    ``timeout`` (virtual) seconds."""
    got = await probe.receive_n(len(events), timeout=timeout)
    assert got == list(events)
