"""Snapshots, the live page's endpoints and event stream, and the command line."""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from observe_kit import get, get_json, open_events, until, until_async

import actors
import supervision
from actors import durable, lowlevel
from actors.observe import _page, prometheus, serve_page, snapshot
from actors.testing import virtual_time

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "0123456789abcdef-token"


class Crasher(actors.Actor):
    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if message == "unhandled":
            return self.unhandled(message)
        return message


class Blocked(actors.Actor):
    def __init__(self, gate: anyio.Event) -> None:
        self.gate = gate

    async def receive(self, message: Any) -> None:
        await self.gate.wait()


class Parent(actors.Actor):
    def __init__(self, n: int) -> None:
        self.n = n

    async def on_start(self) -> None:
        for i in range(self.n):
            self.context.spawn_nowait(actors.Actor, name=f"c{i}")


def row_of(snap: dict[str, Any], path: str) -> dict[str, Any]:
    (row,) = [row for row in snap["actors"] if row["path"] == path]
    assert isinstance(row, dict)
    return row


async def crash_and_wait(sup: actors.ActorRef, child: str) -> None:
    """Crash the supervisor's child and wait until its next incarnation runs."""
    ref = next(c.ref for c in await supervision.which_children(sup) if c.name == child)
    assert ref is not None
    await ref.tell("boom")
    await ref.join()
    with anyio.fail_after(10):
        while True:
            info = next(c for c in await supervision.which_children(sup) if c.name == child)
            if info.state == "running" and info.ref != ref:
                return
            await anyio.lowlevel.checkpoint()


# -- snapshots ------------------------------------------------------------------


async def test_snapshot_shows_state_counters_names_topics_and_last_failure() -> None:
    gate = anyio.Event()
    async with actors.ActorSystem("snap") as system:
        sup = await system.spawn(
            supervision.Supervisor,
            [supervision.ChildSpec(Crasher, name="c", register_as="crasher")],
            name="sup",
        )
        blocked = await system.spawn(Blocked, gate, name="blocked")
        system.registry.subscribe("jobs.*", blocked, group="workers")
        for i in range(4):
            await blocked.tell(i)
        await blocked.tell(object())  # handled after the gate opens
        await crash_and_wait(sup, "c")
        crasher = system.registry.whereis("crasher")
        assert crasher is not None
        snap = snapshot(system)
        c = row_of(snap, "/user/sup/c")
        assert c["parent"] == "/user/sup"
        assert c["class"] == "Crasher" and c["state"] == "running"
        assert c["restarts"] == 1
        assert c["last_failure"] == "ValueError: boom"
        assert c["names"] == ["crasher"]
        b = row_of(snap, "/user/blocked")
        assert b["mailbox"] == 4  # one is in hand
        assert b["capacity"] == 1000
        assert b["subscriptions"] == [["jobs.*", "workers"]]
        assert row_of(snap, "/user/sup")["details"] == {"strategy": "one_for_one"}
        assert row_of(snap, "/user/sup")["children"] == 1
        assert snap["topics"]["patterns"] == [
            {"pattern": "jobs.*", "subscribers": 0, "groups": [{"name": "workers", "members": 1}]}
        ]
        assert snap["totals"]["actors"] == 3
        gate.set()


async def test_snapshot_counts_dead_letters_per_actor_and_unbounded_mailboxes() -> None:
    async with actors.ActorSystem() as system:
        ref = await system.spawn(Crasher, name="a", mailbox=actors.Mailbox(math.inf))
        await ref.tell("unhandled")
        with anyio.fail_after(5):
            while system.statistics().dead_letters < 1:
                await anyio.lowlevel.checkpoint()
        snap = snapshot(system)
        row = row_of(snap, "/user/a")
        assert row["dead_letters"] == 1 and row["capacity"] is None
        assert snap["totals"]["dead_letters"] == 1
        text = prometheus(snap)
        assert 'actors_dead_letters_total{system="actors",path="/user/a",class="Crasher"} 1' in text
        assert (
            'actors_mailbox_capacity{system="actors",path="/user/a",class="Crasher"} +Inf' in text
        )


