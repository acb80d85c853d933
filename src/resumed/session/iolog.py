"""Reading ``.record.gz`` io-logs, only ever from inside the session directory.

A stored ``io_log_filename`` is resolved against the session ``location``:
a path inside it is used as is (no ``..`` escapes), an absolute path elsewhere
(a moved session, or a hostile one) is looked up by its file name under
``<location>/io-logs/``. Every component is opened with ``O_NOFOLLOW`` relative
to the directory before it, and the file must be a regular file, so links,
FIFOs and devices are never followed or opened. Decompression is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterable, Iterator

from resumed.session.envelope import iter_gunzip
from resumed.session.errors import BrokenReferenceToExternalFile, CorruptedSessionError
from resumed.session.formats import read_record
from resumed.session.model import IOLogRecord

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def relative_parts(filename: str, location: str) -> list[str]:
    """Return the path components of ``filename`` inside ``location``.

    Raises :class:`BrokenReferenceToExternalFile` for a relative name that
    escapes the session directory.
    """
    if "\0" in filename:
        raise BrokenReferenceToExternalFile(f"io-log name {filename!r} holds a NUL character")
    base = os.path.abspath(location)
    if os.path.isabs(filename):
        path = os.path.normpath(filename)
        if os.path.commonpath([base, path]) == base and path != base:
            return os.path.relpath(path, base).split(os.sep)
        return ["io-logs", os.path.basename(path)]
    rel = os.path.normpath(filename)
    parts = rel.split(os.sep)
    if os.path.isabs(rel) or ".." in parts or rel == ".":
        raise BrokenReferenceToExternalFile(
            f"io-log {filename!r} points outside the session directory"
        )
    return parts


def _open_inside(filename: str, location: str | None) -> int:
    """Open the io-log as a regular file inside ``location``; return the fd."""
    if location is None:
        raise BrokenReferenceToExternalFile(
            f"Cannot locate io-log {filename!r} without a session location"
        )
    parts = relative_parts(filename, location)
    try:
        dir_fd = os.open(location, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BrokenReferenceToExternalFile(
            f"Cannot open session directory {location!r}: {exc.strerror}"
        ) from exc
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise BrokenReferenceToExternalFile(
            f"Cannot open io-log {filename!r}: {exc.strerror}"
        ) from exc
    except ValueError as exc:  # a name the file system cannot encode (lone surrogate)
        raise BrokenReferenceToExternalFile(f"Cannot open io-log {filename!r}: {exc}") from exc
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BrokenReferenceToExternalFile(f"io-log {filename!r} is not a regular file")
    return fd


def io_log_exists(filename: str, location: str | None) -> bool:
    """Whether the io-log resolves to a regular file inside ``location``."""
    try:
        os.close(_open_inside(filename, location))
    except BrokenReferenceToExternalFile:
        return False
    return True


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a stream of chunks into lines, in time linear in the bytes."""
    parts: list[bytes] = []
    for chunk in chunks:
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            parts.append(chunk[start : newline + 1])
            yield b"".join(parts)
            parts.clear()
            start = newline + 1
        parts.append(chunk[start:])
    tail = b"".join(parts)
    if tail:
        yield tail


def iter_io_log(filename: str, location: str | None, max_bytes: int) -> Iterator[IOLogRecord]:
    """Yield the records of an io-log, one JSON ``[delay, stream, base64]`` per line.

    The file is opened at once; decompression and parsing are streamed, so
    memory stays bounded by the compressed size whatever the record count.
    Missing or unopenable files raise :class:`BrokenReferenceToExternalFile`;
    bad content or more than ``max_bytes`` raise :class:`CorruptedSessionError`.
    """
    fd = _open_inside(filename, location)
    try:
        with os.fdopen(fd, "rb") as stream:
            compressed = stream.read(max_bytes + 1)
    except OSError as exc:
        raise BrokenReferenceToExternalFile(
            f"Cannot read io-log {filename!r}: {exc.strerror}"
        ) from exc
    if len(compressed) > max_bytes:
        raise CorruptedSessionError(f"io-log {filename!r} is larger than {max_bytes} bytes")
    return _records(
        filename, iter_gunzip(compressed, max_bytes, f"Cannot decompress io-log {filename!r}")
    )


def _records(filename: str, chunks: Iterator[bytes]) -> Iterator[IOLogRecord]:
    try:
        for line in _lines(chunks):
            if line.strip():
                yield read_record(json.loads(line))
    except (ValueError, RecursionError) as exc:
        raise CorruptedSessionError(f"Cannot interpret io-log {filename!r}") from exc
