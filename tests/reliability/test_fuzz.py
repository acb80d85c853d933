"""Structure-aware fuzzing of peek, resume and the daemon's scan (issue #6, part 1).

Valid sample sessions (every format version, two Checkbox writers) are mutated
at the JSON level (wrong types, missing keys, huge numbers, deep nesting,
unknown versions, broken references) and at the byte level (the JSON text and
the gzip stream). Whatever comes out, peek and resume raise nothing but a
typed ``SessionResumeError``, and a registry scan publishes the session or
discards it with a valid reason, leaves a discarded session's file untouched
and publishes only D-Bus-safe values. ``RESUMED_FUZZ_EXAMPLES`` scales every
test (``make fuzz``).
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import reliability_support as rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumed.registry import Registry
from resumed.session.errors import SessionResumeError
from resumed.session.model import SessionMetaData
from resumed.session.peek import SessionPeekHelper, quick_peek
from resumed.session.resume import SessionResumeHelper

FUZZ = settings(
    max_examples=rs.FUZZ_EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
SAMPLES = [(path, rs.sample_blob(path), rs.sample_doc(path)) for path in rs.SAMPLE_DIRS]
LIMIT = 1 << 22
#: A placeholder string replaced in the JSON text by a raw literal (deep nesting, huge numbers).
HOLE = "\u2063HOLE\u2063"

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["", "\x00", "\ud800", "\udfff", "..", "\n"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)
huge_literals = st.sampled_from([
    "1" + "0" * 5000, "-" + "9" * 400, "1e400", "-1e400", "1e-400", "18446744073709551616",
    "-9223372036854775809", "4294967296", "9007199254740993.5", "-0.0", "NaN", "Infinity",
    "-Infinity", "0.0000000000000000000000000001",
])
bad_refs = st.sampled_from([
    "../../../../etc/shadow", "/etc/shadow", "/dev/zero", "/proc/self/mem", "io-logs/../../x",
    "", ".", "..", "io-logs", "\x00", "com.example.synth::synth/nope", "nope", "::", "a" * 300,
    "/var/tmp/checkbox-ng/sessions/x.session/io-logs/com.example.synth__synth_devices.record.gz",
])


def node_paths(doc: Any, limit: int = 4000) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys and indexes) into ``doc``, breadth first."""
    paths: list[tuple[Any, ...]] = [()]
    queue: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    while queue and len(paths) < limit:
        path, node = queue.pop(0)
        children = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, child in children:
            paths.append((*path, key))
            queue.append(((*path, key), child))
    return paths


def get_at(doc: Any, path: tuple[Any, ...]) -> Any:
    """The node at ``path``."""
    for key in path:
        doc = doc[key]
    return doc


def set_at(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``doc`` with the node at ``path`` replaced (the root itself when ``path`` is empty)."""
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value
    return doc


def delete_at(doc: Any, path: tuple[Any, ...]) -> Any:
    """``doc`` without the node at ``path``."""
    if path:
        del get_at(doc, path[:-1])[path[-1]]
    return doc


@st.composite
def json_mutations(draw: st.DrawFn, doc: Any) -> tuple[Any, list[str]]:
    """Apply 1-4 structure-aware mutations to a copy of ``doc``; return it and the raw holes."""
    doc = copy.deepcopy(doc)
    holes: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        paths = node_paths(doc)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        kind = draw(st.sampled_from(
            ["type", "delete", "huge", "nest", "version", "ref", "ref", "duplicate"]))
        if kind == "type":
            doc = set_at(doc, path, draw(json_values))
        elif kind == "delete":
            doc = delete_at(doc, path)
        elif kind in ("huge", "nest") and len(holes) < 3:
            if kind == "huge":
                raw = draw(huge_literals)
            else:
                depth = draw(st.sampled_from([2, 50, 900, 1000, 3000, 100_000]))
                opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
                raw = opener * depth + json.dumps(get_at(doc, path)) + closer * depth
            doc = set_at(doc, path, f"{HOLE}{len(holes)}")
            holes.append(raw)
        elif kind == "version" and isinstance(doc, dict):
            doc["version"] = draw(st.sampled_from([0, 12, 99, -1, 2**64, "11", 11.0, None,
                                                   True, [11]]) | st.integers())
        elif kind == "ref":
            doc = _break_reference(draw, doc)
        elif kind == "duplicate" and isinstance(doc, dict):
            target = paths[draw(st.integers(0, len(paths) - 1))]
            doc = set_at(doc, path, copy.deepcopy(get_at(doc, target)) if target[:len(path)]
                         != path else None)
    return doc, holes


def _break_reference(draw: st.DrawFn, doc: Any) -> Any:
    """Point one of the session's references somewhere it should not go."""
    session = doc.get("session") if isinstance(doc, dict) else None
    if not isinstance(session, dict):
        return doc
    bad = draw(bad_refs)
    where = draw(st.sampled_from(["running", "desired", "mandatory", "rejected", "results-key",
                                  "io-log", "checksum", "app-blob"]))
    metadata = session.get("metadata")
    if where == "running" and isinstance(metadata, dict):
        metadata["running_job_name"] = bad
    elif where in ("desired", "mandatory") and isinstance(session.get(f"{where}_job_list"), list):
        session[f"{where}_job_list"].append(bad)
    elif where == "rejected" and isinstance(metadata, dict):
        metadata["rejected_jobs"] = [bad]
    elif where == "results-key" and isinstance(session.get("results"), dict):
        results = session["results"]
        if results:
            results[bad] = results.pop(sorted(results)[0])
    elif where == "io-log" and isinstance(session.get("results"), dict):
        for history in session["results"].values():
            for result in history if isinstance(history, list) else ():
                if isinstance(result, dict) and "io_log_filename" in result:
                    result["io_log_filename"] = bad
    elif where == "checksum" and isinstance(session.get("jobs"), dict) and session["jobs"]:
        session["jobs"][sorted(session["jobs"])[0]] = bad
    elif where == "app-blob" and isinstance(metadata, dict):
        metadata["app_blob"] = draw(st.sampled_from(["!!!", "=", "YQ", "\x00", 5, [], "4pyT" * 3]))
    return doc


def encode(doc: Any, holes: list[str]) -> bytes:
    """The JSON text of ``doc`` with the holes filled in (not yet gzipped)."""
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=True)
    for index, raw in enumerate(holes):
        text = text.replace(json.dumps(f"{HOLE}{index}", ensure_ascii=False), raw, 1)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def mutated_blobs(draw: st.DrawFn) -> tuple[Path, bytes]:
    """A sample session mutated at the JSON level and maybe also at the byte level."""
    location, blob, doc = SAMPLES[draw(st.integers(0, len(SAMPLES) - 1))]
    level = draw(st.sampled_from(["json", "json", "text", "gzip", "json+text"]))
    text = json.dumps(doc).encode()
    if "json" in level:
        text = encode(*draw(json_mutations(doc)))
    if "text" in level:
        text = draw(text_mutations(text))
    data = gzip.compress(text, compresslevel=1)
    if level == "gzip":
        data = draw(gzip_mutations(blob))
    return location, data


