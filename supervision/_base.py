"""What every supervisor shares: the child table, restarts, intensity, control.

A supervisor is an actor. It watches each child incarnation it starts and
learns of every exit from the ``Terminated`` notice (``reason`` is ``None`` for
a normal stop, the exception for a failure); it overrides ``on_child_failed``
so that a supervised child's failure does not fail the supervisor too. It
stops its children itself when it stops (``Actor.on_stop_children``), in
reverse start order, each as its spec's ``shutdown`` says. It reaches the
runtime only through the public API and ``actors.lowlevel``.

# Invariants:
# - ``_children`` holds one ``_Child`` per spec, in start order; a restarted
#   child keeps its place (OTP's child list), and its name.
# - ``child.ref`` is set exactly when ``child.state == "running"``; the
#   supervisor watches that incarnation, and only that one.
# - A ``Terminated`` counts only if its ref is a child's current ref. Any other
#   (an incarnation the supervisor stopped itself, or one already replaced) is
#   stale and ignored.
# - ``child.token`` names the pending start of a ``"restarting"`` child; a
#   ``_StartDue`` whose token is no longer the child's is stale and ignored.
# - ``_started`` holds every incarnation the supervisor started (while its ref
#   lives, as in a pending failure notice); ``on_child_failed`` ignores exactly
#   those, so a child spawned any other way fails the supervisor as usual.
# - Only the supervisor's own task reads or writes any of this (it is an
#   actor), so a restart never interleaves with another message.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio

from actors import Actor, ActorRef, NameTaken, SupervisorGaveUp, Terminated, lowlevel

from ._backoff import Backoff
from ._control import (
    ChildCounts,
    ChildInfo,
    ChildState,
    _CountChildren,
    _DeleteChild,
    _Done,
    _Failure,
    _Request,
    _RestartChild,
    _StartChild,
    _TerminateChild,
    _WhichChildren,
)
from ._exceptions import ChildRunning, ChildStartFailed, NoSuchChild, TooManyChildren
from ._spec import ChildSpec, _unwrap
from ._strategy import RestartIntensity

logger = logging.getLogger("supervision")


class _Child:
    """The supervisor's record of one child spec and its current incarnation."""

    __slots__ = (
        "_shown",
        "_state",
        "attempt",
        "error",
        "name",
        "ref",
        "restarts",
        "spec",
        "started_at",
        "token",
    )

    def __init__(
        self, spec: ChildSpec, name: str, shown: MutableMapping[str, tuple[str, int, str | None]]
    ) -> None:
        self.spec = spec
        self.name = name
        self.ref: ActorRef | None = None
        self._shown = shown  # the supervisor's Incarnation.restarting
        self.restarts = 0
        self.attempt = 0  # restarts in a row, for the backoff
        self.started_at: float | None = None
        self.token: int | None = None
        self.error: BaseException | None = None  # why it last exited or failed to start
        self.state: ChildState = "terminated"

    @property
    def state(self) -> ChildState:
        """``"running"``, ``"restarting"`` or ``"terminated"``; a restarting
        child is shown on the live page while it has no incarnation."""
        return self._state

    @state.setter
    def state(self, state: ChildState) -> None:
        self._state = state
        if state == "restarting":
            error = self.error
            self._shown[self.name] = (
                _class_name(self.spec),
                self.restarts + 1,
                None if error is None else _failure_text(error),
            )
        else:
            self._shown.pop(self.name, None)

    def __repr__(self) -> str:
        return f"<child {self.name} {self.state} restarts={self.restarts}>"


@dataclass(frozen=True, slots=True)
class _StartDue:
    """Start a pending group now (after its backoff delay), or retry a failed start."""

    names: tuple[str, ...]
    token: int
    retry: bool


