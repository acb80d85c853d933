"""Resume rules and typed errors: what is kept, discarded, matched and refused."""

from __future__ import annotations

import base64
import gzip
import logging
from pathlib import Path
from typing import Any

import pytest

from resumed.providers.checksum import ERAS
from resumed.providers.loader import load_providers
from resumed.providers.siblings import make_siblings
from resumed.session.envelope import pack_envelope
from resumed.session.errors import (
    BrokenReferenceToExternalFile,
    CorruptedSessionError,
    IncompatibleJobError,
    IncompatibleSessionError,
)
from resumed.session.model import SessionState
from resumed.session.resume import (
    ResumeDiscardQualifier,
    SessionResumeHelper,
    SessionResumeHelper6,
    SessionResumeHelper11,
)

NS = "com.example.t"
UNITS = """\
id: res
plugin: resource
command: r

unit: template
template-resource: res
id: gen-{n}
plugin: shell
command: g {n}

id: a
plugin: shell
command: a

id: b
plugin: shell
depends: a
command: b
"""


def q(partial: str, ns: str = NS) -> str:
    return f"{ns}::{partial}"


def result(outcome: str | None = "pass", stdout: bytes = b"") -> dict[str, Any]:
    return {
        "outcome": outcome,
        "comments": None,
        "return_code": 0,
        "execution_duration": 1.0,
        "io_log": [
            [0.0, "stdout", base64.b64encode(line).decode()]
            for line in stdout.splitlines(keepends=True)
        ],
    }


@pytest.fixture
def units(make_provider: Any) -> list[Any]:
    return load_providers([make_provider(UNITS)]).units


def sums(units: list[Any]) -> dict[str, str]:
    return {u.id: u.checksum for u in units}


def resume(
    units: list[Any], doc: dict[str, Any], location: Path | None = None, flags: tuple[str, ...] = ()
) -> SessionState:
    return SessionResumeHelper(units, flags, location).resume(pack_envelope(doc))


def basic(make_doc: Any, units: list[Any], version: int = 11, **extra: Any) -> dict[str, Any]:
    cs = sums(units)
    session: dict[str, Any] = {
        "jobs": {q("a"): cs[q("a")], q("b"): cs[q("b")]},
        "results": {q("a"): [result("pass")]},
        "desired_job_list": [q("b")],
    }
    session.update(extra)
    return make_doc(version, **session)


def test_plain_session_resumes_with_run_list_and_discards_unselected(
    make_doc: Any, units: list[Any]
) -> None:
    state = resume(units, basic(make_doc, units))
    assert [j.id for j in state.run_list] == [q("a"), q("b")]
    assert state.discarded_job_ids == [q("res")]
    assert state.checksum_rules == []
    assert [r.outcome for r in state.job_state_map[q("a")].result_history] == ["pass"]


def test_changed_job_definition_is_incompatible_job_naming_it(
    make_doc: Any, units: list[Any]
) -> None:
    doc = basic(make_doc, units)
    doc["session"]["jobs"][q("b")] = "0" * 64
    with pytest.raises(IncompatibleJobError) as info:
        resume(units, doc)
    assert info.value.job_ids == [q("b")]
    assert info.value.reason == "incompatible-job"


def test_ignore_job_checksums_flag_resumes_a_changed_job(make_doc: Any, units: list[Any]) -> None:
    doc = basic(make_doc, units)
    doc["session"]["jobs"][q("b")] = "0" * 64
    state = resume(units, doc, flags=("ignore-job-checksums",))
    assert q("b") in state.job_state_map


def test_job_the_provider_no_longer_ships_is_unknown_jobs(make_doc: Any, units: list[Any]) -> None:
    doc = basic(make_doc, units)
    doc["session"]["jobs"][q("gone")] = "1" * 64
    with pytest.raises(CorruptedSessionError, match="Unknown jobs remaining") as info:
        resume(units, doc)
    assert (info.value.reason, info.value.job_ids) == ("unknown-jobs", [q("gone")])


