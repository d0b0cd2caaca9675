"""Mailbox accounting under stress: every message told is delivered, becomes a
dead letter, or is refused to its sender, exactly once, under every overflow
policy.

Six producer actors send 12,000 numbered messages in bursts to six supervised
consumers with 8-message mailboxes, mixing ``tell``, ``tell_nowait`` and
``ask``. Meanwhile consumers crash on poisoned messages and are restarted by
their supervisor, watch each other (so death notices arrive mid-traffic), are
stopped by producers right behind a message and in storms from outside (and
restarted, being permanent); finally the system shuts down while the
producers are still sending. Producers address consumers by registered name
and keep the last ref they saw, so some messages go to stopped incarnations,
as they would for any client.

What is checked does not depend on how the tasks interleave: for every
message id, deliveries + dead letters + refusals == 1, and each consumer name
got each producer's messages in send order. (Runs on the virtual clock, so a
lost ask times out at once instead of after its timeout, and fails the test.)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import actors.testing
from actors import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    DeadLetter,
    Mailbox,
    MailboxFull,
    Terminated,
)
from actors._mailbox import OverflowPolicy
from supervision import ChildSpec, Supervisor

pytestmark = pytest.mark.anyio

PRODUCERS = 6
CONSUMERS = 6
CAPACITY = 8
PER_PRODUCER = 2000
POISON_EVERY = 53  # every 53rd message of a producer crashes its consumer
STORMS = 30  # stop storms, spread over the run
STORM_SIZE = 2  # consumers stopped at once in a storm
STOP_BEHIND = 0.01  # how often a producer stops the consumer it just sent to
SHUTDOWN_AT = 0.8  # of all messages sent, when the system shuts down
ASK_TIMEOUT = 60.0  # virtual seconds: only a lost ask waits this long
POLICIES: list[OverflowPolicy] = ["block", "drop_newest", "drop_oldest", "fail"]

Id = tuple[int, int]  # (producer, sequence number)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    # Without asyncio's debug mode, which makes a stress five times slower.
    backend, options = actors.testing.virtual_time(request.param)
    return backend, {**options, "debug": False} if backend == "asyncio" else options


class Poisoned(Exception):
    pass


@dataclass
class Ledger:
    """What producers sent and had refused, and what consumers received."""

    policy: OverflowPolicy
    sent: list[Id] = field(default_factory=list)
    refused: list[Id] = field(default_factory=list)
    timed_out: list[Id] = field(default_factory=list)
    delivered: list[tuple[str, Id]] = field(default_factory=list)  # (consumer, id)
    crashes: int = 0
    notices: int = 0
    reached: list[tuple[int, anyio.Event]] = field(default_factory=list)

    def count_sent(self, message_id: Id) -> None:
        self.sent.append(message_id)
        while self.reached and len(self.sent) >= self.reached[0][0]:
            self.reached.pop(0)[1].set()

    async def wait_sent(self, count: int) -> None:
        if len(self.sent) < count:
            event = anyio.Event()
            self.reached.append((count, event))
            self.reached.sort(key=lambda entry: entry[0])
            await event.wait()


def consumer_name(index: int) -> str:
    return f"c{index}"


class Consumer(Actor):
    def __init__(self, ledger: Ledger, index: int) -> None:
        self.ledger = ledger
        self.name = consumer_name(index)
        self.peer_name = consumer_name((index + 1) % CONSUMERS)
        self.peer: ActorRef | None = None

    async def on_start(self) -> None:
        self._watch_peer()

    def _watch_peer(self) -> None:
        peer = self.context.system.registry.whereis(self.peer_name)
        if peer is not None and peer != self.peer:
            self.peer = peer
            self.context.watch(peer)

    async def receive(self, message: Any) -> Any:
        match message:
            case Terminated():
                self.ledger.notices += 1
                self._watch_peer()
                return None
            case (int() as producer, int() as seq, bool() as poison):
                self.ledger.delivered.append((self.name, (producer, seq)))
                if poison:
                    self.ledger.crashes += 1
                    raise Poisoned(f"message {producer}/{seq}")
                return seq
        raise AssertionError(f"unexpected {message!r}")


class Producer(Actor):
    """On "run", sends its messages to random consumers by name, in bursts."""

    def __init__(self, ledger: Ledger, index: int) -> None:
        self.ledger = ledger
        self.index = index
        self.rng = random.Random(f"{ledger.policy}-{index}")
        self.last: dict[str, ActorRef] = {}

    def consumer(self, name: str) -> ActorRef:
        ref = self.context.system.registry.whereis(name)
        if ref is None:  # between incarnations, or shut down: use the last one
            return self.last[name]
        self.last[name] = ref
        return ref

    async def receive(self, message: Any) -> None:
        assert message == "run"
        for name in (consumer_name(c) for c in range(CONSUMERS)):
            self.consumer(name)
        ledger = self.ledger
        burst = 0
        for seq in range(PER_PRODUCER):
            if not burst:  # bursts fill mailboxes: overflow, and backpressure
                await anyio.lowlevel.checkpoint()  # let consumers catch up a little
                ref = self.consumer(consumer_name(self.rng.randrange(CONSUMERS)))
                burst = self.rng.randrange(1, 2 * CAPACITY)
            burst -= 1
            message_id = (self.index, seq)
            how = self.rng.choice(("tell", "tell", "tell_nowait", "ask"))
            ledger.count_sent(message_id)
            envelope = (self.index, seq, seq % POISON_EVERY == POISON_EVERY - 1)
            try:
                if how == "tell":
                    await ref.tell(envelope)
                elif how == "tell_nowait":
                    ref.tell_nowait(envelope)
                else:
                    reply = await ref.ask(envelope, timeout=ASK_TIMEOUT)
                    assert reply == seq
            except MailboxFull:
                # The drop policies dead-letter what they drop (an ask then
                # raises too); "block" (tell_nowait) and "fail" refuse it.
                if ledger.policy in ("block", "fail"):
                    ledger.refused.append(message_id)
            except (ActorStopped, ActorFailed):
                pass  # a dead letter, or a delivery that crashed the consumer
            except AskTimeout:
                ledger.timed_out.append(message_id)
            if self.rng.random() < STOP_BEHIND:
                ref.stop_nowait()  # right behind a message it may not have run yet


def accounting_errors(ledger: Ledger, letters: list[DeadLetter]) -> list[str]:
    """Every id sent is delivered, dead-lettered or refused exactly once."""
    seen: Counter[Id] = Counter()
    where: dict[Id, list[str]] = {}
    dead = [letter.message for letter in letters if isinstance(letter.message, tuple)]
    outcomes = [
        *((message_id, f"delivered to {name}") for name, message_id in ledger.delivered),
        *(((producer, seq), "dead letter") for producer, seq, _ in dead),
        *((message_id, "refused") for message_id in ledger.refused),
    ]
    for message_id, outcome in outcomes:
        seen[message_id] += 1
        where.setdefault(message_id, []).append(outcome)
    errors = [
        f"{i} sent, but never delivered, dead-lettered or refused"
        for i in ledger.sent
        if not seen[i]
    ]
    errors += [f"{i} accounted for {n} times: {where[i]}" for i, n in seen.items() if n > 1]
    errors += [f"{i} was never sent" for i in set(seen) - set(ledger.sent)]
    errors += [f"{i}: ask timed out" for i in ledger.timed_out]
    return errors


def order_errors(ledger: Ledger) -> list[str]:
    """Each consumer (over its incarnations) got each producer's messages in order."""
    last: dict[tuple[str, int], int] = {}
    errors = []
    for name, (producer, seq) in ledger.delivered:
        before = last.get((name, producer), -1)
        if seq <= before:
            errors.append(f"{name} got {producer}/{seq} after {producer}/{before}")
        last[name, producer] = seq
    return errors


