"""The handshake: two ends prove they share a secret before trusting a byte.

Unpickling runs code, so nothing a peer sends is unpickled before the peer has
proved it knows the shared secret, as in ``multiprocessing.connection``'s
challenge and Erlang's cookie. The handshake itself uses no pickle. It takes
two round trips, and each side sends only while the other is reading, so it
also works over a stream that holds nothing in flight::

    initiator                                          acceptor
    HELLO  -->
                                                  <--  HELLO
                                                  <--  PROOF of the acceptor
    PROOF of the initiator, VERDICT on the acceptor's  -->
                                                  <--  VERDICT on the initiator's

    HELLO    magic "ACTORS", wire version u8, length u16, role u8, a nonce of
             32 random bytes, the versions as text ("python=3.11\n...")
    PROOF    HMAC-SHA256(secret, "actors proof " role || transcript), checked
             with hmac.compare_digest
    VERDICT  one byte: the peer's proof is accepted, or refused

The transcript is the initiator's HELLO then the acceptor's, byte for byte, so
a proof is bound to both fresh nonces and to both roles: it cannot be replayed
on another connection or reflected back to the side that made it. The secret
never travels. What this proves is membership: the peer holds the secret. Which
member it is (a node's name) is for the layer above to check, after this.

Both sides check the HELLOs before any proof (the acceptor sends its HELLO even
when it refuses the initiator's, so that both ends learn why): a different Python
``major.minor``, cloudpickle, actors or MAC algorithm is refused with
:class:`IncompatiblePeer`; a wrong secret, on both sides, with
:class:`AuthenticationError`. The session then has one key per direction,
derived from the secret and the transcript: what one side sends can never be
replayed to it as if the peer had sent it.

Secrets are bytes given by the caller, or a cookie file that only its owner
may read or write (as Erlang refuses an ``.erlang.cookie`` others can read).
A child process gets a fresh random secret through an inherited descriptor,
never its arguments or environment, which other users can see.

Examples:
    >>> local_versions()["mac"] == MAC_NAME
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import stat
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.abc
import cloudpickle

from ._codec import PROTOCOL
from ._exceptions import AuthenticationError, IncompatiblePeer
from ._mac import MAC_NAME

MAGIC: Final = b"ACTORS"
#: The version of the handshake and frame formats. Its place in the HELLO,
#: right after the magic, never changes, so any two versions can tell.
WIRE_VERSION: Final = 1
#: magic, wire version, length of the rest of the HELLO.
HELLO_PREFIX: Final = struct.Struct("!6sBH")
#: role, nonce; the versions follow as text.
_HELLO_FIXED: Final = struct.Struct("!B32s")
MAX_HELLO_BODY: Final = 1024
PROOF_SIZE: Final = 32
_ACCEPTED: Final = b"\x01"
_REFUSED: Final = b"\x00"
INITIATOR: Final = 1
ACCEPTOR: Final = 2
_ROLE_NAMES: Final = {INITIATOR: "initiator", ACCEPTOR: "acceptor"}
#: The shortest secret accepted: 128 bits.
MIN_SECRET: Final = 16
_MAX_COOKIE: Final = 4096


def local_versions() -> dict[str, str]:
    """What must be equal at both ends for pickles to be understood.

    Returns:
        Python ``major.minor``, the pickle protocol, cloudpickle's version,
        actors' version and the frames' MAC algorithm.

    Examples:
        >>> sorted(local_versions())
        ['actors', 'cloudpickle', 'mac', 'pickle', 'python']
    """
    from . import __version__

    return {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "pickle": str(PROTOCOL),
        "cloudpickle": cloudpickle.__version__,
        "actors": __version__,
        "mac": MAC_NAME,
    }


def check_secret(secret: object) -> bytes:
    """``secret`` as bytes, or a clear error saying what a secret must be.

    Args:
        secret: The shared secret.

    Returns:
        The secret.

    Raises:
        TypeError: It is not ``bytes``.
        ValueError: It is shorter than 16 bytes.

    Examples:
        >>> check_secret(b"0123456789abcdef")
        b'0123456789abcdef'
    """
    if not isinstance(secret, bytes):
        raise TypeError(
            f"the secret must be bytes, got {type(secret).__name__}: encode a text "
            "secret, or use a cookie file"
        )
    if len(secret) < MIN_SECRET:
        raise ValueError(
            f"the secret must be at least {MIN_SECRET} bytes, got {len(secret)}: use "
            "secrets.token_bytes(32), or a cookie file made by create_cookie()"
        )
    return secret


def read_cookie(path: str | os.PathLike[str]) -> bytes:
    """The secret stored in a cookie file, if only its owner can use the file.

    Args:
        path: The cookie file: the secret as text (surrounding white space is
            ignored), mode ``0600`` or stricter.

    Returns:
        The secret.

    Raises:
        AuthenticationError: Group or others may read or write the file.
        ValueError: The file is not a regular file, is empty, too short or
            longer than 4 KiB.
        OSError: The file cannot be opened or read.

    Examples:
        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = pathlib.Path(directory) / "cookie"
        ...     create_cookie(path) == read_cookie(path)
        True
    """
    with open(path, "rb") as file:
        # The mode of the file as opened, not of whatever the path names by now.
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"the cookie {os.fspath(path)!r} is not a regular file")
        if info.st_mode & 0o077:
            raise AuthenticationError(
                f"the cookie file {os.fspath(path)!r} can be read or written by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}): refusing it; make it private "
                f"with `chmod 600 {os.fspath(path)}`"
            )
        data = file.read(_MAX_COOKIE + 1)
    if len(data) > _MAX_COOKIE:
        raise ValueError(f"the cookie file {os.fspath(path)!r} is longer than {_MAX_COOKIE} bytes")
    secret = data.strip()
    if len(secret) < MIN_SECRET:
        raise ValueError(
            f"the cookie file {os.fspath(path)!r} holds {len(secret)} bytes, fewer than "
            f"{MIN_SECRET}: make a new one with create_cookie()"
        )
    return secret


def create_cookie(path: str | os.PathLike[str]) -> bytes:
    """Make a new cookie file holding a random secret, readable by its owner only.

    Args:
        path: Where; the file must not exist yet.

    Returns:
        The secret (64 hexadecimal digits: 256 random bits).

    Raises:
        FileExistsError: The file exists; read it with :func:`read_cookie`.
        OSError: It cannot be created.

    Examples:
        >>> import pathlib, stat, tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = pathlib.Path(directory) / "cookie"
        ...     len(create_cookie(path)), oct(stat.S_IMODE(path.stat().st_mode))
        (64, '0o600')
    """
    secret = os.urandom(32).hex().encode()
    # Created with its final mode, so that it is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret + b"\n")
    return secret


@dataclass(frozen=True)
class Session:
    """What a handshake agreed: one key per direction, and who the peer is."""

    initiator: bool
    #: Keys the tags of the frames this side sends.
    send_key: bytes = field(repr=False)
    #: Keys the tags of the frames the peer sends.
    receive_key: bytes = field(repr=False)
    peer_versions: Mapping[str, str]


async def _receive_exactly(stream: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    # Never reads past ``size``: what follows belongs to the frames.
    data = b""
    while len(data) < size:
        try:
            data += await stream.receive(size - len(data))
        except anyio.EndOfStream:
            raise anyio.IncompleteRead from None
    return data


def _hello(role: int, nonce: bytes, versions: Mapping[str, str]) -> bytes:
    text = "".join(f"{key}={value}\n" for key, value in sorted(versions.items())).encode()
    body = _HELLO_FIXED.pack(role, nonce) + text
    return HELLO_PREFIX.pack(MAGIC, WIRE_VERSION, len(body)) + body


async def _receive_hello(stream: anyio.abc.ByteStream, answer: bytes | None = None) -> bytes:
    # ``answer``: the acceptor's HELLO, sent to a peer of another wire
    # version before it is refused, so that the peer can say why too.
    prefix = await _receive_exactly(stream, HELLO_PREFIX.size)
    magic, version, size = HELLO_PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise IncompatiblePeer(
            f"the peer does not speak the actors wire protocol (it began with {prefix!r})"
        )
    if version != WIRE_VERSION:
        if answer is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.send(answer)
        raise IncompatiblePeer(
            f"the peer speaks version {version} of the actors wire protocol, this "
            f"process version {WIRE_VERSION}: run the same actors release on both sides"
        )
    if not _HELLO_FIXED.size <= size <= MAX_HELLO_BODY:
        raise IncompatiblePeer(f"the peer's HELLO has a malformed length ({size} bytes)")
    return prefix + await _receive_exactly(stream, size)


def _parse_versions(text: bytes) -> dict[str, str]:
    try:
        lines = text.decode().splitlines()
        return dict(line.split("=", 1) for line in lines if line)
    except (UnicodeDecodeError, ValueError):
        raise IncompatiblePeer(f"the peer's versions are malformed: {text[:200]!r}") from None


def _check_versions(ours: Mapping[str, str], theirs: Mapping[str, str]) -> None:
    differ = [key for key in ours if theirs.get(key) != ours[key]]
    if differ:
        detail = ", ".join(
            f"{key} {theirs.get(key, '(none)')} there, {ours[key]} here" for key in differ
        )
        raise IncompatiblePeer(
            f"the peer runs different versions ({detail}): pickles are only portable "
            "between the same Python, cloudpickle and actors releases; install the "
            "same versions on both sides"
        )


def _mac(key: bytes, label: bytes, data: bytes) -> bytes:
    return hmac.digest(key, label + data, hashlib.sha256)


def _check_hello(
    hello: bytes, peer_hello: bytes, role: int, ours: Mapping[str, str]
) -> dict[str, str]:
    """The peer's versions, if its HELLO is one this side can talk to."""
    peer_role, peer_nonce = _HELLO_FIXED.unpack_from(peer_hello, HELLO_PREFIX.size)
    _, nonce = _HELLO_FIXED.unpack_from(hello, HELLO_PREFIX.size)
    if peer_role == role or peer_role not in _ROLE_NAMES or peer_nonce == nonce:
        # Also what a relay sending this side's own HELLO back to it looks like.
        raise IncompatiblePeer(
            f"both ends started the handshake as the {_ROLE_NAMES[role]}: one end must "
            "be the initiator (it connected), the other the acceptor"
        )
    theirs = _parse_versions(peer_hello[HELLO_PREFIX.size + _HELLO_FIXED.size :])
    _check_versions(ours, theirs)
    return theirs


