"""Process pools: system.process_pool(...) and spawn(..., placement=Subprocess(pool=...))."""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from process_kit import Echo, FailsToStart, Stubborn, alive, children_of
from supervision_kit import child

import actors
from actors import (
    ActorFailed,
    ActorsError,
    ConnectionLost,
    ProcessExited,
    ProcessHung,
    ProcessPool,
    Subprocess,
    Terminated,
)
from actors._worker import Census
from actors.testing import TestProbe
from supervision import ChildSpec, Supervisor

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 20.0

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc"),
    pytest.mark.usefixtures("no_orphans"),
]

POOLED = Subprocess(pool="cpu")


@pytest.fixture(params=["same", "other"])
def backend(request: pytest.FixtureRequest, anyio_backend: Any) -> str:
    """Workers on this test's backend, or on the other one."""
    backend: str = anyio_backend[0]
    if request.param == "other":
        backend = "trio" if backend == "asyncio" else "asyncio"
    return backend


async def hosted(pool: ProcessPool) -> list[int]:
    """How many actors each live worker's host runs, in slot order."""
    counts = []
    for worker in pool._slots:
        if worker is not None and worker.alive:
            assert worker.host is not None
            counts.append(await worker.host.ask(Census()))
    return counts


async def until(condition: Any, timeout: float = 10) -> None:
    """Wait until ``condition()`` holds (state another task changes)."""
    with anyio.fail_after(timeout):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


async def supervised(system: actors.ActorSystem, specs: list[ChildSpec]) -> actors.ActorRef:
    sup = await system.spawn(Supervisor, specs, strategy="one_for_one", name="sup")
    system.registry.register("sup", sup)
    return sup


async def incarnation(
    sup: actors.ActorRef, name: str, not_: actors.ActorRef | None = None
) -> actors.ActorRef:
    """The supervisor's child ``name`` once it runs an incarnation other than ``not_``."""
    with anyio.fail_after(10):
        while True:
            info = await child(sup, name)
            if info.ref is not None and info.ref != not_ and info.state == "running":
                return info.ref
            await anyio.sleep(0.01)


async def test_many_actors_share_a_few_workers(backend: str) -> None:
    async with (
        actors.ActorSystem() as system,
        system.process_pool("cpu", size=2, placement=Subprocess(backend=backend)) as pool,
    ):
        assert len(pool.pids) == 2 and os.getpid() not in pool.pids
        refs = [await system.spawn(Echo, str(i), name=f"e{i}", placement=POOLED) for i in range(6)]
        pids = [await ref.ask("pid") for ref in refs]
        assert set(pids) == set(pool.pids)
        assert Counter(pids) == {pid: 3 for pid in pool.pids}  # the fewest actors first
        assert await hosted(pool) == [3, 3]
        for i, ref in enumerate(refs):
            for n in range(50):
                await ref.tell(n)
            assert await ref.ask("end") == ("echo", str(i), "end")
            assert await ref.ask("seen") == [*range(50), "end"]  # FIFO, per actor
        tree = system.tree()
        for ref, pid in zip(refs, pids, strict=True):
            info = tree.find(ref.path)
            assert info is not None and info.actor_class == "Echo"
            assert dict(info.details) == {"pid": str(pid), "pool": "cpu"}
        assert f"pid {pids[0]}  pool cpu" in str(tree)


