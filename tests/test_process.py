"""Process actors: spawn(..., placement=Subprocess()), on both backends, and
with the child on the other backend."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import anyio
import pytest
from process_kit import (
    Echo,
    FailsToStart,
    Handlers,
    Spawner,
    StartsSlowly,
    Stubborn,
    alive,
    children_of,
)
from supervision_kit import child

import actors
from actors import (
    ActorFailed,
    ActorStopped,
    AskTimeout,
    ConnectionLost,
    ProcessExited,
    ProcessHung,
    Subprocess,
    Terminated,
    UnpicklableMessage,
)
from actors.testing import TestProbe
from supervision import ChildSpec, Supervisor

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 20.0

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc"),
    pytest.mark.usefixtures("no_orphans"),
]


async def test_tell_and_ask_reach_an_actor_in_another_process(placement: Subprocess) -> None:
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, "t", name="echo", placement=placement)
        assert isinstance(ref, actors.ActorRef)
        pid = await ref.ask("pid")
        assert pid != os.getpid() and alive(pid)
        for i in range(500):
            await ref.tell(i)
        assert await ref.ask("end") == ("echo", "t", "end")
        assert await ref.ask("seen") == [*range(500), "end"]  # FIFO
        assert "pid" in str(system.tree())
        await ref.stop()
        assert not ref.alive
        assert not alive(pid)
        with pytest.raises(ActorStopped):
            await ref.ask("late")


async def test_refs_cross_the_boundary_both_ways(placement: Subprocess) -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        local = await system.spawn(Echo, "local", name="local")
        ref = await system.spawn(Echo, name="remote", placement=placement)
        await ref.tell(("tell", probe.ref, "from the child"))
        await probe.expect("from the child", timeout=WAIT)
        # The child asks an actor of the parent through the ref it was sent.
        assert await ref.ask(("ask", local, "question")) == ("echo", "local", "question")
        # A ref to itself comes back as the same ref.
        await ref.tell(("tell", probe.ref, ref))
        assert await probe.expect(lambda m: isinstance(m, actors.ActorRef), timeout=WAIT) == ref


async def test_a_failure_in_the_child_fails_the_actor_with_the_remote_traceback(
    placement: Subprocess,
) -> None:
    async with actors.ActorSystem() as system:
        await _supervised_echo(system, placement)
        ref = await _child(system, "/user/sup/w")
        with pytest.raises(ActorFailed) as caught:
            await ref.ask("boom")
        cause = caught.value.__cause__
        assert isinstance(cause, ValueError) and str(cause) == "boom"
        assert "Traceback" in cause.remote_traceback  # type: ignore[attr-defined]
        assert cause.pid != os.getpid()  # type: ignore[attr-defined]
        ended = await ref.join()
        assert isinstance(ended.reason, ValueError)
        new = await _child(system, "/user/sup/w", not_=ref)
        assert await new.ask("hi") == ("echo", "", "hi")


def _generator() -> Any:
    return (x for x in range(3))


async def _supervised_echo(system: actors.ActorSystem, placement: Subprocess | None) -> None:
    # A one_for_one Supervisor, registered as "sup", of one Echo named "w".
    await system.spawn(
        Supervisor,
        [ChildSpec(Echo, name="w", placement=placement)],
        strategy="one_for_one",
        name="sup",
    )
    system.registry.register("sup", _sup(system))


def _sup(system: actors.ActorSystem) -> actors.ActorRef:
    return system._top["sup"].ref


async def _child(
    system: actors.ActorSystem, path: str, not_: actors.ActorRef | None = None
) -> actors.ActorRef:
    # The supervisor's child at path once it runs an incarnation other than not_.
    name = path.rsplit("/", 1)[1]
    sup = system.registry.whereis("sup")
    assert sup is not None
    with anyio.fail_after(10):
        while True:
            info = await child(sup, name)
            if info.ref is not None and info.ref != not_ and info.state == "running":
                return info.ref
            await anyio.sleep(0.01)


# --8<-- [start:kill-9]
async def test_kill_9_mid_ask_is_connection_lost_and_a_restart(placement: Subprocess) -> None:
    async with actors.ActorSystem() as system:
        await system.spawn(
            Supervisor,
            [
                ChildSpec(Echo, "in-process", name="local"),
                ChildSpec(Echo, name="w", placement=placement),
            ],
            strategy="one_for_all",
            name="sup",
        )
        system.registry.register("sup", _sup(system))
        local = await _child(system, "/user/sup/local")
        ref = await _child(system, "/user/sup/w")
        pid = await ref.ask("pid")
        watcher = await TestProbe.start(system)
        watcher.watch(ref)
        outcome: list[BaseException] = []
        with anyio.fail_after(5):  # ConnectionLost well before the ask's timeout
            async with anyio.create_task_group() as tg:

                async def ask() -> None:
                    try:
                        await ref.ask(("sleep", 30), timeout=20)
                    except Exception as error:
                        outcome.append(error)

                tg.start_soon(ask)
                await anyio.wait_all_tasks_blocked()
                os.kill(pid, signal.SIGKILL)
        assert isinstance(outcome[0], ConnectionLost)
        ended = await watcher.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
        assert isinstance(ended.reason, ProcessExited) and ended.reason.code == -9
        assert "SIGKILL" in str(ended.reason)
        with pytest.raises(ActorStopped):
            await ref.ask("old ref")
        new = await _child(system, "/user/sup/w", not_=ref)
        assert await new.ask("pid") != pid
        assert await _child(system, "/user/sup/local", not_=local) != local  # one_for_all


# --8<-- [end:kill-9]


async def test_a_hung_child_is_declared_dead_killed_and_restarted(anyio_backend: Any) -> None:
    placement = Subprocess(heartbeat=0.1, misses=3)
    async with actors.ActorSystem() as system:
        await system.spawn(
            Supervisor,
            [ChildSpec(Echo, name="w", placement=placement)],
            name="sup",
        )
        system.registry.register("sup", _sup(system))
        ref = await _child(system, "/user/sup/w")
        pid = await ref.ask("pid")
        watcher = await TestProbe.start(system)
        watcher.watch(ref)
        os.kill(pid, signal.SIGSTOP)
        ended = await watcher.expect(lambda m: isinstance(m, Terminated), timeout=10)
        assert isinstance(ended.reason, ProcessHung), ended.reason
        assert not alive(pid)
        new = await _child(system, "/user/sup/w", not_=ref)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # it is gone: nothing to continue
        assert await new.ask("hi") == ("echo", "", "hi")


async def test_a_failing_on_start_fails_spawn_and_leaves_no_process(
    placement: Subprocess,
) -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(ActorFailed, match="failed to start") as caught:
            await system.spawn(FailsToStart, placement=placement)
        cause = caught.value.__cause__
        assert isinstance(cause, RuntimeError) and "no database" in str(cause)
        assert "on_start" in cause.remote_traceback  # type: ignore[attr-defined]
        assert children_of(os.getpid()) == []


@pytest.mark.parametrize("pooled", [False, True], ids=["own", "pool"])
async def test_a_process_killed_during_on_start_fails_spawn_with_how_it_died(
    anyio_backend: Any, pooled: bool
) -> None:
    # The spawn's ConnectionLost came first, and ending the process at once
    # made its death the owner's doing: the cause said nothing of the -9.
    async with actors.ActorSystem() as system:
        placement = Subprocess()
        if pooled:
            await system.process_pool("p", size=1)
            placement = Subprocess(pool="p")
        probe = await TestProbe.start(system)

        async def kill_once_it_starts() -> None:
            os.kill(await probe.receive(timeout=WAIT), signal.SIGKILL)

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_once_it_starts)
            with pytest.raises(ActorFailed, match="failed to start") as caught:
                await system.spawn(StartsSlowly, probe.ref, placement=placement)
        cause = caught.value.__cause__
        assert isinstance(cause, ProcessExited), repr(cause)
        assert cause.code == -9


async def test_an_unpicklable_message_fails_in_the_sender(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, placement=Subprocess())
        with pytest.raises(UnpicklableMessage, match="generator"):
            await ref.ask(_generator())
        assert await ref.ask("still fine") == ("echo", "", "still fine")


async def test_an_unpicklable_tell_to_an_actor_still_starting_is_a_dead_letter(
    anyio_backend: Any,
) -> None:
    # Until it has started, its messages wait here and are pickled when they
    # go: the sender has gone on, so the one that cannot be is a dead letter.
    async with actors.ActorSystem() as system, system.dead_letters() as letters:
        ref = system.spawn_nowait(Echo, placement=Subprocess())
        await ref.tell(_generator())
        await ref.tell("after it")
        with anyio.fail_after(WAIT):
            letter = await letters.receive()
        assert letter.recipient == ref and isinstance(letter.message, types.GeneratorType)
        assert letter.reason.startswith("unpicklable: ") and "generator" in letter.reason
        assert await ref.ask("seen") == ["after it"]  # the rest went on, in order


async def test_unpicklable_spawn_arguments_fail_the_spawn(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(ActorFailed) as caught:
            await system.spawn(Echo, _generator(), placement=Subprocess())
        assert isinstance(caught.value.__cause__, UnpicklableMessage)
        assert children_of(os.getpid()) == []


async def test_cancelling_an_ask_cancels_the_remote_handler(placement: Subprocess) -> None:
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Handlers, placement=placement)
        with anyio.move_on_after(0.2):
            await ref.ask(("sleep", 60), timeout=None)
        with anyio.fail_after(10):
            assert await ref.ask("running") == 0


async def test_a_thousand_asks_with_random_timeouts(anyio_backend: Any) -> None:
    rng = random.Random(7)
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Handlers, placement=Subprocess())
        results: dict[str, int] = {"ok": 0, "timeout": 0}

        async def one(timeout: float, sleep: float) -> None:
            try:
                await ref.ask(("sleep", sleep), timeout=timeout)
                results["ok"] += 1
            except AskTimeout:
                results["timeout"] += 1

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(one, rng.uniform(0.01, 0.2), rng.choice([0, 0, 0.0005]))
        assert results["ok"] + results["timeout"] == 1000
        assert await ref.ask("running") == 0
        peer = next(iter(system._peers.values()))
        assert peer._pending == {}


async def test_stopping_runs_on_stop_in_the_child_and_reaps_it(
    placement: Subprocess, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Stubborn, str(marker), placement=placement)
        pid = await ref.ask("pid")
        await ref.stop()
        assert marker.read_text() == "stopped"
        assert not alive(pid)


async def test_a_child_that_outlasts_its_shutdown_is_killed(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Stubborn, str(marker), 60.0, placement=Subprocess(), shutdown=0.2)
        pid = await ref.ask("pid")
        with anyio.fail_after(10):
            await ref.stop()
        assert not alive(pid)


@pytest.mark.parametrize("pooled", [False, True], ids=["own", "pool"])
async def test_a_process_killed_while_its_actor_stops_fails_the_stop(
    anyio_backend: Any, tmp_path: Path, pooled: bool
) -> None:
    # Its end was taken for the end of the stop: Terminated said nothing of
    # the -9, where an in-process on_stop that raises fails the actor.
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        placement = Subprocess()
        if pooled:
            await system.process_pool("p", size=1)
            placement = Subprocess(pool="p")
        spec = ChildSpec(
            Stubborn, str(marker), 60.0, name="s", placement=placement, restart="temporary"
        )
        await system.spawn(Supervisor, [spec], strategy="one_for_one", name="sup")
        system.registry.register("sup", _sup(system))
        ref = await _child(system, "/user/sup/s")
        pid = await ref.ask("pid")
        ref.stop_nowait()
        with anyio.fail_after(WAIT):
            while not marker.exists():  # noqa: ASYNC110 - its on_stop runs there
                await anyio.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(WAIT):
            ended = await ref.join()
        assert isinstance(ended.reason, ProcessExited), ended
        assert ended.reason.code == -9


def test_killing_the_parent_leaves_no_child(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, anyio, actors
            from process_kit import Echo

            async def main():
                async with actors.ActorSystem() as system:
                    place = actors.Subprocess()
                    refs = [await system.spawn(Echo, placement=place) for _ in range(2)]
                    print(*[await r.ask("pid") for r in refs], flush=True)
                    await anyio.sleep(60)

            anyio.run(main)
            """
        )
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)])}
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root, env=env
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        parent.kill()
        parent.wait(10)
        give_up = time.monotonic() + 1.0
        while any(alive(p) for p in pids) and time.monotonic() < give_up:
            time.sleep(0.01)
        assert not any(alive(p) for p in pids)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


