"""io-logs are read only from inside the session directory, never through links."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from resumed.session.errors import BrokenReferenceToExternalFile, CorruptedSessionError
from resumed.session.iolog import io_log_exists, iter_io_log

LINES = [[0.0, "stdout", "aGVsbG8K"], [0.5, "stderr", "b29wcwo="]]


def write_log(path: Path, lines: list[list[object]] = LINES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    return path


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    location = tmp_path / "s1.session"
    write_log(location / "io-logs" / "job.record.gz")
    return location


def test_relative_name_is_read_from_the_session_dir(session_dir: Path) -> None:
    records = iter_io_log(str(session_dir / "io-logs/job.record.gz"), str(session_dir), 10**6)
    assert [(r.stream_name, r.data) for r in records] == [
        ("stdout", b"hello\n"),
        ("stderr", b"oops\n"),
    ]


def test_absolute_path_elsewhere_is_found_under_the_sessions_io_logs(session_dir: Path) -> None:
    moved = "/var/tmp/checkbox-ng/sessions/old.session/io-logs/job.record.gz"
    assert len(list(iter_io_log(moved, str(session_dir), 10**6))) == 2


def test_dot_dot_escape_is_a_broken_reference(session_dir: Path, tmp_path: Path) -> None:
    write_log(tmp_path / "secret.record.gz")
    with pytest.raises(BrokenReferenceToExternalFile, match="outside"):
        list(iter_io_log("../secret.record.gz", str(session_dir), 10**6))


def test_symlinked_io_log_is_not_followed(session_dir: Path, tmp_path: Path) -> None:
    target = write_log(tmp_path / "elsewhere.record.gz")
    os.symlink(target, session_dir / "io-logs" / "link.record.gz")
    assert not io_log_exists(str(session_dir / "io-logs/link.record.gz"), str(session_dir))
    with pytest.raises(BrokenReferenceToExternalFile):
        iter_io_log(str(session_dir / "io-logs/link.record.gz"), str(session_dir), 10**6)


def test_symlinked_io_logs_directory_is_not_followed(tmp_path: Path) -> None:
    location = tmp_path / "s2.session"
    location.mkdir()
    write_log(tmp_path / "real" / "job.record.gz")
    os.symlink(tmp_path / "real", location / "io-logs")
    with pytest.raises(BrokenReferenceToExternalFile):
        list(iter_io_log("io-logs/job.record.gz", str(location), 10**6))


def test_fifo_is_not_opened(session_dir: Path) -> None:
    os.mkfifo(session_dir / "io-logs" / "fifo.record.gz")
    with pytest.raises(BrokenReferenceToExternalFile, match="regular"):
        list(iter_io_log("io-logs/fifo.record.gz", str(session_dir), 10**6))


def test_missing_file_and_missing_location_are_broken_references(session_dir: Path) -> None:
    with pytest.raises(BrokenReferenceToExternalFile):
        list(iter_io_log("io-logs/nope.record.gz", str(session_dir), 10**6))
    with pytest.raises(BrokenReferenceToExternalFile):
        list(iter_io_log("io-logs/job.record.gz", None, 10**6))


def test_io_log_bomb_is_corrupted(session_dir: Path) -> None:
    (session_dir / "io-logs" / "bomb.record.gz").write_bytes(gzip.compress(b"\n" * 2_000_000))
    with pytest.raises(CorruptedSessionError):
        list(iter_io_log("io-logs/bomb.record.gz", str(session_dir), 1_000_000))


def test_garbage_io_log_is_corrupted(session_dir: Path) -> None:
    (session_dir / "io-logs" / "bad.record.gz").write_bytes(gzip.compress(b"[1, 2\n"))
    with pytest.raises(CorruptedSessionError):
        list(iter_io_log("io-logs/bad.record.gz", str(session_dir), 10**6))