def test_result_without_jobs_entry_is_corrupted(make_doc: Any, units: list[Any]) -> None:
    doc = basic(make_doc, units)
    doc["session"]["results"][q("b")] = [result()]
    del doc["session"]["jobs"][q("b")]
    with pytest.raises(CorruptedSessionError) as info:
        resume(units, doc)
    assert info.value.reason == "corrupted"


def test_desired_or_mandatory_id_nobody_defines_is_unknown_jobs(
    make_doc: Any, units: list[Any]
) -> None:
    doc = basic(make_doc, units, mandatory_job_list=[q("nope")])
    with pytest.raises(CorruptedSessionError) as info:
        resume(units, doc)
    assert info.value.job_ids == [q("nope")]


def test_missing_builtin_provider_is_named(make_doc: Any, units: list[Any]) -> None:
    doc = basic(make_doc, units)
    doc["session"]["jobs"]["com.canonical.plainbox::manifest"] = "2" * 64
    with pytest.raises(CorruptedSessionError, match="com.canonical.plainbox:manifest") as info:
        resume(units, doc)
    assert info.value.reason == "unknown-jobs"


def generated_doc(make_doc: Any, units: list[Any], gen_checksum: str, **extra: Any) -> dict:
    cs = sums(units)
    return make_doc(
        11,
        jobs={q("res"): cs[q("res")], q("gen-1"): gen_checksum},
        results={q("res"): [result("pass", b"n: 1\n\nn: 2\n")], q("gen-1"): [result("fail")]},
        desired_job_list=[q("res"), q("gen-1")],
        **extra,
    )


def current_checksum(units: list[Any], make_doc: Any) -> str:
    state = resume(units, generated_doc(make_doc, units, "x" * 64), flags=("ignore-job-checksums",))
    return state.job_state_map[q("gen-1")].checksum


def test_generated_jobs_come_back_from_the_resource_result(make_doc: Any, units: list[Any]) -> None:
    checksum = current_checksum(units, make_doc)
    state = resume(units, generated_doc(make_doc, units, checksum))
    assert state.job_state_map[q("gen-1")].result.outcome == "fail"
    assert q("gen-2") in state.discarded_job_ids
    assert state.checksum_rules == ["template-id"]


def test_generated_job_from_before_2024_matches_the_legacy_rule(
    make_doc: Any, units: list[Any]
) -> None:
    template = next(u for u in units if u.id == q("gen-{n}"))
    legacy = template.instantiate([{"n": "1"}], "legacy")[0].checksum_for("legacy")
    state = resume(units, generated_doc(make_doc, units, legacy))
    assert state.checksum_rules == ["legacy"]
    assert state.job_state_map[q("gen-1")].checksum == legacy


def test_dropped_resource_result_leaves_generated_job_unknown(
    make_doc: Any, units: list[Any]
) -> None:
    doc = generated_doc(make_doc, units, current_checksum(units, make_doc))
    doc["session"]["results"][q("res")] = []
    with pytest.raises(CorruptedSessionError) as info:
        resume(units, doc)
    assert info.value.job_ids == [q("gen-1")]


def disk_doc(make_doc: Any, units: list[Any], name: str, job: str = "res") -> dict[str, Any]:
    cs = sums(units)
    disk = dict(result("pass"), io_log_filename=name)
    del disk["io_log"]
    return make_doc(
        11, jobs={q(job): cs[q(job)]}, results={q(job): [disk]}, desired_job_list=[q(job)]
    )


def test_missing_resource_io_log_is_broken_reference(
    make_doc: Any, units: list[Any], tmp_path: Path
) -> None:
    with pytest.raises(BrokenReferenceToExternalFile) as info:
        resume(units, disk_doc(make_doc, units, "io-logs/res.record.gz"), tmp_path)
    assert info.value.reason == "broken-reference"


def test_relative_resource_io_log_without_location_is_broken_reference(
    make_doc: Any, units: list[Any]
) -> None:
    with pytest.raises(BrokenReferenceToExternalFile):
        resume(units, disk_doc(make_doc, units, "io-logs/res.record.gz"))


def test_missing_io_log_of_plain_job_only_matters_with_file_reference_checks(
    make_doc: Any, units: list[Any], tmp_path: Path
) -> None:
    doc = disk_doc(make_doc, units, "io-logs/a.record.gz", job="a")
    assert resume(units, doc, tmp_path).job_state_map[q("a")].result.outcome == "pass"
    with pytest.raises(BrokenReferenceToExternalFile):
        resume(units, doc, tmp_path, flags=("file-reference-checks",))


