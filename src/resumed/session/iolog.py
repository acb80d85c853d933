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
import re
import stat
from collections.abc import Iterable, Iterator
from typing import Any

from resumed.session.envelope import iter_gunzip
from resumed.session.errors import BrokenReferenceToExternalFile, CorruptedSessionError
from resumed.session.formats import read_flat_records, read_record
from resumed.session.model import IOLogRecord, records_from_flat
from resumed.session.reading import read_up_to

logger = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: The first read of an io-log (most are small; asking for more allocates it all).
_FIRST_READ = 64 * 1024


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


def iter_io_log(filename: str, location: str | None, max_bytes: int) -> Iterator[IOLogRecord]:
    """Yield the records of an io-log, one JSON ``[delay, stream, base64]`` per line.

    The file is opened at once; decompression and parsing are streamed, so
    memory stays bounded by the compressed size whatever the record count.
    Missing or unopenable files raise :class:`BrokenReferenceToExternalFile`;
    bad content or more than ``max_bytes`` raise :class:`CorruptedSessionError`.
    """
    fd = _open_inside(filename, location)
    try:
        try:
            compressed = read_up_to(fd, max_bytes + 1, _FIRST_READ)
        finally:
            os.close(fd)
    except OSError as exc:
        raise BrokenReferenceToExternalFile(
            f"Cannot read io-log {filename!r}: {exc.strerror}"
        ) from exc
    if len(compressed) > max_bytes:
        raise CorruptedSessionError(f"io-log {filename!r} is larger than {max_bytes} bytes")
    return _records(
        filename, iter_gunzip(compressed, max_bytes, f"Cannot decompress io-log {filename!r}")
    )


#: A line holding one record of the usual shape and nothing that could join it
#: to another line (no nesting, quotes or brackets inside the strings).
_PLAIN_LINE = re.compile(
    rb'\s*\[\s*-?[0-9][0-9.eE+-]*\s*,\s*"std(?:out|err)"\s*,\s*"[A-Za-z0-9+/=]*"\s*\]\s*'
)

#: Bytes that never delimit a JSON value: those of numbers, literals and base64.
_TOKEN_BYTES = b"+-./0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A line as ``json.dumps`` writes a record, then ``\n``, without `_TOKEN_BYTES`.
_DUMPED_SHAPE = b'[, "", ""]\n'

#: Lines parsed by one ``json.loads`` call (bounds the memory of a batch).
_BATCH_LINES = 1024


def _batches(chunks: Iterator[bytes]) -> Iterator[list[bytes]]:
    r"""The non-blank lines of the io-log, in lists of about ``_BATCH_LINES``.

    Lines are split at ``\n`` (kept off), chunk by chunk; a line running over
    several chunks is joined once, so time stays linear in the bytes. When
    reading fails, the complete lines read before are handed out first, so their
    records (and errors) come before the read error, as line by line.
    """
    batch: list[bytes] = []
    parts: list[bytes] = []  # the line being read, when it spans chunks
    try:
        for chunk in chunks:
            pieces = chunk.split(b"\n")
            if len(pieces) == 1:
                parts.append(chunk)
                continue
            if parts:
                parts.append(pieces[0])
                pieces[0] = b"".join(parts)
                parts.clear()
            parts.append(pieces.pop())
            batch += [line for line in pieces if line.strip()]
            if len(batch) >= _BATCH_LINES:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    tail = b"".join(parts)
    if tail.strip():
        batch.append(tail)
    if batch:
        yield batch


def _parse_batch(lines: list[bytes]) -> Iterable[Any]:
    """``json.loads`` of each line, in one call when every line is plain.

    A plain line is one self-contained JSON value, so parsing the lines joined
    as one array gives the same values; otherwise (or when that fails) each line
    is parsed on its own, lazily, so errors and their order are exactly those
    of the per-line parse. A line that leaves `_DUMPED_SHAPE` without its token
    bytes is ``[A, "B", "C"]`` with no quote, backslash, bracket or space in A,
    B or C: plain (the usual shape, checked for all lines in one go); any other
    line is checked against `_PLAIN_LINE`.
    """
    plain = _PLAIN_LINE.fullmatch
    shape = b"\n".join([*lines, b""]).translate(None, _TOKEN_BYTES)
    if shape == _DUMPED_SHAPE * len(lines) or all(plain(line) for line in lines):
        try:
            values = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            pass
        else:
            if isinstance(values, list) and len(values) == len(lines):
                return values
    return (json.loads(line) for line in lines)


def _records(filename: str, chunks: Iterator[bytes]) -> Iterator[IOLogRecord]:
    try:
        for batch in _batches(chunks):
            values = _parse_batch(batch)
            if isinstance(values, list):
                try:
                    flat = read_flat_records(values)
                except CorruptedSessionError:
                    pass  # record by record below: the records before the bad one come first
                else:
                    yield from records_from_flat(flat)
                    continue
            for raw in values:
                yield read_record(raw)
    except (ValueError, RecursionError) as exc:
        raise CorruptedSessionError(f"Cannot interpret io-log {filename!r}") from exc
