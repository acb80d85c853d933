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
import operator
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from resumed.providers.checksum import CURRENT_ERA, ERAS
from resumed.providers.errors import ProvidersError
from resumed.providers.loader import is_builtin_namespace
from resumed.providers.render import MissingParam
from resumed.providers.resource import parse_resource_records
from resumed.providers.siblings import make_siblings
from resumed.providers.solver import solve_run_list
from resumed.providers.templates import same_instances
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

_OUTCOME = operator.attrgetter("outcome")
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

    def discarded_ids(self, jobs: Mapping[str, Any]) -> list[str]:
        """The ids of ``jobs`` (keyed by id, in order) that :meth:`get_simple_match` selects."""
        retain = self.retain_id_set
        return [job_id for job_id in jobs if job_id not in retain]


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


class _SiblingClashError(Exception):
    """A sibling shares its id with a provider job: :class:`_UnitIndex` cannot be used."""


class _UnitIndex:
    """What indexing a list of units gives, before any session is looked at.

    Provider-only work, done once per unit list (the daemon resumes many
    sessions against one): the provider jobs after duplicate resolution, in
    order, cut where the session matters (a job that may have siblings, whose
    era the session picks; an id defined twice with different content, an
    error only when the session refers to it), and the templates by resource.
    """

    def __init__(self, units: Sequence[Any]) -> None:
        self.templates: dict[str, list[TemplateUnit]] = {}
        first: dict[str, tuple[JobDefinition, str]] = {}
        final: dict[str, JobDefinition] = {}
        #: ("jobs", ids) | ("parent", job) | ("conflict", job id) | ("bad-template",
        #: (template id, error)), in unit order (logged at every resume, as indexing does).
        self.steps: list[tuple[str, Any]] = []
        chunk: list[str] = []
        for unit in units:
            if isinstance(unit, TemplateUnit):
                try:
                    self.templates.setdefault(unit.resource_id, []).append(unit)
                except ProvidersError as exc:
                    self.steps.append(("jobs", chunk))
                    self.steps.append(("bad-template", (unit.id, exc)))
                    chunk = []
                continue
            if not isinstance(unit, JobDefinition):
                continue
            job_id = unit.id
            known = first.get(job_id)
            if known is None:
                first[job_id] = (unit, unit.checksum)
                final[job_id] = unit
                chunk.append(job_id)
                if _may_have_siblings(unit):
                    self.steps.append(("jobs", chunk))
                    self.steps.append(("parent", unit))
                    chunk = []
            elif known[1] == unit.checksum:
                final[job_id] = unit
            else:
                self.steps.append(("jobs", chunk))
                self.steps.append(("conflict", job_id))
                chunk = []
        self.steps.append(("jobs", chunk))
        self.steps = [
            (kind, (value, [final[i] for i in value], [first[i][1] for i in value]))
            if kind == "jobs" else (kind, value)
            for kind, value in self.steps if kind != "jobs" or value
        ]
        #: Every provider job id.
        self.job_ids = frozenset(first)
        self.unit_count = len(units)
        #: Positions of each provider job id in ``units`` (None: other objects there).
        self.positions: dict[str, list[int]] | None = {}
        for position, unit in enumerate(units):
            if isinstance(unit, JobDefinition):
                self.positions.setdefault(unit.id, []).append(position)
            elif not isinstance(unit, TemplateUnit):
                self.positions = None
                break

    def kept_units(self, unit_list: list[Any], jobs: Mapping[str, Any]) -> list[Any]:
        """``unit_list`` (these units, then generated ones) without the jobs not in ``jobs``.

        Templates stay; a job stays when its id is in ``jobs``. Every provider
        job id was in ``jobs`` before the discard step: only the (few)
        discarded ids are looked up among the provider units.
        """
        count = self.unit_count
        if self.positions is None:
            head = [u for u in unit_list[:count] if isinstance(u, TemplateUnit) or u.id in jobs]
        else:
            gone = sorted(p for job_id in self.job_ids.difference(jobs)
                          for p in self.positions[job_id])
            head, start = [], 0
            for position in gone:
                head += unit_list[start:position]
                start = position + 1
            head += unit_list[start:count]
        tail = [u for u in unit_list[count:] if isinstance(u, TemplateUnit) or u.id in jobs]
        return head + tail


#: Indexes of the last unit lists resumed against (the daemon keeps one provider set;
#: a reload briefly has two). Keyed by the unit objects themselves, in order.
_INDEXES: dict[tuple[Any, ...], _UnitIndex] = {}
_INDEXES_KEPT = 2
_INDEXES_LOCK = threading.Lock()


