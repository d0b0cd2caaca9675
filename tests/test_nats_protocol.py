"""The NATS protocol parser and encoders (actors/_nats/_protocol.py), without
a server: every operation, split at every byte, and what is malformed."""

from __future__ import annotations

from typing import Any

import pytest

from actors._nats import Msg, ProtocolError
from actors._nats._protocol import (
    ERR,
    INFO,
    MSG,
    OK,
    PING,
    PONG,
    Parser,
    check_subject,
    encode_headers,
    parse_headers,
)

STREAM = (
    b'INFO {"server_id":"x","max_payload":1048576,"headers":true}\r\n'
    b"MSG a.b 1 5\r\nhello\r\n"
    b"MSG a.c 2 _INBOX.x.1 0\r\n\r\n"
    b"PING\r\n+OK\r\npong\r\n"
    b"HMSG h 3 reply 23 26\r\nNATS/1.0\r\nA: 1\r\nB:x\r\n\r\nabc\r\n"
    b"HMSG _INBOX.x.2 4 30 30\r\nNATS/1.0 503 No Responders\r\n\r\n\r\n"
    b"-ERR 'Permissions Violation for Publish to \"x\"'\r\n"
    b"MSG bin 5 4\r\n\r\n\r\n\r\n"
)


def expected() -> list[tuple[Any, ...]]:
    return [
        (INFO, {"server_id": "x", "max_payload": 1048576, "headers": True}),
        (MSG, Msg("a.b", b"hello", sid=1)),
        (MSG, Msg("a.c", b"", "_INBOX.x.1", sid=2)),
        (PING,),
        (OK,),
        (PONG,),
        (MSG, Msg("h", b"abc", "reply", {"A": "1", "B": "x"}, sid=3)),
        (MSG, Msg("_INBOX.x.2", b"", "", {}, "503", "No Responders", sid=4)),
        (ERR, 'Permissions Violation for Publish to "x"'),
        (MSG, Msg("bin", b"\r\n\r\n", sid=5)),
    ]


def test_one_read_gives_every_operation() -> None:
    assert Parser().feed(STREAM) == expected()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_reads_split_anywhere_give_the_same_operations(size: int) -> None:
    parser = Parser()
    ops: list[tuple[Any, ...]] = []
    for i in range(0, len(STREAM), size):
        ops += parser.feed(STREAM[i : i + size])
    assert ops == expected()


@pytest.mark.parametrize(
    "data",
    [
        b"NOPE\r\n",
        b"MSG a 1\r\n",
        b"MSG a x 1\r\n",
        b"HMSG a 1 10 5\r\n",
        b"MSG a 1 3\r\nabcde\r\n",
        b"INFO {not json\r\n",
        b"HMSG a 1 4 6\r\nHTTP\r\nxy\r\n",
    ],
)
def test_malformed_input_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Parser().feed(data)


def test_an_endless_control_line_is_refused() -> None:
    parser = Parser()
    with pytest.raises(ProtocolError, match="longer than"):
        for _ in range(20):
            parser.feed(b"x" * 65536)


def test_headers_round_trip() -> None:
    headers = {"Nats-Msg-Id": "abc", "traceparent": "00-1-2-01", "Empty": ""}
    block = encode_headers(headers)
    assert block.startswith(b"NATS/1.0\r\n") and block.endswith(b"\r\n\r\n")
    assert parse_headers(block[:-4]) == (headers, None, "")


@pytest.mark.parametrize("key", ["", "a:b", "a b", "a\tb"])
def test_a_bad_header_name_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        encode_headers({key: "v"})


def test_a_header_value_with_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_headers({"k": "a\r\nPUB x 1"})


@pytest.mark.parametrize("subject", ["", "a b", "a\r\nPUB", "\t"])
def test_a_bad_subject_is_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        check_subject(subject)
