"""Channel semantics: buffering, rendezvous, close, select, statistics, errors.

Each test states one rule of the contract in DESIGN.md ("Channels") and checks
it from the outside, through the public API only (plus ``statistics()``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from actors import (
    CLOSED,
    ActorsError,
    Channel,
    ChannelClosed,
    ChannelDrained,
    ChannelStatistics,
    ReceiveCase,
    Selected,
    SendCase,
    SendOnClosed,
    WouldBlock,
    go,
    select,
)

pytestmark = pytest.mark.anyio


class Outcome:
    """What a background operation ended with: a value, an error, or nothing yet."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    async def run(self, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            self.value = await fn()
        except ChannelClosed as exc:
            self.error = exc
        finally:
            self.done.set()


def start(tg: anyio.abc.TaskGroup, fn: Callable[[], Awaitable[Any]]) -> Outcome:
    outcome = Outcome()
    tg.start_soon(outcome.run, fn)
    return outcome


def stats(ch: Channel[Any]) -> tuple[int, int, int]:
    s = ch.statistics()
    return s.buffered, s.waiting_senders, s.waiting_receivers


# -- construction, properties, statistics --------------------------------------


async def test_default_channel_is_rendezvous() -> None:
    ch = Channel[int]()
    assert ch.capacity == 0
    assert len(ch) == 0
    assert not ch.closed
    with pytest.raises(WouldBlock):
        ch.send_nowait(1)
    assert len(ch) == 0


@pytest.mark.parametrize("capacity", [0, 1, 5, math.inf])
async def test_capacity_and_len_follow_the_buffer(capacity: float) -> None:
    ch = Channel[int](capacity)
    assert ch.capacity == capacity
    room = 10 if capacity == math.inf else int(capacity)
    for i in range(room):
        ch.send_nowait(i)
        assert len(ch) == i + 1
    if capacity != math.inf:
        with pytest.raises(WouldBlock):
            ch.send_nowait(-1)
    assert len(ch) == room
    for i in range(room):
        assert ch.receive_nowait() == i
        assert len(ch) == room - i - 1


async def test_unbounded_channel_never_blocks_a_sender() -> None:
    ch = Channel[int](math.inf)
    for i in range(10_000):
        ch.send_nowait(i)
    await ch.send(10_000)
    assert len(ch) == 10_001
    assert ch.receive_nowait() == 0


async def test_statistics_snapshot_counts_buffer_and_parked_tasks() -> None:
    ch = Channel[str](1)
    assert ch.statistics() == ChannelStatistics(
        buffered=0, capacity=1, closed=False, waiting_senders=0, waiting_receivers=0
    )
    await ch.send("a")
    async with anyio.create_task_group() as tg:
        senders = []
        for v in "bc":  # one at a time, so that they park in this order
            senders.append(start(tg, lambda v=v: ch.send(v)))  # type: ignore[misc]
            await anyio.wait_all_tasks_blocked()
        snapshot = ch.statistics()
        assert snapshot == ChannelStatistics(
            buffered=1, capacity=1, closed=False, waiting_senders=2, waiting_receivers=0
        )
        assert [ch.receive_nowait() for _ in range(3)] == ["a", "b", "c"]
        for s in senders:
            await s.done.wait()
    # A snapshot does not change under our feet, and cannot be changed.
    assert snapshot.waiting_senders == 2
    with pytest.raises(AttributeError):
        snapshot.buffered = 5  # type: ignore[misc]
    assert stats(ch) == (0, 0, 0)


async def test_statistics_counts_parked_receivers_and_forgets_cancelled_ones() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ch.receive)
        await anyio.wait_all_tasks_blocked()
        assert stats(ch) == (0, 0, 3)
        tg.cancel_scope.cancel()
    assert stats(ch) == (0, 0, 0)


