"""Offline inspection of one session: the object ``resumectl inspect --json`` prints.

:func:`inspect_path` reads a session file or ``<id>.session`` directory (never
writing to it), resumes it against the providers found in ``provider_dirs``
and returns SPEC §6's object, or the failure object for a typed error.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from resumed.providers.loader import default_provider_dirs, load_providers
from resumed.session.envelope import DEFAULT_MAX_SESSION_BYTES
from resumed.session.errors import SessionResumeError
from resumed.session.model import JobResult, SessionMetaData, SessionState
from resumed.session.resume import SessionResumeHelper

SESSION_SUFFIX = ".session"
SESSION_FILE = "session"


def session_paths(path: Path) -> tuple[Path, Path, str]:
    """Return (session file, location, session id) for a file or ``<id>.session`` dir."""
    if path.is_dir() and not path.is_symlink():
        name = path.name
        return path / SESSION_FILE, path, name.removesuffix(SESSION_SUFFIX) or name
    parent = path.parent
    if parent.name.endswith(SESSION_SUFFIX) and parent.name != SESSION_SUFFIX:
        return path, parent, parent.name.removesuffix(SESSION_SUFFIX)
    return path, parent, path.name


def read_session_file(path: Path, max_bytes: int) -> bytes:
    """Read a regular session file without following a link; raise ``OSError``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return stream.read(max_bytes + 1)


def _number(value: float | int | None) -> float | int | None:
    """JSON-safe number: NaN and infinities are null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metadata(meta: SessionMetaData) -> dict[str, Any]:
    return {
        "title": meta.title,
        "flags": sorted(meta.flags),
        "running_job_name": meta.running_job_name,
        "app_id": meta.app_id,
        "app_blob": meta.app_blob_text,
        "custom_joblist": meta.custom_joblist,
        "rejected_jobs": meta.rejected_jobs,
        "last_job_start_time": _number(meta.last_job_start_time),
        "remaining_todo_jobs": meta.remaining_todo_jobs,
    }


def _result(result: JobResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "comments": result.comments,
        "return_code": result.return_code,
        "execution_duration": _number(result.execution_duration),
        "io_log_records": result.io_log_records,
    }


def state_to_dict(state: SessionState, session_id: str) -> dict[str, Any]:
    """SPEC §6's success object for a resumed session."""
    return {
        "ok": True,
        "format_version": state.format_version,
        "session_id": session_id,
        "checksum_rules": list(state.checksum_rules),
        "metadata": _metadata(state.metadata),
        "jobs": {job_id: js.checksum for job_id, js in state.job_state_map.items()},
        "results": {
            job_id: [_result(result) for result in js.result_history]
            for job_id, js in state.job_state_map.items()
            if js.result_history
        },
        "desired_job_list": [job.id for job in state.desired_job_list],
        "mandatory_job_list": [job.id for job in state.mandatory_job_list],
        "run_list": [job.id for job in state.run_list],
        "discarded_jobs": list(state.discarded_job_ids),
    }


def failure_dict(
    error: str, reason: str, message: str, job_ids: Sequence[str] = ()
) -> dict[str, Any]:
    """SPEC §6's failure object."""
    return {
        "ok": False,
        "error": error,
        "reason": reason,
        "message": message,
        "job_ids": list(job_ids),
    }


def inspect_path(
    path: Path | str,
    provider_dirs: Sequence[Path | str] | None = None,
    flags: Iterable[str] = (),
    max_session_bytes: int = DEFAULT_MAX_SESSION_BYTES,
) -> dict[str, Any]:
    """Resume the session at ``path`` offline and describe it (SPEC §6).

    ``provider_dirs`` defaults to SPEC §1's list (``$PROVIDERPATH`` or the
    system directories). Never raises for a bad session: failures are returned
    as the failure object (``io-error`` for a file that cannot be read).
    """
    session_file, location, session_id = session_paths(Path(path))
    try:
        data = read_session_file(session_file, max_session_bytes)
    except OSError as exc:
        return failure_dict("OSError", "io-error", f"{session_file}: {exc.strerror or exc}")
    dirs = [Path(d) for d in provider_dirs] if provider_dirs else default_provider_dirs(os.environ)
    units = load_providers(dirs).units
    helper = SessionResumeHelper(units, flags, str(location), max_session_bytes)
    try:
        state = helper.resume(data)
    except SessionResumeError as exc:
        return failure_dict(type(exc).__name__, exc.reason, exc.message, exc.job_ids)
    return state_to_dict(state, session_id)
