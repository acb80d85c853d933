"""Resource bombs (issue #6, part 2): bounded memory and time, a typed error or a clean skip.

Each bomb runs in a fresh process (``probe.py``) that reports its peak RSS, so
a bomb that did exhaust memory would kill that process, not the test run.
The full-size io-log bomb (10 million records) runs in the long mode
(``RESUMED_LONG=1``, ``make fuzz``); the suite runs a 1-million-record one.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import reliability_support as rs

from resumed.registry import Registry
from resumed.session.envelope import pack_envelope

PROBE = Path(__file__).with_name("probe.py")
GIT = rs.SAMPLES / "checkbox-git-2026-08"
MIB = 1024 * 1024
#: The resource job's io-log in the samples: resume must read it (SPEC §1).
RESOURCE_LOG = "com.example.synth__synth_devices.record.gz"


def probe(mode: str, path: Path, provider_dir: Path, max_bytes: int = 256 * MIB) -> Any:
    """Run ``probe.py`` and return its report."""
    done = subprocess.run([sys.executable, str(PROBE), mode, str(path), str(provider_dir),
                           str(max_bytes)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert not str(report["error"]).startswith("untyped"), report
    rs.count("bombs tried")
    return report


def test_gzip_bomb_session_is_corrupted_within_bounded_memory(
    root: Path, provider_dir: Path
) -> None:
    """A 1.1 MB blob that inflates to 1 GiB: corrupted, and memory stays near the 256 MiB cap."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "bomb")
    (directory / "session").write_bytes(rs.gzip_bomb(1024))
    assert (directory / "session").stat().st_size < 2 * MIB
    for mode in ("peek", "resume"):
        report = probe(mode, directory, provider_dir)
        assert report["error"] == "CorruptedSessionError", report
        assert report["maxrss_kib"] < 700 * 1024, report
        assert report["seconds"] < 30, report
    report = probe("registry", root, provider_dir)
    assert report["discarded"] == {"bomb": "corrupted"}


def test_gzip_bomb_in_the_resource_io_log_is_a_typed_error(
    root: Path, provider_dir: Path
) -> None:
    """An io-log that inflates past the cap: a typed error, bounded memory."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "logbomb")
    (directory / "io-logs" / RESOURCE_LOG).write_bytes(rs.gzip_bomb(1024))
    report = probe("resume", directory, provider_dir)
    assert report["error"] in ("CorruptedSessionError", "BrokenReferenceToExternalFile"), report
    assert report["maxrss_kib"] < 700 * 1024, report


MEMBERS = 200_000 if rs.LONG else 70_000


def test_many_tiny_gzip_members_are_decoded_in_bounded_time(
    root: Path, provider_dir: Path
) -> None:
    """Tens of thousands of empty gzip members (20 bytes each) before the document: fast."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "members")
    blob = (directory / "session").read_bytes()
    (directory / "session").write_bytes(gzip.compress(b"", mtime=0) * MEMBERS + blob)
    report = probe("peek", directory, provider_dir)
    assert report["error"] is None, report
    assert report["seconds"] < 3, report


def test_two_gigabyte_session_file_is_skipped_without_reading_it(
    root: Path, provider_dir: Path, make_registry: Any
) -> None:
    """A 2 GiB (sparse) session file is discarded as corrupted at once; nothing is read."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "huge")
    with (directory / "session").open("r+b") as stream:
        stream.truncate(2 * 1024 * MIB)
    report = probe("registry", root, provider_dir)
    assert report["discarded"] == {"huge": "corrupted"}, report
    assert report["maxrss_kib"] < 200 * 1024, report
    assert report["seconds"] < 10, report


def test_two_gigabyte_io_log_is_a_typed_error(root: Path, provider_dir: Path) -> None:
    """A 2 GiB (sparse) resource io-log: a typed error within bounded memory."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "hugelog")
    with (directory / "io-logs" / RESOURCE_LOG).open("r+b") as stream:
        stream.truncate(2 * 1024 * MIB)
    report = probe("resume", directory, provider_dir)
    assert report["error"] in ("CorruptedSessionError", "BrokenReferenceToExternalFile"), report
    assert report["maxrss_kib"] < 700 * 1024, report


IOLOG_RECORDS = 10_000_000 if rs.LONG else 300_000


def test_resource_io_log_with_millions_of_records_stays_bounded(
    root: Path, provider_dir: Path
) -> None:
    """Millions of io-log records under the byte cap: resumes in bounded time and memory.

    The real resource record comes first and empty lines follow, so every
    record is read and parsed and the session still resumes.
    """
    directory = rs.copy_session(GIT / "small-v11.session", root, "records")
    head = gzip.decompress((directory / "io-logs" / RESOURCE_LOG).read_bytes())
    rs.gzip_stream(rs.io_log_lines(IOLOG_RECORDS, head=head),
                   directory / "io-logs" / RESOURCE_LOG)
    report = probe("resume", directory, provider_dir)
    assert report["error"] is None, report
    rs.count("io-log records in the biggest io-log", IOLOG_RECORDS)
    rs.count("io-log records bomb: peak RSS KiB", report["maxrss_kib"])
    rs.count("io-log records bomb: resume ms", int(report["seconds"] * 1000))
    assert report["maxrss_kib"] < 256 * 1024, report
    assert report["seconds"] < max(10, IOLOG_RECORDS / 25_000), report  # linear