async def test_repr_shows_fill_and_state() -> None:
    ch = Channel[int](2)
    ch.send_nowait(1)
    assert "1/2" in repr(ch) and "open" in repr(ch)
    ch.close()
    assert "closed" in repr(ch)
    assert "Channel" in repr(ch.receiving()) and "5" in repr(ch.sending(5))


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "error", "words"),
    [
        (-1, ValueError, ["capacity", ">= 0", "-1"]),
        (-(2**70), ValueError, ["capacity", ">= 0"]),
        (1.5, TypeError, ["capacity", "1.5"]),
        (2.0, TypeError, ["capacity", "2.0"]),
        (-math.inf, TypeError, ["capacity", "-inf"]),
        (math.nan, TypeError, ["capacity", "nan"]),
        (True, TypeError, ["capacity", "bool", "True"]),
        (False, TypeError, ["capacity", "bool", "False"]),
        ("3", TypeError, ["capacity", "str", "'3'"]),
        (None, TypeError, ["capacity", "NoneType"]),
        ([1], TypeError, ["capacity", "list"]),
    ],
)
async def test_bad_capacity_is_rejected_with_a_clear_message(
    capacity: Any, error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        Channel(capacity)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)


async def test_select_rejects_a_channel_and_says_what_to_pass() -> None:
    ch = Channel[int](1)
    with pytest.raises(TypeError) as info:
        await select(ch.receiving(), ch)  # type: ignore[call-overload]
    message = str(info.value)
    assert "argument 1" in message
    assert "ch.receiving()" in message and "ch.sending(value)" in message
    # Nothing was done on the channel by the rejected call.
    assert stats(ch) == (0, 0, 0)


@pytest.mark.parametrize("bad", [42, "x", object(), lambda: None])
async def test_select_rejects_any_non_case(bad: object) -> None:
    ch = Channel[int](1)
    with pytest.raises(TypeError, match=r"argument 0 .* not a case"):
        await select(bad, ch.receiving())  # type: ignore[call-overload]


@pytest.mark.parametrize("timeout", [-1, -0.001, -math.inf])
async def test_select_rejects_a_negative_timeout(timeout: float) -> None:
    ch = Channel[int](1)
    ch.send_nowait(1)
    with pytest.raises(ValueError, match="timeout must be >= 0"):
        await select(ch.receiving(), timeout=timeout)
    assert len(ch) == 1  # the ready case did not fire


async def test_select_with_no_case_refuses_to_wait_forever() -> None:
    with pytest.raises(ValueError, match="waits forever"):
        await select()
    with pytest.raises(ValueError, match="waits forever"):
        await select(None, None)


async def test_select_with_no_case_but_a_way_out() -> None:
    assert await select(default=True) is None
    assert await select(None, default=True) is None
    with pytest.raises(TimeoutError):
        await select(timeout=0)
    with pytest.raises(TimeoutError):
        await select(None, timeout=0.001)


async def test_go_without_owner_says_to_pass_a_task_group() -> None:
    async def worker() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ActorsError) as info:
        go(worker)
    message = str(info.value)
    assert "worker" in message and "group=" in message


async def test_go_rejects_a_non_callable() -> None:
    async with anyio.create_task_group() as tg:
        with pytest.raises(TypeError, match="async function"):
            go(42, group=tg)  # type: ignore[arg-type]


async def test_go_runs_in_the_group_and_its_failure_fails_the_group() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        go(ch.send, 42, group=tg)
        assert await ch.receive() == 42

    async def boom() -> None:
        raise RuntimeError("goroutine failed")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="goroutine failed")):
        async with anyio.create_task_group() as tg:
            go(boom, group=tg)


# -- rendezvous ------------------------------------------------------------------


async def test_rendezvous_send_completes_only_when_taken() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        sender = start(tg, lambda: ch.send(1))
        await anyio.wait_all_tasks_blocked()
        assert not sender.done.is_set()
        assert stats(ch) == (0, 1, 0)
        assert ch.receive_nowait() == 1
        await sender.done.wait()
        assert sender.error is None


async def test_rendezvous_receive_waits_for_a_sender() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        receiver = start(tg, ch.receive)
        await anyio.wait_all_tasks_blocked()
        assert not receiver.done.is_set()
        ch.send_nowait(7)  # a waiting receiver makes a nowait send possible
        await receiver.done.wait()
        assert receiver.value == 7
    assert stats(ch) == (0, 0, 0)


async def test_parked_receivers_are_served_first_come_first_served() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        receivers = []
        for _ in range(4):
            receivers.append(start(tg, ch.receive))
            await anyio.wait_all_tasks_blocked()
        for v in range(4):
            await ch.send(v)
    assert [r.value for r in receivers] == [0, 1, 2, 3]


