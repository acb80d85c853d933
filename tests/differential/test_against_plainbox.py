"""Our resume against PlainBox 1.18.1's own, on the same session files.

Sessions come from PlainBox itself: the Checkbox 1.18.1 samples, and sessions
that the tests build in PlainBox (SessionState + SessionSuspendHelper1..7, in
the checkbox-ng 1.18.1 venv). Both sides resume the same file against the same
provider directory. Where PlainBox succeeds the two must agree; where it
rejects with a typed error we reject with the same class, except where current
Checkbox (and SPEC §1) accepts; where it leaks a raw exception, we raise a
typed one.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SAMPLES_1181 = Path(__file__).resolve().parents[1] / "data" / "samples" / "checkbox-1.18.1"
SYNTH = "com.example.synth::synth/"
REL = "com.example.rel::rel/"
TYPED = {
    "CorruptedSessionError",
    "IncompatibleSessionError",
    "IncompatibleJobError",
    "BrokenReferenceToExternalFile",
}


def line_records(text: str, stream: str = "stdout") -> list[list[Any]]:
    """One io-log record per line, as PlainBox's runner writes them."""
    return [[0.01 * i, stream, line] for i, line in enumerate(text.splitlines(keepends=True))]


def reboot_spec(version: int) -> dict[str, Any]:
    """A run interrupted by a reboot: resource on disk, generated jobs, a re-run."""
    devices = "name: dev00000\ncategory: AUDIO\n\nname: dev00001\ncategory: NET\n"
    return {
        "version": version,
        "results": [
            [SYNTH + "devices", {"outcome": "pass", "return_code": 0,
                                 "execution_duration": 0.5,
                                 "io_log": line_records(devices), "disk": True}],
            [SYNTH + "device-check-dev00000", {"outcome": "fail", "return_code": 1,
                                               "execution_duration": 2.0,
                                               "io_log": line_records("boom\n", "stderr")}],
            [SYNTH + "device-check-dev00000", {"outcome": "fail", "return_code": 1,
                                               "execution_duration": 2.25,
                                               "comments": "re-run", "disk": True,
                                               "io_log": line_records("boom\nagain\n")}],
            [SYNTH + "attach-dmesg", {"outcome": "pass", "return_code": 0,
                                      "execution_duration": 0.125,
                                      "io_log": line_records("[0.0] hello\n")}],
            [SYNTH + "manual-audio", {"outcome": "skip", "comments": "no headphones"}],
        ],
        "desired": [SYNTH + "devices", SYNTH + "device-check-dev00000",
                    SYNTH + "device-check-dev00001", SYNTH + "attach-dmesg",
                    SYNTH + "manual-audio", SYNTH + "reboot"],
        "metadata": {"title": "reboot run", "flags": ["incomplete"],
                     "running_job_name": SYNTH + "reboot", "app_id": "checkbox-cli",
                     "app_blob": '{"testplan_id": "x"}',
                     "last_job_start_time": 1764300000.25},
    }


def relations_spec(version: int) -> dict[str, Any]:
    """Mandatory, depends, after and requires relations; some jobs still to run."""
    return {
        "version": version,
        "results": [
            [REL + "setup", {"outcome": "pass", "return_code": 0, "execution_duration": 0.25}],
            [REL + "info", {"outcome": "pass", "return_code": 0, "execution_duration": 0.5,
                            "io_log": line_records("arch: amd64\n")}],
            [REL + "base", {"outcome": "pass", "return_code": 0, "execution_duration": 1.0,
                            "disk": True, "io_log": line_records("ok\n")}],
            [REL + "manual", {"outcome": "fail", "comments": "flicker"}],
        ],
        "mandatory": [REL + "setup"],
        "desired": [REL + "needs-base", REL + "after-base", REL + "needs-amd64", REL + "manual"],
        "metadata": {"title": "relations", "flags": ["incomplete"],
                     "running_job_name": REL + "needs-base", "app_id": "checkbox-cli",
                     "app_blob": "", "last_job_start_time": 1764300001.5},
    }


# name -> (spec, the provider it runs against)
SCENARIOS = {"reboot": (reboot_spec, "synth"), "relations": (relations_spec, "rel")}


