"""Channels across processes: the channel stays home, an end crosses.

A buffered :class:`~actors.Channel` pickled into a message for another
process stays in the system that pickled it (its owner), which exports it
under a number; the other side unpickles a :class:`~actors._remote_channel.RemoteChannel`, a
``Channel`` whose operations are messages to the owner over the connection
(``Kind.CHANNEL`` envelopes, addressed ``number NUL node NUL op``). Go withdrew
``netchan`` before Go 1; this keeps what a connection can keep of a channel:

- Sending from an end spends a credit. An end starts with ``capacity``
  credits, and the owner returns one when a value from it enters the channel
  (its buffer, or a waiting receiver): a remote sender runs at most
  ``capacity`` values ahead of the channel, and waits while the receiving
  side is full.
- Receiving at an end asks the owner for one value per waiting receive
  (``want``). The owner receives on its behalf and sends the value over; a
  receive that ends without one (cancelled, or another ``select`` case won)
  withdraws (``unwant``), and a value that arrives with nobody waiting for it
  goes back to the head of the channel (``back``).
- ``close`` is a message, queued behind the values sent before it. A close at
  the owner is told to the ends it has heard from (``closed``); a receive
  that finds the channel closed and empty tells its end (``drained``).
- When the connection ends, the ends over it raise :class:`ConnectionLost`,
  and values that had reached the owner but not the channel become dead
  letters.
- An owner and an end that reach each other only through a third system (a
  child's channel at its sibling) talk through it: it passes their envelopes
  on as they are, keeps the route, and when either connection ends tells the
  other side (``lost`` to the end, ``gone`` to the owner).

Rendezvous (``Channel(0)``) and unbounded channels do not cross: pickling one
raises ``TypeError`` (the codec's ``UnpicklableMessage``).
"""

# Invariants:
# - Owner side, per remote end (``Far``): values from one end enter the
#   channel in arrival order: while ``queue`` holds any, new ones (and a
#   close) join it, and only its feeder task takes from it. Each value is in
#   the channel with its credit sent back, in ``queue``, or a dead letter.
# - Owner side: the pump runs only while ``wanted`` > 0, and receives one
#   value at a time; ``scope`` is its receive's cancel scope while it waits.
# - A route in ``relayed`` is in the tables of both connections it joins,
#   each naming the other, until its channel is drained at that end or either
#   connection ends; then the other side has been told.
# - The ends' invariants are in ``actors._remote_channel``.

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._channel_export import Export, exports
from ._codec import dumps, loads
from ._envelope import Envelope, Kind
from ._exceptions import (
    UNSENDABLE,
    ActorsError,
    ChannelDrained,
    ConnectionLost,
    SendOnClosed,
    WouldBlock,
)
from ._remote_channel import RemoteChannel

if TYPE_CHECKING:
    from ._peer import Peer

logger = logging.getLogger("actors.peer")

_NO_HEADERS: Final[dict[str, str]] = {}
_CLOSE: Final[Any] = object()  # a close from an end, queued behind its values
_BROKEN: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError)

# Operations an end asks of the owner, and the owner's answers.
# ("gone" and "lost" come from a system in between, when the end's or the
# owner's connection to it ends.)
_AT_OWNER: Final = frozenset({"put", "want", "unwant", "back", "close", "gone"})
_AT_END: Final = frozenset({"credit", "value", "closed", "drained", "lost"})


class Far:
    """The owner's side of one remote end of one exported channel."""

    __slots__ = (
        "channel",
        "export",
        "feeder",
        "node",
        "number",
        "pumping",
        "queue",
        "scope",
        "wanted",
        "wires",
    )

    def __init__(self, wires: WireChannels, node: str, record: Export) -> None:
        self.wires = wires
        self.node = node
        self.export = record
        self.channel = record.channel
        self.number = record.number
        self.queue: deque[Any] = deque()
        self.wanted = 0
        self.pumping = False
        self.scope: anyio.CancelScope | None = None  # the pump's, while it waits
        self.feeder: anyio.CancelScope | None = None

    def busy(self) -> bool:
        return bool(self.queue) or self.pumping

    def tell(self, op: str, count: int = 0, body: bytes = b"") -> None:
        # If it fails, the connection is ending: its end learns it that way.
        with contextlib.suppress(*_BROKEN):
            self.wires.send(self.node, self.number, op, count, body)

    def dead(self, value: Any, why: str) -> None:
        self.wires.dead_letter(value, f"a value for {self.channel!r} from {self.node}: {why}")

    def give(self, value: Any) -> None:
        # A value received for the end: over it goes.
        try:
            self.tell("value", 0, dumps(value))
        except UNSENDABLE as error:
            self.dead(value, f"it cannot go over ({error})")
            self.wanted += 1  # its receive still waits

    def drained(self) -> None:
        self.wanted = 0
        self.tell("drained")


