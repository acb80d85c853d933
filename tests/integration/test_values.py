"""What the daemon publishes for a session, value by value (SPEC §5), against ``inspect``.

``resumectl inspect --json`` resumes the same file offline; the daemon's
Session properties and ``GetJobResults`` must say the same, with SPEC §5's
D-Bus types and null replacements. Hostile values are replaced, never fatal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from resumed.session.envelope import unpack_envelope

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
PROPERTIES = "org.freedesktop.DBus.Properties"
NS = "com.example.synth::"
REBOOT = NS + "synth/reboot"
#: SPEC §5: GetJobResults keys and their D-Bus types.
RESULT_TYPES = {"outcome": "s", "comments": "s", "return_code": "x",
                "execution_duration": "d", "io_log_records": "u"}
INT64_MAX = 2**63 - 1
#: Samples compared with inspect: v1-v3 (hollow placeholder), v5-v6 (no start time), v7+.
SAMPLES = [("git", 1), ("git", 3), ("git", 6), ("git", 7), ("git", 10), ("git", 11),
           ("cb118", 2), ("cb118", 5)]


def inspect(resumectl, workspace, directory: Path) -> dict[str, Any]:
    """``resumectl inspect --json`` of ``directory`` with the workspace's provider."""
    result = resumectl("inspect", "--json", "--provider-dir", str(workspace.provider_dir),
                       str(directory), address=None)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    return report


def properties(private_bus, session_id: str) -> dict[str, tuple[str, Any]]:
    """Every Session property of ``session_id`` as ``{name: (type, value)}``."""
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", session_id)[0]
    values = private_bus.call(path, PROPERTIES, "GetAll", "s", SESSION)[0]
    return {name: (v["type"], v["data"]) for name, v in values.items()}


def job_results(private_bus, session_id: str, job_id: str,
                path: str | None = None) -> list[dict[str, tuple[str, Any]]]:
    """GetJobResults as ``{key: (type, value)}`` entries (``path``: the session's, if known)."""
    path = path or private_bus.call(ROOT, MANAGER, "GetSession", "s", session_id)[0]
    entries = private_bus.call(path, SESSION, "GetJobResults", "s", job_id)[0]
    return [{k: (v["type"], v["data"]) for k, v in entry.items()} for entry in entries]


def gdbus_error(private_bus, path: str, method: str, *args: str) -> str:
    """Call ``method`` with gdbus, expecting a D-Bus error; its stderr."""
    result = private_bus.run(["gdbus", "call", "--address", private_bus.address, "--dest",
                              "org.resumed.Resume1", "--object-path", path, "--method",
                              method, *args], check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


@pytest.fixture
def resumed_samples(private_bus, workspace, start_daemon) -> dict[str, Path]:
    """Every sample of SAMPLES, written during this boot (so none is settled), resumed."""
    now = time.time()
    directories = {}
    for prefix, version in SAMPLES:
        directory = workspace.add_sample(prefix, version, mtime=now)
        directories[directory.name.removesuffix(".session")] = directory
    start_daemon()
    private_bus.wait_state()
    return directories


def test_session_properties_equal_inspect_of_the_same_file(
        private_bus, workspace, resumectl, resumed_samples) -> None:
    for session_id, directory in resumed_samples.items():
        report = inspect(resumectl, workspace, directory)
        meta = report["metadata"]
        shown = properties(private_bus, session_id)
        results = report["results"]
        start = meta["last_job_start_time"]
        expected = {
            "Id": ("s", session_id),
            "Title": ("s", meta["title"] or ""),
            "AppId": ("s", meta["app_id"] or ""),
            "Flags": ("as", meta["flags"]),
            "FormatVersion": ("u", report["format_version"]),
            "State": ("s", "resumed"),
            "Location": ("s", str(directory)),
            "RunningJob": ("s", meta["running_job_name"] or ""),
            "LastJobStartTime": ("d", 0.0 if start is None else start),
            "RemainingTodoJobs": ("b", True if meta["remaining_todo_jobs"] is None
                                  else meta["remaining_todo_jobs"]),
            "InterruptedJobOutcome": ("s", ""),
            "SettleError": ("s", ""),
            "DesiredJobs": ("as", report["desired_job_list"]),
            "MandatoryJobs": ("as", report["mandatory_job_list"]),
            "RunList": ("as", report["run_list"]),
            "DiscardedJobs": ("as", report["discarded_jobs"]),
            "JobCount": ("u", len(report["run_list"])),
            "DoneCount": ("u", len([j for j in report["run_list"] if j in results])),
            "Outcomes": ("a{ss}", {job: entries[-1]["outcome"]
                                   for job, entries in results.items()}),
        }
        assert shown == expected, session_id
        version = report["format_version"]
        assert shown["RemainingTodoJobs"] == ("b", True)
        if version <= 6:
            assert shown["LastJobStartTime"] == ("d", 0.0)
        else:
            assert shown["LastJobStartTime"] == ("d", 1764300000.25)


def test_job_results_have_spec_types_and_equal_inspect(
        private_bus, workspace, resumectl, resumed_samples) -> None:
    for session_id, directory in resumed_samples.items():
        report = inspect(resumectl, workspace, directory)
        path = private_bus.call(ROOT, MANAGER, "GetSession", "s", session_id)[0]
        for job_id in report["jobs"]:
            got = job_results(private_bus, session_id, job_id, path)
            for entry in got:
                assert {key: kind for key, (kind, _value) in entry.items()} == {
                    key: RESULT_TYPES[key] for key in entry}, (session_id, job_id)
            wanted = [{key: value for key, value in result.items() if value is not None}
                      for result in report["results"].get(job_id, [])]
            assert [{k: v for k, (_t, v) in entry.items()} for entry in got] == wanted, (
                session_id, job_id)


def test_job_history_is_oldest_first(private_bus, resumed_samples) -> None:
    got = job_results(private_bus, "git-v11", NS + "synth/device-check-dev00000")
    assert got == [
        {"outcome": ("s", "fail"), "return_code": ("x", 1), "execution_duration": ("d", 29.884)},
        {"outcome": ("s", "fail"), "comments": ("s", "Still failing"), "return_code": ("x", 1),
         "execution_duration": ("d", 13.7599)},
    ]
    assert job_results(private_bus, "git-v11", NS + "synth/manual-audio") == [
        {"outcome": ("s", "skip"), "comments": ("s", "No headphones available"),
         "execution_duration": ("d", 41.3004), "io_log_records": ("u", 0)}]


def test_unknown_job_is_no_such_job_and_a_complete_session_is_not_resumed(
        private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11, mtime=time.time())
    complete = workspace.add_sample("git", 10, session_id="complete")

    def finished(doc: dict[str, Any]) -> None:
        doc["session"]["metadata"]["flags"] = []

    workspace.edit_session(complete, finished, time.time())
    start_daemon()
    private_bus.wait_state()
    states = {row[0]: row[2] for row in private_bus.list_sessions()}
    assert states == {"git-v11": "resumed", "complete": "complete"}
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
    stderr = gdbus_error(private_bus, path, SESSION + ".GetJobResults", NS + "synth/nope")
    assert "org.resumed.Resume1.Error.NoSuchJob" in stderr
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "complete")[0]
    stderr = gdbus_error(private_bus, path, SESSION + ".GetJobResults", REBOOT)
    assert "org.resumed.Resume1.Error.NotResumed" in stderr
    shown = properties(private_bus, "complete")
    assert shown["State"] == ("s", "complete")
    assert shown["Flags"] == ("as", [])
    for name in ("RunList", "DesiredJobs", "DiscardedJobs"):
        assert shown[name] == ("as", []), name
    assert shown["Outcomes"] == ("a{ss}", {})
    assert shown["JobCount"] == shown["DoneCount"] == ("u", 0)


