"""Model-based test: a Channel against a plain reference model of Go's channels.

Hypothesis drives a :class:`Channel` and :class:`GoModel` (queues and a buffer,
no concurrency, written from Go's ``runtime/chan.go`` rules) through the same
random operations: non-blocking sends and receives (plain and as a select with
a default), blocking sends and receives started as tasks (plain and as a select
with a second, never-ready case), close, and cancelling a task (alone, or
followed in the same instant by a send or receive that must not pair with the
cancelled task). After every step both must agree on every task's outcome,
the buffer and the queues.

The event loop runs in a blocking portal's thread, one per example, so the
same machine runs on asyncio and trio. Each step runs inside the loop and then
waits with ``anyio.wait_all_tasks_blocked()`` until every task it woke or
started has finished or parked again, so a step is atomic and the run is
deterministic: parked tasks are queued in the order the steps started them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from actors import (
    CLOSED,
    Channel,
    ChannelDrained,
    ChannelStatistics,
    SendOnClosed,
    WouldBlock,
    select,
)

#: How a finished task ended: ("sent",), ("received", value), ("drained",),
#: ("send_on_closed",), ("cancelled",); None while it waits.
Outcome = tuple[object, ...]
NowaitResult = tuple[object, ...]
How = Literal["plain", "select"]

hows = st.sampled_from(["plain", "select"])


class GoModel:
    """Go channel semantics as plain data: a buffer and two FIFO queues."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.buffer: deque[int] = deque()
        self.senders: deque[tuple[int, int]] = deque()  # (task, value)
        self.receivers: deque[int] = deque()  # task
        self.closed = False
        self.outcomes: dict[int, Outcome | None] = {}

    def send_nowait(self, value: int) -> NowaitResult:
        if self.closed:
            return ("send_on_closed",)
        if self.receivers:
            self.outcomes[self.receivers.popleft()] = ("received", value)
        elif len(self.buffer) < self.capacity:
            self.buffer.append(value)
        else:
            return ("would_block",)
        return ("sent",)

    def receive_nowait(self) -> NowaitResult:
        if self.buffer:
            value = self.buffer.popleft()
            if self.senders:  # the buffer was full: the first sender moves in
                task, waiting_value = self.senders.popleft()
                self.buffer.append(waiting_value)
                self.outcomes[task] = ("sent",)
            return ("received", value)
        if self.senders:
            task, value = self.senders.popleft()
            self.outcomes[task] = ("sent",)
            return ("received", value)
        if self.closed:
            return ("drained",)
        return ("would_block",)

    def start_send(self, task: int, value: int) -> None:
        result = self.send_nowait(value)
        if result == ("would_block",):
            self.outcomes[task] = None
            self.senders.append((task, value))
        else:
            self.outcomes[task] = result

    def start_receive(self, task: int) -> None:
        result = self.receive_nowait()
        if result == ("would_block",):
            self.outcomes[task] = None
            self.receivers.append(task)
        else:
            self.outcomes[task] = result

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while self.receivers:
            self.outcomes[self.receivers.popleft()] = ("drained",)
        while self.senders:
            self.outcomes[self.senders.popleft()[0]] = ("send_on_closed",)

    def cancel(self, task: int) -> None:
        if self.outcomes[task] is not None:
            return  # already finished: cancelling it changes nothing
        self.outcomes[task] = ("cancelled",)
        self.receivers = deque(t for t in self.receivers if t != task)
        self.senders = deque(s for s in self.senders if s[0] != task)


