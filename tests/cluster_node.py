"""A node of a cluster for the cluster tests, in a process of its own.

    python tests/cluster_node.py --backend trio --parent-pid P --server URL
        --cluster NAME --name NODE --cookie PATH [--heartbeat S]

It runs an ``Echo`` registered as ``echo``, prints ``ready NODE`` once it is
a node of the cluster, and runs until it is killed (or its parent is gone).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_kit import Echo
from tcp_node import die_with_parent

import actors
from actors.cluster import NatsCluster


async def main(args: argparse.Namespace) -> None:
    cluster = NatsCluster(
        [args.server], name=args.cluster, secret_file=args.cookie, heartbeat=args.heartbeat
    )
    async with actors.ActorSystem(args.name, cluster=cluster) as system:
        echo = await system.spawn(Echo, args.name, name="echo")
        system.registry.register("echo", echo)
        print("ready", args.name, flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("asyncio", "trio"), required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    arguments = parser.parse_args()
    die_with_parent(arguments.parent_pid)
    anyio.run(main, arguments, backend=arguments.backend)
