"""trio, when it is installed: the ``[trio]`` extra, as anyio has it.

The runtime calls trio only from trio's own tasks, so an asyncio-only install
never needs it; modules take ``trio`` from here, and test for ``None`` only
where code runs on both backends (except clauses, module constants).
"""

from __future__ import annotations

try:
    import trio as trio
    import trio.lowlevel
except ModuleNotFoundError:  # pragma: no cover - the asyncio-only install
    trio = None  # type: ignore[assignment]

#: The exceptions that say a thread-safe hand-off found the loop gone.
LOOP_ENDED: tuple[type[BaseException], ...] = (RuntimeError,) + (
    (trio.RunFinishedError,) if trio is not None else ()
)

#: The backends' cancellation exceptions.
CANCELLED: tuple[type[BaseException], ...] = (trio.Cancelled,) if trio is not None else ()


def require_trio() -> None:
    """Raise a clear error if trio is missing (for ``backend="trio"``)."""
    if trio is None:
        raise ModuleNotFoundError(
            "the trio backend needs trio, which is not installed: "
            "pip install 'structured-actors[trio]'"
        )
