"""Errors of durable streams: each names what happened and what to do."""

from __future__ import annotations

from .._exceptions import ActorsError


class DurableError(ActorsError):
    """A durable stream operation was refused (the message says why and what to do).

    Examples:
        >>> issubclass(StreamNotFound, DurableError)
        True
    """


class StoreNotConfigured(DurableError):
    """The actor system has no store: durable streams need one.

    Examples:
        >>> issubclass(StoreNotConfigured, DurableError)
        True
    """


class StreamNotFound(DurableError, LookupError):
    """No stream of that name (or none whose subjects match a subject) exists.

    Examples:
        >>> issubclass(StreamNotFound, LookupError)
        True
    """


class SubjectNotTaken(DurableError, ValueError):
    """The stream no longer takes this subject: its subjects were changed
    (by another process, perhaps) since this handle read them. Internal: the
    handle rereads them and says so with this ``ValueError``."""


class ConsumerNotFound(DurableError, LookupError):
    """No durable consumer of that name exists on the stream.

    Examples:
        >>> issubclass(ConsumerNotFound, LookupError)
        True
    """
