"""Cluster-wide names on a real nats-server: unique claims, leases renewed,
released when the actor stops, fencing before anyone else can claim, and
expiry after a node dies."""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from cluster_names_kit import Nodes, PausableProxy, cluster_name, far_node, names_of, until
from nats_kit import NatsServer
from tcp_kit import SECRET

import actors

pytestmark = pytest.mark.anyio


class Echo(actors.Actor):
    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    async def receive(self, message: Any) -> Any:
        return (self.tag, message)


class Tolerant(actors.Actor):
    """A parent that outlives its children's failures (a NameLost here)."""

    async def receive(self, message: Any) -> Any:
        return await self.context.spawn(Echo, message)

    async def on_child_failed(self, child: actors.ActorRef, error: BaseException) -> None:
        pass


async def test_claim_is_seen_everywhere_and_released_on_stop(nats_server: NatsServer) -> None:
    nodes = Nodes(cluster_name())
    async with (
        nodes.node("a", nats_server.url) as a,
        nodes.node("b", nats_server.url) as b,
    ):
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("billing", ref)
        assert a.registry.whereis("billing") == ref
        await until(lambda: b.registry.whereis("billing") is not None, 5)
        assert b.registry.whereis("billing") == ref
        assert await b.registry.whereis("billing").ask(1) == ("a", 1)  # type: ignore[union-attr]
        assert names_of(b).names() == {"billing": "a"}
        with pytest.raises(actors.NameTaken, match=r"'billing' is held by a \(/user/"):
            await b.registry.claim("billing", await b.spawn(Echo))
        await a.registry.claim("billing", ref)  # again, for the same actor: nothing
        await ref.stop()
        assert a.registry.whereis("billing") is None
        await until(lambda: b.registry.whereis("billing") is None, 5)
        other = await b.spawn(Echo, "b")
        await b.registry.claim("billing", other)
        await until(lambda: a.registry.whereis("billing") == other, 5)


async def test_claim_outside_a_cluster_registers() -> None:
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Echo)
        await system.registry.claim("solo", ref)
        assert system.registry.whereis("solo") == ref
        with pytest.raises(actors.NameTaken):
            await system.registry.claim("solo", await system.spawn(Echo))


async def test_ten_nodes_claim_one_name_one_wins(nats_server: NatsServer) -> None:
    nodes = Nodes(cluster_name())
    outcomes: dict[str, object] = {}
    async with contextlib.AsyncExitStack() as stack:
        systems = [
            await stack.enter_async_context(nodes.node(f"n{i}", nats_server.url)) for i in range(10)
        ]
        refs = [await system.spawn(Echo, system.name) for system in systems]

        async def claim(system: actors.ActorSystem, ref: actors.ActorRef) -> None:
            try:
                await system.registry.claim("leader", ref)
            except actors.NameTaken as error:
                outcomes[system.name] = error
            else:
                outcomes[system.name] = "won"

        async with anyio.create_task_group() as task_group:
            for system, ref in zip(systems, refs, strict=True):
                task_group.start_soon(claim, system, ref)
        winners = [name for name, outcome in outcomes.items() if outcome == "won"]
        assert len(winners) == 1, outcomes
        for name, outcome in outcomes.items():
            if name != winners[0]:
                assert isinstance(outcome, actors.NameTaken)
                assert f"held by {winners[0]} (/user/" in str(outcome)
        for system in systems:
            await until(lambda s=system: s.registry.whereis("leader") is not None, 5)  # type: ignore[misc]
            assert await system.registry.whereis("leader").ask("who") == (winners[0], "who")  # type: ignore[union-attr]


async def test_spawn_register_as_claims_cluster_wide(nats_server: NatsServer) -> None:
    from actors import lowlevel

    nodes = Nodes(cluster_name())
    async with (
        nodes.node("a", nats_server.url) as a,
        nodes.node("b", nats_server.url) as b,
    ):
        ref = await lowlevel.spawn(a, Echo, ("a",), register_as="db")
        await until(lambda: b.registry.whereis("db") == ref, 5)
        with pytest.raises(actors.NameTaken, match="'db' is held by a"):
            await lowlevel.spawn(b, Echo, register_as="db")
        assert b.registry.whereis("db") == ref  # the failed spawn left nothing
        with pytest.raises(actors.ActorsError, match="use spawn"):
            lowlevel.spawn_nowait(b, Echo, register_as="db2")

        class Broken(actors.Actor):
            async def on_start(self) -> None:
                raise RuntimeError("no")

        with pytest.raises(actors.ActorFailed):
            await lowlevel.spawn(b, Broken, register_as="broken")
        # Its reservation was released: the name is free again.
        kv = names_of(b).kv
        assert kv is not None
        with anyio.fail_after(5):
            while await kv.get("names.broken") is not None:  # noqa: ASYNC110 - the server's
                await anyio.sleep(0.01)
        again = await lowlevel.spawn(a, Echo, register_as="broken")
        await until(lambda: b.registry.whereis("broken") == again, 5)


