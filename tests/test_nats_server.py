"""The real nats-server the cluster tests run against (tests/nats_kit.py):
the pinned version, one server and a three-server JetStream cluster on free
loopback ports, and a server killed and started again on the same port."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request

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