class ChannelMachine(RuleBasedStateMachine):
    """Runs each operation on both the real channel and the model."""

    #: The anyio backend and its options, set by a subclass per test.
    backend: tuple[str, dict[str, Any]]

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] = (
            anyio.from_thread.start_blocking_portal(*self.backend)
        )
        self.portal = self._portal_cm.__enter__()
        self._tg_cm = self.portal.wrap_async_context_manager(
            self.portal.call(self._make_task_group)
        )
        self.tg: anyio.abc.TaskGroup = self._tg_cm.__enter__()
        self.model = GoModel(0)
        self.ch = Channel[int](0)
        # A channel nobody sends to or receives from: a parked select keeps
        # one receive case on it, which must be withdrawn when it finishes.
        self.idle = Channel[int]()
        self.outcomes: dict[int, Outcome] = {}
        self.scopes: list[anyio.CancelScope] = []
        self.parked_selects: set[int] = set()
        self.next_value = 0
        self.snapshot: tuple[Any, ...] = ()
        self._step(self._nothing)

    def teardown(self) -> None:
        try:
            self.portal.call(self._cancel_everything)
            self._tg_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)

    @staticmethod
    async def _make_task_group() -> anyio.abc.TaskGroup:
        return anyio.create_task_group()  # made in the loop: it needs the backend

    async def _cancel_everything(self) -> None:
        for scope in self.scopes:
            scope.cancel()

    # -- running a step inside the event loop --------------------------------

    def _step(self, fn: Callable[[], Awaitable[NowaitResult]]) -> NowaitResult:
        """Run ``fn`` in the loop, let every task settle, and take a snapshot
        of the real side for the invariant (one trip to the loop per step)."""

        async def step() -> NowaitResult:
            result = await fn()
            # A task this step starts may wake another one in turn. anyio's
            # wait_all_tasks_blocked polls every 0.1 s on asyncio when it finds
            # a task woken but not yet run, so let such chains play out first.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            await anyio.wait_all_tasks_blocked()
            self.snapshot = (
                self.ch.statistics(),
                len(self.ch),
                self.idle.statistics(),
                dict(self.outcomes),
            )
            return result

        return self.portal.call(step)

    async def _nothing(self) -> NowaitResult:
        return ()

    def _value(self) -> int:
        self.next_value += 1
        return self.next_value

    # -- the rules ---------------------------------------------------------------

    @initialize(capacity=st.sampled_from([0, 1, 2, 3, math.inf]))
    def make_channel(self, capacity: float) -> None:
        self.model = GoModel(capacity)
        self.ch = Channel[int](capacity)
        self._step(self._nothing)

    @rule(how=hows)
    def send_nowait(self, how: How) -> None:
        value = self._value()

        async def op() -> NowaitResult:
            try:
                if how == "plain":
                    self.ch.send_nowait(value)
                elif await select(self.ch.sending(value), default=True) is None:
                    return ("would_block",)
            except WouldBlock:
                return ("would_block",)
            except SendOnClosed:
                return ("send_on_closed",)
            return ("sent",)

        assert self._step(op) == self.model.send_nowait(value)

    @rule(how=hows)
    def receive_nowait(self, how: How) -> None:
        async def op() -> NowaitResult:
            try:
                if how == "plain":
                    return ("received", self.ch.receive_nowait())
                sel = await select(self.ch.receiving(), default=True)
            except WouldBlock:
                return ("would_block",)
            except ChannelDrained:
                return ("drained",)
            if sel is None:
                return ("would_block",)
            return ("drained",) if sel.value is CLOSED else ("received", sel.value)

        assert self._step(op) == self.model.receive_nowait()

    @rule(how_each=st.lists(hows, min_size=1, max_size=3))
    def start_senders(self, how_each: list[How]) -> None:
        """Start one to three senders, one after the other (a burst fills a
        buffer and parks senders more often than single steps would)."""
        for how in how_each:
            self._start_send(how)
            self.agrees_with_the_model()

    @rule(how_each=st.lists(hows, min_size=1, max_size=3))
    def start_receivers(self, how_each: list[How]) -> None:
        for how in how_each:
            self._start_receive(how)
            self.agrees_with_the_model()

    def _start_send(self, how: How) -> None:
        task, value = len(self.scopes), self._value()

        async def send() -> Outcome:
            if how == "plain":
                await self.ch.send(value)
            else:
                sel = await select(self.idle.receiving(), self.ch.sending(value))
                assert sel.index == 1
            return ("sent",)

        self._start(task, how, send)
        self.model.start_send(task, value)

    def _start_receive(self, how: How) -> None:
        task = len(self.scopes)

        async def receive() -> Outcome:
            if how == "plain":
                return ("received", await self.ch.receive())
            sel = await select(None, self.ch.receiving(), self.idle.receiving())
            assert sel.index == 1
            return ("drained",) if sel.value is CLOSED else ("received", sel.value)

        self._start(task, how, receive)
        self.model.start_receive(task)

    def _start(self, task: int, how: How, op: Callable[[], Awaitable[Outcome]]) -> None:
        async def run(scope: anyio.CancelScope) -> None:
            with scope:
                try:
                    self.outcomes[task] = await op()
                except ChannelDrained:
                    self.outcomes[task] = ("drained",)
                except SendOnClosed:
                    self.outcomes[task] = ("send_on_closed",)
            if scope.cancelled_caught:
                self.outcomes[task] = ("cancelled",)

        async def start() -> NowaitResult:
            scope = anyio.CancelScope()  # made in the loop: it needs the backend
            self.scopes.append(scope)
            self.tg.start_soon(run, scope)
            return ()

        self._step(start)
        if how == "select":
            self.parked_selects.add(task)

    @precondition(lambda self: self.model.senders or self.model.receivers or self.model.buffer)
    @rule(really=st.integers(0, 4))
    def close(self, really: int) -> None:
        """Close, only when there is something to close on (parked tasks or
        buffered values; closing an idle channel is a unit test), and only
        one time in five: after a close there is little left to explore."""
        if really:
            return

        async def op() -> NowaitResult:
            self.ch.close()
            return ()

        self._step(op)
        self.model.close()

    @precondition(lambda self: self.scopes)
    @rule(data=st.data(), then=st.sampled_from(["nothing", "send", "receive"]))
    def cancel(self, data: st.DataObject, then: str) -> None:
        """Cancel a task (perhaps one that has finished already), and perhaps
        operate on the channel in the same instant, before the cancelled task
        has had a chance to run and withdraw."""
        waiting = [t for t, o in self.model.outcomes.items() if o is None]
        if waiting and data.draw(st.integers(0, 3), label="pick a waiting task") > 0:
            task = data.draw(st.sampled_from(waiting), label="task")
        else:
            task = data.draw(st.integers(0, len(self.scopes) - 1), label="task")
        value = self._value()

        async def op() -> NowaitResult:
            self.scopes[task].cancel()
            try:
                if then == "send":
                    self.ch.send_nowait(value)
                    return ("sent",)
                if then == "receive":
                    return ("received", self.ch.receive_nowait())
            except WouldBlock:
                return ("would_block",)
            except SendOnClosed:
                return ("send_on_closed",)
            except ChannelDrained:
                return ("drained",)
            return ()

        result = self._step(op)
        self.model.cancel(task)
        if then == "send":
            assert result == self.model.send_nowait(value)
        elif then == "receive":
            assert result == self.model.receive_nowait()

    # -- what must agree after every step -----------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        stats, length, idle, outcomes = self.snapshot
        model = self.model
        assert stats == ChannelStatistics(
            buffered=len(model.buffer),
            capacity=model.capacity,
            closed=model.closed,
            waiting_senders=len(model.senders),
            waiting_receivers=len(model.receivers),
        )
        assert length == len(model.buffer)
        expected = {t: o for t, o in model.outcomes.items() if o is not None}
        assert outcomes == expected
        # Every parked select, and only those, has a case parked on ``idle``.
        parked = {t for t in self.parked_selects if model.outcomes[t] is None}
        assert idle.waiting_receivers == len(parked)
        assert idle.waiting_senders == idle.buffered == 0


def test_channel_agrees_with_the_go_model(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    class Machine(ChannelMachine):
        backend = anyio_backend

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=50,
            deadline=None,
            database=None,
            # No "explain" phase: it reruns a failing case many more times and
            # would outlast the per-test timeout; shrinking alone is quick.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_model_is_go() -> None:
    """The reference model itself, on a few hand-checked Go behaviours."""
    m = GoModel(1)
    outcome = m.outcomes.get
    m.start_receive(0)  # parks
    assert outcome(0) is None
    assert m.send_nowait(10) == ("sent",)  # straight to the parked receiver
    assert outcome(0) == ("received", 10)
    assert m.send_nowait(11) == ("sent",)  # into the buffer
    m.start_send(1, 12)  # buffer full: parks
    assert outcome(1) is None
    assert m.receive_nowait() == ("received", 11)  # and 12 moves in
    assert outcome(1) == ("sent",)
    assert list(m.buffer) == [12]
    m.start_send(2, 13)
    m.close()
    assert outcome(2) == ("send_on_closed",)
    assert m.receive_nowait() == ("received", 12)
    assert m.receive_nowait() == ("drained",)
    m.start_receive(3)
    assert outcome(3) == ("drained",)