async def test_lease_is_renewed_past_several_leases(nats_server: NatsServer) -> None:
    nodes = Nodes(cluster_name())
    async with (
        # 2 s: a 1 s lease renews every 0.33 s and fences 0.67 s after the
        # last renewal stored, which a loaded machine's stalls can miss.
        nodes.node("a", nats_server.url, lease=2.0) as a,
        nodes.node("b", nats_server.url, lease=2.0) as b,
    ):
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("kept", ref)
        first = names_of(a)._held["names.kept"].revision
        # Three leases of real time: only renewals keep the key.
        await anyio.sleep(6.0)
        assert names_of(a)._held["names.kept"].revision > first
        assert ref.alive
        with pytest.raises(actors.NameTaken):
            await b.registry.claim("kept", await b.spawn(Echo))
        assert b.registry.whereis("kept") == ref


@pytest.mark.chaos
async def test_a_node_cut_off_fences_itself_before_another_claims(
    nats_server: NatsServer,
) -> None:
    lease = 2.0
    nodes = Nodes(cluster_name())
    answers: list[tuple[float, str]] = []
    async with (
        PausableProxy(nats_server.port).serving() as proxy,
        nodes.node("a", proxy.url, lease=lease) as a,
        nodes.node("b", nats_server.url, lease=lease) as b,
    ):
        parent = await a.spawn(Tolerant)
        held = await parent.ask("a")
        await a.registry.claim("one", held)
        await until(lambda: b.registry.whereis("one") is not None, 5)
        stop_sampling = anyio.Event()

        async def sample(system: actors.ActorSystem) -> None:
            # Each node asks whoever it believes holds the name, as its
            # users would; only a node's own actor counts as it answering.
            while not stop_sampling.is_set():
                ref = system.registry.whereis("one")
                if ref is not None and ref._cell is not None and ref._cell.system is system:
                    try:
                        tag, _ = await ref.ask("?", timeout=0.5)
                    except (actors.ActorStopped, actors.AskTimeout):
                        pass
                    else:
                        answers.append((anyio.current_time(), tag))
                await anyio.sleep(0.005)

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(sample, a)
            task_group.start_soon(sample, b)
            proxy.pause()
            cut = anyio.current_time()
            ended = await held.join()
            fenced = anyio.current_time()
            assert isinstance(ended.reason, actors.NameLost), ended
            # It says why: the renewal's writes, and how the last one ended.
            assert re.search(
                r"not renewed within 2 s: \d+ writes? failed, the last with no answer within",
                str(ended.reason),
            ), ended.reason
            assert fenced - cut <= lease  # by lease - lease/3 after the last renewal
            taker = await b.spawn(Echo, "b")
            while True:
                try:
                    await b.registry.claim("one", taker)
                    break
                except actors.NameTaken:
                    await anyio.sleep(0.02)
            claimed = anyio.current_time()
            assert claimed > fenced
            assert claimed - cut <= lease + 2.0  # the TTL (whole seconds) and its timer
            await until(lambda: any(tag == "b" for _, tag in answers), 5)
            stop_sampling.set()
        last_a = max(t for t, tag in answers if tag == "a")
        first_b = min(t for t, tag in answers if tag == "b")
        assert last_a < fenced <= claimed <= first_b
        # Back in touch, a is a member again; the name stays b's.
        await until(lambda: "a" not in names_of(b).members(), lease + 1.5)
        proxy.resume()
        await until(lambda: "a" in names_of(b).members(), 3 * lease)
        assert a.registry.whereis("one") == taker


