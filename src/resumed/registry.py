"""The session registry: what the daemon publishes, kept in step with the disk (SPEC §2-§5).

:meth:`Registry.scan` peeks every session root (metadata only) and reports what
was added, removed, changed or discarded; :meth:`Registry.resume_one` fully
resumes one dormant session (and settles its interrupted job, SPEC §3). Both
are called from a worker thread while the main loop reads the lists, so all
state sits behind one lock, which is never held during a peek, a resume or a
write. Every value in a record is D-Bus-safe already (:mod:`resumed.values`).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resumed import settle, storage, values
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.session.envelope import paused_gc, unpack_envelope
from resumed.session.errors import SessionResumeError
from resumed.session.model import SessionMetaData, SessionState
from resumed.session.peek import SessionPeekHelper, quick_peek
from resumed.session.resume import SessionResumeHelper
from resumed.statefile import PeekIndex, StateStore

if TYPE_CHECKING:
    from resumed.providers.loader import ProviderSet

_log = logging.getLogger(__name__)

DORMANT_FLAGS = frozenset({"incomplete", "setting_up"})

#: One ``GetJobResults`` entry, compact: the arguments of :func:`values.job_result_dict`.
CompactResult = tuple[object, object, object, object, object]

#: ``resume(job_list, location, max_session_bytes, data) -> SessionState``.
ResumeFunction = Callable[[list[Any], Path, int, bytes], SessionState]


def resume_with_helper(
    job_list: list[Any], location: Path, max_bytes: int, data: bytes
) -> SessionState:
    """Resume ``data`` with :class:`resumed.session.resume.SessionResumeHelper`."""
    helper = SessionResumeHelper(job_list, location=str(location), max_session_bytes=max_bytes)
    return helper.resume(data)


class RegistryError(Exception):
    """Base class of the errors :meth:`Registry.job_results` raises."""


class NoSuchSessionError(RegistryError):
    """No listed session has this id."""


class NotResumedError(RegistryError):
    """The session is listed but not ``resumed`` (it is ``pending`` or ``complete``)."""


class NoSuchJobError(RegistryError):
    """The resumed session has no job with this id."""


@dataclass
class SessionRecord:
    """A listed session as published on the bus (every value D-Bus-safe)."""

    id: str
    location: str
    state: str
    title: str = ""
    app_id: str = ""
    flags: list[str] = field(default_factory=list)
    format_version: int = 0
    running_job: str = ""
    last_job_start_time: float = 0.0
    remaining_todo_jobs: bool = True
    interrupted_job_outcome: str = ""
    settle_error: str = ""
    desired_jobs: list[str] = field(default_factory=list)
    mandatory_jobs: list[str] = field(default_factory=list)
    run_list: list[str] = field(default_factory=list)
    discarded_jobs: list[str] = field(default_factory=list)
    job_count: int = 0
    done_count: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)


@dataclass
class DiscardRecord:
    """A session that is not published, with the reason (SPEC §2)."""

    id: str
    reason: str
    message: str
    location: str
    job_ids: list[str] = field(default_factory=list)


@dataclass
class Change:
    """One change to publish.

    ``added``/``updated``: ``record`` is the new :class:`SessionRecord`.
    ``removed``: ``record`` is the last :class:`SessionRecord` (a session object
    goes away) or a :class:`DiscardRecord` (a discard-list entry goes away).
    ``discarded``: ``record`` is the new :class:`DiscardRecord` (a session that
    was listed is first reported ``removed``).
    """

    kind: str
    session_id: str
    record: SessionRecord | DiscardRecord | None


@dataclass
class _Resumed:
    """What a full resume adds to a record, plus each job's result history (compact).

    Job ids and outcomes are interned: the sessions of one machine share them.
    """

    desired: list[str]
    mandatory: list[str]
    run_list: list[str]
    discarded: list[str]
    job_count: int
    done_count: int
    outcomes: dict[str, str]
    results: dict[str, tuple[CompactResult, ...]]


@dataclass
class _Entry:
    """One session directory as the registry knows it."""

    candidate: storage.Candidate
    file: storage.SessionFile
    meta: SessionMetaData | None
    discard: DiscardRecord | None = None
    resumed: _Resumed | None = None
    settle_error: str = ""
    needs_resume: bool = False
    #: Whether ``meta`` came from the start-up :func:`quick_peek`: the next scan peeks fully.
    provisional: bool = False
    settle_retry: bool = False
    #: Whether the discard came from a full resume (so new providers may fix it).
    resume_failed: bool = False
    generation: int = 0
    #: The published record, built once: (settled outcome it was built with, record).
    cached: tuple[str | None, SessionRecord] | None = None
    #: The registry's settle count when ``cached`` was last checked (see ``Registry._record``).
    cached_settles: int = -1

    @property
    def dormant(self) -> bool:
        """Whether the flags say ``incomplete`` or ``setting_up`` (SPEC §2)."""
        return self.meta is not None and bool(self.meta.flags & DORMANT_FLAGS)


@dataclass
class _Observation:
    """What reading (and peeking or resuming) one session directory gave."""

    candidate: storage.Candidate
    file: storage.SessionFile | None = None
    meta: SessionMetaData | None = None
    error: storage.StorageError | SessionResumeError | None = None
    unchanged: bool = False
    #: Whether ``meta`` came from :func:`quick_peek` (to be confirmed by a full peek).
    provisional: bool = False


@dataclass
class _ResumeDone:
    """A successful full resume (and settle attempt) of one session."""

    file: storage.SessionFile
    meta: SessionMetaData
    resumed: _Resumed
    settle_error: str
    settle_retry: bool


def _interned(items: Iterable[object]) -> list[str]:
    return [sys.intern(item) for item in values.clean_str_list(items)]


def _resumed_info(state: SessionState) -> _Resumed:
    results: dict[str, tuple[CompactResult, ...]] = {}
    outcomes: dict[str, str] = {}
    intern = sys.intern
    for job_id, job_state in state.job_state_map.items():
        history = job_state.result_history
        key = intern(values.clean_str(job_id))
        results[key] = tuple(
            (None if r.outcome is None else intern(str(r.outcome)), r.comments, r.return_code,
             r.execution_duration, r.io_log_records)
            for r in history
        )
        if history:
            outcomes[key] = intern(values.clean_str(history[-1].outcome))
    run_ids = [job.id for job in state.run_list]
    done = sum(1 for job_id in run_ids if job_id in state.job_state_map
               and state.job_state_map[job_id].result_history)
    return _Resumed(
        desired=_interned(job.id for job in state.desired_job_list),
        mandatory=_interned(job.id for job in state.mandatory_job_list),
        run_list=_interned(run_ids),
        discarded=_interned(state.discarded_job_ids),
        job_count=values.clean_uint32(len(run_ids)),
        done_count=values.clean_uint32(done),
        outcomes=outcomes,
        results=results,
    )


def _discard(candidate: storage.Candidate, reason: str, message: str,
             job_ids: Iterable[str] = ()) -> DiscardRecord:
    return DiscardRecord(
        id=values.clean_str(candidate.session_id),
        reason=reason,
        message=values.clean_str(message),
        location=values.clean_str(str(candidate.directory)),
        job_ids=values.clean_str_list(job_ids),
    )


class Registry:
    """Listed and discarded sessions, their resume and settle (thread-safe)."""

    def __init__(
        self,
        config: Config,
        providers: ProviderSet,
        boot: BootInfo,
        resume: ResumeFunction = resume_with_helper,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Start empty; ``resume`` and ``environ`` (the kill seam) are injectable for tests."""
        self._lock = threading.RLock()
        self._config = config
        self._providers = providers
        self._boot = boot
        self._resume = resume
        self._checkpoint = settle.kill_checkpoint(environ if environ is not None else {})
        self._trusted = storage.trusted_uids(config.trusted_owners)
        self._state = StateStore(config.state_dir)
        self._peeks = PeekIndex(config.state_dir)
        self._entries: dict[str, _Entry] = {}
        self._duplicates: dict[str, tuple[storage.Candidate, DiscardRecord]] = {}
        self._scan_complete = False
        #: Settles recorded so far: a cached record is checked again only after one.
        self._settles = 0

    # -- configuration ------------------------------------------------------

    @property
    def scan_complete(self) -> bool:
        """Whether the last :meth:`scan` saw every root (it may stop at its deadline)."""
        with self._lock:
            return self._scan_complete

    def set_config(self, config: Config) -> None:
        """Use a reloaded config from the next scan on (roots, limits, owners, settle)."""
        with self._lock:
            self._config = config
            self._trusted = storage.trusted_uids(config.trusted_owners)

    def set_providers(self, providers: ProviderSet) -> list[Change]:
        """Use new providers: every dormant session is queued for a fresh resume.

        Resumed sessions stay published as they are until :meth:`resume_one`
        re-validates them (a changed job then moves them to the discard list as
        ``incompatible-job``); sessions discarded by a resume are retried. The
        changes come from :meth:`resume_one`, so this returns ``[]``.
        """
        with self._lock:
            self._providers = providers
            for entry in self._entries.values():
                if entry.dormant and (entry.discard is None or entry.resume_failed):
                    entry.needs_resume = True
        return []

    # -- queries ------------------------------------------------------------

    def _record(self, entry: _Entry) -> SessionRecord:
        """The published record of ``entry`` (built once; treat it as read-only).

        Its settled outcome only changes when a settle is recorded, so listing
        100,000 sessions does not look each one up in the state store again.
        """
        if entry.cached is not None and entry.cached_settles == self._settles:
            return entry.cached[1]
        settled = self._settled_outcome(entry)
        if entry.cached is None or entry.cached[0] != settled:
            entry.cached = (settled, self._build_record(entry, settled))
        entry.cached_settles = self._settles
        return entry.cached[1]

    def _build_record(self, entry: _Entry, settled: str | None) -> SessionRecord:
        meta = entry.meta
        assert meta is not None
        assert entry.discard is None
        resumed = entry.resumed if entry.dormant else None
        state = "resumed" if resumed is not None else "pending" if entry.dormant else "complete"
        record = SessionRecord(
            id=values.clean_str(entry.candidate.session_id),
            location=values.clean_str(str(entry.candidate.directory)),
            state=state,
            title=values.clean_str(meta.title),
            app_id=values.clean_str(meta.app_id),
            flags=sorted(values.clean_str_list(meta.flags)),
            format_version=values.clean_uint32(meta.format_version),
            running_job=values.clean_str(meta.running_job_name),
            last_job_start_time=values.clean_float(meta.last_job_start_time),
            remaining_todo_jobs=values.clean_bool(meta.remaining_todo_jobs),
            interrupted_job_outcome=values.clean_str(settled),
            settle_error=values.clean_str(entry.settle_error),
        )
        if resumed is not None:
            record = replace(
                record,
                desired_jobs=resumed.desired,
                mandatory_jobs=resumed.mandatory,
                run_list=resumed.run_list,
                discarded_jobs=resumed.discarded,
                job_count=resumed.job_count,
                done_count=resumed.done_count,
                outcomes=resumed.outcomes,
            )
        return record

    def _interruption(self, entry: _Entry) -> settle.Interruption | None:
        meta = entry.meta
        if meta is None or not meta.running_job_name:
            return None
        return settle.Interruption(
            entry.candidate.session_id, meta.running_job_name, meta.last_job_start_time
        )

    def _settled_outcome(self, entry: _Entry) -> str | None:
        interruption = self._interruption(entry)
        return None if interruption is None else self._state.settled_outcome(interruption)

    def _listed(self) -> list[_Entry]:
        entries = [e for e in self._entries.values() if e.discard is None]
        return sorted(entries, key=lambda e: (-e.file.stamp.mtime_ns, e.candidate.session_id))

    def list_sessions(self) -> list[SessionRecord]:
        """Listed sessions, newest first (mtime of ``session``)."""
        with self._lock:
            return [self._record(e) for e in self._listed()]

    def list_discarded(self) -> list[DiscardRecord]:
        """The discard list: failed sessions, then duplicate ids."""
        with self._lock:
            failed = [e.discard for e in self._entries.values() if e.discard is not None]
            duplicates = [record for _, record in self._duplicates.values()]
            return [replace(d) for d in failed + duplicates]

    def get(self, session_id: str) -> SessionRecord | None:
        """The listed session ``session_id``, or ``None``."""
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry.discard is not None:
                return None
            return self._record(entry)

    def pending_ids(self) -> list[str]:
        """Sessions waiting for a full resume (or a settle retry), newest first."""
        with self._lock:
            return [
                e.candidate.session_id for e in self._listed_or_failed() if e.needs_resume
            ]

    def _listed_or_failed(self) -> list[_Entry]:
        return sorted(
            self._entries.values(),
            key=lambda e: (-e.file.stamp.mtime_ns, e.candidate.session_id),
        )

    def job_results(self, session_id: str, job_id: str) -> list[dict[str, object]]:
        """The result history of ``job_id``, oldest first (``GetJobResults`` entries)."""
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or entry.discard is not None:
                raise NoSuchSessionError(f"no session {session_id!r}")
            if entry.resumed is None or not entry.dormant:
                raise NotResumedError(f"session {session_id!r} is not resumed")
            history = entry.resumed.results.get(job_id)
            if history is None:
                raise NoSuchJobError(f"session {session_id!r} has no job {job_id!r}")
        return [values.job_result_dict(*result) for result in history]

    def persist(self) -> None:
        """Save the daemon state (before sleep and at stop); logs failures."""
        with self._lock:
            try:
                self._state.save()
            except OSError as error:
                _log.warning("cannot save state %s: %s", self._state.path, error)

    # -- scanning -----------------------------------------------------------

    def _observe(self, candidate: storage.Candidate, known: storage.FileStamp | None,
                 max_bytes: int, quick: bool = False) -> _Observation | None:
        """Read and peek one session; ``known``: the stamp of the version already listed.

        A session not listed yet whose file version is in the peek index (a
        previous run of the daemon peeked it) is not read or peeked again.
        ``quick``: try :func:`quick_peek` first; its answer is provisional and
        stays out of the peek index.
        """
        path = candidate.session_path
        indexed = None
        if known is None:
            with self._lock:
                indexed = self._peeks.get(path)
        try:
            sfile = storage.read_session(
                candidate, max_bytes, known if indexed is None else indexed[0])
        except storage.StorageError as error:
            return _Observation(candidate, error=error)
        if sfile is None:
            return None
        if sfile.data is None:
            if indexed is not None:
                return _Observation(candidate, file=sfile, meta=indexed[1])
            return _Observation(candidate, file=sfile, unchanged=True)
        if quick and (meta := quick_peek(sfile.data, max_bytes)) is not None:
            return _Observation(candidate, file=replace(sfile, data=None), meta=meta,
                                provisional=True)
        started = time.time()
        try:
            meta = SessionPeekHelper(max_bytes).peek(sfile.data)
        except SessionResumeError as error:
            return _Observation(candidate, file=replace(sfile, data=None), error=error)
        with self._lock:
            self._peeks.put(path, sfile.stamp, meta, started)
        return _Observation(candidate, file=replace(sfile, data=None), meta=meta)

    def _save_peeks(self, complete: bool) -> None:
        """Save the peek index (a cache: failures are logged only)."""
        with self._lock:
            if complete:
                self._peeks.forget_except(
                    {str(e.candidate.session_path)
                     for e in self._entries.values()})
            try:
                self._peeks.save()
            except OSError as error:
                _log.warning("cannot save the peek index %s: %s", self._peeks.path, error)

    def scan(self, deadline: float | None = None,
             stop: Callable[[], bool] | None = None, quick: bool = False) -> list[Change]:
        """Peek every root and return the changes; stops early past ``deadline`` (monotonic).

        ``quick`` (the start-up scan before READY=1): sessions not in the peek
        index are peeked with :func:`quick_peek` where it can. What it lists is
        provisional: the next scan reads and peeks those sessions fully, and a
        session whose file turns out to be broken then moves to the discard list.

        It also stops early, between two sessions, once ``stop()`` is true (the
        daemon is stopping). After an early stop :attr:`scan_complete` is
        ``False`` and nothing unseen is removed. Settles that failed are queued
        again (``pending_ids``).

        The garbage collector is paused for the whole scan, records and state
        file included: with 100,000 sessions each full collection walks
        millions of objects while holding the interpreter (over a second, in
        which the main loop answers nothing). What the scan leaves is long-lived
        (entries, records), so it is frozen out of the collector's way before
        the collector runs again (``gc.freeze``; refcounting still frees it):
        otherwise the first collection after the scan walks all of it at once.
        """
        with paused_gc():
            changes = self._scan(deadline, stop, quick)
            gc.freeze()
        return changes

    def _scan(self, deadline: float | None, stop: Callable[[], bool] | None,
              quick: bool) -> list[Change]:
        with self._lock:
            roots = self._config.session_roots
            max_bytes = self._config.max_session_bytes
            known = {sid: e.file.stamp for sid, e in self._entries.items() if not e.provisional}
        candidates, duplicates = storage.discover(roots)
        observations: list[_Observation] = []
        complete = True
        for candidate in candidates:
            if ((deadline is not None and time.monotonic() > deadline)
                    or (stop is not None and stop())):
                complete = False
                break
            entry_stamp = known.get(candidate.session_id)
            observation = self._observe(candidate, entry_stamp, max_bytes, quick)
            if observation is not None:
                observations.append(observation)
        with self._lock:
            changes = self._apply_scan(observations, complete)
            changes += self._apply_duplicates(duplicates, complete)
            self._scan_complete = complete
            if complete:
                self._state.forget_except(
                    {str(path) for e in self._entries.values()
                     for path in (e.candidate.session_path, e.candidate.next_path)}
                )
            for entry in self._entries.values():
                if entry.settle_retry:
                    entry.settle_retry = False
                    entry.needs_resume = True
        self.persist()
        self._save_peeks(complete)
        return changes

    def rescan_paths(self, paths: Iterable[Path]) -> list[Change]:
        """Re-peek only the sessions under ``paths`` (filesystem events).

        A path below a root names one entry of it (``<root>/<entry>/...``); a root
        or a directory above one stands for every session of that root. The
        cost is proportional to the sessions named, not to the sessions listed.
        """
        with self._lock:
            roots = self._config.session_roots
            max_bytes = self._config.max_session_bytes
        names, whole = _touched(roots, paths)
        candidates, duplicates = storage.discover_some(roots, names, whole)

        def touched(candidate: storage.Candidate) -> bool:
            return candidate.root in whole or candidate.name in names

        with paused_gc():
            observations = []
            for candidate in candidates:
                with self._lock:
                    entry = self._entries.get(candidate.session_id)
                    known = None if entry is None else entry.file.stamp
                observation = self._observe(candidate, known, max_bytes)
                if observation is not None:
                    observations.append(observation)
            with self._lock:
                changes = self._apply_scan(observations, True, scope=touched)
                changes += self._apply_duplicates(duplicates, True, scope=touched)
            self.persist()
            self._save_peeks(False)
        return changes

    def _apply_scan(
        self,
        observations: list[_Observation],
        complete: bool,
        scope: Callable[[storage.Candidate], bool] | None = None,
    ) -> list[Change]:
        changes: list[Change] = []
        present = set()
        for observation in observations:
            present.add(observation.candidate.session_id)
            changes += self._apply_observation(observation)
        if not complete:
            return changes
        for sid in list(self._entries):
            entry = self._entries[sid]
            if sid in present:
                continue
            if scope is not None and not scope(entry.candidate):
                continue
            changes += self._drop(sid)
        return changes

    def _drop(self, sid: str) -> list[Change]:
        entry = self._entries.pop(sid)
        if entry.discard is not None:
            return [Change("removed", sid, replace(entry.discard))]
        return [Change("removed", sid, self._record(entry))]

    def _apply_observation(self, obs: _Observation) -> list[Change]:
        sid = obs.candidate.session_id
        old = self._entries.get(sid)
        if obs.unchanged and old is not None:
            return []
        assert obs.file is not None or obs.error is not None
        before = None
        if old is not None and old.discard is None:
            before = self._record(old)
        if obs.file is None or obs.meta is None:
            assert obs.error is not None
            error = obs.error
            job_ids = getattr(error, "job_ids", ())
            message = getattr(error, "message", str(error))
            discard = _discard(obs.candidate, error.reason, message, job_ids)
            file = obs.file or (old.file if old is not None else _missing_file(obs.candidate))
            entry = _Entry(obs.candidate, file, None, discard=discard)
            return self._replace_entry(sid, old, entry, before)
        self._first_seen(obs.file)
        entry = _Entry(obs.candidate, obs.file, obs.meta, provisional=obs.provisional)
        entry.needs_resume = entry.dormant
        if old is not None and old.dormant and entry.dormant and old.discard is None:
            # Keep publishing the previous resume until the new one finishes.
            entry.resumed = old.resumed
            entry.settle_error = old.settle_error
        return self._replace_entry(sid, old, entry, before)

    def _replace_entry(self, sid: str, old: _Entry | None, entry: _Entry,
                       before: SessionRecord | None) -> list[Change]:
        entry.generation = (old.generation + 1) if old is not None else 0
        self._entries[sid] = entry
        if entry.discard is not None:
            if old is not None and old.discard == entry.discard:
                return []
            removed = [Change("removed", sid, before)] if before is not None else []
            return [*removed, Change("discarded", sid, replace(entry.discard))]
        after = self._record(entry)
        if before is None:
            return [Change("added", sid, after)]
        return [] if before == after else [Change("updated", sid, after)]

    def _apply_duplicates(
        self, duplicates: list[storage.Duplicate], complete: bool,
        scope: Callable[[storage.Candidate], bool] | None = None,
    ) -> list[Change]:
        """Take the duplicates found; ``complete``: those not found (in ``scope``) are gone."""
        changes: list[Change] = []
        fresh = {}
        for dup in duplicates:
            key = str(dup.candidate.directory)
            fresh[key] = (dup.candidate, _discard(
                dup.candidate, "duplicate-id",
                f"session id {dup.candidate.session_id!r} is already at {dup.winner.directory}",
            ))
            if key not in self._duplicates:
                changes.append(Change("discarded", dup.candidate.session_id,
                                      replace(fresh[key][1])))
        if complete:
            for key, (candidate, record) in list(self._duplicates.items()):
                if key not in fresh and (scope is None or scope(candidate)):
                    changes.append(Change("removed", record.id, replace(record)))
                    del self._duplicates[key]
        self._duplicates.update(fresh)
        return changes

    def _first_seen(self, sfile: storage.SessionFile) -> str:
        path = sfile.candidate.session_path
        return self._state.first_seen_boot(path, sfile.stamp, self._boot.boot_id)

    def _previous_boot(self, stamp: storage.FileStamp, path: Path) -> bool:
        if stamp.mtime_ns / 1e9 < self._boot.boot_time:
            return True
        return self._state.first_seen_boot(path, stamp, self._boot.boot_id) != self._boot.boot_id

    def _begin_write(self, next_path: Path) -> None:
        try:
            self._state.begin_write(next_path)
        except OSError as error:
            raise settle.SettleError(f"cannot save state {self._state.path}: {error}") from error

    # -- full resume ----------------------------------------------------------

    def resume_one(self, session_id: str) -> list[Change]:
        """Fully resume (and settle, SPEC §3) one pending session; never raises for its problems."""
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or not entry.needs_resume:
                return []
            candidate = entry.candidate
            generation = entry.generation
            config = self._config
            units = self._providers.units
            peeked = (entry.file.stamp, entry.meta) if entry.meta is not None else None
        try:
            with paused_gc():
                outcome = self._resume_candidate(candidate, config, units, peeked)
        except Exception as error:  # noqa: BLE001 - one bad session never stops the daemon
            _log.exception("internal error while resuming %s", candidate.directory)
            outcome = _Observation(candidate, error=SessionResumeError(f"internal error: {error}"))
        with self._lock:
            current = self._entries.get(session_id)
            if current is None or current.generation != generation:
                return []  # changed meanwhile: the newer version is resumed next
            return self._apply_resume(current, outcome)

    def _resume_candidate(
        self, candidate: storage.Candidate, config: Config, units: list[Any],
        peeked: tuple[storage.FileStamp, SessionMetaData] | None = None,
    ) -> _Observation | _ResumeDone:
        """Read, peek (unless ``peeked`` has this file version), resume and settle."""
        try:
            sfile = storage.read_session(candidate, config.max_session_bytes)
        except storage.StorageError as error:
            return _Observation(candidate, error=error)
        if sfile is None or sfile.data is None:
            return _Observation(candidate)
        data = sfile.data
        bare = replace(sfile, data=None)
        if peeked is not None and peeked[0] == sfile.stamp:
            meta = peeked[1]
        else:
            try:
                meta = SessionPeekHelper(config.max_session_bytes).peek(data)
            except SessionResumeError as error:
                return _Observation(candidate, file=bare, error=error)
        if not meta.flags & DORMANT_FLAGS:
            return _Observation(candidate, file=bare, meta=meta)
        try:
            state = self._resume(units, candidate.directory, config.max_session_bytes, data)
        except SessionResumeError as error:
            return _Observation(candidate, file=bare, meta=meta, error=error)
        settle_error, retry = "", False
        if config.settle:
            try:
                sfile, state = self._settle(sfile, meta, state, units, config)
            except settle.SettleError as error:
                _log.warning("cannot settle session %s: %s", candidate.session_id, error)
                settle_error, retry = str(error), True
        return _ResumeDone(
            replace(sfile, data=None), meta, _resumed_info(state), settle_error, retry
        )

    def _settle(
        self, sfile: storage.SessionFile, meta: SessionMetaData, state: SessionState,
        units: list[Any], config: Config,
    ) -> tuple[storage.SessionFile, SessionState]:
        """Settle the interrupted job when SPEC §3's conditions hold; returns the new file/state."""
        job_id = meta.running_job_name
        candidate = sfile.candidate
        session_path = candidate.session_path
        next_path = candidate.next_path
        with self._lock:
            # A settle this daemon began and did not finish (it was killed) counts as
            # "previous boot": the content check then repairs the record.
            if (
                not job_id
                or job_id not in state.job_state_map
                or not sfile.trusted(self._trusted)
                or not (
                    self._previous_boot(sfile.stamp, session_path)
                    or self._state.was_writing(next_path)
                )
            ):
                return sfile, state
            interruption = settle.Interruption(
                candidate.session_id, job_id, meta.last_job_start_time
            )
            if self._state.settled_outcome(interruption) is not None:
                return sfile, state
            # A session.next is a leftover when it predates this boot, or when this
            # daemon was writing it and died (it is restarted within the same boot).
            next_is_leftover = sfile.next_stamp is not None and (
                self._previous_boot(sfile.next_stamp, next_path)
                or self._state.was_writing(next_path)
            )
        if sfile.next_stamp is not None:
            if not next_is_leftover:
                raise settle.SettleError(
                    f"{candidate.directory}/{storage.NEXT_FILE} exists (someone may be writing);"
                    " retrying at the next scan"
                )
            try:
                storage.move_leftover_next(candidate, config.state_dir, config.max_session_bytes)
            except storage.StorageError as error:
                raise settle.SettleError(str(error)) from error
        assert sfile.data is not None
        doc = unpack_envelope(sfile.data, config.max_session_bytes)
        job = state.job_state_map[job_id].job

        def record(outcome: str) -> None:
            with self._lock:
                self._settles += 1
                try:
                    self._state.record_settle(interruption, self._boot.boot_id, outcome)
                except OSError as error:
                    # The content check records it at the next resume.
                    _log.warning("cannot save state %s: %s", self._state.path, error)

        with self._lock:
            self._begin_write(next_path)
        try:
            result = settle.settle_session(
                sfile, doc, job_id, getattr(job, "plugin", None),
                getattr(job, "flags", frozenset()),
                state_dir=config.state_dir,
                max_bytes=config.max_session_bytes,
                verify=lambda data: self._resume(
                    units, candidate.directory, config.max_session_bytes, data
                ),
                record=record,
                checkpoint=self._checkpoint,
            )
        finally:
            with self._lock:
                try:
                    self._state.end_write(next_path)
                except OSError as error:
                    _log.warning("cannot save state %s: %s", self._state.path, error)
        if result.data is None or result.verified is None:
            return sfile, state
        try:
            fresh = storage.read_session(candidate, config.max_session_bytes)
        except storage.StorageError as error:
            _log.warning("cannot re-read settled session %s: %s", candidate.directory, error)
            fresh = None
        if fresh is not None:
            with self._lock:
                self._first_seen(fresh)
            sfile = fresh
        return sfile, result.verified

    def _apply_resume(
        self, entry: _Entry,
        outcome: _Observation | _ResumeDone,
    ) -> list[Change]:
        sid = entry.candidate.session_id
        before = self._record(entry) if entry.discard is None else None
        if isinstance(outcome, _Observation):
            if outcome.file is None and outcome.error is None:
                return self._drop(sid)  # the session vanished
            changes = self._replace_entry(sid, entry, _entry_from(outcome, entry), before)
            new = self._entries[sid]
            new.resume_failed = new.discard is not None and new.meta is not None
            return changes
        self._first_seen(outcome.file)
        new = _Entry(entry.candidate, outcome.file, outcome.meta, resumed=outcome.resumed,
                     settle_error=outcome.settle_error, settle_retry=outcome.settle_retry)
        return self._replace_entry(sid, entry, new, before)


def _touched(roots: Iterable[Path], paths: Iterable[Path]) -> tuple[set[str], set[Path]]:
    """The root entry names ``paths`` lie in, and the roots they stand for whole."""
    names: set[str] = set()
    whole: set[Path] = set()
    for path in map(Path, paths):
        for root in roots:
            if path == root or root.is_relative_to(path):
                whole.add(root)
            elif path.is_relative_to(root):
                names.add(path.relative_to(root).parts[0])
    return names, whole


def _entry_from(obs: _Observation, old: _Entry) -> _Entry:
    file = obs.file or old.file
    if obs.error is not None:
        error = obs.error
        discard = _discard(obs.candidate, error.reason, getattr(error, "message", str(error)),
                           getattr(error, "job_ids", ()))
        return _Entry(obs.candidate, file, obs.meta, discard=discard)
    return _Entry(obs.candidate, file, obs.meta)


def _missing_file(candidate: storage.Candidate) -> storage.SessionFile:
    """A placeholder for a session whose file could not be read at all."""
    return storage.SessionFile(
        candidate=candidate,
        stamp=storage.FileStamp(0, 0, 0, 0, 0),
        uid=-1, gid=-1, mode=0, dir_uid=-1, dir_ino=0, next_stamp=None, data=None,
    )