# Without asyncio's debug mode, which records a stack for every task: there
# 10,000 actors take 9 s to start and overrun their shutdown timeout.
@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
async def test_a_supervisor_of_ten_thousand_collapses() -> None:
    async with actors.ActorSystem() as system:
        await system.spawn(Parent, 10_000, name="big")
        await until(lambda: system.statistics().actors == 10_001, timeout=30)
        snap = snapshot(system, max_children=50)
        big = row_of(snap, "/user/big")
        assert big["children"] == 10_000 and big["hidden"] == 9_950
        assert len(snap["actors"]) == 51
        assert [r["path"] for r in snap["actors"][1:4]] == [
            "/user/big/c0",
            "/user/big/c1",
            "/user/big/c2",
        ]
        small = snapshot(system, max_children=100, max_rows=10)
        assert len(small["actors"]) == 10 and row_of(small, "/user/big")["hidden"] == 9_991
        assert len(prometheus(snap).splitlines()) < 400


async def test_children_of_a_plain_actor_are_its_subtree() -> None:
    """Not only supervisors: what any actor spawns is shown under it, depth
    first, and collapses past ``max_children`` the same way."""

    class Nest(actors.Actor):
        def __init__(self, depth: int, width: int) -> None:
            self.depth = depth
            self.width = width

        async def on_start(self) -> None:
            if self.depth:
                for i in range(self.width):
                    await self.context.spawn(Nest, self.depth - 1, self.width, name=f"n{i}")

    async with actors.ActorSystem() as system:
        await system.spawn(Nest, 2, 2, name="top")  # returns once the whole nest started
        snap = snapshot(system)
        assert [(r["path"], r["parent"], r["children"]) for r in snap["actors"]] == [
            ("/user/top", "/user", 2),
            ("/user/top/n0", "/user/top", 2),
            ("/user/top/n0/n0", "/user/top/n0", 0),
            ("/user/top/n0/n1", "/user/top/n0", 0),
            ("/user/top/n1", "/user/top", 2),
            ("/user/top/n1/n0", "/user/top/n1", 0),
            ("/user/top/n1/n1", "/user/top/n1", 0),
        ]
        small = snapshot(system, max_children=1)
        assert [(r["path"], r["hidden"]) for r in small["actors"]] == [
            ("/user/top", 1),
            ("/user/top/n0", 1),
            ("/user/top/n0/n0", 0),
        ]


async def test_snapshot_refuses_bad_limits() -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(ValueError, match="max_children"):
            snapshot(system, max_children=0)
        with pytest.raises(ValueError, match="max_rows"):
            snapshot(system, max_rows=True)


async def test_durable_consumers_in_the_snapshot(tmp_path: Path) -> None:
    store = durable.SQLiteStore(tmp_path / "observe.db")
    async with actors.ActorSystem("d", store=store) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        for i in range(5):
            await orders.publish("orders.eu", i)
        billing = await orders.consumer("billing", max_deliver=1)
        (first,) = await billing.fetch(1)
        await first.ack()
        (second,) = await billing.fetch(1)  # in flight
        async with serve_page(system) as page:
            snap = await get_json(page.url, "/api/snapshot")
            (consumer,) = snap["durable"]["consumers"]
            assert consumer == {
                "stream": "ORDERS",
                "consumer": "billing",
                "pending": 4,
                "in_flight": 1,
                "ack_floor": 1,
                "last_seq": 5,
                "dead_letters": 0,
            }
            _, _, body = await get(page.url, "/metrics")
            assert (
                b'actors_durable_consumer_pending{system="d",stream="ORDERS",consumer="billing"} 4'
                in body
            )
        await second.ack()


@pytest.mark.usefixtures("no_orphans")
async def test_process_pools_and_process_actors_in_the_snapshot() -> None:
    async with actors.ActorSystem("pools") as system, system.process_pool("cpu", size=1) as pool:
        ref = await system.spawn(Crasher, name="far", placement=actors.Subprocess(pool="cpu"))
        snap = snapshot(system)
        (entry,) = snap["pools"]
        (pid,) = pool.pids
        assert entry["name"] == "cpu" and entry["state"] == "open" and entry["restarts"] == 0
        assert entry["workers"] == [{"slot": 0, "pid": pid, "state": "up", "actors": 1}]
        row = row_of(snap, "/user/far")
        assert row["class"] == "Crasher"
        assert row["details"] == {"pid": str(pid), "pool": "cpu"}
        text = prometheus(snap)
        assert 'actors_pool_workers_up{system="pools",pool="cpu"} 1' in text
        await ref.stop()


# -- the page -------------------------------------------------------------------


