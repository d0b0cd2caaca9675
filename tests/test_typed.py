"""Typed actors and refs (issue 12): ``Actor[M, R]`` makes ``spawn`` return an
``ActorRef[M, R]``, so mypy checks what is told and types what ``ask``
returns; untyped actors and refs stay ``Any`` (mypy checks this file)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type

import actors
from actors import Actor, ActorRef, ActorSystem

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Add:
    amount: int


@dataclass(frozen=True)
class Get:
    pass


class Counter(Actor[Add | Get, int | None]):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Add | Get) -> int | None:
        match message:
            case Add(amount):
                self.count += amount
                return None
            case Get():
                return self.count


class Untyped(Actor):
    async def receive(self, message: Any) -> Any:
        return message


async def test_typed_refs_carry_the_actors_types() -> None:
    async with ActorSystem() as system:
        counter = await system.spawn(Counter)
        assert_type(counter, ActorRef[Add | Get, int | None])
        await counter.tell(Add(2))
        total = await counter.ask(Get())
        assert_type(total, int | None)
        assert total == 2
        untyped = await system.spawn(Untyped)
        assert_type(untyped, ActorRef[Any, Any])
        assert await untyped.ask("anything") == "anything"


async def test_a_typed_ref_is_the_same_ref_at_run_time() -> None:
    async with ActorSystem() as system:
        counter: ActorRef[Add | Get, int | None] = await system.spawn(Counter)
        assert type(counter) is actors.ActorRef
        assert ActorRef[Add, int] is not ActorRef  # subscriptable, costs nothing when not