def test_rewrite_log_pathnames_relocates_old_cache_paths(
    make_doc: Any, units: list[Any], tmp_path: Path
) -> None:
    (tmp_path / "io-logs").mkdir()
    (tmp_path / "io-logs" / "a.record.gz").write_bytes(gzip.compress(b""))
    old = "/home/u/.cache/plainbox/sessions/x.session/io-logs/a.record.gz"
    doc = disk_doc(make_doc, units, old, job="a")
    flags = ("file-reference-checks", "rewrite-log-pathnames")
    state = resume(units, doc, tmp_path, flags=flags)
    assert state.job_state_map[q("a")].result.io_log_filename == str(  # type: ignore[attr-defined]
        tmp_path / "io-logs" / "a.record.gz"
    )


def test_rejected_job_a_provider_defines_is_kept(make_doc: Any, units: list[Any]) -> None:
    doc = basic(make_doc, units)
    doc["session"]["metadata"]["rejected_jobs"] = [q("res")]
    state = resume(units, doc)
    assert q("res") in state.job_state_map
    assert state.discarded_job_ids == []


def test_rejected_job_listed_in_jobs_but_undefined_is_unknown_jobs(
    make_doc: Any, units: list[Any]
) -> None:
    doc = basic(make_doc, units)
    doc["session"]["metadata"]["rejected_jobs"] = [q("gone")]
    doc["session"]["jobs"][q("gone")] = "3" * 64
    with pytest.raises(CorruptedSessionError) as info:
        resume(units, doc)
    assert (info.value.reason, info.value.job_ids) == ("unknown-jobs", [q("gone")])


