"""Writing a session in any format version 1 to 11 (PlainBox's suspend helpers).

One writer driven by the version table of :mod:`resumed.session.formats`;
``SessionSuspendHelper1`` … ``SessionSuspendHelper11`` only pick the version.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from resumed.session.envelope import pack_envelope
from resumed.session.formats import LATEST_VERSION, VERSIONS, FormatVersion
from resumed.session.model import (
    DiskJobResult,
    JobResult,
    MemoryJobResult,
    SessionMetaData,
    SessionState,
)


def _result_repr(
    result: JobResult, version: FormatVersion, session_dir: str | None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "outcome": result.outcome,
        "comments": result.comments,
        "return_code": result.return_code,
        "execution_duration": result.execution_duration,
    }
    if isinstance(result, DiskJobResult):
        name = result.io_log_filename
        if version.has("relative-io-logs") and session_dir is not None:
            name = os.path.relpath(name, session_dir)
        doc["io_log_filename"] = name
    elif isinstance(result, MemoryJobResult):
        doc["io_log"] = [
            [
                record.delay,
                record.stream_name,
                base64.standard_b64encode(record.data).decode("ASCII"),
            ]
            for record in result.io_log
        ]
    return doc


def _metadata_repr(
    meta: SessionMetaData, version: FormatVersion, state: SessionState
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": meta.title,
        "flags": sorted(meta.flags),
        "running_job_name": meta.running_job_name,
    }
    if version.has("app_blob"):
        if meta.app_blob_text is not None:
            doc["app_blob"] = meta.app_blob_text
        elif meta.app_blob is not None:
            doc["app_blob"] = base64.standard_b64encode(meta.app_blob).decode("ASCII")
        else:
            doc["app_blob"] = None
    if version.has("app_id"):
        doc["app_id"] = meta.app_id
    if version.has("custom_joblist"):
        doc["custom_joblist"] = bool(meta.custom_joblist)
        doc["rejected_jobs"] = list(meta.rejected_jobs or [])
    if version.has("last_job_start_time"):
        doc["last_job_start_time"] = meta.last_job_start_time
    if version.has("remaining_todo_jobs"):
        remaining = meta.remaining_todo_jobs
        if remaining is None:
            remaining = any(
                not state.job_state_map[job.id].result_history for job in state.run_list
            )
        doc["remaining_todo_jobs"] = remaining
    return doc


def _listed_job_ids(state: SessionState, version: FormatVersion) -> list[str]:
    """The ids the ``jobs`` map of ``version`` holds, in job-state order."""
    if version.has("every-job-with-current-result") or (
        version.has("setting-up-lists-every-job") and "setting_up" in state.metadata.flags
    ):
        return list(state.job_state_map)
    keep = {job.id for job in state.run_list}
    if version.has("rejected_jobs"):
        keep.update(state.metadata.rejected_jobs or ())
    return [
        job_id
        for job_id, job_state in state.job_state_map.items()
        if job_id in keep or not job_state.result.is_hollow
    ]


class SessionSuspendHelper:
    """Write a :class:`SessionState` in one format version (default: the newest)."""

    VERSION: int = LATEST_VERSION

    def suspend_document(
        self, session_state: SessionState, session_dir: str | None = None
    ) -> dict[str, Any]:
        """Return the JSON document of ``session_state`` in this helper's version.

        With ``session_dir`` (v5+), disk io-log names are written relative to it.
        """
        version = VERSIONS[self.VERSION]
        state = session_state
        jobs = {
            job_id: state.job_state_map[job_id].checksum
            for job_id in _listed_job_ids(state, version)
        }
        results: dict[str, list[dict[str, Any]]] = {}
        for job_id, job_state in state.job_state_map.items():
            if version.has("every-job-with-current-result"):
                results[job_id] = [_result_repr(job_state.result, version, session_dir)]
            elif job_state.result_history:
                results[job_id] = [
                    _result_repr(result, version, session_dir)
                    for result in job_state.result_history
                ]
        session: dict[str, Any] = {
            "jobs": jobs,
            "results": results,
            "desired_job_list": [job.id for job in state.desired_job_list],
            "mandatory_job_list": [job.id for job in state.mandatory_job_list],
            "metadata": _metadata_repr(state.metadata, version, state),
        }
        if version.has("system_information"):
            session["system_information"] = state.system_information
        return {"version": version.number, "session": session}

    def suspend(self, session_state: SessionState, session_dir: str | None = None) -> bytes:
        """Return the session blob (gzip of compact sorted JSON) of ``session_state``."""
        return pack_envelope(self.suspend_document(session_state, session_dir))


class SessionSuspendHelper1(SessionSuspendHelper):
    """Writes format version 1."""

    VERSION = 1


class SessionSuspendHelper2(SessionSuspendHelper):
    """Writes format version 2 (adds ``app_blob``)."""

    VERSION = 2


class SessionSuspendHelper3(SessionSuspendHelper):
    """Writes format version 3 (adds ``app_id``)."""

    VERSION = 3


class SessionSuspendHelper4(SessionSuspendHelper):
    """Writes format version 4 (only relevant jobs, full result histories)."""

    VERSION = 4


class SessionSuspendHelper5(SessionSuspendHelper):
    """Writes format version 5 (io-log names relative to the session dir)."""

    VERSION = 5


class SessionSuspendHelper6(SessionSuspendHelper):
    """Writes format version 6 (mandatory jobs, ``custom_joblist``, ``rejected_jobs``)."""

    VERSION = 6


class SessionSuspendHelper7(SessionSuspendHelper):
    """Writes format version 7 (adds ``last_job_start_time``)."""

    VERSION = 7


class SessionSuspendHelper8(SessionSuspendHelper):
    """Writes format version 8 (adds ``system_information``)."""

    VERSION = 8


class SessionSuspendHelper9(SessionSuspendHelper):
    """Writes format version 9 (same keys as 8)."""

    VERSION = 9


class SessionSuspendHelper10(SessionSuspendHelper):
    """Writes format version 10 (``setting_up`` lists every job)."""

    VERSION = 10


class SessionSuspendHelper11(SessionSuspendHelper):
    """Writes format version 11 (adds ``remaining_todo_jobs``)."""

    VERSION = 11
