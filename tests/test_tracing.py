"""OpenTelemetry traces of tell and ask (``actors.tracing``), checked with the
SDK's in-memory exporter. Without the SDK these tests skip; under
``ACTORS_REQUIRE_SERVERS=1`` (CI, where the ``test`` extra installs it) they
fail instead."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import actors
from actors import tracing

try:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:  # pragma: no cover - the test extra installs the SDK
    if os.environ.get("ACTORS_REQUIRE_SERVERS") == "1":
        raise
    pytest.skip("opentelemetry-sdk is not installed", allow_module_level=True)

from tracing_kit import Front, Subscriber, export_to, read_spans
from tracing_kit import Leaf as TracedLeaf

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    try:
        yield exporter
    finally:
        tracing.uninstrument()
        provider.shutdown()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = by_name(spans, name)
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


def kind(spans: tuple[ReadableSpan, ...], name: str, span_kind: trace.SpanKind) -> ReadableSpan:
    return next(span for span in by_name(spans, name) if span.kind is span_kind)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


class Leaf(actors.Actor):
    def __init__(self, told: anyio.Event | None = None) -> None:
        self.told = told

    async def receive(self, message: Any) -> Any:
        if message == "fail":
            raise ValueError("failed on purpose")
        if message == "told" and self.told is not None:
            self.told.set()
        return message


class Middle(actors.Actor):
    """Asks its leaf and tells it, from inside its own handler."""

    def __init__(self, leaf: actors.ActorRef) -> None:
        self.leaf = leaf

    async def receive(self, message: Any) -> Any:
        answer = await self.leaf.ask(message)
        await self.leaf.tell("told")
        return answer


class Recorder(actors.Actor):
    """Puts ``(its path, message)`` in ``inbox`` for each message."""

    def __init__(self, inbox: actors.Channel[tuple[str, Any]]) -> None:
        self.inbox = inbox

    async def receive(self, message: Any) -> Any:
        self.inbox.send_nowait((self.ref.path, message))


async def test_an_ask_chain_is_one_trace(exporter: InMemorySpanExporter) -> None:
    told = anyio.Event()
    async with actors.ActorSystem() as system:
        leaf = await system.spawn(Leaf, told, name="leaf")
        middle = await system.spawn(Middle, leaf, name="middle")
        assert await middle.ask("hi") == "hi"
        await told.wait()
        await middle.stop()
        await leaf.stop()
    spans = exporter.get_finished_spans()
    client = kind(spans, "ask /user/middle", trace.SpanKind.CLIENT)
    server = kind(spans, "ask /user/middle", trace.SpanKind.SERVER)
    inner_client = [s for s in by_name(spans, "ask /user/leaf") if s.kind is trace.SpanKind.CLIENT]
    inner_server = [s for s in by_name(spans, "ask /user/leaf") if s.kind is trace.SpanKind.SERVER]
    send = one(spans, "send /user/leaf")
    process = one(spans, "process /user/leaf")
    assert client.parent is None
    assert parent_of(server) == span_id(client)
    assert parent_of(inner_client[0]) == span_id(server)
    assert parent_of(inner_server[0]) == span_id(inner_client[0])
    assert parent_of(send) == span_id(server)
    assert parent_of(process) == span_id(send)
    assert send.kind is trace.SpanKind.PRODUCER and process.kind is trace.SpanKind.CONSUMER
    assert {trace_id(span) for span in spans} == {trace_id(client)}
    assert client.attributes is not None
    assert client.attributes["messaging.system"] == "actors"
    assert client.attributes["messaging.destination.name"] == "/user/middle"
    assert client.status.status_code is trace.StatusCode.UNSET


async def test_ask_outcomes_are_statuses(exporter: InMemorySpanExporter) -> None:
    class Slow(actors.Actor):
        async def receive(self, message: Any) -> Any:
            await anyio.sleep_forever()

    class Parent(actors.Actor):
        async def receive(self, message: Any) -> Any:
            return await self.context.spawn(Leaf, name="leaf")

        async def on_child_failed(self, child: actors.ActorRef, error: BaseException) -> None:
            pass

    async with actors.ActorSystem() as system:
        parent = await system.spawn(Parent, name="parent")
        leaf = await parent.ask("spawn")
        with pytest.raises(actors.ActorFailed):
            await leaf.ask("fail")
        slow = await system.spawn(Slow, name="slow")
        with pytest.raises(actors.AskTimeout):
            await slow.ask("x", timeout=0.01)
        await slow.stop()
        with pytest.raises(actors.ActorStopped):
            await slow.ask("x")
    spans = exporter.get_finished_spans()
    errors = {
        (span.name, (span.attributes or {}).get("error.type"))
        for span in spans
        if span.kind is trace.SpanKind.CLIENT
    }
    assert errors == {
        ("ask /user/parent", None),
        ("ask /user/parent/leaf", "ActorFailed"),
        ("ask /user/slow", "AskTimeout"),
        ("ask /user/slow", "ActorStopped"),
    }
    for span in spans:
        if span.kind is trace.SpanKind.CLIENT and span.name != "ask /user/parent":
            assert span.status.status_code is trace.StatusCode.ERROR
    server = kind(spans, "ask /user/parent/leaf", trace.SpanKind.SERVER)
    assert server.status.status_code is trace.StatusCode.ERROR


async def test_dead_letters_show_the_message(exporter: InMemorySpanExporter) -> None:
    async with actors.ActorSystem() as system:
        leaf = await system.spawn(Leaf, name="leaf")
        await leaf.stop()
        async with system.dead_letters() as letters:
            await leaf.tell("late")
            letter = await letters.receive()
            assert await system.publish("nobody.listens", "unheard") == 0
            unheard = await letters.receive()
    assert letter.message == "late"
    assert (unheard.message, unheard.topic) == ("unheard", "nobody.listens")


async def test_a_publish_and_its_deliveries_are_one_trace(
    exporter: InMemorySpanExporter,
) -> None:
    """ask -> its handler publishes -> two subscribers, a group of two and a
    pull subscription: the publish span is the handler's child, and each
    delivery is handled in a span that is the publish span's child."""
    inbox: actors.Channel[tuple[str, Any]] = actors.Channel(math.inf)

    class Front(actors.Actor):
        async def receive(self, message: Any) -> Any:
            return await self.context.publish("orders.eu", message)

    async with actors.ActorSystem() as system:
        refs = {name: await system.spawn(Recorder, inbox, name=name) for name in "ab12"}
        system.subscribe("orders.*", refs["a"])
        system.subscribe("orders.eu", refs["a"])  # still one copy
        system.subscribe("orders.>", refs["b"])
        system.subscribe("orders.*", refs["1"], group="workers")
        system.subscribe("orders.*", refs["2"], group="workers")
        front = await system.spawn(Front, name="front")
        async with system.subscription("orders.>") as pulled:
            assert await front.ask("order 1") == 4
            assert await pulled.receive() == "order 1"  # the message, never the wrapper
        got = sorted([await inbox.receive() for _ in range(3)])
        assert got == [("/user/1", "order 1"), ("/user/a", "order 1"), ("/user/b", "order 1")]
    spans = exporter.get_finished_spans()
    server = kind(spans, "ask /user/front", trace.SpanKind.SERVER)
    publish = one(spans, "publish orders.eu")
    assert publish.kind is trace.SpanKind.PRODUCER
    assert parent_of(publish) == span_id(server)
    assert publish.attributes is not None
    assert publish.attributes["messaging.destination.name"] == "orders.eu"
    assert publish.attributes["messaging.operation.name"] == "publish"
    for path in ("/user/a", "/user/b", "/user/1"):
        process = one(spans, f"process {path}")
        assert process.kind is trace.SpanKind.CONSUMER
        assert parent_of(process) == span_id(publish)
    assert not by_name(spans, "process /user/2")  # the group's copy went to one member
    pull = one(spans, "receive orders.>")
    assert pull.kind is trace.SpanKind.CONSUMER
    assert parent_of(pull) == span_id(publish)
    assert {trace_id(span) for span in spans} == {trace_id(server)}