def test_rejected_job_neither_listed_nor_defined_is_dropped_with_a_warning(
    make_doc: Any, units: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    doc = basic(make_doc, units)
    doc["session"]["metadata"]["rejected_jobs"] = [q("gone")]
    with caplog.at_level(logging.WARNING):
        state = resume(units, doc)
    assert q("gone") not in state.job_state_map
    assert "gone" in caplog.text


def test_early_callback_return_value_is_the_session_filled_in(
    make_doc: Any, units: list[Any]
) -> None:
    mine = SessionState()
    seen: list[SessionState] = []

    def early(session: SessionState) -> SessionState:
        seen.append(session)
        return mine

    state = SessionResumeHelper(units).resume(pack_envelope(basic(make_doc, units)), early)
    assert state is mine
    assert seen
    assert seen[0] is not mine
    assert [j.id for j in mine.run_list] == [q("a"), q("b")]


def test_version_specific_resume_helper_rejects_other_versions(
    make_doc: Any, units: list[Any]
) -> None:
    blob = pack_envelope(basic(make_doc, units))
    assert SessionResumeHelper11(units).resume(blob).format_version == 11
    with pytest.raises(IncompatibleSessionError):
        SessionResumeHelper6(units).resume(blob)


def test_discard_qualifier_designates_jobs_outside_the_retain_set(units: list[Any]) -> None:
    qualifier = ResumeDiscardQualifier({q("a")})
    assert [u.id for u in units if qualifier.get_simple_match(u)] == [
        q("res"),
        q("gen-{n}"),
        q("b"),
    ]
    by_id = {u.id: u for u in units}
    assert qualifier.discarded_ids(by_id) == [i for i, u in by_id.items()
                                              if qualifier.get_simple_match(u)]


def test_same_job_twice_with_different_content_is_incompatible_job(
    make_doc: Any, make_provider: Any
) -> None:
    make_provider(UNITS)
    providers = make_provider(UNITS.replace("command: a", "command: a2"), name="com.example:u")
    units = load_providers([providers]).units
    with pytest.raises(IncompatibleJobError) as info:
        resume(units, basic(make_doc, units))
    assert info.value.job_ids == [q("a")]


def test_two_providers_and_yaml_units_resume_together(make_doc: Any, make_provider: Any) -> None:
    make_provider(UNITS)
    providers = make_provider(
        {"more.yaml": "id: y\nplugin: shell\ncommand: |\n  echo y\ndepends: [com.example.t::a]\n"},
        namespace="com.example.other",
    )
    units = load_providers([providers]).units
    y = q("y", "com.example.other")
    cs = sums(units)
    doc = make_doc(
        11, jobs={y: cs[y], q("a"): cs[q("a")]}, results={y: [result()]}, desired_job_list=[y]
    )
    state = resume(units, doc)
    assert [j.id for j in state.run_list] == [q("a"), y]


def test_after_suspend_sibling_matches_its_era_and_is_reported(
    make_doc: Any, make_provider: Any
) -> None:
    providers = make_provider(
        "id: s\nplugin: shell\nflags: also-after-suspend\ncommand: s\n\n"
        "id: suspend/suspend_advanced_auto\nplugin: shell\ncommand: zzz\n",
        namespace="com.canonical.certification",
    )
    units = load_providers([providers]).units
    parent = next(u for u in units if u.partial_id == "s")

    sibling = make_siblings(parent, "legacy")[0]
    ns = "com.canonical.certification"
    doc = make_doc(
        11,
        jobs={sibling.id: sibling.checksum_for("legacy")},
        results={sibling.id: [result()]},
        desired_job_list=[sibling.id],
    )
    state = resume(units, doc)
    assert state.checksum_rules == ["legacy"]
    assert [j.id for j in state.run_list] == [
        q("s", ns),
        q("suspend/suspend_advanced_auto", ns),
        sibling.id,
    ]


def test_provider_edited_template_makes_generated_job_incompatible(
    make_doc: Any, units: list[Any], make_provider: Any, tmp_path: Path
) -> None:
    doc = generated_doc(make_doc, units, current_checksum(units, make_doc))
    edited = make_provider(
        UNITS.replace("command: g {n}", "command: g2 {n}"), name="com.example:edited"
    )
    (tmp_path / "providers" / "com.example_t.provider").unlink()
    new_units = load_providers([edited]).units
    with pytest.raises(IncompatibleJobError) as info:
        resume(new_units, doc)
    assert info.value.job_ids == [q("gen-1")]


@pytest.mark.parametrize("era", ERAS)
def test_after_suspend_siblings_written_in_every_era_resume(
    make_doc: Any, make_provider: Any, era: str
) -> None:
    providers = make_provider(
        "id: s\nplugin: shell\nflags: noreturn also-after-suspend-manual\ngroup: g\ncommand: s\n"
        "\nid: suspend/suspend_advanced\nplugin: shell\ncommand: zzz\n",
        namespace="com.canonical.certification",
    )
    units = load_providers([providers]).units
    parent = next(u for u in units if u.partial_id == "s")
    sibling = make_siblings(parent, era)[0]
    stored = sibling.checksum_for(era)
    doc = make_doc(
        11,
        jobs={sibling.id: stored},
        results={sibling.id: [result()]},
        desired_job_list=[sibling.id],
    )
    state = resume(units, doc)
    assert state.job_state_map[sibling.id].checksum == stored
    assert len(state.checksum_rules) == 1
    (rule,) = state.checksum_rules
    assert make_siblings(parent, rule)[0].checksum_for(rule) == stored


def test_instances_only_an_older_era_makes_come_back_in_that_era(
    make_doc: Any, make_provider: Any
) -> None:
    """1.18.1 treats an unknown template engine as `default`; current Checkbox drops them."""
    providers = make_provider(UNITS.replace("id: gen-{n}", "template-engine: custom\nid: gen-{n}"))
    units = load_providers([providers]).units
    template = next(u for u in units if u.id == q("gen-{n}"))
    (legacy,) = template.instantiate([{"n": "1"}], "legacy")
    assert template.instantiate([{"n": "1"}], ERAS[-1]) == []
    doc = generated_doc(make_doc, units, legacy.checksum_for("legacy"))
    doc["session"]["metadata"]["flags"] = ["incomplete"]
    state = resume(units, doc)
    assert state.job_state_map[q("gen-1")].result.outcome == "fail"
    assert state.checksum_rules == ["legacy"]
