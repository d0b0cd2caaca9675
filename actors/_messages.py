"""Messages the runtime itself delivers: death notices and dead letters."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ref import ActorRef


_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlevel = 3


def describe(message: Any) -> str:
    """A message for an error text: its type and a short, truncated repr."""
    try:
        text = _short.repr(message)
    except Exception:  # a broken __repr__ must not hide the real error
        text = "<unprintable>"
    return f"{type(message).__name__} {text}"


@dataclass(frozen=True, slots=True)
class Terminated:
    """Sent once to each watcher when a watched actor is gone.

    ``reason`` is ``None`` for a normal stop and the exception for a failure;
    ``killed`` is true if it was cancelled rather than stopped gracefully
    (``ref.kill()``, a stop that outlasted its shutdown timeout, or the system
    cancelled). It arrives through ``receive`` and overtakes queued user
    messages; ``await ref.join()`` returns the same.

    Examples:
        >>> Terminated(ref=None, reason=None).reason is None  # doctest: +SKIP
        True
    """

    ref: ActorRef
    reason: BaseException | None
    killed: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered or handled, and why.

    Dead letters are never silent: they are counted in
    ``system.statistics().dead_letters`` and in ``system.tree()``, logged on
    the ``actors.dead_letters`` logger (the first ten one by one at WARNING,
    then a summary a minute; see ``ActorSystem(log_dead_letters=...)``), offered
    to ``system.dead_letters()``
    streams, and published to the ``actors.dead_letters`` topic. ``topic`` is
    the topic a published message was sent to, ``None`` for a ``tell``.

    Examples:
        >>> DeadLetter("hi", None, "stopped").reason
        'stopped'
    """

    message: Any
    recipient: ActorRef | None
    reason: str
    topic: str | None = None
