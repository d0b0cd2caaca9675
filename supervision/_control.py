"""Runtime control of a running supervisor, through its ref (OTP's supervisor API).

Every function here asks the supervisor one request and waits for its answer.
A supervisor handles one message at a time, so a request waits behind any
restart in progress, and a request made from a child's ``on_start`` to its own
supervisor while that supervisor is starting it deadlocks (as in OTP); use a
timeout there.

The requests are plain messages; a supervisor answers an error as a value
(``_Failure``) so that a bad request never crashes it, and the function raises
that error in the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from actors import ActorRef

from ._spec import ChildKind, ChildSpec, RestartType

#: A supervised child's state: it has a live incarnation, it waits for one
#: (backoff, or a retry after a failed start), or it has none.
ChildState = Literal["running", "restarting", "terminated"]


@dataclass(frozen=True)
class ChildInfo:
    """One child in ``which_children``: OTP's ``{Id, Child, Type, Modules}`` and more.

    Attributes:
        name: the child's name (OTP's id).
        ref: the current incarnation, or ``None`` when it is not running.
        state: ``"running"``, ``"restarting"`` (waiting for its backoff delay or
            for a retry after a failed start) or ``"terminated"`` (its spec is
            kept, but nothing runs: terminated by hand, or a transient child
            that ended normally).
        restarts: how many incarnations were started after the first one
            (by the supervisor or by ``restart_child``); also shown by
            ``system.tree()``.
        restart: the spec's restart type.
        kind: ``"worker"`` or ``"supervisor"``.
        significant: whether it counts for ``auto_shutdown``.

    Examples:
        >>> info = ChildInfo("db", None, "terminated", 2, "transient", "worker", False)
        >>> info.running
        False
    """

    name: str
    ref: ActorRef | None
    state: ChildState
    restarts: int
    restart: RestartType
    kind: ChildKind
    significant: bool

    @property
    def running(self) -> bool:
        """Whether the child has a live incarnation.

        Examples:
            >>> ChildInfo("w", None, "restarting", 1, "permanent", "worker", False).running
            False
        """
        return self.state == "running"


@dataclass(frozen=True)
class ChildCounts:
    """What ``count_children`` returns, as OTP's ``count_children/1``.

    Attributes:
        specs: child specs the supervisor holds, running or not.
        active: children with a live incarnation.
        supervisors: specs whose child is a supervisor.
        workers: specs whose child is a worker.

    Examples:
        >>> ChildCounts(specs=3, active=2, supervisors=1, workers=2).active
        2
    """

    specs: int
    active: int
    supervisors: int
    workers: int


# -- the requests ---------------------------------------------------------------


class _Request:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _StartChild(_Request):
    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class _TerminateChild(_Request):
    child: str | ActorRef


@dataclass(frozen=True, slots=True)
class _RestartChild(_Request):
    name: str


@dataclass(frozen=True, slots=True)
class _DeleteChild(_Request):
    name: str


@dataclass(frozen=True, slots=True)
class _WhichChildren(_Request):
    pass


@dataclass(frozen=True, slots=True)
class _CountChildren(_Request):
    pass


@dataclass(frozen=True, slots=True)
class _Done:
    """A successful answer (so that ``None`` means "not a supervisor")."""

    value: Any = None


@dataclass(frozen=True, slots=True)
class _Failure:
    """An error answered as a value; the caller raises it."""

    error: BaseException


async def _request(supervisor: ActorRef, request: _Request, timeout: float | None) -> Any:
    if not isinstance(supervisor, ActorRef):
        raise TypeError(
            f"{type(request).__name__[1:]} needs the supervisor's ActorRef, got {supervisor!r}"
        )
    answer = await supervisor.ask(request, timeout=timeout)
    if type(answer) is _Done:
        return answer.value
    if type(answer) is _Failure:
        raise answer.error
    raise TypeError(
        f"{supervisor.path} is not a supervisor: it answered {type(request).__name__[1:]} "
        f"with {answer!r}; pass the ref of a supervision.Supervisor or DynamicSupervisor"
    )


# -- the API ----------------------------------------------------------------------


async def start_child(
    supervisor: ActorRef, spec: ChildSpec, *, timeout: float | None = None
) -> ActorRef:
    """Add ``spec`` to a running supervisor and start its child.

    The child goes last in the start order (so it stops first). If it fails to
    start, the spec is discarded (as OTP does). Waits until the child's
    ``on_start`` has run.

    Args:
        supervisor: the supervisor's ref.
        spec: the child to add.
        timeout: seconds to wait for the answer (``None``: as long as it takes).

    Returns:
        The new child's ref.

    Raises:
        actors.NameTaken: the supervisor already has a child of that name
            (running or not).
        TooManyChildren: a ``DynamicSupervisor`` is at ``max_children``.
        ChildStartFailed: the child's ``on_start`` raised.
        ValueError: the spec does not fit the supervisor (``significant`` under
            ``auto_shutdown="never"``), or it has no name and its factory no
            usable ``__name__``.
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: cancelling the wait does not cancel the request; the child
    may still be started.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(supervision.DynamicSupervisor, name="sup")
        ...         ref = await supervision.start_child(sup, ChildSpec(actors.Actor, name="w"))
        ...         return ref.path
        >>> actors.run(main)
        '/user/sup/w'
    """
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"start_child needs a supervision.ChildSpec, got {spec!r}")
    ref: ActorRef = await _request(supervisor, _StartChild(spec), timeout)
    return ref


async def terminate_child(
    supervisor: ActorRef, child: str | ActorRef, *, timeout: float | None = None
) -> None:
    """Stop a child (honouring its ``shutdown``) without restarting it.

    Under a ``Supervisor`` the spec is kept, so ``restart_child`` can start it
    again, except for temporary children, whose spec is dropped. Under a
    ``DynamicSupervisor`` the child is removed. A pending restart (backoff) is
    cancelled. Terminating a child that is not running does nothing. Never
    triggers ``auto_shutdown``. Waits until the child is gone (at most its
    shutdown timeout, unless that is ``"infinity"``).

    Args:
        supervisor: the supervisor's ref.
        child: the child's name, or the ref of its current incarnation.
        timeout: seconds to wait for the answer (``None``: as long as it takes).

    Raises:
        NoSuchChild: no child of that name, or the ref is not a current child.
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: cancelling the wait does not cancel the request.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             supervision.Supervisor, [ChildSpec(actors.Actor, name="w")]
        ...         )
        ...         await supervision.terminate_child(sup, "w")
        ...         return [c.state for c in await supervision.which_children(sup)]
        >>> actors.run(main)
        ['terminated']
    """
    await _request(supervisor, _TerminateChild(child), timeout)


async def restart_child(
    supervisor: ActorRef, name: str, *, timeout: float | None = None
) -> ActorRef:
    """Start again a child that is terminated but whose spec is kept.

    Only that child starts (the strategy is not applied) and it does not count
    toward restart intensity, as in OTP; its restart count goes up by one.
    Waits until the child's ``on_start`` has run.

    Args:
        supervisor: the supervisor's ref.
        name: the child's name.
        timeout: seconds to wait for the answer (``None``: as long as it takes).

    Returns:
        The new incarnation's ref.

    Raises:
        NoSuchChild: no child of that name.
        ChildRunning: the child is running or waiting to restart.
        ChildStartFailed: its ``on_start`` raised (the spec is kept).
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: cancelling the wait does not cancel the request.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             supervision.Supervisor, [ChildSpec(actors.Actor, name="w")], name="sup"
        ...         )
        ...         await supervision.terminate_child(sup, "w")
        ...         ref = await supervision.restart_child(sup, "w")
        ...         return ref.path
        >>> actors.run(main)
        '/user/sup/w'
    """
    ref: ActorRef = await _request(supervisor, _RestartChild(name), timeout)
    return ref


async def delete_child(supervisor: ActorRef, name: str, *, timeout: float | None = None) -> None:
    """Drop the spec of a terminated child.

    Args:
        supervisor: the supervisor's ref.
        name: the child's name.
        timeout: seconds to wait for the answer (``None``: as long as it takes).

    Raises:
        NoSuchChild: no child of that name.
        ChildRunning: the child is running or waiting to restart: terminate it
            first.
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: cancelling the wait does not cancel the request.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             supervision.Supervisor, [ChildSpec(actors.Actor, name="w")]
        ...         )
        ...         await supervision.terminate_child(sup, "w")
        ...         await supervision.delete_child(sup, "w")
        ...         return await supervision.which_children(sup)
        >>> actors.run(main)
        []
    """
    await _request(supervisor, _DeleteChild(name), timeout)


async def which_children(supervisor: ActorRef, *, timeout: float | None = 5.0) -> list[ChildInfo]:
    """Every child spec of the supervisor, in start order, with its state.

    Args:
        supervisor: the supervisor's ref.
        timeout: seconds to wait for the answer (``None``: no limit).

    Returns:
        One :class:`ChildInfo` per child spec.

    Raises:
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: leaves nothing behind.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             supervision.Supervisor, [ChildSpec(actors.Actor, name="w")]
        ...         )
        ...         [info] = await supervision.which_children(sup)
        ...         return info.name, info.state, info.restarts
        >>> actors.run(main)
        ('w', 'running', 0)
    """
    children: list[ChildInfo] = await _request(supervisor, _WhichChildren(), timeout)
    return children


async def count_children(supervisor: ActorRef, *, timeout: float | None = 5.0) -> ChildCounts:
    """Count the supervisor's child specs, live children, supervisors and workers.

    Args:
        supervisor: the supervisor's ref.
        timeout: seconds to wait for the answer (``None``: no limit).

    Returns:
        A :class:`ChildCounts`.

    Raises:
        TypeError: ``supervisor`` is not a supervisor's ref.
        actors.ActorStopped: the supervisor is stopped.
        actors.AskTimeout: no answer within ``timeout``.

    Cancellation: leaves nothing behind.

    Examples:
        >>> import actors, supervision
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             supervision.Supervisor, [ChildSpec(actors.Actor, name="w")]
        ...         )
        ...         return await supervision.count_children(sup)
        >>> actors.run(main)
        ChildCounts(specs=1, active=1, supervisors=0, workers=1)
    """
    counts: ChildCounts = await _request(supervisor, _CountChildren(), timeout)
    return counts
