"""Resume: rebuild a :class:`SessionState` from a session blob and the installed units.

This follows PlainBox's ``SessionResumeHelper`` step by step (reference §5) with
current Checkbox semantics, in linear time: jobs are indexed once, templates are
indexed by resource id, jobs not found yet wait in a set that is resolved as
soon as a replayed resource result generates them, and readiness is never
recomputed per job (the run list is solved once at the end).

Every failure is a :class:`~resumed.session.errors.SessionResumeError`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from resumed.providers.checksum import CURRENT_ERA, ERAS
from resumed.providers.errors import ProvidersError
from resumed.providers.loader import is_builtin_namespace
from resumed.providers.render import MissingParam
from resumed.providers.resource import parse_resource_records
from resumed.providers.siblings import make_siblings
from resumed.providers.solver import solve_run_list
from resumed.providers.units import JobDefinition, TemplateUnit
from resumed.session.envelope import DEFAULT_MAX_SESSION_BYTES, paused_gc, unpack_envelope
from resumed.session.errors import (
    BrokenReferenceToExternalFile,
    CorruptedSessionError,
    IncompatibleJobError,
    IncompatibleSessionError,
)
from resumed.session.formats import SessionDocument, read_document, read_version
from resumed.session.iolog import io_log_exists, iter_io_log
from resumed.session.model import (
    DiskJobResult,
    IOLogRecord,
    JobResult,
    JobState,
    MemoryJobResult,
    SessionState,
)

logger = logging.getLogger(__name__)

#: Resume flags PlainBox knows.
FLAG_IGNORE_JOB_CHECKSUMS = "ignore-job-checksums"
FLAG_FILE_REFERENCE_CHECKS = "file-reference-checks"
FLAG_REWRITE_LOG_PATHNAMES = "rewrite-log-pathnames"
KNOWN_FLAGS = (FLAG_IGNORE_JOB_CHECKSUMS, FLAG_FILE_REFERENCE_CHECKS, FLAG_REWRITE_LOG_PATHNAMES)

_OLD_SESSION_PATH = re.compile(r".*/\.cache/plainbox/sessions/[^/]+")

#: Checkbox's built-in providers that ship jobs (reference providers §1.6).
_BUILTIN_PROVIDER = "com.canonical.plainbox:manifest"


class ResumeDiscardQualifier:
    """Selects for removal every job whose id is not in ``retain_id_set``."""

    def __init__(self, retain_id_set: Iterable[str]) -> None:
        self.retain_id_set = frozenset(retain_id_set)

    def get_simple_match(self, job: Any) -> bool:
        """True when ``job`` is to be discarded."""
        return job.id not in self.retain_id_set


def _unknown_jobs_error(prefix: str, job_ids: Sequence[str]) -> CorruptedSessionError:
    """``unknown-jobs``, naming Checkbox's built-in provider when its jobs are missing."""
    message = f"{prefix}: {', '.join(job_ids)}"
    if any(is_builtin_namespace(job_id.partition("::")[0]) for job_id in job_ids):
        message += (
            f" (Checkbox's built-in provider {_BUILTIN_PROVIDER} is not installed"
            " as a provider directory)"
        )
    return CorruptedSessionError(message, job_ids)


def _may_have_siblings(job: JobDefinition) -> bool:
    """Cheap pre-check: False only when ``job`` surely has no siblings of any kind."""
    data = job.data
    flags = f"{data.get('flags')} {data.get('_flags')}"
    return "siblings" in data or "_siblings" in data or "also-after-suspend" in flags


