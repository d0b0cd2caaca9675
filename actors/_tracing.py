"""OpenTelemetry spans for tell, ask and publish (the state behind
:mod:`actors.tracing`).

Until :func:`actors.tracing.instrument` is called nothing is imported from
OpenTelemetry and nothing is created: ``ActorRef.tell``, ``tell_nowait``,
``ask`` and ``LocalBroker.publish`` are the plain ones (instrument puts
traced twins in their place, as
OpenTelemetry's instrumentation libraries wrap what they trace), and the
other paths (a process's peer, a durable publish, a cell loop's dispatch)
test one module-level value, :data:`tracer`. When it is set:

- a tell starts a PRODUCER span ``send <path>`` and puts a :class:`Traced`
  wrapper (the message and the span's context) in the mailbox; the actor's
  loop unwraps it and handles the message in a CONSUMER span
  ``process <path>``, a child of the producer (one message at a time, as
  the messaging conventions recommend for single-message processing);
- an ask starts a CLIENT span ``ask <path>`` held by its envelope
  (:class:`TracedAsk`), ended with the outcome as status when it is
  answered or given up; the actor handles it in a SERVER span, its child;
- a publish starts a PRODUCER span ``publish <topic>`` and delivers one
  :class:`Traced` wrapper with its context to every subscriber: an actor
  handles it as a told message, a pull subscription unwraps it;
- across a process boundary the context travels as W3C trace context in
  the envelope's headers (:func:`inject`, :func:`extract`); a process
  actor's stand-in passes a wrapper on as it is.

The handler runs with its span current, so what it tells or asks is a child.

# Invariants:
# - ``tracer`` is None, or instrument() imported the API and set ``_api``.
# - A Traced wrapper is only in a mailbox, a backlog, a pull subscription's
#   channel or a remote subscriber's queue: the cell loop, the subscription,
#   a RemoteRef's tell and dead letters unwrap it, so users never see it.
# - A TracedAsk's span is ended exactly once (``span`` is None after), by
#   its answer or by its asker giving up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._ask import DROPPED, ERROR, FAILED, STOPPED, UNHANDLED, Ask, Outcome

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

#: The tracer while instrumented, else None: the one value hot paths test.
tracer: Tracer | None = None

#: ``opentelemetry.trace``, ``.propagate`` and ``.context`` while instrumented.
_api: Any = None

SYSTEM: Final = "actors"

_OUTCOME_ERRORS: Final = {
    STOPPED: "ActorStopped",
    FAILED: "ActorFailed",
    DROPPED: "MailboxFull",
    UNHANDLED: "UnhandledMessage",
}


class Traced:
    """A message and the trace context it was sent in, in a mailbox."""

    __slots__ = ("context", "message")

    def __init__(self, message: Any, context: Context | None) -> None:
        self.message = message
        self.context = context


def unwrap(message: Any) -> Any:
    """The user's message (or ask envelope) inside a possible wrapper."""
    return message.message if type(message) is Traced else message


def _attributes(destination: str, operation: str, kind: str) -> dict[str, str]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": destination,
        "messaging.operation.type": kind,
        "messaging.operation.name": operation,
    }


def start_send(destination: str) -> tuple[Span, Context]:
    """A PRODUCER span for a tell to ``destination``, and the context to send."""
    assert tracer is not None
    span = tracer.start_span(
        f"send {destination}",
        kind=_api.trace.SpanKind.PRODUCER,
        attributes=_attributes(destination, "send", "send"),
    )
    return span, _api.trace.set_span_in_context(span)


def start_publish(topic: str) -> Span:
    """A PRODUCER span for a publish to ``topic``; deliveries are its children."""
    assert tracer is not None
    return tracer.start_span(
        f"publish {topic}",
        kind=_api.trace.SpanKind.PRODUCER,
        attributes=_attributes(topic, "publish", "send"),
    )


def start_process(destination: str, context: Context, consumer: str, seq: int) -> Span:
    """A CONSUMER span ``process <destination>`` for a durable message that
    the caller settles later (a pull consumer's), with the message's
    publish span as parent; not current anywhere."""
    assert tracer is not None
    attributes = _attributes(destination, "process", "process")
    attributes["messaging.consumer.group.name"] = consumer
    attributes["messaging.message.id"] = str(seq)
    return tracer.start_span(
        f"process {destination}",
        context=context,
        kind=_api.trace.SpanKind.CONSUMER,
        attributes=attributes,
    )


