"""An io-log gives what parsing it line by line gives, whatever its lines look like.

Lines of the usual shape are parsed many at a time; these tests mix them with
lines that must not be (odd tokens, quotes, brackets, records split over lines,
other spacing) and check the records, the error and its place against a plain
line-by-line read.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumed.session.errors import CorruptedSessionError
from resumed.session.formats import read_record
from resumed.session.iolog import iter_io_log
from resumed.session.model import IOLogRecord

NAME = "io-logs/job.record.gz"

USUAL_LINE = st.builds(
    lambda delay, stream, data: json.dumps([delay, stream, data]).encode(),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(["stdout", "stderr"]),
    st.sampled_from(["", "eA==", "aGVsbG8K", "YWJj", "AAEC/+8="]),
)
ODD_LINES = (
    b'[0.0,"stdout","eA=="]', b'  [0.5, "stdout", "eA=="]  ', b'[1, "stdout", "eA=="]',
    b'[true, "stdout", "eA=="]', b'[NaN, "stdout", "eA=="]', b'[-1.0, "stdout", "eA=="]',
    b'[1e999, "stdout", "eA=="]', b'[1abc, "stdout", "eA=="]', b'[null, "stdout", "eA=="]',
    b'[0.0, "stdin", "eA=="]', b'[0.0, "stdout", "e A=="]', b'[0.0, "stdout", "e\\u0041=="]',
    b'[0.0, "stdout", "eA=", "x"]', b'[0.0, "stdout"]', b'[0.0, "stdout", "eA=="], 1',
    b'[0.0, "stdout", "eA=="], [1.0, "stderr", ""]',
    b'[0.0, "stdout", "eA=="]\r', b'[0.0, "stdout", 5]', b'[0.0, "stdout", "!!"]',
    b'[0.0, "stdout", "[eA==]"]', b'[[0.0], "stdout", "eA=="]', b'{"a": 1}', b"garbage",
    b'[0.0, "stdout",', b'[0.0, "stdout"', b'"eA=="]', b'[0.0, "std', b'out", "eA=="]',
    b'[0.0, "stdout", "\xff"]',
    b'[0.0, "stdout", "eA=="', b'0.0, "stdout", "eA=="]', b"[, \"\", \"\"]", b"   ", b"",
)


@st.composite
def io_log_texts(draw: st.DrawFn) -> bytes:
    """Usual lines with up to three odd ones among them."""
    lines = draw(st.lists(USUAL_LINE, max_size=12))
    for odd in draw(st.lists(st.sampled_from(ODD_LINES), max_size=3)):
        lines.insert(draw(st.integers(0, len(lines))), odd)
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))


def line_by_line(text: bytes) -> tuple[list[IOLogRecord], str | None]:
    """The records of each line in turn, then the error that stops the read."""
    records = []
    for line in text.split(b"\n"):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            return records, f"Cannot interpret io-log {NAME!r}"
        try:
            records.append(read_record(raw))
        except CorruptedSessionError as exc:
            return records, str(exc)
    return records, None


def read(location: Path, text: bytes) -> tuple[list[IOLogRecord], str | None]:
    """What `iter_io_log` yields for `text` written as the io-log, then its error."""
    path = location / NAME
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(gzip.compress(text))
    records: list[IOLogRecord] = []
    try:
        records.extend(iter_io_log(NAME, str(location), 1 << 24))
    except CorruptedSessionError as exc:
        return records, str(exc)
    return records, None


@given(io_log_texts())
def test_any_io_log_reads_as_line_by_line(text: bytes) -> None:
    """Same records, same error message, after the same records."""
    with tempfile.TemporaryDirectory() as location:
        assert read(Path(location), text) == line_by_line(text)


@pytest.mark.parametrize("odd", ODD_LINES)
def test_each_odd_line_among_usual_ones_reads_as_line_by_line(
    odd: bytes, tmp_path: Path
) -> None:
    usual = json.dumps([0.25, "stdout", "aGVsbG8K"]).encode()
    for lines in ([odd], [usual, odd], [odd, usual], [usual, odd, usual, odd, usual]):
        text = b"\n".join(lines) + b"\n"
        assert read(tmp_path, text) == line_by_line(text)


def test_json_dumps_lines_read_as_their_records(tmp_path: Path) -> None:
    lines = [
        [0.0, "stdout", "bmFtZTogZGV2MDAwMDAK"], [1e-05, "stderr", ""], [2.5, "stdout", "Cg=="],
    ]
    text = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    assert read(tmp_path, text) == (
        [IOLogRecord(0.0, "stdout", b"name: dev00000\n"), IOLogRecord(1e-05, "stderr", b""),
         IOLogRecord(2.5, "stdout", b"\n")],
        None,
    )


def test_record_split_over_lines_is_an_error_even_when_the_count_adds_up(tmp_path: Path) -> None:
    """Joined, these three lines hold three records; line by line the first is bad."""
    text = b'[0.0, "stdout"\n"eA=="]\n[0.5, "stdout", "eA=="], [1.0, "stderr", ""]\n'
    assert read(tmp_path, text) == ([], f"Cannot interpret io-log {NAME!r}")


def test_io_log_file_of_exactly_the_limit_reads_and_one_byte_more_is_corrupted(
    tmp_path: Path,
) -> None:
    """The limit applies to the file's bytes, however many reads they take (here 100 KB)."""
    text = json.dumps([0.5, "stdout", "eA=="]).encode() + b"\n"
    data = gzip.compress(text) + gzip.compress(b"") * 5000  # empty gzip members
    (tmp_path / "io-logs").mkdir()
    (tmp_path / NAME).write_bytes(data)
    assert list(iter_io_log(NAME, str(tmp_path), len(data))) == [IOLogRecord(0.5, "stdout", b"x")]
    with pytest.raises(CorruptedSessionError, match=f"is larger than {len(data) - 1} bytes"):
        iter_io_log(NAME, str(tmp_path), len(data) - 1)
