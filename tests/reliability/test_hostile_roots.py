"""Hostile session roots (issue #6, part 4): links, FIFOs, devices, other owners, odd names, races.

The roots are world-writable in real life and the daemon runs as root, so
nothing here may be followed, opened when not a regular file, blocked on, or
written into unless SPEC §2 trusts it. Every test runs the registry as the
daemon's worker does (scan, then resume and settle what is pending) on a
real root.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import reliability_support as rs

from resumed import settle
from resumed.registry import Registry
from resumed.session.envelope import unpack_envelope

GIT = rs.SAMPLES / "checkbox-git-2026-08"
V11 = GIT / "small-v11.session"
NOBODY = 65534
RESOURCE_LOG = "com.example.synth__synth_devices.record.gz"


def drained(make_registry: Callable[..., Registry], timeout: float = 30.0,
            **config: Any) -> Registry:
    """A registry that scanned and resumed everything, failing (not hanging) past ``timeout``."""
    registry = make_registry(**config)
    worker = threading.Thread(target=rs.drain, args=(registry,), daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the scan blocked (a FIFO or a device was opened?)"
    rs.count("hostile inputs tried")
    return registry


def snapshot(path: Path) -> dict[str, bytes | str]:
    """Every entry under ``path`` with its content (files) or kind."""
    result: dict[str, bytes | str] = {}
    for entry in sorted(path.rglob("*")):
        if entry.is_symlink():
            result[str(entry)] = "link"
        elif entry.is_file():
            result[str(entry)] = entry.read_bytes()
        else:
            result[str(entry)] = "dir"
    return result


def settled(directory: Path) -> bool:
    """Whether the interrupted job of a copied sample was settled in ``directory``."""
    doc = unpack_envelope((directory / "session").read_bytes())
    return rs.REBOOT_JOB in doc["session"]["results"]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A settle-able root-owned session outside every root (what a link points at)."""
    place = tmp_path / "outside"
    place.mkdir()
    return rs.copy_session(V11, place, "victim")


def test_session_directory_symlink_is_never_followed(
    root: Path, outside: Path, make_registry: Any
) -> None:
    """``<id>.session`` linking to a settle-able session elsewhere: skipped, target untouched."""
    before = snapshot(outside)
    (root / "link.session").symlink_to(outside)
    (root / "etc.session").symlink_to("/etc")
    registry = drained(make_registry)
    assert registry.list_sessions() == []
    assert registry.list_discarded() == []
    assert snapshot(outside) == before


@pytest.mark.parametrize("target", ["/etc/shadow", "outside"])
def test_session_file_symlink_is_an_io_error_and_the_target_is_untouched(
    root: Path, outside: Path, make_registry: Any, target: str
) -> None:
    """``session`` linking to /etc/shadow or a valid session: discarded ``io-error``."""
    directory = rs.copy_session(V11, root, "s")
    (directory / "session").unlink()
    link_to = Path(target) if target.startswith("/") else outside / "session"
    (directory / "session").symlink_to(link_to)
    before = link_to.read_bytes()
    registry = drained(make_registry)
    assert [(d.id, d.reason) for d in registry.list_discarded()] == [("s", "io-error")]
    assert link_to.read_bytes() == before
    assert (directory / "session").is_symlink()
    assert not (registry._config.state_dir / "backups").exists()


@pytest.mark.parametrize("what", ["io-logs dir", "io-log file"])
def test_io_log_links_are_not_followed(
    root: Path, outside: Path, make_registry: Any, what: str
) -> None:
    """An ``io-logs`` directory or resource io-log that is a link: ``broken-reference``."""
    directory = rs.copy_session(V11, root, "s")
    if what == "io-logs dir":
        shutil.rmtree(directory / "io-logs")
        (directory / "io-logs").symlink_to(outside / "io-logs")
    else:
        (directory / "io-logs" / RESOURCE_LOG).unlink()
        (directory / "io-logs" / RESOURCE_LOG).symlink_to(outside / "io-logs" / RESOURCE_LOG)
    registry = drained(make_registry)
    assert [(d.id, d.reason) for d in registry.list_discarded()] == [("s", "broken-reference")]


