"""Chaos: a four-level tree of 1,000 workers crashing at random while messages
flow, checked against a small reference model of OTP's intensity rule.

The tree is ``root -> 5 regions -> 4 teams each -> 50 workers each``, all
one_for_one; teams allow 3 restarts per second, regions 2 per 20 seconds, the
root plenty. A seeded driver injects crashes at random virtual times into
random workers, and sends work to random workers between them. Virtual time
only moves when every task is idle, so each crash is handled, and every
restart or escalation it causes is complete, at the instant it was injected.

The reference model replays the same crash times through the intensity rule
written out plainly (keep the restarts at ``t >= now - within``, add this one,
give up if there are more than ``max_restarts``), escalating a give-up to the
parent as one restart there. After every crash the tree must agree with it
about which supervisors have been restarted; at the end, about every restart
count, every worker alive, and no task left behind.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

import actors
import actors.testing
from actors import Actor, ActorRef, ActorSystem
from supervision import ChildSpec, Supervisor, which_children

pytestmark = pytest.mark.anyio

REGIONS, TEAMS, WORKERS = 5, 4, 50  # teams per region, workers per team
TEAM_LIMIT = (3, 1.0)  # max_restarts, within
REGION_LIMIT = (2, 20.0)
ROOT_LIMIT = (10_000, 1.0)
CRASHES = 1500
DURATION = 100.0
WORK_PER_CRASH = 5
SEED = 20240611


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    # asyncio's debug mode (on in every other test) records a stack for every
    # future and handle, which makes this test five times slower; it checks
    # behaviour, not misuse of asyncio, so it runs without.
    backend, options = actors.testing.virtual_time(request.param)
    return backend, {**options, "debug": False} if backend == "asyncio" else options


class ChaosWorker(Actor):
    def __init__(self) -> None:
        self.done = 0

    async def receive(self, message: Any) -> Any:
        match message:
            case "crash":
                raise RuntimeError("injected crash")
            case ("work", n):
                self.done += n
        return None


def regions() -> list[ChildSpec]:
    def team(r: int, t: int) -> ChildSpec:
        workers = [ChildSpec(ChaosWorker, name=f"w{w}") for w in range(WORKERS)]
        max_restarts, within = TEAM_LIMIT
        return ChildSpec(
            Supervisor, workers, max_restarts=max_restarts, within=within, name=f"t{t}"
        )

    def region(r: int) -> ChildSpec:
        max_restarts, within = REGION_LIMIT
        teams = [team(r, t) for t in range(TEAMS)]
        return ChildSpec(Supervisor, teams, max_restarts=max_restarts, within=within, name=f"r{r}")

    return [region(r) for r in range(REGIONS)]


# -- the reference model ----------------------------------------------------------


class Intensity:
    """OTP's add_restart, as plainly as it can be written."""

    def __init__(self, limit: tuple[int, float]) -> None:
        self.max_restarts, self.within = limit
        self.times: list[float] = []

    def restart(self, now: float) -> bool:
        self.times = [t for t in self.times if t >= now - self.within] + [now]
        return len(self.times) <= self.max_restarts


@dataclass
class Model:
    workers: list[int] = field(default_factory=lambda: [0] * (REGIONS * TEAMS * WORKERS))
    teams: list[int] = field(default_factory=lambda: [0] * (REGIONS * TEAMS))
    regions: list[int] = field(default_factory=lambda: [0] * REGIONS)
    team_intensity: list[Intensity] = field(
        default_factory=lambda: [Intensity(TEAM_LIMIT) for _ in range(REGIONS * TEAMS)]
    )
    region_intensity: list[Intensity] = field(
        default_factory=lambda: [Intensity(REGION_LIMIT) for _ in range(REGIONS)]
    )
    root_intensity: Intensity = field(default_factory=lambda: Intensity(ROOT_LIMIT))
    escalations: list[tuple[str, int, float]] = field(default_factory=list)
    worker_restarts: int = 0

    def crash(self, now: float, worker: int) -> None:
        team = worker // WORKERS
        region = team // TEAMS
        if self.team_intensity[team].restart(now):
            self.workers[worker] += 1
            self.worker_restarts += 1
            return
        self.escalations.append(("team", team, now))
        if self.region_intensity[region].restart(now):
            self.teams[team] += 1
            self._fresh_team(team)
            return
        self.escalations.append(("region", region, now))
        assert self.root_intensity.restart(now), "the root is not meant to give up"
        self.regions[region] += 1
        self.region_intensity[region] = Intensity(REGION_LIMIT)
        for t in range(region * TEAMS, (region + 1) * TEAMS):
            self.teams[t] = 0
            self._fresh_team(t)

    def _fresh_team(self, team: int) -> None:
        self.team_intensity[team] = Intensity(TEAM_LIMIT)
        for w in range(team * WORKERS, (team + 1) * WORKERS):
            self.workers[w] = 0


