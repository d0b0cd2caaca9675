"""Calls that would wait on themselves return or raise instead of hanging."""

from __future__ import annotations

import pytest

from actors import Actor, ActorSystem, Mailbox, MailboxFull, Terminated
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


async def test_child_stopping_its_parent_does_not_deadlock() -> None:
    class Child(Actor):
        async def receive(self, message: object) -> None:
            parent = self.context.parent
            assert parent is not None
            await parent.stop()

    class Parent(Actor):
        async def on_start(self) -> None:
            self.child = await self.context.spawn(Child, name="c")

        async def receive(self, message: object) -> object:
            return self.child

    async with ActorSystem(shutdown=3600) as system:
        probe = await TestProbe.start(system)
        parent = await system.spawn(Parent)
        probe.watch(parent)
        child = await parent.ask("child?")
        await child.tell("stop my parent")
        await probe.expect(Terminated(parent, None), timeout=10)


async def test_telling_itself_with_a_full_mailbox_raises() -> None:
    class Selfish(Actor):
        async def receive(self, message: object) -> object:
            try:
                for i in range(3):
                    await self.ref.tell(i)
            except MailboxFull as exc:
                return str(exc)
            return "no error"

    async with ActorSystem() as system:
        ref = await system.spawn(Selfish, mailbox=Mailbox(capacity=2))
        assert "told itself" in await ref.ask("go")