@pytest.mark.chaos
async def test_kill_9_of_a_node_frees_its_names_within_a_lease(
    nats_server: NatsServer, anyio_backend: tuple[str, object]
) -> None:
    from actors._cluster_names import MemberDown, MemberUp

    lease = 2.0
    nodes = Nodes(cluster_name())
    async with nodes.node("b", nats_server.url, lease=lease) as b:
        events = names_of(b).membership()
        async with far_node(nats_server.url, nodes.cluster, lease, "svc", anyio_backend[0]) as far:
            with anyio.fail_after(5):
                assert await events.__anext__() == MemberUp("far")
            await until(lambda: names_of(b).names() == {"svc": "far"}, 5)
            taker = await b.spawn(Echo, "b")
            with pytest.raises(actors.NameTaken, match="held by far"):
                await b.registry.claim("svc", taker)
            far.kill()
            killed = anyio.current_time()
            with anyio.fail_after(lease + 1.5):
                down = await events.__anext__()
            assert isinstance(down, MemberDown) and down.node == "far"
            assert isinstance(down.reason, actors.ConnectionLost)
            while True:
                try:
                    await b.registry.claim("svc", taker)
                    break
                except actors.NameTaken:
                    await anyio.sleep(0.02)
            took = anyio.current_time() - killed
            assert took <= lease + 1.5, took
            assert b.registry.whereis("svc") == taker
        await events.aclose()


def test_lease_is_checked() -> None:
    from actors._cluster_names import check_lease

    with pytest.raises(ValueError, match="at least 1 second"):
        check_lease(0.5)
    with pytest.raises(TypeError):
        check_lease("10")
    assert check_lease(2) == 2.0
    assert math.isfinite(check_lease(10.0))


async def test_names_on_a_server_cluster_are_kept_on_three(
    nats_cluster: list[NatsServer],
) -> None:
    nodes = Nodes(cluster_name())
    async with (
        nodes.node("a", nats_cluster[0].url) as a,
        nodes.node("b", nats_cluster[2].url) as b,
    ):
        kv = names_of(a).kv
        assert kv is not None
        info = await kv.js.stream_info(kv.stream)
        assert info["config"]["num_replicas"] == 3
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("replicated", ref)
        await until(lambda: b.registry.whereis("replicated") == ref, 10)
        with pytest.raises(actors.NameTaken, match="held by a"):
            await b.registry.claim("replicated", await b.spawn(Echo))


async def test_names_and_membership_of_cluster_nodes(nats_server: NatsServer) -> None:
    from actors._cluster_names import MemberDown, MemberUp
    from actors.cluster import NatsCluster

    cluster = NatsCluster([nats_server.url], name=cluster_name(), secret=SECRET, lease=2.0)
    async with actors.ActorSystem("b", cluster=cluster) as b:
        events = b.cluster.membership()
        async with actors.ActorSystem("a", cluster=cluster) as a:
            with anyio.fail_after(5):
                assert await events.__anext__() == MemberUp("a")
            ref = await a.spawn(Echo, "a")
            await a.registry.claim("svc", ref)
            await until(lambda: b.registry.whereis("svc") is not None, 5)
            there = b.registry.whereis("svc")
            assert there == ref and there is not ref  # a ref to a's actor, from b
            assert await there.ask(1) == ("a", 1)
            with pytest.raises(actors.NameTaken, match="held by a"):
                await b.registry.claim("svc", await b.spawn(Echo))
        with anyio.fail_after(5):
            down = await events.__anext__()
        assert isinstance(down, MemberDown) and down.node == "a"
        assert isinstance(down.reason, actors.NodeDown) and "left" in str(down.reason)
        assert b.registry.whereis("svc") is None
        await events.aclose()


async def test_claim_needs_jetstream_in_a_cluster(tmp_path: Path) -> None:
    from nats_kit import nats_server

    from actors.cluster import NatsCluster

    with nats_server(tmp_path / "nats", jetstream=False) as server:
        cluster = NatsCluster([server.url], name=cluster_name(), secret=SECRET)
        async with actors.ActorSystem("a", cluster=cluster) as a:
            ref = await a.spawn(Echo)
            with pytest.raises(actors.ActorsError, match="no JetStream"):
                await a.registry.claim("svc", ref)