@pytest.mark.parametrize("what", ["share dir", "result file"])
def test_result_file_links_are_ignored(
    root: Path, tmp_path: Path, make_registry: Any, what: str
) -> None:
    """``session-share`` or ``__result`` as a link: ignored, the job settles by the default rule."""
    directory = rs.copy_session(V11, root, "s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "__result").write_text('{"outcome": "fail", "comments": "from a link"}')
    if what == "share dir":
        (directory / "session-share").rmdir()
        (directory / "session-share").symlink_to(elsewhere)
    else:
        (directory / "session-share" / "__result").symlink_to(elsewhere / "__result")
    registry = drained(make_registry)
    record = registry.get("s")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"


def test_hard_linked_session_file_is_replaced_not_written_through(
    root: Path, outside: Path, make_registry: Any
) -> None:
    """Settling a hard-linked ``session`` replaces the name; the other link keeps its bytes."""
    directory = rs.copy_session(V11, root, "s")
    (directory / "session").unlink()
    os.link(outside / "session", directory / "session")
    before = (outside / "session").read_bytes()
    registry = drained(make_registry)
    record = registry.get("s")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"
    assert (outside / "session").read_bytes() == before
    assert settled(directory)
    assert not settled(outside)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless bytes


@pytest.mark.parametrize("make_node", [_fifo, _device], ids=["fifo", "char-device"])
@pytest.mark.parametrize("where", ["session", "io-log", "__result", "session.next"])
def test_fifos_and_devices_are_never_opened_or_blocked_on(
    root: Path, make_registry: Any, make_node: Callable[[Path], None], where: str
) -> None:
    """A FIFO or /dev/zero-like node anywhere in a session: a clean error, never a hang."""
    directory = rs.copy_session(V11, root, "s")
    target = {
        "session": directory / "session",
        "io-log": directory / "io-logs" / RESOURCE_LOG,
        "__result": directory / "session-share" / "__result",
        "session.next": directory / "session.next",
    }[where]
    target.unlink(missing_ok=True)
    make_node(target)
    os.utime(target, (rs.OLD_MTIME, rs.OLD_MTIME))  # a leftover of an earlier boot
    registry = drained(make_registry, timeout=20)
    listed = {r.id: r for r in registry.list_sessions()}
    discarded = {d.id: d.reason for d in registry.list_discarded()}
    if where == "session":
        assert discarded == {"s": "io-error"}
    elif where == "io-log":
        assert discarded == {"s": "broken-reference"}
    else:
        assert listed["s"].state == "resumed"
    if where == "session.next":
        # A non-regular leftover in a session from an earlier boot is removed, not read.
        assert listed["s"].interrupted_job_outcome == "pass"
        assert not os.path.lexists(target)


@pytest.mark.parametrize("owner", ["file", "directory"])
def test_session_owned_by_another_user_is_resumed_but_never_written(
    root: Path, make_registry: Any, owner: str
) -> None:
    """A session (file or directory) owned by another user: listed, never settled."""
    directory = rs.copy_session(V11, root, "s")
    os.chown(directory / "session" if owner == "file" else directory, NOBODY, NOBODY)
    before = snapshot(directory)
    registry = drained(make_registry)
    record = registry.get("s")
    assert record is not None
    assert record.state == "resumed"
    assert record.interrupted_job_outcome == ""
    assert snapshot(directory) == before


def test_trusted_owner_session_is_settled_and_keeps_its_owner(
    root: Path, make_registry: Any
) -> None:
    """A ``trusted_owners`` user's session is settled; the new file keeps owner and mode."""
    directory = rs.copy_session(V11, root, "s")
    os.chown(directory, NOBODY, NOBODY)
    os.chown(directory / "session", NOBODY, NOBODY)
    (directory / "session").chmod(0o640)
    os.utime(directory / "session", (rs.OLD_MTIME, rs.OLD_MTIME))
    registry = drained(make_registry, trusted_owners=("nobody",))
    record = registry.get("s")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"
    st = (directory / "session").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o640)


