"""Message accounting across the process boundary, with processes killed at
random: every message is delivered, dead-lettered, or reported lost, never
silently missing.

Four producers send numbered messages, half as asks and half as tells, to
four supervised consumers, two in-process and two in child processes, found
by registered name. Meanwhile a killer sends ``kill -9`` to a random process
consumer every so many deliveries; the supervisor restarts it in a fresh
process. Each consumer reports a delivery to a recorder in the parent before
answering.

Checked per message id:
- an ask ended with its value (then it was delivered, exactly once), with
  ``ActorStopped`` (not delivered: a dead letter), or with
  ``ConnectionLost`` (delivered at most once);
- a tell was delivered (exactly once), became a dead letter in the parent, or
  went to an incarnation that ended (its ``Terminated`` was seen);
- nothing is delivered twice, and each consumer incarnation got each
  producer's messages in send order.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
from collections import Counter
from typing import Any

import anyio
import pytest

import actors
from actors import ActorRef, ActorStopped, ConnectionLost, DeadLetter, Subprocess, Terminated
from supervision import ChildSpec, Supervisor

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux"),
    pytest.mark.usefixtures("no_orphans"),
]

PRODUCERS = 4
PER_PRODUCER = 300
KILL_EVERY = 120  # deliveries between kills
KILLS = 4


class Recorder(actors.Actor):
    def __init__(self) -> None:
        self.delivered: list[tuple[int, ActorRef, int]] = []  # (id, consumer, producer)
        self.every: anyio.Event | None = None
        self.ended: dict[ActorRef, BaseException | None] = {}

    async def receive(self, message: Any) -> Any:
        match message:
            case ("got", ident, consumer, producer):
                self.delivered.append((ident, consumer, producer))
                if len(self.delivered) % KILL_EVERY == 0 and self.every is not None:
                    self.every.set()
            case ("watch", ref):
                self.context.watch(ref)
            case Terminated(ref=ref, reason=reason):
                self.ended[ref] = reason
            case "state":
                return self
        return None


class Consumer(actors.Actor):
    def __init__(self, recorder: ActorRef) -> None:
        self.recorder = recorder

    async def on_start(self) -> None:
        await self.recorder.tell(("watch", self.ref))

    async def receive(self, message: Any) -> Any:
        match message:
            case "pid":
                return os.getpid()
            case (ident, producer):
                await self.recorder.tell(("got", ident, self.ref, producer))
                return ident


async def test_every_message_is_accounted_for(anyio_backend: Any) -> None:
    rng = random.Random(13)
    names = ["local-0", "local-1", "proc-0", "proc-1"]
    placement = Subprocess(heartbeat=0.5)
    async with actors.ActorSystem() as system:
        recorder_ref = await system.spawn(Recorder, name="recorder")
        recorder: Recorder = await recorder_ref.ask("state")
        every = recorder.every = anyio.Event()
        specs = [
            ChildSpec(
                Consumer,
                recorder_ref,
                name=name,
                register_as=name,
                placement=placement if name.startswith("proc") else None,
            )
            for name in names
        ]
        await system.spawn(
            Supervisor, specs, strategy="one_for_one", max_restarts=100, within=60, name="sup"
        )
        parent_letters: list[DeadLetter] = []
        outcomes: dict[int, str] = {}
        sent_to: dict[int, ActorRef] = {}

        async def ref_of(name: str) -> ActorRef:
            # The name is free while its holder restarts: poll (bounded).
            with anyio.fail_after(20):
                while (ref := system.registry.whereis(name)) is None:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            return ref

        async def produce(producer: int) -> None:
            for n in range(PER_PRODUCER):
                ident = producer * PER_PRODUCER + n
                ref = await ref_of(names[(producer + n) % len(names)])
                sent_to[ident] = ref
                if n % 2:
                    await ref.tell((ident, producer))
                    outcomes[ident] = "told"
                    continue
                try:
                    await ref.ask((ident, producer), timeout=20)
                    outcomes[ident] = "answered"
                except ActorStopped:
                    outcomes[ident] = "stopped"
                except ConnectionLost:
                    outcomes[ident] = "lost"

        async def kill() -> None:
            nonlocal every
            for _ in range(KILLS):
                await every.wait()
                every = recorder.every = anyio.Event()
                victim = await ref_of(rng.choice(["proc-0", "proc-1"]))
                with contextlib.suppress(ActorStopped, ConnectionLost):  # restarting already
                    os.kill(await victim.ask("pid", timeout=20), signal.SIGKILL)

        async with system.dead_letters() as letters:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(kill)
                    async with anyio.create_task_group() as producers:
                        for p in range(PRODUCERS):
                            producers.start_soon(produce, p)
                    tg.cancel_scope.cancel()
                # Every tell sent before this ask reached its consumer's
                # incarnation or its connection; drain the recorder. The last
                # kill may still be going on: a registered ref can be the
                # incarnation just killed, so ask its successor then.
                for name in names:
                    with anyio.fail_after(40):
                        while True:
                            try:
                                await (await ref_of(name)).ask("pid", timeout=20)
                                break
                            except (ActorStopped, ConnectionLost):
                                await anyio.sleep(0.01)
                await recorder_ref.ask("state")
            while True:
                try:
                    parent_letters.append(letters.receive_nowait())
                except actors.WouldBlock:
                    break

    delivered = Counter(ident for ident, _, _ in recorder.delivered)
    assert max(delivered.values()) == 1, "a message was delivered twice"
    lettered = {letter.message[0] for letter in parent_letters if isinstance(letter.message, tuple)}
    assert len(outcomes) == PRODUCERS * PER_PRODUCER
    kinds = Counter(outcomes.values())
    for ident, outcome in outcomes.items():
        if outcome == "answered":
            assert delivered[ident] == 1, ident
        elif outcome == "stopped":
            assert delivered[ident] == 0, ident
        elif outcome == "told" and not delivered[ident] and ident not in lettered:
            # Lost with its process: the incarnation it went to has ended.
            assert sent_to[ident] in recorder.ended, ident
    # Per incarnation and producer, deliveries in send order.
    seen: dict[tuple[ActorRef, int], int] = {}
    for ident, consumer, producer in recorder.delivered:
        key = (consumer, producer)
        assert seen.get(key, -1) < ident, (key, ident)
        seen[key] = ident
    assert kinds["answered"] > 0 and kinds["told"] > 0
    killed = [r for r in recorder.ended.values() if isinstance(r, actors.ProcessExited)]
    assert len(killed) >= 1
