"""The ``Actor`` base class users subclass, and its ``Context``."""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, NoReturn

import anyio

from ._exceptions import ActorsError
from ._mailbox import Mailbox
from ._typevars import M, R

if TYPE_CHECKING:
    from ._cell import Cell
    from ._placement import Subprocess
    from ._ref import ActorRef
    from ._reply import Reply
    from ._system import ActorSystem


class Actor(Generic[M, R]):
    """Subclass this and override any of ``on_start``, ``receive``, ``on_stop``.

    The runtime builds a fresh instance inside the actor's own task on every
    (re)start, from the factory and arguments given to ``spawn``. ``receive``
    handles one message at a time; its return value is the reply to ``ask``.
    An exception escaping ``on_start``, ``receive``, ``on_stop`` or a goroutine
    fails the actor (let it crash): its parent handles the failure in
    ``on_child_failed``, which by default fails the parent too.

    Framework attributes on an actor are ``ref``, ``context`` and the hooks
    below (``on_stop_children`` is for library authors, such as the
    supervisors'); everything else is yours (the runtime keeps its own state
    in the ``_actors_cell`` attribute).

    Examples:
        >>> import actors
        >>> class Counter(actors.Actor):
        ...     def __init__(self, start: int = 0) -> None:
        ...         self.count = start
        ...     async def receive(self, message):
        ...         match message:
        ...             case "incr":
        ...                 self.count += 1
        ...             case "get":
        ...                 return self.count
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         counter = await system.spawn(Counter, 10)
        ...         await counter.tell("incr")
        ...         return await counter.ask("get")
        >>> actors.run(main)
        11
    """

    _actors_cell: Cell

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook in _HOOKS:
            fn = cls.__dict__.get(hook)
            # A decorated hook (a wrapper returning a coroutine) is trusted.
            if (
                inspect.isfunction(fn)
                and not inspect.iscoroutinefunction(fn)
                and not hasattr(fn, "__wrapped__")
            ):
                raise TypeError(
                    f"{cls.__qualname__}.{hook} is a plain function: the runtime "
                    f"awaits it, so write `async def {hook}(...)`"
                )

    @classmethod
    def check_args(cls, *args: Any, **kwargs: Any) -> None:
        """Check the arguments ``spawn`` was given for this class, in the
        caller, before the actor's task starts (the constructor itself runs in
        that task, on every start). Raise ``TypeError`` or ``ValueError`` to
        refuse them: ``spawn`` raises it as is, and nothing is started.

        By default it checks nothing. Override it when bad arguments should
        fail where the mistake is made, as ``supervision.Supervisor`` does.
        """

    @property
    def ref(self) -> ActorRef:
        """This actor's own ref."""
        return _cell_of(self).ref

    @property
    def context(self) -> Context:
        """The actor's view of the runtime: spawn, stop, watch, timers, go."""
        return Context(_cell_of(self))

    async def on_start(self) -> None:
        """Called once in the actor's task before the first message.

        ``spawn`` returns after it; if it raises, ``spawn`` raises
        :class:`ActorFailed` and ``on_stop`` is not called. Cancelled only if
        the actor is killed or the system is cancelled.
        """

    async def receive(self, message: M) -> R:  # type: ignore[empty-body]
        """Handle one message; the return value answers ``ask``.

        Messages the actor did not ask for arrive here too, such as
        :class:`Terminated` for watched actors. Cancelled only if the actor is
        killed (``ref.kill()``, or a stop outlasting its shutdown timeout), a
        goroutine of it fails, or the system is cancelled.
        """

    def unhandled(self, message: Any) -> NoReturn:
        """Say that ``receive`` does not handle ``message``: return what this
        returns (``case _: return self.unhandled(message)``).

        The message becomes a dead letter (reason ``"unhandled"``, logged as
        dead letters are); an ``ask`` of it raises :class:`UnhandledMessage`.
        The actor keeps running: an unexpected message is the sender's
        mistake, not a sign that this actor's state is wrong (Akka's
        ``unhandled``; unlike OTP, which crashes on a function clause).

        It returns a marker the runtime recognises; it is typed ``NoReturn``
        so that ``return self.unhandled(message)`` fits any reply type.
        """
        return UNHANDLED  # type: ignore[misc]

    async def on_stop(self) -> None:
        """Called once when the actor stops or fails, after its children have
        stopped and before it is gone (not called if ``on_start`` failed).

        Cancelled if the actor is killed or its shutdown timeout passes.
        """

    async def on_stop_children(self) -> None:
        """Stop this actor's children as it stops; override to choose how.

        Called once when the actor stops or fails (not if ``on_start``
        failed), after its goroutines and timers have ended and before
        ``on_stop``. The default stops the live children one at a time in
        reverse spawn order, each completely (within its shutdown timeout).
        Override it to stop them in another order, or all at once, as
        supervisors do; it is a hook for library authors (see
        ``actors.lowlevel``). Children still alive when it returns are then
        stopped the default way. An exception fails the actor, as one in
        ``on_stop`` does.

        Cancelled if the actor is killed or its shutdown timeout passes.
        """
        for child in reversed(self.context.children):
            await child.stop()

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        """Handle the failure of a child; by default fail with it.

        Supervisors override this. A plain actor treats a child's failure as
        its own, so failures travel up the tree to the root. Runs in the
        actor's task between messages, so it is cancelled like ``receive``.
        """
        raise error


