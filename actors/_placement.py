"""Placements: where ``spawn`` runs an actor when not in the caller's process."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._actor import Actor

_BACKENDS = ("asyncio", "trio")


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Subprocess({name}=...) must be a positive number, got {value!r}")
    if value == math.inf:
        raise ValueError(f"Subprocess({name}=...) must be finite, got {value!r}")


@dataclass(frozen=True)
class Subprocess:
    """Run the actor in a fresh Python interpreter (``spawn(..., placement=...)``).

    The actor's ref is an ordinary :class:`ActorRef`: ``tell``, ``ask``,
    ``stop``, ``watch``, registry names and topics work as in-process, with
    messages pickled on the way (see the guide's "Processes" page). The
    process is started with ``python -m actors._child``, never forked; it
    gets a fresh random key through an inherited socket, and exits when its
    parent's connection ends (on Linux also when the parent dies). Its death
    fails the actor with :class:`ProcessExited`; a supervisor restarts it in
    a fresh process.

    Args:
        backend: ``"asyncio"`` or ``"trio"`` for the child's event loop;
            ``None``: the parent's.
        python: the interpreter to run; it must have the same Python,
            cloudpickle and actors versions (the handshake checks).
        env: the child's environment (``None``: the parent's).
        cwd: the child's working directory (``None``: the parent's).
        start_timeout: seconds for the process to start, answer the
            handshake and start the actor.
        heartbeat: seconds between heartbeats; a child silent for
            ``heartbeat * misses`` is declared hung, killed and reported as
            :class:`ProcessHung`.
        misses: heartbeats missed before a child is declared hung.
        pool: the name of a process pool (``system.process_pool(name, ...)``)
            whose workers host the actor, instead of a process of its own.
            The pool's placement says how its workers run: with ``pool``,
            only ``start_timeout`` (which then covers waiting for a live
            worker and the actor's ``on_start``) and ``by_value`` may be set.
        by_value: modules whose classes and functions are pickled by value
            (cloudpickle's ``register_pickle_by_value``), in this process and
            the child, for code the child cannot import.
        initializer: a picklable callable without arguments that the child
            runs first, before its actor starts (as ``multiprocessing.Pool``'s
            initializer): to set up logging, or an OpenTelemetry tracer
            provider and exporter. An error in it ends the child, so the
            spawn fails. While the parent is traced
            (``actors.tracing.instrument``) the child then instruments
            itself with the global tracer provider.

    Examples:
        >>> Subprocess(backend="trio", heartbeat=0.5).misses
        3
    """

    backend: str | None = None
    python: str = field(default=sys.executable)
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    start_timeout: float = 10.0
    heartbeat: float = 1.0
    misses: int = 3
    pool: str | None = None
    by_value: tuple[str, ...] = ()
    initializer: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in _BACKENDS:
            raise ValueError(
                f"Subprocess(backend=...) must be 'asyncio', 'trio' or None, got {self.backend!r}"
            )
        _positive("start_timeout", self.start_timeout)
        _positive("heartbeat", self.heartbeat)
        if isinstance(self.misses, bool) or not isinstance(self.misses, int) or self.misses < 1:
            raise ValueError(
                f"Subprocess(misses=...) must be a whole number >= 1, got {self.misses!r}"
            )
        if self.pool is not None and (not isinstance(self.pool, str) or not self.pool):
            raise ValueError(f"Subprocess(pool=...) must be a non-empty name, got {self.pool!r}")
        if self.pool is not None:
            # The pool's workers are running already: how they run is the pool's.
            own = [
                f"{name}={getattr(self, name)!r}"
                for name in (
                    "backend",
                    "python",
                    "env",
                    "cwd",
                    "heartbeat",
                    "misses",
                    "initializer",
                )
                if getattr(self, name) != _DEFAULTS[name]
            ]
            if own:
                raise ValueError(
                    f"Subprocess(pool={self.pool!r}) runs the actor on the pool's workers, "
                    f"which the pool starts: pass {', '.join(own)} to "
                    f"system.process_pool(..., placement=Subprocess(...)) instead"
                )
        if self.initializer is not None and not callable(self.initializer):
            raise TypeError(
                f"Subprocess(initializer=...) must be a callable without arguments, "
                f"got {self.initializer!r}"
            )
        env: object = self.env
        if env is not None and (
            not isinstance(env, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise TypeError(
                f"Subprocess(env=...) must map names to str values, like "
                f"{{'LOG_LEVEL': 'debug'}}, got {env!r}"
            )
        by_value: object = self.by_value
        if isinstance(by_value, str):
            modules: tuple[object, ...] = (by_value,)
        elif isinstance(by_value, Iterable):
            modules = tuple(by_value)
        else:
            modules = (by_value,)
        if not all(isinstance(m, str) and m for m in modules):
            raise TypeError(
                f"Subprocess(by_value=...) must be module names (str), like "
                f"('myapp.jobs',), got {by_value!r}"
            )
        object.__setattr__(self, "by_value", modules)


_DEFAULTS = {name: value.default for name, value in Subprocess.__dataclass_fields__.items()}


def place(
    placement: object,
    factory: Callable[..., Actor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Callable[..., Actor], tuple[Any, ...], dict[str, Any]]:
    """What to spawn here for ``factory(*args, **kwargs)`` placed by
    ``placement``: the local stand-in of the remote actor."""
    if not isinstance(placement, Subprocess):
        raise TypeError(
            f"placement must be an actors.Subprocess (or None), got "
            f"{type(placement).__name__} {placement!r}"
        )
    from ._actor import check_factory
    from ._proxy import ProcessActor

    check_factory(factory, args, kwargs)
    return ProcessActor, (placement, factory, args, kwargs), {}