def comparable(result: dict[str, Any], plainbox: bool = False) -> dict[str, Any]:
    """The part of an inspect object that PlainBox can express, order-free where SPEC says so.

    PlainBox's resume prepends the mandatory jobs to a stored desired list that
    already starts with them, so its in-memory list names them twice (v6+);
    ours is the stored list. ``plainbox=True`` drops those repeats.
    """
    if not result["ok"]:
        return {"ok": False, "error": result["error"]}
    keys = ("format_version", "session_id", "metadata", "jobs", "results",
            "desired_job_list", "mandatory_job_list")
    out = {key: result[key] for key in keys}
    if plainbox:
        out["desired_job_list"] = list(dict.fromkeys(out["desired_job_list"]))
    out["ok"] = True
    out["run_list"] = sorted(result["run_list"])
    out["discarded_jobs"] = sorted(result["discarded_jobs"])
    return out


def read_doc(session_dir: Path) -> dict[str, Any]:
    """The JSON document inside a session blob."""
    doc: dict[str, Any] = json.loads(gzip.decompress((session_dir / "session").read_bytes()))
    return doc


def write_doc(session_dir: Path, doc: Any) -> None:
    """Write ``doc`` with PlainBox's envelope rules (gzip of compact sorted JSON)."""
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    (session_dir / "session").write_bytes(gzip.compress(text.encode("UTF-8")))


@pytest.mark.parametrize("version", range(1, 8))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_session_written_by_plainbox_resumes_as_in_plainbox(
    plainbox: Any, ours: Any, provider_dirs: dict[str, Path], tmp_path: Path,
    scenario: str, version: int,
) -> None:
    """A session PlainBox 1.18.1 suspended resumes to the same state in both."""
    make_spec, provider = SCENARIOS[scenario]
    dirs = [provider_dirs[provider]]
    session = plainbox.make_session(make_spec(version), tmp_path / "run.session", dirs)
    theirs = plainbox.inspect(session, dirs)
    assert theirs["ok"], theirs
    assert comparable(ours(session, dirs)) == comparable(theirs, plainbox=True)


@pytest.mark.parametrize("version", range(5, 8))
def test_checkbox_sample_resumes_as_in_plainbox(
    plainbox: Any, ours: Any, synth: list[Path], version: int
) -> None:
    """The Checkbox 1.18.1 samples with relative io-log paths agree in both."""
    session = SAMPLES_1181 / f"small-v{version}.session"
    theirs = plainbox.inspect(session, synth)
    assert theirs["ok"], theirs
    assert comparable(ours(session, synth)) == comparable(theirs, plainbox=True)


@pytest.mark.parametrize("version", range(1, 5))
def test_moved_checkbox_sample_resumes_where_plainbox_crashes(
    plainbox: Any, ours: Any, synth: list[Path], version: int
) -> None:
    """A moved v1-v4 sample (absolute io-log paths) is a raw FileNotFoundError in PlainBox."""
    session = SAMPLES_1181 / f"small-v{version}.session"
    theirs = plainbox.inspect(session, synth)
    assert (theirs["ok"], theirs["error"], theirs["typed"]) == (False, "FileNotFoundError", False)
    assert ours(session, synth)["ok"] is True


@pytest.mark.parametrize("version", range(1, 5))
def test_checkbox_sample_with_fixed_paths_resumes_as_in_plainbox(
    plainbox: Any, ours: Any, synth: list[Path], tmp_path: Path, version: int
) -> None:
    """A v1-v4 sample whose absolute io-log paths point at its new place agrees in both."""
    session = tmp_path / f"small-v{version}.session"
    shutil.copytree(SAMPLES_1181 / session.name, session)
    old = f"/var/tmp/checkbox-ng/sessions/{session.name}"
    text = gzip.decompress((session / "session").read_bytes()).decode("UTF-8")
    write_doc(session, json.loads(text.replace(old, str(session))))
    theirs = plainbox.inspect(session, synth)
    assert theirs["ok"], theirs
    assert comparable(ours(session, synth)) == comparable(theirs, plainbox=True)


