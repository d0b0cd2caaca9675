"""Restart strategies and restart intensity, rule for rule as OTP's supervisor.

# Invariants:
# - ``RestartIntensity._times`` holds the restart times that are still inside
#   the window, oldest first; it never holds more than ``max_restarts + 1``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Final, Literal, TypeVar, get_args

#: How a supervisor reacts when a child is to be restarted (OTP's strategies).
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
STRATEGIES: Final[tuple[str, ...]] = get_args(Strategy)

#: When a supervisor stops itself because significant children ended (OTP 24).
AutoShutdown = Literal["never", "any_significant", "all_significant"]
AUTO_SHUTDOWNS: Final[tuple[str, ...]] = get_args(AutoShutdown)

T = TypeVar("T")


def affected(strategy: Strategy, children: Sequence[T], failed: T) -> list[T]:
    """The children a restart of ``failed`` stops and starts again, in start order.

    ``one_for_one``: the failed child alone. ``one_for_all``: every child.
    ``rest_for_one``: the failed child and every child after it. As in OTP the
    group includes children that are not running at the moment (terminated by
    hand, or transient children that ended normally): a group restart starts
    them all.

    Examples:
        >>> affected("rest_for_one", ["a", "b", "c"], "b")
        ['b', 'c']
    """
    if strategy == "one_for_one":
        return [failed]
    if strategy == "one_for_all":
        return list(children)
    index = next(i for i, child in enumerate(children) if child is failed)
    return list(children[index:])


class RestartIntensity:
    """OTP's restart intensity: at most ``max_restarts`` restarts within
    ``within`` seconds.

    Each restart is recorded at the time the supervisor decides it (when the
    child's exit is handled). A restart at time ``now`` counts every recorded
    restart at ``t >= now - within`` (the window includes its edge, as OTP's
    ``add_restart``), plus itself; if that makes more than ``max_restarts``,
    the supervisor gives up instead of restarting. Unlike OTP, which counts in
    whole seconds, times are the event loop's clock at full resolution.

    Examples:
        >>> intensity = RestartIntensity(max_restarts=2, within=5.0)
        >>> [intensity.add(t) for t in (0.0, 1.0, 2.0)]
        [True, True, False]
        >>> intensity.add(7.5)  # 0.0 and 1.0 have left the window
        True
    """

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, max_restarts: int, within: float) -> None:
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int):
            raise TypeError(f"max_restarts must be an int, got {max_restarts!r}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts!r}")
        if isinstance(within, bool) or not isinstance(within, (int, float)):
            raise TypeError(f"within must be a number of seconds, got {within!r}")
        if not 0 < within < math.inf:
            raise ValueError(f"within must be > 0 seconds and finite, got {within!r}")
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; return False if that exceeds the limit."""
        times = self._times
        threshold = now - self.within
        while times and times[0] < threshold:
            times.popleft()
        times.append(now)
        return len(times) <= self.max_restarts

    def recent(self, now: float) -> int:
        """How many recorded restarts are inside the window ending at ``now``."""
        threshold = now - self.within
        return sum(1 for t in self._times if t >= threshold)