async def test_endpoints() -> None:
    async with actors.ActorSystem("web") as system:
        await system.spawn(
            supervision.Supervisor, [supervision.ChildSpec(Crasher, name="c")], name="sup"
        )
        async with serve_page(system) as page:
            assert page.url == f"http://127.0.0.1:{page.port}/"
            status, headers, body = await get(page.url, "/")
            assert status == 200 and headers["content-type"].startswith("text/html")
            assert b"<script>" in body and b"EventSource" in body
            assert b"http://" not in body and b"https://" not in body  # nothing from elsewhere
            status, headers, _ = await get(page.url, "/", method="HEAD")
            assert status == 200 and int(headers["content-length"]) > 1000
            snap = await get_json(page.url, "/api/snapshot")
            assert [r["path"] for r in snap["actors"]] == ["/user/sup", "/user/sup/c"]
            assert snap["durable"] is None
            status, headers, body = await get(page.url, "/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
            series = (
                b'actors_messages_processed_total{system="web",path="/user/sup/c",class="Crasher"}'
            )
            assert series + b" 0" in body
            assert b"# TYPE actors_restarts_total counter" in body
            report = await get_json(page.url, "/api/dead-letters")
            assert report["total"] == 0 and report["recent"] == []
            status, _, body = await get(page.url, "/nowhere")
            assert status == 404 and b"/metrics" in body
            status, _, _ = await get(page.url, "/", method="POST")
            assert status == 405


async def test_dead_letters_endpoint_keeps_the_latest() -> None:
    async with actors.ActorSystem("dl") as system:
        ref = await system.spawn(actors.Actor, name="a")
        async with serve_page(system) as page:
            await ref.stop()
            await ref.tell({"order": 7})

            async def reported() -> Any:
                report = await get_json(page.url, "/api/dead-letters")
                return report if report["recent"] else None

            report = await until_async(reported)
            (letter,) = report["recent"]
            assert letter["recipient"] == "/user/a" and letter["reason"] == "stopped"
            assert letter["message"] == "{'order': 7}"
            assert report["total"] == 1


async def test_token_is_required_off_loopback_and_checked() -> None:
    async with actors.ActorSystem() as system:
        with pytest.raises(ValueError, match=r"token=secrets\.token_urlsafe"):
            serve_page(system, host="0.0.0.0")
        with pytest.raises(ValueError, match=r"token=secrets\.token_urlsafe"):
            serve_page(system, host="example.org")
        with pytest.raises(ValueError, match="16 characters"):
            serve_page(system, token="short")
        with pytest.raises(TypeError, match="token must be a str"):
            serve_page(system, token=b"0123456789abcdef0")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="port"):
            serve_page(system, port=70000)
        async with serve_page(system, host="0.0.0.0", token=TOKEN) as page:
            assert page.url.endswith(f"/?token={TOKEN}")
            url = f"http://127.0.0.1:{page.port}/"
            for path in ("/", "/api/snapshot", "/api/events", "/metrics", "/api/dead-letters"):
                status, _, _ = await get(url, path)
                assert status == 401, path
            status, _, _ = await get(url, "/?token=wrong-token-0123456789")
            assert status == 401
            status, _, _ = await get(url, f"/?token={TOKEN}")
            assert status == 200
            assert (await get_json(url, "/api/snapshot", token=TOKEN))["actors"] == []


async def test_events_stream_a_snapshot_then_deltas_after_a_crash() -> None:
    async with actors.ActorSystem() as system:
        sup = await system.spawn(
            supervision.Supervisor,
            [supervision.ChildSpec(Crasher, name="a"), supervision.ChildSpec(Crasher, name="b")],
            name="sup",
        )
        async with serve_page(system, interval=0.05) as page:
            events = await open_events(page.url)
            async with events.stream:
                event, snap = await events.next()
                assert event == "snapshot"
                assert row_of(snap, "/user/sup/a")["restarts"] == 0
                await crash_and_wait(sup, "a")
                with anyio.fail_after(10):
                    while True:
                        event, change = await events.next()
                        assert event == "delta"
                        rows = {row["path"]: row for row in change["set"]}
                        if "/user/sup/a" in rows and rows["/user/sup/a"]["restarts"] == 1:
                            break
                assert rows["/user/sup/a"]["last_failure"] == "ValueError: boom"
                assert "/user/sup/b" not in rows  # only what changed
                assert change["removed"] == [] or change["removed"] == ["/user/sup/a"]
                assert "totals" in change