@pytest.mark.usefixtures("no_orphans")
async def test_a_publish_to_a_process_actor_is_one_trace(
    exporter: InMemorySpanExporter, placement: actors.Subprocess, tmp_path: Path
) -> None:
    """publish here -> a subscriber in a child process, which publishes back
    to a subscriber here and tells an actor here: one trace, each span the
    child of the one that sent it (the context crosses in the envelope's
    headers both ways)."""
    path = str(tmp_path / "child-spans.jsonl")
    child = dataclasses.replace(placement, initializer=functools.partial(export_to, path))
    inbox: actors.Channel[tuple[str, Any]] = actors.Channel(math.inf)
    async with actors.ActorSystem() as system:
        report = await system.spawn(Recorder, inbox, name="report")
        back = await system.spawn(Recorder, inbox, name="back")
        system.subscribe("back.here", back)
        remote = await system.spawn(Subscriber, "news.*", report, name="remote", placement=child)
        assert await inbox.receive() == ("/user/report", "started")
        assert await system.publish("news.eu", ("publish", "back.here", "echo")) == 1
        got = {await inbox.receive(), await inbox.receive()}
        assert got == {("/user/back", "echo"), ("/user/report", ("publish", "back.here", "echo"))}
        await remote.stop()
    spans = exporter.get_finished_spans()
    remote_spans = read_spans(path)

    def remote_one(name: str, kind: str) -> dict[str, Any]:
        found = [s for s in remote_spans if s["name"] == name and s["kind"] == kind]
        assert len(found) == 1, (name, kind, remote_spans)
        return found[0]

    publish = one(spans, "publish news.eu")
    process = remote_one("process /user/remote", "CONSUMER")
    publish_back = remote_one("publish back.here", "PRODUCER")
    processed_back = one(spans, "process /user/back")
    assert publish.kind is trace.SpanKind.PRODUCER and publish.parent is None
    assert process["parent_id"] == span_id(publish)  # no span of the stand-in between
    assert publish_back["parent_id"] == process["span_id"]
    assert parent_of(processed_back) == publish_back["span_id"]
    sends = [s for s in remote_spans if s["name"] == "send /user/report"]
    send = next(s for s in sends if s["parent_id"] == process["span_id"])
    reports = by_name(spans, "process /user/report")
    reported = [s for s in reports if parent_of(s) == send["span_id"]]
    assert len(reported) == 1
    assert {process["trace_id"], publish_back["trace_id"], send["trace_id"]} == {trace_id(publish)}
    assert trace_id(processed_back) == trace_id(reported[0]) == trace_id(publish)


