"""Snapshots of a running system, for the live page, ``/metrics`` and the command line.

A snapshot reads the system's state as it is, in one pass on the event loop,
without awaiting: nothing in the system waits for it, and the work is bounded
by ``max_rows`` however many actors there are. A supervisor with more than
``max_children`` children shows the first ones and how many more it has
(a hundred thousand actors make a short snapshot, not a long one).

Rows are flat, depth first, each naming its parent's path, so that two
snapshots compare row by row (see :func:`delta`).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._cell import Cell
    from .._system import ActorSystem

#: Children shown under one actor before the rest are only counted.
DEFAULT_MAX_CHILDREN = 50
#: Rows in one snapshot at most, whatever the tree's size.
DEFAULT_MAX_ROWS = 2000
#: Topic patterns listed at most (the rest are counted).
MAX_TOPICS = 100
#: Longest text kept of a failure.
MAX_TEXT = 300


def snapshot(
    system: ActorSystem,
    *,
    max_children: int = DEFAULT_MAX_CHILDREN,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, Any]:
    """What ``system`` is doing now, as a JSON-ready dict.

    Cheap and non-blocking: one pass over at most ``max_rows`` actors, on the
    system's event loop, with no await (call it from the loop's thread).

    The dict holds ``system`` (its name), ``time`` (Unix seconds),
    ``totals`` (live actors, spawned, dead letters, unobserved dead letters,
    late replies), ``actors`` (rows, depth first: ``path``, ``parent``,
    ``class``, ``state`` (``"restarting"`` for a child waiting out its
    supervisor's backoff, with no incarnation meanwhile), ``mailbox``,
    ``capacity`` (``None`` for unbounded),
    ``processed``, ``restarts``, ``last_failure``, ``dead_letters``,
    ``names``, ``subscriptions`` (``[pattern, group]`` pairs), ``details``,
    ``children`` (how many it has) and ``hidden`` (how many of those are not
    shown)), ``topics`` (each pattern with its subscriber count and groups),
    ``pools`` (process pools and their workers) and ``nodes`` (systems
    connected over TCP, a cluster's links or as a parent: ``link`` is
    ``"connected"`` or ``"parent"``; the other members of a cluster with no
    link yet: ``"member"``).

    Args:
        system: a running actor system.
        max_children: children shown under one actor; the rest are counted
            in its ``hidden``.
        max_rows: actors shown in all; past it, every parent counts what
            it could not show.

    Returns:
        The snapshot.

    Raises:
        ValueError: ``max_children`` or ``max_rows`` is below 1.

    Examples:
        >>> import actors
        >>> from actors.observe import snapshot
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         await system.spawn(actors.Actor, name="a")
        ...         row = snapshot(system)["actors"][0]
        ...         return row["path"], row["state"], row["mailbox"]
        >>> actors.run(main)
        ('/user/a', 'running', 0)
    """
    for what, value in (("max_children", max_children), ("max_rows", max_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"snapshot({what}=...) must be a whole number >= 1, got {value!r}")
    rows: list[dict[str, Any]] = []
    registry = system.registry
    names_of = registry._names_of
    endpoints = registry._endpoints
    broker = registry._broker
    budget = [max_rows]

    def visit(cells: Iterator[Cell], count: int, parent: str) -> int:
        """Add rows for up to ``max_children`` of ``cells``; how many are hidden."""
        shown = 0
        for cell in itertools.islice(cells, max_children):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            shown += 1
            row = _row(cell, parent, names_of, endpoints, broker)
            rows.append(row)
            children = cell.children
            restarting = cell.restarting
            if children or restarting:
                hidden = visit(iter(children.values()), len(children), cell.path)
                if restarting:  # after the live ones, in what room they left
                    room = max_children - (len(children) - hidden)
                    hidden += restarting_rows(cell.path, restarting, room)
                row["hidden"] = hidden
        return count - shown

    def restarting_rows(
        parent: str, restarting: dict[str, tuple[str, int, str | None]], room: int
    ) -> int:
        """Add rows for up to ``room`` children waiting to restart; how many are hidden."""
        shown = 0
        for name, (cls, restarts, failure) in itertools.islice(restarting.items(), max(room, 0)):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            shown += 1
            rows.append(_restarting_row(f"{parent}/{name}", parent, cls, restarts, failure))
        return len(restarting) - shown

    top = system._top
    hidden_top = visit(iter(top.values()), len(top), "/user")
    statistics = system.statistics()
    return {
        "system": system.name,
        "time": time.time(),
        "totals": {
            "actors": statistics.actors,
            "spawned": statistics.spawned,
            "dead_letters": statistics.dead_letters,
            "dead_letters_unobserved": statistics.dead_letters_unobserved,
            "late_replies": statistics.late_replies,
            "hidden_top": hidden_top,
            "shown": len(rows),
        },
        "actors": rows,
        "topics": _topics(system),
        "pools": _pools(system),
        "nodes": _nodes(system),
    }


def _row(cell: Cell, parent: str, names_of: Any, endpoints: Any, broker: Any) -> dict[str, Any]:
    factory = cell.factory
    shown: str | None = getattr(cell.instance, "actor_class", None)  # a process actor's
    capacity = cell.mailbox.capacity
    endpoint = endpoints.get(cell)
    return {
        "path": cell.path,
        "parent": parent,
        "class": shown or str(getattr(factory, "__qualname__", repr(factory))),
        "state": cell.state,
        "mailbox": len(cell.mailbox),
        "capacity": None if capacity == math.inf else int(capacity),
        "processed": cell.processed,
        "restarts": cell.restarts,
        "last_failure": cell.last_failure,
        "dead_letters": cell.dead_letters,
        "names": list(names_of.get(cell, ())),
        "subscriptions": []
        if endpoint is None
        else [list(s) for s in broker.subscriptions(endpoint)],
        "details": dict(cell.details) if cell.details else {},
        "children": len(cell.children),
        "hidden": 0,
    }


def _restarting_row(
    path: str, parent: str, cls: str, restarts: int, failure: str | None
) -> dict[str, Any]:
    return {
        "path": path,
        "parent": parent,
        "class": cls,
        "state": "restarting",
        "mailbox": 0,
        "capacity": None,
        "processed": 0,
        "restarts": restarts,
        "last_failure": failure,
        "dead_letters": 0,
        "names": [],
        "subscriptions": [],
        "details": {},
        "children": 0,
        "hidden": 0,
    }


def _topics(system: ActorSystem) -> dict[str, Any]:
    try:
        topics = system.registry.topics()
    except Exception:  # a broker of another system may not list them
        return {"patterns": [], "hidden": 0}
    return {
        "patterns": [
            {
                "pattern": topic.pattern,
                "subscribers": len(topic.subscribers),
                "groups": [
                    {"name": group.name, "members": len(group.members)} for group in topic.groups
                ],
            }
            for topic in topics[:MAX_TOPICS]
        ],
        "hidden": max(0, len(topics) - MAX_TOPICS),
    }


def _pools(system: ActorSystem) -> list[dict[str, Any]]:
    pools = []
    for pool in list(system._pools.values()):
        workers = []
        for slot, worker in enumerate(pool._slots):
            if worker is None:
                workers.append({"slot": slot, "pid": None, "state": "starting", "actors": 0})
                continue
            state = "up" if worker.alive else "down" if worker.error else "starting"
            actors = len(worker.peer.proxies) if worker.peer is not None else 0
            workers.append({"slot": slot, "pid": worker.pid, "state": state, "actors": actors})
        pools.append(
            {
                "name": pool.name,
                "size": pool.size,
                "state": pool._state,
                "restarts": pool.restarts,
                "error": None if pool.error is None else text(pool.error),
                "workers": workers,
            }
        )
    return pools


def _nodes(system: ActorSystem) -> list[dict[str, Any]]:
    nodes = [
        {"node": node, "link": "connected", "error": None if p.error is None else text(p.error)}
        for node, p in sorted(system._peers.items())
    ]
    upstream = system._upstream
    if upstream is not None:
        nodes.append({"node": upstream.node, "link": "parent", "error": None})
    cluster = system._cluster
    if cluster is not None and cluster.names is not None:
        # Members of the cluster this node has no link to (yet).
        linked = set(system._peers)
        nodes.extend(
            {"node": member, "link": "member", "error": None}
            for member in sorted(cluster.names._members)
            if member != system.name and member not in linked
        )
    return nodes


def text(error: BaseException) -> str:
    """``Type: message`` of an error, cut to :data:`MAX_TEXT` characters."""
    shown = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return shown if len(shown) <= MAX_TEXT else shown[: MAX_TEXT - 1] + "…"


def index(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A snapshot's rows by path."""
    return {row["path"]: row for row in snap["actors"]}


def delta(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What changed from one snapshot's rows to another's (both from :func:`index`):
    ``set`` (new or changed rows) and ``removed`` (paths)."""
    changed = [row for path, row in after.items() if before.get(path) != row]
    removed = [path for path in before if path not in after]
    return {"set": changed, "removed": removed}
