"""The exception hierarchy: one base, each subclass names what happened.

Where anyio has an exception with the same meaning, ours subclasses it too, so
code written against anyio streams keeps working.
"""

from __future__ import annotations

import anyio


class ActorsError(Exception):
    """Base class of every error this library raises.

    Examples:
        >>> issubclass(ChannelClosed, ActorsError)
        True
    """


class WouldBlock(ActorsError, anyio.WouldBlock):
    """A ``*_nowait`` operation could not complete at once.

    Also an ``anyio.WouldBlock``.

    Examples:
        >>> from actors import Channel
        >>> try:
        ...     Channel(1).receive_nowait()
        ... except WouldBlock:
        ...     print("empty")
        empty
    """


class ChannelClosed(ActorsError):
    """The channel is closed (base of the two concrete cases below).

    Examples:
        >>> from actors import Channel
        >>> ch = Channel(1)
        >>> ch.close()
        >>> try:
        ...     ch.send_nowait(1)
        ... except ChannelClosed:
        ...     print("closed")
        closed
    """


class ChannelDrained(ChannelClosed, anyio.EndOfStream):
    """Receive from a channel that is closed and has nothing left to give.

    Also an ``anyio.EndOfStream``.

    Examples:
        >>> from actors import Channel
        >>> ch = Channel(1)
        >>> ch.close()
        >>> try:
        ...     ch.receive_nowait()
        ... except ChannelDrained:
        ...     print("drained")
        drained
    """


class SendOnClosed(ChannelClosed, anyio.ClosedResourceError):
    """Send on a closed channel (where Go panics).

    Also an ``anyio.ClosedResourceError``.

    Examples:
        >>> from actors import Channel
        >>> ch = Channel(1)
        >>> ch.close()
        >>> try:
        ...     ch.send_nowait(1)
        ... except SendOnClosed:
        ...     print("send on closed")
        send on closed
    """


class MailboxFull(WouldBlock):
    """``tell_nowait`` found the mailbox full (overflow policy ``"fail"`` too).

    Also an ``anyio.WouldBlock``.

    Examples:
        >>> import anyio
        >>> issubclass(MailboxFull, anyio.WouldBlock)
        True
    """


class ActorStopped(ActorsError):
    """The actor stopped (or was already stopped) before it could answer.

    Examples:
        >>> issubclass(ActorStopped, ActorsError)
        True
    """


class ActorFailed(ActorsError):
    """Handling the message crashed the actor; ``__cause__`` is the original error.

    Examples:
        >>> issubclass(ActorFailed, ActorsError)
        True
    """


class AskTimeout(ActorsError, TimeoutError):
    """No reply came within the ``ask`` timeout. Also a ``TimeoutError``.

    Examples:
        >>> issubclass(AskTimeout, TimeoutError)
        True
    """


class UnhandledMessage(ActorsError):
    """The actor did not handle the message it was asked: its ``receive``
    returned ``self.unhandled(message)``. The actor is not failed; the
    message also became a dead letter.

    Examples:
        >>> import actors
        >>> class Strict(actors.Actor):
        ...     async def receive(self, message):
        ...         match message:
        ...             case "ping":
        ...                 return "pong"
        ...             case _:
        ...                 return self.unhandled(message)
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(Strict, name="strict")
        ...         try:
        ...             await ref.ask("pong")
        ...         except actors.UnhandledMessage as error:
        ...             return str(error)
        >>> print(actors.run(main))
        /user/strict did not handle str 'pong': its receive has no case for it
    """


class NameTaken(ActorsError):
    """The name is already used by a sibling actor or in the registry.

    Examples:
        >>> issubclass(NameTaken, ActorsError)
        True
    """


class NameLost(ActorsError):
    """A cluster-wide name's lease could not be renewed in time, so its
    node let it go: the ``reason`` of the named actor's end.

    A node that holds a name in a cluster renews its lease every third of
    the lease; one that has not renewed it by two thirds of the lease (cut
    off from NATS, or the name was taken over) fences itself: it stops
    answering for the name and ends the actor with this failure before the
    lease can expire and another node claim the name. A supervisor restarts
    the actor as for any failure (its ``register_as`` claims the name again).

    Examples:
        >>> issubclass(NameLost, ActorsError)
        True
    """


