"""Channels handed to other processes: pickling one exports it, by number.

A buffered channel pickled for another process stays in the system that
pickled it, whose table (:func:`exports`) holds it under a number; it
unpickles there as itself, and elsewhere as an end of it
(:class:`~actors._remote_channel.RemoteChannel`) reached through
:mod:`actors._wire_channel`.
"""

# Invariants:
# - A channel is in at most one system's table, under one number, and its
#   ``_export`` is that entry; numbers are never reused within a system.
# - A channel leaves its table only when it is closed and drained and no far
#   end has values queued or receives waiting for it.

from __future__ import annotations

import itertools
import math
import weakref
from typing import TYPE_CHECKING, Any

from ._channel import Channel
from ._exceptions import ActorsError
from ._ref import system_here

if TYPE_CHECKING:
    from ._system import ActorSystem
    from ._wire_channel import Far


def export(channel: Channel[Any]) -> tuple[Any, ...]:
    """``Channel.__reduce__``: export ``channel`` from the running system and
    return how the other side makes an end of it."""
    capacity = channel._capacity
    if capacity == 0:
        raise TypeError(
            f"{channel!r} is a rendezvous channel (capacity 0): it cannot be sent to "
            f"another process, where a send could not wait for its receiver without a "
            f"round trip per value. Send a buffered one, Channel(n) with n >= 1: n is "
            f"how many values a sender over there may have on their way"
        )
    if capacity == math.inf:
        raise TypeError(
            f"{channel!r} is unbounded: it cannot be sent to another process, where "
            f"its capacity bounds the values on their way. Send a Channel(n) with a "
            f"whole number n >= 1"
        )
    system = system_here()
    if system is None:
        raise TypeError(
            f"{channel!r} can be pickled only inside an actor system, in a message "
            f"for another process (it stays here, and the other side gets an end of it)"
        )
    record = channel._export
    if record is None:
        record = exports(system).add(channel)
    elif record.owner != system.name:
        raise TypeError(
            f"{channel!r} was handed to other processes by actor system "
            f"{record.owner!r}; send it from there, not from {system.name!r}"
        )
    return (restore, (system.name, record.number, int(capacity)))


def restore(owner: str, number: int, capacity: int) -> Channel[Any]:
    """Unpickle a channel: itself in its owner's system, else an end of it."""
    system = system_here()
    if system is None:
        raise ActorsError(
            f"an end of channel #{number} of {owner} can be unpickled only inside an "
            f"actor system connected to {owner}"
        )
    if owner == system.name:
        record = exports(system).get(number)
        if record is not None:
            return record.channel
        gone: Channel[Any] = Channel(capacity)  # closed and drained since
        gone.close()
        return gone
    peer = system._route(owner)  # to the owner, or to a system that reaches it
    if peer is None:
        raise ActorsError(
            f"an end of channel #{number} of {owner} reached {system.name}, which is "
            f"not connected to {owner}, directly or through another system: send the "
            f"channel only where {owner} can be reached"
        )
    return peer.channels.end(owner, number, capacity)


class Export:
    """One channel handed to other processes: its number, and its far ends."""

    __slots__ = ("channel", "far", "number", "owner")

    def __init__(self, channel: Channel[Any], owner: str, number: int) -> None:
        self.channel = channel
        self.owner = owner
        self.number = number
        self.far: dict[Far, None] = {}

    def closed(self, channel: Channel[Any]) -> None:
        """The channel closed here (``Channel.close``): tell its ends."""
        for far in list(self.far):
            far.tell("closed")


class _Exports:
    """The channels a system has handed to other processes, by number."""

    __slots__ = ("_numbers", "_sweep_at", "by_number", "owner")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.by_number: dict[int, Export] = {}
        self._numbers = itertools.count(1)
        self._sweep_at = 64

    def add(self, channel: Channel[Any]) -> Export:
        if len(self.by_number) >= self._sweep_at:
            self._sweep()
            self._sweep_at = max(64, 2 * len(self.by_number))
        record = Export(channel, self.owner, next(self._numbers))
        self.by_number[record.number] = record
        channel._export = record
        return record

    def get(self, number: int) -> Export | None:
        return self.by_number.get(number)

    def _sweep(self) -> None:
        # A channel closed and drained has nothing left to give: forget it,
        # and its ends get "drained" from now on.
        for number, record in list(self.by_number.items()):
            channel = record.channel
            if channel._closed and not channel._buffer and not any(f.busy() for f in record.far):
                del self.by_number[number]
                channel._export = None
                for far in record.far:
                    far.wires.far.pop((far.node, number), None)


_EXPORTS: weakref.WeakKeyDictionary[ActorSystem, _Exports] = weakref.WeakKeyDictionary()


def exports(system: ActorSystem) -> _Exports:
    """The table of the channels ``system`` exported."""
    table = _EXPORTS.get(system)
    if table is None:
        table = _EXPORTS[system] = _Exports(system.name)
    return table
