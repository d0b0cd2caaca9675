"""The handshake: mutual proof of the secret, versions checked first, keys per
direction, cookies only their owner can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import anyio.abc
import pytest
from wire_kit import SECRET, PairFactory, handshake_pair, memory_pair, socketpair, tcp_pair

from actors._exceptions import AuthenticationError, IncompatiblePeer
from actors._handshake import (
    HELLO_PREFIX,
    MAGIC,
    WIRE_VERSION,
    Session,
    check_secret,
    create_cookie,
    handshake,
    local_versions,
    read_cookie,
)

pytestmark = pytest.mark.anyio

PAIRS = [pytest.param(socketpair, id="socketpair"), pytest.param(tcp_pair, id="tcp")]


async def _both(
    a: anyio.abc.ByteStream,
    b: anyio.abc.ByteStream,
    **options: object,
) -> tuple[Session | BaseException, Session | BaseException]:
    """Run both ends' handshakes; each end's session or exception. An end that
    fails closes its stream, as a caller would, so the other end never waits
    forever."""
    results: dict[str, Session | BaseException] = {}

    async def end(key: str, stream: anyio.abc.ByteStream, initiator: bool) -> None:
        try:
            results[key] = await handshake(
                stream,
                options.get(f"secret_{key}", SECRET),  # type: ignore[arg-type]
                bool(options.get(f"initiator_{key}", initiator)),
                versions=options.get(f"versions_{key}"),  # type: ignore[arg-type]
            )
        except Exception as error:
            results[key] = error
            await anyio.aclose_forcefully(stream)

    async with anyio.create_task_group() as tg:
        tg.start_soon(end, "a", a, True)
        tg.start_soon(end, "b", b, False)
    return results["a"], results["b"]


@pytest.mark.parametrize("make", PAIRS)
async def test_both_ends_agree_on_one_key_per_direction(make: PairFactory) -> None:
    a, b = await make()
    async with a, b:
        session_a, session_b = await handshake_pair(a, b)
    assert session_a.initiator and not session_b.initiator
    assert session_a.send_key == session_b.receive_key
    assert session_b.send_key == session_a.receive_key
    assert session_a.send_key != session_a.receive_key
    assert SECRET not in (session_a.send_key, session_a.receive_key)
    assert session_a.peer_versions == local_versions()
    assert "key" not in repr(session_a).replace("_key", "")  # keys stay out of logs


async def test_each_handshake_has_fresh_keys() -> None:
    keys = set()
    for _ in range(2):
        a, b = await socketpair()
        async with a, b:
            session_a, _ = await handshake_pair(a, b)
        keys.add(session_a.send_key)
    assert len(keys) == 2


async def test_a_wrong_secret_is_refused_on_both_sides() -> None:
    a, b = await socketpair()
    async with a, b:
        result_a, result_b = await _both(a, b, secret_b=b"another secret, 32 bytes long..")
    assert isinstance(result_a, AuthenticationError)
    assert isinstance(result_b, AuthenticationError)
    assert "different secrets" in str(result_a) and "different secrets" in str(result_b)


async def test_a_version_mismatch_is_refused_with_a_clear_error() -> None:
    theirs = {**local_versions(), "python": "3.99", "cloudpickle": "0.1"}
    a, b = await socketpair()
    async with a, b:
        result_a, result_b = await _both(a, b, versions_b=theirs)
    for result in (result_a, result_b):
        assert isinstance(result, IncompatiblePeer), result
        assert "python 3.99" in str(result) or "python" in str(result)
    text = str(result_a)
    here = local_versions()
    assert f"python 3.99 there, {here['python']} here" in text
    assert f"cloudpickle 0.1 there, {here['cloudpickle']} here" in text


async def test_a_different_mac_algorithm_is_refused() -> None:
    a, b = await socketpair()
    async with a, b:
        result_a, _ = await _both(a, b, versions_b={**local_versions(), "mac": "crc32"})
    assert isinstance(result_a, IncompatiblePeer)
    assert "mac crc32 there" in str(result_a)


async def test_two_initiators_are_refused() -> None:
    a, b = await socketpair()
    async with a, b:
        result_a, result_b = await _both(a, b, initiator_b=True)
    assert isinstance(result_a, IncompatiblePeer) and isinstance(result_b, IncompatiblePeer)
    assert "one end must be the initiator" in str(result_a)


async def test_a_reflected_hello_is_refused() -> None:
    # A peer that sends this side's own bytes back to it.
    a, mirror = await memory_pair()

    async def reflect() -> None:
        while True:
            await mirror.send(await mirror.receive())

    async with a, mirror, anyio.create_task_group() as tg:
        tg.start_soon(reflect)
        with pytest.raises(IncompatiblePeer):
            await handshake(a, SECRET, True)
        tg.cancel_scope.cancel()


async def test_a_stranger_is_refused_before_anything_else() -> None:
    a, b = await socketpair()
    async with a, b:
        await b.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(IncompatiblePeer, match="does not speak the actors wire protocol"):
            await handshake(a, SECRET, True)


async def test_another_wire_version_is_refused() -> None:
    a, b = await socketpair()
    async with a, b:
        await b.send(HELLO_PREFIX.pack(MAGIC, 99, 40) + bytes(40))
        with pytest.raises(IncompatiblePeer, match="version 99 of the actors wire protocol"):
            await handshake(a, SECRET, True)


async def test_an_acceptor_answers_another_wire_version_with_its_hello() -> None:
    # The refused initiator read only the end of the stream (a bare
    # BrokenResourceError or IncompleteRead): with the acceptor's HELLO it
    # can say which versions differ, as the acceptor does.
    a, b = await socketpair()
    async with a, b:
        await b.send(HELLO_PREFIX.pack(MAGIC, 99, 40) + bytes(40))
        with pytest.raises(IncompatiblePeer, match="version 99 of the actors wire protocol"):
            await handshake(a, SECRET, False)
        with anyio.fail_after(10):
            prefix = await _read(b, HELLO_PREFIX.size)
        magic, version, _ = HELLO_PREFIX.unpack(prefix)
        assert (magic, version) == (MAGIC, WIRE_VERSION)


async def _read(stream: anyio.abc.ByteStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await stream.receive(size - len(data))
    return data


async def test_an_oversized_hello_is_refused_without_reading_it() -> None:
    a, b = await socketpair()
    async with a, b:
        await b.send(HELLO_PREFIX.pack(MAGIC, 1, 60_000))
        with pytest.raises(IncompatiblePeer, match="malformed length"):
            await handshake(a, SECRET, True)


async def test_a_peer_closing_mid_handshake_is_an_incomplete_read() -> None:
    a, b = await socketpair()
    async with a:
        await b.aclose()
        with pytest.raises((anyio.IncompleteRead, anyio.BrokenResourceError)):
            await handshake(a, SECRET, True)


async def test_the_handshake_reads_nothing_past_its_end() -> None:
    a, b = await socketpair()
    async with a, b:

        async def accept_then_send() -> None:
            await handshake(b, SECRET, False)

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept_then_send)
            await handshake(a, SECRET, True)
        await b.send(b"first frame bytes")
        assert await a.receive() == b"first frame bytes"


@pytest.mark.parametrize(
    "secret, error", [("text secret 12345", TypeError), (b"short", ValueError)]
)
async def test_a_bad_secret_is_refused_before_any_byte_is_sent(
    secret: object, error: type[Exception]
) -> None:
    a, b = await socketpair()
    async with a, b:
        with pytest.raises(error, match="secret"):
            await handshake(a, secret, True)  # type: ignore[arg-type]
        await a.send(b"marker")
        assert await b.receive() == b"marker"  # the first bytes b sees


def test_check_secret_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"secrets.token_bytes\(32\)"):
        check_secret(b"x" * 15)
    assert check_secret(b"x" * 16) == b"x" * 16


def test_a_new_cookie_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "cookie"
    secret = create_cookie(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_cookie(path) == secret
    with pytest.raises(FileExistsError):
        create_cookie(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_cookie_others_can_use_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "cookie"
    create_cookie(path)
    os.chmod(path, mode)
    with pytest.raises(AuthenticationError, match=f"mode {mode:04o}.*chmod 600"):
        read_cookie(path)


def test_a_read_only_cookie_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "cookie"
    secret = create_cookie(path)
    os.chmod(path, 0o400)
    assert read_cookie(path) == secret


@pytest.mark.parametrize("content", [b"", b"short\n", b"x" * 5000])
def test_a_cookie_of_the_wrong_size_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cookie"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(ValueError, match="cookie file"):
        read_cookie(path)


def test_a_cookie_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)
    with pytest.raises((ValueError, IsADirectoryError)):
        read_cookie(tmp_path)