def context_of(span: Span) -> Context:
    """The context to send a message in, with ``span`` as its parent."""
    context: Context = _api.trace.set_span_in_context(span)
    return context


def received(destination: str, context: Context | None) -> None:
    """A CONSUMER span ``receive <destination>``, started and ended at once:
    a pull subscription took a message published in ``context``."""
    assert tracer is not None
    tracer.start_span(
        f"receive {destination}",
        context=context,
        kind=_api.trace.SpanKind.CONSUMER,
        attributes=_attributes(destination, "receive", "receive"),
    ).end()


def failed(span: Span, error: BaseException | str, description: str = "") -> None:
    """Mark ``span`` as ended by ``error`` (an exception, or the name of
    what happened) before it ends."""
    if isinstance(error, BaseException):
        error, description = type(error).__name__, repr(error)
    span.set_attribute("error.type", error)
    span.set_status(_api.trace.Status(_api.trace.StatusCode.ERROR, description or error))


def use(span: Span) -> Any:
    """Make ``span`` current in this task (a context manager), without ending it."""
    return _api.trace.use_span(span, end_on_exit=False)


class TracedAsk(Ask):
    """An ask envelope that holds its CLIENT span and ends it with the outcome."""

    __slots__ = ("span",)

    def __init__(self, message: Any, destination: str) -> None:
        super().__init__(message)
        assert tracer is not None
        self.span: Span | None = tracer.start_span(
            f"ask {destination}",
            kind=_api.trace.SpanKind.CLIENT,
            attributes=_attributes(destination, "ask", "send"),
        )

    def context(self) -> Context:
        """The context the question travels in (its CLIENT span's)."""
        context: Context = _api.trace.set_span_in_context(self.span or _api.trace.INVALID_SPAN)
        return context

    def _end(self, error: str | None, description: str = "") -> None:
        span, self.span = self.span, None
        if span is None:
            return
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(_api.trace.Status(_api.trace.StatusCode.ERROR, description or error))
        span.end()

    def put(self, value: Any) -> bool:
        if not super().put(value):
            return False
        if type(value) is Outcome:
            if value.kind == ERROR:
                error = value.error
                self._end(type(error).__name__, repr(error))
            else:
                self._end(_OUTCOME_ERRORS.get(value.kind, value.kind), repr(value.error or ""))
        else:
            self._end(None)
        return True

    def close(self) -> None:
        super().close()
        if not self.answered:
            self._end("cancelled", "the asker gave up before an answer")

    def result(self, path: str, timeout: float | None) -> Any:
        if not self.answered:
            self._end("AskTimeout", f"no answer within {timeout} s")
        return super().result(path, timeout)


def handling(destination: str, context: Context | None, ask: bool) -> Any:
    """The CONSUMER (tell) or SERVER (ask) span around handling one message,
    as a context manager that makes it current: what the handler sends is
    its child. Entered and left in the actor's own task, so its context is
    detached where it was attached (never across an async generator)."""
    assert tracer is not None
    trace = _api.trace
    if ask:
        name, kind, operation = f"ask {destination}", trace.SpanKind.SERVER, "ask"
    else:
        name, kind, operation = f"process {destination}", trace.SpanKind.CONSUMER, "process"
    return tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=_attributes(destination, operation, "process")
    )


def headers_of(span: Span) -> dict[str, str]:
    """``span``'s context as envelope headers."""
    return inject(_api.trace.set_span_in_context(span))


def inject(context: Context) -> dict[str, str]:
    """``context`` as envelope headers (W3C ``traceparent``, ``tracestate``)."""
    headers: dict[str, str] = {}
    _api.propagate.inject(headers, context=context)
    return headers


def onward(message: Any) -> dict[str, str]:
    """Envelope headers for passing ``message`` on to another process: the
    context it came with in a :class:`Traced` wrapper, else the current
    one while tracing, else none."""
    if type(message) is Traced:
        return inject(message.context) if tracer is not None and message.context else {}
    if tracer is None:
        return {}
    return inject(_api.context.get_current())


def extract(headers: dict[str, str]) -> Context:
    """The context that :func:`inject` put in ``headers``."""
    return _api.propagate.extract(headers)  # type: ignore[no-any-return]


