"""The ask protocol: a question in an actor's mailbox, and its one-shot answer.

An ask travels as an :class:`Ask` envelope: the question, and the reply slot
the asker parks on. This module owns every way an ask can end: the value
``receive`` returned, a failure of the actor, a deferred reply's value or
error, the actor stopping first, a full mailbox dropping it, a ``receive``
that did not handle it, or the asker's deadline. The others only call it:
``ActorRef.ask`` sends and waits, ``Cell`` answers what it handles or
abandons, ``ActorSystem`` answers an envelope that becomes a dead letter,
``Reply`` answers later.

The slot is a ``Signal`` for exactly one waiter, without the waiter list, and
the envelope itself: asks are the hottest wait in the runtime (the "ask round
trip" rows of ``python -m benchmarks.actors``).

# Invariants:
# - An envelope is answered at most once (``answered``); an answer that comes
#   after the asker gave up (``closed``) is dropped, and whoever gave it
#   counts a late reply.
# - Every envelope that enters a mailbox is answered, or closed by its asker:
#   the answering side of each path above is a method here.
# - Only the asker parks on the slot (``park``: ``_future`` or ``_task``),
#   reads the answer (``result``) and closes it; a deadline only wakes it
#   (``expire``).
# - ``timing`` is None unless a live page serves in the process; only then
#   does ``park`` note the time (``_parked``) and ``unpark`` report the wait
#   of an answered ask to it, so asks do no more work without a page.
"""

from __future__ import annotations

import math
from asyncio import Future
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from ._backend import asyncio_loop
from ._exceptions import ActorFailed, ActorStopped, AskTimeout, MailboxFull, UnhandledMessage
from ._messages import describe
from ._trio import trio

if TYPE_CHECKING:
    from ._deadlines import Deadlines

# How an ask ended without a value; the asker raises the matching error.
STOPPED: Final = "stopped"  # ActorStopped
FAILED: Final = "failed"  # ActorFailed, caused by the error
DROPPED: Final = "dropped"  # MailboxFull
UNHANDLED: Final = "unhandled"  # UnhandledMessage
ERROR: Final = "error"  # the error itself (Reply.fail)

#: Told the seconds each answered ask waited, while a live page serves
#: (``actors.observe``'s ask latency histogram); else None.
timing: Callable[[float], None] | None = None


class Outcome:
    """A non-value answer: the actor stopped, failed, dropped or did not
    handle the question, or a deferred reply failed it."""

    __slots__ = ("error", "kind")

    def __init__(self, kind: str, error: BaseException | None = None) -> None:
        self.kind = kind
        self.error = error


