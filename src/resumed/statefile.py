"""The daemon's own state in ``<state_dir>/state.json`` (written atomically).

It remembers, per file path, the boot under which each version of a session
file was first seen (to tell "last written in a previous boot" where the kernel
boot time cannot, as in systemd-nspawn), and every settled interruption with its
outcome (so an interruption is settled at most once and ``InterruptedJobOutcome``
survives restarts and reboots), and the ``session.next`` files the daemon is
writing (so its own leftover after a crash is recognised and moved away).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from resumed.session.model import SessionMetaData
from resumed.settle import Interruption
from resumed.storage import FileStamp

_log = logging.getLogger(__name__)

STATE_FILE = "state.json"
PEEK_INDEX_FILE = "peek-index.json"
_VERSION = 1
_PEEK_INDEX_VERSION = 1
#: A file version changed less than this long before it was peeked is not indexed:
#: a second write within the timestamps' granularity could keep the same stamp.
RACY_SECONDS = 2.0


def _stamp_key(stamp: FileStamp) -> list[int]:
    # The device number may change between boots; inode, size and mtime do not.
    return [stamp.ino, stamp.size, stamp.mtime_ns]


class StateStore:
    """Load, query and save the daemon state; not thread-safe (the registry locks)."""

    def __init__(self, state_dir: Path) -> None:
        """Load ``<state_dir>/state.json``; a missing or unreadable file starts empty."""
        self.path = state_dir / STATE_FILE
        self._files: dict[str, dict[str, Any]] = {}
        self._settled: dict[str, dict[str, Any]] = {}
        self._writing: dict[str, str] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_bytes())
            files, settled = doc["files"], doc["settled"]
            if doc.get("version") != _VERSION or not isinstance(files, dict):
                raise ValueError("unknown layout")
            if not isinstance(settled, dict):
                raise ValueError("unknown layout")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            _log.warning("ignoring unreadable state file %s: %s", self.path, error)
            return
        self._files = {k: v for k, v in files.items() if isinstance(v, dict)}
        self._settled = {k: v for k, v in settled.items() if isinstance(v, dict)}
        writing = doc.get("writing", {})
        if isinstance(writing, dict):
            self._writing = {k: str(v) for k, v in writing.items()}

    def first_seen_boot(self, path: Path, stamp: FileStamp, boot_id: str) -> str:
        """The boot id under which this version of ``path`` was first seen (recording it now)."""
        key = str(path)
        entry = self._files.get(key)
        if entry is not None and entry.get("stamp") == _stamp_key(stamp):
            return str(entry.get("boot_id", ""))
        self._files[key] = {"stamp": _stamp_key(stamp), "boot_id": boot_id}
        self._dirty = True
        return boot_id

    def forget_except(self, paths: set[str]) -> None:
        """Drop file records of paths not in ``paths`` (after a complete scan)."""
        gone = set(self._files) - paths
        for key in gone:
            del self._files[key]
        self._dirty = self._dirty or bool(gone)

    def settled_outcome(self, interruption: Interruption) -> str | None:
        """The outcome recorded for ``interruption``, or ``None`` when it was never settled."""
        entry = self._settled.get(interruption.key)
        return None if entry is None else str(entry.get("outcome", ""))

    def record_settle(self, interruption: Interruption, boot_id: str, outcome: str) -> None:
        """Record a settle and save at once (SPEC §3: after the rename)."""
        self._settled[interruption.key] = {
            "session_id": interruption.session_id,
            "job_id": interruption.job_id,
            "boot_id": boot_id,
            "outcome": outcome,
        }
        self._dirty = True
        self.save()

    def begin_write(self, path: Path) -> None:
        """Record (and save) that the daemon is about to create ``path`` (a ``session.next``)."""
        self._writing[str(path)] = "writing"
        self._dirty = True
        self.save()

    def end_write(self, path: Path) -> None:
        """Forget ``path`` again once the write finished or failed cleanly (and save)."""
        if self._writing.pop(str(path), None) is not None:
            self._dirty = True
            self.save()

    def was_writing(self, path: Path) -> bool:
        """Whether a write of ``path`` began and never finished (the daemon died meanwhile)."""
        return str(path) in self._writing

    def save(self, force: bool = False) -> None:
        """Write the state file atomically if anything changed; raises ``OSError``."""
        if not (self._dirty or force):
            return
        doc = {
            "version": _VERSION,
            "files": self._files,
            "settled": self._settled,
            "writing": self._writing,
        }
        _replace_file(self.path, dumps_in_pieces(doc), durable=True)
        self._dirty = False


def _meta_to_json(meta: SessionMetaData) -> dict[str, Any]:
    return {
        "title": meta.title,
        "flags": sorted(meta.flags),
        "running_job_name": meta.running_job_name,
        "app_blob_text": meta.app_blob_text,
        "app_id": meta.app_id,
        "custom_joblist": meta.custom_joblist,
        "rejected_jobs": meta.rejected_jobs,
        "last_job_start_time": meta.last_job_start_time,
        "remaining_todo_jobs": meta.remaining_todo_jobs,
        "format_version": meta.format_version,
    }


def _meta_from_json(doc: dict[str, Any]) -> SessionMetaData:
    """The metadata stored by :func:`_meta_to_json`; raises ValueError/TypeError/KeyError."""
    blob_text = doc["app_blob_text"]
    rejected = doc["rejected_jobs"]
    meta = SessionMetaData(
        title=doc["title"],
        flags=set(doc["flags"]),
        running_job_name=doc["running_job_name"],
        app_blob=None if blob_text is None else base64.standard_b64decode(blob_text),
        app_blob_text=blob_text,
        app_id=doc["app_id"],
        custom_joblist=doc["custom_joblist"],
        rejected_jobs=None if rejected is None else list(rejected),
        last_job_start_time=doc["last_job_start_time"],
        remaining_todo_jobs=doc["remaining_todo_jobs"],
        format_version=int(doc["format_version"]),
    )
    if not all(isinstance(flag, str) for flag in meta.flags):
        raise TypeError("flags")
    return meta


class PeekIndex:
    """``<state_dir>/peek-index.json``: the metadata of every session file version peeked.

    A cache, so a restart (or a boot) only peeks the session files that changed
    since: an entry is used only while the file's stamp (device, inode, size,
    mtime and ctime, all in nanoseconds) is exactly the one peeked; any write
    changes the ctime, which no user can set. Not thread-safe (the registry
    locks). A missing, torn or foreign file starts empty.
    """

    def __init__(self, state_dir: Path) -> None:
        """Load the index; unreadable entries are dropped."""
        self.path = state_dir / PEEK_INDEX_FILE
        self._entries: dict[str, tuple[FileStamp, SessionMetaData]] = {}
        self._raw: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_bytes())
            if doc.get("version") != _PEEK_INDEX_VERSION or not isinstance(doc["files"], dict):
                raise ValueError("unknown layout")
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            _log.info("ignoring unreadable peek index %s: %s", self.path, error)
            return
        for key, raw in doc["files"].items():
            try:
                stamp = FileStamp(*(int(v) for v in raw["stamp"]))
                self._entries[key] = (stamp, _meta_from_json(raw["meta"]))
                self._raw[key] = raw
            except (ValueError, KeyError, TypeError, binascii.Error):
                self._dirty = True

    def get(self, path: Path) -> tuple[FileStamp, SessionMetaData] | None:
        """(stamp, metadata) of the version of ``path`` peeked last, or None."""
        return self._entries.get(str(path))

    def put(self, path: Path, stamp: FileStamp, meta: SessionMetaData, peeked_at: float) -> None:
        """Remember the peek of ``path`` at ``stamp`` (``peeked_at``: epoch seconds of the read).

        A version whose ctime is within :data:`RACY_SECONDS` of the read is
        forgotten instead (it is peeked again next time).
        """
        key = str(path)
        if stamp.ctime_ns / 1e9 > peeked_at - RACY_SECONDS:
            if self._entries.pop(key, None) is not None:
                del self._raw[key]
                self._dirty = True
            return
        current = self._entries.get(key)
        if current is not None and current[0] == stamp:
            return
        self._entries[key] = (stamp, meta)
        self._raw[key] = {
            "stamp": [stamp.dev, stamp.ino, stamp.size, stamp.mtime_ns, stamp.ctime_ns],
            "meta": _meta_to_json(meta),
        }
        self._dirty = True

    def forget_except(self, paths: set[str]) -> None:
        """Drop the entries of paths not in ``paths`` (after a complete scan)."""
        for key in set(self._entries) - paths:
            del self._entries[key]
            del self._raw[key]
            self._dirty = True

    def save(self) -> None:
        """Write the index atomically if it changed (no fsync: losing it costs peeks only)."""
        if not self._dirty:
            return
        doc = {"version": _PEEK_INDEX_VERSION, "files": self._raw}
        _replace_file(self.path, dumps_in_pieces(doc), durable=False)
        self._dirty = False


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def dumps_in_pieces(doc: dict[str, Any]) -> str:
    """``json.dumps(doc, sort_keys=True, separators=(",", ":"))``, its big dicts entry by entry.

    The same text, but one ``json.dumps`` of 100,000 files holds the interpreter
    for about a second (the main loop answers nothing meanwhile); encoding each
    entry apart lets other threads run in between.
    """
    parts = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, dict):
            inner = ",".join(f"{_dumps(k)}:{_dumps(value[k])}" for k in sorted(value))
            parts.append(f"{_dumps(key)}:{{{inner}}}")
        else:
            parts.append(f"{_dumps(key)}:{_dumps(value)}")
    return "{" + ",".join(parts) + "}"


def _replace_file(path: Path, text: str, durable: bool) -> None:
    """Replace ``path`` with ``text`` through a hidden temporary file and a rename.

    ``durable`` also fsyncs the file and its directory (the state file must
    survive a crash; the peek index is a cache). Raises ``OSError``.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(text.encode("utf-8"))
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