def test_rejected_jobs_are_kept_where_plainbox_drops_them(
    plainbox: Any, ours: Any, provider_dirs: dict[str, Path], tmp_path: Path
) -> None:
    """1.18.1 discards user-deselected jobs on resume (its bug #1557); we keep them."""
    spec = relations_spec(7)
    spec["metadata"]["rejected_jobs"] = [REL + "unselected"]
    spec["metadata"]["custom_joblist"] = True
    dirs = [provider_dirs["rel"]]
    session = plainbox.make_session(spec, tmp_path / "run.session", dirs)
    theirs, mine = plainbox.inspect(session, dirs), ours(session, dirs)
    assert REL + "unselected" in theirs["discarded_jobs"]
    assert REL + "unselected" not in mine["discarded_jobs"]
    assert REL + "unselected" in mine["jobs"]


Mutation = Callable[[dict[str, Any]], Any]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> Any:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return doc
    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> Any:
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return doc
    return mutate


RES = ("session", "results")
DMESG = SYNTH + "attach-dmesg"
CHECK = SYNTH + "device-check-dev00000"

# name -> mutation of the v7 document; every case where both reject typed, or
# PlainBox leaks a raw exception.
DOC_MUTATIONS: dict[str, Mutation] = {
    "version-99": _set(("version",), 99),
    "version-string": _set(("version",), "7"),
    "version-missing": _delete(("version",)),
    "top-level-list": lambda doc: [doc],
    "session-missing": _delete(("session",)),
    "metadata-not-a-dict": _set(("session", "metadata"), []),
    "results-entry-null": _set((*RES, DMESG), None),
    "result-without-jobs-entry": _delete(("session", "jobs", DMESG)),
    "checksum-changed": _set(("session", "jobs", DMESG), "0" * 64),
    "generated-checksum-changed": _set(("session", "jobs", CHECK), "1" * 64),
    "unknown-job-in-jobs": _set(("session", "jobs", SYNTH + "gone"), "2" * 64),
    "outcome-not-in-enum": _set((*RES, DMESG, 0, "outcome"), "bogus"),
    "duration-is-int": _set((*RES, DMESG, 0, "execution_duration"), 1),
    "return-code-is-float": _set((*RES, DMESG, 0, "return_code"), 0.5),
    "comments-is-int": _set((*RES, DMESG, 0, "comments"), 3),
    "stream-is-stdin": _set((*RES, DMESG, 0, "io_log", 0, 1), "stdin"),
    "record-of-two-items": _set((*RES, DMESG, 0, "io_log", 0), [0.0, "stdout"]),
    "bad-base64-padding": _set((*RES, DMESG, 0, "io_log", 0, 2), "abc"),
    "desired-unknown-job": _set(("session", "desired_job_list"), [SYNTH + "gone"]),
    "desired-not-a-string": _set(("session", "desired_job_list"), [7]),
    "mandatory-unknown-job": _set(("session", "mandatory_job_list"), [SYNTH + "gone"]),
    "app-blob-bad-base64": _set(("session", "metadata", "app_blob"), "a"),
    "resource-result-dropped": _delete((*RES, SYNTH + "devices")),
}

# What 1.18.1 rejects and current Checkbox accepts: SPEC §1 says we accept it.
ACCEPTED_SINCE_1181: dict[str, Mutation] = {
    "int-io-log-delay": _set((*RES, DMESG, 0, "io_log", 0, 0), 0),
    "null-last-job-start-time": _set(("session", "metadata", "last_job_start_time"), None),
    "skipped-dependency-outcome": _set((*RES, DMESG, 0, "outcome"), "skipped-dependency"),
    "custom-joblist-missing": _delete(("session", "metadata", "custom_joblist")),
    "rejected-jobs-missing": _delete(("session", "metadata", "rejected_jobs")),
}