# -- the connection's channel traffic -----------------------------------------------


class WireChannels:
    """The channels with an end on each side of one connection (``peer.channels``).

    ``receive`` is called by the connection's reader for every ``CHANNEL``
    envelope and never waits: what has to wait (a value for a full channel, a
    receive from an empty one) is done by a task of the connection.
    """

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        #: Ends here of channels owned over there, by (owner, number).
        self.ends: dict[tuple[str, int], RemoteChannel[Any]] = {}
        #: Ends over there of channels owned here, by (node of the end, number).
        self.far: dict[tuple[str, int], Far] = {}
        #: Channels whose traffic this system passes on between this connection
        #: and another, by (owner, number, node of the end): the other
        #: connection, and whether the owner is on its side.
        self.relayed: dict[tuple[str, int, str], tuple[Peer, bool]] = {}
        self.lost: BaseException | None = None

    def end(self, owner: str, number: int, capacity: int) -> RemoteChannel[Any]:
        """The end here of channel ``number`` of ``owner`` (one per connection)."""
        key = (owner, number)
        end = self.ends.get(key)
        if end is None:
            end = RemoteChannel(self, owner, number, capacity)
            if self.lost is not None:
                end._lose(self.lost)
            else:
                self.ends[key] = end
        return end

    def send(
        self,
        node: str,
        number: int,
        op: str,
        count: int = 0,
        body: bytes = b"",
        sender: str | None = None,
    ) -> None:
        """Send ``op`` about channel ``number`` to ``node`` (from ``sender``,
        this system unless it speaks for another).

        Raises:
            anyio.BrokenResourceError: The connection failed.
            anyio.ClosedResourceError: The connection is closed.
        """
        to = f"{number}\0{node}\0{op}"
        sender = self.peer.system.name if sender is None else sender
        envelope = Envelope(Kind.CHANNEL, to, sender, count, _NO_HEADERS, body)
        # Urgent: not held back by a full send queue, since credits bound
        # what an end sends and wants bound what an owner sends.
        self.peer.wire.send_urgent(envelope)

    def dead_letter(self, value: Any, reason: str) -> None:
        self.peer.system._dead_letter(value, None, reason)

    def _start(self, work: Callable[[Far], Coroutine[Any, Any, None]], far: Far) -> None:
        task_group = self.peer._task_group
        assert task_group is not None, "the reader runs inside the connection's task group"
        task_group.start_soon(self.peer._guard, partial(work, far))

    # -- the reader's dispatch -------------------------------------------------------

    def receive(self, envelope: Envelope) -> None:
        """Handle one ``CHANNEL`` envelope (from the connection's reader)."""
        number_text, node, op = envelope.to.split("\0", 2)
        number = int(number_text)
        if node != self.peer.system.name:
            self._relay(envelope, node, number, op)
            return
        sender = envelope.sender
        if op in _AT_END:
            self._at_end(op, self.ends.get((sender, number)), envelope, number)
        elif op in _AT_OWNER:
            self._at_owner(op, sender, number, envelope)
        else:
            logger.warning("%s sent an unknown channel operation %r", self.peer.node, op)

    def _at_end(
        self, op: str, end: RemoteChannel[Any] | None, envelope: Envelope, number: int
    ) -> None:
        if op == "value":
            if end is None or not end._inbox._receiver_parked():
                # Nobody waits for it here (any more): back to the channel.
                with contextlib.suppress(*_BROKEN):
                    self.send(envelope.sender, number, "back", 0, envelope.body)
                return
            try:
                value = loads(envelope.body)
            except Exception as error:
                self.dead_letter(
                    envelope.body,
                    f"a value from {end!r} cannot be unpickled here ({error!r}): make its "
                    f"class importable in both processes",
                )
                with contextlib.suppress(ConnectionLost):
                    end._ship("want", 1)  # the receive still waits
                return
            end._inbox._wake_receiver(value)
        elif end is None:
            return
        elif op == "credit":
            end._grant(envelope.reply_token)
        elif op == "closed":
            end._closed_by_owner()
        elif op == "drained":
            end._drained_by_owner()
            self.ends.pop((envelope.sender, number), None)
        else:  # lost: the owner's connection to the system in between ended
            end._lose(ConnectionLost(envelope.body.decode()))
            self.ends.pop((envelope.sender, number), None)

    def _at_owner(self, op: str, node: str, number: int, envelope: Envelope) -> None:
        far = self.far.get((node, number))
        if op == "gone":  # the end's connection to the system in between ended
            if far is not None:
                self._forget(far)
            return
        if far is None:
            record = exports(self.peer.system).get(number)
            if record is None:
                self._unknown(op, node, number, envelope)
                return
            far = self.far[(node, number)] = Far(self, node, record)
            record.far[far] = None
        if op == "put":
            self._on_put(far, envelope)
        elif op == "want":
            self._on_want(far, envelope.reply_token)
        elif op == "unwant":
            far.wanted = max(0, far.wanted - envelope.reply_token)
            if not far.wanted and far.scope is not None:
                far.scope.cancel()
        elif op == "back":
            self._on_back(far, envelope)
        elif far.queue:  # close, behind the values sent before it
            far.queue.append(_CLOSE)
        else:
            far.channel.close()

    def _forget(self, far: Far) -> None:
        # The end is gone: what waits for it stops, what it sent and had not
        # entered the channel becomes dead letters (the feeder's end).
        self.far.pop((far.node, far.number), None)
        far.export.far.pop(far, None)
        far.wanted = 0
        for scope in (far.scope, far.feeder):
            if scope is not None:
                scope.cancel()

    def _unknown(self, op: str, node: str, number: int, envelope: Envelope) -> None:
        # A channel closed and drained, then forgotten (or never ours).
        if op in ("put", "back"):
            self.dead_letter(envelope.body, f"a value for channel #{number}, closed and drained")
        if op in ("put", "want"):
            with contextlib.suppress(*_BROKEN):
                self.send(node, number, "drained")

    # -- passing traffic on ---------------------------------------------------------

    def _relay(self, envelope: Envelope, node: str, number: int, op: str) -> None:
        # Traffic between an owner and an end that reach each other through
        # this system (a child process's channel at its sibling, say): passed
        # on as it is, and the route kept, so that when either connection
        # ends the other side is told.
        at_owner = op in _AT_OWNER
        owner, end = (node, envelope.sender) if at_owner else (envelope.sender, node)
        key = (owner, number, end)
        onward = self.peer.system._route(node)
        try:
            if onward is None or onward is self.peer or onward.error is not None:
                raise anyio.BrokenResourceError
            onward.wire.send_urgent(envelope)
        except _BROKEN:
            self._unreachable(key, at_owner, op, envelope)
            return
        if op in ("drained", "lost", "gone"):
            self.relayed.pop(key, None)
            onward.channels.relayed.pop(key, None)
        elif key not in self.relayed:
            self.relayed[key] = (onward, at_owner)
            onward.channels.relayed[key] = (self.peer, not at_owner)

    def _unreachable(
        self, key: tuple[str, int, str], at_owner: bool, op: str, envelope: Envelope
    ) -> None:
        owner, number, end = key
        node = owner if at_owner else end
        if op in ("put", "value", "back"):
            self.dead_letter(
                envelope.body,
                f"a value of channel #{number} of {owner} on its way to {node}, which "
                f"{self.peer.system.name} cannot reach",
            )
        if op in ("gone", "lost", "drained"):
            return
        with contextlib.suppress(*_BROKEN):
            if at_owner:  # tell the end that its owner cannot be reached
                why = f"{self.peer.system.name} cannot reach {owner}, the channel's owner"
                self.send(end, number, "lost", 0, why.encode(), sender=owner)
            else:
                self.send(owner, number, "gone", sender=end)

    def _load(self, far: Far, envelope: Envelope) -> tuple[bool, Any]:
        try:
            return True, loads(envelope.body)
        except Exception as error:
            far.dead(
                envelope.body,
                f"it cannot be unpickled here ({error!r}): make its class importable "
                f"in both processes",
            )
            return False, None

    # -- values sent from an end ---------------------------------------------------

    def _on_put(self, far: Far, envelope: Envelope) -> None:
        ok, value = self._load(far, envelope)
        if not ok:
            far.tell("credit", 1)
            return
        queue = far.queue
        if queue:
            if len(queue) > far.channel._capacity:
                raise ActorsError(
                    f"{self.peer.node} sent more values to {far.channel!r} than its "
                    f"credits allow: closing the connection"
                )
            queue.append(value)
            return
        channel = far.channel
        if channel._closed:
            far.dead(value, "the channel was closed")
            far.tell("closed")
        elif channel._offer(value):
            far.tell("credit", 1)
        else:
            queue.append(value)
            self._start(self._feed, far)

    async def _feed(self, far: Far) -> None:
        # Puts values from one end into the channel as room allows, in order.
        channel, queue = far.channel, far.queue
        far.feeder = anyio.CancelScope()
        try:
            with far.feeder:
                await self._feed_queue(far)
        finally:
            far.feeder = None
            if queue:
                # The channel closed, or the end or its connection is gone.
                why = "the channel was closed" if channel._closed else "its sender is gone"
                close = False
                for value in queue:
                    if value is _CLOSE:
                        close = True
                    else:
                        far.dead(value, why)
                queue.clear()
                if close:
                    channel.close()
                if channel._closed:
                    far.tell("closed")

    async def _feed_queue(self, far: Far) -> None:
        channel, queue = far.channel, far.queue
        while queue:
            value = queue[0]
            if value is _CLOSE:
                queue.popleft()
                channel.close()
                continue
            try:
                await channel.send(value)
            except SendOnClosed:
                return
            queue.popleft()
            far.tell("credit", 1)

    # -- receives waiting at an end --------------------------------------------------

    def _on_want(self, far: Far, count: int) -> None:
        far.wanted += count
        if far.pumping:
            return
        channel = far.channel
        while far.wanted:
            try:
                value = channel.receive_nowait()
            except WouldBlock:
                break
            except ChannelDrained:
                far.drained()
                return
            far.wanted -= 1
            far.give(value)
        if far.wanted:
            far.pumping = True
            self._start(self._pump, far)

    async def _pump(self, far: Far) -> None:
        # Receives for the end's waiting receives, one at a time.
        channel = far.channel
        try:
            while far.wanted > 0:
                with anyio.CancelScope() as scope:
                    far.scope = scope
                    try:
                        value = await channel.receive()
                    except ChannelDrained:
                        far.drained()
                        return
                far.scope = None
                if scope.cancelled_caught:
                    continue  # withdrawn: took nothing
                far.wanted = max(0, far.wanted - 1)
                far.give(value)  # if withdrawn meanwhile, it comes back
        finally:
            far.pumping = False
            far.scope = None

    def _on_back(self, far: Far, envelope: Envelope) -> None:
        ok, value = self._load(far, envelope)
        if not ok:
            return
        channel = far.channel
        if channel._closed and not channel._buffer:
            far.dead(value, "the channel was closed and drained before it came back")
        else:
            channel._put_back(value)

    # -- the end ---------------------------------------------------------------------

    def lose(self, error: BaseException) -> None:
        """The connection ended: its ends fail, its far ends are forgotten."""
        self.lost = error
        ends, self.ends = self.ends, {}
        for end in ends.values():
            end._lose(error)
        fars, self.far = self.far, {}
        for far in fars.values():
            far.export.far.pop(far, None)
        # Channels whose traffic went through here: tell the other side.
        relayed, self.relayed = self.relayed, {}
        for key, (other, owner_there) in relayed.items():
            owner, number, at = key
            other.channels.relayed.pop(key, None)
            if other.error is not None:
                continue
            with contextlib.suppress(*_BROKEN):
                if owner_there:
                    other.channels.send(owner, number, "gone", sender=at)
                else:
                    why = f"the connection between {self.peer.system.name} and {owner} ended"
                    other.channels.send(at, number, "lost", 0, why.encode(), sender=owner)
