"""Exponential backoff between restarts, as in Akka's backoff supervisor."""

from __future__ import annotations

import builtins
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay restarts exponentially, with jitter, and reset once a child is stable.

    Give it to a supervisor (``Supervisor(backoff=...)``: every child) or to one
    child (``ChildSpec(..., backoff=...)``, which wins). The ``n``-th restart in
    a row (counting from 0) waits ``min(max, min * factor ** n)`` seconds,
    stretched by a random factor in ``[1, 1 + jitter)`` so that children that
    crashed together do not all come back at once (as Akka's ``randomFactor``;
    the delay can therefore reach ``max * (1 + jitter)``).

    A child that ran for at least ``reset_after`` seconds (default: ``max``)
    before it exited is stable: its next restart waits ``min`` again.

    While a child waits, it has no incarnation: ``which_children`` shows it as
    ``"restarting"`` with ``ref=None``, messages to its old ref become dead
    letters, and its registry name is unregistered until the new incarnation
    registers it again. Each delayed restart still counts toward the
    supervisor's restart intensity, when the child exits.

    Args:
        min: the first delay in seconds (> 0).
        max: the largest delay before jitter (>= ``min``).
        factor: growth per restart in a row (>= 1).
        jitter: the random stretch, a fraction of the delay (>= 0).
        reset_after: seconds a child must run to count as stable; ``None``
            means ``max``.

    Raises:
        ValueError: a value out of range.
        TypeError: a value that is not a number.

    Examples:
        >>> backoff = Backoff(min=0.1, max=2.0, jitter=0)
        >>> delays = [backoff.delay(n) for n in range(6)]
        >>> delays
        [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    """

    min: float
    max: float
    factor: float = 2.0
    jitter: float = 0.2
    reset_after: float | None = None

    def __post_init__(self) -> None:
        for field in ("min", "max", "factor", "jitter"):
            _check_number(field, getattr(self, field))
        if self.reset_after is not None:
            _check_number("reset_after", self.reset_after)
        if not 0 < self.min < math.inf:
            raise ValueError(f"Backoff min must be > 0 seconds and finite, got {self.min!r}")
        if not self.min <= self.max < math.inf:
            raise ValueError(
                f"Backoff max must be finite and >= min ({self.min!r}), got {self.max!r}"
            )
        if not 1 <= self.factor < math.inf:
            raise ValueError(f"Backoff factor must be >= 1, got {self.factor!r}")
        if not 0 <= self.jitter < math.inf:
            raise ValueError(f"Backoff jitter must be >= 0 (a fraction), got {self.jitter!r}")
        if self.reset_after is not None and not 0 < self.reset_after < math.inf:
            raise ValueError(
                f"Backoff reset_after must be > 0 seconds and finite, got {self.reset_after!r}"
            )

    @property
    def stable_after(self) -> float:
        """Seconds a child must run before its backoff resets (``reset_after``
        or, by default, ``max``).

        Examples:
            >>> Backoff(min=1, max=30).stable_after
            30
        """
        return self.max if self.reset_after is None else self.reset_after

    def delay(self, attempt: int, random: Callable[[], float] = random.random) -> float:
        """The delay before restart number ``attempt`` in a row (0 is the first).

        Args:
            attempt: how many restarts in a row came before this one.
            random: a source of floats in ``[0, 1)`` for the jitter.

        Returns:
            Seconds to wait.

        Examples:
            >>> Backoff(min=1, max=10, jitter=0.5).delay(3, random=lambda: 1.0)
            12.0
        """
        try:
            base = builtins.min(self.max, self.min * self.factor**attempt)
        except OverflowError:
            base = self.max
        if self.jitter:
            base *= 1 + self.jitter * random()
        return base


def _check_number(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Backoff {field} must be a number, got {value!r}")
