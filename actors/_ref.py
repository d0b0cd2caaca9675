"""Actor references: plain, picklable addresses of one actor incarnation."""

from __future__ import annotations

import math
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Generic

import anyio

from . import _tracing
from ._ask import Ask, Outcome
from ._exceptions import ActorsError, MailboxFull, SendOnClosed
from ._go import current_owner
from ._messages import Terminated, describe
from ._typevars import M, R

if TYPE_CHECKING:
    from ._cell import Cell
    from ._system import ActorSystem

#: The system whose ``async with`` body is running; inside actor tasks the
#: running cell's system is used instead (see ``system_here``).
current_system: ContextVar[ActorSystem | None] = ContextVar("actors_current_system", default=None)


def check_thread(system: ActorSystem, what: str) -> None:
    """Raise before anything is touched if the caller is not in ``system``'s
    event loop thread: refs, mailboxes and channels are not thread-safe."""
    if threading.get_ident() != system._thread:
        raise ActorsError(
            f"{what} was called from thread {threading.current_thread().name!r}, "
            f"not the event loop thread of actor system {system.name!r}: actors "
            f"are not thread-safe; from other threads use "
            f"system.from_thread.tell/ask/stop/publish/run"
        )


def system_here() -> ActorSystem | None:
    """The system of the running actor, else of the enclosing ``async with``;
    unpickled refs resolve against it."""
    system: ActorSystem | None = getattr(current_owner.get(), "system", None)
    return system if system is not None else current_system.get()