async def test_concurrent_asks_with_cancellations(
    exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 concurrent asks, some cancelled at random: no "Failed to detach
    context" error, and each SERVER span's parent is its own CLIENT span."""

    class Echo(actors.Actor):
        async def receive(self, message: Any) -> Any:
            if message % 3 == 0:
                await anyio.lowlevel.checkpoint()  # inside the handler
            return message

    rng = random.Random(7)
    caplog.set_level(logging.DEBUG, logger="opentelemetry.context")
    async with actors.ActorSystem() as system:
        echo = await system.spawn(Echo, name="echo", mailbox=actors.Mailbox(capacity=2000))

        async def one_ask(n: int, scope_cancel: bool) -> None:
            with anyio.CancelScope() as scope:
                if scope_cancel:
                    scope.cancel()
                assert await echo.ask(n) == n

        async with anyio.create_task_group() as group:
            for n in range(1000):
                group.start_soon(one_ask, n, rng.random() < 0.2)
        await echo.stop()
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]
    spans = exporter.get_finished_spans()
    clients = {span_id(s): s for s in spans if s.kind is trace.SpanKind.CLIENT}
    servers = [s for s in spans if s.kind is trace.SpanKind.SERVER]
    assert servers
    for server in servers:
        client = clients[parent_of(server)]  # type: ignore[index]
        assert trace_id(client) == trace_id(server)
    assert len({trace_id(s) for s in clients.values()}) == len(clients)


