"""OpenTelemetry traces of tell, ask and publish (the ``otel`` extra).

``pip install 'structured-actors[otel]'`` adds the OpenTelemetry API (only
the API: the application chooses and configures the SDK and its exporters,
as with any instrumented library). Then :func:`instrument` turns tracing on
for every actor system of the process:

- ``tell``: a PRODUCER span ``send <path>``; the actor handles the message in
  a CONSUMER span ``process <path>``, its child;
- ``ask``: a CLIENT span ``ask <path>`` whose status is the outcome (an
  ``AskTimeout``, ``ActorFailed``, ``ActorStopped``, ``ConnectionLost``...
  is an error, named by the ``error.type`` attribute); the actor handles it
  in a SERVER span, its child;
- ``publish`` (``system.publish``, ``context.publish``): a PRODUCER span
  ``publish <topic>``; each subscriber actor handles the message in a
  CONSUMER span ``process <path>``, its child (one per plain subscriber,
  one per group), and a pull subscription that takes it makes a CONSUMER
  span ``receive <pattern>``, its child, ended at once;
- a durable ``stream.publish`` or ``tx.publish`` (in a transaction): a
  PRODUCER span ``publish <subject>`` whose context is stored with the
  message (``publish_many``: one span ``publish <stream>`` for the batch); a
  ``durable.Push`` actor handles each delivery in a CONSUMER span
  ``process <path>``, its child; a message taken with ``consumer.fetch()``
  or ``pull()`` has a CONSUMER span ``process <subject>``, its child, from
  the fetch until it is settled (a ``nak`` or ``term`` is an error);
- attributes ``messaging.system = "actors"``,
  ``messaging.destination.name`` (the actor's path or the topic),
  ``messaging.operation.type`` and ``messaging.operation.name``.

A handler runs with its span current, so what it tells or asks (or any other
instrumented library it calls) joins the same trace; to an actor in another
process the trace context travels in the message's envelope (W3C
``traceparent``). A child process started while tracing is on calls
:func:`instrument` itself, after its ``Subprocess(initializer=...)``, which
is where it sets up its own tracer provider and exporter.

While not instrumented nothing is created, and ``ActorRef.tell``,
``tell_nowait``, ``ask`` and the in-process topics' publish are the plain
methods: :func:`instrument` puts traced twins in their place and
:func:`uninstrument` puts them back.

Examples:
    >>> from actors import tracing
    >>> tracing.instrumented()
    False
"""

from ._tracing import instrument as instrument
from ._tracing import instrumented as instrumented
from ._tracing import uninstrument as uninstrument

__all__ = ["instrument", "instrumented", "uninstrument"]


def _fix_modules() -> None:
    # As in ``actors``: tracebacks and docs name ``actors.tracing.X``.
    for name in __all__:
        globals()[name].__module__ = __name__


_fix_modules()
