"""``run()``: serve a supervision tree from a script until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import AsyncIterator
from typing import TextIO

import anyio
from anyio.abc import TaskGroup

import actors
from actors import ActorRef, SupervisorGaveUp, lowlevel

from ._spec import ChildSpec


def run(tree: ChildSpec, *, backend: str | None = None) -> None:
    """Start an actor system, spawn ``tree`` in it, and serve until told to stop.

    The tree (usually a :class:`Supervisor` spec) is spawned as the one
    top-level actor. Then:

    * On the first SIGINT (Ctrl-C) or SIGTERM the tree is stopped gracefully:
      children in reverse start order, each within its own shutdown timeout
      (a supervisor spec's default is ``"infinity"``, so the children's
      timeouts decide). ``run`` then returns.
    * On a second signal during that shutdown, whatever is left is cancelled
      at once (brutal kill), and ``run`` returns.
    * If the tree stops by itself (``auto_shutdown``, or ``stop()``), ``run``
      returns.
    * If the tree fails (a supervisor gave up, or the root actor crashed or
      did not start), everything is stopped, a report naming what failed and
      why is written to stderr, and ``run`` exits with status 1
      (``SystemExit(1)``).

    Signals are received with ``anyio.open_signal_receiver``: call ``run`` from
    the main thread, on a platform with POSIX signals.

    Args:
        tree: the spec of the root actor.
        backend: ``"asyncio"`` or ``"trio"``; default: the ``ACTORS_BACKEND``
            environment variable, else asyncio.

    Raises:
        SystemExit: with status 1 if the tree failed.
        TypeError: ``tree`` is not a ``ChildSpec``.
        ValueError: an unknown backend.

    Examples:
        >>> import actors
        >>> from supervision import ChildSpec, Supervisor
        >>> class OneShot(actors.Actor):
        ...     async def on_start(self):
        ...         print("working")
        ...         await self.context.stop()
        >>> run(ChildSpec(Supervisor, [ChildSpec(OneShot, restart="transient", significant=True)],
        ...               auto_shutdown="any_significant", name="app"))
        working
    """
    if not isinstance(tree, ChildSpec):
        raise TypeError(
            f"supervision.run needs the ChildSpec of the tree's root, got {tree!r}; "
            f"e.g. run(ChildSpec(Supervisor, [...], name='app'))"
        )
    failure = actors.run(_serve, tree, backend=backend)
    if failure is not None:
        _report(tree, failure, sys.stderr)
        raise SystemExit(1)


async def _serve(tree: ChildSpec) -> BaseException | None:
    name = tree.default_name
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with actors.ActorSystem() as system:
                root = await tree._spawn_incarnation(system, name, 0)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_on_signals, signals, root, tg)
                    incarnation = lowlevel.resolve(root)
                    if incarnation is not None:
                        await incarnation.wait_terminated()
                    tg.cancel_scope.cancel()
        except Exception as exc:
            return exc
    return None


async def _on_signals(
    signals: AsyncIterator[signal.Signals], root: ActorRef, tg: TaskGroup
) -> None:
    stopping = False
    async for signum in signals:
        what = signal.Signals(signum).name
        if not stopping:
            stopping = True
            _say(f"{what} received: stopping {root.path} (children in reverse start order)")
            tg.start_soon(root.stop)
        else:
            _say(f"{what} received again: cancelling {root.path} and everything under it now")
            tg.start_soon(root.kill)


def _say(text: str) -> None:
    print(f"supervision.run: {text}", file=sys.stderr, flush=True)


def _report(tree: ChildSpec, failure: BaseException, out: TextIO) -> None:
    if isinstance(failure, SupervisorGaveUp):
        headline = "the supervision tree gave up and was shut down"
    else:
        headline = "the supervision tree failed and was shut down"
    lines = [f"supervision.run: {headline} ({tree.default_name}).", ""]
    error: BaseException | None = failure
    depth = 0
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        prefix = "  " if depth == 0 else "  caused by: "
        lines.append(f"{prefix}{type(error).__name__}: {error}")
        lines.extend(f"      ({note})" for note in getattr(error, "__notes__", ()))
        error = error.__cause__
        depth += 1
    lines += ["", "Traceback of the failure:", ""]
    lines.append("".join(traceback.format_exception(failure)).rstrip())
    print("\n".join(lines), file=out, flush=True)
