"""Session format versions 1 to 11 as data, and the one reader that validates them.

Each version adds a little to the one before (reference §1); ``ADDED_IN`` lists
what, and :class:`FormatVersion` answers "does this version have X?". The reader
checks every key and type as current Checkbox does (its validation matrix) and
raises :class:`CorruptedSessionError` with PlainBox's messages, or
:class:`IncompatibleSessionError` for an unknown version. One leniency of our
own: v6/v7 files without ``custom_joblist``/``rejected_jobs`` (pre-2019
writers) read as ``false``/``[]``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from resumed.session.errors import CorruptedSessionError, IncompatibleSessionError
from resumed.session.model import (
    OUTCOMES,
    DiskJobResult,
    IOLogRecord,
    JobResult,
    MemoryJobResult,
    SessionMetaData,
    records_from_flat,
)

#: What each format version adds to the previous one (reference §1).
ADDED_IN: dict[int, frozenset[str]] = {
    1: frozenset({"title", "flags", "running_job_name", "every-job-with-current-result"}),
    2: frozenset({"app_blob"}),
    3: frozenset({"app_id"}),
    4: frozenset({"result-history"}),
    5: frozenset({"relative-io-logs"}),
    6: frozenset({"mandatory_job_list", "custom_joblist", "rejected_jobs", "metadata-before-jobs"}),
    7: frozenset({"last_job_start_time"}),
    8: frozenset({"system_information"}),
    9: frozenset({"system-information-only-if-collected"}),
    10: frozenset({"setting-up-lists-every-job"}),
    11: frozenset({"remaining_todo_jobs"}),
}

#: Features a later version takes away.
REMOVED_IN: dict[int, frozenset[str]] = {4: frozenset({"every-job-with-current-result"})}

#: The newest format version.
LATEST_VERSION = max(ADDED_IN)


@dataclass(frozen=True)
class FormatVersion:
    """One format version and the set of features it has."""

    number: int
    features: frozenset[str]

    def has(self, feature: str) -> bool:
        """Whether this version has ``feature`` (a name from :data:`ADDED_IN`)."""
        return feature in self.features


def _build_versions() -> dict[int, FormatVersion]:
    versions: dict[int, FormatVersion] = {}
    features: frozenset[str] = frozenset()
    for number in sorted(ADDED_IN):
        features = (features - REMOVED_IN.get(number, frozenset())) | ADDED_IN[number]
        versions[number] = FormatVersion(number, features)
    return versions


#: Every known format version by number.
VERSIONS: dict[int, FormatVersion] = _build_versions()

#: Metadata keys: (key, feature that brings it, type, may be null).
_METADATA_KEYS: tuple[tuple[str, str, type, bool], ...] = (
    ("title", "title", str, True),
    ("flags", "flags", list, False),
    ("running_job_name", "running_job_name", str, True),
    ("app_blob", "app_blob", str, True),
    ("app_id", "app_id", str, True),
    ("custom_joblist", "custom_joblist", bool, False),
    ("rejected_jobs", "rejected_jobs", list, False),
    ("last_job_start_time", "last_job_start_time", float, True),
    ("remaining_todo_jobs", "remaining_todo_jobs", bool, False),
)

#: Our leniency for pre-2019 v6/v7 writers: defaults for keys added without a bump.
_LENIENT_DEFAULTS: dict[str, Any] = {"custom_joblist": False, "rejected_jobs": []}


@dataclass
class SessionDocument:
    """The validated content of a session blob (cross references not yet checked)."""

    version: FormatVersion
    metadata: SessionMetaData
    jobs: dict[str, str]
    results: dict[str, list[JobResult]]
    desired_job_list: list[str]
    #: ``None`` for v1-v5, which PlainBox never restores.
    mandatory_job_list: list[str] | None
    system_information: dict[str, Any] = field(default_factory=dict)


def _validate(
    obj: Mapping[str, Any], key: str, value_type: type | tuple[type, ...], none_ok: bool = False
) -> Any:
    """Return ``obj[key]``, checking presence and type (PlainBox's messages)."""
    try:
        value = obj[key]
    except KeyError:
        raise CorruptedSessionError(f"Missing value for key {key!r}") from None
    if value is None and none_ok:
        return None
    if not isinstance(value, value_type):
        raise CorruptedSessionError(
            f"Value of key {key!r} is of incorrect type {type(value).__name__}"
        )
    return value


#: The types of a list of nothing but plain strings (what JSON gives).
_ONLY_STR = frozenset({str})


def _str_list(values: list[Any], what: str) -> list[str]:
    if _ONLY_STR.issuperset(map(type, values)):
        return values
    for value in values:
        if not isinstance(value, str):
            raise CorruptedSessionError(f"Each {what} must be a string")
    return values


def read_version(doc: Any) -> FormatVersion:
    """Return the format version of a session document (the top-level ``version``)."""
    if not isinstance(doc, dict):
        raise CorruptedSessionError(f"Value of object is of incorrect type {type(doc).__name__}")
    if doc.get("version") is None:
        raise CorruptedSessionError("Missing value for key 'version'")
    raw = doc["version"]
    try:
        return VERSIONS[raw]
    except (KeyError, TypeError):
        raise IncompatibleSessionError(f"Unsupported version {raw!r}") from None


def _session_of(doc: dict[str, Any]) -> dict[str, Any]:
    return _validate(doc, "session", dict)  # type: ignore[no-any-return]


def read_metadata(doc: Any) -> SessionMetaData:
    """Validate the version and ``session.metadata`` and return the metadata."""
    version = read_version(doc)
    session = _session_of(doc)
    raw = _validate(session, "metadata", dict)
    values: dict[str, Any] = {}
    for key, feature, value_type, none_ok in _METADATA_KEYS:
        if not version.has(feature):
            continue
        if key not in raw and key in _LENIENT_DEFAULTS and version.number in (6, 7):
            values[key] = type(_LENIENT_DEFAULTS[key])(_LENIENT_DEFAULTS[key])
            continue
        values[key] = _validate(raw, key, value_type, none_ok)
    meta = SessionMetaData(format_version=version.number)
    meta.title = values.get("title")
    meta.flags = set(_str_list(values["flags"], "flag"))
    meta.running_job_name = values.get("running_job_name")
    blob_text = values.get("app_blob")
    if blob_text is not None:
        try:
            meta.app_blob = base64.standard_b64decode(blob_text.encode("ASCII"))
        except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
            raise CorruptedSessionError("Cannot decode app_blob") from exc
        meta.app_blob_text = blob_text
    meta.app_id = values.get("app_id")
    meta.custom_joblist = values.get("custom_joblist")
    if "rejected_jobs" in values:
        meta.rejected_jobs = list(_str_list(values["rejected_jobs"], "rejected job id"))
    meta.last_job_start_time = values.get("last_job_start_time")
    meta.remaining_todo_jobs = values.get("remaining_todo_jobs")
    return meta


def read_record(raw: Any) -> IOLogRecord:
    """Validate one io-log record ``[delay, stream, base64]`` and decode it."""
    if not isinstance(raw, list) or len(raw) != 3:
        raise CorruptedSessionError("Each io_log record must be a list of three items")
    delay, stream, data = raw
    if type(delay) is not float:
        try:
            delay = float(delay)
        except (TypeError, ValueError, OverflowError) as exc:
            raise CorruptedSessionError(f"Cannot interpret io_log delay {delay!r}") from exc
    if delay < 0:
        raise CorruptedSessionError("io_log delay cannot be negative")
    if stream != "stdout" and stream != "stderr":
        raise CorruptedSessionError(f"Unsupported io_log stream name {stream!r}")
    if not isinstance(data, str):
        raise CorruptedSessionError("Value of io_log data is of incorrect type")
    try:
        # Standard base64, lenient like PlainBox: non-alphabet characters are dropped.
        return IOLogRecord(delay, stream, binascii.a2b_base64(data))
    except (binascii.Error, ValueError) as exc:
        raise CorruptedSessionError("Cannot decode io_log data") from exc


def read_records(raws: list[Any]) -> tuple[IOLogRecord, ...]:
    """Validate and decode a list of io-log records (:func:`read_record` on each).

    Records of the usual shape (float delay, stream name, base64 text) take a
    fast path; any other goes through :func:`read_record`, so the errors, and
    which record raises first, are the same.
    """
    return tuple(records_from_flat(read_flat_records(raws)))


def read_flat_records(raws: list[Any]) -> list[Any]:
    """:func:`read_records` as one flat list: delay, stream name, data, delay, ..."""
    a2b = binascii.a2b_base64
    flat: list[Any] = []
    try:
        for raw in raws:
            if type(raw) is list and len(raw) == 3:
                delay, stream, data = raw
                if (type(delay) is float and delay >= 0.0 and type(data) is str
                        and (stream == "stdout" or stream == "stderr")):
                    flat += delay, stream, a2b(data)
                    continue
            flat += read_record(raw)
    except (binascii.Error, ValueError) as exc:
        raise CorruptedSessionError("Cannot decode io_log data") from exc
    return flat


#: Marks a missing key in :func:`read_result`'s fast path.
_ABSENT = object()


def directory_prefix(location: str | None) -> str | None:
    """What :func:`read_result` puts before a relative io-log name: ``location`` and a ``/``.

    ``prefix + name`` is ``os.path.join(location, name)`` for any relative ``name``.
    """
    if location is None or location == "" or location.endswith("/"):
        return location
    return location + "/"


def read_result(raw: Any, prefix: str | None) -> JobResult:
    """Validate one stored result and build a memory or disk result.

    A relative ``io_log_filename`` is joined with the session location
    (``prefix``, from :func:`directory_prefix`) when given.
    """
    if type(raw) is dict:
        # The usual shapes, checked in one go; anything else takes the checks below.
        get = raw.get
        outcome = get("outcome", _ABSENT)
        comments = get("comments", _ABSENT)
        return_code = get("return_code", _ABSENT)
        duration = get("execution_duration", _ABSENT)
        if ((outcome is None or (type(outcome) is str and outcome in OUTCOMES))
                and (comments is None or type(comments) is str)
                and (return_code is None or type(return_code) is int)
                and (duration is None or type(duration) is float)):
            name = get("io_log_filename", _ABSENT)
            if name is _ABSENT:
                records = get("io_log", _ABSENT)
                if type(records) is list:
                    return MemoryJobResult.from_flat(
                        outcome, comments, return_code, duration, read_flat_records(records))
            elif type(name) is str:
                if prefix is not None and name[:1] != "/":
                    name = prefix + name
                # What DiskJobResult(...) makes, without its frozen field-by-field __init__.
                result = object.__new__(DiskJobResult)
                result.__dict__.update(
                    outcome=outcome, comments=comments, return_code=return_code,
                    execution_duration=duration, io_log_filename=name,
                )
                return result
    if not isinstance(raw, dict):
        raise CorruptedSessionError(f"Value of result is of incorrect type {type(raw).__name__}")
    outcome = _validate(raw, "outcome", str, True)
    if outcome not in OUTCOMES:
        raise CorruptedSessionError(f"Value {outcome!r} not in allowed set of outcomes")
    comments = _validate(raw, "comments", str, True)
    return_code = _validate(raw, "return_code", int, True)
    duration = _validate(raw, "execution_duration", float, True)
    if "io_log_filename" in raw:
        name = _validate(raw, "io_log_filename", str)
        if prefix is not None and name[:1] != "/":
            name = prefix + name
        return DiskJobResult(outcome, comments, return_code, duration, name)
    records = _validate(raw, "io_log", list)
    return MemoryJobResult(outcome, comments, return_code, duration, read_records(records))


def _read_system_information(raw: dict[str, Any]) -> dict[str, Any]:
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise CorruptedSessionError(f"Malformed system_information entry {name!r}")
        outputs = _validate(entry, "outputs", dict)
        _validate(entry, "tool_version", str, True)
        success = _validate(entry, "success", bool)
        needed = ("payload", "stderr") if success else ("stdout", "stderr", "return_code")
        for key in needed:
            _validate(outputs, key, object, True)
    return raw


def read_document(doc: Any, location: str | None = None) -> SessionDocument:
    """Validate a whole session document (as unpacked) and return its content."""
    metadata = read_metadata(doc)
    version = VERSIONS[metadata.format_version]
    session = _session_of(doc)
    jobs = _validate(session, "jobs", dict)
    if not _ONLY_STR.issuperset(map(type, jobs.values())):
        for job_id in jobs:
            _validate(jobs, job_id, str)
    raw_results = _validate(session, "results", dict)
    results: dict[str, list[JobResult]] = {}
    prefix = directory_prefix(location)
    for job_id, history in raw_results.items():
        if type(history) is not list:
            history = _validate(raw_results, job_id, list)
        results[job_id] = [read_result(item, prefix) for item in history]
    desired = _str_list(_validate(session, "desired_job_list", list), "job id")
    mandatory: list[str] | None = None
    if version.has("mandatory_job_list"):
        mandatory = _str_list(_validate(session, "mandatory_job_list", list), "job id")
    system_information: dict[str, Any] = {}
    if version.has("system_information"):
        system_information = _read_system_information(
            _validate(session, "system_information", dict)
        )
    return SessionDocument(
        version, metadata, jobs, results, list(desired), mandatory, system_information
    )
