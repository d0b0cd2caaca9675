"""``TestProbe``: an actor that records what it is sent, for assertions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio

from .._actor import Actor
from .._channel import Channel
from .._ref import ActorRef
from .._system import ActorSystem

_NOTHING = object()


class _ProbeActor(Actor):
    def __init__(self, inbox: Channel[Any], probe: TestProbe) -> None:
        self._inbox = inbox
        self._probe = probe

    async def receive(self, message: Any) -> Any:
        self._inbox.send_nowait(message)
        reply = self._probe.reply
        return reply(message) if callable(reply) else reply


class TestProbe:
    """A real actor that records every message it gets, with expectations.

    Start one with ``await TestProbe.start(system)``; hand ``probe.ref`` to the
    actors under test, or make it a watcher with ``probe.watch(ref)``. Asks to
    the probe are answered with ``probe.reply`` (a value, or a function of the
    message; default ``None``).

    Examples:
        >>> import actors
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         probe = await TestProbe.start(system)
        ...         await probe.ref.tell("ping")
        ...         return await probe.expect("ping")
        >>> actors.run(main)
        'ping'
    """

    __test__ = False  # not a pytest test class

    def __init__(self, system: ActorSystem, inbox: Channel[Any], ref: ActorRef) -> None:
        self.system = system
        self.ref = ref
        self.reply: Any = None
        self._inbox = inbox

    @classmethod
    async def start(cls, system: ActorSystem, name: str | None = None) -> TestProbe:
        """Spawn a probe actor in ``system`` (top level, named ``name``)."""
        inbox: Channel[Any] = Channel(math.inf)
        probe = cls.__new__(cls)
        ref = await system.spawn(_ProbeActor, inbox, probe, name=name or None)
        TestProbe.__init__(probe, system, inbox, ref)
        return probe

    def __repr__(self) -> str:
        return f"<TestProbe {self.ref.path} {len(self._inbox)} unread>"

    def watch(self, ref: ActorRef) -> None:
        """Record ``Terminated(ref, reason)`` when ``ref`` stops."""
        self.system._watch(ref, self.ref)

    async def receive(self, timeout: float = 3.0) -> Any:
        """The next message, waiting up to ``timeout`` seconds.

        Raises:
            AssertionError: nothing came in time.

        Cancellation: atomic; a cancelled receive takes nothing.
        """
        with anyio.move_on_after(timeout):
            return await self._inbox.receive()
        raise AssertionError(f"{self.ref.path} received nothing within {timeout} s")

    async def expect(self, expected: Any, timeout: float = 3.0) -> Any:
        """Assert that the next message matches ``expected``; return it.

        ``expected`` is a class (the message must be an instance), a predicate
        (called with the message, must return true), or a value (compared with
        ``==``).

        Raises:
            AssertionError: another message came first, or none in time.

        Cancellation: atomic; a cancelled expect takes nothing.
        """
        message = await self.receive(timeout)
        if not _matches(expected, message):
            raise AssertionError(f"{self.ref.path} expected {_describe(expected)}, got {message!r}")
        return message

    async def expect_no_message(self, within: float = 0.1) -> None:
        """Assert that nothing arrives for ``within`` seconds.

        Raises:
            AssertionError: a message arrived.

        Cancellation: takes nothing.
        """
        with anyio.move_on_after(within):
            message = await self._inbox.receive()
            raise AssertionError(f"{self.ref.path} expected no message, got {message!r}")

    async def receive_n(self, n: int, timeout: float = 3.0) -> list[Any]:
        """The next ``n`` messages, all within ``timeout`` seconds in total.

        Raises:
            AssertionError: fewer than ``n`` came in time.

        Cancellation: atomic; the messages taken so far go back, first in
        line, as they do when too few came in time.
        """
        got: list[Any] = []
        try:
            with anyio.move_on_after(timeout):
                while len(got) < n:
                    got.append(await self._inbox.receive())
                return got
        except BaseException:
            self._give_back(got)
            raise
        self._give_back(got)
        raise AssertionError(
            f"{self.ref.path} received {len(got)} of {n} messages within {timeout} s: {got!r}"
        )

    def _give_back(self, messages: list[Any]) -> None:
        for message in reversed(messages):
            self._inbox._put_back(message)


def _matches(expected: Any, message: Any) -> bool:
    if isinstance(expected, type):
        return isinstance(message, expected)
    if callable(expected):
        return bool(expected(message))
    return bool(expected == message)


def _describe(expected: Any) -> str:
    if isinstance(expected, type):
        return f"an instance of {expected.__qualname__}"
    if callable(expected):
        return f"a message satisfying {getattr(expected, '__qualname__', expected)!r}"
    return repr(expected)


Predicate = Callable[[Any], bool]
