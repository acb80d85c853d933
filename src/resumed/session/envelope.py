"""The binary envelope of a session: gzip around compact, sorted JSON.

Unpacking is bounded: decompression stops (and the session is corrupted) as
soon as the output would exceed ``max_bytes``, so a gzip bomb never exhausts
memory. Every failure is a :class:`CorruptedSessionError` carrying PlainBox's
message for the same failure.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from resumed.session.errors import CorruptedSessionError

#: Default bound on the decompressed size of a session blob or an io-log (256 MiB).
DEFAULT_MAX_SESSION_BYTES = 256 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024
_FIRST_FEED = 256
MSG_DECOMPRESS = "Cannot decompress session data"
MSG_DECODE = "Cannot decode session text"
MSG_JSON = "Cannot interpret session JSON"


def iter_gunzip(data: bytes, max_bytes: int, message: str = MSG_DECOMPRESS) -> Iterator[bytes]:
    """Yield the decompressed chunks of ``data`` (one or more gzip members).

    Like :func:`gzip.decompress`, empty input gives nothing, concatenated members
    are joined and trailing zero padding is ignored; anything else that is not
    valid gzip (bad header, bad CRC, truncation, trailing garbage) or more than
    ``max_bytes`` of output raises :class:`CorruptedSessionError` with
    ``message``. Input is fed in bounded slices of a memoryview, so time is
    linear in the input whatever the number of members.
    """
    view = memoryview(data)
    end = len(view)
    offset = total = 0
    while offset < end:
        if view[offset : offset + 2] != _GZIP_MAGIC:
            if offset and not bytes(view[offset:]).strip(b"\x00"):
                return
            raise CorruptedSessionError(message)
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pos = offset
        pending: bytes | memoryview = b""
        # Small first slices: what follows a member is copied into unused_data.
        feed = _FIRST_FEED
        try:
            while not decomp.eof:
                if not pending and pos < end:
                    pending = view[pos : pos + feed]
                    pos += len(pending)
                    feed = min(feed * 4, _CHUNK)
                before = len(pending)
                chunk = decomp.decompress(pending, max_length=min(_CHUNK, max_bytes - total + 1))
                pending = decomp.unconsumed_tail
                total += len(chunk)
                if total > max_bytes:
                    raise CorruptedSessionError(
                        f"{message}: more than {max_bytes} bytes when decompressed"
                    )
                if chunk:
                    yield chunk
                elif len(pending) == before and pos >= end:
                    break
        except zlib.error as exc:
            raise CorruptedSessionError(message) from exc
        if not decomp.eof:
            raise CorruptedSessionError(message)
        offset = pos - len(decomp.unused_data)


def gunzip_bounded(data: bytes, max_bytes: int, message: str = MSG_DECOMPRESS) -> bytes:
    """Decompress ``data`` to at most ``max_bytes`` bytes (see :func:`iter_gunzip`).

    The usual blob, one valid gzip member and nothing after it, is decompressed
    in one call (output still bounded); anything else, or any error, goes
    through :func:`iter_gunzip` from the start, which gives the same bytes or
    raises its error.
    """
    if data[:2] == _GZIP_MAGIC:
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = decomp.decompress(data, max_bytes + 1)
        except zlib.error:
            pass
        else:
            if decomp.eof and not decomp.unused_data and len(raw) <= max_bytes:
                return raw
    return b"".join(iter_gunzip(data, max_bytes, message))


def unpack_envelope(data: bytes, max_bytes: int = DEFAULT_MAX_SESSION_BYTES) -> Any:
    """Return the JSON value inside a session blob (not yet validated).

    Raises :class:`CorruptedSessionError` for bad gzip, a bomb beyond
    ``max_bytes``, bad UTF-8, bad JSON or JSON nested too deeply.
    """
    raw = gunzip_bounded(bytes(data), max_bytes)
    try:
        text = raw.decode("UTF-8")
    except UnicodeDecodeError as exc:
        raise CorruptedSessionError(MSG_DECODE) from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptedSessionError(MSG_JSON) from exc


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while sessions are parsed (nestable, any thread).

    Peek and resume build large acyclic structures; with the collector on,
    every full collection walks the whole growing heap (a 50,000-job session
    resumes several times slower, and a daemon's worker holds the interpreter
    for long stretches). Reference counting still frees everything. The
    collector comes back on when the last pause, in any thread, ends.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def dumps_compact(obj: Any) -> str:
    """Serialize ``obj`` the way PlainBox does: compact, sorted keys, not ASCII-escaped."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=None, separators=(",", ":"))


def pack_envelope(obj: Any) -> bytes:
    """Return the session blob for the JSON document ``obj`` (gzip, level 9)."""
    return gzip.compress(dumps_compact(obj).encode("UTF-8"))
