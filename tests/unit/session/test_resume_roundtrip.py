"""Suspend then resume gives back the same session, in every format version."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from resumed.providers.loader import load_providers
from resumed.session.envelope import pack_envelope, unpack_envelope
from resumed.session.formats import VERSIONS
from resumed.session.inspect import state_to_dict
from resumed.session.model import DiskJobResult, MemoryJobResult, SessionState
from resumed.session.resume import SessionResumeHelper
from resumed.session.suspend import SessionSuspendHelper

NS = "com.example.t"
UNITS = """\
id: devices
plugin: resource
command: list-devices

unit: template
template-resource: devices
template-filter: devices.kind == 'disk'
id: disk/check-{name}
plugin: shell
command: check {name}

unit: template
template-resource: devices
template-engine: jinja2
id: jinja/{{ name }}
plugin: shell
command: echo {{ name|upper }}

id: first
plugin: shell
command: true

id: second
plugin: shell
depends: first
flags: also-after-suspend
command: true

id: mandatory-one
plugin: shell
command: true

id: rejected-one
plugin: shell
command: true

id: with-siblings
plugin: shell
command: base
siblings: [{"id": "with-siblings-hdmi", "command": "base --hdmi"}]

id: needs-resource
plugin: shell
requires: devices.kind == 'disk'
command: true

id: ordered
plugin: shell
after: first
before: second
command: true

