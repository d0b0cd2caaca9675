"""Names and members of a cluster, kept in the key-value bucket ``ACTORS_<cluster>``.

Each key is a lease: a node writes it with ``create`` (a compare-and-set, so
of many claimers one wins), renews it every third of the lease with
``update(last=revision)``, and gives it a per-key TTL of the lease, so a key
whose node stops renewing (dead, cut off) expires, and the server's expiry
marker tells every watcher::

    names.<name>   {"node": ..., "path": ..., "uid": ..., "claim": ...}   a cluster-wide name
    nodes.<node>   {"node": ..., "claim": ...}                            a node that is up

``claim`` is a token of the ``create`` that wrote the key: a claim whose
answer was lost recognises its own write by it, never an earlier claim's
(whose TTL started before this claim was sent). A claim that gives up after
a try without an answer deletes what it may have stored (if the key holds
its token).

Fencing: a node that has not renewed a key by ``lease - lease/3`` after it
sent the last write the server stored gives the key up at once: it stops
answering for the name (the local name goes) and ends the named actor with
:class:`NameLost`. The server started the key's TTL no earlier than that
send, so the node has let go a third of a lease before anyone else can
create the key again. Losing its own ``nodes.<node>`` key fences all of a
node's names. A renewal refused with another revision (the key was taken
over) fences at once.

Every node watches the bucket: ``whereis`` of a name held elsewhere is
answered from that watch's cache, stale by at most the watch's delay (a
holder that lost its name is gone from the cache when its key's expiry
marker arrives: within one lease).

# Invariants:
# - ``_held[key]`` is a key this node wrote and believes it holds at
#   ``revision``; it answers for it only until ``fence_at`` (send time of the
#   last stored write + lease - margin), when ``_keep`` fences it, whatever
#   the NATS connection is doing.
# - A held name with an actor is in the local registry for that actor exactly
#   while it is in ``_held``; releasing either releases the other (a fenced
#   name leaves ``_held`` first, so its local release deletes nothing).
# - ``_cache`` holds the last value the watcher gave of each ``names.*`` key
#   that holds a value; ``_members`` the same for ``nodes.*``. ``_found``
#   has a ref only for a ``_cache`` entry of another node, made from it
#   (dropped when the entry goes or names another holder).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ._exceptions import ActorsError, ActorStopped, NameLost, NameTaken, NodeDown
from ._signal import Signal

if TYPE_CHECKING:
    from ._cell import Cell
    from ._nats import Client, KeyValue, KeyWatcher, KvEntry
    from ._ref import ActorRef
    from ._system import ActorSystem

logger = logging.getLogger("actors.cluster")
T = TypeVar("T")

#: The default lease, in seconds. A node fences a key two thirds of a lease
#: after its last stored renewal, which may be a third of a lease old when a
#: server dies: a third of the lease (10 s) must outlast the stream leader's
#: election in a server cluster (4 to 9 s), or every name is lost to it.
DEFAULT_LEASE: Final = 30.0
#: Seconds a release or a fenced key's best-effort delete may take when
#: the system closes.
_RELEASE_GRACE: Final = 2.0
#: Seconds for which a node's start makes its watch of the bucket again when
#: the server does not answer in time (loaded, or electing a leader: 4 to 9 s).
OPEN_PATIENCE: Final = 30.0
_PEER_OFFLINE: Final = 10005  # JetStream: no suitable peers for placement


def check_lease(lease: object) -> float:
    """A valid lease in seconds (the server keeps whole seconds, at least 1)."""
    if isinstance(lease, bool) or not isinstance(lease, (int, float)):
        raise TypeError(f"lease must be a number of seconds, got {type(lease).__name__}")
    if not 1.0 <= lease < math.inf:
        raise ValueError(
            f"lease must be at least 1 second (the server keeps whole seconds), got {lease!r}"
        )
    return float(lease)


@dataclass(frozen=True)
class MemberUp:
    """A node joined the cluster (or was up when the iteration began).

    Examples:
        >>> from actors.cluster import MemberUp
        >>> MemberUp("api-1").node
        'api-1'
    """

    node: str


@dataclass(frozen=True)
class MemberDown:
    """A node left the cluster: it stopped, or its lease expired (dead or
    cut off from NATS). ``reason`` is the ``NodeDown`` its actors' watchers get.

    Examples:
        >>> from actors.cluster import MemberDown
        >>> MemberDown("api-1", None).node
        'api-1'
    """

    node: str
    reason: BaseException | None


class _Lease:
    """A key this node holds (see the module's invariants)."""

    __slots__ = (
        "cell",
        "changed",
        "claim",
        "fence_at",
        "key",
        "name",
        "ref",
        "released",
        "revision",
        "scope",
        "sent",
        "value",
        "writing",
    )

    def __init__(
        self, key: str, name: str | None, value: bytes, revision: int, sent: float, claim: str
    ) -> None:
        self.key = key
        self.name = name
        self.value = value
        #: The token of the claim that made the key (in its value).
        self.claim = claim
        self.revision = revision
        self.sent = sent
        self.fence_at = math.inf
        self.ref: ActorRef | None = None
        self.cell: Cell | None = None
        #: The value changed since it was last written: write it at once.
        self.changed = False
        #: A renewal is in flight; ``released``: given up meanwhile.
        self.writing = False
        self.released = False
        self.scope = anyio.CancelScope()


def _not_renewed(lease: float, tries: int, last: str) -> str:
    """Why a key was fenced for want of a renewal: how its writes ended."""
    why = f"its lease was not renewed within {lease:g} s"
    if not tries:
        return f"{why}: no write could be sent in time (was the event loop blocked?)"
    return f"{why}: {tries} {'write' if tries == 1 else 'writes'} failed, the last with {last}"


def _encode(holder: dict[str, Any], claim: str) -> bytes:
    return json.dumps({**holder, "claim": claim}).encode()


def _holder(entry_value: bytes) -> dict[str, Any]:
    try:
        value = json.loads(entry_value)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ClusterNames:
    """A node's cluster-wide names and membership (see the module's notes).

    Made and run by the node: ``open()`` before the system's actors start,
    ``start()`` in the system, ``close()`` at its end.
    """

    def __init__(
        self,
        system: ActorSystem,
        client: Client,
        cluster: str,
        *,
        lease: float = DEFAULT_LEASE,
        replicas: int | None = None,
        resolve: Callable[[str, str, int], ActorRef | None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.system = system
        self.client = client
        self.node = system.name
        self.bucket = f"ACTORS_{cluster}"
        self.lease = check_lease(lease)
        #: Fencing happens this long before the key can expire.
        self.margin = self.lease / 3
        self._replicas = replicas
        #: Seconds a claim may wait for the bucket to answer.
        self.timeout = timeout
        self._resolve = resolve
        self.kv: KeyValue | None = None
        self._watcher: KeyWatcher | None = None
        self._held: dict[str, _Lease] = {}
        self._claiming: set[str] = set()
        self._cache: dict[str, tuple[str, str, int, int]] = {}
        #: Refs made from ``_cache`` entries of other nodes, until they change.
        self._found: dict[str, ActorRef] = {}
        #: The names whose keys hold a value (a reservation too), and a
        #: signal set (and replaced) whenever one goes.
        self._taken: set[str] = set()
        self._freed = Signal()
        self._members: dict[str, int] = {}
        self._listeners: list[MemoryObjectSendStream[MemberUp | MemberDown]] = []
        self._on_member_down: list[Callable[[str, BaseException], None]] = []
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closing = False
        self._closed = Signal()
        self._releases: list[tuple[str, int]] = []
        self._release_wanted = Signal()

    def __repr__(self) -> str:
        return f"<ClusterNames {self.node!r} in {self.bucket}: {len(self._held)} held>"

    # -- lifetime -------------------------------------------------------------------

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        # A call of a node's start, made again for OPEN_PATIENCE seconds
        # while the servers do not answer in time, are not ready (503) or
        # have a server a replica needs offline (10005); any other refusal
        # ends it at once.
        from ._nats import JetStreamError, NatsTimeout, NoResponders

        deadline = anyio.current_time() + OPEN_PATIENCE
        pause = 0.1
        while True:
            try:
                return await call()
            except (NatsTimeout, NoResponders, JetStreamError) as error:
                transient = not isinstance(error, JetStreamError) or (
                    error.code == 503 or error.err_code == _PEER_OFFLINE
                )
                if not transient or anyio.current_time() + pause > deadline:
                    raise
                logger.warning("%s: %s again: %s", self.node, what, error)
            await anyio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _open_watch(self, kv: KeyValue) -> KeyWatcher:
        # The watch of names and nodes; one made without an answer is left
        # to the server's inactive threshold, the next has a name of its own.
        async def enter() -> KeyWatcher:
            watcher = kv.watch(["names.>", "nodes.>"])
            await watcher.__aenter__()
            return watcher

        return await self._patiently(f"the watch of bucket {self.bucket} is made", enter)

    async def open(self, *, take_over: bool = False) -> None:
        """Create (or bind) the bucket, claim ``nodes.<node>`` and read the
        names and members there are.

        Args:
            take_over: the caller knows no node of this name is up: take
                over a ``nodes.<node>`` key left by a dead one (an
                incarnation that is only cut off will fence itself when its
                renewal is refused).

        Raises:
            NameTaken: A node of this name is up.
        """
        from ._nats import JetStream, KeyValueError, bind_bucket, create_bucket

        js = JetStream(self.client)
        replicas = self._replicas
        if replicas is None:
            # R3 when the servers are a cluster (the others announce
            # themselves), else the one server keeps the only copy.
            others = self.client.server_info.get("connect_urls") or ()
            replicas = min(3, 1 + len(others))
        ttl = math.ceil(self.lease)
        try:
            self.kv = await self._patiently(
                f"bucket {self.bucket} is created",
                lambda: create_bucket(
                    js,
                    self.bucket,
                    history=1,
                    marker_ttl=ttl,
                    allow_msg_ttl=True,
                    replicas=replicas,
                    description="actors: cluster-wide names and nodes",
                ),
            )
        except KeyValueError:  # there with another configuration: use it as it is
            self.kv = await self._patiently(
                f"bucket {self.bucket} is bound", lambda: bind_bucket(js, self.bucket)
            )
        watcher = self._watcher = await self._open_watch(self.kv)
        try:
            for entry in await watcher.initial():
                self._seen(entry)
            try:
                await self._create(
                    f"nodes.{self.node}", None, {"node": self.node}, take_over=take_over
                )
            except NameTaken:
                raise NameTaken(
                    f"a node named {self.node!r} is up in bucket {self.bucket}: give each "
                    "node (its ActorSystem) a unique name"
                ) from None
        except BaseException:
            await self.close()  # its consumer goes with it
            raise
        self.system.registry._name_hooks.append(self._name_changed)

    def start(self) -> None:
        """Run the leases and the watch in a task of the system."""
        self.system._closing_hooks.append(self._on_closing)
        self.system._start(self._serve, name=f"cluster names {self.node}")

    def _on_closing(self) -> None:
        self._closing = True
        self._closed.set()

    async def close(self) -> None:
        """Stop watching (after the system's tasks have ended)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_RELEASE_GRACE):
                await watcher.aclose()
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    async def _serve(self) -> None:
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            for lease in list(self._held.values()):
                task_group.start_soon(self._keep, lease)
            task_group.start_soon(self._watch)
            task_group.start_soon(self._release_loop)
            await self._closed.wait()
            # Every actor has stopped: their names are queued for release.
            for lease in list(self._held.values()):
                if lease.name is None:
                    self._release(lease)
            with anyio.move_on_after(_RELEASE_GRACE):
                await self._release_all()
            task_group.cancel_scope.cancel()

    # -- claims ---------------------------------------------------------------------

    async def _create(
        self, key: str, name: str | None, holder: dict[str, Any], *, take_over: bool = False
    ) -> _Lease:
        from ._nats import BucketNotFound, KeyExists, NatsTimeout

        assert self.kv is not None
        # The claim's own token: a write found after a lost answer is this
        # call's only if it holds the token, not an earlier claim's of the
        # same holder, whose TTL started before ``sent``.
        claim = secrets.token_hex(8)
        value = _encode(holder, claim)
        sent = anyio.current_time()
        retried = False
        try:
            # A bucket being made, or a server cluster electing a leader (4 to 9
            # s), answers nothing or 503 for a while: the claim waits for it.
            with anyio.fail_after(self.timeout):
                while True:
                    try:
                        revision = await self.kv.create(key, value, ttl=math.ceil(self.lease))
                        break
                    except KeyExists:
                        pass
                    except (BucketNotFound, NatsTimeout) as error:
                        logger.debug("%s: claiming %s: %r; trying again", self.node, key, error)
                        retried = True  # it may have been stored all the same
                        await anyio.sleep(0.1)
                        continue
                    try:
                        entry = await self.kv.get(key)
                    except (BucketNotFound, NatsTimeout) as error:
                        logger.debug("%s: reading %s: %r; trying again", self.node, key, error)
                        await anyio.sleep(0.1)
                        continue
                    if entry is None:  # its holder let go meanwhile
                        await anyio.sleep(0.01)
                        continue
                    if retried and entry.value == value:
                        revision = entry.revision  # our earlier try was stored
                        break
                    if take_over:
                        revision = await self.kv.update(
                            key, value, last=entry.revision, ttl=math.ceil(self.lease)
                        )
                        break
                    found = _holder(entry.value)
                    where = found.get("node", "another node")
                    path = found.get("path")
                    held = f"{key.split('.', 1)[1]!r} is held by {where}" + (
                        f" ({path})" if path else ""
                    )
                    if where == self.node:  # not in _held: not a claim this node holds
                        raise NameTaken(
                            f"{held}, an earlier claim this node no longer holds (released "
                            "and not deleted yet, given up without an answer, or made by an "
                            f"earlier run of this node): it is gone within the lease of "
                            f"{self.lease:g} s"
                        )
                    raise NameTaken(
                        f"{held} in the cluster: pick another name, or wait until its actor "
                        f"stops (or its node's lease of {self.lease:g} s expires)"
                    )
        except BaseException:
            if retried:  # a try without an answer may have stored the key
                with anyio.CancelScope(shield=True):
                    await self._withdraw(key, value)
            raise
        lease = _Lease(key, name, value, revision, sent, claim)
        lease.fence_at = sent + self.lease - self.margin
        self._held[key] = lease
        if self._task_group is not None:
            self._task_group.start_soon(self._keep, lease)
        return lease

    async def _withdraw(self, key: str, value: bytes) -> None:
        """Delete ``key`` if it holds ``value``: what a claim that gave up may
        have stored, so that it does not hold the name for a lease. Best
        effort, within ``_RELEASE_GRACE``: else the key expires by itself."""
        from ._nats import NatsError

        assert self.kv is not None
        with anyio.move_on_after(_RELEASE_GRACE):
            try:
                entry = await self.kv.get(key)
                if entry is not None and entry.value == value:
                    await self.kv.delete(key, last=entry.revision)
            except NatsError as error:
                logger.debug("%s: withdrawing %s: %r", self.node, key, error)

    async def claim(self, name: str, ref: ActorRef) -> None:
        """Claim ``name`` for ``ref`` cluster-wide (see ``Registry.claim``)."""
        from ._registry import _check_name

        registry = self.system.registry
        _check_name(name)
        cell = registry._live_cell(ref, "claim", f"claim {name!r} for")
        key = f"names.{name}"
        held = self._held.get(key)
        if held is not None and held.ref == ref:
            return
        local = registry._names.get(name)
        if local is not None and local != ref:
            raise NameTaken(
                f"the name {name!r} is registered to {local.path} on this node: pick "
                "another name, or unregister it first"
            )
        if held is not None or name in self._claiming:
            raise NameTaken(f"the name {name!r} is held or being claimed on {self.node}")
        self._claiming.add(name)
        try:
            lease = await self._create(key, name, self._holder_of(cell))
        finally:
            self._claiming.discard(name)
        if not cell.alive:
            self._release(lease)
            raise ActorStopped(f"{ref.path} stopped while claiming {name!r}; the name is released")
        self._bind(lease, cell)
        try:
            registry.register(name, cell.ref)
        except BaseException:
            self._release(lease)
            raise

    async def reserve(self, name: str) -> None:
        """Claim ``name`` for an actor about to be spawned with ``register_as``:
        the spawn's registration binds it (see `_name_changed`); `unreserve`
        gives it up if the spawn failed.

        Raises:
            NameTaken: another node, or actor here, holds it.
        """
        key = f"names.{name}"
        local = self.system.registry._names.get(name)
        if local is not None or key in self._held or name in self._claiming:
            where = local.path if local is not None else "an actor being spawned"
            raise NameTaken(
                f"spawn option register_as={name!r}: the name is held by {where} on "
                f"{self.node}; stop that actor or unregister the name first"
            )
        self._claiming.add(name)
        try:
            await self._create(key, name, {"node": self.node, "path": None, "uid": None})
        finally:
            self._claiming.discard(name)

    def unreserve(self, name: str) -> None:
        """Give up a reservation no actor took."""
        lease = self._held.get(f"names.{name}")
        if lease is not None and lease.ref is None:
            self._release(lease)

    def _holder_of(self, cell: Cell) -> dict[str, Any]:
        return {"node": self.node, "path": cell.path, "uid": cell.uid}

    def _bind(self, lease: _Lease, cell: Cell) -> None:
        lease.ref = cell.ref
        lease.cell = cell
        assert lease.name is not None
        self._cache[lease.name] = (self.node, cell.path, cell.uid, lease.revision)

    def _name_changed(
        self, name: str, ref: ActorRef | None, previous: ActorRef | None, here: bool
    ) -> None:
        lease = self._held.get(f"names.{name}")
        if lease is None or not here:
            return
        if ref is not None and lease.ref is None:
            # A spawn with register_as took its reservation: say who holds it.
            cell = ref._cell
            if cell is not None:
                self._bind(lease, cell)
                lease.value = _encode(self._holder_of(cell), lease.claim)
                lease.changed = True
                lease.scope.cancel()  # write the value now (``_keep`` goes on)
        elif ref is None and previous is not None and previous == lease.ref:
            self._release(lease)

    def _release(self, lease: _Lease) -> None:
        """Give ``lease`` up and delete its key (at its revision only); after
        the write in flight, if there is one, which changes the revision."""
        self._forget_lease(lease)
        lease.released = True
        if not lease.writing:
            self._releases.append((lease.key, lease.revision))
            self._release_wanted.set()

    def _forget_lease(self, lease: _Lease) -> None:
        if self._held.get(lease.key) is lease:
            del self._held[lease.key]
        lease.fence_at = math.inf
        lease.scope.cancel()
        if lease.name is not None:
            cached = self._cache.get(lease.name)
            if cached is not None and cached[0] == self.node:
                del self._cache[lease.name]
                self._found.pop(lease.name, None)

    # -- renewing and fencing ----------------------------------------------------------

    async def _keep(self, lease: _Lease) -> None:
        from ._nats import NatsError, WrongRevision

        renew_every = self.lease / 3
        retry = min(0.1, self.lease / 20)
        # One write waits at most this long before it is sent again: while
        # the bucket's leader is elected, a write may get no answer at all,
        # and waiting out the client's timeout for it would leave too little
        # of the lease for the write after the election (a lost answer is
        # found again by _stored_anyway).
        attempt = max(1.0, self.lease / 15)
        while self._held.get(lease.key) is lease:
            lease.scope = anyio.CancelScope(deadline=lease.sent + renew_every)
            if not lease.changed:
                with lease.scope:
                    await anyio.sleep_forever()
            lease.changed = False
            if self._held.get(lease.key) is not lease:
                return
            tries = 0  # the writes of this renewal, and how the last one ended
            last = ""
            while True:
                sent = anyio.current_time()
                if sent >= lease.fence_at:
                    self._fence(lease, _not_renewed(self.lease, tries, last))
                    return
                assert self.kv is not None
                failed: NatsError | None = None
                revision = 0
                bound = min(lease.fence_at - sent, attempt)
                tries += 1
                with anyio.move_on_after(bound):
                    lease.writing = True
                    try:
                        revision = await self.kv.update(
                            lease.key, lease.value, last=lease.revision, ttl=math.ceil(self.lease)
                        )
                    except NatsError as error:
                        failed = error
                    finally:
                        lease.writing = False
                if lease.released:
                    # Given up during the write: delete what it stored.
                    if revision:
                        lease.revision = revision
                    self._release(lease)
                    return
                if self._held.get(lease.key) is not lease:
                    return  # fenced meanwhile
                if not revision and failed is None:
                    last = f"no answer within {bound:.1f} s"
                    continue  # again, or fenced at the top
                if isinstance(failed, WrongRevision):
                    if await self._stored_anyway(lease, failed.revision):
                        break
                    self._fence(lease, f"its key changed (revision {failed.revision})")
                    return
                if failed is not None:
                    last = repr(failed)
                    logger.debug("%s: renewing %s failed: %r", self.node, lease.key, failed)
                    await anyio.sleep(retry)
                    continue
                lease.revision = revision
                lease.sent = sent
                lease.fence_at = sent + self.lease - self.margin
                if lease.name is not None and lease.ref is not None:
                    cached = self._cache.get(lease.name)
                    if cached is not None and cached[0] == self.node:
                        self._cache[lease.name] = (*cached[:3], revision)
                break

    async def _stored_anyway(self, lease: _Lease, revision: int) -> bool:
        """Whether the key's current revision is a renewal of ours that was
        stored though its answer was lost (a cancelled or timed-out write)."""
        from ._nats import NatsError

        if revision <= lease.revision:
            return False
        assert self.kv is not None
        entry = None
        with anyio.move_on_after(lease.fence_at - anyio.current_time()):
            try:
                entry = await self.kv.get(lease.key)
            except NatsError:
                return False
        if entry is None or entry.revision != revision or entry.value != lease.value:
            return False
        # It was sent after the last one stored: the lease runs from then at
        # the earliest, and ``sent`` stays that conservative bound.
        lease.revision = revision
        return True

    def _fence(self, lease: _Lease, why: str) -> None:
        """Give ``lease`` up at once: no more answers for it from this node."""
        if self._held.get(lease.key) is not lease:
            return
        self._forget_lease(lease)
        logger.warning("%s fenced %s: %s", self.node, lease.key, why)
        if lease.name is None:
            # This node's own key: without it the node is not a member, and
            # none of its names may outlive it.
            for other in list(self._held.values()):
                self._fence(other, f"the node's lease {lease.key} was lost ({why})")
            if self._task_group is not None and not self._closing:
                self._task_group.start_soon(self._rejoin)
            return
        registry = self.system.registry
        if lease.ref is not None and registry._names.get(lease.name) == lease.ref:
            registry.unregister(lease.name)
        # The key is left to expire: deleting it could free the name while
        # the actor is still being cancelled.
        cell = lease.cell
        if cell is not None and cell.alive and cell.failure is None:
            cell.failure = NameLost(
                f"{cell.path} lost the cluster-wide name {lease.name!r}: {why}; it was "
                f"stopped before the name could be claimed elsewhere"
            )
            cell.scope.cancel()

    async def _rejoin(self) -> None:
        """Hold ``nodes.<node>`` again once NATS answers and the old key is
        gone (others saw this node down meanwhile)."""
        from ._nats import NatsError

        while not self._closing:
            try:
                await self._create(f"nodes.{self.node}", None, {"node": self.node})
            except (NameTaken, NatsError, TimeoutError) as error:
                logger.debug("%s: rejoining: %r", self.node, error)
                await anyio.sleep(self.lease / 3)
            else:
                logger.warning("%s is a member of the cluster again", self.node)
                return

    # -- releasing -----------------------------------------------------------------------

    async def _release_loop(self) -> None:
        while True:
            await self._release_wanted.wait()
            self._release_wanted = Signal()
            await self._release_all()

    async def _release_all(self) -> None:
        from ._nats import NatsError

        while self._releases:
            key, revision = self._releases.pop(0)
            assert self.kv is not None
            try:
                with anyio.fail_after(self.lease):
                    await self.kv.delete(key, last=revision)
            except (NatsError, TimeoutError) as error:
                # Another write came first, or NATS is out of reach: the key
                # expires by itself within a lease.
                logger.debug("%s: releasing %s: %r", self.node, key, error)

    # -- the watch ------------------------------------------------------------------------

    async def _watch(self) -> None:
        from ._nats import NatsError

        watcher = self._watcher
        assert watcher is not None
        try:
            async for entry in watcher:
                self._seen(entry)
        except NatsError as error:
            if not self._closing:
                raise ActorsError(
                    f"{self.node}: the watch on bucket {self.bucket} ended: {error!r}"
                ) from error

    def _seen(self, entry: KvEntry) -> None:
        kind, _, name = entry.key.partition(".")
        holder = None if entry.deleted else _holder(entry.value)
        if kind == "names":
            lease = self._held.get(entry.key)
            if (
                lease is not None
                and entry.revision > lease.revision
                and (holder is None or entry.value != lease.value)
            ):
                self._fence(lease, f"its key was {entry.operation} by another")
            if holder is None:
                self._cache.pop(name, None)
                self._found.pop(name, None)
                self._taken.discard(name)
                self._freed.set()
                self._freed = Signal()
            else:
                self._taken.add(name)
                path, uid = holder.get("path"), holder.get("uid")
                node = holder.get("node")
                if isinstance(node, str) and isinstance(path, str) and isinstance(uid, int):
                    before = self._cache.get(name)
                    if before is None or before[:3] != (node, path, uid):
                        self._found.pop(name, None)  # a renewal keeps it
                    self._cache[name] = (node, path, uid, entry.revision)
                else:
                    self._cache.pop(name, None)  # reserved, not bound yet
                    self._found.pop(name, None)
        elif kind == "nodes":
            if name == self.node:
                lease = self._held.get(entry.key)
                if lease is not None and holder is None:
                    self._fence(lease, f"its key was {entry.operation}")
                return
            if holder is None:
                if self._members.pop(name, None) is not None:
                    self._member_down(name, entry.operation)
            elif name not in self._members:
                self._members[name] = entry.revision
                self._tell_listeners(MemberUp(name))
            else:
                self._members[name] = entry.revision

    def _member_down(self, node: str, operation: str) -> None:
        why = "it left the cluster" if operation == "DEL" else "its lease expired"
        reason = NodeDown(f"node {node!r} is down: {why}")
        for name, (holder, *_rest) in list(self._cache.items()):
            if holder == node:
                del self._cache[name]
                self._found.pop(name, None)
        for hook in list(self._on_member_down):
            hook(node, reason)
        self._tell_listeners(MemberDown(node, reason))

    def _tell_listeners(self, event: MemberUp | MemberDown) -> None:
        for listener in list(self._listeners):
            try:
                listener.send_nowait(event)
            except anyio.WouldBlock:
                pass  # unbounded: never
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.remove(listener)

    # -- lookups ---------------------------------------------------------------------------

    def whereis(self, name: str) -> ActorRef | None:
        """The holder of ``name`` on another node, from the watch's cache."""
        # ``Registry.whereis`` reads ``_found`` first: a cached lookup is two
        # dictionary reads (the benchmark's "registry lookup from the cache").
        ref = self._found.get(name)
        if ref is not None:
            return ref
        cached = self._cache.get(name)
        if cached is None or cached[0] == self.node:
            return None  # ours are in the local registry while we hold them
        ref = self._ref(*cached[:3])
        if ref is not None:
            self._found[name] = ref
        return ref

    def _ref(self, node: str, path: str, uid: int) -> ActorRef | None:
        if self._resolve is not None:
            return self._resolve(node, path, uid)
        restore = getattr(getattr(self.system, "_cluster", None), "restore", None)
        if restore is None:
            return None
        ref: ActorRef | None = restore(node, path, uid, None)
        return ref

    async def wait_free(self, name: str) -> None:
        """Return once the watch has seen ``name``'s key hold no value (at
        once if it holds none now). Cancellation leaves nothing behind."""
        while name in self._taken or f"names.{name}" in self._held:
            await self._freed.wait()

    def names(self) -> dict[str, str]:
        """Every cluster-wide name this node knows of, with its node."""
        return {name: cached[0] for name, cached in sorted(self._cache.items())}

    def members(self) -> list[str]:
        """The nodes up now, by this node's watch (itself included)."""
        return sorted({*self._members, self.node})

    async def membership(self) -> AsyncGenerator[MemberUp | MemberDown, None]:
        """``MemberUp`` for each other node up now, then each change."""
        send, receive = anyio.create_memory_object_stream[MemberUp | MemberDown](math.inf)
        for node in sorted(self._members):
            send.send_nowait(MemberUp(node))
        self._listeners.append(send)
        try:
            async with receive:
                async for event in receive:
                    yield event
        finally:
            if send in self._listeners:
                self._listeners.remove(send)
            send.close()


__all__ = ["DEFAULT_LEASE", "ClusterNames", "MemberDown", "MemberUp", "check_lease"]