ODD_NAMES = ["a..b", "line\nbreak", "tab\there", "sp ace", "ü-ñ-✓", "x" * 240, "-dash",
             "back\\slash", "quote\"'", "$(reboot)", "%s%n", "a;b|c&d"]


def test_odd_session_ids_are_listed_safely_and_non_utf8_names_skipped(
    root: Path, make_registry: Any
) -> None:
    """Ids with ``..``, newlines, shell characters or odd Unicode are listed; non-UTF-8 skipped."""
    for name in ODD_NAMES:
        rs.copy_session(V11, root, name, mtime=None)
    raw = os.fsencode(root) + b"/bad\xff\xfe.session"
    shutil.copytree(V11, os.fsdecode(raw))
    registry = drained(make_registry, settle=False)
    listed = {r.id for r in registry.list_sessions()}
    assert listed == set(ODD_NAMES)
    assert registry.list_discarded() == []
    assert all(rs.dbus_safe(vars(r)) for r in registry.list_sessions())
    rs.count("hostile inputs tried", len(ODD_NAMES))


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two directory entries (renameat2 RENAME_EXCHANGE)."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                       _RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(a))


@pytest.mark.parametrize("swapped", ["session directory", "session file"])
def test_entries_swapped_for_links_during_settles_are_never_followed(
    root: Path, outside: Path, tmp_path: Path, make_registry: Any, swapped: str
) -> None:
    """A racer swaps the session dir (or file) with a link to a victim while the daemon settles.

    Each round is a fresh settle-able session. Whatever the timing, the victim
    is never written, never backed up and never listed.
    """
    victim_doc = unpack_envelope((outside / "session").read_bytes())
    victim_doc["session"]["metadata"]["title"] = "VICTIM"
    rs.write_doc(outside, victim_doc)
    before = snapshot(outside.parent)
    stop = threading.Event()
    pair: list[tuple[Path, Path]] = []
    swaps = 0

    def racer() -> None:
        nonlocal swaps
        while not stop.is_set():
            if pair:
                with contextlib.suppress(FileNotFoundError):
                    exchange(*pair[-1])
                    swaps += 1
            time.sleep(0.0002)

    thread = threading.Thread(target=racer, daemon=True)
    thread.start()
    rounds = settles = 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            directory = rs.copy_session(V11, root, f"race{rounds}")
            if swapped == "session directory":
                real, link = directory, root / f"race{rounds}.link"
                link.symlink_to(outside)
            else:
                real, link = directory / "session", directory / "session.link"
                link.symlink_to(outside / "session")
            pair.append((real, link))
            registry = make_registry(state_dir=tmp_path / f"state-{rounds}")
            rs.drain(registry)
            assert all(r.title != "VICTIM" for r in registry.list_sessions())
            settles += sum(1 for r in registry.list_sessions() if r.interrupted_job_outcome)
            pair.append((tmp_path / "none-a", tmp_path / "none-b"))
            time.sleep(0.001)
            for name in (real, link) if swapped == "session directory" else (directory,):
                if name.is_symlink():
                    name.unlink()
                elif name.exists():
                    shutil.rmtree(name)
            rounds += 1
    finally:
        stop.set()
        thread.join()
    assert snapshot(outside.parent) == before
    for backup in tmp_path.glob("state-*/backups/*/*"):
        assert b"VICTIM" not in gzip.decompress(backup.read_bytes())
    assert rounds > 5
    assert swaps > 100
    # A swapped file changes its stamp, so those settles are refused and retried later.
    assert settles > 0 or swapped == "session file"
    rs.count("hostile inputs tried")
    rs.count("race rounds (settle attempts under a swapping racer)", rounds)
    rs.count("race: settles completed during the race", settles)


def test_kill_seam_names_every_documented_step() -> None:
    """The crash seam's steps are the ones settle.py documents (used by the crash tests)."""
    assert settle.KILL_STEPS == ("before-backup", "after-backup", "after-write",
                                 "after-fsync", "after-rename", "before-record")
