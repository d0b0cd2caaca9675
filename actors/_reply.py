"""Deferred replies: an ask answered after ``receive`` has returned.

OTP's ``gen_server:reply/2`` and Akka's ``replyTo``: an actor that takes an
ask's reply with ``self.context.reply_later()`` goes on handling messages and
answers when it can, typically when a result it piped to itself arrives.

# Invariants:
# - A ``Reply`` is in its cell's ``deferred`` set until it is answered; the
#   cell answers every one still there with ``ActorStopped`` when it ends,
#   so no asker waits for a reply that cannot come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ask import STOPPED, Ask
from ._exceptions import ActorsError

if TYPE_CHECKING:
    from ._cell import Cell


class Reply:
    """The reply to one ask, to give later: from ``self.context.reply_later()``.

    Answer it once, with :meth:`send` or :meth:`fail`, from the actor's task
    or one of its goroutines. If the actor ends first, the asker gets
    :class:`ActorStopped`; if the asker gave up first (timeout, cancellation),
    the answer is dropped and counted as a late reply.

    Examples:
        >>> import actors
        >>> class Later(actors.Actor):
        ...     async def receive(self, message):
        ...         match message:
        ...             case "ask":
        ...                 self.pending = self.context.reply_later()
        ...             case "answer now":
        ...                 self.pending.send("answered later")
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(Later)
        ...         async with anyio.create_task_group() as tg:
        ...             replies = []
        ...             async def ask():
        ...                 replies.append(await ref.ask("ask"))
        ...             tg.start_soon(ask)
        ...             await anyio.wait_all_tasks_blocked()
        ...             await ref.tell("answer now")
        ...         return replies
        >>> import anyio
        >>> actors.run(main)
        ['answered later']
    """

    __slots__ = ("_ask", "_cell")

    def __init__(self, ask: Ask, cell: Cell) -> None:
        self._ask = ask
        self._cell = cell

    def __repr__(self) -> str:
        state = "answered" if self.done else "pending"
        return f"<Reply of {self._cell.path} to {type(self._ask.message).__name__}: {state}>"

    @property
    def message(self) -> Any:
        """The message that was asked."""
        return self._ask.message

    @property
    def done(self) -> bool:
        """Whether it has been answered (by us, or by the actor's end), or
        the asker has given up."""
        return self._ask.answered or self._ask.closed

    def send(self, value: Any) -> bool:
        """Answer the ask with ``value``: ``ask`` returns it.

        Returns:
            ``False`` if the asker had already given up (nothing delivered).

        Raises:
            ActorsError: it was already answered.
        """
        return self._answer(value)

    def fail(self, error: BaseException) -> bool:
        """Answer the ask with an error: ``ask`` raises ``error`` itself (the
        actor has not failed, so this is not :class:`ActorFailed`).

        Returns:
            ``False`` if the asker had already given up.

        Raises:
            TypeError: ``error`` is not an exception.
            ActorsError: it was already answered.
        """
        if not isinstance(error, Exception):
            raise TypeError(f"Reply.fail() needs an Exception, got {error!r}")
        self._check_unanswered()
        if self._ask.put_error(error):
            return True
        self._cell.system._late_reply()
        return False

    def _abandon(self) -> None:
        """The actor ended without answering: the asker gets ``ActorStopped``."""
        self._ask.put_outcome(STOPPED)

    def _answer(self, value: Any) -> bool:
        self._check_unanswered()
        if self._ask.put(value):
            return True
        self._cell.system._late_reply()
        return False

    def _check_unanswered(self) -> None:
        if self._ask.answered:
            raise ActorsError(f"{self!r} was already answered: answer an ask once")
        self._cell.deferred_done(self)