async def test_nothing_is_created_when_not_instrumented() -> None:
    class Counting(TracerProvider):
        calls = 0

        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            Counting.calls += 1
            return super().get_tracer(*args, **kwargs)

    from actors._topics import LocalBroker

    plain = (actors.ActorRef.tell, actors.ActorRef.tell_nowait, actors.ActorRef.ask)
    plain_publish = LocalBroker.publish
    provider = Counting()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument(provider)
    assert actors.ActorRef.tell is not plain[0]
    assert LocalBroker.publish is not plain_publish
    tracing.uninstrument()
    assert not tracing.instrumented()
    # The plain methods are back: an untraced tell or ask tests nothing.
    assert (actors.ActorRef.tell, actors.ActorRef.tell_nowait, actors.ActorRef.ask) == plain
    assert LocalBroker.publish is plain_publish
    async with actors.ActorSystem() as system:
        leaf = await system.spawn(Leaf, name="leaf")
        await leaf.tell("x")
        leaf.tell_nowait("y")
        assert await leaf.ask("z") == "z"
        system.subscribe("news.*", leaf)
        async with system.subscription("news.>") as news:
            assert await system.publish("news.eu", "w") == 2
            assert await news.receive() == "w"
    assert exporter.get_finished_spans() == ()
    assert Counting.calls == 1  # the instrument() above, nothing since
    provider.shutdown()


@pytest.mark.usefixtures("no_orphans")
async def test_an_ask_through_a_process_actor_is_one_trace(
    exporter: InMemorySpanExporter, placement: actors.Subprocess, tmp_path: Path
) -> None:
    """parent -> (process) front -> nested ask and tell back to a parent
    actor: one trace, each span the child of the one that sent it; the
    child's spans come from the exporter its initializer set up."""
    path = str(tmp_path / "child-spans.jsonl")
    child = dataclasses.replace(placement, initializer=functools.partial(export_to, path))
    told = anyio.Event()
    async with actors.ActorSystem() as system:
        leaf = await system.spawn(TracedLeaf, told, name="leaf")
        front = await system.spawn(Front, name="front", placement=child)
        assert await front.ask((leaf, "hi")) == "hi"
        await told.wait()
        await front.stop()
    spans = exporter.get_finished_spans()
    remote = read_spans(path)

    def remote_one(name: str, kind: str) -> dict[str, Any]:
        found = [s for s in remote if s["name"] == name and s["kind"] == kind]
        assert len(found) == 1, (name, kind, remote)
        return found[0]

    client = kind(spans, "ask /user/front", trace.SpanKind.CLIENT)
    server = remote_one("ask /user/front", "SERVER")
    inner_client = remote_one("ask /user/leaf", "CLIENT")
    send = remote_one("send /user/leaf", "PRODUCER")
    inner_server = kind(spans, "ask /user/leaf", trace.SpanKind.SERVER)
    process = one(spans, "process /user/leaf")
    assert client.parent is None
    assert server["parent_id"] == span_id(client)
    assert inner_client["parent_id"] == server["span_id"]
    assert send["parent_id"] == server["span_id"]
    assert parent_of(inner_server) == inner_client["span_id"]
    assert parent_of(process) == send["span_id"]
    # The spawn (an ask of the child's host) is a trace of its own.
    trace_ids = {trace_id(span) for span in spans if "host" not in span.name}
    trace_ids |= {span["trace_id"] for span in remote if "host" not in span["name"]}
    assert trace_ids == {trace_id(client)}


