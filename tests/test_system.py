"""The actor system as a structured scope: stop order, failures, logs, tree.

Runs on the virtual clock, so shutdown timeouts cost no real time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import sniffio

import actors
from actors import Actor, ActorFailed, ActorRef, ActorsError, ActorSystem, Mailbox
from actors.testing import TestProbe

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return actors.testing.virtual_time(request.param)


class Noted(Actor):
    """Appends ``stop <path>`` to a shared list when it stops; spawns the
    children it is given as ``{name: grandchildren}``."""

    def __init__(self, log: list[str], children: dict[str, Any] | None = None) -> None:
        self.log = log
        self.children = children or {}

    async def on_start(self) -> None:
        for name, grandchildren in self.children.items():
            await self.context.spawn(Noted, self.log, grandchildren, name=name)

    async def receive(self, message: Any) -> Any:
        match message:
            case "boom":
                raise ValueError(f"boom in {self.ref.path}")
            case (path, "boom"):
                for child in self.context.children:
                    if child.path == path:
                        await child.tell("boom")
        return message

    async def on_stop(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.log.append(f"stop {self.ref.path}")


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "actors" and r.levelno >= logging.ERROR]


# -- the structured scope -----------------------------------------------------


async def test_leaving_the_block_stops_children_before_parents_in_reverse_spawn_order() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        await system.spawn(Noted, log, {"a1": {}, "a2": {"a2x": {}}}, name="a")
        await system.spawn(Noted, log, {"b1": {}}, name="b")
        await system.spawn(Noted, log, name="c")
        assert log == []
    assert log == [
        "stop /user/c",
        "stop /user/b/b1",
        "stop /user/b",
        "stop /user/a/a2/a2x",
        "stop /user/a/a2",
        "stop /user/a/a1",
        "stop /user/a",
    ]
    assert system.statistics().actors == 0


async def test_stopping_one_actor_stops_its_subtree_the_same_way() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        keep = await system.spawn(Noted, log, name="keep")
        ref = await system.spawn(Noted, log, {"x": {"y": {}}, "z": {}}, name="p")
        await ref.stop()
        assert log == ["stop /user/p/z", "stop /user/p/x/y", "stop /user/p/x", "stop /user/p"]
        assert await keep.ask("still here") == "still here"


class Stubborn(Actor):
    """Its ``on_stop`` never returns; records that it was cancelled."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_stop(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append(f"cancelled {self.ref.path} at {anyio.current_time():g}")


async def test_an_actor_that_does_not_stop_in_time_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    async with ActorSystem(shutdown=2) as system:
        await system.spawn(Stubborn, log, name="default")
        await system.spawn(Stubborn, log, name="own", shutdown=7)
        await system.spawn(Noted, log, name="polite")
        start = anyio.current_time()
    assert log == [
        "stop /user/polite",
        f"cancelled /user/own at {start + 7:g}",
        f"cancelled /user/default at {start + 9:g}",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("/user/own did not stop within its shutdown timeout of 7" in w for w in warnings)


async def test_no_task_of_the_system_outlives_the_block() -> None:
    ended: list[str] = []

    class Busy(Actor):
        async def on_start(self) -> None:
            self.context.go(self.forever, "goroutine")
            self.context.schedule_every(1, "tick")

        async def forever(self, what: str) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                ended.append(what)

    async with ActorSystem() as system:
        parent = await system.spawn(Busy)
        assert parent is not None
    assert ended == ["goroutine"]
    assert system.statistics().actors == 0
    assert system.tree().actors == ()


# -- failures -----------------------------------------------------------------


async def test_a_failing_on_start_makes_spawn_raise_and_skips_on_stop() -> None:
    log: list[str] = []

    class BadStart(Noted):
        async def on_start(self) -> None:
            raise KeyError("no config")

    async with ActorSystem() as system:
        with pytest.raises(ActorFailed, match="/user/bad failed to start in on_start") as info:
            await system.spawn(BadStart, log, name="bad")
        assert isinstance(info.value.__cause__, KeyError)
        assert log == []  # no on_stop
        again = await system.spawn(Noted, log, name="bad")  # the name is free
        await again.stop()
    assert log == ["stop /user/bad"]


async def test_a_failure_in_receive_is_raised_from_the_system_and_cancels_the_body() -> None:
    log: list[str] = []
    reached_end = False
    with pytest.raises(ValueError, match="boom in /user/p/kid") as info:
        async with ActorSystem() as system:
            parent = await system.spawn(Noted, log, {"kid": {}, "sibling": {}}, name="p")
            await parent.tell(("/user/p/kid", "boom"))
            await anyio.sleep_forever()
            reached_end = True
    assert type(info.value) is ValueError  # the original, not a group
    assert "raised in actor /user/p/kid" in info.value.__notes__
    assert not reached_end
    # The failed child ran on_stop; the plain parent failed with it and
    # stopped its other child first.
    assert log == ["stop /user/p/kid", "stop /user/p/sibling", "stop /user/p"]


async def test_a_failure_in_on_stop_fails_the_actor() -> None:
    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError, match="cleanup failed") as info:
        async with ActorSystem() as system:
            ref = await system.spawn(BadStop, name="bad")
            await ref.stop()
            await anyio.sleep_forever()
    assert "raised in actor /user/bad in on_stop" in info.value.__notes__