@pytest.mark.chaos
async def test_kill_9_of_a_cluster_node_is_node_down_for_watchers_within_a_lease(
    nats_server: NatsServer, anyio_backend: tuple[str, object]
) -> None:
    from actors.cluster import NatsCluster
    from actors.testing import TestProbe

    lease = 2.0
    name = cluster_name()
    # Heartbeats of 30 s: only the lease can tell that the node died.
    cluster = NatsCluster([nats_server.url], name=name, secret=SECRET, lease=lease, heartbeat=30.0)
    async with (
        actors.ActorSystem("near", cluster=cluster) as near,
        far_node(nats_server.url, name, lease, "svc", anyio_backend[0], secret=SECRET) as far,
    ):
        await until(lambda: near.registry.whereis("svc") is not None, 5)
        remote = near.registry.whereis("svc")
        assert remote is not None
        assert await remote.ask("hi") == ("far", "hi")
        probe = await TestProbe.start(near)
        probe.watch(remote)
        far.kill()
        killed = anyio.current_time()
        notice = await probe.receive(timeout=lease + 1.5)
        assert isinstance(notice, actors.Terminated) and notice.ref == remote
        assert isinstance(notice.reason, actors.NodeDown), notice.reason
        assert anyio.current_time() - killed <= lease + 1.5
        taker = await near.spawn(Echo, "near")
        with anyio.fail_after(lease + 1.5 - (anyio.current_time() - killed)):
            while True:  # its key expires by itself, about when the node's does
                try:
                    await near.registry.claim("svc", taker)
                    break
                except actors.NameTaken:
                    await anyio.sleep(0.02)
        assert near.registry.whereis("svc") == taker


async def test_a_renewal_without_an_answer_is_sent_again_before_the_fence(
    nats_server: NatsServer,
) -> None:
    # While a bucket's leader is elected a write may get no answer at all:
    # the renewal sends it again after max(1 s, lease / 15), not after the
    # client's timeout, which would run past the fence.
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url, lease=6.0) as a:
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("kept", ref)
        names = names_of(a)
        assert names.kv is not None
        kv = names.kv
        update = kv.update
        unanswered = anyio.Event()

        async def first_unanswered(key: str, *args: Any, **kwargs: Any) -> int:
            if key == "names.kept" and not unanswered.is_set():
                unanswered.set()
                await anyio.sleep_forever()  # the answer that never comes
            return await update(key, *args, **kwargs)

        kv.update = first_unanswered  # type: ignore[method-assign]
        first = names._held["names.kept"].revision
        await unanswered.wait()
        # Renewed by the next write, well before the fence (4 s after the
        # last renewal stored).
        await until(lambda: names._held["names.kept"].revision > first, 3.5)
        assert ref.alive and a.registry.whereis("kept") == ref


