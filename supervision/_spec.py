"""Child specifications: what a supervisor starts, and how it restarts and stops it."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from actors import Actor, ActorRef, ActorSystem, Context, Mailbox, Subprocess, lowlevel

from ._backoff import Backoff

#: When a child is restarted: always, after an abnormal exit, or never.
RestartType = Literal["permanent", "transient", "temporary"]
RESTART_TYPES: Final[tuple[str, ...]] = get_args(RestartType)

#: A child's kind, as OTP's ``type``: decides the default shutdown and counts.
ChildKind = Literal["worker", "supervisor"]

#: How long a child gets to stop: seconds, ``"brutal_kill"`` or ``"infinity"``.
Shutdown = float | Literal["brutal_kill", "infinity"]


@dataclass(frozen=True, init=False)
class ChildSpec:
    """How a supervisor starts one child, when it restarts it, how it stops it.

    ``ChildSpec(factory, *args, **kwargs)`` builds the child with
    ``factory(*args, **kwargs)`` inside its own task, on every (re)start, so a
    restarted child always begins from fresh state. The keywords below are the
    spec's own; every other keyword goes to the factory (wrap the factory with
    ``functools.partial`` if it needs one of these names).

    Args:
        factory: an ``actors.Actor`` subclass or a callable returning one.
        *args: positional arguments for ``factory``.
        name: the child's name among its siblings, kept across restarts (OTP's
            id). Default: the factory's ``__name__`` in lower case under a
            ``Supervisor``, ``<name>-<n>`` under a ``DynamicSupervisor``.
        restart: ``"permanent"`` (always restarted, even after a normal stop),
            ``"transient"`` (restarted only after a failure) or
            ``"temporary"`` (never restarted; its spec is dropped when it
            ends).
        shutdown: seconds the child gets to finish ``on_stop`` when the
            supervisor stops it, after which it is cancelled;
            ``"brutal_kill"`` cancels it at once (``on_stop`` does not run);
            ``"infinity"`` waits as long as it takes. Default: 5 seconds (the
            system's ``shutdown``) for workers, ``"infinity"`` for
            supervisors, as in OTP.
        significant: the child counts for the supervisor's ``auto_shutdown``;
            only for transient and temporary children.
        mailbox: the child's ``actors.Mailbox`` (default: the runtime's).
        backoff: delay this child's restarts (overrides the supervisor's).
        register_as: a registry name the child holds; every incarnation is
            spawned with it (``actors.lowlevel.spawn``'s ``register_as``), so
            it holds the name from before its ``on_start``, across restarts.
        subscriptions: topics the child holds, each ``"topic"`` or
            ``("topic", group)``; every incarnation is spawned subscribed, so
            they are restored on restart.
        singleton: with ``register_as``, a cluster singleton: on every node
            whose supervisor has this spec a keeper
            (``actors.lowlevel.Singleton``) runs in the child's place, and
            the child runs only on the node whose cluster-wide claim of the
            name succeeded; another node's keeper starts it when the name
            is free again (its node died or was cut off).
        placement: ``actors.Subprocess()`` runs every incarnation in a fresh
            child process, ``actors.Subprocess(pool="name")`` on a worker of
            that process pool; the death of the process is a crash like any
            other (``actors.ProcessExited``).
        **kwargs: keyword arguments for ``factory``.

    Raises:
        TypeError: a value of the wrong type, such as a factory that is not
            callable.
        ValueError: a value out of range, or ``significant=True`` on a
            permanent child (OTP rejects that combination too).

    Examples:
        >>> import actors
        >>> class Worker(actors.Actor):
        ...     def __init__(self, queue: str, *, batch: int = 1) -> None:
        ...         self.queue, self.batch = queue, batch
        >>> spec = ChildSpec(Worker, "jobs", batch=10, name="w1", restart="transient")
        >>> spec.args, dict(spec.kwargs), spec.restart, spec.kind
        (('jobs',), {'batch': 10}, 'transient', 'worker')
    """

    factory: Callable[..., Actor]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    name: str | None
    restart: RestartType
    shutdown: Shutdown | None
    significant: bool
    mailbox: Mailbox | None
    backoff: Backoff | None
    register_as: str | None
    subscriptions: tuple[tuple[str, str | None], ...]
    placement: Subprocess | None
    singleton: bool

    def __init__(
        self,
        factory: Callable[..., Actor],
        /,
        *args: Any,
        name: str | None = None,
        restart: RestartType = "permanent",
        shutdown: Shutdown | None = None,
        significant: bool = False,
        mailbox: Mailbox | None = None,
        backoff: Backoff | None = None,
        register_as: str | None = None,
        subscriptions: Iterable[str | tuple[str, str | None]] = (),
        placement: Subprocess | None = None,
        singleton: bool = False,
        **kwargs: Any,
    ) -> None:
        if not callable(factory):
            raise TypeError(
                f"ChildSpec needs an Actor subclass or a callable returning an Actor, "
                f"got {factory!r}"
            )
        if isinstance(factory, type) and not issubclass(factory, Actor):
            raise TypeError(
                f"ChildSpec({factory.__qualname__}): it is not an actors.Actor subclass"
            )
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"ChildSpec name must be a non-empty string without '/', got {name!r}")
        if restart not in RESTART_TYPES:
            raise ValueError(
                f"ChildSpec restart must be one of {', '.join(RESTART_TYPES)}; got {restart!r}"
            )
        shutdown = _check_shutdown(shutdown)
        if not isinstance(significant, bool):
            raise TypeError(f"ChildSpec significant must be True or False, got {significant!r}")
        if significant and restart == "permanent":
            raise ValueError(
                f"ChildSpec {name or _default_name(factory)!r}: a permanent child cannot be "
                f"significant (it never ends for good); make it transient or temporary"
            )
        if mailbox is not None and not isinstance(mailbox, Mailbox):
            raise TypeError(f"ChildSpec mailbox must be an actors.Mailbox, got {mailbox!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"ChildSpec backoff must be a supervision.Backoff, got {backoff!r}")
        if register_as is not None:
            try:
                lowlevel.check_name(register_as)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"ChildSpec register_as: {exc}") from None
        set_ = object.__setattr__
        set_(self, "factory", factory)
        set_(self, "args", args)
        set_(self, "kwargs", kwargs)  # a fresh dict: ours alone, and picklable
        set_(self, "name", name)
        set_(self, "restart", restart)
        set_(self, "shutdown", shutdown)
        set_(self, "significant", significant)
        set_(self, "mailbox", mailbox)
        set_(self, "backoff", backoff)
        set_(self, "register_as", register_as)
        set_(self, "subscriptions", _check_subscriptions(subscriptions))
        if placement is not None and not isinstance(placement, Subprocess):
            raise TypeError(
                f"ChildSpec placement must be an actors.Subprocess or None, got {placement!r}"
            )
        set_(self, "placement", placement)
        if not isinstance(singleton, bool):
            raise TypeError(f"ChildSpec singleton must be True or False, got {singleton!r}")
        if singleton and register_as is None:
            raise ValueError(
                "ChildSpec singleton=True needs register_as=: the cluster-wide name "
                "that makes it one"
            )
        set_(self, "singleton", singleton)

    def __repr__(self) -> str:
        parts = [getattr(self.factory, "__qualname__", repr(self.factory))]
        parts += [repr(a) for a in self.args]
        for field in (
            "name",
            "restart",
            "shutdown",
            "significant",
            "backoff",
            "register_as",
            "placement",
            "singleton",
        ):
            value = getattr(self, field)
            default = {"restart": "permanent", "significant": False, "singleton": False}.get(field)
            if value is not None and value != default:
                parts.append(f"{field}={value!r}")
        if self.subscriptions:
            parts.append(f"subscriptions={self.subscriptions!r}")
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"ChildSpec({', '.join(parts)})"

    @property
    def kind(self) -> ChildKind:
        """``"supervisor"`` if the factory is a supervisor class, else ``"worker"``.

        A ``functools.partial`` of a supervisor class is a supervisor too; any
        other factory function counts as a worker (give it
        ``shutdown="infinity"`` if it returns a supervisor).

        Examples:
            >>> from supervision import Supervisor
            >>> ChildSpec(Supervisor, []).kind
            'supervisor'
        """
        if getattr(_unwrap(self.factory), "_supervision_is_supervisor", False):
            return "supervisor"
        return "worker"

    @property
    def default_name(self) -> str:
        """The name a ``Supervisor`` gives this child: ``name`` or the
        factory's ``__name__`` in lower case.

        Examples:
            >>> import actors
            >>> ChildSpec(actors.Actor).default_name
            'actor'
        """
        return self.name if self.name is not None else _default_name(self.factory)

    # -- for the supervisors ------------------------------------------------

    def _spawn_shutdown(self) -> float | None:
        # The runtime's spawn(shutdown=): None is the system default, inf waits
        # forever, 0 cancels at once (brutal kills are also done by hand).
        shutdown = self.shutdown
        if shutdown is None:
            return math.inf if self.kind == "supervisor" else None
        if shutdown == "brutal_kill":
            return 0
        if shutdown == "infinity":
            return math.inf
        assert isinstance(shutdown, (int, float))
        return float(shutdown)

    def _spawn_arguments(
        self, name: str, restarts: int, last_failure: str | None = None
    ) -> dict[str, Any]:
        # Through the low-level seam: the registry name and subscriptions are
        # given to every incarnation before its on_start, so they follow
        # restarts; system.tree() shows the restart count.
        return {
            "name": name,
            "mailbox": self.mailbox,
            "shutdown": self._spawn_shutdown(),
            "register_as": self.register_as,
            "subscriptions": self.subscriptions,
            "restarts": restarts,
            "last_failure": last_failure,
            "placement": self.placement,
        }

    async def _spawn_incarnation(
        self,
        owner: ActorSystem | Context,
        name: str,
        restarts: int,
        last_failure: str | None = None,
    ) -> ActorRef:
        arguments = self._spawn_arguments(name, restarts, last_failure)
        if self.singleton:
            # Its keeper runs here; the child, where the claim succeeds.
            options = {
                key: arguments.pop(key)
                for key in ("mailbox", "shutdown", "subscriptions", "placement")
            }
            arguments["register_as"] = None
            arguments["subscriptions"] = ()
            arguments["shutdown"] = options["shutdown"]
            keeper = (self.factory, self.register_as, self.args, self.kwargs, options)
            return await lowlevel.spawn(owner, lowlevel.Singleton, keeper, {}, **arguments)
        return await lowlevel.spawn(owner, self.factory, self.args, self.kwargs, **arguments)

    def _spawn_incarnation_nowait(self, owner: ActorSystem | Context, name: str) -> ActorRef:
        arguments = self._spawn_arguments(name, 0)
        return lowlevel.spawn_nowait(owner, self.factory, self.args, self.kwargs, **arguments)


def _unwrap(factory: Callable[..., Actor]) -> Callable[..., Actor]:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def _default_name(factory: Callable[..., Actor]) -> str:
    name = getattr(_unwrap(factory), "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>":
        raise ValueError(
            f"ChildSpec({factory!r}) needs a name=: the factory has no usable __name__"
        )
    return name.lower()


def _check_shutdown(shutdown: object) -> Shutdown | None:
    if shutdown is None or shutdown in ("brutal_kill", "infinity"):
        return shutdown
    if isinstance(shutdown, bool) or not isinstance(shutdown, (int, float)):
        raise TypeError(
            f"ChildSpec shutdown must be seconds, 'brutal_kill' or 'infinity', got {shutdown!r}"
        )
    if shutdown == math.inf:
        return "infinity"
    if not 0 <= shutdown < math.inf:
        raise ValueError(f"ChildSpec shutdown must be >= 0 seconds, got {shutdown!r}")
    return shutdown


def _check_subscriptions(
    subscriptions: Iterable[str | tuple[str, str | None]],
) -> tuple[tuple[str, str | None], ...]:
    if isinstance(subscriptions, str):
        raise TypeError(
            f"ChildSpec subscriptions must be a list of topics, got the string "
            f"{subscriptions!r}; write [{subscriptions!r}]"
        )
    result: list[tuple[str, str | None]] = []
    for entry in subscriptions:
        if isinstance(entry, str):
            topic, group = entry, None
        elif (
            isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and (entry[1] is None or isinstance(entry[1], str))
        ):
            topic, group = entry
        else:
            raise TypeError(
                f"ChildSpec subscriptions entries must be 'topic' or ('topic', group), "
                f"got {entry!r}"
            )
        if not topic:
            raise ValueError("ChildSpec subscriptions cannot hold an empty topic")
        result.append((topic, group))
    return tuple(result)
