"""Registry names across a connection: one system keeps them, the other mirrors.

Names are system-wide: a child process uses its parent's. The system that
keeps them (:func:`serve_names`) sends the other (:func:`forward_names`) every
name it holds, then each change as it happens (``names.set``), before
anything it sends later: a ``whereis`` over there is as current as the last
message it got from here, and sees every name registered before that
message was sent.

Over there, ``register`` and ``unregister`` change the mirror at once
(``NameTaken`` for a name the mirror knows is taken) and tell the keeper
(``names.register``, ``names.release``), which decides: names stay unique
there. If another process took the name at the same moment, the keeper
keeps the first, answers ``names.refused``, and the loser's mirror is
corrected and logs the refusal (``register`` had already returned).

A holder is released where it lived: a process actor's name with its
stand-in, another actor's name when the forwarding side says it ended, and
every name held through a connection when the connection ends.

# Invariants:
# - The keeper's ``_Keeper.held`` has the names it holds for actors over
#   there that have no stand-in here; each is released when the connection
#   ends (if still theirs).
# - A mirror change never forwards back to the keeper (``here`` is False).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._exceptions import ActorStopped, NameTaken
from ._remote import RemoteRef

if TYPE_CHECKING:
    from ._peer import Peer
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors.registry")

SYNC: Final = "names.sync"  # forwarding side -> keeper: send every name, then changes
SET: Final = "names.set"  # keeper -> forwarding side: (name, ref | None, previous)
SNAPSHOT: Final = "names.snapshot"  # keeper -> forwarding side: {name: ref}
REGISTER: Final = "names.register"  # forwarding side -> keeper: (name, ref)
RELEASE: Final = "names.release"  # forwarding side -> keeper: (name, ref)
REFUSED: Final = "names.refused"  # keeper -> forwarding side: (name, ref, holder, why)


# -- the forwarding side ------------------------------------------------------


def forward_names(system: ActorSystem, peer: Peer) -> None:
    """Make ``system``'s names those of the system at the other end of
    ``peer``, which must :func:`serve_names`. Call it before anything in
    ``system`` registers a name."""
    registry = system.registry

    def on_change(name: str, ref: ActorRef | None, previous: ActorRef | None, here: bool) -> None:
        if not here:
            return  # learnt from the keeper
        if ref is not None:
            peer.signal(REGISTER, (name, ref))
        elif previous is not None:
            peer.signal(RELEASE, (name, previous))

    def on_snapshot(names: dict[str, ActorRef]) -> None:
        for name, ref in names.items():
            registry._mirror(name, ref, None)

    def on_set(change: tuple[str, ActorRef | None, ActorRef | None]) -> None:
        registry._mirror(*change)

    def on_refused(refusal: tuple[str, ActorRef, ActorRef | None, str]) -> None:
        name, ref, holder, why = refusal
        logger.error("registering %r for %s was refused by %s: %s", name, ref.path, peer.node, why)
        if holder is not None:
            registry._mirror(name, holder, ref)
        else:
            registry._mirror(name, None, ref)

    registry._name_hooks.append(on_change)
    peer.handlers[SNAPSHOT] = on_snapshot
    peer.handlers[SET] = on_set
    peer.handlers[REFUSED] = on_refused
    peer.signal(SYNC)


# -- the keeper's side --------------------------------------------------------


class _Keeper:
    """The names one peer's system uses here."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.registry = peer.system.registry
        self.held: dict[str, ActorRef] = {}

    def on_sync(self, _: Any) -> None:
        registry = self.registry
        self.peer.signal(SNAPSHOT, registry.names())
        registry._name_hooks.append(self.on_change)
        self.peer.start_soon(self.until_the_end)

    def on_change(
        self, name: str, ref: ActorRef | None, previous: ActorRef | None, here: bool
    ) -> None:
        self.peer.signal(SET, (name, ref, previous))

    async def until_the_end(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.registry._name_hooks.remove(self.on_change)
            held, self.held = self.held, {}
            for name, ref in held.items():
                if self.registry.whereis(name) == ref:
                    self.registry.unregister(name)

    def on_register(self, request: tuple[str, ActorRef]) -> None:
        name, ref = request
        try:
            if isinstance(ref, RemoteRef):
                holder = self.registry._hold(name, ref)
                if holder is None:
                    self.held[name] = ref
                else:
                    self._refuse(name, ref, holder, f"it is registered to {holder.path}")
            else:
                self.registry.register(name, ref)
        except NameTaken as error:
            self._refuse(name, ref, self.registry.whereis(name), str(error))
        except ActorStopped:
            pass  # it ended meanwhile: its release follows
        except Exception as error:
            logger.exception("%s: cannot register %r for %r", self.peer.node, name, ref)
            self._refuse(name, ref, self.registry.whereis(name), repr(error))

    def _refuse(self, name: str, ref: ActorRef, holder: ActorRef | None, why: str) -> None:
        self.peer.signal(REFUSED, (name, ref, holder, why))

    def on_release(self, request: tuple[str, ActorRef]) -> None:
        name, ref = request
        if self.held.get(name) == ref:
            del self.held[name]
        if self.registry.whereis(name) == ref:
            self.registry.unregister(name)


def serve_names(peer: Peer) -> None:
    """Keep the names of the system at the other end of ``peer`` here (it
    calls :func:`forward_names`)."""
    keeper = _Keeper(peer)
    peer.handlers[SYNC] = keeper.on_sync
    peer.handlers[REGISTER] = keeper.on_register
    peer.handlers[RELEASE] = keeper.on_release
