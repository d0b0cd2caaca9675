"""A receive that blocks the event loop is reported: actor, message, line
(issue 12). These tests block the loop for real, briefly, on purpose."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import pytest

from actors import Actor, ActorSystem

pytestmark = pytest.mark.anyio


class Sleeper(Actor):
    async def receive(self, message: Any) -> Any:
        time.sleep(message)  # noqa: ASYNC251 - the mistake being reported
        return "woke"


async def reports(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    with anyio.fail_after(10):
        while True:
            lines = [r.getMessage() for r in caplog.records if r.name == "actors.blocking"]
            if len(lines) >= count:
                return lines
            await anyio.sleep(0.01)


async def test_a_blocking_receive_is_reported_with_actor_message_and_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "actors.blocking")
    async with ActorSystem(warn_blocking=0.05) as system:
        sleeper = await system.spawn(Sleeper, name="sleeper")
        assert await sleeper.ask(0.6) == "woke"
        blocked, resumed = await reports(caplog, 2)
    assert "blocked for" in blocked
    assert "by actor /user/sleeper handling float 0.6" in blocked
    assert "receive (" in blocked and "test_watchdog.py" in blocked
    assert "anyio.to_thread.run_sync" in blocked
    assert resumed.startswith("the event loop ran again after being blocked for")


async def test_blocking_outside_actors_is_reported_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "actors.blocking")
    async with ActorSystem(warn_blocking=0.05):
        time.sleep(0.6)  # noqa: ASYNC251 - on purpose
        blocked, _ = await reports(caplog, 2)
    assert "by code outside actors" in blocked


async def test_an_awaiting_actor_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "actors.blocking")

    class Patient(Actor):
        async def receive(self, message: Any) -> Any:
            await anyio.sleep(message)

    async with ActorSystem(warn_blocking=0.25) as system:  # margin for a busy machine
        patient = await system.spawn(Patient)
        await patient.ask(0.3)
    assert [r for r in caplog.records if r.name == "actors.blocking"] == []


async def test_off_unless_asked_or_in_a_debug_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTORS_DEBUG", raising=False)
    async with ActorSystem() as system:
        assert system._watchdog is None
    monkeypatch.setenv("ACTORS_DEBUG", "1")
    async with ActorSystem() as system:
        assert system._watchdog is not None and system._watchdog.threshold == 0.1
    async with ActorSystem(warn_blocking=False) as system:
        assert system._watchdog is None


@pytest.mark.parametrize("value", [0, -1, float("inf"), "1"])
def test_bad_thresholds(value: Any) -> None:
    with pytest.raises(ValueError, match="warn_blocking must be"):
        ActorSystem(warn_blocking=value)