id: never-selected
plugin: shell
command: true
"""
RECORDS = b"name: sda\nkind: disk\n\nname: eth0\nkind: net\n\nname: sdb\nkind: disk\n"


def q(partial: str) -> str:
    return f"{NS}::{partial}"


def memory(outcome: str | None, stdout: bytes = b"", comments: str | None = None) -> dict[str, Any]:
    lines = stdout.splitlines(keepends=True)
    return {
        "outcome": outcome,
        "comments": comments,
        "return_code": 0,
        "execution_duration": 1.0,
        "io_log": [
            [0.1 * i, "stdout", base64.b64encode(line).decode()] for i, line in enumerate(lines)
        ],
    }


@pytest.fixture
def units(make_provider: Any) -> list[Any]:
    return load_providers([make_provider(UNITS)]).units


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    location = tmp_path / "seed.session"
    (location / "io-logs").mkdir(parents=True)
    (location / "io-logs" / "first.record.gz").write_bytes(
        gzip.compress(b'[0.0, "stdout", "b2sK"]\n')
    )
    return location


@pytest.fixture
def seed(make_seed: Any) -> SessionState:
    """A v11 session with generated jobs, siblings, histories, mandatory and rejected jobs."""
    return make_seed()  # type: ignore[no-any-return]


@pytest.fixture
def make_seed(units: list[Any], make_doc: Any, session_dir: Path) -> Any:
    """Build the seed session; without mandatory/rejected jobs for formats lacking them."""
    return lambda modern=True: build_seed(units, make_doc, session_dir, modern)


def build_seed(units: list[Any], make_doc: Any, session_dir: Path, modern: bool) -> SessionState:
    checksums = {u.id: u.checksum for u in units if u.data.get("unit") != "template"}
    plain = ["devices", "first", "second", "ordered", "needs-resource", "with-siblings"]
    doc = make_doc(
        11,
        jobs={q(p): checksums[q(p)] for p in plain},
        results={
            q("devices"): [memory("pass", RECORDS)],
            q("second"): [memory("fail", b"bad\n"), memory("pass", comments="re-run")],
        },
        desired_job_list=[
            q(p)
            for p in (
                "devices",
                "disk/check-sda",
                "disk/check-sdb",
                "jinja/eth0",
                "second",
                "ordered",
                "needs-resource",
                "with-siblings-hdmi",
            )
        ],
        mandatory_job_list=[q("mandatory-one")] if modern else [],
    )
    meta = doc["session"]["metadata"]
    meta.update(
        rejected_jobs=[q("rejected-one")] if modern else [],
        app_blob="eyJ4IjogMX0=",
        running_job_name=q("disk/check-sda"),
        title="seed",
    )
    state = SessionResumeHelper(units, location=session_dir).resume(pack_envelope(doc))
    state.job_state_map[q("first")].result_history.append(
        DiskJobResult("pass", None, 0, 2.5, str(session_dir / "io-logs" / "first.record.gz"))
    )
    state.job_state_map[q("disk/check-sdb")].result_history.append(
        MemoryJobResult("crash", "boom", -9, None)
    )
    return state


def roundtrip(state: SessionState, version: int, units: list[Any], location: Path) -> SessionState:
    helper = type("Helper", (SessionSuspendHelper,), {"VERSION": version})()
    blob = helper.suspend(state, str(location))
    return SessionResumeHelper(units, location=location).resume(blob)


def view(state: SessionState) -> dict[str, Any]:
    return state_to_dict(state, "x")


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_suspend_then_resume_gives_the_same_session(
    make_seed: Any, units: list[Any], session_dir: Path, version: int
) -> None:
    seed = make_seed(VERSIONS[version].has("mandatory_job_list"))
    once = roundtrip(seed, version, units, session_dir)
    twice = roundtrip(once, version, units, session_dir)
    assert view(twice) == view(once)
    assert once.format_version == version


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_each_version_keeps_what_it_stores(
    seed: SessionState, units: list[Any], session_dir: Path, version: int
) -> None:
    features = VERSIONS[version]
    got = view(roundtrip(seed, version, units, session_dir))
    want = view(seed)
    if features.has("result-history"):
        assert got["results"] == want["results"]
    else:
        assert got["results"] == {k: v[-1:] for k, v in want["results"].items()}
    assert got["desired_job_list"] == want["desired_job_list"]
    if features.has("mandatory_job_list"):
        assert got["mandatory_job_list"] == [q("mandatory-one")]
        assert q("mandatory-one") in got["run_list"]
    else:
        assert got["mandatory_job_list"] == []
    rejected_kept = features.has("rejected_jobs") or features.has("every-job-with-current-result")
    assert (q("rejected-one") in got["jobs"]) == rejected_kept
    for job_id, checksum in got["jobs"].items():
        assert want["jobs"].get(job_id, checksum) == checksum
    assert q("never-selected") not in got["jobs"] or not features.has("result-history")
    assert got["metadata"]["app_blob"] == ("eyJ4IjogMX0=" if features.has("app_blob") else None)


def test_seed_session_has_generated_jobs_siblings_and_rules(seed: SessionState) -> None:
    jobs = seed.job_state_map
    assert {q("disk/check-sda"), q("disk/check-sdb"), q("jinja/eth0")} <= set(jobs)
    assert q("disk/check-eth0") not in jobs  # template-filter
    assert q("with-siblings-hdmi") in jobs
    assert q("never-selected") in seed.discarded_job_ids
    assert q("rejected-one") in jobs
    run_list = [job.id for job in seed.run_list]
    assert run_list.index(q("first")) < run_list.index(q("ordered")) < run_list.index(q("second"))
    assert run_list.index(q("devices")) < run_list.index(q("needs-resource"))


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        (1, {"title", "flags", "running_job_name"}),
        (2, {"title", "flags", "running_job_name", "app_blob"}),
        (3, {"title", "flags", "running_job_name", "app_blob", "app_id"}),
        (
            6,
            {
                "title",
                "flags",
                "running_job_name",
                "app_blob",
                "app_id",
                "custom_joblist",
                "rejected_jobs",
            },
        ),
        (
            7,
            {
                "title",
                "flags",
                "running_job_name",
                "app_blob",
                "app_id",
                "custom_joblist",
                "rejected_jobs",
                "last_job_start_time",
            },
        ),
        (
            11,
            {
                "title",
                "flags",
                "running_job_name",
                "app_blob",
                "app_id",
                "custom_joblist",
                "rejected_jobs",
                "last_job_start_time",
                "remaining_todo_jobs",
            },
        ),
    ],
)
def test_each_version_writes_exactly_its_metadata_keys(
    seed: SessionState, version: int, keys: set[str]
) -> None:
    helper = type("Helper", (SessionSuspendHelper,), {"VERSION": version})()
    doc = helper.suspend_document(seed)
    assert set(doc["session"]["metadata"]) == keys
    assert ("system_information" in doc["session"]) == (version >= 8)


def test_v1_to_v3_write_every_job_with_its_current_result_including_hollow(
    seed: SessionState,
) -> None:
    helper = type("Helper", (SessionSuspendHelper,), {"VERSION": 3})()
    session = helper.suspend_document(seed)["session"]
    assert set(session["jobs"]) == set(seed.job_state_map) == set(session["results"])
    assert session["results"][q("ordered")] == [
        {
            "outcome": None,
            "comments": None,
            "return_code": None,
            "execution_duration": None,
            "io_log": [],
        }
    ]
    assert len(session["results"][q("second")]) == 1


def test_v4_writes_only_jobs_with_results_or_on_the_run_list(seed: SessionState) -> None:
    helper = type("Helper", (SessionSuspendHelper,), {"VERSION": 4})()
    session = helper.suspend_document(seed)["session"]
    run_ids = {job.id for job in seed.run_list}
    with_results = {i for i, s in seed.job_state_map.items() if s.result_history}
    assert set(session["jobs"]) == run_ids | with_results
    assert set(session["results"]) == with_results
    assert len(session["results"][q("second")]) == 2


def test_v5_writes_io_log_names_relative_and_v4_absolute(
    seed: SessionState, session_dir: Path
) -> None:
    docs = {
        v: type("H", (SessionSuspendHelper,), {"VERSION": v})().suspend_document(
            seed, str(session_dir)
        )
        for v in (4, 5)
    }
    first = {v: d["session"]["results"][q("first")][0]["io_log_filename"] for v, d in docs.items()}
    assert first[5] == "io-logs/first.record.gz"
    assert first[4] == str(session_dir / "io-logs" / "first.record.gz")


@pytest.mark.parametrize(("version", "all_jobs"), [(9, False), (10, True), (11, True)])
def test_setting_up_lists_every_job_from_v10(
    seed: SessionState, version: int, all_jobs: bool
) -> None:
    seed.metadata.flags = {"setting_up"}
    helper = type("Helper", (SessionSuspendHelper,), {"VERSION": version})()
    jobs = helper.suspend_document(seed)["session"]["jobs"]
    assert (set(jobs) == set(seed.job_state_map)) == all_jobs


def test_suspended_blob_is_gzip_of_sorted_compact_json(seed: SessionState) -> None:
    blob = SessionSuspendHelper().suspend(seed)
    text = gzip.decompress(blob).decode()
    assert text == json.dumps(
        unpack_envelope(blob), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