async def test_parked_senders_are_served_first_come_first_served() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        for v in range(4):
            tg.start_soon(ch.send, v)
            await anyio.wait_all_tasks_blocked()
        assert [await ch.receive() for _ in range(4)] == [0, 1, 2, 3]


# -- buffering -------------------------------------------------------------------


async def test_full_buffer_parks_the_sender_until_room() -> None:
    ch = Channel[int](2)
    await ch.send(0)
    await ch.send(1)
    async with anyio.create_task_group() as tg:
        sender = start(tg, lambda: ch.send(2))
        await anyio.wait_all_tasks_blocked()
        assert not sender.done.is_set()
        assert stats(ch) == (2, 1, 0)
        # Taking one value moves the parked sender's value into the buffer.
        assert await ch.receive() == 0
        await sender.done.wait()
        assert stats(ch) == (2, 0, 0)
    assert [ch.receive_nowait(), ch.receive_nowait()] == [1, 2]


async def test_fifo_across_buffer_and_parked_senders() -> None:
    ch = Channel[int](3)
    for v in range(3):
        ch.send_nowait(v)
    async with anyio.create_task_group() as tg:
        for v in range(3, 8):
            tg.start_soon(ch.send, v)
            await anyio.wait_all_tasks_blocked()
        assert [await ch.receive() for _ in range(8)] == list(range(8))


async def test_async_for_yields_everything_then_stops_on_close() -> None:
    ch = Channel[int](math.inf)
    for v in range(5):
        ch.send_nowait(v)
    ch.close()
    assert [v async for v in ch] == [0, 1, 2, 3, 4]
    assert [v async for v in ch] == []


async def test_async_for_waits_for_values_until_close() -> None:
    ch = Channel[int]()
    got: list[int] = []

    async def consume() -> None:
        async for v in ch:
            got.append(v)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for v in range(3):
            await ch.send(v)
        ch.close()
    assert got == [0, 1, 2]


# -- close -------------------------------------------------------------------------


async def test_error_hierarchy_matches_anyio() -> None:
    assert issubclass(WouldBlock, anyio.WouldBlock)
    assert issubclass(ChannelDrained, ChannelClosed)
    assert issubclass(ChannelDrained, anyio.EndOfStream)
    assert issubclass(SendOnClosed, ChannelClosed)
    assert issubclass(SendOnClosed, anyio.ClosedResourceError)
    assert issubclass(ChannelClosed, ActorsError)


async def test_close_keeps_buffered_values_then_drains() -> None:
    ch = Channel[int](3)
    ch.send_nowait(1)
    ch.send_nowait(2)
    ch.close()
    assert ch.closed
    with pytest.raises(SendOnClosed):
        ch.send_nowait(3)
    with pytest.raises(SendOnClosed):
        await ch.send(3)
    assert ch.receive_nowait() == 1
    assert await ch.receive() == 2
    with pytest.raises(ChannelDrained):
        ch.receive_nowait()
    with pytest.raises(ChannelDrained):
        await ch.receive()
    with pytest.raises(anyio.EndOfStream):
        await ch.receive()


async def test_send_on_closed_channel_fails_even_with_room_or_a_receiver() -> None:
    ch = Channel[int](5)
    ch.close()
    with pytest.raises(SendOnClosed):
        ch.send_nowait(1)
    with pytest.raises(anyio.ClosedResourceError):
        await ch.send(1)
    assert len(ch) == 0


async def test_second_close_is_a_documented_no_op() -> None:
    ch = Channel[int](2)
    ch.send_nowait(1)
    ch.close()
    before = ch.statistics()
    ch.close()  # Go panics here; we document a no-op instead.
    ch.close()
    assert ch.statistics() == before
    assert ch.receive_nowait() == 1
    ch.close()
    with pytest.raises(ChannelDrained):
        ch.receive_nowait()


async def test_close_wakes_parked_receivers_with_drained() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        receivers = [start(tg, ch.receive) for _ in range(3)]
        await anyio.wait_all_tasks_blocked()
        ch.close()
    for r in receivers:
        assert isinstance(r.error, ChannelDrained)
    assert stats(ch) == (0, 0, 0)


