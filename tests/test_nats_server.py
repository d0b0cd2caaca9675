"""The real nats-server the cluster tests run against (tests/nats_kit.py):
the pinned version, one server and a three-server JetStream cluster on free
loopback ports, and a server killed and started again on the same port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from nats_kit import VERSION, NatsServer, info, server_binary


def monitor(server: NatsServer, endpoint: str) -> dict[str, object]:
    url = f"http://127.0.0.1:{server.monitor_port}/{endpoint}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)  # type: ignore[no-any-return]


def test_the_server_is_the_pinned_version() -> None:
    out = subprocess.run([server_binary(), "--version"], capture_output=True, check=True)
    assert out.stdout.decode().strip() == f"nats-server: v{VERSION}"


def test_one_server_with_jetstream_on_its_own_port_and_store(nats_server: NatsServer) -> None:
    first = info(nats_server)
    assert first["version"] == VERSION
    assert first["jetstream"] is True and first["headers"] is True
    assert first["port"] == nats_server.port
    assert str(nats_server.directory) in str(monitor(nats_server, "jsz")["config"])


def test_a_killed_server_starts_again_on_the_same_port(nats_server: NatsServer) -> None:
    before = info(nats_server)["server_id"]
    nats_server.kill()
    assert not nats_server.running
    try:
        socket.create_connection(("127.0.0.1", nats_server.port), timeout=1).close()
    except OSError:
        pass
    else:
        raise AssertionError("the killed server still accepts connections")
    nats_server.start()
    assert info(nats_server)["server_id"] != before  # a new process, same port


def test_three_servers_form_one_jetstream_cluster(nats_cluster: list[NatsServer]) -> None:
    assert len({server.port for server in nats_cluster}) == 3
    for server in nats_cluster:
        routes = monitor(server, "routez")["routes"]
        assert isinstance(routes, list)
        assert {route["remote_name"] for route in routes} == {
            s.name for s in nats_cluster if s is not server
        }
        # Clients learn the other servers from INFO: reconnect can go there.
        urls = info(server).get("connect_urls")
        assert isinstance(urls, list)
        assert {f"127.0.0.1:{s.port}" for s in nats_cluster if s is not server} <= set(urls)
    assert monitor(nats_cluster[0], "jsz")["meta_cluster"]


_HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from nats_kit import nats_server

with nats_server(Path(sys.argv[2]), jetstream=False) as server:
    print(server.process.pid, flush=True)
    time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # dead, not yet reaped
    except FileNotFoundError:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG")
def test_a_test_process_killed_with_sigkill_leaves_no_server(tmp_path: Path) -> None:
    # The server dies with the process that started it (a CI timeout kills
    # pytest with SIGKILL: its fixtures' cleanup never runs).
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(Path(__file__).parent), str(tmp_path)],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        pid = int(holder.stdout.readline())
        assert not _gone(pid)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    deadline = time.monotonic() + 5
    while not _gone(pid):
        assert time.monotonic() < deadline, (
            f"nats-server {pid} outlived the process that started it"
        )
        time.sleep(0.01)  # polling /proc for the death signal's effect


def test_a_port_taken_before_the_server_starts_is_traded_for_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port is free only when chosen: another test process may take it
    # before the server listens (seen in CI, two suites side by side).
    import nats_kit

    chosen: list[list[int]] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def first_one_taken(count: int) -> list[int]:
            ports = [*real(count)]
            if not chosen:
                ports[0] = taken.getsockname()[1]
            chosen.append(ports)
            return ports

        real = nats_kit.free_ports
        monkeypatch.setattr(nats_kit, "free_ports", first_one_taken)
        with nats_kit.nats_server(tmp_path) as server:
            assert len(chosen) == 2
            assert server.port == chosen[1][0] != taken.getsockname()[1]
            assert server.healthy()