def _proof(secret: bytes, role: int, transcript: bytes) -> bytes:
    return _mac(secret, b"actors proof " + _ROLE_NAMES[role].encode(), transcript)


def _refused(trusted: bool, verdict: bytes) -> AuthenticationError | None:
    if not trusted:
        return AuthenticationError(
            "the peer did not prove it knows the secret: the two sides have different "
            "secrets (or the peer is not who it claims); nothing it sent was unpickled"
        )
    if verdict != _ACCEPTED:
        return AuthenticationError(
            "the peer refused this side's proof: the two sides have different secrets"
        )
    return None


async def _initiate(
    stream: anyio.abc.ByteStream, secret: bytes, ours: Mapping[str, str]
) -> tuple[bytes, dict[str, str]]:
    hello = _hello(INITIATOR, os.urandom(32), ours)
    await stream.send(hello)
    peer_hello = await _receive_hello(stream)
    theirs = _check_hello(hello, peer_hello, INITIATOR, ours)
    transcript = hello + peer_hello
    proof = await _receive_exactly(stream, PROOF_SIZE)
    trusted = hmac.compare_digest(proof, _proof(secret, ACCEPTOR, transcript))
    await stream.send(_proof(secret, INITIATOR, transcript) + (_ACCEPTED if trusted else _REFUSED))
    error = _refused(trusted, await _receive_exactly(stream, 1))
    if error is not None:
        raise error
    return transcript, theirs