async def test_close_wakes_parked_senders_and_keeps_only_the_buffer() -> None:
    ch = Channel[int](1)
    ch.send_nowait(0)
    async with anyio.create_task_group() as tg:
        senders = [start(tg, lambda v=v: ch.send(v)) for v in (1, 2)]  # type: ignore[misc]
        await anyio.wait_all_tasks_blocked()
        ch.close()
    for s in senders:
        assert isinstance(s.error, SendOnClosed)
    # The parked senders' values never entered the channel.
    assert [v async for v in ch] == [0]


async def test_a_completed_rendezvous_survives_a_close_right_after() -> None:
    ch = Channel[int]()
    async with anyio.create_task_group() as tg:
        sender = start(tg, lambda: ch.send(5))
        await anyio.wait_all_tasks_blocked()
        assert ch.receive_nowait() == 5
        ch.close()  # the sender already rendezvoused: its send succeeded
    assert sender.error is None


# -- select --------------------------------------------------------------------------


async def test_select_returns_index_case_and_value() -> None:
    a, b = Channel[str](1), Channel[str](1)
    b.send_nowait("hello")
    case = b.receiving()
    sel = await select(None, a.receiving(), case)
    assert sel == Selected(2, case, "hello")
    index, fired, value = sel
    assert (index, fired, value) == (2, case, "hello")
    match sel:
        case Selected(2, ReceiveCase(), "hello"):
            pass
        case _:
            pytest.fail(f"did not match: {sel!r}")


async def test_select_send_case_delivers_and_yields_none() -> None:
    a = Channel[int](1)
    case = a.sending(9)
    assert isinstance(case, SendCase) and case.value == 9 and case.channel is a
    sel = await select(case)
    assert sel == Selected(0, case, None)
    assert a.receive_nowait() == 9


async def test_select_waits_then_fires_the_case_that_became_ready() -> None:
    a, b, c = Channel[int](), Channel[int](), Channel[int]()
    async with anyio.create_task_group() as tg:
        waiting = start(tg, lambda: select(a.receiving(), b.sending(1), c.receiving()))
        await anyio.wait_all_tasks_blocked()
        assert [stats(x) for x in (a, b, c)] == [(0, 0, 1), (0, 1, 0), (0, 0, 1)]
        c.send_nowait(3)
        await waiting.done.wait()
    sel = waiting.value
    assert isinstance(sel, Selected)
    assert (sel.index, sel.value) == (2, 3)
    # The losing cases were withdrawn from their channels.
    assert [stats(x) for x in (a, b, c)] == [(0, 0, 0)] * 3
    with pytest.raises(WouldBlock):
        b.receive_nowait()


async def test_select_send_case_fires_when_a_receiver_arrives() -> None:
    a, b = Channel[int](), Channel[int]()
    async with anyio.create_task_group() as tg:
        waiting = start(tg, lambda: select(a.receiving(), b.sending(8)))
        await anyio.wait_all_tasks_blocked()
        assert b.receive_nowait() == 8
        await waiting.done.wait()
    assert waiting.value.index == 1 and waiting.value.value is None
    assert stats(a) == (0, 0, 0)


async def test_select_default_returns_none_and_touches_nothing() -> None:
    a, b = Channel[int](), Channel[int](1)
    b.send_nowait(1)
    assert await select(a.receiving(), a.sending(1), default=True) is None
    assert [stats(a), stats(b)] == [(0, 0, 0), (1, 0, 0)]
    assert await select(b.sending(2), default=True) is None
    assert b.receive_nowait() == 1


async def test_select_default_still_takes_a_ready_case() -> None:
    a = Channel[int](1)
    a.send_nowait(4)
    sel = await select(a.receiving(), default=True)
    assert sel is not None and sel.value == 4


async def test_select_ignores_none_cases() -> None:
    a = Channel[int](1)
    a.send_nowait(1)
    sel = await select(None, None, a.receiving(), None)
    assert sel.index == 2


async def test_select_timeout_zero_polls() -> None:
    a = Channel[int](1)
    with pytest.raises(TimeoutError):
        await select(a.receiving(), timeout=0)
    a.send_nowait(1)
    assert (await select(a.receiving(), timeout=0)).value == 1


