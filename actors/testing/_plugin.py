"""The pytest plugin (entry point ``pytest11``): the ``actor_system`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._system import ActorSystem


@pytest.fixture
async def actor_system() -> AsyncIterator[ActorSystem]:
    """An :class:`ActorSystem` open for the test, for anyio tests.

    Teardown stops every actor; the test fails if a failure reached the root
    (it is raised at teardown: unlike a plain ``async with ActorSystem()``, the
    fixture cannot cancel the test body when an actor fails) or if any actor
    or task outlived the system.
    """
    system = ActorSystem("test")
    system._cancel_body_on_failure = False
    async with system:
        yield system
    left = system.statistics().actors
    if left:
        pytest.fail(f"{left} actors outlived the actor system", pytrace=False)
