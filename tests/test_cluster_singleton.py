"""Cluster singletons on a real nats-server: one child in the cluster, and
it moves to another node when its node leaves or dies."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from cluster_names_kit import Nodes, cluster_name, far_node, names_of, until
from nats_kit import NatsServer

import actors
from actors.lowlevel import Singleton
from supervision import ChildSpec, Supervisor

pytestmark = pytest.mark.anyio


class Billing(actors.Actor):
    async def receive(self, message: Any) -> Any:
        return self.context.system.name


# --8<-- [start:singleton]
def spec() -> ChildSpec:
    """Billing, once in the whole cluster: every node that may run it
    spawns ``Supervisor([spec()])``."""
    return ChildSpec(Billing, register_as="billing", singleton=True)


# --8<-- [end:singleton]


def runs_here(system: actors.ActorSystem) -> bool:
    ref = system.registry.whereis("billing")
    return ref is not None and ref._cell is not None and ref._cell.system is system


def test_a_singleton_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs register_as"):
        ChildSpec(Billing, singleton=True)
    assert "singleton=True" in repr(spec())


async def test_outside_a_cluster_the_child_runs_here() -> None:
    async with actors.ActorSystem("solo") as system:
        await system.spawn(Supervisor, [spec()], name="sup")
        assert runs_here(system)
        assert system.registry.whereis("billing").path == "/user/sup/billing/billing"  # type: ignore[union-attr]


async def test_one_child_in_the_cluster_and_it_moves_when_its_node_leaves(
    nats_server: NatsServer,
) -> None:
    nodes = Nodes(cluster_name())
    async with nodes.node("b", nats_server.url, lease=2.0) as b:
        async with nodes.node("a", nats_server.url, lease=2.0) as a:
            await a.spawn(Supervisor, [spec()], name="sup")
            assert runs_here(a)
            await b.spawn(Supervisor, [spec()], name="sup")
            await until(lambda: b.registry.whereis("billing") is not None, 5)
            assert not runs_here(b)  # its keeper waits
            assert await b.registry.whereis("billing").ask("who") == "a"  # type: ignore[union-attr]
        # a left: its child stopped and released the name; b's keeper claims it.
        await until(lambda: runs_here(b), 5)
        assert await b.registry.whereis("billing").ask("who") == "b"  # type: ignore[union-attr]


async def test_a_keeper_waits_for_a_name_held_by_another_actor(nats_server: NatsServer) -> None:
    nodes = Nodes(cluster_name())
    async with nodes.node("a", nats_server.url) as a, nodes.node("b", nats_server.url) as b:
        holder = await a.spawn(Billing)
        await a.registry.claim("billing", holder)
        await until(lambda: b.registry.whereis("billing") == holder, 5)
        keeper = await b.spawn(Singleton, Billing, "billing", name="keeper")
        assert b.registry.whereis("billing") == holder
        await holder.stop()
        await until(lambda: runs_here(b), 5)
        await keeper.stop()
        await until(lambda: a.registry.whereis("billing") is None, 5)


@pytest.mark.chaos
async def test_kill_9_of_the_singletons_node_restarts_it_on_another(
    nats_server: NatsServer, anyio_backend: tuple[str, object]
) -> None:
    from actors._cluster_names import MemberDown, MemberUp

    lease = 2.0
    nodes = Nodes(cluster_name())
    async with nodes.node("b", nats_server.url, lease=lease) as b:
        events = names_of(b).membership()
        async with far_node(
            nats_server.url, nodes.cluster, lease, "billing", anyio_backend[0], singleton=True
        ) as far:
            with anyio.fail_after(5):
                assert await events.__anext__() == MemberUp("far")
            await b.spawn(Supervisor, [spec()], name="sup")
            await until(lambda: names_of(b).names() == {"billing": "far"}, 5)
            assert not runs_here(b)
            far.kill()
            killed = anyio.current_time()
            took = await until(lambda: runs_here(b), lease + 1.5)
            assert took <= lease + 1.5
            with anyio.fail_after(1.5):
                down = await events.__anext__()
            assert isinstance(down, MemberDown) and down.node == "far"
            assert anyio.current_time() - killed <= lease + 1.5
        assert await b.registry.whereis("billing").ask("who") == "b"  # type: ignore[union-attr]
        await events.aclose()


@pytest.mark.chaos
async def test_a_singletons_node_cut_off_ends_it_before_another_starts_it(
    nats_server: NatsServer,
) -> None:
    from cluster_names_kit import PausableProxy

    lease = 2.0
    nodes = Nodes(cluster_name())
    async with (
        PausableProxy(nats_server.port).serving() as proxy,
        nodes.node("a", proxy.url, lease=lease) as a,
        nodes.node("b", nats_server.url, lease=lease) as b,
    ):
        await a.spawn(Supervisor, [spec()], name="sup")
        await b.spawn(Supervisor, [spec()], name="sup")
        assert runs_here(a)
        child = a.registry.whereis("billing")
        assert child is not None
        proxy.pause()
        ended = await child.join()
        assert isinstance(ended.reason, actors.NameLost)
        assert not runs_here(a)
        await until(lambda: runs_here(b), lease + 2.0)
        assert not runs_here(a)  # its keeper waits; its supervisor is untouched
        proxy.resume()
        await until(lambda: a.registry.whereis("billing") is not None, 3 * lease)
        assert not runs_here(a)
        assert await a.registry.whereis("billing").ask("who") == "b"  # type: ignore[union-attr]
