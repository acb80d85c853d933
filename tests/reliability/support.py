"""Helpers shared by the reliability suite (loaded by ``conftest.py`` as ``reliability_support``).

The suite runs with ``--import-mode=importlib``, so test modules cannot import
sibling modules by name; ``conftest.py`` loads this file into ``sys.modules``
under ``reliability_support`` before any test module is imported.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
import struct
import threading
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from resumed.session.envelope import pack_envelope, unpack_envelope

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
UNITS_PXU = SAMPLES / "units" / "synth-small.pxu"
SAMPLE_DIRS = sorted(SAMPLES.glob("*/small-v*.session"))
REBOOT_JOB = "com.example.synth::synth/reboot"
#: 2020-01-02: "last written in a previous boot" (SPEC §3).
OLD_MTIME = 1577880000.0
#: Examples per hypothesis test (``make fuzz`` raises it).
FUZZ_EXAMPLES = int(os.environ.get("RESUMED_FUZZ_EXAMPLES", "200"))
#: The long modes (``make fuzz``): the full-size bombs and churn.
LONG = os.environ.get("RESUMED_LONG", "") == "1"
DISCARD_REASONS = frozenset({
    "corrupted", "incompatible-session", "incompatible-job", "unknown-jobs",
    "broken-reference", "io-error", "duplicate-id",
})

PROVIDER = """[PlainBox Provider]
name = com.example:synth
namespace = com.example.synth
version = 1.0
location = {location}
"""

_counts: collections.Counter[str] = collections.Counter()
_counts_lock = threading.Lock()


def count(what: str, n: int = 1) -> None:
    """Add ``n`` to the figure ``what`` reported at the end of the run (docs/reliability.md)."""
    with _counts_lock:
        _counts[what] += n


def counts() -> dict[str, int]:
    """The figures counted so far."""
    with _counts_lock:
        return dict(_counts)


def write_provider(directory: Path) -> Path:
    """A provider directory with the sample provider (the units the samples were made with)."""
    location = directory / "synth"
    (location / "units").mkdir(parents=True, exist_ok=True)
    shutil.copy(UNITS_PXU, location / "units")
    (directory / "synth.provider").write_text(PROVIDER.format(location=location))
    for path in (directory, location, location / "units", location / "units" / UNITS_PXU.name,
                 directory / "synth.provider"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def sample_blob(path: Path) -> bytes:
    """The ``session`` bytes of a sample session directory."""
    return (path / "session").read_bytes()


def sample_doc(path: Path) -> Any:
    """The JSON document of a sample session directory."""
    return unpack_envelope(sample_blob(path))


def copy_session(sample: Path, root: Path, session_id: str,
                 mtime: float | None = OLD_MTIME, blob: bytes | None = None) -> Path:
    """Copy ``sample`` to ``<root>/<session_id>.session`` (writable), maybe with another blob."""
    target = root / f"{session_id}.session"
    shutil.copytree(sample, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (target / "session-share").mkdir(exist_ok=True)
    if blob is not None:
        (target / "session").write_bytes(blob)
    if mtime is not None:
        os.utime(target / "session", (mtime, mtime))
    return target


def write_doc(directory: Path, doc: Any, mtime: float | None = OLD_MTIME) -> bytes:
    """Write ``doc`` as the session blob of ``directory``; return the bytes."""
    blob = pack_envelope(doc)
    (directory / "session").write_bytes(blob)
    if mtime is not None:
        os.utime(directory / "session", (mtime, mtime))
    return blob


def gzip_stream(chunks: Iterable[bytes], path: Path, level: int = 1) -> None:
    """Gzip ``chunks`` into ``path`` without holding them in memory."""
    with gzip.open(path, "wb", compresslevel=level) as out:
        for chunk in chunks:
            out.write(chunk)


def io_log_lines(records: int, batch: int = 100_000, head: bytes = b"",
                 payload: str = "Cg==") -> Iterator[bytes]:
    r"""``head`` then ``records`` io-log lines ``[delay, "stdout", payload]``, in batches.

    The default payload is an empty line (``"\n"``): it adds no resource record
    but must still be read and parsed.
    """
    line = json.dumps([0.0, "stdout", payload]).encode() + b"\n"
    yield head
    done = 0
    while done < records:
        n = min(batch, records - done)
        yield line * n
        done += n


def dbus_safe(value: object) -> bool:
    """Whether ``value`` can go on the bus as SPEC §5 says (no NUL, no lone surrogate)."""
    if isinstance(value, str):
        return "\x00" not in value and not any(
            unicodedata.category(c) == "Cs" for c in value)
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return all(dbus_safe(k) and dbus_safe(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(dbus_safe(v) for v in value)
    return value is None


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size (VmHWM) of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip member that inflates to ``inflated_mib`` MiB of zeros (about 1/1000 of that).

    Built from one deflate block repeated (each ends with a full flush, so
    copies concatenate); the CRC is wrong, which a bounded reader never reaches.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = compressor.compress(b"\0" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + chunk * inflated_mib + end + struct.pack("<II", 0, 0)
