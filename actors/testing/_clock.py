"""Virtual time for timer-heavy tests, on both backends.

A test of a 30-second schedule should take milliseconds. On trio this is
``trio.testing.MockClock(autojump_threshold=0)``; on asyncio,
:class:`VirtualClockEventLoop` does the same: whenever every task is waiting and
nothing is ready, the clock jumps to the next timer instead of sleeping.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class _JumpingSelector:
    """Wraps the loop's selector: polls real I/O, and jumps the virtual clock
    instead of blocking until the next timer."""

    def __init__(self, selector: selectors.BaseSelector, loop: VirtualClockEventLoop) -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._selector.select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only real I/O can wake us
            return self._selector.select(None)
        self._loop._now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class VirtualClockEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps ahead whenever it would sleep.

    Time starts at 0 and advances only when every task is blocked waiting for a
    timer, exactly like trio's ``MockClock(autojump_threshold=0)``. Real I/O is
    still polled, so loopback sockets work; a thread doing work in the
    background does not hold the clock back.

    Examples:
        >>> import anyio
        >>> async def main():
        ...     await anyio.sleep(3600)
        ...     return anyio.current_time()
        >>> anyio.run(main, backend_options={"loop_factory": VirtualClockEventLoop})
        3600.0
    """

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        real: Any = self._selector  # type: ignore[has-type]
        self._selector = _JumpingSelector(real, self)

    def time(self) -> float:
        return self._now


def virtual_time(backend: str) -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value that runs ``backend`` on a virtual clock.

    Use it to parametrize the ``anyio_backend`` fixture of timer-heavy tests::

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return actors.testing.virtual_time(request.param)

    Args:
        backend: ``"asyncio"`` or ``"trio"``.

    Returns:
        ``(backend, options)`` for anyio: a fresh trio ``MockClock`` with
        ``autojump_threshold=0``, or :class:`VirtualClockEventLoop`.

    Raises:
        ValueError: an unknown backend.

    Examples:
        >>> virtual_time("asyncio")[0]
        'asyncio'
    """
    if backend == "trio":
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    if backend == "asyncio":
        return ("asyncio", {"loop_factory": VirtualClockEventLoop, "debug": True})
    raise ValueError(f"virtual_time() knows 'asyncio' and 'trio', not {backend!r}")
