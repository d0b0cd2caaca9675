"""Calls into a running actor system from plain threads.

Channels, mailboxes and refs are not thread-safe: like asyncio's queues and
trio's channels, they belong to the event loop that runs the system. A thread
that is not that loop's reaches the system through its portal,
``system.from_thread``: each call is handed to the loop (asyncio's
``call_soon_threadsafe``, trio's ``TrioToken.run_sync_soon``), runs there as a
task the system owns, and the thread blocks until it has finished.

# Invariants:
# - A call is in ``_waiting`` from the moment it is handed to the loop until
#   the loop begins it, or ``close()`` fails it: exactly one of the two, under
#   ``_lock``. A begun call is a task of the system, which waits for it.
# - Once ``_closed`` is set no call begins, so every blocked thread is woken:
#   by its task, by ``close()``, or (handing off failed) at once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from ._backend import threadsafe_scheduler
from ._exceptions import ActorsError
from ._ref import current_system
from ._trio import LOOP_ENDED

if TYPE_CHECKING:
    from ._ref import ActorRef
    from ._system import ActorSystem

T = TypeVar("T")


class ThreadPortal:
    """The thread-safe way into a running system: ``system.from_thread``.

    Every method blocks the calling thread until the call has completed in the
    system's event loop, and raises what the call raised there. Use it from
    threads the system does not run in (a GUI thread, a thread pool, a
    blocking library's callback); inside the system's own loop ``await`` the
    ref's methods directly (calling the portal there would wait for itself, so
    it raises :class:`ActorsError`).

    Examples:
        >>> import threading
        >>> import anyio.to_thread
        >>> import actors
        >>> class Echo(actors.Actor):
        ...     async def receive(self, message):
        ...         return message
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         echo = await system.spawn(Echo, name="echo")
        ...         reply = []
        ...         def work():
        ...             reply.append(system.from_thread.ask(echo, "from a thread"))
        ...         thread = threading.Thread(target=work)
        ...         thread.start()
        ...         await anyio.to_thread.run_sync(thread.join)
        ...         return reply[0]
        >>> actors.run(main)
        'from a thread'
    """

    __slots__ = ("_closed", "_lock", "_schedule", "_system", "_thread", "_waiting")

    def __init__(self, system: ActorSystem) -> None:
        # Built in the system's ``__aenter__``, in its event loop's thread.
        self._system = system
        self._thread = threading.get_ident()
        self._schedule = threadsafe_scheduler()
        self._lock = threading.Lock()
        self._waiting: set[Future[Any]] = set()
        self._closed = False

    def tell(self, ref: ActorRef, message: Any) -> None:
        """``await ref.tell(message)`` in the system's loop, waiting for room
        in the mailbox (backpressure) as that does.

        Raises:
            MailboxFull: the mailbox is full and its policy is ``"fail"``.
            ActorsError: the system is not running (the message was not
                sent), or called from the system's own event loop thread.
        """
        self.run(ref.tell, message)

    def ask(self, ref: ActorRef, message: Any, timeout: float | None = 5.0) -> Any:
        """``await ref.ask(message, timeout)`` in the system's loop.

        Returns:
            The reply.

        Raises:
            AskTimeout: no reply within ``timeout``.
            ActorStopped: the actor stopped before it answered.
            ActorFailed: handling the message crashed the actor.
            ActorsError: the system is not running, or called from the
                system's own event loop thread.
        """
        return self.run(ref.ask, message, timeout)

    def stop(self, ref: ActorRef) -> None:
        """``await ref.stop()`` in the system's loop: returns once it is gone.

        Raises:
            ActorsError: the system is not running, or called from the
                system's own event loop thread.
        """
        self.run(ref.stop)

    def publish(self, topic: str, message: Any) -> int:
        """``await system.publish(topic, message)`` in the system's loop.

        Returns:
            How many actors it was delivered to.

        Raises:
            ActorsError: the system is not running, or called from the
                system's own event loop thread.
        """
        return self.run(self._system.publish, topic, message)

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the system's loop, as a task the system
        owns, and return its result.

        If the system shuts down first, the call is cancelled with it and this
        raises :class:`ActorsError`; a call that never began raises the same.

        Raises:
            ActorsError: the system is not running, or called from the
                system's own event loop thread.
            Exception: whatever ``fn`` raised.
        """
        if threading.get_ident() == self._thread:
            raise ActorsError(
                f"system.from_thread.{getattr(fn, '__name__', 'run')}() was called from "
                f"the event loop thread of actor system {self._system.name!r}: it would "
                f"wait for itself; await the call directly there"
            )
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise self._not_running()
            self._waiting.add(future)
        try:
            self._schedule(self._begin, future, fn, args)
        except LOOP_ENDED:  # the loop has ended
            with self._lock:
                self._waiting.discard(future)
            raise self._not_running() from None
        return future.result()

    def close(self) -> None:
        """No call begins from now on; fail those handed over but not begun.

        Called in the loop thread when the system starts shutting down.
        """
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, set()
        for future in waiting:
            future.set_exception(self._not_running())

    def _not_running(self) -> ActorsError:
        return ActorsError(
            f"actor system {self._system.name!r} is not running: the call from "
            f"another thread was not made"
        )

    def _begin(self, future: Future[Any], fn: Callable[..., Awaitable[Any]], args: Any) -> None:
        with self._lock:
            if future not in self._waiting:
                return  # close() failed it
            self._waiting.discard(future)
        future.set_running_or_notify_cancel()
        self._system._start(
            self._call, future, fn, args, name=f"from_thread {getattr(fn, '__qualname__', fn)}"
        )

    async def _call(
        self, future: Future[Any], fn: Callable[..., Awaitable[Any]], args: Any
    ) -> None:
        current_system.set(self._system)  # the thread's context had none
        try:
            result = await fn(*args)
        except Exception as exc:
            future.set_exception(exc)
        except BaseException:
            future.set_exception(
                ActorsError(
                    f"actor system {self._system.name!r} shut down while a call "
                    f"from another thread was running"
                )
            )
            raise
        else:
            future.set_result(result)