async def test_a_process_actor_can_place_its_own_children_in_processes(
    placement: Subprocess,
) -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        spawner = await system.spawn(Spawner, placement=placement)
        child = await spawner.ask("spawn", timeout=20)
        pids = {os.getpid(), await spawner.ask("pid"), await child.ask("pid")}
        assert len(pids) == 3
        # An actor inside the grandchild process: reached through both.
        grandchild = await child.ask("local")
        assert await grandchild.ask("pid") in pids - {os.getpid(), await spawner.ask("pid")}
        await grandchild.tell(("tell", probe.ref, "from the grandchild"))
        await probe.expect("from the grandchild", timeout=WAIT)
        probe.watch(grandchild)
        await grandchild.ask(("tell", probe.ref, "still alive"))
        await probe.expect("still alive", timeout=WAIT)  # no Terminated came first
        await spawner.stop()  # stops its child first
        ended = await probe.expect(lambda m: isinstance(m, Terminated), timeout=WAIT)
        assert ended.ref == grandchild


def test_ctrl_c_to_the_process_group_stops_process_actors_gracefully(tmp_path: Path) -> None:
    # Ctrl-C in a terminal reaches every process of the group: the children
    # ignore it, and the parent stops them (on_stop runs there), then exits.
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import actors
            from process_kit import Announcer
            from supervision import ChildSpec, Supervisor, run

            tree = [ChildSpec(Announcer, name="w", placement=actors.Subprocess())]
            run(ChildSpec(Supervisor, tree, name="app"))
            """
        )
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)])}
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env=env,
        start_new_session=True,  # its own process group, as a terminal gives
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.startswith("child "), line
        pid = int(line.split()[1])
        os.killpg(parent.pid, signal.SIGINT)
        out, _ = parent.communicate(timeout=20)
        assert parent.returncode == 0  # supervision.run: a graceful stop
        assert "stopped in the child" in out
        assert not alive(pid)
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


async def test_a_child_that_ignores_sigterm_is_killed_a_second_later(
    anyio_backend: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    async with actors.ActorSystem() as system:
        ref = await system.spawn(
            Stubborn, str(marker), 60.0, True, placement=Subprocess(), shutdown=0.2
        )
        pid = await ref.ask("pid")
        with anyio.fail_after(10):
            await ref.stop()  # stop, 0.2 s, SIGTERM (ignored), 1 s, SIGKILL
        assert marker.read_text() == "stopped"
        assert not alive(pid)


async def test_a_loop_holding_the_gil_is_declared_hung(anyio_backend: Any) -> None:
    async with actors.ActorSystem() as system:
        probe = await TestProbe.start(system)
        placement = Subprocess(heartbeat=0.1, misses=3)
        spec = ChildSpec(Echo, name="w", restart="temporary", placement=placement)
        await system.spawn(Supervisor, [spec], name="sup")
        system.registry.register("sup", _sup(system))
        ref = await _child(system, "/user/sup/w")
        pid = await ref.ask("pid")
        probe.watch(ref)
        with pytest.raises(ConnectionLost):
            await ref.ask("spin", timeout=20)
        ended = await probe.expect(lambda m: isinstance(m, Terminated), timeout=10)
        assert isinstance(ended.reason, ProcessHung), ended.reason
        assert not alive(pid)


async def test_dead_letters_in_a_child_reach_the_parent(placement: Subprocess) -> None:
    async with actors.ActorSystem() as system:
        spawner = await system.spawn(Spawner, placement=placement)
        local = await spawner.ask("local")  # an actor inside the child process
        await local.stop()
        async with system.dead_letters() as letters:
            await local.tell("too late")
            with anyio.fail_after(10):
                letter = await letters.receive()
        assert letter.message == "too late"
        assert letter.recipient == local
        assert letter.reason.startswith("stopped (in ")
        assert system.statistics().dead_letters >= 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_trio_parent_does_not_tie_its_children_to_a_worker_thread(
    anyio_backend: Any,
) -> None:
    # trio starts processes from a worker thread that exits after ten idle
    # seconds; PR_SET_PDEATHSIG fires when the thread that forked exits, so
    # a child of a trio parent must not ask for it (it relies on the end of
    # its connection and on watching its parent pid instead).
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo, placement=Subprocess())
        pid = await ref.ask("pid")
        assert b"--pdeathsig" not in await anyio.Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_child_whose_loop_is_stuck_still_dies_with_its_parent(tmp_path: Path) -> None:
    # The child cannot see the end of its connection while a handler spins;
    # it dies all the same when its parent does (a trio parent: no PDEATHSIG).
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import anyio, actors
            from process_kit import Echo

            async def main():
                async with actors.ActorSystem() as system:
                    ref = await system.spawn(Echo, placement=actors.Subprocess(heartbeat=60))
                    print(await ref.ask("pid"), flush=True)
                    await ref.tell("spin")
                    await anyio.sleep(60)

            anyio.run(main, backend="trio")
            """
        )
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)])}
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root, env=env
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
        give_up = time.monotonic() + 2.0
        while alive(pid) and time.monotonic() < give_up:
            time.sleep(0.01)
        assert not alive(pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


async def test_a_full_mailbox_in_the_child_never_holds_up_a_reply(placement: Subprocess) -> None:
    # The child's actor asks the parent while the parent floods its small
    # mailbox: the reply must get past the flood (the connection's backlog),
    # and the flood still arrives whole and in order.
    async with actors.ActorSystem() as system:
        local = await system.spawn(Echo, "local", name="local")
        ref = await system.spawn(Echo, mailbox=actors.Mailbox(4), placement=placement)
        await ref.tell(("ask", local, "question"))
        for i in range(3000):
            await ref.tell(i)
        with anyio.fail_after(20):
            assert await ref.ask("seen", timeout=None) == list(range(3000))
        assert await local.ask("seen") == ["question"]


async def test_an_ask_the_child_cannot_unpickle_fails_at_once(anyio_backend: Any) -> None:
    # A class only this process can import: pickled by name, unknown there.
    module = types.ModuleType("only_in_the_parent")
    exec("class Secret:\n    pass\n", module.__dict__)
    module.Secret.__module__ = module.__name__
    sys.modules[module.__name__] = module
    try:
        async with actors.ActorSystem() as system:
            ref = await system.spawn(Echo, placement=Subprocess())
            with anyio.fail_after(5), pytest.raises(actors.ActorsError, match="only_in_the_parent"):
                await ref.ask(module.Secret(), timeout=30)
            assert await ref.ask("still fine") == ("echo", "", "still fine")
    finally:
        del sys.modules[module.__name__]


async def test_a_spawn_out_of_time_says_so_and_the_next_one_works(tmp_path: Path) -> None:
    # The timed-out child's socket was closed while asyncio still watched it:
    # every later socket or pidfd given that fd number went unwatched, and
    # every later spawn of the process timed out (or hung in a pool).
    slow = tmp_path / "slow-python"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    slow.chmod(0o755)
    async with actors.ActorSystem() as system:
        with pytest.raises(ActorFailed, match=r"did not start within 0\.5 s") as failed:
            await system.spawn(Echo, placement=Subprocess(python=str(slow), start_timeout=0.5))
        assert "start_timeout" in str(failed.value)
        for _ in range(2):
            with anyio.fail_after(WAIT):
                ref = await system.spawn(Echo, placement=Subprocess())
                assert await ref.ask("pid") != os.getpid()
                await ref.stop()


@pytest.mark.parametrize("pooled", [False, True], ids=["own", "pool"])
async def test_an_on_start_out_of_time_is_named_as_such(anyio_backend: Any, pooled: bool) -> None:
    # The message said the process did not start, which was running.
    async with actors.ActorSystem() as system:
        placement = Subprocess(start_timeout=2)
        if pooled:
            await system.process_pool("p", size=1)
            placement = Subprocess(pool="p", start_timeout=2)
        probe = await TestProbe.start(system)
        with pytest.raises(ActorFailed) as failed:
            await system.spawn(StartsSlowly, probe.ref, placement=placement)
        pid = await probe.receive(timeout=WAIT)
        assert f"its on_start in process {pid} did not finish within 2 s" in str(failed.value)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"env": {"A": 1}}, "env"),
        ({"env": ["A=1"]}, "env"),
        ({"by_value": 123}, "by_value"),
        ({"by_value": [1]}, "by_value"),
        ({"by_value": [""]}, "by_value"),
    ],
)
def test_bad_subprocess_options_are_named(options: dict[str, Any], named: str) -> None:
    # They failed at spawn, deep in the child's start (a TypeError about
    # os.PathLike, an AttributeError about startswith).
    with pytest.raises(TypeError, match=rf"Subprocess\({named}=\.\.\.\) must"):
        Subprocess(**options)
    only = Subprocess(env={"A": "1"}, by_value="myapp.jobs")  # type: ignore[arg-type]
    assert only.by_value == ("myapp.jobs",)


@pytest.mark.parametrize("where", ["here", "process", "pool"])
async def test_a_failure_stays_the_reason_when_a_stop_follows_at_once(
    anyio_backend: Any, where: str
) -> None:
    # The asker hears of the failure before the stand-in does (the reply
    # comes first): its stop must not turn the failure into a clean stop.
    async with actors.ActorSystem() as system:
        placement = None
        if where == "pool":
            await system.process_pool("p", size=1)  # closed after the supervisor
            placement = Subprocess(pool="p")
        elif where == "process":
            placement = Subprocess()
        await _supervised_echo(system, placement)
        for _ in range(3):
            ref = await _child(system, "/user/sup/w")
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
            await ref.stop()
            ended = await ref.join()
            assert isinstance(ended.reason, ValueError), ended