async def test_events_stay_bounded_under_restarts_of_many_actors() -> None:
    async with actors.ActorSystem() as system:
        specs = [supervision.ChildSpec(Crasher, name=f"w{i}") for i in range(200)]
        sup = await system.spawn(
            supervision.Supervisor, specs, name="sup", max_restarts=10_000, within=1.0
        )
        async with serve_page(system, interval=0.05, max_children=20) as page:
            events = await open_events(page.url)
            async with events.stream:
                _, snap = await events.next()
                assert len(snap["actors"]) == 21
                for round_ in range(5):
                    for info in await supervision.which_children(sup):
                        if info.ref is not None:
                            await info.ref.tell("boom")
                    _, change = await events.next()
                    assert len(change["set"]) <= 21
                    del round_
        assert events.bytes < 200_000


async def test_the_page_ends_with_the_system() -> None:
    async with actors.ActorSystem() as system:
        page = await serve_page(system)
        url = page.url
        events = await open_events(url)
        assert (await events.next())[0] == "snapshot"
    with anyio.fail_after(5):
        while True:
            try:
                await events.next()
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError):
                break
    await events.stream.aclose()
    with pytest.raises(OSError):
        await get(url, "/")
    with pytest.raises(actors.ActorsError, match="not running"):
        await serve_page(system)


async def test_close_stops_serving() -> None:
    async with actors.ActorSystem() as system:
        page = await serve_page(system)
        await page.close()
        assert "closed" in repr(page)
        with pytest.raises(OSError):
            await get(page.url, "/")
        await system.spawn(actors.Actor)  # the system goes on


# -- the command line -------------------------------------------------------------


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = await anyio.run_process(
        [sys.executable, "-m", "actors", *args],
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_cli_tree_top_and_dead_letters() -> None:
    async with actors.ActorSystem("cli") as system:
        sup = await system.spawn(
            supervision.Supervisor,
            [supervision.ChildSpec(Crasher, name="c", register_as="crasher")],
            name="sup",
        )
        await system.spawn(Parent, 120, name="big")
        busy = await system.spawn(Crasher, name="busy")
        await crash_and_wait(sup, "c")
        async with serve_page(system, token=TOKEN) as page:
            code, out, err = await run_cli("--url", page.url, "tree")
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0] == "cli  actors 124  dead letters 0"
            assert re.fullmatch(
                r"  sup  Supervisor  running  mailbox 0/1,000  processed \d+  restarts 0  "
                r"strategy one_for_one",
                lines[1],
            )
            assert lines[2] == (
                "    c  Crasher  running  mailbox 0/1,000  processed 0  restarts 1  "
                "registered crasher  last failure ValueError: boom"
            )
            assert "    ... and 70 more" in lines

            async def keep_busy() -> None:
                while True:
                    await busy.ask("ping")

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(keep_busy)
                code, out, err = await run_cli(
                    "--url", page.url, "top", "--once", "--interval", "0.3", "-n", "3"
                )
                tasks.cancel_scope.cancel()
            assert code == 0, err
            lines = out.splitlines()
            assert lines[1].split() == [
                "PATH",
                "MSG/S",
                "MAILBOX",
                "PROCESSED",
                "RESTARTS",
                "STATE",
            ]
            assert (
                lines[2].split()[0] == "/user/busy"
                and int(lines[2].split()[1].replace(",", "")) > 0
            )
            assert len(lines) == 5

            await busy.stop()
            await busy.tell("late")

            async def reported() -> Any:
                return (await get_json(page.url, "/api/dead-letters", TOKEN))["recent"]

            await until_async(reported)
            code, out, err = await run_cli("dead-letters", env={"ACTORS_PAGE": page.url})
            assert code == 0, err
            assert out.splitlines()[0] == "cli  dead letters 1  (unobserved 0)"
            assert "/user/busy  stopped  'late'" in out


async def test_cli_says_what_is_wrong() -> None:
    code, _, err = await run_cli("tree", env={"ACTORS_PAGE": ""})
    assert code == 2 and "--url" in err
    async with actors.ActorSystem() as system:
        async with serve_page(system, token=TOKEN) as page:
            code, _, err = await run_cli("--url", f"http://127.0.0.1:{page.port}/", "tree")
            assert code == 2 and "needs its token" in err
        code, _, err = await run_cli("--url", page.url, "tree")
        assert code == 2 and "cannot reach the page" in err