async def test_select_timeout_withdraws_every_case() -> None:
    a, b = Channel[int](), Channel[int]()
    with pytest.raises(TimeoutError):
        await select(a.receiving(), b.sending(1), timeout=0.01)
    assert [stats(a), stats(b)] == [(0, 0, 0), (0, 0, 0)]
    with pytest.raises(WouldBlock):
        b.receive_nowait()
    with pytest.raises(WouldBlock):
        a.send_nowait(1)


async def test_select_receive_on_closed_channel_gives_buffered_then_closed() -> None:
    a = Channel[int](2)
    a.send_nowait(1)
    a.close()
    assert (await select(a.receiving())).value == 1
    for _ in range(3):  # a closed, drained channel is always ready
        assert (await select(a.receiving())).value is CLOSED
    assert repr(CLOSED) == "CLOSED"


async def test_select_send_on_closed_channel_raises() -> None:
    a = Channel[int](2)
    a.close()
    with pytest.raises(SendOnClosed):
        await select(a.sending(1))
    with pytest.raises(SendOnClosed):
        await select(a.sending(1), default=True)


async def test_a_select_completes_at_once_against_a_parked_select() -> None:
    a, b = Channel[int](), Channel[int]()
    async with anyio.create_task_group() as tg:
        recv = start(tg, lambda: select(b.receiving(), a.receiving()))
        await anyio.wait_all_tasks_blocked()
        # Both send cases are ready (a receiver is parked on each channel).
        sel = await select(a.sending(1), b.sending(2), default=True)
        await recv.done.wait()
    assert sel is not None
    got = recv.value
    assert (sel.index, got.index, got.value) in [(0, 1, 1), (1, 0, 2)]
    assert [stats(a), stats(b)] == [(0, 0, 0), (0, 0, 0)]


async def test_close_wakes_parked_selects() -> None:
    a, b = Channel[int](), Channel[int]()
    never = Channel[int]()
    async with anyio.create_task_group() as tg:
        recv = start(tg, lambda: select(never.receiving(), a.receiving()))
        send = start(tg, lambda: select(never.receiving(), b.sending(2)))
        await anyio.wait_all_tasks_blocked()
        a.close()
        b.close()
    assert recv.value == Selected(1, recv.value.case, CLOSED)
    assert isinstance(send.error, SendOnClosed)
    assert stats(never) == (0, 0, 0)


async def test_select_on_the_same_channel_twice() -> None:
    a = Channel[int](1)
    a.send_nowait(1)
    sel = await select(a.receiving(), a.receiving())
    assert sel.value == 1
    assert len(a) == 0
    async with anyio.create_task_group() as tg:
        waiting = start(tg, lambda: select(a.receiving(), a.receiving()))
        await anyio.wait_all_tasks_blocked()
        assert stats(a) == (0, 0, 2)
        a.send_nowait(2)
        await waiting.done.wait()
    assert waiting.value.value == 2
    assert stats(a) == (0, 0, 0)
    assert len(a) == 0  # delivered once, not twice


async def test_selects_on_both_ends_of_a_rendezvous_meet() -> None:
    a, never, nobody = Channel[int](), Channel[int](), Channel[int]()
    async with anyio.create_task_group() as tg:
        recv = start(tg, lambda: select(never.receiving(), a.receiving()))
        await anyio.wait_all_tasks_blocked()
        sel = await select(nobody.sending(0), a.sending(5))
        assert sel.index == 1
    assert recv.value.value == 5
    assert [stats(x) for x in (a, never, nobody)] == [(0, 0, 0)] * 3


async def test_case_objects_expose_their_channel() -> None:
    a = Channel[int]()
    assert a.receiving().channel is a
    assert a.sending(3).channel is a
    assert a.receiving().is_send is False
    assert a.sending(3).is_send is True


async def test_immediate_operations_do_not_need_the_event_loop() -> None:
    # Documented: an operation that can complete at once does so without a
    # trip through the event loop (apart from the YIELD_EVERY checkpoint), so
    # a cancelled scope around a single ready operation does not undo it.
    ch = Channel[int](1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await ch.send(1)
        value = await ch.receive()
    assert value == 1
    await anyio.lowlevel.checkpoint()