class _Resume:
    """The state of one resume run (internal; see :class:`SessionResumeHelper`)."""

    def __init__(
        self,
        doc: SessionDocument,
        units: Sequence[Any],
        flags: frozenset[str],
        location: str | None,
        max_bytes: int,
    ) -> None:
        self.doc = doc
        self.flags = flags
        self.location = location
        self.max_bytes = max_bytes
        self.strict = "strict_template_expansion" in doc.metadata.flags
        self.jobs: dict[str, JobDefinition] = {}
        self.states: dict[str, JobState] = {}
        self.job_era: dict[str, str] = {}
        self.templates: dict[str, list[TemplateUnit]] = {}
        self.unit_list: list[Any] = list(units)
        self.resource_map: dict[str, list[dict[str, str]]] = {}
        self.pending: set[str] = set()
        self.queue: deque[str] = deque()
        self.incompatible: list[str] = []
        self.rules: set[str] = set()
        self.template_era = CURRENT_ERA
        self.sibling_era = CURRENT_ERA
        self._index_units(units)

    # -- building the job map ------------------------------------------------

    def _referenced(self, job_id: str) -> bool:
        doc = self.doc
        return job_id in doc.jobs or job_id in doc.results or job_id in doc.desired_job_list

    def _index_units(self, units: Sequence[Any]) -> None:
        for unit in units:
            if isinstance(unit, TemplateUnit):
                try:
                    self.templates.setdefault(unit.resource_id, []).append(unit)
                except ProvidersError as exc:
                    logger.warning("ignoring template %s: %s", unit.id, exc)
            elif isinstance(unit, JobDefinition):
                self._add_job(unit, era=None)

    def _add_job(self, job: JobDefinition, era: str | None) -> None:
        """Add ``job`` and its siblings (``era``: the rule it was built by, if any)."""
        checksum = job.checksum if era is None else job.checksum_for(era)
        existing = self.states.get(job.id)
        if existing is not None:
            if existing.checksum == checksum:
                if era is None:
                    existing.job = self.jobs[job.id] = job
                return
            if era is not None or self._referenced(job.id):
                raise IncompatibleJobError(
                    f"Job {job.id!r} is defined twice with different content", [job.id]
                )
            logger.warning("job %s is defined twice with different content; keeping one", job.id)
            return
        self.jobs[job.id] = job
        self.states[job.id] = JobState(job, checksum)
        if era is not None:
            self.job_era[job.id] = era
            self.unit_list.append(job)
        if job.id in self.pending:
            self.pending.discard(job.id)
            self.queue.append(job.id)
        self._add_siblings(job)

    def _add_siblings(self, parent: JobDefinition) -> None:
        if not _may_have_siblings(parent):
            return
        era = self.job_era.get(parent.id, self.sibling_era)
        siblings = make_siblings(parent, era)
        if not siblings:
            return
        best = self._pick_era(siblings, era)
        if best != era:
            siblings = make_siblings(parent, best)
        if any(sibling.id in self.doc.jobs for sibling in siblings):
            self.sibling_era = best
        for sibling in siblings:
            self._add_job(sibling, era=best)

    def _other_era_instances(
        self,
        template: TemplateUnit,
        records: list[dict[str, str]],
        era: str,
        jobs: list[JobDefinition],
    ) -> tuple[str, list[JobDefinition]]:
        """When no instance of ``era`` is in the session, the era whose instances match most.

        Eras differ in which instances survive (reference providers §4.8), so a
        session from another era may hold instances ``era`` does not make.
        """
        best: tuple[int, str, list[JobDefinition]] = (0, era, jobs)
        for other in reversed(ERAS):
            if other == era:
                continue
            candidates = template.instantiate(records, other, self.strict)
            matched = sum(
                self.doc.jobs.get(job.id) == job.checksum_for(other) for job in candidates
            )
            if matched > best[0]:
                best = (matched, other, candidates)
        return best[1], best[2]

    def _pick_era(self, jobs: Sequence[JobDefinition], preferred: str) -> str:
        """The era whose rule matches the stored checksums of ``jobs`` best.

        ``preferred`` wins when nothing is stored or it matches everything stored;
        otherwise the newest era with the fewest mismatches and most matches.
        """
        listed = [(job, self.doc.jobs[job.id]) for job in jobs if job.id in self.doc.jobs]
        if all(job.checksum_for(preferred) == stored for job, stored in listed):
            return preferred
        best: tuple[int, int] | None = None
        best_era = preferred
        for era in reversed(ERAS):
            matched = sum(job.checksum_for(era) == stored for job, stored in listed)
            score = (len(listed) - matched, -matched)
            if best is None or score < best:
                best, best_era = score, era
        return best_era

    # -- replay ----------------------------------------------------------------

    def run(self) -> None:
        """Check and replay every job in ``jobs``; fail on mismatches and unknown ids."""
        for job_id in self.doc.results:
            if job_id not in self.doc.jobs:
                raise CorruptedSessionError(f"Missing value for key {job_id!r}")
        for job_id in sorted(self.doc.jobs):
            self.queue.append(job_id)
            while self.queue:
                self._restore(self.queue.popleft())
        if self.incompatible:
            ids = sorted(set(self.incompatible))
            raise IncompatibleJobError(
                "Definition of job " + ", ".join(repr(i) for i in ids) + " has changed", ids
            )
        if self.pending:
            raise _unknown_jobs_error("Unknown jobs remaining", sorted(self.pending))

    def _restore(self, job_id: str) -> None:
        job_state = self.states.get(job_id)
        if job_state is None:
            self.pending.add(job_id)
            return
        self._check_checksum(job_state)
        for result in self.doc.results.get(job_id, ()):
            self._replay(job_state, self._checked_result(result))

    def _check_checksum(self, job_state: JobState) -> None:
        job = job_state.job
        stored = self.doc.jobs[job.id]
        if job_state.checksum == stored:
            if job.id in self.job_era:
                self._note_rule(job, stored)
            return
        if FLAG_IGNORE_JOB_CHECKSUMS in self.flags:
            logger.warning("definition of job %s has changed (ignored)", job.id)
            return
        self.incompatible.append(job.id)

    def _note_rule(self, job: JobDefinition, stored: str) -> None:
        """Record the earliest era whose rule gives ``stored``, if the eras disagree."""
        first = next(i for i, era in enumerate(ERAS) if job.checksum_for(era) == stored)
        if first > 0 or any(job.checksum_for(era) != stored for era in ERAS[1:]):
            self.rules.add(ERAS[first])

    def _checked_result(self, result: JobResult) -> JobResult:
        if not isinstance(result, DiskJobResult) or FLAG_FILE_REFERENCE_CHECKS not in self.flags:
            return result
        name = result.io_log_filename
        match = _OLD_SESSION_PATH.match(name)
        if FLAG_REWRITE_LOG_PATHNAMES in self.flags and self.location is not None and match:
            result = replace(result, io_log_filename=self.location + name[match.end() :])
        if io_log_exists(result.io_log_filename, self.location):
            return result
        raise BrokenReferenceToExternalFile(f"cannot access file: {name}")

    def _replay(self, job_state: JobState, result: JobResult) -> None:
        if result.is_hollow:
            return
        job_state.result_history.append(result)
        job = job_state.job
        if job.plugin != "resource" or result.outcome is None:
            return
        records = parse_resource_records(self._stdout_records(result))
        self.resource_map[job.id] = records or [{}]
        if records and records != [{}]:
            self._instantiate(job.id, records)

    def _stdout_records(self, result: JobResult) -> Iterator[bytes]:
        records: Iterable[IOLogRecord] = ()
        if isinstance(result, DiskJobResult):
            records = iter_io_log(result.io_log_filename, self.location, self.max_bytes)
        elif isinstance(result, MemoryJobResult):
            records = result.io_log
        return (record.data for record in records if record.stream_name == "stdout")

    def _instantiate(self, resource_id: str, records: list[dict[str, str]]) -> None:
        for template in self.templates.get(resource_id, ()):
            era = self.template_era
            jobs = template.instantiate(records, era, self.strict)
            if not any(job.id in self.doc.jobs for job in jobs):
                era, jobs = self._other_era_instances(template, records, era, jobs)
            best = self._pick_era(jobs, era)
            if best != era:
                jobs = template.instantiate(records, best, self.strict)
            if any(job.id in self.doc.jobs for job in jobs):
                self.template_era = best
            for job in jobs:
                self._add_job(job, era=best)

    # -- lists and discard -------------------------------------------------------

    def job_lists(self) -> tuple[list[Any], list[Any]]:
        """The mandatory and desired lists as job objects (unknown ids: unknown-jobs)."""
        mandatory_ids = self.doc.mandatory_job_list or []
        missing = [i for i in mandatory_ids + self.doc.desired_job_list if i not in self.jobs]
        if missing:
            raise _unknown_jobs_error(
                "'desired_job_list' or 'mandatory_job_list' refers to unknown jobs",
                sorted(set(missing)),
            )
        return (
            [self.jobs[i] for i in mandatory_ids],
            [self.jobs[i] for i in self.doc.desired_job_list],
        )

    def solve(self, mandatory: list[Any], desired: list[Any]) -> list[Any]:
        """The run list (mandatory jobs first, then the desired ones) via the solver."""
        wanted = list(dict.fromkeys([job.id for job in mandatory] + [job.id for job in desired]))
        run_list = solve_run_list(self.jobs, wanted)
        for problem in run_list.problems:
            logger.debug("run list: %s", problem.message)
        for job_id, error in run_list.broken_requires.items():
            logger.warning("job %s has a broken requires program: %s", job_id, error)
        return [self.jobs[job_id] for job_id in run_list]

    def retained_ids(self, run_list: list[Any]) -> set[str]:
        """Ids kept by the discard step: run list, ``jobs`` map, defined rejected jobs."""
        retain = {job.id for job in run_list} | set(self.doc.jobs)
        for job_id in self.doc.metadata.rejected_jobs or ():
            if job_id in self.jobs:
                retain.add(job_id)
            else:
                logger.warning("rejected job %s is not defined by any provider; dropped", job_id)
        return retain