async def test_a_failure_in_on_stop_at_shutdown_is_raised_too() -> None:
    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError, match="cleanup failed"):
        async with ActorSystem() as system:
            await system.spawn(BadStop, name="bad")


async def test_a_failing_goroutine_fails_its_actor() -> None:
    log: list[str] = []

    class WithGoroutine(Noted):
        async def on_start(self) -> None:
            self.context.go(self.work)

        async def work(self) -> None:
            await anyio.sleep(1)
            raise OSError("goroutine died")

    with pytest.raises(OSError, match="goroutine died") as info:
        async with ActorSystem() as system:
            await system.spawn(WithGoroutine, log, name="g")
            await anyio.sleep_forever()
    assert "raised in actor /user/g" in info.value.__notes__
    assert log == ["stop /user/g"]  # the failed actor still ran on_stop


async def test_a_body_exception_and_an_actor_failure_are_both_visible() -> None:
    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError, match="cleanup failed") as info:
        async with ActorSystem() as system:
            await system.spawn(BadStop)
            raise KeyError("body")
    assert isinstance(info.value.__context__, KeyError)


async def test_a_second_failure_while_failing_is_logged_not_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match=r"boom in /user/(one|two)"):  # whichever ran first
        async with ActorSystem() as system:
            one = await system.spawn(Noted, log, name="one")
            two = await system.spawn(Noted, log, name="two")
            one.tell_nowait("boom")
            two.tell_nowait("boom")
            await anyio.sleep_forever()
    text = "\n".join(r.getMessage() for r in failures(caplog))
    assert "/user/one failed" in text
    assert "/user/two failed" in text


async def test_a_late_failure_reaches_its_handler_and_what_that_raises_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Regression: when a failing parent's on_child_failed raised for a child
    # that failed while the parent was stopping, the error was swallowed
    # without a log line.
    handled: list[tuple[str, str]] = []

    class BadStop(Actor):
        async def on_stop(self) -> None:
            raise RuntimeError(f"cleanup of {self.ref.name} failed")

    class Parent(Actor):
        async def on_start(self) -> None:
            for name in ("a", "b"):
                await self.context.spawn(BadStop, name=name)

        async def receive(self, message: Any) -> Any:
            raise ValueError("parent failed")

        async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
            handled.append((child.name, str(error)))
            raise KeyError(f"handler for {child.name} failed")

    with pytest.raises(ValueError, match="parent failed"):
        async with ActorSystem() as system:
            parent = await system.spawn(Parent, name="p")
            await parent.tell("go")
            await anyio.sleep_forever()
    # The children stop in reverse order and each fails in on_stop, after
    # the parent's mailbox closed: both failures still reach its handler.
    assert handled == [("b", "cleanup of b failed"), ("a", "cleanup of a failed")]
    messages = [r.getMessage() for r in failures(caplog)]
    for name in "ab":
        logged = [m for m in messages if f"handler for {name} failed" in m]
        assert len(logged) == 1, messages
        assert logged[0].startswith("actor /user/p failed in on_child_failed"), logged


