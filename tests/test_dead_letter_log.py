"""Dead letters are logged by default: the first few, then summaries (issue 12)."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import anyio
import pytest

from actors import Actor, ActorSystem, Mailbox, _deadletters

pytestmark = pytest.mark.anyio


class Slow(Actor):
    async def receive(self, message: Any) -> Any:
        return message


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "actors.dead_letters"]


async def test_the_first_few_are_logged_then_summarised_at_exit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "actors.dead_letters")
    async with ActorSystem(log_dead_letters=3, log_dead_letters_interval=3600) as system:
        ref = await system.spawn(Slow, name="gone")
        await ref.stop()
        for n in range(103):
            await ref.tell(n)
        logged = lines(caplog)
        assert len(logged) == 3
        assert logged[0].startswith("dead letter: ") and "'gone'" not in logged[0]
        assert "0" in logged[0] and "/user/gone" in logged[0]
        assert "summarised every 3600 s" in logged[2]
    assert len(lines(caplog)) == 4
    assert lines(caplog)[3].startswith("100 more dead letters in the last ")


async def test_a_summary_each_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(_deadletters, "_clock", lambda: float(next(ticks)))
    caplog.set_level(logging.WARNING, "actors.dead_letters")
    async with ActorSystem(log_dead_letters=1, log_dead_letters_interval=5) as system:
        ref = await system.spawn(Slow)
        await ref.stop()
        for n in range(12):  # the clock moves 1 s per dead letter
            await ref.tell(n)
    summaries = [line for line in lines(caplog) if "more dead letters" in line]
    # one after 5 s, one after 10 s, the rest at exit
    assert [s.split(" more")[0] for s in summaries] == ["5", "5", "1"]


async def test_a_flood_into_a_full_mailbox_is_seen_and_counted_in_the_tree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "actors.dead_letters")
    async with ActorSystem() as system:
        ref = await system.spawn(
            Slow, name="slow", mailbox=Mailbox(capacity=1, overflow="drop_newest")
        )
        for n in range(1000):
            ref.tell_nowait(n)
        assert len(lines(caplog)) == 10
        assert "mailbox full: dropped newest" in lines(caplog)[0]
        # One handed to the parked actor, one buffered, the rest dropped.
        tree = system.tree()
        assert tree.dead_letters == tree.actors[0].dead_letters == 998
        assert str(tree).splitlines()[0] == "/user  dead letters 998"
        assert str(tree).splitlines()[1].endswith("dead letters 998")
        assert system.statistics().dead_letters == 998


async def test_logging_off_and_shutdown_letters_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "actors.dead_letters")
    async with ActorSystem(log_dead_letters=0) as system:
        ref = await system.spawn(Slow)
        await ref.stop()
        await ref.tell("lost")
    assert system.statistics().dead_letters == 1
    assert lines(caplog) == []

    class Blocked(Actor):
        async def receive(self, message: Any) -> Any:
            if isinstance(message, anyio.Event):
                message.set()
                await anyio.sleep_forever()  # until the shutdown timeout

    async with ActorSystem(shutdown=0.01) as system:
        ref = await system.spawn(Blocked)
        entered = anyio.Event()
        await ref.tell(entered)
        await entered.wait()
        for n in range(5):
            await ref.tell(n)  # still queued when the system stops
    assert system.statistics().dead_letters == 5
    assert lines(caplog) == []


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"log_dead_letters": -1}, "log_dead_letters must be"),
        ({"log_dead_letters": True}, "log_dead_letters must be"),
        ({"log_dead_letters_interval": 0}, "log_dead_letters_interval must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ActorSystem(**kwargs)
