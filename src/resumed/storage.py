"""Session roots on disk: discovery, safe reads, crash-safe writes and backups (SPEC §2, §3).

Session roots may be world-writable (Checkbox creates ``/var/tmp/checkbox-ng``
with mode 1777) while the daemon runs as root, so every path below a root is
opened relative to a directory file descriptor with ``O_NOFOLLOW``: links are
never followed, ``session`` must be a regular file (checked with ``lstat``
before the open and ``fstat`` after it; opened ``O_NONBLOCK`` so a FIFO swapped
in between never blocks), and reads are bounded by ``max_session_bytes``.

Layout: ``<root>/<id>.session/{session, session.next, io-logs/, session-share/}``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import pwd
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from resumed.session.reading import read_up_to

_log = logging.getLogger(__name__)

SESSION_SUFFIX = ".session"
SESSION_FILE = "session"
NEXT_FILE = "session.next"
SHARE_DIR = "session-share"
BACKUPS_KEPT = 5
_TEMPORARY_SUFFIX = ".tmp"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

#: A step name handed to a checkpoint callback during :func:`atomic_write`.
Checkpoint = Callable[[str], None]


class StorageError(Exception):
    """Base class of storage errors; ``reason`` is the discard reason when reading fails."""

    reason = "io-error"


class SessionReadError(StorageError):
    """A session file cannot be read, or is not a regular file (a link, a FIFO, a device)."""


class SessionTooLargeError(StorageError):
    """A session file is larger than ``max_session_bytes`` (SPEC §1: ``corrupted``)."""

    reason = "corrupted"


class SessionWriteError(StorageError):
    """A write failed; the old file is intact."""


class SessionLockedError(SessionWriteError):
    """``session.next`` exists: someone may be writing this session right now."""


@dataclass(frozen=True)
class Candidate:
    """A ``<id>.session`` directory found under a root."""

    session_id: str
    root: Path
    name: str

    # Built once: a scan of 100,000 sessions asks for them millions of times.
    @functools.cached_property
    def directory(self) -> Path:
        """The session directory (published as ``Location``)."""
        return self.root / self.name

    @functools.cached_property
    def session_path(self) -> Path:
        """The path of its ``session`` file."""
        return self.directory / SESSION_FILE

    @functools.cached_property
    def next_path(self) -> Path:
        """The path of its ``session.next`` file (Checkbox's write in progress)."""
        return self.directory / NEXT_FILE


@dataclass(frozen=True)
class Duplicate:
    """A session directory whose id an earlier root already has (discard ``duplicate-id``)."""

    candidate: Candidate
    winner: Candidate


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a file: a rewrite changes at least one field."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        """The stamp of ``st``."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class SessionFile:
    """The ``session`` file of a candidate as read (``data`` is ``None`` when unchanged)."""

    candidate: Candidate
    stamp: FileStamp
    uid: int
    gid: int
    mode: int
    dir_uid: int
    dir_ino: int
    #: The stamp of ``session.next`` when one exists beside ``session``.
    next_stamp: FileStamp | None
    data: bytes | None

    @property
    def mtime(self) -> float:
        """Modification time of ``session`` in epoch seconds."""
        return self.stamp.mtime_ns / 1e9

    def trusted(self, uids: Iterable[int]) -> bool:
        """Whether both ``session`` and its directory are owned by one of ``uids``."""
        allowed = set(uids)
        return self.uid in allowed and self.dir_uid in allowed


def trusted_uids(names: Iterable[str]) -> frozenset[int]:
    """Root plus the uids of ``names``; unknown user names are skipped with a warning."""
    uids = {0}
    for name in names:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            _log.warning("trusted owner %r is not a user on this system; ignored", name)
    return frozenset(uids)


@contextlib.contextmanager
def _open_dir(path: Path | str, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _session_dir(candidate: Candidate) -> Iterator[int]:
    """The session directory's fd, opened relative to its root without following links."""
    with _open_dir(candidate.root) as root_fd, _open_dir(candidate.name, root_fd) as fd:
        yield fd


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scan_root(root: Path) -> list[Candidate]:
    try:
        with _open_dir(root) as fd, os.scandir(fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    except FileNotFoundError:
        _log.debug("session root %s does not exist", root)
        return []
    except OSError as error:
        _log.warning("cannot list session root %s: %s", root, error.strerror or error)
        return []
    return [c for name, is_dir in sorted(names) if (c := _candidate(root, name, is_dir))]


def is_session_name(name: str) -> bool:
    """Whether a root entry called ``name`` may be a session directory (``<id>.session``)."""
    return not name.startswith(".") and name.endswith(SESSION_SUFFIX) and name != SESSION_SUFFIX


def _candidate(root: Path, name: str, is_dir: bool) -> Candidate | None:
    """The candidate for entry ``name`` of ``root``, or None when it is not a session directory."""
    if not is_session_name(name):
        return None
    if not _is_utf8(name):
        _log.warning("skipping session directory with a non-UTF-8 name in %s: %r", root, name)
        return None
    if not is_dir:
        _log.debug("skipping %s/%s: not a directory (links are not followed)", root, name)
        return None
    return Candidate(name[: -len(SESSION_SUFFIX)], root, name)


def _look_up(root: Path, names: Iterable[str]) -> list[Candidate]:
    """The candidates among the entries ``names`` of ``root`` (no listing of the root)."""
    wanted = sorted(n for n in names if is_session_name(n))
    if not wanted:
        return []
    try:
        with _open_dir(root) as fd:
            found = []
            for name in wanted:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                candidate = _candidate(root, name, stat.S_ISDIR(st.st_mode))
                if candidate is not None:
                    found.append(candidate)
            return found
    except FileNotFoundError:
        return []
    except OSError as error:
        _log.warning("cannot look into session root %s: %s", root, error.strerror or error)
        return []


def _first_root_wins(
    found: Iterable[list[Candidate]],
) -> tuple[list[Candidate], list[Duplicate]]:
    winners: dict[str, Candidate] = {}
    duplicates: list[Duplicate] = []
    for candidates in found:
        for candidate in candidates:
            first = winners.get(candidate.session_id)
            if first is None:
                winners[candidate.session_id] = candidate
            else:
                duplicates.append(Duplicate(candidate, first))
    return list(winners.values()), duplicates


def discover(roots: Sequence[Path]) -> tuple[list[Candidate], list[Duplicate]]:
    """The session directories under ``roots`` and the duplicates (the first root wins).

    Hidden entries, names not ending in ``.session``, links and non-directories are
    skipped; a missing root is empty. Whether ``session`` exists is checked on read.
    """
    return _first_root_wins(_scan_root(root) for root in roots)


def discover_some(
    roots: Sequence[Path], names: Iterable[str], whole: Iterable[Path] = ()
) -> tuple[list[Candidate], list[Duplicate]]:
    """:func:`discover` limited to the entries ``names`` of every root and to the ``whole`` roots.

    Costs a ``stat`` per name and root instead of a listing of every root
    (filesystem events name a few sessions among thousands). The names found
    in a whole root are looked up in the other roots too, for duplicates.
    """
    whole = set(whole)
    listed = {root: _scan_root(root) for root in roots if root in whole}
    wanted = set(names) | {c.name for found in listed.values() for c in found}
    return _first_root_wins(
        listed[root] if root in listed else _look_up(root, wanted) for root in roots)


def _read_bounded(fd: int, limit: int, what: Path, size_hint: int = 1 << 20) -> bytes:
    """Read ``fd`` to its end; more than ``limit`` bytes raise SessionTooLargeError.

    ``size_hint`` (the size ``fstat`` gave, plus one to see the end) sizes the
    first read (see :func:`read_up_to`).
    """
    data = read_up_to(fd, limit + 1, size_hint)
    if len(data) > limit:
        raise SessionTooLargeError(f"{what}: larger than max_session_bytes ({limit})")
    return data


def _open_regular(name: str, dir_fd: int, where: Path) -> tuple[int, os.stat_result]:
    """Open ``name`` under ``dir_fd`` for reading if it is a regular file, else raise."""
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise SessionReadError(f"{where}: not a regular file (a link, a FIFO or a device)")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SessionReadError(f"{where}: is a symbolic link") from error
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise SessionReadError(f"{where}: replaced while being opened")
    return fd, st


def read_session(
    candidate: Candidate, max_bytes: int, known: FileStamp | None = None
) -> SessionFile | None:
    """Read ``candidate``'s ``session`` file safely.

    Returns ``None`` when there is nothing to list: the directory vanished, has no
    ``session`` file, or the file is empty (skipped silently, as Checkbox does).
    When the file's stamp equals ``known`` the data is not read (``data`` is ``None``).
    Raises :class:`SessionReadError` (``io-error``) or :class:`SessionTooLargeError`.
    """
    where = candidate.session_path
    try:
        with _session_dir(candidate) as dfd:
            dir_st = os.fstat(dfd)
            try:
                fd, st = _open_regular(SESSION_FILE, dfd, where)
            except FileNotFoundError:
                return None
            try:
                if st.st_size == 0:
                    return None
                if st.st_size > max_bytes:
                    raise SessionTooLargeError(
                        f"{where}: {st.st_size} bytes, larger than max_session_bytes ({max_bytes})"
                    )
                stamp = FileStamp.of(st)
                data = (None if stamp == known
                        else _read_bounded(fd, max_bytes, where, st.st_size + 1))
            finally:
                os.close(fd)
            if data == b"":
                return None
            next_stamp = _stamp_of(NEXT_FILE, dfd)
    except FileNotFoundError:
        return None
    except StorageError:
        raise
    except OSError as error:
        raise SessionReadError(f"{where}: {error.strerror or error}") from error
    return SessionFile(
        candidate=candidate,
        stamp=stamp,
        uid=st.st_uid,
        gid=st.st_gid,
        mode=stat.S_IMODE(st.st_mode),
        dir_uid=dir_st.st_uid,
        dir_ino=dir_st.st_ino,
        next_stamp=next_stamp,
        data=data,
    )


def _stamp_of(name: str, dir_fd: int) -> FileStamp | None:
    try:
        return FileStamp.of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
    except FileNotFoundError:
        return None


def read_share_file(candidate: Candidate, name: str, max_bytes: int) -> bytes | None:
    """Read ``session-share/<name>`` of a session safely; ``None`` when it does not exist.

    Raises :class:`SessionReadError` for links, FIFOs, devices and read errors, and
    :class:`SessionTooLargeError` beyond ``max_bytes``.
    """
    where = candidate.directory / SHARE_DIR / name
    try:
        with _session_dir(candidate) as dfd, _open_dir(SHARE_DIR, dfd) as share_fd:
            fd, _ = _open_regular(name, share_fd, where)
            try:
                return _read_bounded(fd, max_bytes, where)
            finally:
                os.close(fd)
    except FileNotFoundError:
        return None
    except StorageError:
        raise
    except OSError as error:
        raise SessionReadError(f"{where}: {error.strerror or error}") from error


def _no_checkpoint(step: str) -> None:
    """The default checkpoint: nothing happens between steps."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(
    session: SessionFile, data: bytes, checkpoint: Checkpoint = _no_checkpoint
) -> None:
    """Replace ``session``'s file with ``data`` crash-safely (SPEC §3).

    ``session.next`` is created with ``O_EXCL`` (Checkbox's own lock), written,
    fsynced, given the owner, group and mode of the old file, renamed over
    ``session`` and the directory fsynced. ``checkpoint`` is called with
    ``after-write``, ``after-fsync`` and ``after-rename``. Raises
    :class:`SessionLockedError` when ``session.next`` exists, and
    :class:`SessionWriteError` for any other failure; the old file is then intact
    (the rename is refused when ``session`` changed since it was read).
    """
    where = session.candidate.directory
    created = False
    try:
        with _session_dir(session.candidate) as dfd:
            if os.fstat(dfd).st_ino != session.dir_ino:
                raise SessionWriteError(f"{where}: the directory was replaced")
            try:
                fd = os.open(NEXT_FILE, _CREATE_FLAGS, 0o600, dir_fd=dfd)
            except FileExistsError as error:
                raise SessionLockedError(f"{where}/{NEXT_FILE} exists") from error
            created = True
            try:
                _write_all(fd, data)
                checkpoint("after-write")
                os.fsync(fd)
                checkpoint("after-fsync")
                os.fchown(fd, session.uid, session.gid)
                os.fchmod(fd, session.mode)
            finally:
                os.close(fd)
            current = os.stat(SESSION_FILE, dir_fd=dfd, follow_symlinks=False)
            if FileStamp.of(current) != session.stamp:
                raise SessionWriteError(f"{where}/{SESSION_FILE} changed while being settled")
            os.rename(NEXT_FILE, SESSION_FILE, src_dir_fd=dfd, dst_dir_fd=dfd)
            created = False
            checkpoint("after-rename")
            try:
                os.fsync(dfd)
            except OSError as error:
                _log.warning("%s: fsync of the directory failed: %s", where, error)
    except OSError as error:
        raise SessionWriteError(f"{where}: {error.strerror or error}") from error
    finally:
        if created:
            _unlink_next(session.candidate)


def _unlink_next(candidate: Candidate) -> None:
    try:
        with _session_dir(candidate) as dfd:
            os.unlink(NEXT_FILE, dir_fd=dfd)
    except OSError as error:
        _log.warning("%s: cannot remove %s: %s", candidate.directory, NEXT_FILE, error)


def _utc_name(now: float, suffix: str) -> str:
    seconds = int(now)
    micro = int(round((now - seconds) * 1e6)) % 1_000_000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f".{micro:06d}Z{suffix}"


def write_backup(
    state_dir: Path,
    session_id: str,
    data: bytes,
    suffix: str = ".session",
    now: float | None = None,
    keep: int = BACKUPS_KEPT,
) -> Path:
    """Copy ``data`` to ``<state_dir>/backups/<id>/<UTC time><suffix>``, keeping the last ``keep``.

    The copy is written to a hidden ``.<name>.tmp``, fsynced and renamed to its
    final name, then the directory is fsynced: a crash never leaves a partial
    backup under a final name. Temporary files left by an earlier crash are
    removed first. Raises :class:`SessionWriteError` when the backup cannot be written.
    """
    directory = state_dir / "backups" / session_id
    when = time.time() if now is None else now
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _open_dir(directory) as dfd:
            _remove_stale_temporaries(dfd, directory)
            for attempt in range(1000):
                name = _utc_name(when, suffix if attempt == 0 else f"-{attempt}{suffix}")
                if _stamp_of(name, dfd) is not None:
                    continue
                try:
                    fd = os.open(_temporary_name(name), _CREATE_FLAGS, 0o600, dir_fd=dfd)
                    break
                except FileExistsError:
                    continue
            else:
                raise SessionWriteError(f"{directory}: no free backup name")
            try:
                _write_all(fd, data)
                os.fsync(fd)
                os.rename(_temporary_name(name), name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(_temporary_name(name), dir_fd=dfd)
                raise
            finally:
                os.close(fd)
            os.fsync(dfd)
            _prune(dfd, keep)
    except OSError as error:
        raise SessionWriteError(f"backup in {directory}: {error.strerror or error}") from error
    return directory / name


def _temporary_name(name: str) -> str:
    """The hidden name a backup is written under before it is renamed to ``name``."""
    return f".{name}{_TEMPORARY_SUFFIX}"


def _remove_stale_temporaries(dir_fd: int, directory: Path) -> None:
    """Remove the half-written backups a crash left in ``dir_fd`` (written by one worker)."""
    for name in os.listdir(dir_fd):
        if name.startswith(".") and name.endswith(_TEMPORARY_SUFFIX):
            os.unlink(name, dir_fd=dir_fd)
            _log.info("removed a half-written backup %s/%s", directory, name)


def _prune(dir_fd: int, keep: int) -> None:
    """Remove all but the newest ``keep`` backups; hidden (temporary) files do not count."""
    names = sorted(n for n in os.listdir(dir_fd) if not n.startswith("."))
    for name in names[: max(0, len(names) - keep)]:
        os.unlink(name, dir_fd=dir_fd)


def move_leftover_next(candidate: Candidate, state_dir: Path, max_bytes: int) -> Path | None:
    """Move a crashed writer's ``session.next`` to the backups; ``None`` when there is none.

    Only a regular file's content is kept (links, FIFOs and devices are just removed).
    Raises :class:`SessionWriteError` when it cannot be backed up or removed.
    """
    where = candidate.directory / NEXT_FILE
    backup = None
    try:
        with _session_dir(candidate) as dfd:
            try:
                fd, _ = _open_regular(NEXT_FILE, dfd, where)
            except FileNotFoundError:
                return None
            except SessionReadError:
                fd = -1
            if fd >= 0:
                try:
                    data = _read_bounded(fd, max_bytes, where)
                except SessionTooLargeError:
                    _log.warning("%s: too large to back up; removed", where)
                    data = None
                finally:
                    os.close(fd)
                if data is not None:
                    backup = write_backup(state_dir, candidate.session_id, data, ".session.next")
            os.unlink(NEXT_FILE, dir_fd=dfd)
    except OSError as error:
        raise SessionWriteError(f"{where}: {error.strerror or error}") from error
    _log.info("moved leftover %s to %s", where, backup or "nowhere (not a regular file)")
    return backup