async def test_a_failure_is_logged_once_with_its_path_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    with pytest.raises(ValueError):
        async with ActorSystem() as system:
            parent = await system.spawn(Noted, log, {"kid": {"grandkid": {}}}, name="p")
            kid = await parent.ask(("/user/p/kid", "?"))
            assert kid == ("/user/p/kid", "?")
            await parent.tell(("/user/p/kid", "boom"))
            await anyio.sleep_forever()
    records = failures(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "/user/p/kid" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert records[0].exc_info[0] is ValueError


async def test_cancelling_the_block_from_outside_cancels_the_actors() -> None:
    log: list[str] = []

    class Working(Stubborn):
        async def on_start(self) -> None:
            self.context.go(self.work)

        async def work(self) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                self.log.append(f"work cancelled at {anyio.current_time():g}")

    with anyio.move_on_after(5) as scope:
        async with ActorSystem() as system:
            await system.spawn(Working, log, name="s")
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    # Cancelled, not stopped: on_stop (which would hang) did not run.
    assert log == ["work cancelled at 5"]
    assert system.statistics().actors == 0


# -- actors.run ---------------------------------------------------------------


async def _which_backend() -> str:
    async with ActorSystem():
        return sniffio.current_async_library()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_uses_the_backend_argument(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTORS_BACKEND", raising=False)
    assert actors.run(_which_backend, backend=backend) == backend


def test_run_defaults_to_asyncio_and_honours_actors_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACTORS_BACKEND", raising=False)
    assert actors.run(_which_backend) == "asyncio"
    monkeypatch.setenv("ACTORS_BACKEND", "trio")
    assert actors.run(_which_backend) == "trio"
    assert actors.run(_which_backend, backend="asyncio") == "asyncio"  # argument wins
    monkeypatch.setenv("ACTORS_BACKEND", "curio")
    with pytest.raises(ValueError, match=r"curio.*ACTORS_BACKEND"):
        actors.run(_which_backend)
    assert os.environ["ACTORS_BACKEND"] == "curio"


def test_run_rejects_an_unknown_backend_argument() -> None:
    with pytest.raises(ValueError, match=r"'uvloop'.*backend="):
        actors.run(_which_backend, backend="uvloop")


def test_run_passes_arguments_and_raises_failures() -> None:
    async def main(what: str) -> None:
        async with ActorSystem() as system:
            await system.spawn(Noted, [], name="x")
            raise LookupError(what)

    with pytest.raises(LookupError, match="from main"):
        actors.run(main, "from main", backend="trio")


# -- tree, statistics, dead letters -------------------------------------------


async def test_tree_is_a_snapshot_of_every_live_actor() -> None:
    log: list[str] = []
    async with ActorSystem() as system:
        parent = await system.spawn(Noted, log, {"kid": {}}, name="p", mailbox=Mailbox(5))
        await system.spawn(Noted, log, name="q")
        for i in range(3):
            assert await parent.ask(i) == i
        tree = system.tree()
        assert [a.path for a in tree.walk()] == ["/user/p", "/user/p/kid", "/user/q"]
        p = tree.find("/user/p")
        assert p is not None
        assert (p.name, p.state, p.processed, p.restarts) == ("p", "running", 3, 0)
        assert (p.mailbox, p.mailbox_capacity) == (0, 5)
        assert p.actor_class == "Noted"
        assert [c.path for c in p.children] == ["/user/p/kid"]
        assert tree.find("/user/nobody") is None
        assert str(tree) == "\n".join(
            [
                "/user",
                "  p  Noted  running  mailbox 0/5  processed 3  restarts 0",
                "    kid  Noted  running  mailbox 0/1000  processed 0  restarts 0",
                "  q  Noted  running  mailbox 0/1000  processed 0  restarts 0",
            ]
        )
        await parent.stop()
        assert [a.path for a in system.tree().walk()] == ["/user/q"]


async def test_tree_shows_queued_messages() -> None:
    class Waiter(Actor):
        async def receive(self, message: Any) -> Any:
            await message.wait()

    async with ActorSystem() as system:
        ref = await system.spawn(Waiter, name="w")
        release = anyio.Event()
        await ref.tell(release)
        await ref.tell(anyio.Event())
        await ref.tell(anyio.Event())
        await anyio.wait_all_tasks_blocked()
        info = system.tree().find("/user/w")
        assert info is not None
        assert info.mailbox == 2
        assert "mailbox 2/1000" in str(system.tree())
        release.set()
        await ref.kill()


async def test_dead_letters_are_observed_and_counted() -> None:
    async with ActorSystem() as system:
        probe = await TestProbe.start(system)
        ref = await system.spawn(Noted, [], name="gone")
        await ref.stop()
        await ref.tell("unobserved")
        assert system.statistics().dead_letters == 1
        assert system.statistics().dead_letters_unobserved == 1
        async with system.dead_letters() as letters:
            await ref.tell("observed")
            ref.tell_nowait("observed too")
            first = await letters.receive()
            second = await letters.receive()
        assert (first.message, first.recipient, first.reason) == ("observed", ref, "stopped")
        assert second.message == "observed too"
        stats = system.statistics()
        assert (stats.dead_letters, stats.dead_letters_unobserved) == (3, 1)
        assert stats.actors == 1  # the probe
        assert stats.spawned == 2
        assert letters.closed
        assert await probe.ref.ask("alive") is None


async def test_a_full_dead_letter_stream_never_blocks_the_sender() -> None:
    async with ActorSystem() as system:
        ref = await system.spawn(Noted, [])
        await ref.stop()
        async with system.dead_letters(capacity=1) as letters:
            for i in range(3):
                await ref.tell(i)
            assert len(letters) == 1
        assert system.statistics().dead_letters_unobserved == 2


async def test_statistics_count_actors_and_spawns() -> None:
    async with ActorSystem() as system:
        assert system.statistics() == actors.SystemStatistics(0, 0, 0, 0, 0)
        refs: list[ActorRef] = [await system.spawn(Noted, []) for _ in range(3)]
        await refs[0].stop()
        stats = system.statistics()
        assert (stats.actors, stats.spawned) == (2, 3)
        assert "2 actors" in repr(system)


async def test_a_system_is_entered_once() -> None:
    system = ActorSystem("once")
    async with system:
        with pytest.raises(ActorsError, match="only be entered once"):
            await system.__aenter__()
    with pytest.raises(ActorsError, match="only be entered once"):
        async with system:
            pass
