"""Snapshots of the actor tree, for people debugging and for dashboards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ActorInfo:
    """One live actor in a :class:`ActorTree` snapshot.

    Examples:
        >>> info = ActorInfo("/user/a", "Worker", "running", 0, 1000, 5, 0, ())
        >>> info.name
        'a'
    """

    path: str
    actor_class: str
    state: str
    mailbox: int
    mailbox_capacity: float
    processed: int
    restarts: int
    children: tuple[ActorInfo, ...]
    details: tuple[tuple[str, str], ...] = ()
    dead_letters: int = 0

    @property
    def name(self) -> str:
        """The last part of the path."""
        return self.path.rsplit("/", 1)[-1]

    def walk(self) -> Iterator[ActorInfo]:
        """This actor and all its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class ActorTree:
    """A snapshot of every live actor, from ``system.tree()``.

    ``str()`` renders it as an indented tree, one actor a line; dead-letter
    counts (the system's on the first line, each actor's on its own) are shown
    when not zero.

    Examples:
        >>> leaf = ActorInfo("/user/a", "Worker", "running", 2, 1000, 5, 0, ())
        >>> print(ActorTree((leaf,)))
        /user
          a  Worker  running  mailbox 2/1000  processed 5  restarts 0
    """

    actors: tuple[ActorInfo, ...]
    dead_letters: int = 0

    def walk(self) -> Iterator[ActorInfo]:
        """Every actor, depth first."""
        for actor in self.actors:
            yield from actor.walk()

    def find(self, path: str) -> ActorInfo | None:
        """The actor at ``path``, or ``None``."""
        return next((a for a in self.walk() if a.path == path), None)

    def __str__(self) -> str:
        lines = [f"/user  dead letters {self.dead_letters}" if self.dead_letters else "/user"]

        def render(info: ActorInfo, depth: int) -> None:
            cap = f"{info.mailbox_capacity:g}"
            line = (
                f"{'  ' * depth}{info.name}  {info.actor_class}  {info.state}  "
                f"mailbox {info.mailbox}/{cap}  processed {info.processed}  "
                f"restarts {info.restarts}"
            )
            if info.dead_letters:
                line += f"  dead letters {info.dead_letters}"
            for key, value in info.details:
                line += f"  {key} {value}"
            lines.append(line)
            for child in info.children:
                render(child, depth + 1)

        for actor in self.actors:
            render(actor, 1)
        return "\n".join(lines)
