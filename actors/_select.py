"""Go's ``select``: wait for the first ready case among sends and receives."""

# Invariants:
# - A select completes at most one case: it checks and completes a ready case
#   without awaiting in between, and a parked select is one ``Op`` with a
#   ``Waiter`` per case, of which only the winner completes (see ``_parking``).
# - A select that returns or raises has left none of its waiters in a queue.

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import anyio
import anyio.lowlevel

from ._channel import CLOSED, YIELD_EVERY, Case, Channel, ReceiveCase, SendCase
from ._exceptions import ActorsError, SendOnClosed
from ._parking import Op, Waiter, park


@dataclass(frozen=True, slots=True)
class Selected:
    """What :func:`select` returns: which case fired, and its value.

    ``index`` is the case's position among the arguments, ``case`` the case
    itself, ``value`` the received value for a receive case (``CLOSED`` when
    the channel was closed and drained) and ``None`` for a send case. It
    unpacks as ``index, case, value`` and matches ``Selected(index, case,
    value)`` patterns.

    Examples:
        >>> index, case, value = Selected(0, Channel[int]().receiving(), 5)
        >>> index, value
        (0, 5)
    """

    index: int
    case: Case
    value: Any

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.case, self.value))


@overload
async def select(
    *cases: Case | None, timeout: float | None = ..., default: Literal[False] = ...
) -> Selected: ...
@overload
async def select(
    *cases: Case | None, timeout: float | None = ..., default: bool
) -> Selected | None: ...
async def select(
    *cases: Case | None, timeout: float | None = None, default: bool = False
) -> Selected | None:
    """Wait for the first ready case among sends and receives, as Go's ``select``.

    When several cases are ready one is picked uniformly at random. ``None``
    cases are ignored (Go's nil channel). A receive case on a closed, drained
    channel is ready and yields ``CLOSED``; a send case on a closed channel is
    ready and raises :class:`SendOnClosed` if picked, as Go panics.

    Atomic with respect to cancellation: a cancelled or timed-out select has
    sent nothing and received nothing.

    Cases on an end of a channel in another process work too: a receive case
    asks the channel's owner for a value while the select waits (so it cannot
    be polled with ``default=True`` or ``timeout=0``), and a send case is
    ready while the end has room in its window.

    Args:
        *cases: ``ch.receiving()`` and ``ch.sending(v)`` cases, or ``None``.
        timeout: seconds to wait before raising ``TimeoutError``.
        default: return ``None`` at once when no case is ready.

    Returns:
        A :class:`Selected` ``(index, case, value)``, where ``index`` is the
        position of the case in the arguments; ``None`` only with
        ``default=True``.

    Raises:
        TimeoutError: ``timeout`` passed with no case ready.
        SendOnClosed: a send case on a closed channel was picked.
        TypeError: an argument is not a case (a channel itself, say).
        ValueError: no case, no default and no timeout: it would wait forever;
            or a negative timeout.
        ActorsError: ``default=True`` or ``timeout=0`` with a receive case on
            an end of a channel in another process.
        ConnectionLost: a case on such an end was picked after its connection
            ended.

    Examples:
        >>> import anyio
        >>> async def main():
        ...     a, b = Channel[str](1), Channel[str](1)
        ...     await b.send("from b")
        ...     return await select(a.receiving(), b.receiving())
        >>> anyio.run(main).value
        'from b'
    """
    live: list[tuple[int, Case]] = []
    for index, case in enumerate(cast("tuple[object, ...]", cases)):
        if case is None:
            continue
        if not isinstance(case, (ReceiveCase, SendCase)):
            hint = (
                " (pass ch.receiving() or ch.sending(value), not the channel)"
                if isinstance(case, Channel)
                else ""
            )
            raise TypeError(
                f"select() argument {index} is {type(case).__name__} {case!r}, not a case{hint}"
            )
        live.append((index, case))
    if timeout is not None and timeout < 0:
        raise ValueError(f"select() timeout must be >= 0, got {timeout!r}")
    if not live and not default and timeout is None:
        raise ValueError("select() with no case, default or timeout waits forever")
    if default or timeout == 0:
        _check_polling(live, default)

    if _tick_all(live):
        await anyio.lowlevel.checkpoint()
    ready = [(index, case) for index, case in live if case._ready()]
    if ready:
        index, case = ready[0] if len(ready) == 1 else random.choice(ready)
        return Selected(index, case, case._complete())
    if default:
        return None
    if timeout == 0:
        raise TimeoutError("select() timed out: no case was ready")

    op = Op()
    waiters = []
    remote: list[tuple[Case, Waiter]] | None = None
    for index, case in live:
        if case._remote:
            # An end of a channel in another process parks through its case.
            waiter = case._park(op, index)
            remote = [] if remote is None else remote
            remote.append((case, waiter))
        else:
            is_send = case.is_send
            waiter = Waiter(op, case.channel, getattr(case, "value", None), index, is_send)
        waiters.append(waiter)
    try:
        if timeout is None:
            await park(op, waiters)
        else:
            with anyio.fail_after(timeout):
                await park(op, waiters)
    finally:
        if remote is not None:
            for case, waiter in remote:
                case._unpark(op, waiter)
    winner = op.winner
    assert isinstance(winner, Waiter)
    case = cases[winner.index]
    assert case is not None
    if case._remote:
        return Selected(winner.index, case, case._result(winner))
    if winner.is_send:
        if winner.closed:
            raise SendOnClosed(f"{winner.channel!r} closed while select was sending")
        return Selected(winner.index, case, None)
    return Selected(winner.index, case, CLOSED if winner.closed else winner.value)


def _check_polling(live: list[tuple[int, Case]], default: bool) -> None:
    # A receive at a channel end in another process learns of a value only by
    # asking the channel's owner: it cannot be polled.
    for _, case in live:
        if case._remote and not case.is_send:
            how = "default=True" if default else "timeout=0"
            raise ActorsError(
                f"select({how}) cannot poll {case.channel!r}: an end of a channel in "
                f"another process learns of a value only by asking for it, a round trip. "
                f"Wait with a timeout instead: select(..., timeout=seconds)"
            )


def _tick_all(live: list[tuple[int, Case]]) -> bool:
    # Fairness for select: the same per-channel budget as plain operations.
    due = False
    for _, case in live:
        ch = case.channel
        ch._tick += 1
        if ch._tick >= YIELD_EVERY:
            ch._tick = 0
            due = True
    return due