async def test_actors_on_one_worker_are_independent(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        await system.process_pool("cpu", size=1)
        sup = await supervised(
            system, [ChildSpec(Echo, name, name=name, placement=POOLED) for name in "abc"]
        )
        a, b, c = [await incarnation(sup, name) for name in "abc"]
        pid = await a.ask("pid")
        await b.tell("kept")
        with pytest.raises(ActorFailed) as caught:
            await a.ask("boom")
        assert isinstance(caught.value.__cause__, ValueError)
        assert caught.value.__cause__.pid == pid  # type: ignore[attr-defined]
        new_a = await incarnation(sup, "a", not_=a)
        assert await new_a.ask("pid") == pid  # the only worker: still the same process
        assert await b.ask("seen") == ["kept"]  # b and c never noticed
        assert await c.ask("pid") == pid
        assert b.alive and c.alive


async def test_stopping_a_pooled_actor_runs_its_on_stop_and_keeps_the_worker(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system, system.process_pool("cpu", size=1) as pool:
        stubborn = await system.spawn(Stubborn, str(marker), placement=POOLED)
        echo = await system.spawn(Echo, placement=POOLED)
        pid = await stubborn.ask("pid")
        await stubborn.stop()
        assert marker.read_text() == "stopped"
        assert alive(pid) and pool.pids == (pid,)
        assert await echo.ask("pid") == pid
        assert await hosted(pool) == [1]


async def test_an_actor_outlasting_its_shutdown_is_killed_and_the_worker_lives_on(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system, system.process_pool("cpu", size=1) as pool:
        ref = await system.spawn(Stubborn, str(marker), 60.0, placement=POOLED, shutdown=0.2)
        pid = await ref.ask("pid")
        with anyio.fail_after(10):
            await ref.stop()
        assert marker.read_text() == "stopped"  # its on_stop began, and was cut short
        assert pool.pids == (pid,)
        assert await hosted(pool) == [0]


async def test_killing_a_stand_in_kills_its_actor_on_the_worker(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system, system.process_pool("cpu", size=1) as pool:
        refs = [await system.spawn(Echo, placement=POOLED) for _ in range(2)]
        assert await hosted(pool) == [2]
        await refs[0].kill()  # no on_stop here, so nobody asks the host to stop it...
        counts: list[int] = []

        async def census() -> bool:
            counts[:] = await hosted(pool)
            return counts == [1]

        with anyio.fail_after(10):
            while True:
                if await census():  # ...but it is gone over there too
                    break
                await anyio.sleep(0.01)
        assert await refs[1].ask("pid") == pool.pids[0]


async def test_kill_9_of_a_worker_fails_exactly_its_actors(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=2)
        names = ["w1", "w2", "w3", "w4"]
        sup = await supervised(system, [ChildSpec(Echo, name=n, placement=POOLED) for n in names])
        refs = {n: await incarnation(sup, n) for n in names}
        pids = {n: await refs[n].ask("pid") for n in names}
        victim = pids["w1"]
        doomed = {n for n in names if pids[n] == victim}
        spared = set(names) - doomed
        assert len(doomed) == 2 and len(spared) == 2
        watcher = await TestProbe.start(system)
        for ref in refs.values():
            watcher.watch(ref)
        outcome: list[BaseException] = []
        with anyio.fail_after(5):  # ConnectionLost well before the ask's timeout
            async with anyio.create_task_group() as tg:

                async def ask() -> None:
                    try:
                        await refs["w1"].ask(("sleep", 30), timeout=20)
                    except Exception as error:
                        outcome.append(error)

                tg.start_soon(ask)
                await anyio.wait_all_tasks_blocked()
                os.kill(victim, signal.SIGKILL)
        assert isinstance(outcome[0], ConnectionLost)
        ended = [
            await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT) for _ in doomed
        ]
        assert {notice.ref.name for notice in ended} == doomed
        for notice in ended:
            assert isinstance(notice.reason, ProcessExited) and notice.reason.code == -9
            assert notice.reason.pid == victim
            notes = getattr(notice.reason, "__notes__", [])
            assert notes == [f"raised in actor {notice.ref.path}"]  # its own, logged once each
        # Restarted on live workers; the others were never touched.
        for n in doomed:
            new = await incarnation(sup, n, not_=refs[n])
            assert await new.ask("pid") not in (victim, None)
        for n in spared:
            assert refs[n].alive and await refs[n].ask("pid") == pids[n]
        # The pool replaced the worker, and new actors go to it (it has the fewest).
        with anyio.fail_after(10):
            await pool.wait_ready()
        assert pool.restarts == 1 and len(pool.pids) == 2 and victim not in pool.pids
        replacement = next(pid for pid in pool.pids if pid not in pids.values())
        late = [await system.spawn(Echo, placement=POOLED) for _ in range(2)]
        assert [await ref.ask("pid") for ref in late] == [replacement, replacement]


async def test_a_hung_worker_fails_its_actors_with_process_hung(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=2, placement=Subprocess(heartbeat=0.1))
        sup = await supervised(system, [ChildSpec(Echo, name=n, placement=POOLED) for n in "ab"])
        refs = [await incarnation(sup, n) for n in "ab"]
        first, second = [await ref.ask("pid") for ref in refs]
        assert first != second
        watcher = await TestProbe.start(system)
        watcher.watch(refs[0])
        os.kill(first, signal.SIGSTOP)
        ended = await watcher.expect(lambda m: isinstance(m, Terminated), timeout=10)
        assert isinstance(ended.reason, ProcessHung), ended.reason
        assert not alive(first)
        assert await refs[1].ask("pid") == second
        with anyio.fail_after(10):
            await pool.wait_ready()
        assert len(pool.pids) == 2 and first not in pool.pids


async def test_closing_the_pool_stops_its_actors_then_reaps_every_worker(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        async with system.process_pool("cpu", size=3) as pool:
            ref = await system.spawn(Stubborn, str(marker), placement=POOLED)
            others = [await system.spawn(Echo, placement=POOLED) for _ in range(4)]
            pids = pool.pids
            assert len(pids) == 3
        assert marker.read_text() == "stopped"  # on_stop ran: its worker was still up
        assert not ref.alive and not any(other.alive for other in others)
        assert not any(alive(pid) for pid in pids)
        assert children_of(os.getpid()) == []
        assert pool.pids == ()
        with pytest.raises(ActorsError, match="no process pool named 'cpu'"):
            await system.spawn(Echo, placement=POOLED)
        await pool.close()  # closing again does nothing
        async with system.process_pool("cpu", size=1):  # the name is free again
            assert await (await system.spawn(Echo, placement=POOLED)).ask("x")


async def test_a_cancelled_close_still_reaps_the_workers_and_fails_their_actors(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=1)
        slow = await system.spawn(Stubborn, str(marker), 60.0, placement=POOLED, shutdown=30)
        echo = await system.spawn(Echo, placement=POOLED, name="echo")
        pid = pool.pids[0]
        with anyio.move_on_after(0.5) as scope:
            await pool.close()  # echo stops at once; slow would take a minute
        assert scope.cancelled_caught and not alive(pid)
        assert (await echo.join()).reason is None
        with anyio.fail_after(10):
            ended = await slow.join()
        assert ended.reason is None  # it was stopping: the end of its worker ends that


async def test_actors_left_on_a_worker_the_pool_ends_fail(anyio_backend: Any) -> None:
    # close() stops every actor first; one still there (none can be, by the
    # public API) must not stay "running" without its process.
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=1)
        sup = await supervised(
            system, [ChildSpec(Echo, name="e", placement=POOLED, restart="temporary")]
        )
        ref = await incarnation(sup, "e")
        watcher = await TestProbe.start(system)
        watcher.watch(ref)
        worker = pool._slots[0]
        assert worker is not None
        await worker.end(kill=False)
        ended = await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
        assert isinstance(ended.reason, ProcessExited)
        assert "its process pool ended it" in str(ended.reason)


async def test_the_system_closes_its_pools_after_its_actors_stopped(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=2)
        await supervised(system, [ChildSpec(Stubborn, str(marker), placement=POOLED)])
        pids = pool.pids
    assert marker.read_text() == "stopped"
    assert not any(alive(pid) for pid in pids)


async def test_cancelling_the_system_kills_and_reaps_the_workers(anyio_backend: Any) -> None:
    pids: tuple[int, ...] = ()
    with anyio.move_on_after(60) as scope:
        async with actors.ActorSystem() as system:
            pool = await system.process_pool("cpu", size=2)
            await system.spawn(Echo, placement=POOLED)
            pids = pool.pids
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught and len(pids) == 2
    assert not any(alive(pid) for pid in pids)


async def test_a_pool_that_cannot_keep_its_workers_gives_up(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=1, max_restarts=1, within=60)
        os.kill(pool.pids[0], signal.SIGKILL)
        await until(lambda: pool.restarts == 1)
        with anyio.fail_after(10):
            await pool.wait_ready()
        os.kill(pool.pids[0], signal.SIGKILL)
        await until(lambda: pool.error is not None)
        with pytest.raises(ActorsError, match="'cpu' gave up: more than 1 worker restarts"):
            await system.spawn(Echo, placement=POOLED)
        with pytest.raises(ActorsError, match="gave up"):
            await pool.wait_ready()
        assert pool.pids == () and pool.restarts == 1


async def test_a_spawn_waits_for_the_replacement_of_the_only_worker(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        pool = await system.process_pool("cpu", size=1)
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)
        await until(lambda: pool.pids == ())
        ref = await system.spawn(Echo, placement=POOLED)
        assert await ref.ask("pid") not in (victim, None)
        assert pool.restarts == 1


async def test_a_spawn_on_a_pool_that_does_not_exist_fails_clearly(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(ActorsError) as caught:
            await system.spawn(Echo, name="e", placement=Subprocess(pool="gpu"))
        text = str(caught.value)
        assert "/user/e" in text and "no process pool named 'gpu'" in text
        assert "system.process_pool('gpu', size=...)" in text
        assert children_of(os.getpid()) == []


async def test_a_failing_on_start_fails_the_spawn_and_not_the_worker(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system, system.process_pool("cpu", size=1) as pool:
        echo = await system.spawn(Echo, placement=POOLED)
        with pytest.raises(ActorFailed, match="failed to start") as caught:
            await system.spawn(FailsToStart, placement=POOLED)
        cause = caught.value.__cause__
        assert isinstance(cause, RuntimeError) and "no database" in str(cause)
        assert "on_start" in cause.remote_traceback  # type: ignore[attr-defined]
        assert await echo.ask("pid") == pool.pids[0]
        assert await hosted(pool) == [1]


async def test_pool_names_are_unique_and_workers_that_cannot_start_fail_the_pool(
    anyio_backend: Any,
) -> None:
    async with actors.ActorSystem() as system:
        async with system.process_pool("cpu", size=1):
            with pytest.raises(ActorsError, match="already has a process pool named 'cpu'"):
                await system.process_pool("cpu", size=1)
        broken = Subprocess(python="/bin/false")
        with pytest.raises(ProcessExited, match="before its handshake"):
            await system.process_pool("cpu", size=2, placement=broken)
        assert children_of(os.getpid()) == []
        assert "cpu" not in system._pools


def test_bad_pool_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"pass heartbeat=0\.5 to system\.process_pool"):
        Subprocess(pool="cpu", heartbeat=0.5)
    assert Subprocess(pool="cpu", start_timeout=3).start_timeout == 3
    system = actors.ActorSystem()
    with pytest.raises(ValueError, match="size must be a whole number >= 1"):
        system.process_pool("cpu", size=0)
    with pytest.raises(ValueError, match="cannot name a pool itself"):
        system.process_pool("cpu", size=1, placement=Subprocess(pool="x"))
    with pytest.raises(ValueError, match="non-empty string"):
        system.process_pool("", size=1)
    with pytest.raises(ValueError, match="within"):
        system.process_pool("cpu", size=1, within=0)
