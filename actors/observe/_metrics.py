"""Prometheus's text exposition format (version 0.0.4) of a snapshot, and the
ask latency histogram.

# Invariants:
# - ``ASK_LATENCY`` records while at least one page serves in the process
#   (``_serving`` counts them): ``actors._ask.timing`` is its ``observe``
#   then, and ``None`` otherwise, so asks do no more work without a page.
# - ``counts[i]`` counts the asks of at most ``BUCKETS[i]`` seconds and more
#   than ``BUCKETS[i - 1]``; Prometheus's cumulative buckets are summed when
#   the text is written.
"""

from __future__ import annotations

import bisect
from typing import Any

from .. import _ask

#: Upper bounds (seconds) of the ask latency histogram's buckets, then +Inf.
BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """Counts of durations by bucket, their sum and count (Prometheus's histogram)."""

    __slots__ = ("count", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Count one duration."""
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """The ``_bucket``, ``_sum`` and ``_count`` samples."""
        out = []
        total = 0
        for bound, count in zip((*BUCKETS, None), self.counts, strict=True):
            total += count
            le = "+Inf" if bound is None else repr(bound)
            out.append(f'{name}_bucket{{{labels},le="{le}"}} {total}')
        out.append(f"{name}_sum{{{labels}}} {self.sum!r}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


#: Seconds each ask waited for its answer, in this process, while a page serves.
ASK_LATENCY = Histogram()
_serving = [0]


def serving_started() -> None:
    """A page started serving: record ask latency."""
    _serving[0] += 1
    _ask.timing = ASK_LATENCY.observe


def serving_ended() -> None:
    """A page stopped serving; the last one stops the recording."""
    _serving[0] -= 1
    if not _serving[0]:
        _ask.timing = None


#: ``(name, type, help, row key)`` of the per-actor series.
_ACTOR_SERIES = (
    ("actors_mailbox_depth", "gauge", "Messages waiting in the actor's mailbox.", "mailbox"),
    (
        "actors_messages_processed_total",
        "counter",
        "Messages the incarnation handled.",
        "processed",
    ),
    ("actors_restarts_total", "counter", "Restarts of the actor by its supervisor.", "restarts"),
    (
        "actors_dead_letters_total",
        "counter",
        "Messages addressed to the incarnation that became dead letters.",
        "dead_letters",
    ),
)


def prometheus(
    snap: dict[str, Any],
    durable: dict[str, Any] | None = None,
    asks: Histogram | None = None,
) -> str:
    """A snapshot (and durable consumers' counts, ask latency) as Prometheus text.

    Per-actor series carry ``path`` and ``class`` labels, for the actors the
    snapshot shows (large supervisors are collapsed there, so the series
    stay bounded too); the system's totals carry ``system``.

    Args:
        snap: from :func:`snapshot`.
        durable: from :func:`durable_snapshot`, or ``None``.
        asks: the ask latency histogram (``actors_ask_latency_seconds``),
            or ``None``.

    Returns:
        The exposition text, ending with a newline.

    Examples:
        >>> snap = {"system": "s", "totals": {"actors": 0, "spawned": 0,
        ...     "dead_letters": 2, "dead_letters_unobserved": 1, "late_replies": 0},
        ...     "actors": [], "pools": []}
        >>> "actors_system_dead_letters_total{system=\\"s\\"} 2" in prometheus(snap)
        True
    """
    system = _label(snap["system"])
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    totals = snap["totals"]
    for name, kind, text, key in (
        ("actors_system_actors", "gauge", "Live actors in the system.", "actors"),
        ("actors_system_spawned_total", "counter", "Actors spawned since it started.", "spawned"),
        ("actors_system_dead_letters_total", "counter", "Dead letters.", "dead_letters"),
        (
            "actors_system_dead_letters_unobserved_total",
            "counter",
            "Dead letters no stream or subscriber took.",
            "dead_letters_unobserved",
        ),
        (
            "actors_system_late_replies_total",
            "counter",
            "Replies after the asker left.",
            "late_replies",
        ),
    ):
        family(name, kind, text)
        out.append(f'{name}{{system="{system}"}} {totals[key]}')
    family("actors_mailbox_capacity", "gauge", "The mailbox's capacity (+Inf: unbounded).")
    for row in snap["actors"]:
        capacity = "+Inf" if row["capacity"] is None else row["capacity"]
        out.append(f"actors_mailbox_capacity{{{_actor_labels(system, row)}}} {capacity}")
    for name, kind, text, key in _ACTOR_SERIES:
        family(name, kind, text)
        for row in snap["actors"]:
            out.append(f"{name}{{{_actor_labels(system, row)}}} {row[key]}")
    if snap.get("pools"):
        family("actors_pool_workers_up", "gauge", "Live workers of a process pool.")
        for pool in snap["pools"]:
            up = sum(worker["state"] == "up" for worker in pool["workers"])
            out.append(
                f'actors_pool_workers_up{{system="{system}",pool="{_label(pool["name"])}"}} {up}'
            )
        family("actors_pool_restarts_total", "counter", "Workers started to replace dead ones.")
        for pool in snap["pools"]:
            labels = f'system="{system}",pool="{_label(pool["name"])}"'
            out.append(f"actors_pool_restarts_total{{{labels}}} {pool['restarts']}")
    consumers = (durable or {}).get("consumers") or []
    if consumers:
        for name, text, key in (
            (
                "actors_durable_consumer_pending",
                "Messages the consumer has not settled.",
                "pending",
            ),
            ("actors_durable_consumer_in_flight", "Deliveries out, not settled.", "in_flight"),
            (
                "actors_durable_consumer_dead_letters",
                "Entries in its dead-letter queue.",
                "dead_letters",
            ),
        ):
            family(name, "gauge", text)
            for consumer in consumers:
                labels = (
                    f'system="{system}",stream="{_label(consumer["stream"])}",'
                    f'consumer="{_label(consumer["consumer"])}"'
                )
                out.append(f"{name}{{{labels}}} {consumer[key]}")
    if asks is not None:
        family(
            "actors_ask_latency_seconds",
            "histogram",
            "Seconds an ask waited for its answer (asks in this process while a page serves).",
        )
        out.extend(asks.lines("actors_ask_latency_seconds", f'system="{system}"'))
    return "\n".join(out) + "\n"


def _actor_labels(system: str, row: dict[str, Any]) -> str:
    return f'system="{system}",path="{_label(row["path"])}",class="{_label(row["class"])}"'


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
