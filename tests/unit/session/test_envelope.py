"""The session envelope: gzip around compact sorted JSON, unpacked defensively."""

from __future__ import annotations

import gzip
import json

import pytest

from resumed.session.envelope import pack_envelope, unpack_envelope
from resumed.session.errors import CorruptedSessionError

DOC = {"version": 7, "session": {"metadata": {"title": "héllo"}}}


def test_packed_session_is_gzip_of_compact_sorted_unescaped_json() -> None:
    text = gzip.decompress(pack_envelope(DOC)).decode("UTF-8")
    assert text == json.dumps(DOC, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert "héllo" in text


def test_packed_session_unpacks_to_the_same_document() -> None:
    assert unpack_envelope(pack_envelope(DOC)) == DOC


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not gzip at all", "Cannot decompress session data"),
        (pack_envelope(DOC)[:-5], "Cannot decompress session data"),
        (pack_envelope(DOC)[:12], "Cannot decompress session data"),
        (pack_envelope(DOC) + b"garbage", "Cannot decompress session data"),
        (b"", "Cannot interpret session JSON"),
        (gzip.compress(b"\xff\xfe not utf-8"), "Cannot decode session text"),
        (gzip.compress(b"{not json"), "Cannot interpret session JSON"),
        (pack_envelope(DOC) + pack_envelope(DOC), "Cannot interpret session JSON"),
        (gzip.compress(b"[" * 200_000 + b"]" * 200_000), "Cannot interpret session JSON"),
    ],
    ids=[
        "not-gzip",
        "truncated",
        "truncated-header",
        "trailing-garbage",
        "empty",
        "bad-utf8",
        "bad-json",
        "two-members",
        "deep-nesting",
    ],
)
def test_bad_envelope_is_corrupted_with_plainbox_message(blob: bytes, message: str) -> None:
    with pytest.raises(CorruptedSessionError) as info:
        unpack_envelope(blob)
    assert info.value.message.startswith(message)
    assert info.value.reason == "corrupted"


def test_flipped_deflate_byte_is_corrupted() -> None:
    blob = bytearray(pack_envelope({"data": list(range(200))}))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(CorruptedSessionError):
        unpack_envelope(bytes(blob))


def test_gzip_bomb_is_corrupted_not_a_memory_blow_up() -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    with pytest.raises(CorruptedSessionError, match="more than 1048576 bytes"):
        unpack_envelope(bomb, max_bytes=1024 * 1024)


def test_trailing_zero_padding_is_accepted_like_gzip_does() -> None:
    assert unpack_envelope(pack_envelope(DOC) + b"\0" * 8) == DOC
