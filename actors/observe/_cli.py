"""``python -m actors``: a running system's tree, busiest actors and dead letters.

It attaches through the system's live page (:func:`actors.observe.serve_page`):
it reads the page's JSON endpoints over HTTP, with the page's token if it has
one. Plain blocking code on the standard library: a terminal tool needs no
event loop. The dead-letter-queue commands (``dlq``, ``requeue``, ``replay``)
also work on a store directly, with ``--sqlite PATH`` or ``--jetstream URL``,
whether or not a system that uses it is running: they open it in an actor
system of their own for the one command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from ..durable import DeadLetters

USAGE_URL = (
    "give the page's address: --url http://127.0.0.1:PORT/ (serve_page prints it as page.url), "
    "or set ACTORS_PAGE"
)


class CliError(Exception):
    """Something the user can fix; printed without a traceback."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; its exit status (0 ok, 2 a usage or connection error)."""
    parser = argparse.ArgumentParser(
        prog="actors",
        description="Look at a running actor system through its live page "
        "(actors.observe.serve_page); dlq, requeue and replay also work on a store "
        "itself (--sqlite, --jetstream).",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("ACTORS_PAGE"),
        help="the page's address, as page.url gives it (default: $ACTORS_PAGE)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("ACTORS_TOKEN"),
        help="the page's token, if the URL does not carry it (default: $ACTORS_TOKEN)",
    )
    stores = parser.add_mutually_exclusive_group()
    stores.add_argument(
        "--sqlite",
        metavar="PATH",
        help="dlq, requeue, replay: on this SQLite store's file, not through a page",
    )
    stores.add_argument(
        "--jetstream",
        metavar="URL",
        help="dlq, requeue, replay: on this JetStream server's streams, not through a page",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("tree", help="the supervision tree with each actor's counters")
    top = commands.add_parser("top", help="the busiest actors, refreshing")
    top.add_argument("-n", type=int, default=20, help="how many actors to show (default 20)")
    top.add_argument(
        "--interval", type=float, default=1.0, help="seconds between two samples (default 1)"
    )
    top.add_argument("--once", action="store_true", help="show one sample and exit")
    commands.add_parser("dead-letters", help="dead-letter counts and the latest letters")
    dlq = commands.add_parser("dlq", help="browse a durable consumer's dead-letter queue")
    requeue = commands.add_parser(
        "requeue",
        help="deliver dead-letter-queue entries to their consumer again (a page needs its token)",
    )
    replay = commands.add_parser(
        "replay", help="publish copies of dead-letter-queue entries (a page needs its token)"
    )
    for command in (dlq, requeue, replay):
        command.add_argument("stream")
        command.add_argument("consumer")
    for command in (dlq, replay):
        command.add_argument("--since", type=int, default=1, help="the first sequence (1)")
        command.add_argument("--until", type=int, help="the last sequence (all)")
    requeue.add_argument("seq", type=int, nargs="+", help="the entries' sequences")
    replay.add_argument("--to", help="the subject to publish to (default: each its own)")
    args = parser.parse_args(argv)
    try:
        if args.sqlite is not None or args.jetstream is not None:
            if args.command not in ("dlq", "requeue", "replay"):
                raise CliError(
                    f"{args.command} reads a running system: give its page with --url "
                    "(--sqlite and --jetstream are for dlq, requeue and replay)"
                )
            if args.sqlite is not None and not os.path.isfile(args.sqlite):
                raise CliError(
                    f"no SQLite store at {args.sqlite!r}: give the path of the file the "
                    "system opens (SQLiteStore(path))"
                )
            import anyio

            return int(anyio.run(_on_store, args))
        page = _Page(args.url, args.token)
        if args.command == "tree":
            print_tree(page.get("/api/snapshot"), sys.stdout)
        elif args.command == "top":
            if args.n < 1 or not 0 < args.interval <= 3600:
                raise CliError("top needs -n >= 1 and an --interval in seconds above 0")
            return _top(page, args.n, args.interval, args.once)
        elif args.command == "dead-letters":
            print_dead_letters(page.get("/api/dead-letters"), sys.stdout)
        elif args.command == "dlq":
            query = _query(
                stream=args.stream,
                consumer=args.consumer,
                since=args.since,
                until=args.until,
                limit=100_000,
            )
            print_queue(page.get(f"/api/durable/dead-letters?{query}"), sys.stdout)
        elif args.command == "requeue":
            query = _query(stream=args.stream, consumer=args.consumer, seq=args.seq)
            return _requeued(args.seq, page.post(f"/api/durable/requeue?{query}")["requeued"])
        else:
            query = _query(
                stream=args.stream,
                consumer=args.consumer,
                since=args.since,
                until=args.until,
                to=args.to,
            )
            _published(page.post(f"/api/durable/replay?{query}")["published"])
    except CliError as error:
        print(f"actors: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _requeued(asked: list[int], done: list[int]) -> int:
    print(f"requeued {len(done)}: {' '.join(map(str, done)) or '-'}")
    missing = [seq for seq in asked if seq not in done]
    if missing:
        print(f"not in the queue: {' '.join(map(str, missing))}", file=sys.stderr)
        return 1
    return 0


def _published(seqs: list[int]) -> None:
    print(f"published {len(seqs)}: {' '.join(map(str, seqs)) or '-'}")


async def _on_store(args: argparse.Namespace) -> int:
    # dlq, requeue or replay on a store, in an actor system of its own.
    from .. import ActorSystem, durable
    from .._nats import NatsError
    from ._page import queue_report

    store: durable.SQLiteStore | durable.JetStreamStore
    if args.sqlite is not None:
        store = durable.SQLiteStore(args.sqlite)
        opened: Any = contextlib.nullcontext()
    else:
        store = durable.JetStreamStore(args.jetstream)
        opened = store
    try:
        async with opened, ActorSystem("actors-cli", store=store) as system:
            stream = await system.streams.get(args.stream)
            queue: DeadLetters = stream.dead_letters(args.consumer)
            if args.command == "requeue":
                return _requeued(args.seq, [seq for seq in args.seq if await queue.requeue(seq)])
            # A message that cannot be unpickled here shows as Unreadable;
            # replay refuses to go on with one.
            if args.command == "dlq":
                entries = await queue.browse(args.since, args.until)
                print_queue(queue_report(queue, entries, len(entries)), sys.stdout)
                unreadable = [e for e in entries if type(e.data) is durable.Unreadable]
                if unreadable:
                    print(
                        f"cannot unpickle the messages of {len(unreadable)} entries here "
                        f"({unreadable[0].data.error}): run this where the application's "
                        f"modules import (PYTHONPATH), or through its page (--url)",
                        file=sys.stderr,
                    )
                    return 1
            else:
                _published(await queue.replay(args.to, since=args.since, until=args.until))
            return 0
    except (durable.DurableError, ValueError) as error:  # ValueError: a bad seq or subject
        raise CliError(str(error)) from None
    except (NatsError, OSError, sqlite3.Error) as error:
        where = args.jetstream if args.sqlite is None else args.sqlite
        raise CliError(f"cannot use the store at {where}: {error}") from None


class _Page:
    def __init__(self, url: str | None, token: str | None) -> None:
        if not url:
            raise CliError(USAGE_URL)
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.netloc:
            raise CliError(f"not a page address: {url!r}; {USAGE_URL}")
        self.token = token or parse_qs(parts.query).get("token", [None])[0]
        self.base = urlunsplit(("http", parts.netloc, "", "", ""))

    def post(self, path: str) -> Any:
        return self.get(path, method="POST")

    def get(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.base + path, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 401:
                raise CliError(
                    f"the page at {self.base} needs its token: --token, $ACTORS_TOKEN, or the "
                    f"URL with ?token=..."
                ) from None
            why = error.read().decode(errors="replace").strip()
            raise CliError(f"the page at {self.base} answered {error.code}: {why}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(f"cannot reach the page at {self.base}: {reason}") from None


def _number(value: int | None) -> str:
    return "inf" if value is None else f"{value:,}"


def print_tree(snap: dict[str, Any], out: TextIO) -> None:
    """Print a snapshot as an indented tree."""
    totals = snap["totals"]
    out.write(
        f"{snap['system']}  actors {totals['actors']:,}  dead letters {totals['dead_letters']:,}\n"
    )
    children: dict[str, list[dict[str, Any]]] = {}
    for row in snap["actors"]:
        children.setdefault(row["parent"], []).append(row)

    def walk(parent: str, depth: int) -> None:
        for row in children.get(parent, ()):
            name = row["path"].rsplit("/", 1)[-1]
            line = (
                f"{'  ' * depth}{name}  {row['class']}  {row['state']}  "
                f"mailbox {row['mailbox']:,}/{_number(row['capacity'])}  "
                f"processed {row['processed']:,}  restarts {row['restarts']}"
            )
            if row["dead_letters"]:
                line += f"  dead letters {row['dead_letters']:,}"
            if row["names"]:
                line += f"  registered {', '.join(row['names'])}"
            if row["subscriptions"]:
                line += "  subscribed " + ", ".join(
                    p if g is None else f"{p} [{g}]" for p, g in row["subscriptions"]
                )
            for key, value in sorted(row["details"].items()):
                line += f"  {key} {value}"
            if row["last_failure"]:
                line += f"  last failure {row['last_failure']}"
            out.write(line + "\n")
            walk(row["path"], depth + 1)
            if row["hidden"]:
                out.write(f"{'  ' * (depth + 1)}... and {row['hidden']:,} more\n")

    walk("/user", 1)
    if totals.get("hidden_top"):
        out.write(f"  ... and {totals['hidden_top']:,} more\n")


def busiest(
    before: dict[str, Any], after: dict[str, Any], n: int
) -> list[tuple[float, dict[str, Any]]]:
    """The ``n`` actors that handled most messages per second between two
    snapshots (then the fullest mailboxes), with their rates."""
    seconds = max(after["time"] - before["time"], 1e-9)
    earlier = {row["path"]: row["processed"] for row in before["actors"]}
    rated = []
    for row in after["actors"]:
        done = row["processed"] - earlier.get(row["path"], row["processed"])
        rated.append((max(done, 0) / seconds, row))
    rated.sort(key=lambda pair: (-pair[0], -pair[1]["mailbox"], pair[1]["path"]))
    return rated[:n]


def print_top(snap: dict[str, Any], rated: list[tuple[float, dict[str, Any]]], out: TextIO) -> None:
    """Print the busiest actors as a table."""
    totals = snap["totals"]
    out.write(
        f"{snap['system']}  actors {totals['actors']:,}  dead letters "
        f"{totals['dead_letters']:,}  {time.strftime('%H:%M:%S')}\n"
    )
    width = max([len(row["path"]) for _, row in rated] + [4])
    out.write(
        f"{'PATH':<{width}}  {'MSG/S':>9}  {'MAILBOX':>11}  {'PROCESSED':>11}  "
        f"{'RESTARTS':>8}  STATE\n"
    )
    for rate, row in rated:
        mailbox = f"{row['mailbox']}/{_number(row['capacity'])}"
        out.write(
            f"{row['path']:<{width}}  {rate:>9,.0f}  {mailbox:>11}  {row['processed']:>11,}  "
            f"{row['restarts']:>8}  {row['state']}\n"
        )


def _top(page: _Page, n: int, interval: float, once: bool) -> int:
    before = page.get("/api/snapshot")
    while True:
        time.sleep(interval)
        after = page.get("/api/snapshot")
        rated = busiest(before, after, n)
        if not once:
            sys.stdout.write("\x1b[H\x1b[2J")  # home, clear the screen
        print_top(after, rated, sys.stdout)
        sys.stdout.flush()
        if once:
            return 0
        before = after


def print_dead_letters(report: dict[str, Any], out: TextIO) -> None:
    """Print the dead-letter counts and the latest letters."""
    out.write(
        f"{report['system']}  dead letters {report['total']:,}  "
        f"(unobserved {report['unobserved']:,})\n"
    )
    if report["by_actor"]:
        out.write("by actor:\n")
        for entry in report["by_actor"]:
            out.write(f"  {entry['path']}  {entry['dead_letters']:,}\n")
    if report["recent"]:
        out.write("latest (since the page started):\n")
        for letter in report["recent"]:
            when = time.strftime("%H:%M:%S", time.localtime(letter["time"]))
            to = letter["recipient"] or f"topic {letter['topic']}"
            out.write(f"  {when}  {to}  {letter['reason']}  {letter['message']}\n")


def _query(**values: Any) -> str:
    """The query of a request, leaving out what is None."""
    return urlencode({k: v for k, v in values.items() if v is not None}, doseq=True)


def print_queue(report: dict[str, Any], out: TextIO) -> None:
    """Print a dead-letter queue's entries."""
    out.write(f"{report['stream']}/{report['consumer']}  entries {report['count']:,}\n")
    for entry in report["entries"]:
        out.write(
            f"  {entry['seq']}  {entry['subject']}  deliveries {entry['deliveries']}  "
            f"{entry['last_error'] or '-'}  {entry['data']}\n"
        )