@pytest.mark.usefixtures("no_orphans")
async def test_an_ask_queued_while_a_process_actor_starts_keeps_its_trace(
    exporter: InMemorySpanExporter, placement: actors.Subprocess, tmp_path: Path
) -> None:
    """An ask that waited in the stand-in's mailbox (sent before the child
    was up) is handled over there in its asker's trace, as a direct ask."""
    path = str(tmp_path / "child-spans.jsonl")
    child = dataclasses.replace(placement, initializer=functools.partial(export_to, path))
    async with actors.ActorSystem() as system:
        leaf = await system.spawn(TracedLeaf, name="leaf")
        front = system.spawn_nowait(Front, name="front", placement=child)
        assert await front.ask((leaf, "early"), timeout=30) == "early"
        await front.stop()
    spans = exporter.get_finished_spans()
    remote = read_spans(path)
    client = kind(spans, "ask /user/front", trace.SpanKind.CLIENT)
    (server,) = [s for s in remote if s["name"] == "ask /user/front" and s["kind"] == "SERVER"]
    assert server["parent_id"] == span_id(client)
    assert server["trace_id"] == trace_id(client)
    inner = kind(spans, "ask /user/leaf", trace.SpanKind.SERVER)
    assert trace_id(inner) == trace_id(client)


async def test_a_restart_is_a_span_event_of_the_supervisor(
    exporter: InMemorySpanExporter,
) -> None:
    from supervision import ChildSpec, Supervisor

    class Crasher(actors.Actor):
        def __init__(self, starts: list[actors.ActorRef], restarted: anyio.Event) -> None:
            self.starts = starts
            self.restarted = restarted

        async def on_start(self) -> None:
            self.starts.append(self.ref)
            if len(self.starts) == 2:
                self.restarted.set()

        async def receive(self, message: Any) -> Any:
            raise ValueError("crash on purpose")

    starts: list[actors.ActorRef] = []
    restarted = anyio.Event()
    async with actors.ActorSystem() as system:
        sup = await system.spawn(
            Supervisor, [ChildSpec(Crasher, starts, restarted, name="c")], name="sup"
        )
        await starts[0].tell("crash")
        await restarted.wait()
        await sup.stop()
    span = one(exporter.get_finished_spans(), "restart /user/sup")
    (event,) = span.events
    assert event.name == "restart"
    assert event.attributes is not None
    assert event.attributes["actors.child"] == "c"
    assert event.attributes["actors.reason"] == "ValueError"


