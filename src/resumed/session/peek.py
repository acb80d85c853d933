"""Peek at a session: envelope, version and metadata only, never the results.

This is what listing needs; a session whose results are broken still peeks.
"""

from __future__ import annotations

from resumed.session.envelope import DEFAULT_MAX_SESSION_BYTES, paused_gc, unpack_envelope
from resumed.session.errors import IncompatibleSessionError
from resumed.session.formats import read_metadata, read_version
from resumed.session.model import SessionMetaData


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
