"""Peek at a session: envelope, version and metadata only, never the results.

This is what listing needs; a session whose results are broken still peeks.
:func:`quick_peek` is a cheaper, provisional peek for start-up (see there).
"""

from __future__ import annotations

import json
import re

from resumed.session.envelope import (
    DEFAULT_MAX_SESSION_BYTES,
    gunzip_bounded,
    paused_gc,
    unpack_envelope,
)
from resumed.session.errors import IncompatibleSessionError, SessionResumeError
from resumed.session.formats import read_metadata, read_version
from resumed.session.model import SessionMetaData

_HEAD = '{"session":{'
_META_KEY = '"metadata":'
_TAIL = re.compile(r',"version":(0|[1-9][0-9]{0,8})\}\Z')
_DECODER = json.JSONDecoder()


def quick_peek(data: bytes, max_bytes: int = DEFAULT_MAX_SESSION_BYTES) -> SessionMetaData | None:
    """Peek without parsing the whole JSON document; ``None`` when it cannot.

    Checkbox writes compact JSON with sorted keys: ``{"session":{...},"version":N}``.
    A quote inside a JSON string is always escaped, so in a document where the
    strings ``"session"``, ``"metadata"`` and ``"version"`` each occur once,
    those occurrences are the keys: the metadata object follows the one
    ``"metadata":`` and the version ends the text. Only the metadata object is
    parsed, so this costs the decompression and little more.

    The answer is provisional: whenever :meth:`SessionPeekHelper.peek` succeeds
    on ``data``, this returns the same metadata or ``None``; but it may also
    succeed where the full peek fails (broken JSON outside the metadata), so a
    caller must confirm it with a full peek or a resume. Any doubt and any
    failure give ``None``: the full peek then has the authoritative answer.
    """
    try:
        text = gunzip_bounded(bytes(data), max_bytes).decode("UTF-8")
    except (SessionResumeError, UnicodeDecodeError):
        return None
    tail = _TAIL.search(text, len(text) - 20)
    start = text.find('"metadata"')
    if (
        not text.startswith(_HEAD)
        or tail is None
        or not text.startswith(_META_KEY, start)
        or not all(_once(text, key) for key in ('"session"', '"version"', '"metadata"'))
    ):
        return None
    try:
        metadata, _end = _DECODER.raw_decode(text, start + len(_META_KEY))
        doc = {"version": int(tail.group(1)), "session": {"metadata": metadata}}
        return read_metadata(doc)
    except (ValueError, RecursionError, SessionResumeError):
        return None


def _once(text: str, key: str) -> bool:
    """Whether ``key`` occurs exactly once in ``text``."""
    first = text.find(key)
    return first >= 0 and text.rfind(key) == first


class SessionPeekHelper:
    """Read a session blob's metadata (PlainBox's ``SessionPeekHelper``)."""

    #: When set, the only format version this helper accepts.
    VERSION: int | None = None

    def __init__(self, max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES) -> None:
        self.max_session_bytes = max_session_bytes

    def peek(self, data: bytes) -> SessionMetaData:
        """Return the metadata of the session blob ``data``.

        Raises only :class:`~resumed.session.errors.SessionResumeError` subclasses.
        """
        with paused_gc():
            return self.peek_json(unpack_envelope(data, self.max_session_bytes))

    def peek_json(self, doc: object) -> SessionMetaData:
        """Return the metadata of an already unpacked session document."""
        version = read_version(doc)
        if self.VERSION is not None and version.number != self.VERSION:
            raise IncompatibleSessionError(f"Unsupported version {version.number}")
        return read_metadata(doc)


class SessionPeekHelper1(SessionPeekHelper):
    """Peek helper for format version 1 only."""

    VERSION = 1


class SessionPeekHelper2(SessionPeekHelper):
    """Peek helper for format version 2 only."""

    VERSION = 2


class SessionPeekHelper3(SessionPeekHelper):
    """Peek helper for format version 3 only."""

    VERSION = 3


class SessionPeekHelper4(SessionPeekHelper):
    """Peek helper for format version 4 only."""

    VERSION = 4


class SessionPeekHelper5(SessionPeekHelper):
    """Peek helper for format version 5 only."""

    VERSION = 5


class SessionPeekHelper6(SessionPeekHelper):
    """Peek helper for format version 6 only."""

    VERSION = 6


class SessionPeekHelper7(SessionPeekHelper):
    """Peek helper for format version 7 only."""

    VERSION = 7


class SessionPeekHelper8(SessionPeekHelper):
    """Peek helper for format version 8 only."""

    VERSION = 8


class SessionPeekHelper9(SessionPeekHelper):
    """Peek helper for format version 9 only."""

    VERSION = 9


class SessionPeekHelper10(SessionPeekHelper):
    """Peek helper for format version 10 only."""

    VERSION = 10


class SessionPeekHelper11(SessionPeekHelper):
    """Peek helper for format version 11 only."""

    VERSION = 11
