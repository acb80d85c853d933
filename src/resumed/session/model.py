"""The in-memory session model: metadata, results, job states and the session.

These are plain data holders; resume fills them, suspend writes them back and
``inspect`` reports them. Job definitions come from :mod:`resumed.providers`
and are only referred to here (any object with an ``id`` attribute).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

#: Outcomes current Checkbox accepts in a session (``None`` is the hollow outcome).
OUTCOMES: frozenset[str | None] = frozenset(
    {
        None,
        "pass",
        "fail",
        "skip",
        "not-supported",
        "not-implemented",
        "undecided",
        "crash",
        "skipped-dependency",
        "skipped-resource",
        "skipped-manifest",
    }
)


class IOLogRecord(NamedTuple):
    """One chunk of job output: seconds since the command started, stream, bytes."""

    delay: float
    stream_name: str
    data: bytes


def records_from_flat(flat: Iterable[Any]) -> Iterator[IOLogRecord]:
    """The records of a flat list: delay, stream name, data, delay, ... (built in C)."""
    items = iter(flat)
    return map(tuple.__new__, repeat(IOLogRecord), zip(items, items, items, strict=True))


@dataclass(frozen=True)
class JobResult:
    """What one run of a job produced (the fields every result has)."""

    outcome: str | None = None
    comments: str | None = None
    return_code: int | None = None
    execution_duration: float | None = None

    @property
    def io_log_records(self) -> int | None:
        """Number of io-log records kept in memory; ``None`` for a disk result."""
        return None

    @property
    def is_hollow(self) -> bool:
        """True for the "never ran" placeholder (every field null or empty)."""
        return False


@dataclass(frozen=True)
class MemoryJobResult(JobResult):
    """A result whose io-log records are stored inline in the session.

    A result read from a session keeps its records (validated and decoded) as
    one flat list and builds ``io_log`` on first access (:meth:`from_flat`):
    a resumed session then holds one object per result instead of one per
    record. Both kinds compare, hash and print alike.
    """

    # A default factory leaves no class attribute: a missing io_log reaches __getattr__.
    io_log: tuple[IOLogRecord, ...] = field(default_factory=tuple)

    @classmethod
    def from_flat(
        cls,
        outcome: str | None,
        comments: str | None,
        return_code: int | None,
        execution_duration: float | None,
        flat: list[Any],
    ) -> MemoryJobResult:
        """The result whose records are ``flat``: delay, stream name, data, delay, ..."""
        result = object.__new__(cls)
        result.__dict__.update(
            outcome=outcome, comments=comments, return_code=return_code,
            execution_duration=execution_duration, _flat=flat,
        )
        return result

    def __getattr__(self, name: str) -> Any:
        flat = self.__dict__.get("_flat") if name == "io_log" else None
        if flat is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = tuple(records_from_flat(flat))
        self.__dict__["io_log"] = value
        return value

    @property
    def io_log_records(self) -> int | None:
        """Number of stdout and stderr records stored inline."""
        flat = self.__dict__.get("_flat")
        return len(self.io_log) if flat is None else len(flat) // 3

    @property
    def is_hollow(self) -> bool:
        """True when every field is null and the io-log is empty (PlainBox's rule)."""
        return (
            self.outcome is None
            and self.comments is None
            and self.return_code is None
            and self.execution_duration is None
            and not self.io_log
        )


@dataclass(frozen=True)
class DiskJobResult(JobResult):
    """A result whose io-log lives in a ``.record.gz`` file beside the session."""

    #: The path as restored (a relative stored name joined with the session location).
    io_log_filename: str = ""


#: The placeholder result of a job that never ran.
HOLLOW_RESULT = MemoryJobResult()


@dataclass
class SessionMetaData:
    """Session metadata; keys the format version lacks are ``None``."""

    title: str | None = None
    flags: set[str] = field(default_factory=set)
    running_job_name: str | None = None
    app_blob: bytes | None = None
    #: The stored base64 text of ``app_blob``, verbatim (``None`` when null or absent).
    app_blob_text: str | None = None
    app_id: str | None = None
    custom_joblist: bool | None = None
    rejected_jobs: list[str] | None = None
    last_job_start_time: float | None = None
    remaining_todo_jobs: bool | None = None
    format_version: int = 0


@dataclass(slots=True)
class JobState:
    """A job of the session with its result history and its checksum as matched."""

    job: Any
    #: The checksum of ``job`` by the rule that matched the session (era rules).
    checksum: str
    result_history: list[JobResult] = field(default_factory=list)

    @property
    def result(self) -> JobResult:
        """The current result: the last of the history, or the hollow result."""
        return self.result_history[-1] if self.result_history else HOLLOW_RESULT


@dataclass
class SessionState:
    """A resumed session: its jobs, their states, the job lists and the metadata."""

    job_list: list[Any] = field(default_factory=list)
    job_state_map: dict[str, JobState] = field(default_factory=dict)
    #: Every unit given to resume (jobs and templates) plus generated jobs.
    unit_list: list[Any] = field(default_factory=list)
    desired_job_list: list[Any] = field(default_factory=list)
    mandatory_job_list: list[Any] = field(default_factory=list)
    run_list: list[Any] = field(default_factory=list)
    metadata: SessionMetaData = field(default_factory=SessionMetaData)
    discarded_job_ids: list[str] = field(default_factory=list)
    checksum_rules: list[str] = field(default_factory=list)
    format_version: int = 0
    #: Parsed records of each replayed resource job.
    resource_map: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: The stored ``system_information`` (v8+), as read.
    system_information: dict[str, Any] = field(default_factory=dict)