async def test_a_durable_publish_and_its_push_consumer_are_in_the_trace(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """ask -> handler publishes to a durable stream -> a Push consumer handles
    it: the consumer's span is a child of the publish span, stored with the
    message."""
    from actors import durable

    got: list[Any] = []
    handled = anyio.Event()

    class Billing(actors.Actor):
        async def receive(self, message: Any) -> Any:
            got.append(message.data)
            handled.set()

    class Front(actors.Actor):
        async def receive(self, message: Any) -> Any:
            stream = await self.context.system.streams.get("ORDERS")
            return await stream.publish("orders.a", message)

    store = durable.SQLiteStore(tmp_path / "s.db")
    async with actors.ActorSystem(store=store) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        await orders.consumer("billing")
        await system.spawn(durable.Push, Billing, durable=("ORDERS", "billing"), name="billing")
        front = await system.spawn(Front, name="front")
        assert await front.ask("order 1") == 1
        await handled.wait()
    assert got == ["order 1"]  # the user's message, never the stored wrapper
    spans = exporter.get_finished_spans()
    client = kind(spans, "ask /user/front", trace.SpanKind.CLIENT)
    server = kind(spans, "ask /user/front", trace.SpanKind.SERVER)
    publish = one(spans, "publish orders.a")
    process = one(spans, "process /user/billing")
    assert publish.kind is trace.SpanKind.PRODUCER
    assert parent_of(server) == span_id(client)
    assert parent_of(publish) == span_id(server)
    assert parent_of(process) == span_id(publish)
    assert trace_id(process) == trace_id(client)


async def test_durable_fetches_join_their_publishes_traces(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    """Messages published with stream.publish (from a handler), in a
    transaction and with publish_many, then fetched by a pull consumer: each
    is handled in a CONSUMER span, a child of its publish span, that ends
    when it is settled (a nak is an error)."""
    from actors import durable

    class Front(actors.Actor):
        async def receive(self, message: Any) -> Any:
            stream = await self.context.system.streams.get("ORDERS")
            return await stream.publish("orders.a", message)

    store = durable.SQLiteStore(tmp_path / "s.db")
    async with actors.ActorSystem(store=store) as system:
        orders = await system.streams.create("ORDERS", subjects=["orders.>"])
        billing = await orders.consumer("billing")
        front = await system.spawn(Front, name="front")
        assert await front.ask("plain") == 1
        async with system.streams.transaction() as tx:
            await tx.publish("orders.b", "in a transaction")
        await orders.publish_many([("orders.c", "batch 1"), ("orders.c", "batch 2")])
        got = await billing.fetch(10)
        assert [m.data for m in got] == ["plain", "in a transaction", "batch 1", "batch 2"]
        assert not [s for s in exporter.get_finished_spans() if s.name.startswith("process")]
        await got[0].ack()
        assert await got[1].nak(error="not now") == "nak"
        await billing.ack(got[2:])
    spans = exporter.get_finished_spans()
    server = kind(spans, "ask /user/front", trace.SpanKind.SERVER)
    plain, in_tx, batch = (
        one(spans, f"publish {name}") for name in ("orders.a", "orders.b", "ORDERS")
    )
    assert parent_of(plain) == span_id(server)
    assert in_tx.parent is None  # published outside any span
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 2
    for publish in (plain, in_tx, batch):
        assert publish.kind is trace.SpanKind.PRODUCER
    handled = one(spans, "process orders.a")
    assert parent_of(handled) == span_id(plain)
    assert trace_id(handled) == trace_id(server)
    assert handled.kind is trace.SpanKind.CONSUMER
    assert handled.status.status_code is trace.StatusCode.UNSET
    assert handled.attributes is not None
    assert handled.attributes["messaging.consumer.group.name"] == "billing"
    naked = one(spans, "process orders.b")
    assert parent_of(naked) == span_id(in_tx)
    assert naked.status.status_code is trace.StatusCode.ERROR
    assert (naked.attributes or {})["error.type"] == "nak"
    assert [parent_of(s) for s in by_name(spans, "process orders.c")] == [span_id(batch)] * 2


def test_missing_api_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"structured-actors\[otel\]"):
        tracing.instrument()
    assert not tracing.instrumented()


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from nats_kit import nats_server

    with nats_server(tmp_path_factory.mktemp("nats"), jetstream=False) as server:
        yield server


@pytest.mark.usefixtures("no_orphans")
async def test_one_trace_through_a_process_actor_a_cluster_node_and_a_durable_topic(
    exporter: InMemorySpanExporter, nats: Any, tmp_path: Path
) -> None:
    """An ask of a process actor of node a, which asks an actor of node b,
    which publishes to b's durable stream, handled by a Push consumer: one
    trace, each span below the one that caused it."""
    from tcp_kit import SECRET

    from actors import durable
    from actors.cluster import NatsCluster

    handled = anyio.Event()

    class Billing(actors.Actor):
        async def receive(self, message: Any) -> Any:
            handled.set()

    class Publisher(actors.Actor):
        async def receive(self, message: Any) -> Any:
            if message != "told":  # Front tells after its ask
                stream = await self.context.system.streams.get("ORDERS")
                return await stream.publish("orders.a", message)
            return None

    path = str(tmp_path / "child-spans.jsonl")
    child = actors.Subprocess(initializer=functools.partial(export_to, path))
    cluster = NatsCluster([nats.url], name="traced", secret=SECRET)
    store = durable.SQLiteStore(tmp_path / "s.db")
    async with (
        actors.ActorSystem("a", cluster=cluster) as a,
        actors.ActorSystem("b", cluster=cluster, store=store) as b,
    ):
        orders = await b.streams.create("ORDERS", subjects=["orders.>"])
        await orders.consumer("billing")
        await b.spawn(durable.Push, Billing, durable=("ORDERS", "billing"), name="billing")
        b.registry.register("publisher", await b.spawn(Publisher, name="publisher"))
        publisher = await a.cluster.whereis("b", "publisher")
        assert publisher is not None
        front = await a.spawn(Front, name="front", placement=child)
        with anyio.fail_after(30):
            assert await front.ask((publisher, "order 1")) == 1
            await handled.wait()
        await front.stop()
    spans = exporter.get_finished_spans()
    remote = read_spans(path)
    parents = {span_id(s): parent_of(s) for s in spans}
    parents |= {s["span_id"]: s["parent_id"] for s in remote}

    def below(span: int, ancestor: int) -> bool:
        current: int | None = span
        while current is not None:
            if current == ancestor:
                return True
            current = parents.get(current)
        return False

    def remote_one(name: str, kind: str) -> dict[str, Any]:
        found = [s for s in remote if s["name"] == name and s["kind"] == kind]
        assert len(found) == 1, (name, kind, remote)
        return found[0]

    client = kind(spans, "ask /user/front", trace.SpanKind.CLIENT)
    server = remote_one("ask /user/front", "SERVER")
    inner_client = remote_one("ask /user/publisher", "CLIENT")
    inner_server = kind(spans, "ask /user/publisher", trace.SpanKind.SERVER)
    publish = one(spans, "publish orders.a")
    process = one(spans, "process /user/billing")
    assert client.parent is None
    assert server["parent_id"] == span_id(client)
    assert inner_client["parent_id"] == server["span_id"]
    assert below(span_id(inner_server), inner_client["span_id"])  # across node a to b
    assert parent_of(publish) == span_id(inner_server)
    assert parent_of(process) == span_id(publish)
    assert {trace_id(s) for s in (inner_server, publish, process)} == {trace_id(client)}


async def test_a_publish_reaching_another_node_is_one_trace(
    exporter: InMemorySpanExporter, nats: Any
) -> None:
    """A publish on node a, to a subscriber and a group member on node b (a
    NATS subject and queue group): each delivery on b is handled in a span
    whose parent is the publish span on a."""
    from tcp_kit import SECRET

    from actors.cluster import NatsCluster

    inbox: actors.Channel[tuple[str, Any]] = actors.Channel(math.inf)
    cluster = NatsCluster([nats.url], name="traced-topics", secret=SECRET)
    async with (
        actors.ActorSystem("a", cluster=cluster) as a,
        actors.ActorSystem("b", cluster=cluster) as b,
    ):
        plain = await b.spawn(Recorder, inbox, name="plain")
        member = await b.spawn(Recorder, inbox, name="member")
        b.subscribe("orders.*", plain)
        b.subscribe("orders.*", member, group="workers")
        await b.cluster.flush()
        with anyio.fail_after(30):
            assert await a.publish("orders.eu", "order 1") == 0  # none on a itself
            got = sorted([await inbox.receive() for _ in range(2)])
        assert got == [("/user/member", "order 1"), ("/user/plain", "order 1")]
    spans = exporter.get_finished_spans()
    publish = one(spans, "publish orders.eu")
    for path in ("/user/plain", "/user/member"):
        process = one(spans, f"process {path}")
        assert parent_of(process) == span_id(publish)
        assert trace_id(process) == trace_id(publish)