def path(worker: int) -> str:
    team = worker // WORKERS
    return f"/user/root/r{team // TEAMS}/t{team % TEAMS}/w{worker % WORKERS}"


# -- the driver -------------------------------------------------------------------


async def lookup(parent: ActorRef, name: str) -> ActorRef:
    for info in await which_children(parent):
        if info.name == name:
            assert info.ref is not None, f"{parent.path}/{name} is {info.state}"
            return info.ref
    raise AssertionError(f"{parent.path} has no child {name}")


async def team_of(root: ActorRef, team: int) -> ActorRef:
    region = await lookup(root, f"r{team // TEAMS}")
    return await lookup(region, f"t{team % TEAMS}")


async def check_step(root: ActorRef, model: Model, region: int) -> None:
    """The supervisors the last crash could have restarted agree with the model."""
    regions = await which_children(root)
    assert [info.restarts for info in regions] == model.regions
    region_ref = regions[region].ref
    assert region_ref is not None
    teams = [info.restarts for info in await which_children(region_ref)]
    assert teams == model.teams[region * TEAMS : (region + 1) * TEAMS]


async def test_chaos_tree_matches_the_reference_model() -> None:
    rng = random.Random(SEED)
    times = sorted(rng.uniform(1.0, DURATION) for _ in range(CRASHES))
    assert len(set(times)) == CRASHES
    targets = [rng.randrange(REGIONS * TEAMS * WORKERS) for _ in range(CRASHES)]
    model = Model()
    tasks_before = len(anyio.get_running_tasks())
    sent = dead_refs = 0

    async with ActorSystem("chaos") as system:
        max_restarts, within = ROOT_LIMIT
        root = await system.spawn(
            Supervisor,
            regions(),
            max_restarts=max_restarts,
            within=within,
            name="root",
            shutdown=math.inf,
        )
        # Cached worker refs for the work traffic; refreshed per team when the
        # driver looks a team up, so some go stale (their messages are dead
        # letters), as they would for any client.
        cache: dict[int, list[ActorRef]] = {}
        last_region = 0
        for now, target in zip(times, targets, strict=True):
            await anyio.sleep_until(now)
            assert anyio.current_time() == now
            await check_step(root, model, last_region)
            team = target // WORKERS
            team_ref = await team_of(root, team)
            infos = await which_children(team_ref)
            assert all(info.state == "running" for info in infos)
            cache[team] = [info.ref for info in infos]  # type: ignore[misc]
            await cache[team][target % WORKERS].tell("crash")
            model.crash(now, target)
            last_region = team // TEAMS
            for _ in range(WORK_PER_CRASH):
                team = rng.choice(list(cache))
                ref = rng.choice(cache[team])
                cell = ref._resolve()
                dead_refs += cell is None or not cell.alive
                await ref.tell(("work", 1))
                sent += 1
        await anyio.sleep(1.0)
        await check_step(root, model, last_region)

        snapshot = system.tree()
        workers = [info for info in snapshot.walk() if info.actor_class == "ChaosWorker"]
        assert len(workers) == REGIONS * TEAMS * WORKERS
        assert all(info.state == "running" for info in workers)  # every permanent child
        by_path = {info.path: info for info in workers}
        for w in range(REGIONS * TEAMS * WORKERS):
            assert by_path[path(w)].restarts == model.workers[w], path(w)
        for t in range(REGIONS * TEAMS):
            info = snapshot.find(f"/user/root/r{t // TEAMS}/t{t % TEAMS}")
            assert info is not None and info.restarts == model.teams[t]
        # The scenario exercised what it is meant to: restarts at every level.
        kinds = [kind for kind, _, _ in model.escalations]
        assert model.worker_restarts > 1000
        assert kinds.count("team") >= 10 and kinds.count("region") >= 3
        assert sent == CRASHES * WORK_PER_CRASH and 0 < dead_refs < sent

    assert system.statistics().actors == 0
    assert len(anyio.get_running_tasks()) == tasks_before  # no task leaked


def test_the_reference_model_is_otps_rule() -> None:
    intensity = Intensity((2, 5.0))
    assert [intensity.restart(t) for t in (0.0, 1.0, 5.0)] == [True, True, False]
    intensity = Intensity((2, 5.0))
    assert [intensity.restart(t) for t in (0.0, 1.0, 5.1)] == [True, True, True]
    assert math.isclose(Intensity(TEAM_LIMIT).within, 1.0)
