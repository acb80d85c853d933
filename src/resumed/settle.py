"""Settling the interrupted job: the part Checkbox's agent plays after a reboot (SPEC §3).

:func:`plan_settle` decides, on the session's JSON document, what result the job
named by ``running_job_name`` gets; :func:`apply_plan` adds or replaces that one
entry of ``results[<job>]`` and touches nothing else; :func:`settle_session`
backs the old file up, re-encodes the document with the same envelope and
format version (never re-suspending from the in-memory model), writes it
crash-safely and records the settle.

Crash-safety seam for tests: when the environment variable
``RESUMED_TEST_KILL_AT`` names one of these steps, the process sends itself
``SIGKILL`` there:

``before-backup``
    the new document is encoded and verified; nothing is written yet.
``after-backup``
    the old file is copied to ``<state_dir>/backups/<id>/``.
``after-write``
    ``session.next`` holds the new bytes, not yet fsynced.
``after-fsync``
    ``session.next`` is fsynced, not yet renamed.
``after-rename``
    ``session`` holds the new bytes; the directory is not yet fsynced.
``before-record``
    the write is complete; the settle is not yet recorded in the state directory
    (the next run repairs this by the content check).
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from resumed import storage
from resumed.session.envelope import pack_envelope

_log = logging.getLogger(__name__)

KILL_ENV = "RESUMED_TEST_KILL_AT"
KILL_STEPS = (
    "before-backup",
    "after-backup",
    "after-write",
    "after-fsync",
    "after-rename",
    "before-record",
)
RESULT_FILE = "__result"
VALID_OUTCOMES = ("pass", "fail", "skip")
COMMENT_INVALID_OUTCOME = (
    "\n\nJob specified an invalid outcome in the result file, marking it as crashed"
)
# (bandit S105 reads "_PASS" as a password: this is Checkbox's comment, verbatim.)
COMMENT_NORETURN_PASS = (
    "Job rebooted the machine or the Checkbox agent. Resuming the session and marking it"  # noqa: S105
    " as passed because the job has the `noreturn` flag"
)
COMMENT_CRASH = (
    "Job rebooted the machine or the Checkbox agent. Resuming the session and marking it"
    " as crashed."
)

T = TypeVar("T")


class SettleError(Exception):
    """Settling failed; the session file is as it was and the settle is retried later."""


@dataclass(frozen=True)
class Interruption:
    """What makes an interruption unique: it is settled at most once (SPEC §3)."""

    session_id: str
    job_id: str
    last_job_start_time: float | None

    @property
    def key(self) -> str:
        """A stable text key for the state file."""
        return json.dumps([self.session_id, self.job_id, self.last_job_start_time])


@dataclass(frozen=True)
class Plan:
    """The result to record for the interrupted job, and whether it replaces the last one."""

    result: dict[str, Any]
    replace_last: bool

    @property
    def outcome(self) -> str:
        """The outcome recorded (published as ``InterruptedJobOutcome``)."""
        return str(self.result["outcome"])


@dataclass(frozen=True)
class SettleOutcome(Generic[T]):
    """What :func:`settle_session` did: the outcome ("" for none), the new bytes if written."""

    outcome: str
    data: bytes | None = None
    verified: T | None = None


def memory_result(outcome: str, comments: str | None) -> dict[str, Any]:
    """A memory result as Checkbox records it for a settled job."""
    return {
        "comments": comments,
        "execution_duration": None,
        "io_log": [],
        "outcome": outcome,
        "return_code": None,
    }


def result_from_file(raw: bytes | None) -> dict[str, Any] | None:
    """The result that ``session-share/__result`` specifies, or ``None`` if it holds no object."""
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    outcome = value.get("outcome")
    comments = value.get("comments")
    comments = comments if isinstance(comments, str) else None
    if outcome not in VALID_OUTCOMES:
        return memory_result("crash", (comments or "") + COMMENT_INVALID_OUTCOME)
    return memory_result(str(outcome), comments)


def _is_hollow(entry: object) -> bool:
    """PlainBox's hollow result: every value null or empty."""
    return isinstance(entry, dict) and all(v is None or v == [] for v in entry.values())


def _history(doc: Mapping[str, Any], job_id: str) -> list[Any]:
    try:
        results = doc["session"]["results"]
        history = results.get(job_id, [])
    except (KeyError, TypeError, AttributeError) as error:
        raise SettleError("the session document has no results map") from error
    if not isinstance(history, list):
        raise SettleError(f"results of {job_id} are not a list")
    return history


