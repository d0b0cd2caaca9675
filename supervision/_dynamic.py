"""``DynamicSupervisor``: children started on demand (OTP's simple_one_for_one)."""

from __future__ import annotations

import itertools
import math

import anyio

from ._backoff import Backoff
from ._base import _Child, _SupervisorBase
from ._exceptions import TooManyChildren
from ._spec import ChildSpec


class DynamicSupervisor(_SupervisorBase):
    """A supervisor that starts no children itself: :func:`start_child` adds them.

    Elixir's ``DynamicSupervisor`` (OTP's ``simple_one_for_one``): the strategy
    is one_for_one, children are restarted by their restart type and the same
    restart intensity as :class:`Supervisor`, and any number of children can
    share one spec. A child that ends for good, or is terminated with
    :func:`terminate_child`, is removed (it does not stay as a terminated
    spec). A spec without a name gets ``<factory name>-<n>``, unique within the
    supervisor, kept across restarts.

    When the supervisor stops, it stops all its children at once, each within
    its own shutdown, as OTP does for dynamic children: their order is not
    defined.

    Args:
        max_children: how many children it holds at most (running or waiting
            to restart); :func:`start_child` beyond that raises
            :class:`TooManyChildren`.
        max_restarts: restarts allowed within ``within`` seconds (>= 0).
        within: the intensity window in seconds (> 0).
        backoff: delay restarts of children without their own backoff.

    Raises:
        ValueError: ``max_children`` below 0.
        TypeError: ``max_children`` not an int (or ``math.inf``).

    Examples:
        >>> import actors
        >>> from supervision import ChildSpec, DynamicSupervisor, count_children, start_child
        >>> class Session(actors.Actor):
        ...     def __init__(self, user: str) -> None:
        ...         self.user = user
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(DynamicSupervisor, max_children=10, name="sessions")
        ...         ann = await start_child(sup, ChildSpec(Session, "ann", restart="temporary"))
        ...         bob = await start_child(sup, ChildSpec(Session, "bob", restart="temporary"))
        ...         return ann.path, bob.path, (await count_children(sup)).active
        >>> actors.run(main)
        ('/user/sessions/session-1', '/user/sessions/session-2', 2)
    """

    def __init__(
        self,
        *,
        max_children: float = math.inf,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(max_restarts=max_restarts, within=within, backoff=backoff)
        if isinstance(max_children, bool) or not (
            isinstance(max_children, int) or max_children == math.inf
        ):
            raise TypeError(f"max_children must be an int or math.inf, got {max_children!r}")
        if max_children < 0:
            raise ValueError(f"max_children must be >= 0, got {max_children!r}")
        self._max_children = max_children
        self._serial = itertools.count(1)

    async def on_start(self) -> None:
        """Record the strategy for ``system.tree()``; start nothing."""
        self._show_in_tree("strategy", "dynamic")

    def _check_spec(self, spec: ChildSpec) -> None:
        if spec.significant:
            raise ValueError(
                f"child {spec.name or spec.factory!r} is significant, but a DynamicSupervisor "
                f"has no auto_shutdown: drop significant=True"
            )

    def _name_for(self, spec: ChildSpec) -> str:
        if spec.name is not None:
            return spec.name
        base = spec.default_name
        while True:
            name = f"{base}-{next(self._serial)}"
            if name not in self._children:
                return name

    def _check_capacity(self) -> None:
        if len(self._children) >= self._max_children:
            raise TooManyChildren(
                f"dynamic supervisor {self._path} already has max_children="
                f"{self._max_children} children; nothing was started: terminate some "
                f"or raise max_children"
            )

    def _forget_when_ended(self, child: _Child) -> bool:
        return True

    async def on_stop_children(self) -> None:
        """Stop all the children at once, each as its spec's shutdown says."""
        children = list(self._children.values())
        if len(children) == 1:
            await self._stop_quietly(children[0])
            return
        async with anyio.create_task_group() as tg:
            for child in children:
                tg.start_soon(self._stop_quietly, child)

    def __repr__(self) -> str:
        return f"<DynamicSupervisor {len(self._children)} children>"