def hostile_text(doc: dict[str, Any]) -> str:
    """The v11 sample's JSON text with hostile values (escapes kept as JSON text)."""
    session = doc["session"]
    session["metadata"]["title"] = "bad\x00title"
    session["metadata"]["app_id"] = "app\ud800id"
    session["metadata"]["last_job_start_time"] = 424242.5
    manual = session["results"][NS + "synth/manual-audio"][0]
    manual["comments"] = "lone \udc80 surrogate"
    dmesg = session["results"][NS + "synth/attach-dmesg"][0]
    dmesg["return_code"] = 2**70
    dmesg["execution_duration"] = 515151.5
    text = json.dumps(doc, sort_keys=True)
    for escape in ("\\udc80", "\\u0000", "\\ud800"):
        assert escape in text
    # JSON has no NaN, but 1e400 is valid JSON text that json.loads reads as inf.
    return text.replace("424242.5", "1e400").replace("515151.5", "-1e400")


def test_hostile_values_are_replaced_and_every_session_still_lists(
        private_bus, workspace, start_daemon, resumectl) -> None:
    now = time.time()
    workspace.add_sample("git", 7, mtime=now)
    hostile = workspace.add_sample("git", 11, session_id="prüfung-1", mtime=now)
    text = hostile_text(unpack_envelope((hostile / "session").read_bytes(), 1 << 28))
    assert json.loads(text)["session"]["metadata"]["last_job_start_time"] == float("inf")
    workspace.write_session_text(hostile, text, now)
    start_daemon()
    private_bus.wait_state()
    rows = {row[0]: row for row in private_bus.list_sessions()}
    assert set(rows) == {"git-v7", "prüfung-1"}
    assert rows["prüfung-1"][1] == ROOT + "/session/pr_c3_bcfung_2d1"
    assert rows["prüfung-1"][2] == "resumed"
    assert rows["prüfung-1"][3] == "bad\ufffdtitle"
    assert rows["prüfung-1"][4] == "app\ufffdid"
    shown = properties(private_bus, "prüfung-1")
    assert shown["Title"] == ("s", "bad\ufffdtitle")
    assert shown["LastJobStartTime"] == ("d", 0.0)
    assert job_results(private_bus, "prüfung-1", NS + "synth/manual-audio")[0]["comments"] == (
        "s", "lone \ufffd surrogate")
    dmesg = job_results(private_bus, "prüfung-1", NS + "synth/attach-dmesg")[0]
    assert dmesg["return_code"] == ("x", INT64_MAX)
    assert dmesg["execution_duration"] == ("d", 0.0)
    listed = resumectl("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {row["id"]: row["title"] for row in json.loads(listed.stdout)}["prüfung-1"] == (
        "bad\ufffdtitle")
    shown_json = resumectl("show", "prüfung-1", "--json")
    assert shown_json.returncode == 0, shown_json.stderr
    assert json.loads(shown_json.stdout)["app_id"] == "app\ufffdid"