@st.composite
def text_mutations(draw: st.DrawFn, text: bytes) -> bytes:
    """Byte-level damage to the JSON text."""
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(
                [b"\x00", b"\\u0000", b"\\ud800", b"\xff\xfe", b"\xed\xa0\x80", b"[", b"}",
                 b'"', b"\\", b",", b"NaN", b"1e999"]) | st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def gzip_mutations(draw: st.DrawFn, blob: bytes) -> bytes:
    """Damage to the gzip stream itself."""
    data = bytearray(blob)
    kind = draw(st.sampled_from(["flip", "truncate", "append", "concat", "magic", "crc"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)):]
    elif kind == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif kind == "concat":
        data += draw(st.sampled_from([bytes(blob), gzip.compress(b"{}"), gzip.compress(b"")]))
    elif kind == "magic":
        data[:2] = draw(st.binary(min_size=2, max_size=2))
    else:
        data[-8:-4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


def peek_and_resume(units: list[Any], location: Path, data: bytes) -> None:
    """Peek and resume ``data``: success, or only a typed error with a valid reason.

    The start-up quick peek never raises, and where the full peek succeeds it
    gives the same metadata or none.
    """
    quick = quick_peek(data, LIMIT)
    for action in (
        lambda: SessionPeekHelper(max_session_bytes=LIMIT).peek(data),
        lambda: SessionResumeHelper(units, None, str(location), LIMIT).resume(data),
    ):
        error = None
        try:
            result = action()
        except SessionResumeError as raised:
            error = raised
        else:
            if isinstance(result, SessionMetaData):
                assert quick is None or repr(quick) == repr(result)
                rs.count(f"fuzz quick peek: {'abstained' if quick is None else 'agreed'}")
        if error is not None:
            assert error.reason in rs.DISCARD_REASONS
            assert isinstance(error.message, str)
            rs.count(f"fuzz peek/resume error: {type(error).__name__}")
    rs.count("fuzz cases: peek + resume")


@FUZZ
@given(case=mutated_blobs())
def test_fuzz_mutated_sessions_peek_and_resume_with_typed_errors_only(
    providers: Any, case: tuple[Path, bytes]
) -> None:
    """Any structure-aware mutation of a real session: peek/resume raise only typed errors."""
    peek_and_resume(providers.units, *case)


@FUZZ
@given(data=st.binary(max_size=4096) | st.builds(gzip.compress, st.binary(max_size=4096)))
def test_fuzz_random_bytes_peek_and_resume_with_typed_errors_only(
    providers: Any, data: bytes
) -> None:
    """Random bytes, raw or gzipped: peek and resume raise only typed errors."""
    peek_and_resume(providers.units, rs.SAMPLE_DIRS[0], data)


_ids = itertools.count()
#: A scan case writes a session and runs a registry (about 15x a peek+resume case);
#: a damaged-units case writes and loads a provider first. Both run a tenth as often.
SCAN_FUZZ = settings(FUZZ, max_examples=max(200, rs.FUZZ_EXAMPLES // 10))


@SCAN_FUZZ
@given(case=mutated_blobs())
def test_fuzz_scan_publishes_or_discards_and_never_damages_a_session(
    make_registry: Any, root: Path, case: tuple[Path, bytes]
) -> None:
    """The daemon's scan and resume of a mutated session: listed or discarded, file intact."""
    sample, data = case
    session_id = f"fuzz-{next(_ids)}"
    directory = rs.copy_session(sample, root, session_id, blob=data)
    try:
        check_scan(make_registry(max_session_bytes=LIMIT), directory, session_id, data)
    finally:
        shutil.rmtree(directory)
    rs.count("fuzz cases: daemon scan + resume")


def check_scan(registry: Registry, directory: Path, session_id: str, data: bytes) -> None:
    """Drain ``registry`` and check what it made of the session in ``directory``."""
    rs.drain(registry)
    listed = {r.id: r for r in registry.list_sessions()}
    discarded = {d.id: d for d in registry.list_discarded()}
    if data == b"":
        # An empty session file is skipped silently, as Checkbox does (SPEC §2).
        assert session_id not in listed
        assert session_id not in discarded
        return
    assert (session_id in listed) != (session_id in discarded)
    if session_id in discarded:
        record = discarded[session_id]
        assert record.reason in rs.DISCARD_REASONS
        assert not record.message.startswith("internal error"), record.message
        assert (directory / "session").read_bytes() == data
        assert rs.dbus_safe(vars(record))
        rs.count(f"fuzz scan outcome: discarded {record.reason}")
    else:
        listed_record = listed[session_id]
        assert listed_record.state in ("resumed", "complete")
        assert rs.dbus_safe(vars(listed_record))
        rs.count(f"fuzz scan outcome: {listed_record.state}")
        if (directory / "session").read_bytes() != data:
            # Settled: the new file still peeks, and the backup holds the old bytes.
            SessionPeekHelper(LIMIT).peek((directory / "session").read_bytes())
            backups = list((registry_state(registry) / "backups" / session_id).iterdir())
            assert [b.read_bytes() for b in backups] == [data]
            rs.count("fuzz scan outcome: settled")
    assert not (directory / "session.next").exists()


def registry_state(registry: Registry) -> Path:
    """The registry's state directory."""
    return registry._config.state_dir


@pytest.mark.parametrize("sample", rs.SAMPLE_DIRS, ids=lambda p: f"{p.parent.name}-{p.name}")
def test_every_sample_resumes_unmutated(providers: Any, sample: Path) -> None:
    """The fuzz seeds are valid: each sample resumes, so mutations start from real sessions."""
    state = SessionResumeHelper(providers.units, None, str(sample), LIMIT).resume(
        rs.sample_blob(sample))
    assert state.job_state_map


PXU = rs.UNITS_PXU.read_text()


@st.composite
def mutated_units(draw: st.DrawFn) -> str:
    """The sample provider's unit file with lines dropped, duplicated, damaged or added."""
    lines = PXU.splitlines()
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "dup", "garble", "insert"]))
        if kind == "drop":
            del lines[at]
        elif kind == "dup":
            lines.insert(at, lines[at])
        elif kind == "garble":
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))] + draw(
                st.text(max_size=10))
        else:
            lines.insert(at, draw(st.sampled_from([
                "unit: template", "template-engine: jinja2", "requires: (((", "depends: {x}",
                "template-resource: ::", "id: {name", "id: {{ name.__class__ }}", "plugin: \x00",
                "flags: also-after-suspend", "siblings: [{", "command: {0}", " .", "#"])))
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@SCAN_FUZZ
@given(text=mutated_units())
def test_fuzz_damaged_unit_files_never_stop_provider_loading_or_resume(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """A damaged provider unit file is loaded or skipped; resume still raises only typed errors."""
    from resumed.providers.loader import load_providers

    directory = tmp_path_factory.mktemp("units")
    rs.write_provider(directory)
    (directory / "synth" / "units" / rs.UNITS_PXU.name).write_text(text)
    providers = load_providers([directory])
    location, blob, _doc = SAMPLES[-1]
    peek_and_resume(providers.units, location, blob)
    rs.count("fuzz cases: damaged provider units")


@pytest.mark.parametrize(
    "name",
    ["\x00", "io-logs/a\x00b.record.gz", "/var/tmp/x\x00.record.gz", "io-logs/\ud800.record.gz"],
)
def test_io_log_name_with_a_nul_byte_is_a_typed_error(providers: Any, name: str) -> None:
    """Found by the long fuzz: a NUL in ``io_log_filename`` raised a raw ValueError."""
    location = rs.SAMPLES / "checkbox-1.18.1" / "small-v1.session"
    doc = rs.sample_doc(location)
    for history in doc["session"]["results"].values():
        for result in history:
            if "io_log_filename" in result:
                result["io_log_filename"] = name
    data = gzip.compress(json.dumps(doc).encode())
    with pytest.raises(SessionResumeError):
        SessionResumeHelper(providers.units, None, str(location), LIMIT).resume(data)
