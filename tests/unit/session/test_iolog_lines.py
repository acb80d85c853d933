"""An io-log reads as one JSON record per line, however its lines fall in the gzip stream."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from resumed.session.errors import CorruptedSessionError
from resumed.session.formats import read_record
from resumed.session.iolog import iter_io_log
from resumed.session.model import IOLogRecord

BIG = base64.b64encode(bytes(range(256)) * 800).decode()  # one line of about 270 KB


def lines_text() -> bytes:
    parts = [json.dumps([0.0, "stdout", "aGVsbG8K"]), "", "   ",
             json.dumps([0.25, "stderr", BIG]) + "\r",
             '[1, "stdout", "b29wcwo="]',  # int delay: not the usual shape
             json.dumps([1.5, "stdout", "eA=="])]
    return ("\n".join(parts)).encode()  # no newline after the last line


def write(location: Path, data: bytes) -> str:
    path = location / "io-logs" / "job.record.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def expected() -> list[IOLogRecord]:
    return [read_record(json.loads(line)) for line in lines_text().split(b"\n") if line.strip()]


def test_long_blank_crlf_and_unterminated_lines_read_as_line_by_line(tmp_path: Path) -> None:
    name = write(tmp_path, gzip.compress(lines_text()))
    records = list(iter_io_log(name, str(tmp_path), 1 << 24))
    assert records == expected()
    assert [len(r.data) for r in records] == [6, 204800, 5, 1]
    assert all(type(r) is IOLogRecord for r in records)


def test_truncated_io_log_gives_the_complete_lines_before_the_error(tmp_path: Path) -> None:
    data = gzip.compress(lines_text() + b"\n" + lines_text())
    name = write(tmp_path, data[: len(data) * 3 // 4])
    got: list[IOLogRecord] = []
    with pytest.raises(CorruptedSessionError):
        got.extend(iter_io_log(name, str(tmp_path), 1 << 24))
    assert got == (expected() * 2)[: len(got)]


def test_bad_record_after_good_ones_fails_after_yielding_them(tmp_path: Path) -> None:
    text = lines_text() + b'\n[-1.0, "stdout", "eA=="]\n' + lines_text()
    name = write(tmp_path, gzip.compress(text))
    got: list[IOLogRecord] = []
    with pytest.raises(CorruptedSessionError, match="negative"):
        got.extend(iter_io_log(name, str(tmp_path), 1 << 24))
    assert got == expected()
