"""Nothing is unpickled before it is authenticated: a proxy between the two ends
alters, replays and reorders frames, and a canary whose unpickling would write
a file proves that no refused frame's body was ever unpickled."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from wire_kit import (
    Mangle,
    forward,
    handshake_pair,
    proxied_pair,
    receive_frame,
    socketpair,
    tell,
)

from actors._codec import dumps, loads
from actors._exceptions import AuthenticationError
from actors._wire import FRAME_HEAD, FRAME_PREFIX, WireConnection

pytestmark = pytest.mark.anyio


def _write_canary(path: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write("unpickled\n")


class Canary:
    """Unpickling it appends a line to ``path``: the proof that it happened."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_write_canary, (self.path,))


def _unpickled(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def _run(
    mangle: Mangle, bodies: list[bytes], caplog: pytest.LogCaptureFixture | None = None
) -> tuple[int, BaseException | None, WireConnection]:
    """Send ``bodies`` from a to b, one frame each, through the proxy; b
    unpickles every body it receives. The count b received and how its
    receiving ended."""
    received = 0
    ended: BaseException | None = None
    async with proxied_pair(mangle) as (a_stream, b_stream):
        session_a, session_b = await handshake_pair(a_stream, b_stream)
        async with WireConnection(b_stream, session_b) as b:
            async with WireConnection(a_stream, session_a) as a:
                for body in bodies:
                    await a.send(tell("/user/victim", body))
                    await a.flush()  # one frame each
            # a has closed: b gets what the proxy passes on, then the end.
            try:
                for _ in bodies:
                    loads((await b.receive()).body)
                    received += 1
            except (AuthenticationError, anyio.EndOfStream) as error:
                ended = error
    return received, ended, b


async def test_the_canary_works_when_nobody_tampers(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    received, ended, _ = await _run(forward, [dumps(Canary(canary))])
    assert (received, ended) == (1, None)
    assert _unpickled(canary) == 1


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(FRAME_HEAD.size - 1, id="sequence"),
        pytest.param(FRAME_HEAD.size + 3, id="tag"),
        pytest.param(FRAME_PREFIX + 30, id="envelope"),
        pytest.param(-2, id="body"),
    ],
)
async def test_a_flipped_byte_is_refused_and_nothing_is_unpickled(
    tmp_path: Path, where: int, caplog: pytest.LogCaptureFixture
) -> None:
    canary = tmp_path / "canary"

    def flip(index: int, frame: bytes) -> list[bytes]:
        altered = bytearray(frame)
        altered[where] ^= 0x01
        return [bytes(altered)]

    with caplog.at_level(logging.ERROR, logger="actors.wire"):
        received, ended, b = await _run(flip, [dumps(Canary(canary))])
    assert received == 0
    assert isinstance(ended, AuthenticationError)
    assert "failed its MAC check" in str(ended)
    assert _unpickled(canary) == 0
    assert b.statistics().authentication_failures == 1
    assert [r.getMessage() for r in caplog.records if r.name == "actors.wire"] == [
        f"closing a connection: {ended}; nothing more from it is read"
    ]


async def test_a_replayed_frame_is_refused_and_not_unpickled_again(tmp_path: Path) -> None:
    canary = tmp_path / "canary"

    def replay(index: int, frame: bytes) -> list[bytes]:
        return [frame, frame]

    received, ended, b = await _run(replay, [dumps(Canary(canary)), dumps("second")])
    assert received == 1  # the genuine copy, once
    assert isinstance(ended, AuthenticationError)
    assert "frame 0 arrived where frame 1 was expected" in str(ended)
    assert _unpickled(canary) == 1
    assert b.statistics().authentication_failures == 1


async def test_reordered_frames_are_refused_and_nothing_is_unpickled(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    held: list[bytes] = []

    def swap(index: int, frame: bytes) -> list[bytes]:
        if index == 0:
            held.append(frame)
            return []
        return [frame, *held] if index == 1 else [frame]

    received, ended, _ = await _run(swap, [dumps("first"), dumps(Canary(canary))])
    assert received == 0
    assert isinstance(ended, AuthenticationError)
    assert "frame 1 arrived where frame 0 was expected" in str(ended)
    assert _unpickled(canary) == 0


async def test_a_dropped_frame_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"

    def drop_first(index: int, frame: bytes) -> list[bytes]:
        return [] if index == 0 else [frame]

    received, ended, _ = await _run(drop_first, [dumps("first"), dumps(Canary(canary))])
    assert received == 0
    assert isinstance(ended, AuthenticationError)
    assert _unpickled(canary) == 0


async def test_a_frame_forged_without_the_key_is_refused(tmp_path: Path) -> None:
    canary = tmp_path / "canary"

    def forge(index: int, frame: bytes) -> list[bytes]:
        # Same sequence number, the attacker's payload, a tag made up.
        payload = frame[FRAME_PREFIX:].replace(dumps("decoy"), dumps(Canary(canary)))
        head = FRAME_HEAD.pack(len(payload), 0)
        return [head + bytes(16) + payload]

    received, ended, _ = await _run(forge, [dumps("decoy")])
    assert received == 0
    assert isinstance(ended, AuthenticationError)
    assert _unpickled(canary) == 0


async def test_a_frame_sent_back_to_its_sender_is_refused(tmp_path: Path) -> None:
    # Each direction has its own key, so a frame is worthless to its sender.
    canary = tmp_path / "canary"
    a_stream, b_stream = await socketpair()
    session_a, _ = await handshake_pair(a_stream, b_stream)
    async with b_stream, WireConnection(a_stream, session_a) as a:
        await a.send(tell("/user/b", dumps(Canary(canary))))
        await b_stream.send(await receive_frame(b_stream))
        with pytest.raises(AuthenticationError, match="MAC"):
            loads((await a.receive()).body)
    assert _unpickled(canary) == 0