async def _accept(
    stream: anyio.abc.ByteStream, secret: bytes, ours: Mapping[str, str]
) -> tuple[bytes, dict[str, str]]:
    hello = _hello(ACCEPTOR, os.urandom(32), ours)
    peer_hello = await _receive_hello(stream, answer=hello)
    # Sent before the checks, so that a peer this side refuses learns why too.
    await stream.send(hello)
    theirs = _check_hello(hello, peer_hello, ACCEPTOR, ours)
    transcript = peer_hello + hello
    await stream.send(_proof(secret, ACCEPTOR, transcript))
    answer = await _receive_exactly(stream, PROOF_SIZE + 1)
    trusted = hmac.compare_digest(answer[:PROOF_SIZE], _proof(secret, INITIATOR, transcript))
    await stream.send(_ACCEPTED if trusted else _REFUSED)
    error = _refused(trusted, answer[PROOF_SIZE:])
    if error is not None:
        raise error
    return transcript, theirs


async def handshake(
    stream: anyio.abc.ByteStream,
    secret: bytes,
    initiator: bool,
    *,
    versions: Mapping[str, str] | None = None,
) -> Session:
    """Authenticate the peer at the other end of ``stream``, and agree on keys.

    Both ends call it, one with ``initiator=True`` (the side that connected,
    or the parent), the other with ``initiator=False``. It reads exactly the
    handshake's bytes: the frames that follow stay in the stream.

    Blocks until the peer has answered; bound it with a timeout
    (``anyio.fail_after``): a silent peer, or two acceptors, wait
    indefinitely. A cancelled or failed handshake leaves the stream in an
    unknown state: close it.

    Args:
        stream: A connected byte stream.
        secret: The shared secret (see :func:`check_secret`).
        initiator: Which end this is; the two ends must differ.
        versions: What this side announces and requires of the peer; the
            default, :func:`local_versions`, is what pickles need.

    Returns:
        The session: its keys and the peer's versions.

    Raises:
        AuthenticationError: The peer did not prove it knows the secret, or
            refused this side's proof (the secrets differ).
        IncompatiblePeer: The peer is not an actors peer, runs another wire
            protocol or different versions, or has the same role (or is this
            side's own HELLO sent back).
        TypeError: ``secret`` is not bytes.
        ValueError: ``secret`` is too short.
        anyio.IncompleteRead: The peer closed the stream during the handshake.
        anyio.BrokenResourceError: The stream broke.

    Examples:
        >>> sorted(Session.__dataclass_fields__)
        ['initiator', 'peer_versions', 'receive_key', 'send_key']
    """
    check_secret(secret)
    ours = local_versions() if versions is None else dict(versions)
    exchange = _initiate if initiator else _accept
    transcript, theirs = await exchange(stream, secret, ours)
    master = _mac(secret, b"actors session ", transcript)
    forward = _mac(master, b"initiator to acceptor", b"")
    backward = _mac(master, b"acceptor to initiator", b"")
    return Session(
        initiator=initiator,
        send_key=forward if initiator else backward,
        receive_key=backward if initiator else forward,
        peer_versions=theirs,
    )
