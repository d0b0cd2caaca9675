"""Goroutines: tasks owned by an actor or by an explicit task group."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Protocol

from ._exceptions import ActorsError


class _Spawner(Protocol):
    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], /, *args: Any, name: object = None
    ) -> object: ...


#: The owner that ``go()`` uses when none is passed: set by the actor runtime
#: for the duration of each actor's task.
current_owner: ContextVar[_Spawner | None] = ContextVar("actors_go_owner", default=None)


def go(
    fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, group: _Spawner | None = None
) -> None:
    """Start ``fn(*args)`` as a goroutine, like Go's ``go fn(args)``.

    The goroutine is a task owned by ``group`` if given (an anyio task group,
    or anything with ``start_soon``), otherwise by the actor whose code calls
    ``go``. Its owner waits for it and fails if it raises: inside an actor the
    actor fails; with a task group the group raises. Nothing runs unowned.

    Args:
        fn: an async function.
        *args: positional arguments for ``fn`` (use ``functools.partial`` for
            keywords).
        group: the owner, required outside an actor.

    Raises:
        ActorsError: called outside an actor without ``group``.
        TypeError: ``fn`` is not callable.

    Examples:
        >>> import anyio
        >>> from actors import Channel
        >>> async def main():
        ...     ch = Channel[int]()
        ...     async with anyio.create_task_group() as tg:
        ...         go(ch.send, 42, group=tg)
        ...         return await ch.receive()
        >>> anyio.run(main)
        42
    """
    if not callable(fn):
        raise TypeError(f"go() needs an async function, got {type(fn).__name__} {fn!r}")
    owner = group if group is not None else current_owner.get()
    if owner is None:
        raise ActorsError(
            f"go({getattr(fn, '__qualname__', fn)!r}) outside an actor has no "
            "owner: pass a task group, e.g. go(fn, group=tg) inside "
            "`async with anyio.create_task_group() as tg:`"
        )
    owner.start_soon(fn, *args)