async def two_dead_letters(system: actors.ActorSystem) -> durable.Consumer:
    """Consumer ``billing`` of stream ``ORDERS``, with two entries in its
    dead-letter queue: ``{"id": 1}`` on ``orders.eu`` and ``{"id": 2}`` on
    ``orders.us``, each nak'ed once with "card declined N"."""
    orders = await system.streams.create("ORDERS", subjects=["orders.>"])
    await orders.publish("orders.eu", {"id": 1})
    await orders.publish("orders.us", {"id": 2})
    billing = await orders.consumer("billing", max_deliver=1)
    for message in await billing.fetch(2):
        await message.nak(error=f"card declined {message.data['id']}")
    return billing


async def test_cli_browses_requeues_and_replays_a_dead_letter_queue(tmp_path: Path) -> None:
    store = durable.SQLiteStore(tmp_path / "dlq.db")
    async with actors.ActorSystem("q", store=store) as system:
        billing = await two_dead_letters(system)
        async with serve_page(system) as page:
            code, _, err = await run_cli("--url", page.url, "requeue", "ORDERS", "billing", "1")
            assert code == 2 and "read-only" in err and "token" in err
        async with serve_page(system, token=TOKEN) as page:
            code, out, err = await run_cli("--url", page.url, "dlq", "ORDERS", "billing")
            assert code == 0, err
            assert out.splitlines() == [
                "ORDERS/billing  entries 2",
                "  1  orders.eu  deliveries 1  card declined 1  {'id': 1}",
                "  2  orders.us  deliveries 1  card declined 2  {'id': 2}",
            ]
            code, _, err = await run_cli("--url", page.url, "dlq", "ORDERS", "nobody")
            assert code == 2 and "404" in err and "nobody" in err
            code, _, err = await run_cli("--url", page.url, "dlq", "NOPE", "billing")
            assert code == 2 and "404" in err
            code, out, err = await run_cli(
                "--url", page.url, "replay", "ORDERS", "billing", "--until", "1"
            )
            assert code == 0, err
            assert out == "published 1: 3\n"
            code, out, err = await run_cli(
                "--url", page.url, "requeue", "ORDERS", "billing", "2", "9"
            )
            assert code == 1 and out == "requeued 1: 2\n" and "not in the queue: 9" in err
            got = sorted(m.data["id"] for m in await billing.fetch(5))
            assert got == [1, 2]  # the replayed copy of 1 and the requeued 2
            status, _, _ = await get(
                page.url, f"/api/durable/replay?stream=ORDERS&consumer=billing&token={TOKEN}"
            )
            assert status == 405


async def test_cli_works_on_an_sqlite_store_without_a_page(tmp_path: Path) -> None:
    path = tmp_path / "dlq.db"
    async with actors.ActorSystem("q", store=durable.SQLiteStore(path)) as system:
        billing = await two_dead_letters(system)
        # The system goes on; the command line opens the file beside it.
        code, out, err = await run_cli("--sqlite", str(path), "dlq", "ORDERS", "billing")
        assert code == 0, err
        assert out.splitlines() == [
            "ORDERS/billing  entries 2",
            "  1  orders.eu  deliveries 1  card declined 1  {'id': 1}",
            "  2  orders.us  deliveries 1  card declined 2  {'id': 2}",
        ]
        code, out, err = await run_cli(
            "--sqlite", str(path), "replay", "ORDERS", "billing", "--until", "1"
        )
        assert (code, out) == (0, "published 1: 3\n"), err
        code, out, err = await run_cli(
            "--sqlite", str(path), "requeue", "ORDERS", "billing", "2", "9"
        )
        assert code == 1 and out == "requeued 1: 2\n" and "not in the queue: 9" in err
        got = sorted(m.data["id"] for m in await billing.fetch(5))
        assert got == [1, 2]  # the replayed copy of 1 and the requeued 2
        code, _, err = await run_cli("--sqlite", str(path), "dlq", "ORDERS", "nobody")
        assert code == 2 and "no consumer 'nobody'" in err
        # Bad values are named, not a traceback or a word about unpickling.
        code, _, err = await run_cli("--sqlite", str(path), "requeue", "ORDERS", "billing", "-1")
        assert code == 2 and "seq must be a sequence number" in err and "Traceback" not in err
        code, _, err = await run_cli(
            "--sqlite", str(path), "replay", "ORDERS", "billing", "--to", "orders..x"
        )
        assert code == 2 and "orders..x" in err and "unpickle" not in err
    (tmp_path / "notes.txt").write_text("not a database, just text " * 100)
    code, _, err = await run_cli("--sqlite", str(tmp_path / "notes.txt"), "dlq", "ORDERS", "b")
    assert code == 2 and "cannot use the store at" in err and "Traceback" not in err
    code, _, err = await run_cli("--sqlite", str(tmp_path / "none.db"), "dlq", "ORDERS", "billing")
    assert code == 2 and "no SQLite store at" in err
    assert not (tmp_path / "none.db").exists()
    code, _, err = await run_cli("--sqlite", str(path), "tree")
    assert code == 2 and "--url" in err


