"""Settling the interrupted job (SPEC §3), seen through the bus and the session file.

Each test copies a real sample session into the workspace, edits its JSON
document where the rule needs it, starts ``resumed`` on a private bus and
checks what the daemon published and what it left on disk.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from pathlib import Path
from typing import Any

import pytest

from resumed.session.envelope import unpack_envelope

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
#: A time long before this boot (SPEC §3: tests set mtime in 2020).
OLD_MTIME = 1577880000.0
NS = "com.example.synth::"
REBOOT = NS + "synth/reboot"
MANUAL = NS + "synth/manual-audio"
DEVICE_CHECK = NS + "synth/device-check-dev00000"
INVALID_COMMENT = (
    "\n\nJob specified an invalid outcome in the result file, marking it as crashed"
)
CRASH_COMMENT = (
    "Job rebooted the machine or the Checkbox agent. Resuming the session and marking it"
    " as crashed."
)
NORETURN_COMMENT = (
    "Job rebooted the machine or the Checkbox agent. Resuming the session and marking it"
    " as passed because the job has the `noreturn` flag"
)


def memory_result(outcome: str, comments: str | None) -> dict[str, Any]:
    """A memory result as SPEC §3 records it."""
    return {"outcome": outcome, "comments": comments, "return_code": None,
            "execution_duration": None, "io_log": []}


def document(directory: Path) -> dict[str, Any]:
    """The JSON document of ``directory/session``."""
    return unpack_envelope((directory / "session").read_bytes(), 1 << 28)


def session_object(private_bus, session_id: str) -> str:
    """The object path of ``session_id``."""
    return private_bus.call(ROOT, MANAGER, "GetSession", "s", session_id)[0]


def history(private_bus, path: str, job_id: str) -> list[dict[str, tuple[str, Any]]]:
    """GetJobResults as ``{key: (D-Bus type, value)}`` entries."""
    entries = private_bus.call(path, SESSION, "GetJobResults", "s", job_id)[0]
    return [{k: (v["type"], v["data"]) for k, v in entry.items()} for entry in entries]


def settled_entry(outcome: str, comments: str) -> dict[str, tuple[str, Any]]:
    """How a settled memory result looks in GetJobResults (null keys omitted)."""
    return {"outcome": ("s", outcome), "comments": ("s", comments), "io_log_records": ("u", 0)}


def write_result_file(directory: Path, content: str) -> None:
    """Write ``session-share/__result``."""
    share = directory / "session-share"
    share.mkdir(exist_ok=True)
    (share / "__result").write_text(content)


def assert_untouched(directory: Path, before: bytes, state_dir: Path) -> None:
    """The session file is byte-identical, no ``session.next`` and no backup exist."""
    assert (directory / "session").read_bytes() == before
    assert not (directory / "session.next").exists()
    assert not (state_dir / "backups" / directory.name.removesuffix(".session")).exists()


def assert_only_entry_changed(before: dict[str, Any], after: dict[str, Any], job_id: str) -> None:
    """Every key but ``results[job_id]`` is as it was."""
    before = json.loads(json.dumps(before))
    after = json.loads(json.dumps(after))
    before["session"]["results"].pop(job_id, None)
    after["session"]["results"].pop(job_id, None)
    assert after == before


@pytest.mark.parametrize(
    ("content", "outcome", "comments"),
    [
        ('{"outcome": "fail", "comments": "the lid was closed"}', "fail", "the lid was closed"),
        ('{"outcome": "skip"}', "skip", None),
        ('{"outcome": "maybe", "comments": "hm"}', "crash", "hm" + INVALID_COMMENT),
        ('{"outcome": "PASS", "comments": ""}', "crash", INVALID_COMMENT),
    ],
    ids=["fail-with-comments", "skip-no-comments", "invalid-outcome", "upper-case-outcome"],
)
def test_result_file_object_is_the_settled_memory_result(
        private_bus, workspace, start_daemon, content, outcome, comments) -> None:
    directory = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    original = document(directory)
    write_result_file(directory, content)
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == outcome
    assert private_bus.get_property(path, SESSION, "SettleError") == ""
    expected = {"outcome": ("s", outcome), "io_log_records": ("u", 0)}
    if comments is not None:
        expected["comments"] = ("s", comments)
    assert history(private_bus, path, REBOOT) == [expected]
    assert private_bus.get_property(path, SESSION, "Outcomes")[REBOOT] == outcome
    settled = document(directory)
    assert settled["session"]["results"][REBOOT] == [memory_result(outcome, comments)]
    assert settled["version"] == 11
    assert_only_entry_changed(original, settled, REBOOT)


def test_result_file_replaces_the_last_result_of_a_job_that_has_one(
        private_bus, workspace, start_daemon) -> None:
    directory = workspace.add_sample("git", 11)

    def run_manual(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["running_job_name"] = MANUAL

    workspace.edit_session(directory, run_manual, OLD_MTIME)
    write_result_file(directory, '{"outcome": "pass", "comments": "heard it"}')
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
    assert history(private_bus, path, MANUAL) == [settled_entry("pass", "heard it")]
    assert document(directory)["session"]["results"][MANUAL] == [
        memory_result("pass", "heard it")]


@pytest.mark.parametrize("content", ['["not", "an", "object"]', "{broken", ""],
                         ids=["array", "invalid-json", "empty"])
def test_result_file_without_an_object_falls_back_to_the_plugin_rule(
        private_bus, workspace, start_daemon, content) -> None:
    directory = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    write_result_file(directory, content)
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
    assert history(private_bus, path, REBOOT) == [settled_entry("pass", NORETURN_COMMENT)]


def test_running_job_that_is_not_shell_is_not_settled(
        private_bus, workspace, start_daemon) -> None:
    """A manual job without a result was running: nothing is recorded, the file is untouched."""
    directory = workspace.add_sample("git", 11)

    def run_manual(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["running_job_name"] = MANUAL
        del doc["session"]["results"][MANUAL]

    workspace.edit_session(directory, run_manual, OLD_MTIME)
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "State") == "resumed"
    assert private_bus.get_property(path, SESSION, "RunningJob") == MANUAL
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert private_bus.get_property(path, SESSION, "SettleError") == ""
    assert history(private_bus, path, MANUAL) == []
    assert_untouched(directory, before, workspace.state)


def test_running_shell_job_without_noreturn_is_settled_crash(
        private_bus, workspace, start_daemon) -> None:
    directory = workspace.add_sample("git", 11)

    def run_device_check(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["running_job_name"] = DEVICE_CHECK
        del doc["session"]["results"][DEVICE_CHECK]

    edited = workspace.edit_session(directory, run_device_check, OLD_MTIME)
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "crash"
    assert history(private_bus, path, DEVICE_CHECK) == [settled_entry("crash", CRASH_COMMENT)]
    settled = document(directory)
    assert settled["session"]["results"][DEVICE_CHECK] == [memory_result("crash", CRASH_COMMENT)]
    assert_only_entry_changed(edited, settled, DEVICE_CHECK)
    assert len(list((workspace.state / "backups" / "git-v11").iterdir())) == 1


def test_shell_job_that_already_has_a_result_is_not_settled(
        private_bus, workspace, start_daemon) -> None:
    directory = workspace.add_sample("git", 11)

    def run_device_check(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["running_job_name"] = DEVICE_CHECK

    workspace.edit_session(directory, run_device_check, OLD_MTIME)
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert [h["outcome"] for h in history(private_bus, path, DEVICE_CHECK)] == [
        ("s", "fail"), ("s", "fail")]
    assert_untouched(directory, before, workspace.state)


def test_no_remaining_todo_jobs_means_nothing_is_settled(
        private_bus, workspace, start_daemon) -> None:
    directory = workspace.add_sample("git", 11)

    def nothing_left(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["remaining_todo_jobs"] = False

    workspace.edit_session(directory, nothing_left, OLD_MTIME)
    write_result_file(directory, '{"outcome": "fail"}')
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "State") == "resumed"
    assert private_bus.get_property(path, SESSION, "RemainingTodoJobs") is False
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert history(private_bus, path, REBOOT) == []
    assert_untouched(directory, before, workspace.state)


def test_v3_hollow_placeholder_is_replaced_by_the_settled_result(
        private_bus, workspace, start_daemon) -> None:
    directory = workspace.add_sample("git", 3, mtime=OLD_MTIME)
    assert document(directory)["session"]["results"][REBOOT] == [
        {"outcome": None, "comments": None, "return_code": None, "execution_duration": None,
         "io_log": []}]
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v3")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
    assert history(private_bus, path, REBOOT) == [settled_entry("pass", NORETURN_COMMENT)]
    assert document(directory)["session"]["results"][REBOOT] == [
        memory_result("pass", NORETURN_COMMENT)]


@pytest.mark.parametrize("owned", ["file", "directory"])
def test_session_owned_by_an_untrusted_user_is_published_but_not_settled(
        private_bus, workspace, start_daemon, unprivileged_user, owned) -> None:
    directory = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    target = directory / "session" if owned == "file" else directory
    # The file with the test user, the directory with nobody (uid 65534): neither trusted.
    uid = pwd.getpwnam(unprivileged_user).pw_uid if owned == "file" else 65534
    os.chown(target, uid, -1)
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    assert [(r[0], r[2]) for r in private_bus.list_sessions()] == [("git-v11", "resumed")]
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert private_bus.get_property(path, SESSION, "SettleError") == ""
    assert history(private_bus, path, REBOOT) == []
    assert_untouched(directory, before, workspace.state)


def test_session_of_a_trusted_owner_is_settled_and_keeps_its_owner(
        private_bus, workspace, start_daemon, unprivileged_user) -> None:
    directory = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    user = pwd.getpwnam(unprivileged_user)
    os.chown(directory, user.pw_uid, user.pw_gid)
    os.chown(directory / "session", user.pw_uid, user.pw_gid)
    (directory / "session").chmod(0o640)
    workspace.config.write_text(
        f'debounce = 0.2\nrescan_interval = 3600\ntrusted_owners = ["{unprivileged_user}"]\n')
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
    assert history(private_bus, path, REBOOT) == [settled_entry("pass", NORETURN_COMMENT)]
    status = (directory / "session").stat()
    assert (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (
        user.pw_uid, user.pw_gid, 0o640)


def test_session_written_during_this_boot_is_resumed_but_not_settled(
        private_bus, workspace, start_daemon) -> None:
    now = time.time()
    directory = workspace.add_sample("git", 11, mtime=now)
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "State") == "resumed"
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert history(private_bus, path, REBOOT) == []
    assert_untouched(directory, before, workspace.state)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "linked-share-directory"])
def test_result_file_that_is_not_a_regular_file_is_ignored(
        private_bus, workspace, start_daemon, tmp_path, kind) -> None:
    """A link or FIFO planted as ``__result`` is never followed or opened for the result."""
    directory = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "__result").write_text('{"outcome": "fail", "comments": "planted"}')
    if kind == "linked-share-directory":
        (directory / "session-share").symlink_to(elsewhere)
    else:
        (directory / "session-share").mkdir()
        if kind == "symlink":
            (directory / "session-share" / "__result").symlink_to(elsewhere / "__result")
        else:
            os.mkfifo(directory / "session-share" / "__result")
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
    assert history(private_bus, path, REBOOT) == [settled_entry("pass", NORETURN_COMMENT)]


def test_settle_that_cannot_be_re_encoded_leaves_the_file_and_shows_settle_error(
        private_bus, workspace, start_daemon) -> None:
    """A lone surrogate (a JSON escape) resumes but cannot be written back, as in Checkbox."""
    directory = workspace.add_sample("git", 11)
    doc = document(directory)
    doc["session"]["results"][MANUAL][0]["comments"] = "lone \udc80"
    text = json.dumps(doc, sort_keys=True)
    assert "\\udc80" in text
    workspace.write_session_text(directory, text, OLD_MTIME)
    before = (directory / "session").read_bytes()
    start_daemon()
    private_bus.wait_state()
    path = session_object(private_bus, "git-v11")
    assert private_bus.get_property(path, SESSION, "State") == "resumed"
    assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == ""
    assert private_bus.get_property(path, SESSION, "SettleError") != ""
    assert history(private_bus, path, REBOOT) == []
    assert_untouched(directory, before, workspace.state)
    assert [r[0] for r in private_bus.list_sessions()] == ["git-v11"]
