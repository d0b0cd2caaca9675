"""Reporting code that blocks the event loop: the actor, its message, the line.

Every actor of a system shares one event loop, so a ``receive`` that blocks it
(``time.sleep``, a blocking socket, a long computation) stalls them all, and
asks time out late. A watchdog thread pings the loop every ``threshold / 2``
seconds through the loop's thread-safe callback (asyncio's
``call_soon_threadsafe``, trio's ``TrioToken.run_sync_soon``: no timer, so a
virtual clock is not disturbed). If a ping is not answered within
``threshold``, the loop is blocked: the watchdog reads the loop thread's stack
(``sys._current_frames``), finds the actor whose task is running and the
message it is handling, and logs one WARNING; when the loop answers again it
logs how long the block lasted.

Nothing runs on the hot path: the cost is one callback per half threshold.

# Invariants:
# - At most one watchdog thread per system; it ends when ``stop()`` is
#   called (the system's exit) or the loop is gone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Final

from ._ask import Ask
from ._backend import threadsafe_scheduler
from ._messages import describe
from ._tracing import unwrap
from ._trio import LOOP_ENDED

logger = logging.getLogger("actors.blocking")

#: Seconds the loop may be held before it is reported, when on by default.
DEFAULT_THRESHOLD: Final = 0.1


def default_threshold() -> float | None:
    """The threshold when ``ActorSystem(warn_blocking=None)``: on in a debug
    run (``ACTORS_DEBUG=1`` or ``python -X dev``), else off."""
    if os.environ.get("ACTORS_DEBUG", "") not in ("", "0") or sys.flags.dev_mode:
        return DEFAULT_THRESHOLD
    return None


class Watchdog:
    """One thread that notices a blocked event loop (see the module docstring)."""

    def __init__(self, threshold: float, labels: dict[CodeType, str]) -> None:
        # ``labels``: the code objects of the runtime's actor frames (the
        # mailbox loop, start, shutdown, goroutine), each with what it means.
        self.threshold = threshold
        self._labels = labels
        self._schedule = threadsafe_scheduler()
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="actors watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stopped.is_set():
            pong = threading.Event()
            try:
                self._schedule(pong.set)
            except LOOP_ENDED:
                return  # the loop has ended
            began = time.monotonic()
            if pong.wait(self.threshold):
                self._stopped.wait(self.threshold / 2)
                continue
            if self._stopped.is_set():
                return
            logger.warning("%s", self._describe_block(time.monotonic() - began))
            while not pong.wait(self.threshold):
                if self._stopped.is_set():
                    return
            logger.warning(
                "the event loop ran again after being blocked for %.2f s",
                time.monotonic() - began,
            )

    def _describe_block(self, held: float) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        where = "unknown code"
        if frame is not None:
            code = frame.f_code
            where = f"{code.co_name} ({code.co_filename}:{frame.f_lineno})"
        culprit = _find_actor(frame, self._labels)
        who = "code outside actors" if culprit is None else culprit
        return (
            f"the event loop has been blocked for {held:.2f} s by {who}, now in "
            f"{where}: every actor waits meanwhile; await instead of blocking, "
            f"or run blocking calls with `await anyio.to_thread.run_sync(...)`"
        )


def _find_actor(frame: FrameType | None, labels: dict[CodeType, str]) -> str | None:
    # The innermost frame of the runtime's own actor code on the loop's stack
    # names the actor; the mailbox loop's frame also holds the message.
    while frame is not None:
        label = labels.get(frame.f_code)
        if label is not None:
            try:
                local = frame.f_locals
                path = getattr(local.get("self"), "path", "?")
                message = local.get("message")
            except Exception:  # pragma: no cover - a frame torn down meanwhile
                return "an actor"
            if label == "handling":
                message = unwrap(message)
                if isinstance(message, Ask):
                    message = message.message
                return f"actor {path} handling {describe(message)}"
            return f"actor {path} {label}"
        frame = frame.f_back
    return None