def plan_settle(
    doc: Mapping[str, Any],
    job_id: str,
    plugin: str | None,
    flags: frozenset[str] | set[str],
    result_file: bytes | None,
) -> Plan | None:
    """The result SPEC §3 records for ``job_id``, or ``None`` when nothing is recorded.

    A plan whose result already equals the job's last result means "already
    settled" (:func:`apply_plan` then changes nothing).
    """
    metadata = doc.get("session", {}).get("metadata", {})
    if isinstance(metadata, dict) and metadata.get("remaining_todo_jobs", True) is False:
        return None
    history = _history(doc, job_id)
    override = result_from_file(result_file)
    if override is not None:
        return Plan(override, replace_last=bool(history))
    if plugin != "shell":
        return None
    if "noreturn" in flags:
        expected = memory_result("pass", COMMENT_NORETURN_PASS)
    else:
        expected = memory_result("crash", COMMENT_CRASH)
    if all(_is_hollow(entry) for entry in history):
        # An empty history, or v1-v3's hollow placeholder, which the result replaces.
        return Plan(expected, replace_last=bool(history))
    if history[-1] == expected:
        return Plan(expected, replace_last=True)
    return None


def apply_plan(doc: dict[str, Any], job_id: str, plan: Plan) -> bool:
    """Put ``plan``'s result into ``doc`` in place; ``False`` when it was already there."""
    history = _history(doc, job_id)
    if history and history[-1] == plan.result:
        return False
    if plan.replace_last and history:
        history[-1] = plan.result
    else:
        history.append(plan.result)
    doc["session"]["results"][job_id] = history
    return True


def kill_checkpoint(environ: Mapping[str, str]) -> storage.Checkpoint:
    """The checkpoint that SIGKILLs this process at the step named by ``RESUMED_TEST_KILL_AT``."""
    target = environ.get(KILL_ENV, "")

    def checkpoint(step: str) -> None:
        if step == target:
            _log.warning("%s=%s: killing myself", KILL_ENV, step)
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


def settle_session(
    session: storage.SessionFile,
    doc: dict[str, Any],
    job_id: str,
    plugin: str | None,
    flags: frozenset[str] | set[str],
    *,
    state_dir: Path,
    max_bytes: int,
    verify: Callable[[bytes], T],
    record: Callable[[str], None],
    checkpoint: storage.Checkpoint,
) -> SettleOutcome[T]:
    """Settle ``job_id`` of ``session`` (whose bytes were unpacked into ``doc``).

    ``session.data`` must hold the bytes read. A leftover ``session.next`` (the
    caller decided it predates this boot) must already be moved away.
    ``verify`` resumes the new bytes (raising when they do not resume) and its
    value is returned in ``verified``; ``record(outcome)`` stores the settle in
    the state directory, after the rename, or at once when the document already
    holds the result. Raises :class:`SettleError`; the file is then unchanged.
    """
    if session.data is None:
        raise ValueError("settle_session needs the session bytes")
    try:
        share = storage.read_share_file(session.candidate, RESULT_FILE, max_bytes)
    except storage.StorageError as error:
        _log.warning("ignoring %s: %s", RESULT_FILE, error)
        share = None
    plan = plan_settle(doc, job_id, plugin, flags, share)
    if plan is None:
        return SettleOutcome("")
    if not apply_plan(doc, job_id, plan):
        record(plan.outcome)
        return SettleOutcome(plan.outcome)
    try:
        data = pack_envelope(doc)
    except (UnicodeEncodeError, ValueError, RecursionError) as error:
        # Checkbox's own writer fails the same way (e.g. on a lone surrogate).
        raise SettleError(f"the settled session cannot be re-encoded: {error}") from error
    try:
        verified = verify(data)
    except Exception as error:
        raise SettleError(f"the settled session would not resume: {error}") from error
    sid = session.candidate.session_id
    try:
        checkpoint("before-backup")
        storage.write_backup(state_dir, sid, session.data)
        checkpoint("after-backup")
        storage.atomic_write(session, data, checkpoint)
    except storage.SessionLockedError as error:
        raise SettleError(f"{error}: someone may be writing; retrying at the next scan") from error
    except storage.StorageError as error:
        raise SettleError(str(error)) from error
    checkpoint("before-record")
    record(plan.outcome)
    _log.info("settled %s of session %s as %s", job_id, sid, plan.outcome)
    return SettleOutcome(plan.outcome, data, verified)