def event(name: str, attributes: dict[str, Any], owner: str) -> None:
    """Add an event to the current span, or to a short span of ``owner``'s
    when none is recording (a supervisor handling a child's failure)."""
    if tracer is None:
        return
    span = _api.trace.get_current_span()
    if span.is_recording():
        span.add_event(name, attributes)
        return
    with tracer.start_as_current_span(
        f"{name} {owner}", attributes={"actors.path": owner}
    ) as short:
        short.add_event(name, attributes)


def instrument(tracer_provider: Any = None) -> None:
    """Trace tell, ask and publish in every actor system of this process.

    Calling it again replaces the tracer (for another provider). Child
    processes started afterwards (``Subprocess``) instrument themselves too.

    Args:
        tracer_provider: an ``opentelemetry.trace.TracerProvider``; ``None``:
            the global one (``opentelemetry.trace.set_tracer_provider``).

    Raises:
        ImportError: the OpenTelemetry API is not installed; install it with
            ``pip install 'structured-actors[otel]'``.

    Examples:
        >>> from actors import tracing
        >>> tracing.instrument()
        >>> tracing.instrumented()
        True
        >>> tracing.uninstrument()
    """
    global tracer, _api
    try:
        from opentelemetry import context, propagate, trace
    except ImportError:
        raise ImportError(
            "actors.tracing needs the OpenTelemetry API: pip install 'structured-actors[otel]'"
        ) from None
    from . import __version__

    api = _Api(trace, propagate, context)
    new = trace.get_tracer(
        "actors", __version__, tracer_provider, schema_url="https://opentelemetry.io/schemas/1.26.0"
    )
    _api = api
    tracer = new
    for cls, traced, _ in _twins():
        for name, method in traced.items():
            setattr(cls, name, method)


def uninstrument() -> None:
    """Stop tracing: tells and asks create nothing again. Spans already
    started end as usual.

    Examples:
        >>> from actors import tracing
        >>> tracing.uninstrument()
        >>> tracing.instrumented()
        False
    """
    global tracer
    tracer = None
    for cls, _, untraced in _twins():
        for name, method in untraced.items():
            setattr(cls, name, method)


def _twins() -> list[tuple[type, dict[str, Any], dict[str, Any]]]:
    # The methods instrument() swaps, by class: (class, traced, plain).
    from ._ref import TRACED, UNTRACED, ActorRef
    from ._topics import TRACED as TOPICS_TRACED
    from ._topics import UNTRACED as TOPICS_UNTRACED
    from ._topics import LocalBroker

    return [(ActorRef, TRACED, UNTRACED), (LocalBroker, TOPICS_TRACED, TOPICS_UNTRACED)]


def instrumented() -> bool:
    """Whether :func:`instrument` is in effect.

    Examples:
        >>> from actors import tracing
        >>> tracing.instrumented()
        False
    """
    return tracer is not None


class _Api:
    __slots__ = ("context", "propagate", "trace")

    def __init__(self, trace: Any, propagate: Any, context: Any) -> None:
        self.trace = trace
        self.propagate = propagate
        self.context = context


def outgoing(destination: str, message: Any) -> tuple[Any, dict[str, str], Span | None]:
    """For a tell to another process: the message to pickle, its envelope
    headers, and the PRODUCER span to end once sent (None if the message
    came with its context, or tracing is off)."""
    span = None
    if type(message) is Traced:
        context = message.context
        message = message.message
    elif tracer is not None:
        span, context = start_send(destination)
    else:
        return message, {}, None
    if tracer is None or context is None:
        return message, {}, span
    return message, inject(context), span


def incoming(message: Any, headers: dict[str, str]) -> Any:
    """A message from another process, wrapped with the context its
    envelope's headers carry (as is, without a context or while off)."""
    if tracer is None or "traceparent" not in headers:
        return message
    return Traced(message, extract(headers))


class Stored:
    """A durable message published while tracing, as pickled into the store:
    the message and its publish span's context as W3C headers. Kept inside
    the stored data, so the store's schema is the same with tracing or
    without (and files written before work as they are)."""

    __slots__ = ("headers", "message")

    def __init__(self, message: Any, headers: dict[str, str]) -> None:
        self.message = message
        self.headers = headers


def stored(value: Any) -> tuple[Any, dict[str, str] | None]:
    """A durable message as unpickled: the message, and the headers it was
    published with (None if it was published without tracing)."""
    if type(value) is Stored:
        return value.message, value.headers
    return value, None