class _Unhandled:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNHANDLED"


#: What ``Actor.unhandled`` returns; the runtime recognises it by identity.
UNHANDLED: Any = _Unhandled()

_HOOKS = ("on_start", "receive", "on_stop", "on_stop_children", "on_child_failed")


def _cell_of(actor: Actor) -> Cell:
    try:
        return actor._actors_cell
    except AttributeError:
        from ._cell import current_cell

        cell = current_cell.get()
        if cell is None or cell.instance is not None:
            raise ActorsError(
                f"{type(actor).__name__} is not running: an Actor gets its ref "
                f"and context when spawned (system.spawn or context.spawn), not "
                f"when constructed directly"
            ) from None
        return cell  # inside __init__ of an actor being spawned


class Timer:
    """A scheduled message; ``cancel()`` stops it. Dies with its actor.

    Examples:
        >>> import actors
        >>> class Ticker(actors.Actor):
        ...     async def on_start(self):
        ...         self.timer = self.context.schedule_every(60, "tick")
        ...     async def receive(self, message):
        ...         self.timer.cancel()
        ...         return self.timer.cancelled
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         ticker = await system.spawn(Ticker)
        ...         return await ticker.ask("stop ticking")
        >>> actors.run(main)
        True
    """

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._scope.cancel_called

    def cancel(self) -> None:
        """Stop the timer; a message already sent stays sent."""
        self._scope.cancel()