@pytest.fixture(scope="module")
def pristine(
    plainbox: Any, provider_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A v7 session written by PlainBox, to mutate."""
    session = tmp_path_factory.mktemp("v7") / "run.session"
    return plainbox.make_session(reboot_spec(7), session, [provider_dirs["synth"]])


@pytest.fixture
def synth(provider_dirs: dict[str, Path]) -> list[Path]:
    """The provider directories of the sample sessions."""
    return [provider_dirs["synth"]]


def mutated_copy(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine session with its io-log paths pointing at the copy."""
    session = tmp_path / pristine.name
    shutil.copytree(pristine, session)
    return session


@pytest.mark.parametrize("name", sorted(DOC_MUTATIONS))
def test_mutated_session_fails_with_plainbox_class_or_a_typed_one(
    plainbox: Any, ours: Any, synth: list[Path], pristine: Path, tmp_path: Path, name: str
) -> None:
    """Same error class as PlainBox when it is typed; a typed error where PlainBox crashes."""
    session = mutated_copy(pristine, tmp_path)
    write_doc(session, DOC_MUTATIONS[name](copy.deepcopy(read_doc(session))))
    theirs, mine = plainbox.inspect(session, synth), ours(session, synth)
    assert theirs["ok"] is False, theirs
    assert mine["ok"] is False, mine
    if theirs["typed"]:
        assert mine["error"] == theirs["error"], (theirs, mine)
    else:
        assert mine["error"] in TYPED, (theirs, mine)


@pytest.mark.parametrize("name", sorted(ACCEPTED_SINCE_1181))
def test_session_that_1181_rejects_and_current_checkbox_accepts_resumes(
    plainbox: Any, ours: Any, synth: list[Path], pristine: Path, tmp_path: Path, name: str
) -> None:
    """Where only the old reader rejects (a CorruptedSessionError), we resume."""
    session = mutated_copy(pristine, tmp_path)
    write_doc(session, ACCEPTED_SINCE_1181[name](copy.deepcopy(read_doc(session))))
    theirs, mine = plainbox.inspect(session, synth), ours(session, synth)
    assert (theirs["ok"], theirs["error"]) == (False, "CorruptedSessionError")
    assert mine["ok"] is True, mine


BYTE_MUTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated-gzip": lambda data: data[: len(data) // 2],
    "not-gzip": lambda _: b"not a session",
    "empty-gzip-member": lambda _: gzip.compress(b""),
    "trailing-garbage": lambda data: data + b"garbage",
    "flipped-byte": lambda data: data[:40] + bytes([data[40] ^ 0xFF]) + data[41:],
    "bad-crc": lambda data: data[:-8] + bytes([data[-8] ^ 1]) + data[-7:],
    "not-utf8": lambda _: gzip.compress(b'{"version": 7, "x": "\xff"}'),
}


@pytest.mark.parametrize("name", sorted(BYTE_MUTATIONS))
def test_damaged_blob_fails_with_plainbox_class_or_a_typed_one(
    plainbox: Any, ours: Any, synth: list[Path], pristine: Path, tmp_path: Path, name: str
) -> None:
    """Damaged bytes: PlainBox's typed class, or a typed one where PlainBox crashes."""
    session = mutated_copy(pristine, tmp_path)
    blob = session / "session"
    blob.write_bytes(BYTE_MUTATIONS[name](blob.read_bytes()))
    theirs, mine = plainbox.inspect(session, synth), ours(session, synth)
    assert theirs["ok"] is False, (theirs, mine)
    assert mine["ok"] is False, (theirs, mine)
    if theirs["typed"]:
        assert mine["error"] == theirs["error"], (theirs, mine)
    else:
        assert mine["error"] == "CorruptedSessionError", (theirs, mine)


def test_missing_resource_io_log_is_a_broken_reference_where_plainbox_crashes(
    plainbox: Any, ours: Any, synth: list[Path], pristine: Path, tmp_path: Path
) -> None:
    """PlainBox leaks FileNotFoundError; SPEC §1 says BrokenReferenceToExternalFile."""
    session = mutated_copy(pristine, tmp_path)
    (session / "io-logs" / "com.example.synth__synth_devices.record.gz").unlink()
    theirs, mine = plainbox.inspect(session, synth), ours(session, synth)
    assert (theirs["error"], theirs["typed"]) == ("FileNotFoundError", False)
    assert mine["error"] == "BrokenReferenceToExternalFile", mine