INLINE_RECORDS = 1_000_000 if rs.LONG else 200_000


def test_session_with_huge_inline_io_log_stays_bounded(root: Path, provider_dir: Path) -> None:
    """A memory result holding a huge io_log list inside the blob: bounded time and memory."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "inline")
    doc = rs.sample_doc(directory)
    history = doc["session"]["results"]["com.example.synth::synth/attach-dmesg"]
    history[-1]["io_log"] = [[0.0, "stdout", "YQo="]] * INLINE_RECORDS
    rs.write_doc(directory, doc)
    report = probe("resume", directory, provider_dir)
    rs.count("inline io_log bomb: peak RSS KiB", report["maxrss_kib"])
    rs.count("inline io_log bomb: resume ms", int(report["seconds"] * 1000))
    assert report["maxrss_kib"] < 1024 * 1024, report
    assert report["seconds"] < 60, report


DEEP = 100_000


@pytest.mark.parametrize("where", ["session", "io-log", "result-file"])
def test_json_nested_100000_deep_is_a_typed_error_or_ignored(
    root: Path, provider_dir: Path, where: str
) -> None:
    """JSON nested 100,000 deep in the blob, an io-log or ``__result``: no crash, no hang."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "deep")
    deep = b"[" * DEEP + b"]" * DEEP
    if where == "session":
        with gzip.open(directory / "session", "wb") as out:
            out.write(b'{"version":11,"session":' + deep + b"}")
        os.utime(directory / "session", (rs.OLD_MTIME, rs.OLD_MTIME))
        expected = {"deep": "corrupted"}
    elif where == "io-log":
        with gzip.open(directory / "io-logs" / RESOURCE_LOG, "wb") as out:
            out.write(deep + b"\n")
        expected = {"deep": "corrupted"}
    else:
        (directory / "session-share" / "__result").write_bytes(deep)
        expected = {}
    report = probe("registry", root, provider_dir)
    assert report["discarded"] == expected, report
    if where == "result-file":
        # The unreadable result file is ignored: the noreturn job is settled as passed.
        assert report["listed"] == {"deep": "resumed"}, report


def test_nul_surrogates_and_out_of_range_numbers_are_published_as_spec_5_says(
    root: Path, make_registry: Any
) -> None:
    """Strings with NUL and lone surrogates, NaN, infinities and huge ints are cleaned (SPEC §5)."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "hostile")
    text = json.dumps(rs.sample_doc(directory), ensure_ascii=True)
    replacements = {
        '"title":"synthetic-small (checkbox-ng-git-bda305f)"': '"title":"a\\u0000b\\ud800c"',
        '"app_id":"checkbox-cli"': '"app_id":"x\\udfff\\u0000"',
        '"last_job_start_time":1764300000.25': '"last_job_start_time":NaN',
    }
    text = text.replace(" ", "").replace('":', '":')
    compact = json.dumps(rs.sample_doc(directory), separators=(",", ":"), ensure_ascii=True)
    for old, new in replacements.items():
        assert old in compact, old
        compact = compact.replace(old, new)
    (directory / "session").write_bytes(gzip.compress(compact.encode()))
    os.utime(directory / "session", (rs.OLD_MTIME, rs.OLD_MTIME))
    registry: Registry = make_registry(settle=False)
    rs.drain(registry)
    record = registry.get("hostile")
    assert record is not None, registry.list_discarded()
    assert (record.title, record.app_id, record.last_job_start_time) == (
        "a\ufffdb\ufffdc", "x\ufffd\ufffd", 0.0)
    assert rs.dbus_safe(vars(record))
    rs.count("hostile inputs tried")


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" + "0" * 400, "Infinity"])
def test_out_of_range_start_time_is_published_as_zero(
    root: Path, make_registry: Any, literal: str
) -> None:
    """An out-of-range ``last_job_start_time`` is published as 0.0, never an error reply."""
    directory = rs.copy_session(GIT / "small-v11.session", root, "range")
    compact = json.dumps(rs.sample_doc(directory), separators=(",", ":"))
    compact = compact.replace('"last_job_start_time":1764300000.25',
                              f'"last_job_start_time":{literal}')
    (directory / "session").write_bytes(gzip.compress(compact.encode()))
    registry: Registry = make_registry(settle=False)
    rs.drain(registry)
    listed = {r.id: r for r in registry.list_sessions()}
    discarded = {d.id: d for d in registry.list_discarded()}
    assert "range" in listed or discarded["range"].reason == "corrupted"
    if "range" in listed:
        assert listed["range"].last_job_start_time == 0.0
        assert rs.dbus_safe(vars(listed["range"]))
    rs.count("hostile inputs tried")


def test_pack_envelope_is_the_writer_the_bombs_use() -> None:
    """Sanity: the documents above are written with the project's own envelope."""
    assert gzip.decompress(pack_envelope({"a": 1})) == b'{"a":1}'