class SupervisorGaveUp(ActorsError):
    """A supervisor exceeded its restart intensity and stopped itself.

    Examples:
        >>> issubclass(SupervisorGaveUp, ActorsError)
        True
    """


class UnpicklableMessage(ActorsError, TypeError):
    """A message bound for another process cannot be pickled; nothing was sent.

    Also a ``TypeError``. The error names the message's type; its
    ``__cause__`` is what pickling raised.

    Examples:
        >>> issubclass(UnpicklableMessage, TypeError)
        True
    """


class MessageTooLarge(ActorsError, ValueError):
    """A message bound for another process or system is larger than a frame
    holds (256 MiB encoded); nothing was sent.

    Also a ``ValueError``. Send it in parts, or pass a reference to where the
    data is (a file, a durable stream).

    Examples:
        >>> issubclass(MessageTooLarge, ValueError)
        True
    """


#: What fails a message before any of it is sent to another process.
UNSENDABLE = (UnpicklableMessage, MessageTooLarge)


def unsent_reason(error: BaseException) -> str:
    """A dead letter's reason for a message that ``error`` (one of
    :data:`UNSENDABLE`) kept from going on."""
    kind = "unpicklable" if isinstance(error, UnpicklableMessage) else "too large"
    return f"{kind}: {error}"


class AuthenticationError(ActorsError):
    """A peer could not be trusted, so the connection was refused or closed.

    Raised by the handshake when the peer does not prove it knows the shared
    secret (or a cookie file is readable by others), and by a connection
    when a frame fails its MAC or arrives out of sequence (tampered with,
    replayed or reordered). Nothing from such a peer or frame is unpickled.

    Examples:
        >>> issubclass(AuthenticationError, ActorsError)
        True
    """


class IncompatiblePeer(ActorsError):
    """The peer runs a different Python, cloudpickle, actors or wire protocol.

    Pickles are only portable between the same versions, so the handshake
    refuses such a peer before anything is unpickled.

    Examples:
        >>> issubclass(IncompatiblePeer, ActorsError)
        True
    """


class ConnectionLost(ActorsError):
    """The process or connection that carried an ask died with the ask in flight.

    The message may or may not have been handled (at most once): retry only
    what is safe to do twice. Also the ``reason`` of a ``Terminated`` for an
    actor reached over a connection that broke.

    Examples:
        >>> issubclass(ConnectionLost, ActorsError)
        True
    """


class NodeDown(ConnectionLost):
    """A node of the cluster is down, or cannot be reached from this one.

    Its actors are out of reach: an ask in flight to one of them raises it
    (the message may or may not have been handled), an ask or a first tell
    to a node that is not there raises it at once, and a watcher of an actor
    there gets ``Terminated(ref, NodeDown(...))``, as Erlang's
    ``noconnection``. Refs to the node stay valid: the next use links again
    once the node is back (a restarted node's old actors are gone, though).

    Examples:
        >>> issubclass(NodeDown, ConnectionLost)
        True
    """


class ProcessExited(ActorsError):
    """The process an actor ran in ended: ``code`` is its exit status, the
    negative signal number if a signal killed it (``-9`` for ``kill -9``).

    The ``reason`` of the process actor's ``Terminated``; its supervisor
    counts it as a crash.

    Examples:
        >>> ProcessExited("process 12 was killed by SIGKILL", code=-9, pid=12).code
        -9
    """

    def __init__(self, message: str, *, code: int | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.pid = pid

    def __reduce__(self) -> tuple[object, ...]:
        return (_process_exited, (str(self), self.code, self.pid, type(self)))


def _process_exited(
    message: str, code: int | None, pid: int | None, kind: type[ProcessExited]
) -> ProcessExited:
    return kind(message, code=code, pid=pid)


class ProcessHung(ProcessExited):
    """The process missed its heartbeats (stopped, or a loop holding the GIL),
    so it was killed: ``code`` is how it then exited.

    Examples:
        >>> issubclass(ProcessHung, ProcessExited)
        True
    """


class RemoteError(ActorsError):
    """An exception raised in another process whose type cannot be imported
    here: its type's name, its text and the remote traceback.

    Examples:
        >>> str(RemoteError("mymodule.Oops: out of cheese"))
        'mymodule.Oops: out of cheese'
    """