class SessionResumeHelper:
    """Resume sessions of any supported format version against a list of units.

    ``job_list`` is every unit of the installed providers (jobs and templates;
    generated jobs come back by replaying resource results); ``flags`` are
    PlainBox's resume flags; ``location`` is the session directory.
    """

    #: When set, the only format version this helper accepts.
    VERSION: int | None = None

    def __init__(
        self,
        job_list: Sequence[Any],
        flags: Iterable[str] | None = None,
        location: str | None = None,
        max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES,
    ) -> None:
        self.job_list = list(job_list)
        self.flags = frozenset(flags or ())
        self.location = None if location is None else os.path.abspath(location)
        self.max_session_bytes = max_session_bytes

    def resume(
        self,
        data: bytes,
        early_cb: Callable[[SessionState], SessionState | None] | None = None,
    ) -> SessionState:
        """Resume the session blob ``data`` and return the session state.

        ``early_cb`` is called with the new session before the bulk work; a
        non-None return value is filled in and returned instead.
        """
        with paused_gc():
            return self.resume_json(unpack_envelope(data, self.max_session_bytes), early_cb)

    def resume_json(
        self,
        doc: Any,
        early_cb: Callable[[SessionState], SessionState | None] | None = None,
    ) -> SessionState:
        """Resume an already unpacked session document (see :meth:`resume`)."""
        version = read_version(doc)
        if self.VERSION is not None and version.number != self.VERSION:
            raise IncompatibleSessionError(f"Unsupported version {version.number}")
        with paused_gc():
            document = read_document(doc, self.location)
            try:
                return self._resume(document, early_cb)
            except (ProvidersError, MissingParam) as exc:
                raise CorruptedSessionError(
                    f"Cannot rebuild the session's jobs: {exc}") from exc
            except RecursionError as exc:
                raise CorruptedSessionError("Session structure is nested too deeply") from exc

    def _resume(
        self,
        document: SessionDocument,
        early_cb: Callable[[SessionState], SessionState | None] | None,
    ) -> SessionState:
        run = _Resume(document, self.job_list, self.flags, self.location, self.max_session_bytes)
        state = SessionState(
            job_list=list(run.jobs.values()),
            job_state_map=run.states,
            unit_list=run.unit_list,
            metadata=document.metadata,
            format_version=document.version.number,
        )
        if early_cb is not None:
            replacement = early_cb(state)
            if replacement is not None:
                state = replacement
        run.run()
        mandatory, desired = run.job_lists()
        run_list = run.solve(mandatory, desired)
        qualifier = ResumeDiscardQualifier(run.retained_ids(run_list))
        discarded = [job_id for job_id, job in run.jobs.items() if qualifier.get_simple_match(job)]
        for job_id in discarded:
            del run.jobs[job_id]
            del run.states[job_id]
            run.resource_map.pop(job_id, None)
        state.job_list = list(run.jobs.values())
        state.job_state_map = run.states
        state.unit_list = [
            unit for unit in run.unit_list if isinstance(unit, TemplateUnit) or unit.id in run.jobs
        ]
        state.metadata = document.metadata
        state.format_version = document.version.number
        state.desired_job_list = desired
        state.mandatory_job_list = mandatory
        state.run_list = run_list
        state.discarded_job_ids = discarded
        state.checksum_rules = sorted(run.rules)
        state.resource_map = run.resource_map
        state.system_information = document.system_information
        return state