@pytest.mark.parametrize("policy", POLICIES)
async def test_every_message_is_delivered_dead_lettered_or_refused_once(
    policy: OverflowPolicy,
) -> None:
    ledger = Ledger(policy)
    total = PRODUCERS * PER_PRODUCER
    storms = random.Random(policy)
    with anyio.fail_after(600):  # virtual time: only a hang gets here
        async with AsyncExitStack() as stack:
            async with ActorSystem("stress") as system:
                # Opened inside the system, closed after it has shut down: the
                # dead letters of the shutdown itself are counted too.
                letters = await stack.enter_async_context(system.dead_letters(math.inf))
                # Spawned before the consumers, so stopped after them: the
                # shutdown meets producers still sending.
                producers = [await system.spawn(Producer, ledger, p) for p in range(PRODUCERS)]
                specs = [
                    ChildSpec(
                        Consumer,
                        ledger,
                        c,
                        name=consumer_name(c),
                        register_as=consumer_name(c),
                        mailbox=Mailbox(CAPACITY, policy),
                    )
                    for c in range(CONSUMERS)
                ]
                await system.spawn(
                    Supervisor, specs, max_restarts=10**6, within=1.0, shutdown=math.inf
                )
                for producer in producers:
                    producer.tell_nowait("run")
                for storm in range(1, STORMS + 1):
                    await ledger.wait_sent(int(total * SHUTDOWN_AT * storm / (STORMS + 1)))
                    for c in storms.sample(range(CONSUMERS), STORM_SIZE):
                        ref = system.registry.whereis(consumer_name(c))
                        if ref is not None:
                            ref.stop_nowait()
                await ledger.wait_sent(int(total * SHUTDOWN_AT))
            dead = await drain(letters)
    assert len(ledger.sent) == total
    assert accounting_errors(ledger, dead) == []
    assert order_errors(ledger) == []
    statistics = system.statistics()
    assert statistics.dead_letters == len(dead)
    assert statistics.dead_letters_unobserved == 0


async def drain(letters: actors.Channel[DeadLetter]) -> list[DeadLetter]:
    got = []
    while len(letters):
        got.append(letters.receive_nowait())
    return got