async def test_a_watch_made_without_an_answer_is_made_again_at_start(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node's start makes its watch of the bucket again when the server
    # does not answer in time (in CI a loaded cluster left a consumer's
    # creation unanswered for 5 s, and the node failed to start); it gives
    # up after OPEN_PATIENCE, and a refusal ends it at once.
    from actors._cluster_names import ClusterNames
    from actors._nats import Client, JetStreamError, NatsTimeout
    from actors._nats._kv_watch import KeyWatcher

    create = KeyWatcher._create
    tried: list[str] = []
    made: list[str] = []

    async def unanswered(self: KeyWatcher, config: dict[str, object]) -> dict[str, Any]:
        tried.append(self.consumer_name)
        if len(tried) == 1:  # the first creation gets no answer
            raise NatsTimeout("no reply (injected)")
        made.append(self.consumer_name)
        return await create(self, config)

    monkeypatch.setattr(KeyWatcher, "_create", unanswered)
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a:
        assert len(made) == 1 and made[0] != tried[0]  # made again, under a name of its own
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("billing", ref)
        assert names_of(a).names() == {"billing": "a"}

    async def never(self: KeyWatcher, config: dict[str, object]) -> dict[str, Any]:
        raise NatsTimeout("no reply (injected)")

    async def refused(self: KeyWatcher, config: dict[str, object]) -> dict[str, Any]:
        raise JetStreamError(400, 10012, "refused (injected)")

    # Creating the bucket: a replica's server seen offline (as on a loaded
    # server cluster) is waited out the same way.
    import actors._nats as nats_module

    create_bucket = nats_module.create_bucket
    offline: list[int] = []

    async def placed_later(*args: Any, **kwargs: Any) -> Any:
        if not offline:
            offline.append(1)
            raise JetStreamError(400, 10005, "no suitable peers for placement (injected)")
        return await create_bucket(*args, **kwargs)

    monkeypatch.setattr(KeyWatcher, "_create", create)
    monkeypatch.setattr(nats_module, "create_bucket", placed_later)
    async with nodes.node("c", nats_server.url) as c:
        assert offline == [1] and names_of(c).kv is not None
    monkeypatch.setattr(nats_module, "create_bucket", create_bucket)

    monkeypatch.setattr("actors._cluster_names.OPEN_PATIENCE", 0.5)
    for failing, raised in ((never, NatsTimeout), (refused, JetStreamError)):
        monkeypatch.setattr(KeyWatcher, "_create", failing)
        async with Client(nats_server.url) as client:
            system = actors.ActorSystem("b")
            names = ClusterNames(system, client, cluster_name(), lease=10.0)
            async with system:
                with anyio.fail_after(10), pytest.raises(raised):
                    await names.open()


class Unanswered:
    """``kv.create`` and ``kv.get`` of one key through a script: each call
    takes the next step (``"store"``: made, then its answer lost; ``"lost"``:
    not made, no answer; ``"pass"``: made), then every call passes."""

    def __init__(self, kv: Any, key: str) -> None:
        self.kv, self.key = kv, key
        self.create, self.get = kv.create, kv.get
        self.creates: list[str] = []
        self.gets: list[str] = []
        self.stored: list[int] = []
        self._creating = False
        kv.create, kv.get = self._create, self._get

    async def _create(self, key: str, *args: Any, **kwargs: Any) -> int:
        from actors._nats import NatsTimeout

        step = self.creates.pop(0) if key == self.key and self.creates else "pass"
        if step == "lost":
            raise NatsTimeout("no answer (injected)")
        self._creating = True  # create() reads the key itself: not a get of the script
        try:
            revision: int = await self.create(key, *args, **kwargs)
        finally:
            self._creating = False
        if step == "store":
            self.stored.append(revision)
            raise NatsTimeout("no answer (injected)")
        return revision

    async def _get(self, key: str, *args: Any, **kwargs: Any) -> Any:
        from actors._nats import NatsTimeout

        if not self._creating and key == self.key and self.gets and self.gets.pop(0) == "lost":
            raise NatsTimeout("no answer (injected)")
        return await self.get(key, *args, **kwargs)


async def test_a_claim_whose_answer_was_lost_keeps_what_was_stored(
    nats_server: NatsServer,
) -> None:
    # The server stored the claim but its answer never came (a leader
    # election): the claim is tried again, finds its own value, and keeps it.
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a, nodes.node("b", nats_server.url) as b:
        names = names_of(a)
        assert names.kv is not None
        script = Unanswered(names.kv, "names.lost")
        script.creates = ["store"]
        ref = await a.spawn(Echo, "a")
        await a.registry.claim("lost", ref)
        assert names._held["names.lost"].revision == script.stored[0]
        await until(lambda: b.registry.whereis("lost") == ref, 5)


async def test_a_claim_reads_again_after_no_answer_and_retries_after_a_release(
    nats_server: NatsServer,
) -> None:
    # Between "the key exists" and reading who holds it: a read with no
    # answer is made again (not raised), and a holder that let go meanwhile
    # leaves the name to this claim (not NameTaken).
    from actors._nats import NatsTimeout

    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a, nodes.node("b", nats_server.url) as b:
        held = await b.spawn(Echo, "b")
        await b.registry.claim("moving", held)
        names = names_of(a)
        assert names.kv is not None
        kv = names.kv
        get, create = kv.get, kv.create
        reads: list[str] = []
        creating = False

        async def create_(key: str, *args: Any, **kwargs: Any) -> int:
            nonlocal creating
            creating = True  # create() reads the key itself: not what this test changes
            try:
                return await create(key, *args, **kwargs)
            finally:
                creating = False

        async def unanswered_then_released(key: str, *args: Any, **kwargs: Any) -> Any:
            if creating or key != "names.moving":
                return await get(key, *args, **kwargs)
            reads.append(key)
            if len(reads) == 1:
                raise NatsTimeout("no answer")
            if len(reads) == 2:
                await held.stop()  # b lets go (deletes the key) before this read
                with anyio.fail_after(5):
                    while await get(key) is not None:  # noqa: ASYNC110 - the server's state
                        await anyio.sleep(0.01)
            return await get(key, *args, **kwargs)

        kv.create = create_  # type: ignore[method-assign]
        kv.get = unanswered_then_released  # type: ignore[method-assign]
        ref = await a.spawn(Echo, "a")
        with anyio.fail_after(10):
            await a.registry.claim("moving", ref)
        assert reads[:2] == ["names.moving", "names.moving"]
        await until(lambda: b.registry.whereis("moving") == ref, 5)


async def test_a_bucket_there_with_another_configuration_is_bound_patiently(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bucket made by another version (another configuration) is used as it
    # is; binding it waits out a server that does not answer in time, as
    # creating it does.
    import actors._nats as nats_module
    from actors._nats import KeyValueError, NatsTimeout

    bind_bucket = nats_module.bind_bucket
    binds: list[str] = []

    async def there_already(*args: Any, **kwargs: Any) -> Any:
        raise KeyValueError("bucket exists with another configuration (injected)")

    async def unanswered_once(js: Any, bucket: str) -> Any:
        binds.append(bucket)
        if len(binds) == 1:
            raise NatsTimeout("no answer (injected)")
        return await bind_bucket(js, bucket)

    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url):  # makes the bucket
        pass
    monkeypatch.setattr(nats_module, "create_bucket", there_already)
    monkeypatch.setattr(nats_module, "bind_bucket", unanswered_once)
    async with nodes.node("b", nats_server.url) as b:
        assert len(binds) == 2 and names_of(b).kv is not None
        ref = await b.spawn(Echo, "b")
        await b.registry.claim("bound", ref)
        assert b.registry.whereis("bound") == ref


async def test_a_claim_that_gives_up_withdraws_what_it_stored(nats_server: NatsServer) -> None:
    # Its first write was stored, its answer lost, and no later try was
    # answered: the claim raises TimeoutError, and deletes its stored write
    # instead of holding the name for a lease that nobody renews.
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a, nodes.node("b", nats_server.url) as b:
        names = names_of(a)
        assert names.kv is not None
        names.timeout = 1.0
        script = Unanswered(names.kv, "names.given-up")
        script.creates = ["store"] + ["lost"] * 100
        ref = await a.spawn(Echo, "a")
        with anyio.fail_after(10), pytest.raises(TimeoutError):
            await a.registry.claim("given-up", ref)
        assert len(script.stored) == 1
        assert await script.get("names.given-up") is None
        assert a.registry.whereis("given-up") is None
        other = await b.spawn(Echo, "b")
        await b.registry.claim("given-up", other)
        await until(lambda: a.registry.whereis("given-up") == other, 5)


async def test_a_claim_never_takes_an_earlier_claims_write_for_its_own(
    nats_server: NatsServer,
) -> None:
    # A claim gave up with its write stored, and could not withdraw it (no
    # answer). The same actor claims again; its first try is not answered,
    # the next finds the earlier write. Taking it for this claim's would
    # count the lease from this claim's start, later than the server's TTL
    # started: the node would fence after the key could expire (two holders).
    # It is the earlier claim's (its value has that claim's token): the name
    # is taken until it expires or its holder deletes it.
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a:
        names = names_of(a)
        assert names.kv is not None
        names.timeout = 1.0
        script = Unanswered(names.kv, "names.twice")
        script.creates = ["store"] + ["lost"] * 100
        script.gets = ["lost"] * 100  # the withdrawal's read is not answered either
        ref = await a.spawn(Echo, "a")
        with anyio.fail_after(10), pytest.raises(TimeoutError):
            await a.registry.claim("twice", ref)
        earlier = await script.get("names.twice")
        assert earlier is not None and earlier.revision == script.stored[0]
        script.creates, script.gets = ["lost"], []
        names.timeout = 5.0  # time enough for this claim's tries on a loaded machine
        with anyio.fail_after(10), pytest.raises(actors.NameTaken, match="an earlier claim"):
            await a.registry.claim("twice", ref)
        assert "names.twice" not in names._held
        assert a.registry.whereis("twice") is None
        # The second claim withdrew nothing of the first's.
        entry = await script.get("names.twice")
        assert entry is not None and entry.revision == script.stored[0]