class ActorRef(Generic[M, R]):
    """The address of one actor incarnation: tell it, ask it, stop it.

    Refs compare and hash by incarnation: a restarted actor has a new ref, and
    a ref to a stopped incarnation never reaches its successor (its messages
    become dead letters). A ref pickles as a plain address (system name, path
    and incarnation id) and resolves again inside the same system.

    Examples:
        >>> import actors
        >>> class Echo(actors.Actor):
        ...     async def receive(self, message):
        ...         return message
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ref = await system.spawn(Echo, name="echo")
        ...         return ref.path, await ref.ask("hi")
        >>> actors.run(main)
        ('/user/echo', 'hi')
    """

    __slots__ = ("__weakref__", "_cell", "_path", "_system_name", "_uid")

    def __init__(self, cell: Cell | None, system_name: str, path: str, uid: int) -> None:
        self._cell = cell
        self._system_name = system_name
        self._path = path
        self._uid = uid

    @property
    def name(self) -> str:
        """The actor's name among its siblings."""
        return self._path.rsplit("/", 1)[-1]

    @property
    def path(self) -> str:
        """The actor's path from the root, e.g. ``/user/sup/worker-1``."""
        return self._path

    def __repr__(self) -> str:
        return f"<ActorRef {self._path} #{self._uid}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self._uid == other._uid and self._system_name == other._system_name

    def __hash__(self) -> int:
        return hash(self._uid)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_ref, (self._system_name, self._path, self._uid))

    def _resolve(self) -> Cell | None:
        cell = self._cell
        if cell is None:
            system = system_here()
            if system is None:
                raise ActorsError(
                    f"{self!r} was used outside its actor system "
                    f"{self._system_name!r}: use refs from code that runs inside "
                    f"`async with ActorSystem()` or inside an actor (from another "
                    f"thread: system.from_thread)"
                )
            if system.name != self._system_name:
                raise ActorsError(
                    f"{self!r} belongs to actor system {self._system_name!r}, "
                    f"not {system.name!r}: refs only work inside their own system"
                )
            cell = self._cell = system._cell_by_uid(self._uid)
        return cell

    # -- messaging ------------------------------------------------------------

    async def tell(self, message: M) -> None:
        """Send ``message``, waiting for room in the mailbox (backpressure).

        Never raises because the actor is gone: a message to a stopped actor
        becomes a :class:`DeadLetter`. With the ``"drop_*"`` overflow policies
        it never waits; with ``"fail"`` it raises :class:`MailboxFull`.

        Cancellation: atomic; a cancelled tell has queued nothing.

        Raises:
            MailboxFull: the mailbox is full and its policy is ``"fail"``.
        """
        cell = self._resolve()
        if cell is None:
            _dead_letter_unresolved(self, message)
            return
        if cell.remote is not None:  # an actor in another process
            await cell.remote.tell(message)
            return
        mailbox = cell.mailbox
        if mailbox.overflow == "block":
            try:
                user = mailbox._user
                if user._send_fast(message):
                    return
                if len(user._buffer) >= user._capacity and cell.is_current():
                    # Waiting for room in one's own mailbox would never end.
                    raise MailboxFull(
                        f"{self._path} told itself {describe(message)} with its "
                        f"mailbox full ({mailbox.capacity:g} messages): it would wait "
                        f"forever; use tell_nowait(), a goroutine, or a larger Mailbox"
                    )
                await user.send(message)
            except SendOnClosed:
                cell.dead_letter(message, "stopped")
        else:
            self._put_or_overflow(cell, message)

    def tell_nowait(self, message: M) -> None:
        """Send ``message`` if the mailbox has room, without waiting.

        Raises:
            MailboxFull: the mailbox is full (policy ``"block"`` or ``"fail"``;
                the drop policies drop instead).
            ActorsError: called from a thread that is not the system's event
                loop (use ``system.from_thread.tell``); nothing was sent.
        """
        cell = self._resolve()
        if cell is None:
            _dead_letter_unresolved(self, message)
            return
        check_thread(cell.system, f"{self!r}.tell_nowait()")
        if cell.remote is not None:
            cell.remote.tell_nowait(message)
            return
        self._put_or_overflow(cell, message)

    def _put_or_overflow(self, cell: Cell, message: Any) -> None:
        mailbox = cell.mailbox
        try:
            if mailbox.try_put(message):
                return
        except SendOnClosed:
            cell.dead_letter(message, "stopped")
            return
        policy = mailbox.overflow
        if policy == "drop_newest":
            cell.dead_letter(message, "mailbox full: dropped newest")
        elif policy == "drop_oldest":
            cell.dead_letter(mailbox.drop_oldest(), "mailbox full: dropped oldest")
            if not mailbox.try_put(message):  # pragma: no cover - room was just made
                cell.dead_letter(message, "mailbox full: dropped newest")
        else:
            raise MailboxFull(
                f"mailbox of {self._path} is full ({mailbox.capacity:g} messages) "
                f"and its overflow policy is {policy!r}: dropped nothing; retry "
                f"later, use `await tell()` to wait for room, or spawn it with "
                f"a larger Mailbox"
            )

    async def ask(self, message: M, timeout: float | None = 5.0) -> R:
        """Send ``message`` and wait for the value ``receive`` returns for it.

        Args:
            message: anything; it is not pickled in-process.
            timeout: seconds to wait for room in the mailbox and for the
                reply, in all (``None``: no limit).

        Returns:
            What the actor's ``receive`` returned.

        Raises:
            AskTimeout: no reply within ``timeout`` (also a ``TimeoutError``).
            ActorStopped: the actor stopped, or was already stopped, before it
                answered; raised as soon as that is known.
            ActorFailed: handling the message crashed the actor; the original
                exception is ``__cause__``.
            UnhandledMessage: the actor's ``receive`` returned
                ``self.unhandled(message)``.
            Exception: what the actor gave ``Reply.fail()`` for a reply it
                took with ``context.reply_later()``.
            MailboxFull: the mailbox is full and its policy does not wait.
            ValueError: ``timeout`` is not positive.
            ActorsError: an actor asked itself (that would deadlock).

        Cancellation: a cancelled or timed-out ask closes its reply slot; a late
        reply is dropped and counted (``statistics().late_replies``), never
        delivered elsewhere.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
        ):
            check_timeout(timeout)
        cell = self._resolve()
        if cell is not None and current_owner.get() is cell and cell.is_current():
            raise ActorsError(
                f"{self._path} asked itself {describe(message)}: an actor "
                f"handles one message at a time, so this would deadlock; call "
                f"the handling code directly or use tell()"
            )
        if cell is not None and cell.remote is not None:
            return await cell.remote.ask(message, timeout)  # type: ignore[no-any-return]
        envelope = Ask(message)
        try:
            if cell is not None and cell.mailbox._user._send_fast(envelope):
                left = math.inf if timeout is None else timeout  # queued at once
            elif cell is not None and timeout is not None and cell.mailbox.overflow == "block":
                left = await self._tell_within(cell, envelope, timeout)
            else:
                left = math.inf if timeout is None else timeout
                await self.tell(envelope)  # type: ignore[arg-type]  # the envelope of an M
            if not envelope.answered and left > 0:
                # The deadline is kept by the system's one timer for all asks.
                deadlines = None if left == math.inf or cell is None else cell.system._deadlines
                try:
                    await envelope.park(left, deadlines)
                finally:
                    envelope.unpark(deadlines)
        except BaseException:
            if envelope.answered and cell is not None:
                cell.system._late_reply()  # answered, but we were cancelled
            envelope.close()
            raise
        answer = envelope.value
        if envelope.answered and type(answer) is not Outcome:
            return answer  # type: ignore[no-any-return]  # the common case: an R
        return envelope.result(self._path, timeout)  # type: ignore[no-any-return]  # an R

    async def _tell_within(self, cell: Cell, envelope: Any, timeout: float) -> float:
        # Backpressure counts against an ask's timeout: a full mailbox of a
        # stuck actor must not make ask() wait forever. Returns the time left
        # for the reply; 0 if the envelope could not be queued in time (a
        # cancelled send queued nothing).
        try:
            if cell.mailbox.try_put(envelope):
                return timeout
        except SendOnClosed:
            cell.dead_letter(envelope, "stopped")
            return timeout
        deadline = anyio.current_time() + timeout
        with anyio.move_on_after(timeout):
            await self.tell(envelope)
            return max(deadline - anyio.current_time(), 0.0)
        return 0.0

    async def stop(self) -> None:
        """Stop the actor and wait until it is gone.

        The actor finishes the message in hand, stops its children, runs
        ``on_stop()``; queued messages become dead letters. Returns at once if
        it is already stopped. If it does not finish within its shutdown
        timeout it is cancelled. Called by the actor on itself or on one of
        its ancestors it only asks to stop, like ``context.stop()``: waiting
        would deadlock, since the stop waits for the message in hand.

        Cancellation: cancelling the wait does not cancel the stop.
        """
        cell = self._resolve()
        if cell is not None:
            if cell.is_current() or cell.is_ancestor_of_current():
                cell.request_stop()
            else:
                await cell.stop_and_wait()

    def stop_nowait(self) -> None:
        """Ask the actor to stop and return at once (Akka's
        ``context.stop``, Erlang's ``exit(Pid, shutdown)``).

        It stops as :meth:`stop` describes, and is cancelled if it takes
        longer than its shutdown timeout; ``await ref.stop()`` later waits
        for the end. Does nothing if it is already stopped; on an actor that
        is stopping itself it starts the shutdown timeout.

        Raises:
            ActorsError: called from a thread that is not the system's event
                loop (use ``system.from_thread.stop``).
        """
        cell = self._resolve()
        if cell is not None:
            check_thread(cell.system, f"{self!r}.stop_nowait()")
            cell.request_stop(timed=not (cell.is_current() or cell.is_ancestor_of_current()))

    @property
    def alive(self) -> bool:
        """Whether the incarnation has not ended yet (starting, running or
        stopping); cheap, and usable from any task of the system.

        Examples:
            >>> import actors
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         ref = await system.spawn(actors.Actor)
            ...         before = ref.alive
            ...         await ref.stop()
            ...         return before, ref.alive
            >>> actors.run(main)
            (True, False)
        """
        cell = self._resolve()
        return cell is not None and cell.state not in ("stopped", "failed")

    async def join(self) -> Terminated:
        """Wait until the actor is gone and return how it ended, from any task
        of the system (asyncio's ``await task``, Erlang's monitor).

        Returns:
            The :class:`Terminated` a watcher gets: ``reason`` is ``None`` for
            a normal stop, else the exception it failed with; ``killed`` is
            true if it was cancelled rather than stopped. At once if it has
            already ended (a ref that no longer resolves, e.g. unpickled
            after the end, gives ``reason=None``).

        Raises:
            ActorsError: called by the actor itself or one of its
                descendants: it ends only after them, so this would never
                return.

        Cancellation: cancelling the wait leaves the actor untouched.

        Examples:
            >>> import actors
            >>> class Crash(actors.Actor):
            ...     async def receive(self, message):
            ...         raise ValueError(message)
            >>> class Parent(actors.Actor):
            ...     async def on_child_failed(self, child, error):
            ...         pass  # handled: do not fail with it
            ...     async def receive(self, message):
            ...         child = await self.context.spawn(Crash)
            ...         await child.tell(message)
            ...         return child
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         parent = await system.spawn(Parent)
            ...         child = await parent.ask("bad input")
            ...         ended = await child.join()
            ...         return repr(ended.reason), ended.killed
            >>> actors.run(main)
            ("ValueError('bad input')", False)
        """
        cell = self._resolve()
        if cell is None:
            return Terminated(self, None)
        if current_owner.get() is cell or cell.is_ancestor_of_current():
            raise ActorsError(
                f"{self._path} cannot be joined from itself or its descendants: it "
                f"ends only after them; watch it, or join from another actor"
            )
        await cell.terminated.wait()
        return Terminated(self, cell.reason, cell.killed)

    async def kill(self) -> None:
        """Cancel the actor at once (Erlang's ``exit(Pid, kill)``) and wait
        until it is gone.

        The message in hand is abandoned (an ask gets :class:`ActorStopped`),
        ``on_stop`` is interrupted, children are cancelled too; queued messages
        become dead letters and watchers still get ``Terminated``. Prefer
        :meth:`stop`.
        """
        cell = self._resolve()
        if cell is not None and not cell.terminated.is_set():
            cell.kill()
            await cell.terminated.wait()


# -- while tracing --------------------------------------------------------------
# ``actors.tracing.instrument`` puts these in place of ActorRef.tell,
# tell_nowait and ask (and ``uninstrument`` puts the originals back), so that
# an untraced tell or ask does not test anything: at a million tells a second
# one test is a few percent (``python -m benchmarks.tracing``). A message
# already wrapped (``Traced``: an ask's envelope, a delivery that came with
# its context) goes on as it is.

_tell = ActorRef.tell
_tell_nowait = ActorRef.tell_nowait


async def _traced_tell(ref: ActorRef, message: Any) -> None:
    # Its PRODUCER span covers the send (and any wait for room); the message
    # travels in a Traced wrapper.
    if type(message) is _tracing.Traced:
        await _tell(ref, message)
        return
    span, context = _tracing.start_send(ref._path)
    try:
        await _tell(ref, _tracing.Traced(message, context))
    finally:
        span.end()


def _traced_tell_nowait(ref: ActorRef, message: Any) -> None:
    if type(message) is _tracing.Traced:
        _tell_nowait(ref, message)
        return
    span, context = _tracing.start_send(ref._path)
    try:
        _tell_nowait(ref, _tracing.Traced(message, context))
    finally:
        span.end()


async def _traced_ask(ref: ActorRef, message: Any, timeout: float | None = 5.0) -> Any:
    # ActorRef.ask with a CLIENT span held by the envelope (TracedAsk), which
    # travels wrapped with its context; keep the two in step.
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        check_timeout(timeout)
    cell = ref._resolve()
    if cell is not None and current_owner.get() is cell and cell.is_current():
        raise ActorsError(
            f"{ref._path} asked itself {describe(message)}: an actor "
            f"handles one message at a time, so this would deadlock; call "
            f"the handling code directly or use tell()"
        )
    if cell is not None and cell.remote is not None:
        return await cell.remote.ask(message, timeout)
    envelope = _tracing.TracedAsk(message, ref._path)
    item = _tracing.Traced(envelope, envelope.context())
    try:
        if cell is not None and cell.mailbox._user._send_fast(item):
            left = math.inf if timeout is None else timeout
        elif cell is not None and timeout is not None and cell.mailbox.overflow == "block":
            left = await ref._tell_within(cell, item, timeout)
        else:
            left = math.inf if timeout is None else timeout
            await ref.tell(item)
        if not envelope.answered and left > 0:
            deadlines = None if left == math.inf or cell is None else cell.system._deadlines
            try:
                await envelope.park(left, deadlines)
            finally:
                envelope.unpark(deadlines)
    except BaseException:
        if envelope.answered and cell is not None:
            cell.system._late_reply()
        envelope.close()
        raise
    return envelope.result(ref._path, timeout)


#: What ``instrument`` puts in place, by ActorRef attribute name.
TRACED: Final = {"tell": _traced_tell, "tell_nowait": _traced_tell_nowait, "ask": _traced_ask}
#: What ``uninstrument`` puts back.
UNTRACED: Final = {"tell": ActorRef.tell, "tell_nowait": ActorRef.tell_nowait, "ask": ActorRef.ask}


def _dead_letter_unresolved(ref: ActorRef, message: Any) -> None:
    system = system_here()
    assert system is not None  # _resolve() raised otherwise
    system._dead_letter(message, ref, "stopped")


def check_timeout(timeout: object) -> None:
    """Raise if ``timeout`` is not a positive number of seconds or None."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"ask() timeout must be a number of seconds or None, got "
            f"{type(timeout).__name__} {timeout!r}"
        )
    if not timeout > 0:
        raise ValueError(
            f"ask() timeout must be a positive number of seconds or None, got {timeout!r}"
        )


def _restore_ref(system_name: str, path: str, uid: int) -> ActorRef:
    system = system_here()
    if system is not None and system_name != system.name:
        # A ref of another system: an actor this process hosts for it, or
        # one reached through a connection to it.
        cell = system._aliases.get((system_name, uid))
        if cell is not None:
            return cell.ref
        peer = system._route(system_name)
        cluster = system._cluster
        if cluster is not None:
            # A node of the cluster: reached over a link, opened when needed.
            ref = cluster.restore(system_name, path, uid, peer)
            if ref is not None:
                return ref
        if peer is not None:
            from ._remote import RemoteRef

            return RemoteRef(peer, system_name, path, uid)
    return ActorRef(None, system_name, path, uid)
