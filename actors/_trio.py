"""trio, when it is installed: the ``[trio]`` extra, as anyio has it.

The runtime calls trio only from trio's own tasks, so an asyncio-only install
never needs it; modules take ``trio`` from here, and test for ``None`` only
where code runs on both backends (except clauses, module constants).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def _lazy_trio() -> ModuleType | None:
    """trio, imported on first use of one of its names (``importlib.util.LazyLoader``).

    Importing trio costs 0.1-0.3 s, which an asyncio process (a child
    process, a script) would pay for nothing. Its first attribute access
    runs the real import; from then on it is the plain module, at no cost.
    """
    if "trio" in sys.modules:
        return sys.modules["trio"]
    spec = importlib.util.find_spec("trio")
    if spec is None or spec.loader is None:  # pragma: no cover - the asyncio-only install
        return None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["trio"] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import trio as trio
else:
    trio = _lazy_trio()

#: The exceptions that say a thread-safe hand-off found the loop gone
#: (``trio.RunFinishedError`` is a ``RuntimeError``).
LOOP_ENDED: tuple[type[BaseException], ...] = (RuntimeError,)


def require_trio() -> None:
    """Raise a clear error if trio is missing (for ``backend="trio"``)."""
    if trio is None:
        raise ModuleNotFoundError(
            "the trio backend needs trio, which is not installed: "
            "pip install 'structured-actors[trio]'"
        )