class _SupervisorBase(Actor):
    """The shared machinery of ``Supervisor`` and ``DynamicSupervisor``."""

    #: Marks supervisor classes for ``ChildSpec.kind`` (OTP's child type).
    _supervision_is_supervisor: ClassVar[bool] = True

    def __init__(self, *, max_restarts: int, within: float, backoff: Backoff | None) -> None:
        self._intensity = RestartIntensity(max_restarts, within)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a supervision.Backoff or None, got {backoff!r}")
        self._backoff = backoff
        self._children: dict[str, _Child] = {}
        self._tokens = itertools.count()
        # Their failures come as Terminated notices, not as its own.
        self._started: weakref.WeakSet[ActorRef] = weakref.WeakSet()
        self._restarting_shown: MutableMapping[str, tuple[str, int, str | None]] | None = None

    @classmethod
    def check_args(cls, *args: Any, **kwargs: Any) -> None:
        """Check a supervisor's arguments where it is spawned: its constructor
        only checks and stores them, so building a throwaway instance is the
        check (a subclass whose constructor does more overrides this)."""
        cls(*args, **kwargs)

    # -- what subclasses decide -----------------------------------------------

    def _affected(self, child: _Child) -> list[_Child]:
        """The children a restart of ``child`` restarts, in start order."""
        return [child]

    def _check_spec(self, spec: ChildSpec) -> None:
        """Raise ``ValueError`` if ``spec`` does not fit this supervisor."""

    def _name_for(self, spec: ChildSpec) -> str:
        return spec.default_name

    def _check_capacity(self) -> None:
        """Raise if no child can be added."""

    def _forget_when_ended(self, child: _Child) -> bool:
        """Whether a child that ended for good (or was terminated) loses its spec."""
        return child.spec.restart == "temporary"

    async def _ended_by_itself(self, child: _Child) -> None:
        """A child ended by itself and will not be restarted (auto_shutdown)."""

    # -- the actor ------------------------------------------------------------

    @property
    def _path(self) -> str:
        return self.ref.path

    def _new_child(self, spec: ChildSpec, name: str) -> _Child:
        shown = self._restarting_shown
        if shown is None:
            incarnation = lowlevel.resolve(self.ref)
            assert incarnation is not None  # it is running
            shown = self._restarting_shown = incarnation.restarting
        return _Child(spec, name, shown)

    def _show_in_tree(self, key: str, value: str) -> None:
        incarnation = lowlevel.resolve(self.ref)
        if incarnation is not None:  # always: it is running
            incarnation.details[key] = value

    async def receive(self, message: Any) -> Any:
        """Handle child exits, delayed restarts and control requests."""
        kind = type(message)
        if kind is Terminated:
            await self._on_exit(message.ref, message.reason)
            return None
        if kind is _StartDue:
            await self._on_start_due(message)
            return None
        if isinstance(message, _Request):
            # Only the refusals the control functions document are answers;
            # anything else is a bug of the supervisor, and it crashes.
            try:
                return await self._handle(message)
            except _REFUSALS as exc:
                return _Failure(exc)
        logger.warning(
            "supervisor %s got a message it does not handle, %s: it became a dead letter; "
            "talk to a supervisor through the supervision functions (start_child, ...)",
            self._path,
            type(message).__name__,
        )
        lowlevel.dead_letter(
            self.context.system, message, self.ref, "not understood by a supervisor"
        )
        return None

    async def on_child_failed(self, child: ActorRef, error: BaseException) -> None:
        """Supervised children are handled through their ``Terminated`` notice;
        any other child's failure fails the supervisor, as for a plain actor."""
        if child in self._started:
            return
        raise error

    async def on_stop_children(self) -> None:
        """Stop the children in reverse start order, each completely, as its
        spec's shutdown says."""
        for child in reversed(list(self._children.values())):
            await self._stop_quietly(child)

    async def _stop_quietly(self, child: _Child) -> None:
        try:
            await self._stop_child(child)
        except Exception:  # pragma: no cover - stop() and kill() do not raise
            logger.exception("supervisor %s could not stop child %s", self._path, child.name)

    # -- starting and stopping one child --------------------------------------

    async def _start(self, child: _Child, *, restarted: bool) -> ActorRef:
        """Start an incarnation of ``child`` and watch it.

        Raises:
            ChildStartFailed: the spawn failed; the child is left as it was.
        """
        restarts = child.restarts + 1 if restarted else child.restarts
        # Shown with the restart count from the start (the live page, python -m actors).
        why = _failure_text(child.error) if restarted and child.error is not None else None
        try:
            ref = await child.spec._spawn_incarnation(self.context, child.name, restarts, why)
        except Exception as exc:
            child.started_at = None
            child.error = exc
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise ChildStartFailed(
                self._path,
                child.name,
                f"supervisor {self._path} could not start its child {child.name!r}: "
                f"{type(cause).__name__}: {cause}",
            ) from exc
        child.ref = ref
        child.state = "running"
        child.token = None
        child.started_at = anyio.current_time()
        child.restarts = restarts
        self._started.add(ref)
        self.context.watch(ref)
        return ref

    async def _stop_child(self, child: _Child) -> None:
        """Stop ``child``'s incarnation, if any, as its spec's shutdown says, and
        cancel a pending restart. Leaves it ``"terminated"``."""
        ref, child.ref = child.ref, None
        child.state = "terminated"
        child.token = None
        if ref is None:
            return
        self.context.unwatch(ref)
        if child.spec.shutdown == "brutal_kill":
            await ref.kill()
        else:
            await ref.stop()

    # -- exits and restarts ---------------------------------------------------

    async def _on_exit(self, ref: ActorRef, reason: BaseException | None) -> None:
        child = self._children.get(ref.name)
        if child is None or child.ref != ref:
            return  # stale: stopped by us, or already replaced
        child.ref = None
        child.error = reason
        restart = child.spec.restart
        if restart == "permanent" or (restart == "transient" and reason is not None):
            await self._restart(child, reason)
            return
        child.state = "terminated"
        if self._forget_when_ended(child):
            del self._children[child.name]
        logger.debug("supervisor %s: child %s ended for good (%r)", self._path, child.name, reason)
        await self._ended_by_itself(child)

    async def _restart(self, child: _Child, reason: BaseException | None) -> None:
        """Restart ``child`` by the strategy, or give up (OTP's ``restart/2``).

        Raises:
            SupervisorGaveUp: the restart would exceed the intensity; the
                supervisor fails, and stops its children as it does.
        """
        now = anyio.current_time()
        if not self._intensity.add(now):
            child.state = "terminated"
            raise self._gave_up(child, reason) from reason
        group = self._affected(child)
        for other in reversed(group):
            if other is not child:
                await self._stop_child(other)
        # Temporary children of the group are never restarted (OTP).
        for other in group:
            if other is not child and other.spec.restart == "temporary":
                self._children.pop(other.name, None)
        group = [c for c in group if self._children.get(c.name) is c]
        token = next(self._tokens)
        for member in group:
            member.state = "restarting"
            member.token = token
        delay = self._backoff_delay(child, now)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "supervisor %s: child %s %s; restarting %s%s",
                self._path,
                child.name,
                "stopped" if reason is None else f"failed ({type(reason).__name__})",
                ", ".join(c.name for c in group),
                f" in {delay:.3g} s" if delay else "",
            )
        names = tuple(c.name for c in group)
        lowlevel.trace_event(
            "restart",
            {
                "actors.child": child.name,
                "actors.reason": "stopped" if reason is None else type(reason).__name__,
                "actors.restarting": ", ".join(names),
                "actors.delay": f"{delay:g}",
            },
            self.ref,
        )
        if delay > 0:
            self.context.schedule_once(delay, _StartDue(names, token, retry=False))
        else:
            await self._start_group(group)

    def _backoff_delay(self, child: _Child, now: float) -> float:
        backoff = child.spec.backoff or self._backoff
        if backoff is None:
            return 0.0
        started = child.started_at
        if started is not None and now - started >= backoff.stable_after:
            child.attempt = 0
        delay = backoff.delay(child.attempt)
        child.attempt += 1
        return delay

    async def _start_group(self, group: list[_Child]) -> None:
        for child in group:
            try:
                await self._start(child, restarted=True)
            except ChildStartFailed:
                # OTP's try_again_restart: the failed child and those after it
                # stay "restarting"; retry once the mailbox had its turn, which
                # counts as another restart and applies the strategy again.
                logger.warning(
                    "supervisor %s: child %s failed to restart; trying again",
                    self._path,
                    child.name,
                )
                token = next(self._tokens)
                child.token = token
                self.context.schedule_once(0, _StartDue((child.name,), token, retry=True))
                return

    async def _on_start_due(self, due: _StartDue) -> None:
        group = [
            child
            for name in due.names
            if (child := self._children.get(name)) is not None
            and child.token == due.token
            and child.state == "restarting"
        ]
        if not group:
            return  # stale: terminated, restarted or deleted meanwhile
        if due.retry:
            await self._restart(group[0], group[0].error)
        else:
            await self._start_group(group)

    def _gave_up(self, child: _Child, reason: BaseException | None) -> SupervisorGaveUp:
        intensity = self._intensity
        what = "stopped" if reason is None else f"failed with {type(reason).__name__}: {reason}"
        return SupervisorGaveUp(
            f"supervisor {self._path} gave up: more than {intensity.max_restarts} restarts "
            f"within {intensity.within:g} s (the last: child {child.name!r} {what}); it "
            f"stopped its children and failed. Fix the crashing child, or allow more "
            f"restarts (max_restarts=, within=) or slow them down (backoff=)"
        )

    # -- control requests -----------------------------------------------------

    async def _handle(self, request: _Request) -> _Done | _Failure:
        """Carry out a control request; its answer. Raises only the refusals
        in ``_REFUSALS`` (answered as ``_Failure``), or crashes."""
        match request:
            case _StartChild(spec):
                return await self._start_new(spec)
            case _TerminateChild(target):
                child = self._find(target)
                await self._stop_child(child)
                if self._forget_when_ended(child):
                    self._children.pop(child.name, None)
                return _Done()
            case _RestartChild(name):
                child = self._get(name)
                self._check_not_running(child, "restart")
                return _Done(await self._start(child, restarted=True))
            case _DeleteChild(name):
                child = self._get(name)
                self._check_not_running(child, "delete")
                del self._children[name]
                return _Done()
            case _WhichChildren():
                return _Done([_info(child) for child in self._children.values()])
            case _CountChildren():
                return _Done(_count(self._children.values()))
        raise TypeError(f"unknown supervisor request {request!r}")  # pragma: no cover

    async def _start_new(self, spec: object) -> _Done | _Failure:
        if not isinstance(spec, ChildSpec):
            return _Failure(TypeError(f"start_child needs a supervision.ChildSpec, got {spec!r}"))
        try:
            # A spec that does not fit, or has no name and a factory without
            # a usable __name__: the documented ValueError refusals.
            self._check_spec(spec)
            if spec.name is None:
                self._check_capacity()  # before an anonymous name is drawn: a refusal uses none
            name = self._name_for(spec)
        except ValueError as exc:
            return _Failure(exc)
        existing = self._children.get(name)
        if existing is not None:
            hint = (
                "use another name"
                if existing.state != "terminated"
                else "use another name, restart_child it, or delete_child it first"
            )
            raise NameTaken(
                f"supervisor {self._path} already has a child named {name!r} "
                f"({existing.state}): {hint}"
            )
        self._check_capacity()
        child = self._new_child(spec, name)
        self._children[name] = child
        try:
            return _Done(await self._start(child, restarted=False))
        except ChildStartFailed:
            del self._children[name]  # OTP discards the spec of a failed start_child
            raise

    def _get(self, name: str) -> _Child:
        child = self._children.get(name) if isinstance(name, str) else None
        if child is None:
            raise NoSuchChild(
                f"supervisor {self._path} has no child named {name!r}; its children "
                f"are {list(self._children) or 'none'}"
            )
        return child

    def _find(self, target: str | ActorRef) -> _Child:
        if isinstance(target, ActorRef):
            child = self._children.get(target.name)
            if child is None or child.ref != target:
                raise NoSuchChild(
                    f"{target!r} is not a running child of supervisor {self._path} "
                    f"(stopped, replaced by a restart, or never its child); pass the "
                    f"child's name to reach whatever incarnation is current"
                )
            return child
        return self._get(target)

    def _check_not_running(self, child: _Child, verb: str) -> None:
        if child.state != "terminated":
            raise ChildRunning(
                f"supervisor {self._path} cannot {verb} child {child.name!r}: it is "
                f"{child.state}; terminate_child it first"
            )


#: What a control request may be refused with (each documented by the function
#: that makes the request); the supervisor answers it, and keeps running.
_REFUSALS = (ChildRunning, ChildStartFailed, NameTaken, NoSuchChild, TooManyChildren)


def _class_name(spec: ChildSpec) -> str:
    factory = _unwrap(spec.factory)
    return str(getattr(factory, "__qualname__", repr(factory)))


def _failure_text(error: BaseException) -> str:
    shown = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return shown if len(shown) <= 300 else shown[:299] + "…"


def _info(child: _Child) -> ChildInfo:
    spec = child.spec
    return ChildInfo(
        child.name,
        child.ref,
        child.state,
        child.restarts,
        spec.restart,
        spec.kind,
        spec.significant,
    )


def _count(children: Any) -> ChildCounts:
    specs = active = supervisors = 0
    for child in children:
        specs += 1
        active += child.state == "running"
        supervisors += child.spec.kind == "supervisor"
    return ChildCounts(specs, active, supervisors, specs - supervisors)