class Context:
    """What an actor can do to the runtime, through ``self.context``.

    Examples:
        >>> import actors
        >>> class Parent(actors.Actor):
        ...     async def on_start(self):
        ...         self.child = await self.context.spawn(actors.Actor, name="kid")
        ...     async def receive(self, message):
        ...         return [c.path for c in self.context.children]
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         parent = await system.spawn(Parent, name="p")
        ...         return await parent.ask("children?")
        >>> actors.run(main)
        ['/user/p/kid']
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def system(self) -> ActorSystem:
        """The actor system this actor runs in."""
        return self._cell.system

    @property
    def self(self) -> ActorRef:
        """This actor's ref (same as ``Actor.ref``)."""
        return self._cell.ref

    @property
    def parent(self) -> ActorRef | None:
        """The parent's ref; ``None`` for a top-level actor."""
        parent = self._cell.parent
        return None if parent is None else parent.ref

    @property
    def children(self) -> list[ActorRef]:
        """Live children, in spawn order."""
        return [child.ref for child in self._cell.children.values()]

    def child(self, name: str) -> ActorRef | None:
        """The live child called ``name``, or ``None``."""
        cell = self._cell.children.get(name)
        return None if cell is None else cell.ref

    async def spawn(
        self,
        factory: Callable[..., Actor[M, R]],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        shutdown: float | None = None,
        placement: Subprocess | None = None,
        **kwargs: Any,
    ) -> ActorRef[M, R]:
        """Spawn a child of this actor; see :meth:`ActorSystem.spawn`.

        Waits until the child's ``on_start`` has run. Cancellation: if the
        caller is cancelled meanwhile, the child keeps starting and lives on.
        """
        return await self._cell.system._spawn(
            self._cell, factory, args, kwargs, name, mailbox, shutdown, placement=placement
        )

    def spawn_nowait(
        self,
        factory: Callable[..., Actor[M, R]],
        *args: Any,
        name: str | None = None,
        mailbox: Mailbox | None = None,
        shutdown: float | None = None,
        placement: Subprocess | None = None,
        **kwargs: Any,
    ) -> ActorRef[M, R]:
        """Spawn a child and return its ref at once; see
        :meth:`ActorSystem.spawn_nowait`. A failure while it starts goes to
        this actor's ``on_child_failed``, like any failure of a child."""
        return self._cell.system._spawn_nowait(
            self._cell, factory, args, kwargs, name, mailbox, shutdown, placement=placement
        )

    async def stop(self, ref: ActorRef | None = None) -> None:
        """Stop ``ref`` and wait until it is gone, or (no argument) stop self.

        Stopping self (or an ancestor) only asks: the actor finishes the
        message in hand, then stops; waiting would deadlock.

        Cancellation: cancelling the wait does not cancel the stop.
        """
        if ref is None or ref == self._cell.ref:
            self._cell.request_stop()
        else:
            await ref.stop()

    def watch(self, ref: ActorRef) -> None:
        """Get ``Terminated(ref, reason)`` once when ``ref`` stops (at once if it
        already has). Watching again before that notice has been handled
        gives no second one. The watch ends when this actor does."""
        self._cell.system._watch(ref, self._cell.ref)

    def unwatch(self, ref: ActorRef) -> None:
        """Stop watching ``ref``."""
        self._cell.system._unwatch(ref, self._cell.ref)

    def subscribe(self, pattern: str, group: str | None = None) -> bool:
        """Subscribe this actor to ``pattern`` (in ``group``, if given) until it
        stops; see :meth:`Registry.subscribe`. False if already subscribed.

        Examples:
            >>> import actors
            >>> class Audit(actors.Actor):
            ...     async def on_start(self):
            ...         self.context.subscribe("orders.>")
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         await system.spawn(Audit)
            ...         return await system.publish("orders.eu.created", "o1")
            >>> actors.run(main)
            1
        """
        return self._cell.system.registry.subscribe(pattern, self._cell.ref, group)

    def unsubscribe(self, pattern: str, group: str | None = None) -> bool:
        """Remove this actor's subscription ``(pattern, group)``; False if it had
        none. See :meth:`Registry.unsubscribe`.

        Examples:
            >>> import actors
            >>> class Once(actors.Actor):
            ...     async def on_start(self):
            ...         self.context.subscribe("jobs", group="workers")
            ...     async def receive(self, message):
            ...         self.context.unsubscribe("jobs", group="workers")
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         once = await system.spawn(Once)
            ...         await system.publish("jobs", 1)
            ...         await once.ask("sync")
            ...         return await system.publish("jobs", 2)
            >>> actors.run(main)
            0
        """
        return self._cell.system.registry.unsubscribe(pattern, self._cell.ref, group)

    async def publish(self, topic: str, message: Any) -> int:
        """Publish ``message`` to ``topic``; return how many subscribers got it.

        Blocks while subscribers' mailboxes are full; see
        :meth:`Registry.publish` (an actor that subscribes to what it
        publishes, with its own mailbox full, would wait for itself forever,
        as with a ``tell`` to itself).

        Cancellation: not atomic; subscribers that got the message before the
        cancellation keep it, the others never get it.

        Examples:
            >>> import actors
            >>> class Announcer(actors.Actor):
            ...     async def receive(self, message):
            ...         return await self.context.publish("news.local", message)
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         announcer = await system.spawn(Announcer)
            ...         async with system.subscription("news.>") as news:
            ...             delivered = await announcer.ask("hello")
            ...             return delivered, await news.receive()
            >>> actors.run(main)
            (1, 'hello')
        """
        return await self._cell.system.registry.publish(topic, message)

    def go(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Start a goroutine owned by this actor: cancelled when it stops, and
        its exception fails the actor.

        Raises:
            TypeError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise TypeError(f"go() needs an async function, got {type(fn).__name__} {fn!r}")
        self._cell.start_soon(fn, *args)

    def reply_later(self) -> Reply:
        """Take the reply of the ask being handled, to answer it later with
        ``reply.send(value)`` (OTP's ``gen_server:reply``, Akka's ``replyTo``).

        ``receive``'s return value then answers nothing, and the actor goes on
        handling messages while the asker waits (up to its timeout). If the
        actor ends before answering, the asker gets :class:`ActorStopped`.

        Raises:
            ActorsError: not called from ``receive`` while it handles an ask.

        Examples:
            See :class:`Reply`, and lesson 15 (``examples/15_pipe_to_self.py``).
        """
        return self._cell.reply_later()

    def pipe_to_self(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        message: Callable[[Any], Any] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        """Run ``await fn(*args)`` in a goroutine and tell its result to self
        as a message, so the actor keeps handling messages meanwhile (Akka's
        ``pipeToSelf``).

        Args:
            fn: an async function; it runs owned by this actor (cancelled
                when the actor stops).
            *args: its arguments.
            message: maps the result to the message told to self (default:
                the result itself).
            on_error: maps an exception ``fn`` raised to the message told to
                self; without it the exception fails the actor, as a
                goroutine's does.

        Raises:
            TypeError: ``fn`` is not callable.
            ActorsError: the actor is stopping.

        Examples:
            >>> import actors
            >>> async def lookup(key):
            ...     return key.upper()
            >>> class Piper(actors.Actor):
            ...     async def receive(self, message):
            ...         match message:
            ...             case ("lookup", key):
            ...                 self.reply = self.context.reply_later()
            ...                 self.context.pipe_to_self(
            ...                     lookup, key, message=lambda value: ("found", value)
            ...                 )
            ...             case ("found", value):
            ...                 self.reply.send(value)
            >>> async def main():
            ...     async with actors.ActorSystem() as system:
            ...         piper = await system.spawn(Piper)
            ...         return await piper.ask(("lookup", "k"))
            >>> actors.run(main)
            'K'
        """
        if not callable(fn):
            raise TypeError(
                f"pipe_to_self() needs an async function, got {type(fn).__name__} {fn!r}"
            )
        self._cell.start_soon(_pipe, self._cell.ref, fn, args, message, on_error)

    def schedule_once(self, delay: float, message: Any) -> Timer:
        """Send ``message`` to self after ``delay`` seconds."""
        _check_delay("delay", delay)
        timer = Timer()
        self._cell.start_soon(_timer, timer, self._cell.ref, message, delay, None)
        return timer

    def schedule_every(
        self, interval: float, message: Any, *, initial_delay: float | None = None
    ) -> Timer:
        """Send ``message`` to self every ``interval`` seconds (first after
        ``initial_delay``, default ``interval``). Ticks wait for mailbox room
        rather than pile up."""
        _check_delay("interval", interval)
        if interval == 0:
            raise ValueError("schedule_every() interval must be > 0")
        first = interval if initial_delay is None else initial_delay
        _check_delay("initial_delay", first)
        timer = Timer()
        self._cell.start_soon(_timer, timer, self._cell.ref, message, first, interval)
        return timer


def _check_delay(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not 0 <= value < math.inf:
        raise ValueError(f"{what} must be >= 0 and finite, got {value!r}")


async def _pipe(
    ref: ActorRef,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    message: Callable[[Any], Any] | None,
    on_error: Callable[[Exception], Any] | None,
) -> None:
    try:
        result = await fn(*args)
    except Exception as exc:
        if on_error is None:
            raise
        await ref.tell(on_error(exc))
        return
    await ref.tell(result if message is None else message(result))


async def _timer(
    timer: Timer, ref: ActorRef, message: Any, delay: float, interval: float | None
) -> None:
    with timer._scope:
        await anyio.sleep(delay)
        await ref.tell(message)
        if interval is None:
            return
        deadline = anyio.current_time()
        while True:
            deadline += interval
            await anyio.sleep_until(deadline)
            await ref.tell(message)


def check_factory(factory: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise ``TypeError`` in the caller if ``factory(*args, **kwargs)``
    cannot make an actor: not an ``Actor`` subclass or a callable, or (for a
    class) arguments its ``check_args`` refuses."""
    if inspect.isclass(factory):
        if not issubclass(factory, Actor):
            raise TypeError(
                f"cannot spawn {factory.__qualname__}: it is not an Actor "
                f"subclass; subclass actors.Actor"
            )
        factory.check_args(*args, **kwargs)
    elif not callable(factory):
        raise TypeError(
            f"cannot spawn {factory!r}: pass an Actor subclass or a callable that returns an Actor"
        )