def _unit_index(units: Sequence[Any]) -> _UnitIndex:
    """The :class:`_UnitIndex` of ``units`` (the same unit objects in the same order)."""
    key = tuple(units)
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _UnitIndex(units)
            while len(_INDEXES) >= _INDEXES_KEPT:
                del _INDEXES[next(iter(_INDEXES))]
            _INDEXES[key] = index
    return index


def prepare(job_list: Sequence[Any]) -> None:
    """Do now the provider-only work the first resume against ``job_list`` would do.

    Indexing the units (checksums, templates by resource, where sessions
    decide): once per unit list, then shared by every resume against it. Call
    it after loading providers; resume does it itself otherwise.
    """
    _unit_index(list(job_list))


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
        #: Provider job ids a sibling must not have for :meth:`_use_index` to be exact.
        self._provider_ids: frozenset[str] = frozenset()
        self.index = _unit_index(self.unit_list)
        try:
            self._use_index(self.index)
        except _SiblingClashError:
            self.jobs, self.states, self.job_era, self.templates = {}, {}, {}, {}
            self.unit_list = list(units)
            self.sibling_era = CURRENT_ERA
            self._provider_ids = frozenset()
            self._index_units(units)

    # -- building the job map ------------------------------------------------

    def _referenced(self, job_id: str) -> bool:
        doc = self.doc
        return job_id in doc.jobs or job_id in doc.results or job_id in doc.desired_job_list

    def _use_index(self, index: _UnitIndex) -> None:
        """What :meth:`_index_units` does, from the provider-only :class:`_UnitIndex`."""
        self.templates = index.templates
        self._provider_ids = index.job_ids
        jobs, states = self.jobs, self.states
        for kind, value in index.steps:
            if kind == "jobs":
                ids, chunk, checksums = value
                jobs.update(zip(ids, chunk, strict=True))
                states.update(zip(ids, map(JobState, chunk, checksums), strict=True))
            elif kind == "parent":
                self._add_siblings(value)
            elif kind == "bad-template":
                logger.warning("ignoring template %s: %s", *value)
            elif self._referenced(value):
                raise IncompatibleJobError(
                    f"Job {value!r} is defined twice with different content", [value]
                )
            else:
                logger.warning(
                    "job %s is defined twice with different content; keeping one", value)
        self._provider_ids = frozenset()  # the replay adds jobs as _add_job does

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
        if not self._provider_ids.isdisjoint(sibling.id for sibling in siblings):
            raise _SiblingClashError
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
        memo: dict[tuple[int, int], Any],
    ) -> tuple[str, list[JobDefinition]]:
        """When no instance of ``era`` is in the session, the era whose instances match most.

        Eras differ in which instances survive (reference providers §4.8), so a
        session from another era may hold instances ``era`` does not make.
        """
        best: tuple[int, str, list[JobDefinition]] = (0, era, jobs)
        for other in reversed(ERAS):
            if other == era:
                continue
            candidates = template.instantiate(records, other, self.strict, memo)
            matched = sum(
                self.doc.jobs.get(job.id) == job.checksum_for(other) for job in candidates
            )
            if matched > best[0]:
                best = (matched, other, candidates)
        return best[1], best[2]

    def _pick_era(
        self, jobs: Sequence[JobDefinition], preferred: str, hint: str | None = None
    ) -> str:
        """The era whose rule matches the stored checksums of ``jobs`` best.

        ``preferred`` wins when nothing is stored or it matches everything stored;
        otherwise the newest era with the fewest mismatches and most matches.
        ``hint``, an era likely to match everything, only makes that faster: when
        it does, the answer is the newest era that does, and an era that does
        not is known at its first mismatch.
        """
        listed = [(job, self.doc.jobs[job.id]) for job in jobs if job.id in self.doc.jobs]
        if all(job.checksum_for(preferred) == stored for job, stored in listed):
            return preferred
        if hint is not None and all(job.checksum_for(hint) == stored for job, stored in listed):
            for era in reversed(ERAS):
                if era == hint or all(job.checksum_for(era) == stored for job, stored in listed):
                    return era
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
        queue, states, stored, results = self.queue, self.states, self.doc.jobs, self.doc.results
        if not stored.keys() >= results.keys():
            for job_id in results:
                if job_id not in stored:
                    raise CorruptedSessionError(f"Missing value for key {job_id!r}")
        job_era = self.job_era
        plain = FLAG_FILE_REFERENCE_CHECKS not in self.flags
        for job_id in sorted(stored):
            # _restore(job_id), inlined for the usual case: a known job whose
            # checksum matches and whose results go straight into its history.
            job_state = states.get(job_id)
            if job_state is None or job_state.checksum != stored[job_id] or job_id in job_era:
                self._restore(job_id)
            else:
                history = results.get(job_id)
                if not history:
                    pass
                elif plain and job_state.job.plugin != "resource" and all(map(_OUTCOME, history)):
                    # No hollow result (outcome None) and no resource to replay.
                    job_state.result_history.extend(history)
                else:
                    self._replay_all(job_state, history)
            while queue:
                self._restore(queue.popleft())
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
        history = self.doc.results.get(job_id)
        if history:
            self._replay_all(job_state, history)

    def _replay_all(self, job_state: JobState, history: list[JobResult]) -> None:
        """``_replay`` of each result of ``history`` (checked), in order."""
        if FLAG_FILE_REFERENCE_CHECKS in self.flags:
            for result in history:
                self._replay(job_state, self._checked_result(result))
            return
        append = job_state.result_history.append
        for result in history:
            if result.outcome is None:
                self._replay(job_state, result)
                continue
            append(result)  # not hollow: _replay's first step
            if job_state.job.plugin == "resource":
                self._replay_resource(job_state.job, result)

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
        if ERAS[first] in self.rules:
            return  # known already: the other eras' checksums need not be computed
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
        self._replay_resource(job, result)

    def _replay_resource(self, job: JobDefinition, result: JobResult) -> None:
        """A resource result: its records, and the jobs templates make from them."""
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
            memo: dict[tuple[int, int], Any] = {}  # checksums shared by every era's instances
            # `era`'s instances, or those of an era known to keep the same ones (same
            # ids and per-era checksums), when the session seems to come from it.
            built = self._same_instances_era(template, records, era, memo)
            jobs = template.instantiate(records, built, self.strict, memo)
            if not any(job.id in self.doc.jobs for job in jobs):
                if built != era:
                    jobs = template.instantiate(records, era, self.strict, memo)
                era, jobs = self._other_era_instances(template, records, era, jobs, memo)
                built = era
            best = self._pick_era(jobs, era, built)
            if best != built:
                jobs = template.instantiate(records, best, self.strict, memo)
            if any(job.id in self.doc.jobs for job in jobs):
                self.template_era = best
            for job in jobs:
                self._add_job(job, era=best)

    def _same_instances_era(
        self,
        template: TemplateUnit,
        records: list[dict[str, str]],
        era: str,
        memo: dict[tuple[int, int], Any],
    ) -> str:
        """An era whose instances stand for ``era``'s and likely match the session.

        The first record's instance is checked against its stored checksum: when
        another era gives it, and the template keeps the same instances under both
        eras (:func:`same_instances`), that era's instances are built instead, and
        ``era``'s only if the checksums pick it. Otherwise ``era``.
        """
        for job in template.instantiate(records[:1], era, self.strict, memo):
            stored = self.doc.jobs.get(job.id)
            if stored is None or job.checksum_for(era) == stored:
                return era
            for other in reversed(ERAS):
                if (other != era and job.checksum_for(other) == stored
                        and same_instances(template, era, other)):
                    return other
        return era

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

    def solve(self) -> tuple[list[Any], list[str]]:
        """The run list (mandatory jobs first, then the desired ones) via the solver.

        Returns the jobs and their ids; call after :meth:`job_lists` (unknown ids).
        """
        wanted = (self.doc.mandatory_job_list or []) + self.doc.desired_job_list
        run_list = solve_run_list(self.jobs, list(dict.fromkeys(wanted)))
        for problem in run_list.problems:
            logger.debug("run list: %s", problem.message)
        for job_id, error in run_list.broken_requires.items():
            logger.warning("job %s has a broken requires program: %s", job_id, error)
        return [self.jobs[job_id] for job_id in run_list], run_list

    def retained_ids(self, run_ids: list[str]) -> set[str]:
        """Ids kept by the discard step: run list, ``jobs`` map, defined rejected jobs."""
        retain = set(run_ids)
        retain.update(self.doc.jobs)
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
        run_list, run_ids = run.solve()
        discarded = ResumeDiscardQualifier(run.retained_ids(run_ids)).discarded_ids(run.jobs)
        for job_id in discarded:
            del run.jobs[job_id]
            del run.states[job_id]
            run.resource_map.pop(job_id, None)
        state.job_list = list(run.jobs.values())
        state.job_state_map = run.states
        state.unit_list = run.index.kept_units(run.unit_list, run.jobs)
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
