"""Authentication and TLS of our NATS client, on both backends, against real
servers configured for each: user and password, token, nkey (a seed signing
the server's nonce), TLS (required by the server, asked for by a ``tls://``
URL, handshake first); wrong credentials give a clear `AuthorizationError`."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
from nats_kit import NatsServer, TlsFiles, nats_server, tls_files

from actors._nats import AuthorizationError, Client, NoServers, NotSupported, connect

pytestmark = pytest.mark.anyio

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 10.0


def new_user_seed() -> tuple[str, str]:
    """A fresh nkey user: its seed and its public key."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


SEED, PUBLIC = new_user_seed()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server with three users: a password one, an nkey one, and nobody else."""
    config = (
        "authorization {\n  users = [\n"
        '    { user: "bob", password: "s3cret/:@" }\n'
        f'    {{ nkey: "{PUBLIC}" }}\n'
        "  ]\n}"
    )
    with nats_server(
        tmp_path_factory.mktemp("nats-users"), extra_config=config, jetstream=False
    ) as server:
        yield server


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with nats_server(
        tmp_path_factory.mktemp("nats-token"),
        extra_config='authorization { token: "t0ken" }',
        jetstream=False,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def encrypted(
    certificates: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NatsServer]:
    with nats_server(
        tmp_path_factory.mktemp("nats-tls"),
        extra_config=certificates.server_config(),
        jetstream=False,
    ) as server:
        yield server


async def round_trip(nc: Client) -> None:
    """A message through the server and back."""
    sub = await nc.subscribe("check")
    await nc.publish("check", b"ok")
    assert (await sub.next_msg(WAIT)).data == b"ok"


async def test_user_and_password(secured: NatsServer) -> None:
    port = secured.port
    # In the URL (escaped), and as options.
    async with connect(f"nats://bob:s3cret%2F%3A%40@127.0.0.1:{port}") as nc:
        await round_trip(nc)
    async with connect(secured.url, user="bob", password="s3cret/:@") as nc:
        await round_trip(nc)

    with pytest.raises(AuthorizationError) as wrong:
        async with connect(secured.url, user="bob", password="wrong", reconnect=False):
            pass
    message = str(wrong.value)
    assert "Authorization Violation" in message and "user 'bob'" in message
    assert "wrong" not in message  # never the secret
    with pytest.raises(AuthorizationError, match="without credentials"):
        async with connect(secured.url):
            pass


async def test_token(tokened: NatsServer) -> None:
    async with connect(f"nats://t0ken@127.0.0.1:{tokened.port}") as nc:
        await round_trip(nc)
    async with connect(tokened.url, token="t0ken") as nc:
        await round_trip(nc)
    with pytest.raises(AuthorizationError, match="the token"):
        async with connect(tokened.url, token="nope"):
            pass


async def test_nkey_seed(secured: NatsServer, tmp_path: Path) -> None:
    async with connect(secured.url, nkey_seed=SEED) as nc:
        await round_trip(nc)
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(f"# a user seed\n{SEED}\n")
    async with connect(secured.url, nkey_seed_file=seed_file) as nc:
        await round_trip(nc)

    other_seed, other_public = new_user_seed()
    with pytest.raises(AuthorizationError, match=other_public):
        async with connect(secured.url, nkey_seed=other_seed):
            pass
    with pytest.raises(ValueError, match="nkey seed"):
        Client(secured.url, nkey_seed="SUnot-a-seed")
    with pytest.raises(ValueError, match="not both"):
        Client(secured.url, nkey_seed=SEED, nkey_seed_file=seed_file)


def test_nkeys_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nkeys", None)
    with pytest.raises(ImportError, match=r"structured-actors\[nkeys\]"):
        Client("nats://127.0.0.1:4222", nkey_seed=SEED)


def test_jwt_credentials_are_not_supported(tmp_path: Path) -> None:
    with pytest.raises(NotSupported, match="JWT"):
        Client("nats://127.0.0.1:4222", user_credentials=tmp_path / "user.creds")
    with pytest.raises(NotSupported, match="websockets"):
        Client("wss://127.0.0.1:443")


async def test_tls_required_by_the_server(encrypted: NatsServer, certificates: TlsFiles) -> None:
    context = certificates.client_context()
    # A nats:// URL: the server's INFO asks for TLS, and the context is used.
    async with connect(encrypted.url, tls=context) as nc:
        await round_trip(nc)
        assert nc.server_info.get("tls_required")
    # A tls:// URL, and a certificate checked against another name.
    async with connect(f"tls://localhost:{encrypted.port}", tls=context) as nc:
        await round_trip(nc)
    async with connect(
        f"tls://127.0.0.1:{encrypted.port}", tls=context, tls_hostname="localhost"
    ) as nc:
        await round_trip(nc)

    # Without the CA the certificate does not verify: the error says so.
    with pytest.raises(NoServers) as untrusted:
        async with connect(encrypted.url, reconnect=False):
            pass
    assert isinstance(next(iter(untrusted.value.errors.values())), ssl.SSLCertVerificationError)
    with pytest.raises(NoServers, match="certificate"):
        async with connect(encrypted.url, tls=context, tls_hostname="elsewhere.example"):
            pass


async def test_tls_asked_of_a_server_without_it(secured: NatsServer) -> None:
    with pytest.raises(NoServers, match="does not offer TLS"):
        async with connect(f"tls://bob:x@127.0.0.1:{secured.port}"):
            pass


async def test_tls_handshake_first(certificates: TlsFiles, tmp_path: Path) -> None:
    config = certificates.server_config(handshake_first=True)
    with nats_server(tmp_path / "nats", extra_config=config, jetstream=False) as server:
        context = certificates.client_context()
        async with connect(server.url, tls=context, tls_handshake_first=True) as nc:
            await round_trip(nc)
