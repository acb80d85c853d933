"""Discovery, safe reads, crash-safe writes and backups on real files (SPEC §2, §3)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from resumed import storage

MAX = 256 * 1024 * 1024


def candidates(root: Path) -> dict[str, storage.Candidate]:
    found, _ = storage.discover([root])
    return {c.session_id: c for c in found}


def test_sessions_are_found_by_directory_name(add_session: Callable[..., Path], root: Path) -> None:
    add_session("alpha")
    add_session("beta")
    assert sorted(candidates(root)) == ["alpha", "beta"]
    assert candidates(root)["alpha"].directory == root / "alpha.session"


def test_hidden_foreign_and_linked_entries_are_not_sessions(
    add_session: Callable[..., Path], root: Path
) -> None:
    real = add_session("real")
    add_session(".hidden")
    (root / "notes.txt").write_text("x")
    (root / "plain.session").write_text("a file, not a directory")
    (root / "link.session").symlink_to(real)
    assert sorted(candidates(root)) == ["real"]


def test_non_utf8_name_is_skipped_with_a_warning(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkdir(os.fsencode(root) + b"/bad\xff.session")  # noqa: PTH102 - a non-UTF-8 bytes name
    with caplog.at_level(logging.WARNING):
        assert candidates(root) == {}
    assert "non-UTF-8" in caplog.text


def test_same_id_in_two_roots_first_root_wins(
    add_session: Callable[..., Path], root: Path, second_root: Path, tmp_path: Path
) -> None:
    second = second_root
    add_session("same")
    add_session("same", into=second)
    found, duplicates = storage.discover([root, second, tmp_path / "missing"])
    assert [c.directory for c in found] == [root / "same.session"]
    assert [(d.candidate.directory, d.winner.directory) for d in duplicates] == [
        (second / "same.session", root / "same.session")
    ]


def test_missing_session_file_and_empty_file_are_skipped_silently(root: Path) -> None:
    (root / "nofile.session").mkdir()
    (root / "empty.session").mkdir()
    (root / "empty.session" / "session").write_bytes(b"")
    found = candidates(root)
    assert storage.read_session(found["nofile"], MAX) is None
    assert storage.read_session(found["empty"], MAX) is None


def test_vanished_session_is_not_an_error(add_session: Callable[..., Path], root: Path) -> None:
    directory = add_session("gone")
    candidate = candidates(root)["gone"]
    (directory / "session").unlink()
    directory.rename(root / ".trash")
    assert storage.read_session(candidate, MAX) is None


def test_session_file_is_read_with_owner_and_stamp(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("one")
    sfile = storage.read_session(candidates(root)["one"], MAX)
    assert sfile is not None
    assert sfile.data == (directory / "session").read_bytes()
    assert sfile.mtime == pytest.approx(1577836800.0)
    assert sfile.next_stamp is None
    unchanged = storage.read_session(candidates(root)["one"], MAX, known=sfile.stamp)
    assert unchanged is not None
    assert unchanged.data is None


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device", "directory"])
def test_session_that_is_not_a_regular_file_is_an_io_error(root: Path, kind: str) -> None:
    directory = root / "odd.session"
    directory.mkdir()
    target = directory / "session"
    if kind == "symlink":
        (root / "elsewhere").write_bytes(b"data")
        target.symlink_to(root / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    else:
        target.mkdir()
    with pytest.raises(storage.SessionReadError) as caught:
        storage.read_session(candidates(root)["odd"], MAX)
    assert caught.value.reason == "io-error"


def test_session_larger_than_the_limit_is_corrupted(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("big")
    size = (directory / "session").stat().st_size
    with pytest.raises(storage.SessionTooLargeError) as caught:
        storage.read_session(candidates(root)["big"], size - 1)
    assert caught.value.reason == "corrupted"


def test_session_is_trusted_only_when_file_and_directory_are_trusted(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("own")
    candidate = candidates(root)["own"]
    trusted = storage.trusted_uids([])

    def read() -> storage.SessionFile:
        sfile = storage.read_session(candidate, MAX)
        assert sfile is not None
        return sfile

    assert read().trusted(trusted)
    os.chown(directory / "session", 65534, 65534)
    assert not read().trusted(trusted)
    os.chown(directory / "session", 0, 0)
    os.chown(directory, 65534, 65534)
    assert not read().trusted(trusted)
    os.chown(directory / "session", 65534, 65534)
    assert read().trusted(storage.trusted_uids(["nobody", "no-such-user-here"]))


def test_share_file_is_read_but_links_are_refused(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("share")
    candidate = candidates(root)["share"]
    assert storage.read_share_file(candidate, "__result", MAX) is None
    (directory / "session-share" / "__result").write_text('{"outcome": "pass"}')
    assert storage.read_share_file(candidate, "__result", MAX) == b'{"outcome": "pass"}'
    (directory / "session-share" / "__result").unlink()
    (directory / "session-share" / "__result").symlink_to("/etc/passwd")
    with pytest.raises(storage.SessionReadError):
        storage.read_share_file(candidate, "__result", MAX)


def read(root: Path, session_id: str) -> storage.SessionFile:
    sfile = storage.read_session(candidates(root)[session_id], MAX)
    assert sfile is not None
    return sfile


def test_atomic_write_replaces_the_file_keeping_owner_and_mode(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("write")
    os.chown(directory / "session", 65534, 65534)
    (directory / "session").chmod(0o640)
    steps: list[str] = []
    storage.atomic_write(read(root, "write"), b"new bytes", steps.append)
    st = (directory / "session").stat()
    assert (directory / "session").read_bytes() == b"new bytes"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o640)
    assert not (directory / "session.next").exists()
    assert steps == ["after-write", "after-fsync", "after-rename"]


def test_atomic_write_refuses_when_session_next_exists(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("locked")
    old = (directory / "session").read_bytes()
    (directory / "session.next").write_bytes(b"someone else's")
    with pytest.raises(storage.SessionLockedError):
        storage.atomic_write(read(root, "locked"), b"new")
    assert (directory / "session").read_bytes() == old
    assert (directory / "session.next").read_bytes() == b"someone else's"


def test_atomic_write_refuses_when_the_file_changed_since_it_was_read(
    add_session: Callable[..., Path], root: Path
) -> None:
    directory = add_session("raced")
    sfile = read(root, "raced")
    (directory / "session").write_bytes(b"checkbox wrote this")
    with pytest.raises(storage.SessionWriteError):
        storage.atomic_write(sfile, b"ours")
    assert (directory / "session").read_bytes() == b"checkbox wrote this"
    assert not (directory / "session.next").exists()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {result.stderr.decode()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_write_on_a_full_disk_fails_and_keeps_the_old_file(tiny_tmpfs: Path) -> None:
    directory = tiny_tmpfs / "full.session"
    directory.mkdir()
    (directory / "session").write_bytes(b"old")
    sfile = read(tiny_tmpfs, "full")
    with pytest.raises(storage.SessionWriteError, match="No space"):
        storage.atomic_write(sfile, os.urandom(200 * 1024))
    assert (directory / "session").read_bytes() == b"old"
    assert not (directory / "session.next").exists()


def test_write_on_a_read_only_filesystem_fails_and_keeps_the_old_file(tiny_tmpfs: Path) -> None:
    directory = tiny_tmpfs / "ro.session"
    directory.mkdir()
    (directory / "session").write_bytes(b"old")
    sfile = read(tiny_tmpfs, "ro")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(storage.SessionWriteError, match="Read-only"):
        storage.atomic_write(sfile, b"new")
    assert (directory / "session").read_bytes() == b"old"


def test_backups_keep_the_last_five(tmp_path: Path) -> None:
    paths = [
        storage.write_backup(tmp_path, "sid", f"v{i}".encode(), now=1700000000.0 + i)
        for i in range(7)
    ]
    kept = sorted((tmp_path / "backups" / "sid").iterdir())
    assert kept == paths[2:]
    assert kept[0].name == "20231114T221322.000000Z.session"
    assert kept[-1].read_bytes() == b"v6"


def test_same_time_backups_do_not_overwrite_each_other(tmp_path: Path) -> None:
    first = storage.write_backup(tmp_path, "sid", b"one", now=1700000000.0)
    second = storage.write_backup(tmp_path, "sid", b"two", now=1700000000.0)
    assert first != second
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two")


def test_leftover_session_next_is_moved_to_the_backups(
    add_session: Callable[..., Path], root: Path, tmp_path: Path
) -> None:
    directory = add_session("left")
    (directory / "session.next").write_bytes(b"half written")
    backup = storage.move_leftover_next(candidates(root)["left"], tmp_path / "state", MAX)
    assert backup is not None
    assert backup.read_bytes() == b"half written"
    assert backup.name.endswith(".session.next")
    assert not (directory / "session.next").exists()
    assert storage.move_leftover_next(candidates(root)["left"], tmp_path / "state", MAX) is None


def test_leftover_session_next_link_is_removed_not_followed(
    add_session: Callable[..., Path], root: Path, tmp_path: Path
) -> None:
    directory = add_session("leftlink")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (directory / "session.next").symlink_to(victim)
    assert storage.move_leftover_next(candidates(root)["leftlink"], tmp_path / "state", MAX) is None
    assert not (directory / "session.next").is_symlink()
    assert victim.read_bytes() == b"keep me"
