"""The envelope format: every field survives, batches keep their order, and bad
input fails before anything is encoded."""

from __future__ import annotations

import pytest

from actors._envelope import HEAD, Envelope, Kind, decode_batch, encode, encode_reply


def test_every_field_round_trips() -> None:
    envelope = Envelope(
        Kind.ASK,
        "/user/büro/worker-1",
        "/user/client",
        2**64 - 1,
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "": "é"},
        b"\x80\x05body",
    )
    [decoded] = decode_batch(encode(envelope))
    assert decoded == envelope
    assert decoded.kind is Kind.ASK


@pytest.mark.parametrize("kind", list(Kind))
def test_each_kind_round_trips(kind: Kind) -> None:
    assert decode_batch(encode(Envelope(kind, "", "", 0, {}, b"")))[0].kind is kind


def test_a_batch_keeps_its_order() -> None:
    envelopes = [
        Envelope(Kind.TELL, f"/user/{i}", "", i, {"n": str(i)} if i % 2 else {}, bytes(i))
        for i in range(100)
    ]
    assert decode_batch(b"".join(encode(e) for e in envelopes)) == envelopes


def test_headers_need_no_pickle_and_are_compact() -> None:
    data = encode(Envelope(Kind.TELL, "/a", "", 0, {"k": "v"}, b""))
    assert len(data) == HEAD.size + len("/a") + len("k\0v")


@pytest.mark.parametrize(
    "headers, error",
    [
        ({"k": 1}, TypeError),
        ({1: "v"}, TypeError),
        ({"k\0": "v"}, ValueError),
        ({"k": "v\0"}, ValueError),
    ],
)
def test_bad_headers_fail_before_encoding(headers: dict[str, str], error: type) -> None:
    with pytest.raises(error, match="header"):
        encode(Envelope(Kind.TELL, "/a", "", 0, headers, b""))


@pytest.mark.parametrize(
    "envelope",
    [
        Envelope(Kind.TELL, "x" * 70_000, "", 0, {}, b""),
        Envelope(Kind.TELL, "/a", "", -1, {}, b""),
        Envelope(Kind.TELL, "/a", "", 2**64, {}, b""),
        Envelope(99, "/a", "", 0, {}, b""),  # type: ignore[arg-type]
    ],
)
def test_out_of_range_fields_are_refused(envelope: Envelope) -> None:
    with pytest.raises(ValueError, match="envelope"):
        encode(envelope)


@pytest.mark.parametrize(
    "payload",
    [
        encode(Envelope(Kind.TELL, "/a", "", 0, {}, b"body"))[:-1],  # cut short
        b"\x07" + encode(Envelope(Kind.TELL, "/a", "", 0, {}, b""))[1:],  # unknown kind
        b"\x00" * (HEAD.size - 1),
    ],
)
def test_a_malformed_batch_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="malformed envelope batch"):
        decode_batch(payload)


def test_a_reply_encoded_on_the_fast_path_is_the_envelope_encoded() -> None:
    for token, body in ((1, b""), (2**64 - 1, b"x" * 5000)):
        assert encode_reply(token, body) == encode(Envelope(Kind.REPLY, "", "", token, {}, body))
        [envelope] = decode_batch(encode_reply(token, body))
        assert (envelope.kind, envelope.reply_token, envelope.headers, envelope.body) == (
            Kind.REPLY,
            token,
            {},
            body,
        )
    with pytest.raises(ValueError, match="reply token"):
        encode_reply(-1, b"")
