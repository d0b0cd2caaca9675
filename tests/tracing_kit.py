"""Helpers for the tracing tests, importable by child processes: an
initializer that makes a child export its finished spans to a file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio

import actors


# --8<-- [start:export-to]
def export_to(path: str) -> None:
    """A ``Subprocess(initializer=...)`` (with ``functools.partial``): this
    process's spans go to ``path``, one JSON object a line, as each ends."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class FileExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            with open(path, "a") as file:
                for span in spans:
                    assert span.context is not None
                    record = {
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": span.context.trace_id,
                        "span_id": span.context.span_id,
                        "parent_id": span.parent.span_id if span.parent is not None else None,
                        "status": span.status.status_code.name,
                        "attributes": dict(span.attributes or {}),
                    }
                    file.write(json.dumps(record) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)


# --8<-- [end:export-to]


def read_spans(path: str) -> list[dict[str, Any]]:
    """What :func:`export_to` wrote."""
    with open(path) as file:
        return [json.loads(line) for line in file]


class Front(actors.Actor):
    """Asks the ref it is given and tells it, from inside its handler."""

    async def receive(self, message: Any) -> Any:
        ref, value = message
        answer = await ref.ask(value)
        await ref.tell("told")
        return answer


class Leaf(actors.Actor):
    """Answers what it is asked; sets its event when told ``"told"``."""

    def __init__(self, told: anyio.Event | None = None) -> None:
        self.told = told

    async def receive(self, message: Any) -> Any:
        if message == "told" and self.told is not None:
            self.told.set()
        return message


class Subscriber(actors.Actor):
    """Subscribes to ``pattern``, then tells ``report`` ``"started"``; tells
    ``report`` each message it gets, after publishing ``value`` to ``topic``
    if the message is ``("publish", topic, value)``."""

    def __init__(self, pattern: str, report: actors.ActorRef) -> None:
        self.pattern = pattern
        self.report = report

    async def on_start(self) -> None:
        self.context.subscribe(self.pattern)
        await self.report.tell("started")  # after the subscription, on one connection

    async def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "publish":
            await self.context.publish(message[1], message[2])
        await self.report.tell(message)
