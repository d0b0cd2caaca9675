"""How streams and consumers translate to JetStream's configuration."""

from __future__ import annotations

import datetime
import json
from typing import Any, NoReturn

from .._nats import JetStreamError
from ._errors import DurableError

#: Nanoseconds in a second (JetStream's durations).
NS = 1_000_000_000


def stream_options(config: dict[str, Any], replicas: int) -> dict[str, Any]:
    """The server's options for a stream of ``config`` (as ``streams.create``
    made it), which is kept in the stream's metadata."""
    options: dict[str, Any] = {
        "retention": config["retention"],
        "storage": "file",
        "num_replicas": replicas,
        "metadata": {"actors": json.dumps(config)},
        # publish_many(..., atomic=True): a batch stored all or none.
        "allow_atomic": True,
    }
    if config.get("max_age"):
        options["max_age"] = int(config["max_age"] * NS)
    if config.get("max_msgs"):
        options["max_msgs"] = config["max_msgs"]
    if config.get("max_bytes"):
        options["max_bytes"] = config["max_bytes"]
    window = config.get("dedup_window", 120.0)
    # The server's least window is 100 ms (0 means its default of 2 min).
    options["duplicate_window"] = max(int(0.1 * NS), int(window * NS))
    if config.get("max_age"):
        options["duplicate_window"] = min(options["duplicate_window"], options["max_age"])
    return options


def start_options(start: tuple[str, float] | None) -> dict[str, Any]:
    """The deliver policy of a new consumer starting at ``start``."""
    if start is None:
        return {"deliver_policy": "new"}
    if start[0] == "seq":
        if start[1] > 1:
            return {"deliver_policy": "by_start_sequence", "opt_start_seq": int(start[1])}
        return {"deliver_policy": "all"}
    return {"deliver_policy": "by_start_time", "opt_start_time": rfc3339(start[1])}


def rfc3339(t: float) -> str:
    """Seconds since the epoch as JetStream's time format."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def hidden(name: str) -> bool:
    """Whether a stream holds dead letters (not one of the user's)."""
    return name.startswith("DLQ_")


def config_of(info: dict[str, Any]) -> dict[str, Any]:
    """A stream's options as ``streams.create`` took them, from its info."""
    server = info["config"]
    mine = server.get("metadata", {}).get("actors")
    if mine is not None:
        config: dict[str, Any] = json.loads(mine)
        return config
    # A stream made by other tools: described as well as it translates.
    return {
        "name": server["name"],
        "subjects": list(server.get("subjects") or []),
        "retention": server.get("retention", "limits"),
        "max_age": (server.get("max_age") or 0) / NS or None,
        "max_msgs": None if server.get("max_msgs", -1) < 0 else server["max_msgs"],
        "max_bytes": None if server.get("max_bytes", -1) < 0 else server["max_bytes"],
        "dedup_window": (server.get("duplicate_window") or 0) / NS,
    }


def consumer_options(flt: str, config: dict[str, Any]) -> dict[str, Any]:
    """The server's options for a consumer's ``ack_wait`` and ``max_deliver``."""
    return {
        "ack_wait": int(config["ack_wait"] * NS),
        # None on the server: the store buries a message itself, by its own
        # count. The server's count also takes in deliveries given back
        # (which ours does not), so any limit there stranded a message given
        # back often: never delivered again, never buried.
        "max_deliver": -1,
        "max_ack_pending": -1,
        "metadata": {"actors": json.dumps({"filter": flt, **config})},
    }


def refused(error: JetStreamError, what: str) -> NoReturn:
    """Raise the server's refusal as ValueError (a bad request) or DurableError."""
    if error.code == 400:
        raise ValueError(f"JetStream refused {what}: {error.description}") from error
    raise DurableError(f"JetStream refused {what}: {error.description}") from error