class Ask:
    """An ask in a mailbox: the question, and its one-shot reply slot."""

    __slots__ = (
        "_future",
        "_parked",
        "_task",
        "answered",
        "closed",
        "message",
        "on_close",
        "value",
    )

    def __init__(self, message: Any) -> None:
        self.message = message
        self.answered = False
        self.closed = False  # the asker gave up (timeout, cancellation)
        self.value: Any = None
        self._future: Any = None
        self._task: Any = None
        #: Called when the asker gives up unanswered: an ask forwarded to
        #: another process cancels its remote handler.
        self.on_close: Callable[[Ask], None] | None = None

    def close(self) -> None:
        """The asker gives up (timeout, cancellation): an answer is late."""
        self.closed = True
        if self.on_close is not None and not self.answered:
            on_close, self.on_close = self.on_close, None
            on_close(self)

    # -- the answering side ---------------------------------------------------

    def put(self, value: Any) -> bool:
        """Answer with ``value``; False if the asker already gave up (late)."""
        if self.closed or self.answered:
            return False
        self.value = value
        self.answered = True
        self.expire()  # wakes the asker, which now finds the answer
        return True

    def put_failure(self, error: BaseException) -> bool:
        """The actor failed handling the question: ``ActorFailed``."""
        return self.put(Outcome(FAILED, error))

    def put_error(self, error: BaseException) -> bool:
        """A deferred reply failed it: the asker raises ``error`` itself."""
        return self.put(Outcome(ERROR, error))

    def put_outcome(self, kind: str) -> bool:
        """``STOPPED``, ``DROPPED`` or ``UNHANDLED``."""
        return self.put(Outcome(kind))

    def undeliverable(self, reason: str) -> Any:
        """The envelope became a dead letter (``reason`` as the letter says):
        answer the asker, and return the question for the letter."""
        if reason == "unhandled":
            kind = UNHANDLED
        elif reason.startswith("mailbox full"):
            kind = DROPPED
        else:
            kind = STOPPED
        self.put(Outcome(kind))
        return self.message

    # -- the asking side ------------------------------------------------------

    def park(self, left: float, deadlines: Deadlines | None) -> Awaitable[Any]:
        """Make the slot wake the running task when answered, or after
        ``left`` seconds (the system's ``deadlines`` keep the time); the
        asker awaits what this returns, then calls :meth:`unpark` however the
        wait ended (a plain call and an await, not a coroutine of its own: a
        frame less per ask).
        """
        loop = asyncio_loop()
        if timing is not None:  # a page serves: its ask latency histogram
            self._parked = loop.time() if loop is not None else trio.current_time()
        # Deadlines.pending and .earlier inlined (see there): the
        # registration was a twentieth of an ask's instructions.
        if left != math.inf and deadlines is not None:
            pending = deadlines.pending
            if pending is not None:
                deadline = (loop.time() if loop is not None else trio.current_time()) + left
                pending[self] = deadline
                if deadline < deadlines.target:
                    deadlines.earlier(deadline)
        if loop is not None:
            future: Future[None] = Future(loop=loop)
            self._future = future
            return future
        self._task = trio.lowlevel.current_task()
        return trio.lowlevel.wait_task_rescheduled(self._abort)

    def unpark(self, deadlines: Deadlines | None) -> None:
        """The wait has ended: forget the deadline."""
        if deadlines is not None and (pending := deadlines.pending) is not None:
            pending.pop(self, None)
        if timing is not None and self.answered:
            self._report()

    def _report(self) -> None:
        parked = getattr(self, "_parked", None)  # None: the page opened meanwhile
        if parked is not None and timing is not None:
            loop = asyncio_loop()
            timing((loop.time() if loop is not None else trio.current_time()) - parked)

    def expire(self) -> None:
        """Wake the asker; without an answer its deadline has passed."""
        if self._future is not None:
            if not self._future.done():
                self._future.set_result(None)
        elif self._task is not None:
            task, self._task = self._task, None
            trio.lowlevel.reschedule(task)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def result(self, path: str, timeout: float | None) -> Any:
        """The answer for the asker of ``path``: the value, or the error that
        says how the ask ended. Closes an unanswered slot.

        Raises:
            AskTimeout: no answer (the deadline passed).
            ActorStopped: the actor stopped first.
            ActorFailed: it failed handling the question.
            MailboxFull: its full mailbox dropped the question.
            UnhandledMessage: its ``receive`` did not handle it.
            Exception: what a deferred reply failed it with.
        """
        if not self.answered:
            self.close()
            raise AskTimeout(
                f"{path} did not answer {describe(self.message)} within "
                f"{timeout} s; raise the timeout or check that it is not blocked"
            )
        answer = self.value
        if type(answer) is not Outcome:
            return answer
        what = describe(self.message)
        kind = answer.kind
        if kind == STOPPED:
            raise ActorStopped(f"{path} stopped before answering {what}")
        if kind == ERROR:
            raise answer.error  # type: ignore[misc]
        if kind == UNHANDLED:
            raise UnhandledMessage(f"{path} did not handle {what}: its receive has no case for it")
        if kind == DROPPED:
            raise MailboxFull(
                f"the mailbox of {path} was full and its overflow policy dropped {what}"
            )
        raise ActorFailed(f"{path} failed handling {what}: {answer.error!r}") from answer.error
