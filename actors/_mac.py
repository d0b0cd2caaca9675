"""The MAC of frames: a keyed tag on every frame, checked before anything in it is read.

Two algorithms, chosen by the size of the payload (which the tag also covers),
because each wins at one end on the machines we measured
(``python -m benchmarks.wire``): keyed BLAKE2b costs about a third of
HMAC-SHA256 on a small frame, while HMAC-SHA256, on CPUs with SHA extensions,
costs half of BLAKE2b on a large batch. Both tags are 128 bits, each under its
own key derived from the session key of the direction. The handshake names
the pair (:data:`MAC_NAME`), so both ends agree or refuse to talk.

Examples:
    >>> tagger = Tagger(b"k" * 32)
    >>> len(tagger.tag(b"head", b"payload")), tagger.tag(b"h", b"x") == tagger.tag(b"h", b"y")
    (16, False)
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

#: Payloads up to this many bytes are tagged with BLAKE2b, larger ones with HMAC-SHA256.
SMALL_PAYLOAD: Final = 2048
TAG_SIZE: Final = 16
MAC_NAME: Final = f"blake2b-128 up to {SMALL_PAYLOAD} bytes, hmac-sha256-128 above"


def _subkey(key: bytes, label: bytes) -> bytes:
    return hmac.digest(key, label, hashlib.sha256)


class Tagger:
    """Tags frames under one direction's key.

    Args:
        key: The direction's session key (from the handshake).

    Examples:
        >>> Tagger(b"k" * 32).tag(b"", b"") == Tagger(b"j" * 32).tag(b"", b"")
        False
    """

    __slots__ = ("_blake2b", "_hmac")

    def __init__(self, key: bytes) -> None:
        # Keyed once: each tag starts from a copy, not from the key again.
        self._blake2b = hashlib.blake2b(key=_subkey(key, b"blake2b-128"), digest_size=TAG_SIZE)
        self._hmac = hmac.new(_subkey(key, b"hmac-sha256-128"), digestmod=hashlib.sha256)

    def tag(
        self, head: bytes | bytearray | memoryview, payload: bytes | bytearray | memoryview
    ) -> bytes:
        """The tag of ``head`` then ``payload``.

        Args:
            head: The frame's header (length and sequence number).
            payload: The frame's payload.

        Returns:
            16 bytes.

        Examples:
            >>> Tagger(b"k" * 32).tag(b"a", b"bc") == Tagger(b"k" * 32).tag(b"ab", b"c")
            True
        """
        if len(payload) <= SMALL_PAYLOAD:
            small = self._blake2b.copy()
            small.update(head)
            small.update(payload)
            return small.digest()
        large = self._hmac.copy()
        large.update(head)
        large.update(payload)
        return large.digest()[:TAG_SIZE]
