"""A message larger than a frame holds, wherever it meets the wire: the
sender hears of it (MessageTooLarge), or it becomes a dead letter where
nobody is left to hear; nothing else is lost, and no connection or actor
ends for it. The frame is made small here (64 KiB) so that the tests stay
cheap."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from process_kit import Member, Source
from tcp_kit import SECRET

import actors
from actors import Channel, MessageTooLarge, Subprocess
from actors.testing import TestProbe

WAIT = 20.0
FRAME = 1 << 16
HUGE = b"x" * (FRAME + 1)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux /proc"),
    pytest.mark.usefixtures("no_orphans"),
]


@pytest.fixture(autouse=True)
def small_frames(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Connections made in this process hold at most FRAME bytes a frame."""
    from actors._wire import WireConnection

    defaults = WireConnection.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "max_frame", FRAME)
    yield


async def test_too_large_is_a_value_error_that_names_the_receiver(anyio_backend: Any) -> None:
    assert issubclass(MessageTooLarge, ValueError) and issubclass(
        MessageTooLarge, actors.ActorsError
    )
    async with actors.ActorSystem("server") as server:
        server.registry.register("source", await server.spawn(Source, 1))
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(listener.address, secret=SECRET)
            source = await remote.whereis("source")
            assert source is not None
            with pytest.raises(
                MessageTooLarge, match=r"'/user/source-1'.* frame holds .*send it in parts"
            ):
                await source.tell(HUGE)
            with pytest.raises(MessageTooLarge, match="'/user/source-1'"):
                await source.ask(HUGE)
            assert await source.ask("stats") is not None  # the connection lives


class Holder(actors.Actor):
    """Holds the channel end it is given; sends into it and receives from it
    when asked, answering an error instead of failing."""

    def __init__(self) -> None:
        self.end: Any = None

    async def receive(self, message: Any) -> Any:
        match message:
            case ("take", end):
                self.end = end
                return repr(end)
            case ("send", value):
                value = b"x" * value if isinstance(value, int) else value  # made here
                try:
                    await self.end.send(value)
                except MessageTooLarge as error:
                    return error
                return "sent"
            case ("send_nowait", value):
                value = b"x" * value if isinstance(value, int) else value
                try:
                    self.end.send_nowait(value)
                except MessageTooLarge as error:
                    return error
                return "sent"
            case "receive":
                return await self.end.receive()
        return None


async def test_a_value_too_large_at_an_end_spends_no_credit(anyio_backend: Any) -> None:
    # The end counted its credit spent before the wire refused the value:
    # with capacity 1, every later send at it waited for ever.
    async with two_systems() as (holder, _client):
        channel = Channel[Any](1)
        assert "RemoteChannel" in await holder.ask(("take", channel))
        for how in ("send", "send_nowait"):
            error = await holder.ask((how, len(HUGE)))
            assert isinstance(error, MessageTooLarge)
            assert "RemoteChannel" in str(error) and "frame holds" in str(error)
        with anyio.fail_after(WAIT):
            assert await holder.ask(("send", "small")) == "sent"
            assert await channel.receive() == "small"
            assert await holder.ask(("send_nowait", "again")) == "sent"
            assert await channel.receive() == "again"


async def test_a_value_too_large_for_an_end_is_a_dead_letter(anyio_backend: Any) -> None:
    # It escaped into the connection's reader: the connection ended, and
    # with it the end's system's actor; the value vanished.
    async with two_systems() as (holder, client), client.dead_letters() as letters:
        channel = Channel[Any](2)
        await channel.send(HUGE)
        await channel.send("small")
        await holder.ask(("take", channel))
        with anyio.fail_after(WAIT):
            assert await holder.ask("receive") == "small"
            letter = await letters.receive()
        assert letter.message == HUGE and "cannot go over" in letter.reason
        assert "frame holds" in letter.reason
        await channel.send("more")
        assert await holder.ask("receive") == "more"  # the connection lives


async def test_a_publish_too_large_for_a_joined_system_is_a_dead_letter(
    anyio_backend: Any,
) -> None:
    # It ended the connection, and the message was neither delivered nor
    # dead-lettered.
    async with actors.ActorSystem("server") as server:
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(str(listener), secret=SECRET, topics=True)
            there = await TestProbe.start(client)
            client.registry.subscribe("news", there.ref)
            await _subscribed(server, "news")
            async with server.dead_letters() as letters:
                assert await server.publish("news", HUGE) == 1
                with anyio.fail_after(WAIT):
                    letter = await letters.receive()
            assert letter.message == HUGE and letter.reason.startswith("too large: ")
            assert await server.publish("news", "small") == 1
            assert await there.receive(timeout=WAIT) == "small"
            assert remote.connected


async def test_a_publish_too_large_for_a_process_subscriber_is_a_dead_letter(
    anyio_backend: Any,
) -> None:
    # The stand-in of the process actor failed with the ValueError.
    async with actors.ActorSystem() as system, system.dead_letters() as letters:
        report = await TestProbe.start(system)
        member = await system.spawn(Member, "m", report.ref, ["news"], placement=Subprocess())
        await report.expect(lambda m: m[0] == "started", timeout=WAIT)
        assert await system.publish("news", HUGE) == 1
        with anyio.fail_after(WAIT):
            letter = await letters.receive()
        assert letter.message == HUGE and letter.reason.startswith("too large: ")
        assert letter.recipient == member
        assert await system.publish("news", "small") == 1
        assert await report.receive(timeout=WAIT) == ("m", "small")
        assert member.alive


def test_a_dead_letter_too_large_to_pass_on_goes_as_its_description() -> None:
    # A child passes its dead letters on to its parent: one too large for a
    # frame raised in the tell that made it.
    from actors._peer import Peer

    sent: list[bytes] = []

    def send_urgent(envelope: Any) -> None:
        if len(envelope.body) > FRAME:
            raise MessageTooLarge("too large")
        sent.append(envelope.body)

    peer = SimpleNamespace(error=None, _send_urgent=send_urgent)
    Peer.dead_letter(peer, actors.DeadLetter(HUGE, None, "stopped"))  # type: ignore[arg-type]
    (body,) = sent
    message, recipient, reason, topic = actors._codec.loads(body)
    assert message.startswith("bytes b'xxx") and len(message) < 200
    assert (recipient, reason, topic) == (None, "stopped", None)


@asynccontextmanager
async def two_systems() -> AsyncIterator[tuple[actors.ActorRef, actors.ActorSystem]]:
    """A Holder on ``server``, as ``client`` (joined to it) sees it."""
    async with actors.ActorSystem("server") as server:
        server.registry.register("holder", await server.spawn(Holder))
        listener = await server.listen(secret=SECRET)
        async with actors.ActorSystem("client") as client:
            remote = await client.connect(listener.address, secret=SECRET)
            holder = await remote.whereis("holder")
            assert holder is not None
            yield holder, client


async def _subscribed(system: actors.ActorSystem, topic: str) -> None:
    # The joined system's subscription has reached this one (polled: the
    # registry has no event for it).
    with anyio.fail_after(WAIT):
        while not any(info.pattern == topic for info in system.registry.topics()):  # noqa: ASYNC110
            await anyio.sleep(0.01)
