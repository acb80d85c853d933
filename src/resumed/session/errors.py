"""The error taxonomy of session resume, each error with its discard reason.

Mirrors PlainBox's ``plainbox.impl.session.resume`` classes so that callers who
know PlainBox feel at home; every error carries a stable ``reason`` code (the
discard reason published by the daemon) and, where it applies, the job ids.
"""

from __future__ import annotations

from collections.abc import Iterable


class SessionResumeError(Exception):
    """Base class of every error raised while peeking or resuming a session."""

    #: Stable discard reason code (SPEC §1, §2).
    reason: str = "corrupted"

    def __init__(self, message: str, job_ids: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.job_ids: list[str] = list(job_ids)


class CorruptedSessionError(SessionResumeError):
    """The bytes or the JSON are bad, or they refer to jobs that cannot be found.

    When ``job_ids`` is non-empty the jobs could not be found, and the discard
    reason is ``unknown-jobs`` instead of ``corrupted``.
    """

    @property  # type: ignore[override]
    def reason(self) -> str:
        """``unknown-jobs`` when jobs could not be found, else ``corrupted``."""
        return "unknown-jobs" if self.job_ids else "corrupted"


class IncompatibleSessionError(SessionResumeError):
    """The session's format version is not one this implementation knows."""

    reason = "incompatible-session"


class IncompatibleJobError(SessionResumeError):
    """The definition of a job changed since the session was written."""

    reason = "incompatible-job"


class BrokenReferenceToExternalFile(SessionResumeError):  # noqa: N818 - PlainBox's name
    """An io-log that resume must read cannot be read."""

    reason = "broken-reference"


__all__ = [
    "BrokenReferenceToExternalFile",
    "CorruptedSessionError",
    "IncompatibleJobError",
    "IncompatibleSessionError",
    "SessionResumeError",
]