class SessionResumeHelper1(SessionResumeHelper):
    """Resume helper for format version 1 only."""

    VERSION = 1


class SessionResumeHelper2(SessionResumeHelper):
    """Resume helper for format version 2 only."""

    VERSION = 2


class SessionResumeHelper3(SessionResumeHelper):
    """Resume helper for format version 3 only."""

    VERSION = 3


class SessionResumeHelper4(SessionResumeHelper):
    """Resume helper for format version 4 only."""

    VERSION = 4


class SessionResumeHelper5(SessionResumeHelper):
    """Resume helper for format version 5 only."""

    VERSION = 5


class SessionResumeHelper6(SessionResumeHelper):
    """Resume helper for format version 6 only."""

    VERSION = 6


class SessionResumeHelper7(SessionResumeHelper):
    """Resume helper for format version 7 only."""

    VERSION = 7


class SessionResumeHelper8(SessionResumeHelper):
    """Resume helper for format version 8 only."""

    VERSION = 8


class SessionResumeHelper9(SessionResumeHelper):
    """Resume helper for format version 9 only."""

    VERSION = 9


class SessionResumeHelper10(SessionResumeHelper):
    """Resume helper for format version 10 only."""

    VERSION = 10


class SessionResumeHelper11(SessionResumeHelper):
    """Resume helper for format version 11 only."""

    VERSION = 11
