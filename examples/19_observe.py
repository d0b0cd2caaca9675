"""Watching a running system: its live page, its metrics and the command line.

This example shows:

- ``serve_page(system)`` from ``actors.observe``: a live page of the system
  (the supervision tree with each actor's state, mailbox, messages processed,
  restarts and last failure, updated as it changes), served by the system
  itself on a loopback port until the system ends; ``page.url`` is its
  address;
- ``/api/snapshot``, the JSON the page is drawn from, read here with a plain
  HTTP request, and ``/metrics``, the same counters in Prometheus's text
  format;
- ``python -m actors --url URL tree``: the command line attached to the
  running system through its page (``top`` shows the busiest actors,
  ``dead-letters`` the dead letters);
- crashes to watch: a worker fails on bad orders, its supervisor restarts
  it, and the page shows the restart count and the last failure.

Run it with ``--watch`` and open the address it prints: it keeps crashing a
worker every two seconds until Ctrl-C. Run plain, it takes a short tour and
ends by itself.
"""

from __future__ import annotations

import json
import logging
import sys

import anyio

import actors
from actors import Actor, ActorSystem
from actors.observe import serve_page
from supervision import ChildSpec, Supervisor, which_children


class Worker(Actor):
    """Handles orders; an order whose number ends in 3 is broken."""

    async def receive(self, message: int) -> str:
        if message % 10 == 3:
            raise ValueError(f"order {message} is broken")
        return f"order {message} done"


async def http_get(url: str, path: str) -> str:
    """A plain HTTP GET (the page closes the connection after each answer)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        answer = b""
        while True:
            try:
                answer += await stream.receive()
            except anyio.EndOfStream:
                break
    return answer.split(b"\r\n\r\n", 1)[1].decode()


async def order(supervisor: actors.ActorRef, worker: str, number: int) -> None:
    """Send an order to a worker; after a crash, wait for its restart."""
    (child,) = [c for c in await which_children(supervisor) if c.name == worker]
    assert child.ref is not None
    try:
        print(await child.ref.ask(number))
    except actors.ActorFailed as failed:
        print(f"{worker} crashed: {failed.__cause__}")
        while True:  # the supervisor restarts it at once
            (now,) = [c for c in await which_children(supervisor) if c.name == worker]
            if now.state == "running" and now.ref != child.ref:
                return
            await anyio.sleep(0.01)


async def main() -> None:
    logging.getLogger("actors").setLevel(logging.CRITICAL)  # crashes are expected here
    logging.getLogger("supervision").setLevel(logging.CRITICAL)
    async with ActorSystem("shop") as system:
        # --8<-- [start:page]
        specs = [ChildSpec(Worker, name=f"worker-{i}") for i in (1, 2, 3)]
        workers = await system.spawn(Supervisor, specs, name="workers", max_restarts=100)
        page = await serve_page(system)  # loopback, a free port, until the system ends
        print(f"the live page is at {page.url}", file=sys.stderr)
        # --8<-- [end:page]
        print("-- orders")
        for number in (1, 2, 3, 4, 13):
            await order(workers, f"worker-{number % 3 + 1}", number)

        print("-- /api/snapshot")
        snapshot = json.loads(await http_get(page.url, "/api/snapshot"))
        for row in snapshot["actors"]:
            print(
                f"{row['path']}  {row['state']}  restarts {row['restarts']}  "
                f"last failure {row['last_failure']}"
            )

        print("-- /metrics")
        for line in (await http_get(page.url, "/metrics")).splitlines():
            if line.startswith("actors_restarts_total"):
                print(line)

        print("-- python -m actors tree")
        cli = await anyio.run_process([sys.executable, "-m", "actors", "--url", page.url, "tree"])
        for line in cli.stdout.decode().splitlines():
            if "worker-" in line:
                print(line)

        if "--watch" in sys.argv:
            print(f"watching: open {page.url} (Ctrl-C ends)", file=sys.stderr)
            number = 100
            while True:
                number += 1
                await order(workers, f"worker-{number % 3 + 1}", number)
                await anyio.sleep(2 if number % 10 == 3 else 0.2)


if __name__ == "__main__":
    actors.run(main)
