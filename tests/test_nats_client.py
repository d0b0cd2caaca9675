"""The private NATS client (actors._nats) against a real nats-server, on both
backends: publish and subscribe with headers, queue groups, unsubscribe,
request/reply on one inbox, no responders, timeouts, slow-consumer
backpressure, keepalive, authentication, drain and close."""

from __future__ import annotations

import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import pytest
from nats_kit import NatsServer, nats_server

from actors._nats import (
    AuthorizationError,
    Client,
    ConnectionClosed,
    Msg,
    NatsTimeout,
    NoResponders,
    NotSupported,
    PayloadTooLarge,
    ServerError,
    connect,
)

pytestmark = pytest.mark.anyio

#: Seconds any one expectation may take on a loaded machine (not a speed test).
WAIT = 10.0


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (checking at each scheduling round, bounded by WAIT) until the
    client's state satisfies ``predicate``."""
    with anyio.fail_after(WAIT):
        while not predicate():  # noqa: ASYNC110 (state of the client, no event to wait on)
            await anyio.sleep(0.001)


async def echo(nc: Client, subject: str, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    """Answer every request on ``subject`` with its payload upper-cased and
    its headers."""
    async with await nc.subscribe(subject) as sub:
        await nc.flush()
        task_status.started()
        async for msg in sub:
            await nc.publish(msg.reply, msg.data.upper(), headers=msg.headers)


async def test_publish_and_subscribe_with_and_without_headers(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        sub = await nc.subscribe("orders.*")
        await nc.flush()
        await nc.publish("orders.eu", b"one")
        await nc.publish("orders.us", b"two", headers={"Nats-Msg-Id": "7", "k": "v v"})
        await nc.publish("orders.eu", b"", reply="answers.here")
        await nc.publish("other", b"not for us")
        first = await sub.next_msg(WAIT)
        assert (first.subject, first.data, first.headers) == ("orders.eu", b"one", None)
        second = await sub.next_msg(WAIT)
        assert second.headers == {"Nats-Msg-Id": "7", "k": "v v"} and second.data == b"two"
        third = await sub.next_msg(WAIT)
        assert (third.reply, third.data) == ("answers.here", b"")
        assert nc.statistics().out_msgs == 4


async def test_try_publish_hands_a_message_to_the_socket_without_waiting(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as nc:
        sub = await nc.subscribe("direct")
        await nc.flush()
        assert nc.try_publish("direct", b"one")
        assert nc._pending == bytearray()  # in the kernel already: no flusher needed
        await nc.publish("direct", b"two")
        assert nc.try_publish("direct", b"three")  # after a queued one: in order
        with anyio.fail_after(WAIT):
            assert [(await sub.next_msg()).data for _ in range(3)] == [b"one", b"two", b"three"]
        with pytest.raises(PayloadTooLarge):
            nc.try_publish("direct", bytes(nc.max_payload + 1))
        with pytest.raises(ValueError):
            nc.try_publish("bad subject", b"")
    assert not nc.try_publish("direct", b"closed")  # disconnected: queues nothing


async def test_a_subscription_can_hand_its_messages_to_a_callback(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as nc:
        sub = await nc.subscribe("routed.*")
        await nc.flush()
        await nc.publish("routed.a", b"1")
        await nc.flush()
        await until(lambda: sub.pending == 1)
        got: list[bytes] = []
        sub._deliver_to(lambda msg: got.append(msg.data))
        assert got == [b"1"]  # what was buffered goes first
        for data in (b"2", b"3"):
            await nc.publish("routed.b", data)
        await nc.flush()
        await until(lambda: len(got) == 3)
        assert got == [b"1", b"2", b"3"]
        assert sub.pending == 0


async def test_two_clients_and_a_large_payload(nats_server: NatsServer) -> None:
    payload = bytes(range(256)) * 2048  # 512 KiB, split over many reads
    async with connect(nats_server.url) as a, connect(nats_server.url) as b:
        sub = await b.subscribe("big")
        await b.flush()
        await a.publish("big", payload, headers={"size": str(len(payload))})
        msg = await sub.next_msg(WAIT)
        assert msg.data == payload and msg.headers == {"size": str(len(payload))}


async def test_a_queue_group_gets_each_message_once(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        workers = [await nc.subscribe("jobs", queue="workers") for _ in range(3)]
        everyone = await nc.subscribe("jobs")
        await nc.flush()
        for i in range(60):
            await nc.publish("jobs", b"%d" % i)
        seen = [(await everyone.next_msg(WAIT)).data for _ in range(60)]
        assert seen == [b"%d" % i for i in range(60)]
        await nc.flush()  # everything the server sent before is in the buffers
        got = sorted(int(m.data) for w in workers for m in w._buffer)
        assert got == list(range(60))


async def test_unsubscribe_now_and_after_max_messages(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        three = await nc.subscribe("count")
        await three.unsubscribe(max=3)
        stopped = await nc.subscribe("count")
        await nc.flush()
        await stopped.unsubscribe()
        assert not stopped.active
        for i in range(10):
            await nc.publish("count", b"%d" % i)
        await nc.flush()
        assert [m.data async for m in three] == [b"0", b"1", b"2"]
        assert not three.active
        assert [m async for m in stopped] == []


async def test_request_reply_on_one_inbox(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc, anyio.create_task_group() as tg:
        await tg.start(echo, nc, "svc.echo")
        replies = []

        async def ask(i: int) -> None:
            replies.append((await nc.request("svc.echo", b"r%d" % i, timeout=WAIT)).data)

        async with anyio.create_task_group() as asks:
            for i in range(20):
                asks.start_soon(ask, i)
        assert sorted(replies) == sorted(b"R%d" % i for i in range(20))
        reply = await nc.request("svc.echo", b"h", headers={"trace": "t1"}, timeout=WAIT)
        assert reply.headers == {"trace": "t1"}
        assert nc.statistics().subscriptions == 1  # the inbox is not a subscription of ours
        tg.cancel_scope.cancel()


async def test_no_responders_is_raised_at_once_not_after_the_timeout(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as nc:
        with anyio.fail_after(WAIT):  # the request's own timeout is far longer
            with pytest.raises(NoResponders, match=r"nobody\.home"):
                await nc.request("nobody.home", b"?", timeout=3600)


async def test_silence_is_a_timeout_and_a_late_reply_is_counted(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        sub = await nc.subscribe("slow.svc")
        await nc.flush()
        with pytest.raises(NatsTimeout) as caught:
            await nc.request("slow.svc", b"?", timeout=0.05)
        assert isinstance(caught.value, TimeoutError)
        asked = await sub.next_msg(WAIT)
        await nc.publish(asked.reply, b"too late")
        await nc.flush()
        await until(lambda: nc.statistics().late_replies == 1)


async def test_a_cancelled_request_leaves_no_slot(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        sub = await nc.subscribe("never")
        await nc.flush()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(nc.request, "never", timeout=3600))
                await sub.next_msg(WAIT)
                scope.cancel()
        assert nc._requests == {}


async def test_a_slow_consumer_gets_backpressure_and_loses_nothing(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as publisher, connect(nats_server.url) as nc:
        slow = await nc.subscribe("firehose", pending_msgs=4)
        await nc.flush()
        for i in range(500):
            await publisher.publish("firehose", b"%d" % i)
        await publisher.flush()
        # The reader waits for room: it reads no more from the socket.
        await until(lambda: nc._blocked is not None)
        assert slow.pending == 4
        got = []
        async for msg in slow:
            got.append(int(msg.data))
            assert slow.pending <= 4
            if len(got) == 500:
                break
        assert got == list(range(500))
        await nc.flush(WAIT)  # and the connection is fine


async def test_unsubscribing_a_full_subscription_frees_the_connection(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as nc:
        full = await nc.subscribe("stuck", pending_msgs=1)
        other = await nc.subscribe("free")
        await nc.flush()
        for i in range(5):
            await nc.publish("stuck", b"%d" % i)
        await nc.publish("free", b"after")
        await until(lambda: nc._blocked is not None)
        await full.unsubscribe()
        assert (await other.next_msg(WAIT)).data == b"after"
        assert [m.data async for m in full] == [b"0"]  # what was buffered is still given


async def test_a_stopped_server_makes_the_connection_stale(tmp_path: Path) -> None:
    lost = anyio.Event()
    reasons: list[BaseException | None] = []

    def disconnected(reason: BaseException | None) -> None:
        reasons.append(reason)
        lost.set()

    with nats_server(tmp_path) as server:
        async with connect(
            server.url, ping_interval=0.05, reconnect=False, on_disconnected=disconnected
        ) as nc:
            await nc.flush()
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)
            try:
                with anyio.fail_after(WAIT):
                    await lost.wait()
            finally:
                server.process.send_signal(signal.SIGCONT)
            assert isinstance(reasons[0], NatsTimeout) and "stale" in str(reasons[0])
            assert nc.is_closed
            with pytest.raises(ConnectionClosed):
                await nc.publish("x", b"")


async def test_the_server_pings_and_the_client_answers(tmp_path: Path) -> None:
    # ping_max leaves room for a loaded machine's stalls (a second).
    with nats_server(tmp_path, extra_config='ping_interval: "100ms"\nping_max: 10') as server:
        async with connect(server.url) as nc:
            sub = await nc.subscribe("alive")
            await nc.flush()
            # The server would have dropped us after ten unanswered PINGs.
            await until(lambda: nc._pings_answered >= 15)
            await nc.publish("alive", b"yes")
            assert (await sub.next_msg(WAIT)).data == b"yes"
            assert nc.statistics().reconnects == 0 and nc.is_connected


async def test_user_password_and_token_authentication(tmp_path: Path) -> None:
    users = "authorization { users: [ { user: alice, password: 's3cr:t' } ] }"
    with nats_server(tmp_path / "users", extra_config=users) as server:
        host = f"127.0.0.1:{server.port}"
        async with connect(f"nats://alice:s3cr%3At@{host}") as nc:
            await nc.flush()
        async with connect(host, user="alice", password="s3cr:t") as nc:
            await nc.flush()
        with pytest.raises(AuthorizationError):
            async with connect(f"nats://alice:wrong@{host}"):
                pass
    with nats_server(tmp_path / "token", extra_config="authorization { token: t0k3n }") as server:
        async with connect(f"nats://t0k3n@127.0.0.1:{server.port}") as nc:
            await nc.flush()
        async with connect(server.url, token="t0k3n") as nc:
            await nc.flush()
        with pytest.raises(AuthorizationError):
            async with connect(server.url, token="nope"):
                pass


async def test_a_permissions_violation_is_reported_and_the_connection_stays(
    tmp_path: Path,
) -> None:
    config = """authorization { users: [
        { user: u, password: p, permissions: { publish: { deny: ["secret.>"] } } }
    ] }"""
    errors: list[ServerError] = []
    reported = anyio.Event()

    def on_error(error: ServerError) -> None:
        errors.append(error)
        reported.set()

    with nats_server(tmp_path, extra_config=config) as server:
        url = f"nats://u:p@127.0.0.1:{server.port}"
        async with connect(url, on_error=on_error) as nc:
            sub = await nc.subscribe("open")
            await nc.publish("secret.plans", b"no")
            with anyio.fail_after(WAIT):
                await reported.wait()
            assert "Permissions Violation" in errors[0].message
            assert "secret.plans" in errors[0].message
            await nc.publish("open", b"still connected")
            assert (await sub.next_msg(WAIT)).data == b"still connected"
            assert nc.statistics().reconnects == 0


async def test_what_the_client_cannot_do_is_said_clearly(nats_server: NatsServer) -> None:
    with pytest.raises(NotSupported, match="websockets"):
        connect("wss://127.0.0.1:4222")
    with pytest.raises(NotSupported, match="JWT credentials"):
        connect(nats_server.url, user_credentials="user.creds")
    async with connect(nats_server.url) as nc:
        with pytest.raises(PayloadTooLarge, match="max_payload"):
            await nc.publish("big", b"x" * (nc.max_payload + 1))
        with pytest.raises(ValueError, match="subject"):
            await nc.publish("has space", b"")
        with pytest.raises(ValueError, match="queue group"):
            await nc.subscribe("ok", queue="bad queue")


async def test_drain_delivers_what_was_sent_then_ends_subscriptions(
    nats_server: NatsServer,
) -> None:
    async with connect(nats_server.url) as publisher, connect(nats_server.url) as nc:
        sub = await nc.subscribe("drained")
        await nc.flush()
        for i in range(50):
            await publisher.publish("drained", b"%d" % i)
        await publisher.flush()
        await nc.drain()
        assert nc.is_closed
        assert [int(m.data) async for m in sub] == list(range(50))


async def test_close_fails_waiters_and_ends_iterators(nats_server: NatsServer) -> None:
    async with connect(nats_server.url) as nc:
        asked = await nc.subscribe("never")
        sub = await nc.subscribe("quiet")
        await nc.flush()
        failures: list[BaseException] = []
        messages: list[Msg] = []

        async def wait_reply() -> None:
            try:
                await nc.request("never", b"", timeout=3600)
            except ConnectionClosed as error:
                failures.append(error)

        async def iterate() -> None:
            messages.extend([m async for m in sub])

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_reply)
            tg.start_soon(iterate)
            await asked.next_msg(WAIT)  # the request is out
            await nc.close()
        assert len(failures) == 1 and messages == []
        with pytest.raises(ConnectionClosed):
            await nc.subscribe("after")
        await nc.close()  # twice is fine
