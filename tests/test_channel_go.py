"""What Go's own channel tests check, restated for our channels.

Each test names the Go test it follows (``test/chan/*.go`` in the Go tree, or
``runtime/chan_test.go``). The programs are not translated line by line: each
keeps the property its Go original guards, with events and
``wait_all_tasks_blocked`` where Go sleeps or yields.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from actors import (
    CLOSED,
    Channel,
    ChannelDrained,
    ReceiveCase,
    SendCase,
    SendOnClosed,
    WouldBlock,
    go,
    select,
)

pytestmark = pytest.mark.anyio

Case = ReceiveCase[Any] | SendCase[Any]


def spawn(tg: anyio.abc.TaskGroup, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
    """``go(fn, *args, group=tg)``."""
    go(fn, *args, group=tg)


async def blocks(fn: Callable[[], Awaitable[Any]]) -> bool:
    """Whether ``fn()`` is still waiting once every task is blocked.

    select3.go's ``testBlock``, with ``wait_all_tasks_blocked`` in place of a
    0.1 s sleep; a ``fn`` that blocks is cancelled afterwards.
    """
    finished = False

    async def run() -> None:
        nonlocal finished
        await fn()
        finished = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    return not finished


# -- fifo.go ---------------------------------------------------------------------


async def test_fifo_through_a_buffered_channel() -> None:
    """fifo.go AsynchFifo: values come out of a buffer in the order sent."""
    n = 1000
    ch = Channel[int](n)
    for i in range(n):
        await ch.send(i)
    assert len(ch) == n
    for i in range(n):
        assert await ch.receive() == i


@pytest.mark.parametrize("capacity", [0, 1, 10])
async def test_fifo_through_a_daisy_chain_of_receivers(capacity: int) -> None:
    """fifo.go SynchFifo: receivers taking turns see the values in send order.

    Each goroutine waits for its turn on ``turn``, takes one value and checks
    that it is the one matching its position, then passes the turn on.
    """
    n = 200
    ch = Channel[int](capacity)
    mismatches: list[tuple[int, int]] = []

    async def link(position: int, turn: Channel[None], next_turn: Channel[None]) -> None:
        await turn.receive()
        value = await ch.receive()
        if value != position:
            mismatches.append((position, value))
        await next_turn.send(None)

    async with anyio.create_task_group() as tg:
        first = turn = Channel[None]()
        for position in range(n):
            next_turn = Channel[None]()
            spawn(tg, link, position, turn, next_turn)
            turn = next_turn
        await first.send(None)
        for i in range(n):
            await ch.send(i)
        await turn.receive()
    assert mismatches == []


# -- nonblock.go -------------------------------------------------------------------


async def _try_send(ch: Channel[int], value: int, style: str) -> bool:
    if style == "nowait":
        try:
            ch.send_nowait(value)
        except WouldBlock:
            return False
        return True
    return await select(ch.sending(value), default=True) is not None


async def _try_receive(ch: Channel[int], style: str) -> tuple[int, bool]:
    if style == "nowait":
        try:
            return ch.receive_nowait(), True
        except WouldBlock:
            return 0, False
    sel = await select(ch.receiving(), default=True)
    return (0, False) if sel is None else (sel.value, True)


@pytest.mark.parametrize("style", ["nowait", "select-default"])
@pytest.mark.parametrize("capacity", [0, 1])
async def test_nonblocking_operations(capacity: int, style: str) -> None:
    """nonblock.go: a non-blocking operation succeeds exactly when it could.

    It fails on an empty channel, succeeds against a parked partner, and (with
    a buffer) against a sender that has already finished.
    """
    ch = Channel[int](capacity)
    strobe = Channel[bool]()

    assert await _try_receive(ch, style) == (0, False)

    async def receiver() -> None:
        assert await ch.receive() == 123
        await strobe.send(True)

    async def sender() -> None:
        await ch.send(234)
        await strobe.send(True)

    async with anyio.create_task_group() as tg:
        spawn(tg, receiver)
        await anyio.wait_all_tasks_blocked()
        assert await _try_send(ch, 123, style)
        await strobe.receive()

        spawn(tg, sender)
        if capacity > 0:
            await strobe.receive()  # the send went into the buffer
        else:
            await anyio.wait_all_tasks_blocked()  # the sender is parked
        assert await _try_receive(ch, style) == (234, True)
        if capacity == 0:
            await strobe.receive()

    # Once nobody is left, a full (or rendezvous) channel refuses a send.
    for _ in range(capacity):
        assert await _try_send(ch, 1, style)
    assert not await _try_send(ch, 2, style)


# -- select3.go ----------------------------------------------------------------------


async def test_select_blocking_rules() -> None:
    """select3.go: which selects and operations block and which do not."""
    closed = Channel[int]()
    closed.close()
    forever = 3600.0  # a timeout that only ever ends by cancellation

    # A select whose cases are all nil (None) blocks until its timeout...
    assert await blocks(lambda: select(None, timeout=forever))
    assert await blocks(lambda: select(None, None, timeout=forever))
    # ... and with a default returns at once, picking no nil case.
    assert await select(None, None, default=True) is None

    # Sending to a buffered channel with free room does not block.
    assert not await blocks(lambda: Channel[int](1).send(7))

    # Receiving from a closed channel never blocks, again and again.
    async def drain_closed() -> None:
        for _ in range(10):
            with pytest.raises(ChannelDrained):
                await closed.receive()
            assert (await select(closed.receiving())).value is CLOSED

    assert not await blocks(drain_closed)

    # Sending to a closed channel fails (Go panics), in a select too.
    with pytest.raises(SendOnClosed):
        await closed.send(7)
    with pytest.raises(SendOnClosed):
        await select(closed.sending(7))

    # Receiving from a channel with nothing to give blocks.
    assert await blocks(Channel[int]().receive)
    assert await blocks(lambda: Channel[int](3).receive())

    # A select with non-ready non-nil cases blocks.
    assert await blocks(lambda: select(Channel[int]().receiving()))
    assert await blocks(lambda: select(None, Channel[int]().sending(1)))

    # Selects with a default do not block.
    assert not await blocks(lambda: select(Channel[int]().receiving(), default=True))

    # Selects with a ready case do not block (and do not take the default).
    ready_send = Channel[int](1)
    assert (await select(ready_send.sending(7), default=True)) is not None
    assert ready_send.receive_nowait() == 7
    ready_receive = Channel[int](1)
    ready_receive.send_nowait(7)
    sel = await select(ready_receive.receiving(), default=True)
    assert sel is not None and sel.value == 7

    # A select does not match its own send with its own receive.
    itself = Channel[int]()
    assert await blocks(lambda: select(itself.sending(1), itself.receiving()))
    assert itself.statistics().waiting_senders == 0
    assert itself.statistics().waiting_receivers == 0


# -- select5.go ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["receive", "send"])
async def test_select_with_many_case_combinations(kind: str) -> None:
    """select5.go: one real operation among dummy, nil and default cases.

    Every combination of a never-ready dummy send and receive, a nil send and
    receive and a default, with the real case at each position, must fire the
    real case with the right value and index and leave the dummies untouched.
    """
    c = Channel[int](1)
    dummy = Channel[int]()
    n = 0
    for extras in itertools.product([False, True], repeat=4):
        others: list[Case | None] = []
        if extras[0]:
            others.append(dummy.sending(-1))
        if extras[1]:
            others.append(dummy.receiving())
        if extras[2]:
            others.append(None)  # nil send
        if extras[3]:
            others.append(None)  # nil receive
        for position, default in itertools.product(range(len(others) + 1), [False, True]):
            n += 1
            if kind == "receive":
                c.send_nowait(n)
                real: Case = c.receiving()
            else:
                real = c.sending(n)
            cases = [*others[:position], real, *others[position:]]
            sel = await select(*cases, default=default)
            assert sel is not None
            assert sel.index == position and sel.case is real
            if kind == "receive":
                assert sel.value == n
            else:
                assert sel.value is None
                assert c.receive_nowait() == n
            assert len(c) == 0
            assert dummy.statistics().waiting_senders == 0
            assert dummy.statistics().waiting_receivers == 0
    assert n == 96  # sum over the 16 extras of (positions) * (default or not)


async def test_select_without_a_ready_case_takes_the_default() -> None:
    """select5.go "nonblock": only dummies and nils: the default fires."""
    dummy = Channel[int]()
    for extras in itertools.product([False, True], repeat=4):
        cases: list[Case | None] = []
        if extras[0]:
            cases.append(dummy.sending(1))
        if extras[1]:
            cases.append(dummy.receiving())
        if extras[2]:
            cases.append(None)
        if extras[3]:
            cases.append(dummy.receiving())
        assert await select(*cases, default=True) is None
    assert dummy.statistics().waiting_senders == 0
    assert dummy.statistics().waiting_receivers == 0


@pytest.mark.parametrize("kind", ["receive", "send"])
async def test_select_over_many_channels_fires_the_one_ready(kind: str) -> None:
    """A select over 100 channels, one of them ready, at each position."""
    channels = [Channel[int](1) for _ in range(100)]
    for ready in range(len(channels)):
        if kind == "receive":
            channels[ready].send_nowait(ready)
            cases: list[Case] = [ch.receiving() for ch in channels]
        else:
            for i, ch in enumerate(channels):
                if i != ready:
                    ch.send_nowait(-1)  # full: its send case is not ready
            cases = [ch.sending(ready) for ch in channels]
        sel = await select(*cases)
        assert sel.index == ready
        if kind == "send":
            assert channels[ready].receive_nowait() == ready
            for i, ch in enumerate(channels):
                if i != ready:
                    assert ch.receive_nowait() == -1
        assert all(len(ch) == 0 for ch in channels)


async def test_parked_select_over_many_channels_is_woken_by_any_of_them() -> None:
    channels = [Channel[int]() for _ in range(50)]

    async def wait_any(result: list[int]) -> None:
        sel = await select(*(ch.receiving() for ch in channels))
        result.extend((sel.index, sel.value))

    for target in (0, 17, 49):
        result: list[int] = []
        async with anyio.create_task_group() as tg:
            spawn(tg, wait_any, result)
            await anyio.wait_all_tasks_blocked()
            assert all(ch.statistics().waiting_receivers == 1 for ch in channels)
            channels[target].send_nowait(target * 10)
        assert result == [target, target * 10]
        assert all(ch.statistics().waiting_receivers == 0 for ch in channels)


# -- select6.go -------------------------------------------------------------------------


async def test_a_select_that_fired_elsewhere_leaves_no_receiver_behind() -> None:
    """select6.go (Go issue 2075): a select woken on one channel must leave the
    queues of its other channels, or a later send goes to a ghost."""
    c1, c2, c3 = Channel[bool](), Channel[bool](), Channel[bool]()
    first_c1: list[bool] = []
    second_c1: list[bool] = []

    async def plain() -> None:
        first_c1.append(await c1.receive())

    async def selecting() -> None:
        sel = await select(c1.receiving(), c2.receiving())
        assert sel.index == 1, "the c1 case must never fire here"
        await c3.send(True)
        second_c1.append(await c1.receive())

    async with anyio.create_task_group() as tg:
        spawn(tg, plain)
        spawn(tg, selecting)
        await anyio.wait_all_tasks_blocked()
        spawn(tg, c2.send, True)
        await c3.receive()
        await c1.send(True)
        await c1.send(True)
    assert first_c1 == [True] and second_c1 == [True]


# -- select7.go --------------------------------------------------------------------------


async def _recv_plain(c: Channel[int]) -> None:
    await c.receive()


async def _recv_select(c: Channel[int]) -> None:
    await select(c.receiving())


async def _recv_select2(c: Channel[int]) -> None:
    await select(c.receiving(), Channel[int]().receiving())


async def _send_plain(c: Channel[int]) -> None:
    await c.send(1)


async def _send_select(c: Channel[int]) -> None:
    await select(c.sending(1))


async def _send_select2(c: Channel[int]) -> None:
    await select(c.sending(1), Channel[int]().sending(1))


@pytest.mark.parametrize("recv", [_recv_plain, _recv_select, _recv_select2])
@pytest.mark.parametrize("send", [_send_plain, _send_select, _send_select2])
async def test_rendezvous_between_plain_and_select_operations(
    send: Callable[[Channel[int]], Coroutine[Any, Any, None]],
    recv: Callable[[Channel[int]], Coroutine[Any, Any, None]],
) -> None:
    """select7.go: every pairing of plain, one-case and two-case select on each
    side of an unbuffered channel completes, the receiver parked first."""
    c = Channel[int]()
    async with anyio.create_task_group() as tg:
        spawn(tg, recv, c)
        await anyio.wait_all_tasks_blocked()
        await send(c)
    assert c.statistics().waiting_senders == 0
    assert c.statistics().waiting_receivers == 0


# -- select8.go (and chan_test.go TestSelectDuplicateChannel) ---------------------------


async def test_select_against_a_busy_sender() -> None:
    """select8.go: selects of one to three cases against a goroutine that
    keeps sending, with and without default, take a value or the default."""
    ch = Channel[int]()

    async def keep_sending() -> None:
        while True:
            await ch.send(5)

    async with anyio.create_task_group() as tg:
        spawn(tg, keep_sending)
        assert (await select(ch.receiving())).value == 5
        assert await select(default=True) is None
        await anyio.wait_all_tasks_blocked()
        sel = await select(ch.receiving(), default=True)
        assert sel is not None and sel.value == 5
        await anyio.wait_all_tasks_blocked()
        # The send case can only match a receiver, and there is none.
        sel = await select(ch.receiving(), ch.sending(10), default=True)
        assert sel is not None and sel.index == 0 and sel.value == 5
        tg.cancel_scope.cancel()


# -- chan_test.go TestSelectFairness -------------------------------------------------------


async def test_select_fairness_between_two_ready_channels() -> None:
    """runtime TestSelectFairness: two always-ready cases fire equally often.

    With n trials the share of the first case has a standard error of
    0.5/sqrt(n); 4.891676 standard errors is the two-sided six-nines bound
    (a fair select fails this with probability 1e-6), as in Go's test.
    """
    trials = 10_000
    c1, c2 = Channel[int](trials + 1), Channel[int](trials + 1)
    for _ in range(trials + 1):
        c1.send_nowait(1)
        c2.send_nowait(2)
    c3, c4 = Channel[int](), Channel[int]()  # never ready
    counts: Counter[int] = Counter()
    for _ in range(trials):
        sel = await select(c3.receiving(), c4.receiving(), c1.receiving(), c2.receiving())
        counts[sel.value] += 1
    assert counts[1] + counts[2] == trials
    share = counts[1] / trials
    assert abs(share - 0.5) <= 4.891676 / (2 * math.sqrt(trials)), counts


# -- doubleselect.go ------------------------------------------------------------------------


async def test_doubled_select_sends_each_value_once() -> None:
    """doubleselect.go: a select over four channels sends each value on one of
    them only; four forwarders merge them and no value arrives twice."""
    n = 1000
    cs = [Channel[int]() for _ in range(4)]
    merged = Channel[int]()
    seen: Counter[int] = Counter()

    async def sender() -> None:
        for i in range(n):
            await select(*(c.sending(i) for c in cs))
        for c in cs:
            c.close()

    async def mux(c: Channel[int], done: anyio.Event) -> None:
        async for v in c:
            await merged.send(v)
        done.set()

    async def closer(events: list[anyio.Event]) -> None:
        for event in events:
            await event.wait()
        merged.close()

    async with anyio.create_task_group() as tg:
        events = [anyio.Event() for _ in cs]
        spawn(tg, sender)
        for c, event in zip(cs, events, strict=True):
            spawn(tg, mux, c, event)
        spawn(tg, closer, events)
        async for v in merged:
            seen[v] += 1
    assert [v for v, k in seen.items() if k > 1] == []
    assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("capacity", [0, 1, 3])
async def test_competing_selects_lose_and_double_nothing(capacity: int) -> None:
    """Doubled select, both sides: two selecting senders and three selecting
    receivers on the same four channels; every value arrives exactly once.

    Receivers drop a case once its channel reports CLOSED (Go's ``ch = nil``)
    and stop when no case is left, so buffered leftovers are drained too.
    """
    n = 1000
    cs = [Channel[int](capacity) for _ in range(4)]
    received: list[int] = []
    senders_done = [anyio.Event(), anyio.Event()]

    async def sender(start: int, done: anyio.Event) -> None:
        for v in range(start, n, 2):
            await select(*(c.sending(v) for c in cs))
        done.set()

    async def receiver() -> None:
        cases: list[Case | None] = [c.receiving() for c in cs]
        while any(cases):
            sel = await select(*cases)
            if sel.value is CLOSED:
                cases[sel.index] = None
            else:
                received.append(sel.value)

    async def closer() -> None:
        for event in senders_done:
            await event.wait()
        for c in cs:
            c.close()

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            spawn(tg, receiver)
        spawn(tg, sender, 0, senders_done[0])
        spawn(tg, sender, 1, senders_done[1])
        spawn(tg, closer)
    assert sorted(received) == list(range(n))


# -- chan_test.go TestSelfSelect --------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 10])
async def test_selects_sending_and_receiving_on_one_channel(capacity: int) -> None:
    """runtime TestSelfSelect: two goroutines each select between sending to and
    receiving from the same channel; neither deadlocks nor, unbuffered,
    receives its own value."""
    c = Channel[int](capacity)
    self_receives: list[int] = []
    counts = [0, 0]

    async def worker(p: int) -> None:
        for i in range(1000):
            if p == 0 or i % 2 == 0:
                sel = await select(c.sending(p), c.receiving())
            else:
                sel = await select(c.receiving(), c.sending(p))
            counts[p] += 1
            if sel.case.is_send is False and capacity == 0 and sel.value == p:
                self_receives.append(p)

    async with anyio.create_task_group() as tg:
        spawn(tg, worker, 0)
        spawn(tg, worker, 1)
    assert counts == [1000, 1000]
    assert self_receives == []


# -- sieve1.go ------------------------------------------------------------------------------


def _first_primes(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes):
            primes.append(candidate)
        candidate += 1
    return primes


@pytest.mark.parametrize("capacity", [0, 2])
async def test_concurrent_prime_sieve(capacity: int) -> None:
    """sieve1.go: a generator goroutine and one filter goroutine per prime,
    chained by channels, produce the primes in order."""
    count = 50

    async def generate(out: Channel[int]) -> None:
        for i in itertools.count(2):
            await out.send(i)

    async def filter_multiples(source: Channel[int], out: Channel[int], prime: int) -> None:
        async for i in source:
            if i % prime != 0:
                await out.send(i)

    async def sieve(primes: Channel[int], tg: anyio.abc.TaskGroup) -> None:
        ch = Channel[int](capacity)
        spawn(tg, generate, ch)
        while True:
            prime = await ch.receive()
            await primes.send(prime)
            filtered = Channel[int](capacity)
            spawn(tg, filter_multiples, ch, filtered, prime)
            ch = filtered

    primes = Channel[int]()
    async with anyio.create_task_group() as tg:
        spawn(tg, sieve, primes, tg)
        got = [await primes.receive() for _ in range(count)]
        tg.cancel_scope.cancel()
    assert got == _first_primes(count)


# -- goroutines.go -------------------------------------------------------------------------


async def test_a_value_through_a_long_chain_of_goroutines() -> None:
    """goroutines.go: 500 goroutines each pass a value one link left."""
    n = 500
    leftmost = left = Channel[int]()

    async def link(left: Channel[int], right: Channel[int]) -> None:
        await left.send(await right.receive() + 1)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            right = Channel[int]()
            spawn(tg, link, left, right)
            left = right
        spawn(tg, right.send, 0)
        assert await leftmost.receive() == n


# -- chan_test.go TestMultiConsumer -----------------------------------------------------------


async def test_many_goroutines_through_one_channel() -> None:
    """runtime TestMultiConsumer: 23 workers share one work channel and one
    result channel; every item is processed exactly once."""
    nwork, niter = 23, 2000
    pn = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31]
    q = Channel[int](nwork * 3)
    r = Channel[int](nwork * 3)
    remaining = [nwork]

    async def worker(w: int) -> None:
        async for v in q:
            if pn[w % len(pn)] == v:
                await anyio.lowlevel.checkpoint()  # mess with the FIFO-ish order
            await r.send(v)
        remaining[0] -= 1
        if remaining[0] == 0:
            r.close()

    async def feeder() -> None:
        for i in range(niter):
            await q.send(pn[i % len(pn)])
        q.close()

    async with anyio.create_task_group() as tg:
        for w in range(nwork):
            spawn(tg, worker, w)
        spawn(tg, feeder)
        n = s = 0
        async for v in r:
            n += 1
            s += v
    assert n == niter
    assert s == sum(pn[i % len(pn)] for i in range(niter))


# -- chan_test.go TestChan ----------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, 1, 5, 20])
async def test_chan_basics_at_each_capacity(capacity: int) -> None:
    """runtime TestChan, condensed: blocking, closing and ordering rules at
    several capacities."""
    # Receive from an empty channel blocks, and so does a receive select.
    c = Channel[int](capacity)
    assert await blocks(c.receive)
    assert await blocks(lambda: select(c.receiving()))

    # Send to a full channel blocks.
    c = Channel[int](capacity)
    for i in range(capacity):
        c.send_nowait(i)
    assert await blocks(lambda: c.send(-1))
    assert [c.receive_nowait() for _ in range(capacity)] == list(range(capacity))

    # Closing unblocks a receive, which then reports the close.
    c = Channel[int](capacity)
    outcome: list[object] = []

    async def receive_closed() -> None:
        try:
            await c.receive()
        except ChannelDrained:
            outcome.append("drained")

    async with anyio.create_task_group() as tg:
        spawn(tg, receive_closed)
        await anyio.wait_all_tasks_blocked()
        c.close()
    assert outcome == ["drained"]

    # Values sent from another goroutine arrive in order.
    c = Channel[int](capacity)

    async def send_all() -> None:
        for i in range(100):
            await c.send(i)
        c.close()

    async with anyio.create_task_group() as tg:
        spawn(tg, send_all)
        assert [v async for v in c] == list(range(100))
