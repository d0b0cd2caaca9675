"""The in-process broker: topics, wildcards, groups, and the delivery rules.

Delivery of one published message (the rules the user guide documents):

1. Every plain subscriber whose pattern matches gets one copy.
2. Every group (a group is a pattern plus a group name) whose pattern matches
   gets one copy, given to one member: the member whose turn it is
   (round-robin), skipping members whose mailbox is full when another has
   room; when all are full the publisher waits for the first one with room.
3. Nobody gets the same message twice. A subscriber with several matching
   plain subscriptions gets one copy; when a group's turn falls on a member
   that already gets the message (as a plain subscriber or through another
   group), that copy is the group's copy.

``publish`` returns how many subscribers got the message. A message that
matched nobody becomes a dead letter with reason ``"no subscribers"``.

# Invariants:
# - ``_patterns[p]`` holds every subscription on pattern ``p``: plain ones by
#   endpoint, groups by name; ``_by_endpoint[e]`` holds the same subscriptions
#   by endpoint. A pattern or endpoint without subscriptions has no entry.
# - The matcher holds one ``_Sub`` per plain subscription and one ``_Group``
#   per group with at least one member; an empty group is removed at once.
# - A publish waiting for room registers its cancel scope in the ``waits`` of
#   every endpoint (and group) it waits on; unsubscribing, leaving a group or
#   joining one cancels those scopes, and the publish re-plans. A cancelled
#   send has sent nothing (channels are atomic with respect to cancellation),
#   so nothing reaches an endpoint once its unsubscribe has returned.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import anyio
import anyio.lowlevel

from . import _tracing
from ._broker import DeadLetterSink, Endpoint, GroupInfo, TopicInfo
from ._channel import YIELD_EVERY
from ._exceptions import SendOnClosed, WouldBlock
from ._matcher import DEFAULT_CACHE_SIZE, Matcher, check_pattern, check_topic
from ._select import select


def check_group(group: object) -> str | None:
    """Validate a group name (``None``: no group).

    Raises:
        TypeError: not a str or None.
        ValueError: empty, or with whitespace.

    Examples:
        >>> check_group("workers")
        'workers'
    """
    if group is None:
        return None
    if not isinstance(group, str):
        raise TypeError(f"a group name must be a str or None, got {group!r}")
    if not group or any(c.isspace() or not c.isprintable() for c in group):
        raise ValueError(
            f"invalid group name {group!r}: use a non-empty name without whitespace, e.g. 'workers'"
        )
    return group


class _Sub:
    """A plain subscription, as stored in the matcher."""

    __slots__ = ("endpoint", "pattern")

    def __init__(self, pattern: str, endpoint: Endpoint) -> None:
        self.pattern = pattern
        self.endpoint = endpoint


class _Group:
    """A group on one pattern: members in turn order, and whose turn it is."""

    __slots__ = ("members", "name", "pattern", "turn", "waits")

    def __init__(self, pattern: str, name: str) -> None:
        self.pattern = pattern
        self.name = name
        self.members: list[Endpoint] = []
        self.turn = 0
        self.waits: set[anyio.CancelScope] = set()

    def join(self, endpoint: Endpoint) -> None:
        self.members.append(endpoint)
        self._call_off_waits()  # a waiting publish may now have room

    def leave(self, endpoint: Endpoint) -> None:
        index = self.members.index(endpoint)
        del self.members[index]
        if index < self.turn:
            self.turn -= 1
        if self.turn >= len(self.members):
            self.turn = 0
        self._call_off_waits()

    def _call_off_waits(self) -> None:
        for scope in self.waits:
            scope.cancel()


class _Plan:
    """What one concrete topic is delivered to (cached per topic)."""

    __slots__ = ("empty", "groups", "plain", "plain_set")

    def __init__(self, plain: tuple[Endpoint, ...], groups: tuple[_Group, ...]) -> None:
        self.plain = plain
        self.groups = groups
        self.plain_set = frozenset(plain)
        self.empty = not plain and not groups


def _compile(values: list[_Sub | _Group]) -> _Plan:
    plain: dict[Endpoint, None] = {}
    groups: list[_Group] = []
    for value in values:
        if type(value) is _Group:
            groups.append(value)
        else:
            plain[value.endpoint] = None  # type: ignore[union-attr]
    return _Plan(tuple(plain), tuple(groups))


class _Entry:
    """Every subscription on one pattern."""

    __slots__ = ("groups", "plain")

    def __init__(self) -> None:
        self.plain: dict[Endpoint, _Sub] = {}
        self.groups: dict[str, _Group] = {}


# The outcome of delivering to one subscriber: delivered, reported as a dead
# letter, or silently not delivered (it unsubscribed meanwhile).
_DELIVERED: Final = 1
_REPORTED: Final = 0
_GONE: Final = -1
Outcome = Literal[1, 0, -1]


class LocalBroker:
    """The in-process :class:`~actors._broker.Broker`: a trie and mailboxes.

    Args:
        dead_letter: where undeliverable messages are reported.
        cache_size: how many hot topics keep their compiled delivery plan.
    """

    __slots__ = ("_by_endpoint", "_dead_letter", "_matcher", "_patterns", "_tick")

    def __init__(self, dead_letter: DeadLetterSink, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._dead_letter = dead_letter
        self._matcher: Matcher[_Sub | _Group, _Plan] = Matcher(_compile, cache_size)
        self._patterns: dict[str, _Entry] = {}
        self._by_endpoint: dict[Endpoint, dict[tuple[str, str | None], _Sub | _Group]] = {}
        self._tick = 0

    def __repr__(self) -> str:
        return f"<LocalBroker {len(self._patterns)} patterns, {len(self._matcher)} entries>"

    # -- subscribing ----------------------------------------------------------

    def subscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        check_pattern(pattern)
        check_group(group)
        mine = self._by_endpoint.get(endpoint)
        if mine is not None and (pattern, group) in mine:
            return False
        entry = self._patterns.get(pattern)
        if entry is None:
            entry = self._patterns[pattern] = _Entry()
        value: _Sub | _Group
        if group is None:
            value = entry.plain[endpoint] = _Sub(pattern, endpoint)
            self._matcher.insert(pattern, value)
        else:
            joined = entry.groups.get(group)
            if joined is None:
                joined = entry.groups[group] = _Group(pattern, group)
                self._matcher.insert(pattern, joined)
            joined.join(endpoint)
            value = joined
        self._by_endpoint.setdefault(endpoint, {})[pattern, group] = value
        return True

    def unsubscribe(self, pattern: str, endpoint: Endpoint, group: str | None = None) -> bool:
        check_pattern(pattern)
        check_group(group)
        mine = self._by_endpoint.get(endpoint)
        if mine is None or (pattern, group) not in mine:
            return False
        self._remove(pattern, endpoint, group, mine.pop((pattern, group)))
        if not mine:
            del self._by_endpoint[endpoint]
        return True

    def drop(self, endpoint: Endpoint) -> int:
        mine = self._by_endpoint.pop(endpoint, None)
        if not mine:
            return 0
        for (pattern, group), value in mine.items():
            self._remove(pattern, endpoint, group, value)
        return len(mine)

    def _remove(
        self, pattern: str, endpoint: Endpoint, group: str | None, value: _Sub | _Group
    ) -> None:
        entry = self._patterns[pattern]
        if type(value) is _Sub:
            del entry.plain[endpoint]
            self._matcher.remove(pattern, value)
        else:
            assert isinstance(value, _Group) and group is not None
            value.leave(endpoint)
            if not value.members:
                del entry.groups[group]
                self._matcher.remove(pattern, value)
        if not entry.plain and not entry.groups:
            del self._patterns[pattern]
        endpoint.call_off_waits()

    # -- introspection --------------------------------------------------------

    def subscriptions(self, endpoint: Endpoint) -> list[tuple[str, str | None]]:
        return list(self._by_endpoint.get(endpoint, ()))

    def topics(self) -> list[TopicInfo]:
        return [
            TopicInfo(
                pattern,
                tuple(endpoint.name for endpoint in entry.plain),
                tuple(
                    GroupInfo(name, tuple(m.name for m in group.members))
                    for name, group in sorted(entry.groups.items())
                ),
            )
            for pattern, entry in sorted(self._patterns.items())
        ]

    # -- publishing -----------------------------------------------------------

    async def publish(self, topic: str, message: Any) -> int:
        # Like a channel operation that completes at once: a checkpoint every
        # YIELD_EVERY publishes, so a publisher that never waits cannot starve
        # its subscribers. It comes before the plan, so the plan is current.
        self._tick += 1
        if self._tick >= YIELD_EVERY:
            self._tick = 0
            await anyio.lowlevel.checkpoint()
        plan = self._matcher.lookup(topic)
        if plan.empty:
            self._dead_letter(message, None, "no subscribers", topic)
            return 0
        delivered = 0
        reported = False
        waited = False
        missed: list[Endpoint] | None = None
        for endpoint in plan.plain:
            # After a wait the plan may be stale: skip whoever unsubscribed.
            if waited and endpoint not in self._matcher.lookup(topic).plain_set:
                outcome: Outcome = _GONE
            else:
                try:
                    endpoint.channel.send_nowait(message)
                    delivered += 1
                    continue
                except WouldBlock:
                    outcome = await self._wait_plain(endpoint, topic, message)
                    waited = True
                except SendOnClosed:
                    endpoint.dead_letter(message, "stopped", topic)
                    outcome = _REPORTED
            if outcome == _DELIVERED:
                delivered += 1
            else:
                reported = reported or outcome == _REPORTED
                missed = [*(missed or ()), endpoint]
        if plan.groups:
            taken: frozenset[Endpoint] | set[Endpoint] = plan.plain_set
            if missed is not None or len(plan.groups) > 1:
                taken = set(taken).difference(missed or ())
            for group in plan.groups:
                # A group emptied while we waited has left the topic: its
                # members list is empty and nothing is picked.
                member, fresh = self._pick(group, message, taken)
                if member is None:  # every member is full (or none is left)
                    outcome, member = await self._to_group(group, topic, message, taken)
                else:
                    outcome = _DELIVERED if fresh else _GONE
                if outcome == _DELIVERED:
                    delivered += 1
                    if isinstance(taken, set) and member is not None:
                        taken.add(member)
                else:
                    reported = reported or outcome == _REPORTED
        if not delivered and not reported:
            self._dead_letter(message, None, "no subscribers", topic)
        return delivered

    def offer(self, topic: str, message: Any) -> int:
        plan = self._matcher.lookup(topic)
        delivered = 0
        for endpoint in plan.plain:
            try:
                endpoint.channel.send_nowait(message)
                delivered += 1
            except (WouldBlock, SendOnClosed):
                pass
        if plan.groups:
            taken = set(plan.plain)
            for group in plan.groups:
                picked, fresh = self._pick(group, message, taken)
                if picked is not None and fresh:
                    delivered += 1
                    taken.add(picked)
        return delivered

    async def _wait_plain(self, endpoint: Endpoint, topic: str, message: Any) -> Outcome:
        """The slow path of a plain delivery: the endpoint is full."""
        while True:
            if endpoint.overflow != "block":
                return _overflow(endpoint, message, topic)
            scope = anyio.CancelScope()
            endpoint.waits.add(scope)
            try:
                with scope:
                    await endpoint.channel.send(message)
                    return _DELIVERED
            except SendOnClosed:
                endpoint.dead_letter(message, "stopped", topic)
                return _REPORTED
            finally:
                endpoint.waits.discard(scope)
            # An unsubscribe called the wait off: deliver only if a matching
            # plain subscription is left.
            if endpoint not in self._matcher.lookup(topic).plain_set:
                return _GONE
            try:
                endpoint.channel.send_nowait(message)
                return _DELIVERED
            except WouldBlock:
                pass
            except SendOnClosed:
                endpoint.dead_letter(message, "stopped", topic)
                return _REPORTED

    def _pick(
        self, group: _Group, message: Any, taken: frozenset[Endpoint] | set[Endpoint]
    ) -> tuple[Endpoint | None, bool]:
        """Give the group's copy to the first member, from the one whose turn
        it is, that already has it or has room; ``(member, delivered_now)``."""
        members = group.members
        count = len(members)
        turn = group.turn
        for step in range(count):
            index = (turn + step) % count
            member = members[index]
            if member in taken:
                group.turn = (index + 1) % count
                return member, False
            try:
                member.channel.send_nowait(message)
            except (WouldBlock, SendOnClosed):
                continue
            group.turn = (index + 1) % count
            return member, True
        return None, False

    async def _to_group(
        self,
        group: _Group,
        topic: str,
        message: Any,
        taken: frozenset[Endpoint] | set[Endpoint],
    ) -> tuple[Outcome, Endpoint | None]:
        while True:
            member, fresh = self._pick(group, message, taken)
            if member is not None:
                return (_DELIVERED if fresh else _GONE), member
            live = [m for m in group.members if not m.channel.closed]
            if not group.members:
                return _GONE, None  # the last member left while we waited
            if not live:
                self._dead_letter(message, None, f"no live member in group {group.name!r}", topic)
                return _REPORTED, None
            blocking = [m for m in live if m.overflow == "block"]
            if not blocking:  # nobody waits for room: the turn's policy applies
                target = live[0]
                for step in range(len(group.members)):
                    member = group.members[(group.turn + step) % len(group.members)]
                    if member in live:
                        target = member
                        break
                group.turn = (group.members.index(target) + 1) % len(group.members)
                return _overflow(target, message, topic), target
            chosen = await self._wait_group(group, blocking, message)
            if chosen is not None:
                if chosen in group.members:
                    group.turn = (group.members.index(chosen) + 1) % len(group.members)
                return _DELIVERED, chosen
            # Membership changed or a member closed: pick again.

    async def _wait_group(
        self, group: _Group, blocking: list[Endpoint], message: Any
    ) -> Endpoint | None:
        """Wait until one of ``blocking`` takes ``message``; None if the wait
        was called off or a member closed meanwhile (nothing was sent)."""
        scope = anyio.CancelScope()
        group.waits.add(scope)
        for member in blocking:
            member.waits.add(scope)
        try:
            with scope:
                if len(blocking) == 1:
                    await blocking[0].channel.send(message)
                    return blocking[0]
                selected = await select(*(m.channel.sending(message) for m in blocking))
                return blocking[selected.index]
        except SendOnClosed:
            pass
        finally:
            group.waits.discard(scope)
            for member in blocking:
                member.waits.discard(scope)
        return None


# -- while tracing --------------------------------------------------------------
# ``actors.tracing.instrument`` puts this in place of LocalBroker.publish (and
# ``uninstrument`` puts the original back), as with ActorRef.tell: an untraced
# publish tests nothing (``python -m benchmarks.topics``). Each subscriber gets
# the message in one shared Traced wrapper holding the publish span's
# context: an actor handles it in a CONSUMER span, the span's child (the
# cell loop's, as for a tell), a pull subscription unwraps it, a subscriber
# in another process gets the context in the envelope's headers, and dead
# letters unwrap it. A message that came with its context (published in
# another process, see actors._remote_topics) goes on as it is.

_publish = LocalBroker.publish


async def _traced_publish(broker: LocalBroker, topic: str, message: Any) -> int:
    if type(message) is _tracing.Traced:
        return await _publish(broker, topic, message)
    check_topic(topic)  # a span names a valid topic
    span = _tracing.start_publish(topic)
    try:
        return await _publish(broker, topic, _tracing.Traced(message, _tracing.context_of(span)))
    except Exception as error:
        _tracing.failed(span, error)
        raise
    finally:
        span.end()


#: What ``instrument`` puts in place, by LocalBroker attribute name.
TRACED: Final = {"publish": _traced_publish}
#: What ``uninstrument`` puts back.
UNTRACED: Final = {"publish": LocalBroker.publish}


def _overflow(endpoint: Endpoint, message: Any, topic: str) -> Outcome:
    """A full endpoint whose policy does not wait: as ``tell_nowait`` does,
    except that ``"fail"`` makes a dead letter instead of raising in the
    publisher (the other subscribers still get the message)."""
    policy = endpoint.overflow
    if policy == "drop_oldest":
        try:
            endpoint.dead_letter(endpoint.drop_oldest(), "mailbox full: dropped oldest", topic)
            endpoint.channel.send_nowait(message)
            return _DELIVERED
        except WouldBlock:  # pragma: no cover - capacity >= 1
            pass
        except SendOnClosed:
            endpoint.dead_letter(message, "stopped", topic)
            return _REPORTED
    reason = "mailbox full: dropped newest" if policy == "drop_newest" else "mailbox full"
    endpoint.dead_letter(message, reason, topic)
    return _REPORTED
