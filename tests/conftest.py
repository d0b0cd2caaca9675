"""Every async test runs under asyncio (debug on) and trio; process tests opt in
to `no_orphans`; NATS tests take a real server from `nats_server` or
`nats_cluster`. ``ACTORS_TEST_SHARD=K/N`` runs the K-th of N parts of the
suite (CI splits some Pythons' runs in two)."""

from __future__ import annotations

import os
import signal
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from nats_kit import NatsServer

pytest_plugins: list[str] = []

# Started as a background job by a shell without job control (`(pytest &)`),
# the suite inherits SIGINT ignored, and so would every child it starts: the
# Ctrl-C tests (test_run, test_supervision_run, test_process) would wait for
# an exit that never comes. A handler set here is reset to the default in
# each child at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``ACTORS_TEST_SHARD=K/N``, keep the K-th of N parts, chosen by
    a hash of each test function's id: the same on every Python (CI runs the
    parts on different ones), and all the cases of one function in the same
    part, so each part runs its tests on both backends."""
    shard = os.environ.get("ACTORS_TEST_SHARD")
    if not shard:
        return
    try:
        k, n = (int(part) for part in shard.split("/"))
        if not 1 <= k <= n:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(
            f"ACTORS_TEST_SHARD={shard!r}: give K/N with 1 <= K <= N, e.g. 1/2"
        ) from None
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        function = item.nodeid.split("[", 1)[0]
        (keep if zlib.crc32(function.encode()) % n == k - 1 else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def no_orphans() -> Iterator[None]:
    """Fail a test that leaves a child process behind (opt in with
    ``pytest.mark.usefixtures("no_orphans")``)."""
    from process_kit import children_of

    yield
    left = children_of(os.getpid())
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"child processes left running: {left}"


@pytest.fixture(params=["same", "other"])
def placement(request: pytest.FixtureRequest, anyio_backend: tuple[str, object]) -> Any:
    """An ``actors.Subprocess`` on this test's backend, or on the other one."""
    import actors

    backend = anyio_backend[0]
    if request.param == "other":
        backend = "trio" if backend == "asyncio" else "asyncio"
    return actors.Subprocess(backend=backend)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A JetStream ``nats-server`` of this test's own (tests/nats_kit.py)."""
    from nats_kit import nats_server

    with nats_server(tmp_path / "nats") as server:
        yield server


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NatsServer]]:
    """Three JetStream servers in one cluster, shared by a test module; a test
    that stops one must start it again (``await server.astart()``)."""
    from nats_kit import nats_cluster

    with nats_cluster(tmp_path_factory.mktemp("nats-cluster")) as servers:
        yield servers


@pytest.fixture(scope="module")
def shared_nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One JetStream ``nats-server`` shared by a test module (tests clean up
    what they leave, or wipe it first)."""
    from nats_kit import nats_server

    with nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture(params=["sqlite", "jetstream"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Opens actor systems on one durable store (tests/durable_kit.py's
    ``Opener``): the SQLite store, then the JetStream store on a shared server."""
    from durable_kit import Opener

    if request.param == "jetstream":
        server = request.getfixturevalue("shared_nats_server")
        return Opener("jetstream", tmp_path / "s.db", server.url)
    return Opener("sqlite", tmp_path / "s.db")
