"""``Supervisor``: a static list of children, a restart strategy, auto shutdown."""

from __future__ import annotations

from collections.abc import Sequence

from ._backoff import Backoff
from ._base import _Child, _SupervisorBase, logger
from ._exceptions import ChildStartFailed
from ._spec import ChildSpec
from ._strategy import AUTO_SHUTDOWNS, STRATEGIES, AutoShutdown, Strategy, affected


class Supervisor(_SupervisorBase):
    """An actor that starts children from specs and restarts them by OTP's rules.

    Children start in list order when the supervisor starts (``spawn`` returns
    once all have started) and stop in reverse order when it stops, each as
    its spec's ``shutdown`` says. When a child exits, its restart type decides
    whether it is restarted (permanent: always; transient: after a failure;
    temporary: never), and the strategy decides what else restarts with it:

    * ``"one_for_one"``: only that child.
    * ``"one_for_all"``: every child is stopped (reverse order) and all are
      started again (list order).
    * ``"rest_for_one"``: the children after it are stopped (reverse order),
      then it and they are started again (list order).

    Temporary children stopped because of a sibling are not restarted. A
    restarted child keeps its name and its place in the order.

    Restart intensity: if a restart would make more than ``max_restarts``
    restarts within ``within`` seconds (a group restart counts once), the
    supervisor instead stops all its children in reverse order and fails with
    ``actors.SupervisorGaveUp``, which its parent handles like any failure
    (another supervisor restarts it; a plain actor fails with it).

    Auto shutdown (OTP 24): with ``"any_significant"`` the supervisor stops
    itself (normally) when a significant child ends by itself and is not
    restarted; with ``"all_significant"``, when the last one that was running
    does. Children stopped by the supervisor (group restarts,
    ``terminate_child``) never trigger it.

    If a child fails to start when the supervisor starts, the children started
    before it are stopped in reverse order and the supervisor fails to start:
    ``spawn`` raises ``actors.ActorFailed`` caused by :class:`ChildStartFailed`,
    which names the child.

    Control it at runtime with :func:`start_child`, :func:`terminate_child`,
    :func:`restart_child`, :func:`delete_child`, :func:`which_children` and
    :func:`count_children`. Give a supervisor spawned directly with
    ``system.spawn`` a ``shutdown=math.inf`` so that its children's own
    timeouts decide how long stopping takes (a ``ChildSpec`` of a supervisor,
    and :func:`supervision.run`, do that for you).

    Args:
        children: the child specs, in start order; names must be unique.
        strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
        max_restarts: restarts allowed within ``within`` seconds (>= 0).
        within: the intensity window in seconds (> 0).
        auto_shutdown: ``"never"``, ``"any_significant"`` or
            ``"all_significant"``.
        backoff: delay restarts of every child without its own backoff.

    Raises:
        ValueError: a bad strategy, auto_shutdown, duplicate child names, or a
            significant child under ``auto_shutdown="never"``.
        TypeError: a child that is not a ``ChildSpec``.

    These are raised where the supervisor is spawned, by ``spawn`` itself
    (``Actor.check_args``), before anything starts.

    Examples:
        >>> import actors
        >>> from supervision import ChildSpec, Supervisor, which_children
        >>> class Worker(actors.Actor):
        ...     async def receive(self, message):
        ...         if message == "crash":
        ...             raise RuntimeError("boom")
        ...         return message
        >>> async def main():
        ...     async with actors.ActorSystem() as system:
        ...         sup = await system.spawn(
        ...             Supervisor,
        ...             [ChildSpec(Worker, name="a"), ChildSpec(Worker, name="b")],
        ...             strategy="one_for_all",
        ...             name="sup",
        ...         )
        ...         [a, b] = await which_children(sup)
        ...         await a.ref.tell("crash")
        ...         while (await which_children(sup))[1].restarts == 0:
        ...             pass
        ...         return [(c.name, c.state, c.restarts) for c in await which_children(sup)]
        >>> actors.run(main)
        [('a', 'running', 1), ('b', 'running', 1)]
    """

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        within: float = 5.0,
        auto_shutdown: AutoShutdown = "never",
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(max_restarts=max_restarts, within=within, backoff=backoff)
        requested: str = strategy
        if requested not in STRATEGIES:
            raise ValueError(
                f"Supervisor strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}"
                + (
                    " (use DynamicSupervisor for simple_one_for_one)"
                    if requested == "simple_one_for_one"
                    else ""
                )
            )
        if auto_shutdown not in AUTO_SHUTDOWNS:
            raise ValueError(
                f"Supervisor auto_shutdown must be one of {', '.join(AUTO_SHUTDOWNS)}; "
                f"got {auto_shutdown!r}"
            )
        self._strategy: Strategy = strategy
        self._auto_shutdown: AutoShutdown = auto_shutdown
        if isinstance(children, ChildSpec) or not isinstance(children, Sequence):
            raise TypeError(f"Supervisor children must be a list of ChildSpec, got {children!r}")
        names: dict[str, int] = {}
        for index, spec in enumerate(children):
            if not isinstance(spec, ChildSpec):
                raise TypeError(
                    f"Supervisor child {index} is {spec!r}, not a supervision.ChildSpec"
                )
            self._check_spec(spec)
            name = spec.default_name
            if name in names:
                raise ValueError(
                    f"Supervisor children {names[name]} and {index} are both named {name!r}: "
                    f"give each ChildSpec a distinct name="
                )
            names[name] = index
        self._specs = list(children)

    async def on_start(self) -> None:
        """Start the children in list order; on a failure stop the started ones
        in reverse order and fail with :class:`ChildStartFailed`."""
        self._show_in_tree("strategy", self._strategy)
        started: list[_Child] = []
        for index, spec in enumerate(self._specs):
            child = self._new_child(spec, spec.default_name)
            self._children[child.name] = child
            try:
                await self._start(child, restarted=False)
            except ChildStartFailed as exc:
                del self._children[child.name]
                for other in reversed(started):
                    await self._stop_quietly(other)
                cause = exc.__cause__
                original = cause.__cause__ if cause is not None else None
                error = original if original is not None else cause
                raise ChildStartFailed(
                    self._path,
                    child.name,
                    f"supervisor {self._path} could not start child {child.name!r} "
                    f"(child {index + 1} of {len(self._specs)}): {type(error).__name__}: "
                    f"{error}; the {len(started)} children started before it were "
                    f"stopped in reverse order",
                ) from cause
            started.append(child)

    def _affected(self, child: _Child) -> list[_Child]:
        if self._strategy == "one_for_one":
            return [child]
        return affected(self._strategy, list(self._children.values()), child)

    def _check_spec(self, spec: ChildSpec) -> None:
        if spec.significant and self._auto_shutdown == "never":
            raise ValueError(
                f"child {spec.default_name!r} is significant, but the supervisor's "
                f"auto_shutdown is 'never' (OTP rejects this too): set auto_shutdown to "
                f"'any_significant' or 'all_significant', or drop significant=True"
            )

    async def _ended_by_itself(self, child: _Child) -> None:
        mode = self._auto_shutdown
        if mode == "never" or not child.spec.significant:
            return
        if mode == "all_significant" and any(
            c.spec.significant and c.state != "terminated" for c in self._children.values()
        ):
            return
        logger.info(
            "supervisor %s: significant child %s ended; auto_shutdown=%s stops the supervisor",
            self._path,
            child.name,
            mode,
        )
        await self.context.stop()

    def __repr__(self) -> str:
        return f"<Supervisor {self._strategy} {len(self._specs)} specs>"
