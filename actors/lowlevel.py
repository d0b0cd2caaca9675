"""Low-level API for library authors, as ``trio.lowlevel`` is for trio.

Ordinary code does not need it. A library that manages actors on behalf of
its users (a supervisor, a pool, a proxy for an actor elsewhere) does: it
spawns children with options (a registry name, subscriptions, the restart
count and details ``system.tree()`` shows), watches them on behalf of
others, resolves a ref to the runtime's record of that incarnation, and turns
messages it cannot handle into dead letters. The ``supervision`` package is
built on exactly this and the public ``actors`` API.

A library actor that stops its children itself overrides
``Actor.on_stop_children``.

These names are public and follow the same compatibility rules as the rest of
``actors``; the guide's "Low-level API" page shows how they fit together.
"""

from ._cluster_singleton import Singleton as Singleton
from ._lowlevel import Incarnation as Incarnation
from ._lowlevel import check_name as check_name
from ._lowlevel import dead_letter as dead_letter
from ._lowlevel import resolve as resolve
from ._lowlevel import spawn as spawn
from ._lowlevel import spawn_nowait as spawn_nowait
from ._lowlevel import trace_event as trace_event
from ._lowlevel import unwatch as unwatch
from ._lowlevel import watch as watch

__all__ = [
    "Incarnation",
    "Singleton",
    "check_name",
    "dead_letter",
    "resolve",
    "spawn",
    "spawn_nowait",
    "trace_event",
    "unwatch",
    "watch",
]


def _fix_modules() -> None:
    # As in ``actors``: tracebacks, docs and pickles name ``actors.lowlevel.X``.
    for name in __all__:
        globals()[name].__module__ = __name__


_fix_modules()
del _fix_modules
