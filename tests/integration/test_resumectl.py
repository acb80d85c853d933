"""``resumectl`` as a user runs it: the installed executable against a daemon on a private bus.

SPEC §6: human tables by default, ``--json`` with the D-Bus data in snake_case,
exit status 0 done, 1 the daemon answered with an error, 2 usage, 3 the daemon
is not running, 4 access denied; readable messages on stderr, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
UNKNOWN_JOB = "com.example.synth::synth/no-such-job"
#: SPEC §5's Session properties, as ``show --json`` names them.
SHOW_KEYS = {
    "id", "title", "app_id", "flags", "format_version", "state", "location", "running_job",
    "last_job_start_time", "remaining_todo_jobs", "interrupted_job_outcome", "settle_error",
    "desired_jobs", "mandatory_jobs", "run_list", "discarded_jobs", "job_count", "done_count",
    "outcomes",
}


def assert_clean_failure(result, status: int, *needles: str) -> None:
    """``result`` exited ``status`` with a readable one-line-ish message and no traceback."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture
def published(private_bus, workspace, start_daemon) -> dict[str, Path]:
    """A daemon publishing two samples and two discarded sessions (one with job ids)."""
    directories = {
        "git-v11": workspace.add_sample("git", 11),
        "cb118-v5": workspace.add_sample("cb118", 5),
        "unknown": workspace.add_sample("git", 7, session_id="unknown"),
    }

    def add_unknown_job(doc: dict[str, Any]) -> None:
        doc["session"]["desired_job_list"].append(UNKNOWN_JOB)

    workspace.edit_session(directories["unknown"], add_unknown_job, 1.7e9)
    directories["corrupted"] = workspace.add_corrupted().parent
    start_daemon()
    private_bus.wait_state()
    return directories


def test_list_prints_a_table_and_json_of_list_sessions(private_bus, published, resumectl) -> None:
    result = resumectl("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    keys = ("id", "path", "state", "title", "app_id", "running_job")
    assert rows == [dict(zip(keys, row, strict=True)) for row in private_bus.list_sessions()]
    assert {row["id"] for row in rows} == {"git-v11", "cb118-v5"}
    for row in rows:
        assert list(row) == list(keys)
        assert row["state"] == "resumed"
        assert row["running_job"] == "com.example.synth::synth/reboot"
        assert row["app_id"] == "checkbox-cli"
    # --address (and --json) may also come before the command.
    before = resumectl("--address", private_bus.address, "--json", "list", address=None)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == rows
    table = resumectl("list")
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "RUNNING", "JOB", "TITLE"]
    cells = {line.split()[0]: line.split() for line in lines}
    assert set(cells) == {"git-v11", "cb118-v5"}
    for row in cells.values():
        assert row[1:3] == ["resumed", "com.example.synth::synth/reboot"]
        assert row[3].startswith("synthetic-small")


def test_discarded_prints_a_table_and_json_with_reasons_and_job_ids(
        private_bus, published, resumectl) -> None:
    result = resumectl("discarded", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"corrupted", "unknown"}
    for row in rows.values():
        assert list(row) == ["id", "reason", "message", "location", "job_ids"]
        assert row["message"]
    assert rows["corrupted"]["reason"] == "corrupted"
    assert rows["corrupted"]["location"] == str(published["corrupted"])
    assert rows["corrupted"]["job_ids"] == []
    assert rows["unknown"]["reason"] == "unknown-jobs"
    assert rows["unknown"]["location"] == str(published["unknown"])
    assert rows["unknown"]["job_ids"] == [UNKNOWN_JOB]
    bus_rows = {row[0]: row for row in private_bus.list_discarded()}
    for session_id, row in rows.items():
        assert list(row.values()) == bus_rows[session_id]
    table = resumectl("discarded")
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    assert header.split() == ["ID", "REASON", "MESSAGE"]
    cells = {line.split()[0]: line for line in lines}
    assert cells["corrupted"].split()[1] == "corrupted"
    assert cells["unknown"].split()[1] == "unknown-jobs"
    assert UNKNOWN_JOB in cells["unknown"]


def test_show_prints_every_session_property_and_exits_1_for_an_unknown_id(
        private_bus, published, resumectl) -> None:
    result = resumectl("show", "git-v11", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == SHOW_KEYS
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
    properties = private_bus.call(path, "org.freedesktop.DBus.Properties", "GetAll", "s",
                                  SESSION)[0]
    camel = {"".join(part.title() for part in key.split("_")): key for key in SHOW_KEYS}
    assert set(properties) == set(camel)
    for name, value in properties.items():
        assert shown[camel[name]] == value["data"], name
    assert shown["id"] == "git-v11"
    assert shown["location"] == str(published["git-v11"])
    assert shown["format_version"] == 11
    assert shown["last_job_start_time"] == 1764300000.25
    assert shown["remaining_todo_jobs"] is True
    assert shown["job_count"] == 5
    table = resumectl("show", "git-v11")
    assert table.returncode == 0, table.stderr
    lines = dict(line.strip().split(": ", 1) for line in table.stdout.splitlines())
    assert len(lines) == len(SHOW_KEYS)
    assert lines["MandatoryJobs"] == lines["InterruptedJobOutcome"] == "-"
    assert lines["Id"] == "git-v11"
    assert lines["State"] == "resumed"
    assert lines["FormatVersion"] == "11"
    assert lines["RunningJob"] == "com.example.synth::synth/reboot"
    assert lines["Flags"] == "incomplete, strict_template_expansion"
    assert "com.example.synth::synth/devices=pass" in lines["Outcomes"]
    missing = resumectl("show", "no-such-id")
    assert_clean_failure(missing, 1, "NoSuchSession", "no-such-id")
    assert missing.stdout == ""


def test_rescan_is_scheduled_for_root_and_exits_4_for_anyone_else(
        private_bus, published, resumectl, unprivileged_user) -> None:
    result = resumectl("rescan")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Rescan scheduled.\n"
    denied = resumectl("rescan", user=unprivileged_user)
    assert_clean_failure(denied, 4, "ccess denied")
    listed = resumectl("list", "--json", user=unprivileged_user)
    assert listed.returncode == 0, listed.stderr
    private_bus.wait_state()


@pytest.mark.parametrize(
    "argv",
    [(), ("show",), ("list", "--bogus"), ("frobnicate",), ("show", "a", "b")],
    ids=["no-command", "show-without-id", "unknown-option", "unknown-command", "extra-arg"],
)
def test_usage_errors_exit_2(resumectl, argv) -> None:
    result = resumectl(*argv)
    assert_clean_failure(result, 2, "usage:")


@pytest.mark.parametrize("argv", [("list",), ("show", "git-v11"), ("discarded",), ("rescan",),
                                  ("list", "--json")])
def test_no_daemon_on_the_bus_exits_3(private_bus, resumectl, argv) -> None:
    result = resumectl(*argv)
    assert_clean_failure(result, 3, "not running")
    assert result.stdout == ""


def test_dead_bus_address_exits_3(resumectl, tmp_path) -> None:
    result = resumectl("list", address=f"unix:path={tmp_path}/no-bus-here")
    assert_clean_failure(result, 3, "Cannot connect to the bus")