async def test_cli_on_a_store_says_when_its_messages_do_not_import_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shop_messages.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Order:\n    id: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from shop_messages import Order  # type: ignore[import-not-found]

    path = tmp_path / "dlq.db"
    async with actors.ActorSystem("q", store=durable.SQLiteStore(path)) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.publish("orders.eu", Order(3))
        billing = await orders.consumer("billing", max_deliver=1)
        (message,) = await billing.fetch(1)
        await message.nak(error="declined")
    code, out, err = await run_cli("--sqlite", str(path), "dlq", "ORDERS", "billing")
    assert code == 1  # listed, the message shown as Unreadable
    assert "Unreadable" in out.splitlines()[1] and "shop_messages" in out
    assert "cannot unpickle the messages of 1 entries here" in err
    assert "shop_messages" in err and "PYTHONPATH" in err
    code, out, err = await run_cli("--sqlite", str(path), "replay", "ORDERS", "billing")
    assert code == 2 and "cannot be unpickled here" in err and "nothing was replayed" in err
    importable = {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    code, out, err = await run_cli(
        "--sqlite", str(path), "dlq", "ORDERS", "billing", env=importable
    )
    assert code == 0, err
    assert out.splitlines()[1] == "  1  orders.eu  deliveries 1  declined  Order(id=3)"


async def test_a_page_with_a_token_stops_and_kills_actors() -> None:
    async with actors.ActorSystem() as system:
        sup = await system.spawn(
            supervision.Supervisor, [supervision.ChildSpec(Crasher, name="c")], name="sup"
        )
        lone = await system.spawn(actors.Actor, name="lone")
        query = "/api/actors/kill?path=/user/sup/c"
        async with serve_page(system) as page:
            status, _, body = await get(page.url, query, method="POST")
            assert status == 403 and b"read-only" in body
        async with serve_page(system, token=TOKEN) as page:
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            status, _, _ = await get(page.url, query, method="POST")
            assert status == 401
            status, _, _ = await get(page.url, query, bearer)
            assert status == 405  # a change is a POST
            status, _, body = await get(page.url, query, bearer, method="POST")
            assert status == 200, body

            async def restarted() -> bool:
                (info,) = await supervision.which_children(sup)
                return info.restarts == 1 and info.state == "running"

            await until_async(restarted)
            status, _, body = await get(
                page.url, "/api/actors/stop?path=/user/lone", bearer, method="POST"
            )
            assert status == 200, body
            await lone.join()
            for path in ("/user/lone", "/user/nobody", "/elsewhere", ""):
                status, _, body = await get(
                    page.url, f"/api/actors/stop?path={path}", bearer, method="POST"
                )
                assert status in (400, 404), (path, status, body)


class Remembers(Crasher):
    seen: ClassVar[list[str | None]] = []

    async def on_start(self) -> None:
        incarnation = lowlevel.resolve(self.ref)
        assert incarnation is not None
        self.seen.append(incarnation.last_failure)


async def test_a_restarted_child_has_its_last_failure_before_on_start() -> None:
    # With its restart count, from the start: a snapshot never shows one without the other.
    Remembers.seen = []
    async with actors.ActorSystem() as system:
        sup = await system.spawn(
            supervision.Supervisor, [supervision.ChildSpec(Remembers, name="r")], name="sup"
        )
        await crash_and_wait(sup, "r")
        assert Remembers.seen == [None, "ValueError: boom"]
        with pytest.raises(TypeError, match="last_failure must be a str"):
            await lowlevel.spawn(system, actors.Actor, last_failure=3)  # type: ignore[arg-type]


async def test_a_child_waiting_out_its_backoff_shows_as_restarting() -> None:
    # Before, it had no row until its next incarnation started.
    async with actors.ActorSystem() as system:
        backoff = supervision.Backoff(min=60.0, max=60.0, jitter=0)
        specs = [supervision.ChildSpec(Crasher, name=n, backoff=backoff) for n in "abc"]
        sup = await system.spawn(supervision.Supervisor, specs, name="sup")
        info = (await supervision.which_children(sup))[0]
        assert info.ref is not None
        await info.ref.tell("boom")
        await info.ref.join()
        with anyio.fail_after(10):
            while (await supervision.which_children(sup))[0].state != "restarting":
                await anyio.lowlevel.checkpoint()
        row = row_of(snapshot(system), "/user/sup/a")
        assert row["parent"] == "/user/sup" and row["class"] == "Crasher"
        assert row["state"] == "restarting"
        assert row["restarts"] == 1 and row["last_failure"] == "ValueError: boom"
        assert "/user/sup/a" in await get_cli_tree(system)
        # It shares its supervisor's max_children with the live ones, after them.
        small = snapshot(system, max_children=2)
        assert [r["path"] for r in small["actors"]] == ["/user/sup", "/user/sup/b", "/user/sup/c"]
        assert row_of(small, "/user/sup")["hidden"] == 1
        # Terminated while it waits: gone from the page; started again: running.
        await supervision.terminate_child(sup, "a")
        assert [r["path"] for r in snapshot(system)["actors"]] == [
            "/user/sup",
            "/user/sup/b",
            "/user/sup/c",
        ]
        await supervision.restart_child(sup, "a")
        assert row_of(snapshot(system), "/user/sup/a")["state"] == "running"


async def get_cli_tree(system: actors.ActorSystem) -> str:
    """The page's snapshot as JSON text (what ``python -m actors tree`` reads)."""
    async with serve_page(system) as page:
        status, _, body = await get(page.url, "/api/snapshot")
    assert status == 200
    return body.decode()


#: The most one row of a snapshot takes as JSON here (short paths and class
#: names, a failure of 16 characters; MAX_TEXT caps a failure at 300).
ROW_BYTES = 600


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
async def test_the_stream_stays_bounded_with_ten_thousand_actors_and_100_restarts_a_second() -> (
    None
):
    # Without debug mode, as for the collapse test above. The bound: at most
    # one delta per interval, and each carries at most the rows a snapshot
    # shows (max_children + 1 here: 10,000 actors as rows would be ~2.5 MB).
    interval, max_children, seconds = 0.25, 50, 3.0
    per_delta = 2 * (max_children + 1) * ROW_BYTES + 4096  # set and removed, plus totals
    async with actors.ActorSystem() as system:
        specs = [
            supervision.ChildSpec(Crasher, name=f"w{i}", register_as=f"w{i}" if i < 100 else None)
            for i in range(10_000)
        ]
        await system.spawn(
            supervision.Supervisor, specs, name="sup", max_restarts=100_000, within=1.0
        )
        assert system.statistics().actors == 10_001
        async with serve_page(system, interval=interval, max_children=max_children) as page:
            events = await open_events(page.url)
            async with events.stream:
                event, snap = await events.next()
                assert event == "snapshot" and len(snap["actors"]) == max_children + 1
                spawned = snap["totals"]["spawned"]
                sizes: list[int] = []
                first = events.bytes
                start = anyio.current_time()

                async def read() -> None:
                    while True:
                        before = events.bytes
                        event, _ = await events.next()
                        assert event == "delta"
                        sizes.append(events.bytes - before)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    # 100 restarts a second, of the first hundred children
                    # (half shown, half collapsed), for `seconds`.
                    for n in range(int(seconds * 100)):
                        ref = system.registry.whereis(f"w{n % 100}")
                        if ref is not None:  # else restarting this moment
                            await ref.tell("boom")
                        await anyio.sleep_until(start + (n + 1) / 100)
                    elapsed = anyio.current_time() - start
                    streamed = events.bytes - first
                    tg.cancel_scope.cancel()
        restarts = system.statistics().spawned - spawned
    assert restarts >= 0.5 * seconds * 100, restarts  # the load was there
    assert sizes and len(sizes) <= elapsed / interval + 1, (len(sizes), elapsed)
    assert max(sizes) <= per_delta, (max(sizes), per_delta)
    # At most 4 deltas a second of at most `per_delta` bytes: ~250 KB/s here.
    assert streamed / elapsed <= per_delta / interval, (streamed, elapsed)
    print(
        f"{len(sizes)} deltas in {elapsed:.2f} s, {restarts} restarts, "
        f"max {max(sizes)} B, {streamed / elapsed / 1000:.1f} KB/s"
    )


def ask_latency_count(text: str) -> int:
    (line,) = [
        line for line in text.splitlines() if line.startswith("actors_ask_latency_seconds_count")
    ]
    return int(line.rsplit(" ", 1)[1])


def recording_asks() -> bool:
    from actors import _ask

    return _ask.timing is not None


async def test_ask_latency_is_a_histogram_while_a_page_serves() -> None:
    async with actors.ActorSystem("asks") as system:
        ref = await system.spawn(Crasher, name="a")
        assert not recording_asks()  # no page: asks do no more work
        async with serve_page(system) as page:
            assert recording_asks()
            _, _, body = await get(page.url, "/metrics")
            before = ask_latency_count(body.decode())
            for i in range(10):
                assert await ref.ask(i) == i
            gate = anyio.Event()
            blocked = await system.spawn(Blocked, gate, name="blocked")
            with pytest.raises(actors.AskTimeout):  # not answered: not counted
                await blocked.ask("wait", timeout=0.05)
            gate.set()
            _, _, body = await get(page.url, "/metrics")
            text = body.decode()
        assert not recording_asks()  # the last page closed
        for _ in range(5):
            await ref.ask(0)
    assert ask_latency_count(text) == before + 10
    assert "# TYPE actors_ask_latency_seconds histogram" in text
    buckets = [
        (line.split('le="')[1].split('"')[0], int(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith('actors_ask_latency_seconds_bucket{system="asks"')
    ]
    assert buckets[-1] == ("+Inf", before + 10)
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)  # cumulative
    assert 'actors_ask_latency_seconds_sum{system="asks"} ' in text


async def test_the_nodes_of_a_cluster_are_on_the_page(nats_server: Any) -> None:
    """A cluster's linked nodes show as connected, its other members as members."""
    from tcp_kit import SECRET

    from actors.cluster import NatsCluster

    cluster = NatsCluster([nats_server.url], name=f"page{os.getpid()}", secret=SECRET)
    async with (
        actors.ActorSystem("a", cluster=cluster) as a,
        actors.ActorSystem("b", cluster=cluster) as b,
        actors.ActorSystem("c", cluster=cluster),
    ):
        b.registry.register("echo", await b.spawn(actors.Actor, name="echo"))
        assert await a.cluster.whereis("b", "echo") is not None  # links a and b
        expected = [
            {"node": "b", "link": "connected", "error": None},
            {"node": "c", "link": "member", "error": None},
        ]

        async def shown() -> bool:
            return bool(snapshot(a)["nodes"] == expected)

        await until_async(shown, 20)


@pytest.mark.parametrize(
    "anyio_backend", [virtual_time("asyncio"), virtual_time("trio")], ids=["asyncio", "trio"]
)
async def test_the_page_reads_a_slow_store_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counting a consumer's pending messages goes over them, on the store's
    # one thread: the page keeps to a twentieth of that thread's time.
    reads: list[float] = []
    took = 0.01

    async def durable_snapshot(system: actors.ActorSystem) -> dict[str, Any]:
        reads.append(anyio.current_time())
        await anyio.sleep(took)
        return {"consumers": [], "hidden": 0, "error": None}

    monkeypatch.setattr(_page, "durable_snapshot", durable_snapshot)
    store = durable.SQLiteStore(tmp_path / "observe.db")
    async with actors.ActorSystem("d", store=store) as system:
        page = _page.Page(system, "127.0.0.1", 0, None, 0.25, 100, 1000)

        async def browse(seconds: float) -> list[float]:
            # A page open in a browser: a snapshot every 0.25 s.
            reads.clear()
            end = anyio.current_time() + seconds
            while anyio.current_time() < end:
                await page._snapshot(fresh_durable=False)
                await anyio.sleep(0.25)
            return [later - earlier for earlier, later in itertools.pairwise(reads)]

        assert all(1.0 <= gap <= 1.3 for gap in await browse(10.0))  # DURABLE_EVERY
        took = 0.5
        gaps = await browse(60.0)
        assert gaps and all(10.0 <= gap <= 10.8 for gap in gaps[1:]), gaps  # 20 x 0.5 s
        # /metrics reads afresh, whatever it costs.
        before = len(reads)
        await page._durable_counts(fresh=True)
        assert len(reads) == before + 1
