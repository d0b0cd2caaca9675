"""Testing actors with pytest: ``TestProbe``, the ``actor_system`` fixture and virtual time.

This example shows:

- the ``actor_system`` fixture (installed with the package as a pytest plugin),
  which stops every actor at teardown and fails the test if one failed;
- ``TestProbe``: a ref to hand to the actor under test, with ``expect``,
  ``expect_no_message`` and ``receive_n`` to assert on what it was sent;
- ``probe.watch(ref)`` to assert that an actor is gone (``Terminated``);
- virtual time: timers of a minute run in milliseconds, on asyncio and trio.

It is a pytest file, not a script: run it with
``python -m pytest examples/12_testing_actors.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest

import actors.testing
from actors import Actor, ActorRef, ActorSystem, Terminated
from actors.testing import TestProbe

# Every test below is an async test run by anyio's pytest plugin.
pytestmark = pytest.mark.anyio


# --8<-- [start:backends]
@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each test on both backends, on a virtual clock that jumps to the
    next timer whenever every task is waiting."""
    return actors.testing.virtual_time(request.param)


# --8<-- [end:backends]


# -- the actors under test -----------------------------------------------------


# --8<-- [start:squarer]
@dataclass(frozen=True)
class Square:
    n: int
    reply_to: ActorRef


@dataclass(frozen=True)
class Squared:
    n: int
    square: int


class Squarer(Actor):
    """Answers ``Square(n, reply_to)`` by telling ``reply_to`` the square."""

    async def receive(self, message: object) -> None:
        match message:
            case Square(n, reply_to):
                await reply_to.tell(Squared(n, n * n))


# --8<-- [end:squarer]
# --8<-- [start:reminder]
class Reminder(Actor):
    """Tells ``whom`` ``what`` after ``delay`` seconds, then every ``every`` seconds."""

    def __init__(self, whom: ActorRef, what: str, delay: float, every: float) -> None:
        self.whom = whom
        self.what = what
        self.delay = delay
        self.every = every

    async def on_start(self) -> None:
        self.context.schedule_every(self.every, "remind", initial_delay=self.delay)

    async def receive(self, message: object) -> None:
        if message == "remind":
            await self.whom.tell(self.what)


# --8<-- [end:reminder]


# -- the tests -----------------------------------------------------------------


# --8<-- [start:test-probe]
async def test_ask_and_tell(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    squarer = await actor_system.spawn(Squarer)

    await squarer.tell(Square(3, probe.ref))
    await squarer.tell(Square(4, probe.ref))

    await probe.expect(Squared(3, 9))  # a value: compared with ==
    await probe.expect(lambda m: m.square == 16)  # a predicate
    await probe.expect_no_message(within=1.0)


# --8<-- [end:test-probe]
# --8<-- [start:test-virtual-time]
async def test_a_minute_of_reminders_in_milliseconds(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    start = anyio.current_time()
    await actor_system.spawn(Reminder, probe.ref, "stretch", delay=60, every=30)

    # Nothing for the first 59 seconds, then one reminder every 30 seconds.
    await probe.expect_no_message(within=59)
    assert await probe.receive_n(3, timeout=65) == ["stretch"] * 3
    assert anyio.current_time() - start == pytest.approx(120)


# --8<-- [end:test-virtual-time]
# --8<-- [start:test-watch]
async def test_a_stopped_actor_is_terminated(actor_system: ActorSystem) -> None:
    probe = await TestProbe.start(actor_system)
    squarer = await actor_system.spawn(Squarer)
    probe.watch(squarer)

    await squarer.stop()

    notice = await probe.expect(Terminated)  # a class: isinstance
    assert notice == Terminated(squarer, None)  # reason None: a normal stop


# --8<-- [end:test-watch]
