"""Logging dead letters: the first few each, then a periodic summary.

Akka's default: a dead letter usually means a bug or a shutdown race, and a
flood of them (a full ``drop_newest`` mailbox) must neither go unseen nor
drown the log. So the first ``limit`` dead letters are logged one by one at
WARNING on the ``actors.dead_letters`` logger; after that they are counted,
and a summary line is logged when a dead letter arrives ``interval`` seconds
or more after the last line, and when the system closes. Dead letters while
the system shuts down are expected (queued messages of stopping actors) and
are only counted, as in Akka.

# Invariants:
# - ``_logged <= limit``; ``_suppressed`` counts the letters since the last
#   line once the limit is reached.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from ._messages import DeadLetter

logger = logging.getLogger("actors.dead_letters")
_clock = time.monotonic  # (tests replace it)

#: Dead letters logged one by one before they are only summarised.
DEFAULT_LOG_LIMIT: Final = 10

#: Seconds between summary lines once the limit is reached.
DEFAULT_LOG_INTERVAL: Final = 60.0


class DeadLetterLog:
    """What the system logs of its dead letters (see the module docstring)."""

    __slots__ = ("_last_line", "_logged", "_suppressed", "interval", "limit", "shutting_down")

    def __init__(self, limit: int, interval: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(
                f"log_dead_letters must be a whole number >= 0 (0 turns logging off), got {limit!r}"
            )
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(
                f"log_dead_letters_interval must be a positive number of seconds, got {interval!r}"
            )
        self.limit = limit
        self.interval = interval
        self.shutting_down = False
        self._logged = 0
        self._suppressed = 0
        self._last_line = 0.0

    def record(self, letter: DeadLetter) -> None:
        if self.shutting_down or not self.limit:
            return
        if self._logged < self.limit:
            self._logged += 1
            last = self._logged == self.limit
            logger.warning(
                "dead letter: %s%s",
                letter,
                " (further dead letters are summarised every "
                f"{self.interval:g} s; see ActorSystem(log_dead_letters=...))"
                if last
                else "",
            )
            self._last_line = _clock()
            return
        self._suppressed += 1
        now = _clock()
        if now - self._last_line >= self.interval:
            self._summarise(now)

    def close(self) -> None:
        if self._suppressed:
            self._summarise(_clock())

    def _summarise(self, now: float) -> None:
        logger.warning(
            "%d more dead letters in the last %.0f s, not logged one by one "
            "(system.statistics().dead_letters counts them all)",
            self._suppressed,
            now - self._last_line,
        )
        self._suppressed = 0
        self._last_line = now
