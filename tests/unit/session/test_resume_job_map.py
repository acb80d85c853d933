"""The job map resume builds from the providers, session after session.

Resume indexes the provider units once per unit list and reuses that index
for every session: what a session decides (an id defined twice, siblings that
take a provider job's id, which era made the generated jobs) must still come
out as if each resume indexed the units itself.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from resumed.providers.loader import load_providers
from resumed.session.envelope import pack_envelope
from resumed.session.errors import IncompatibleJobError
from resumed.session.model import IOLogRecord, MemoryJobResult, SessionState
from resumed.session.resume import SessionResumeHelper

NS = "com.example.t"
JOB_A = "id: a\nplugin: shell\ncommand: a\n"
PARENT = 'id: p\nplugin: shell\ncommand: p\nsiblings: [{{"id": "a", "command": "{command}"}}]\n'


def q(partial: str) -> str:
    return f"{NS}::{partial}"


def result(outcome: str = "pass", lines: tuple[bytes, ...] = ()) -> dict[str, Any]:
    return {
        "outcome": outcome, "comments": None, "return_code": 0, "execution_duration": 1.0,
        "io_log": [[0.5 * i, "stdout", base64.b64encode(line).decode()]
                   for i, line in enumerate(lines)],
    }


def resume(units: list[Any], doc: dict[str, Any]) -> SessionState:
    return SessionResumeHelper(units).resume(pack_envelope(doc))


def units_of(make_provider: Any, *records: str) -> list[Any]:
    return load_providers([make_provider("\n".join(records))]).units


def p_doc(make_doc: Any, units: list[Any]) -> dict[str, Any]:
    parent = next(u for u in units if u.id == q("p"))
    return make_doc(11, jobs={parent.id: parent.checksum}, results={parent.id: [result()]},
                    desired_job_list=[parent.id])


def test_sibling_taking_an_earlier_provider_jobs_id_with_other_content_is_incompatible(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, JOB_A, PARENT.format(command="other"))
    with pytest.raises(IncompatibleJobError) as info:
        resume(units, p_doc(make_doc, units))
    assert info.value.job_ids == [q("a")]


def test_provider_job_after_a_sibling_with_its_id_and_other_content_keeps_the_sibling(
    make_doc: Any, make_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    units = units_of(make_provider, PARENT.format(command="other"), JOB_A)
    seen: dict[str, Any] = {}

    def early(state: SessionState) -> None:
        seen.update({job_id: js.job for job_id, js in state.job_state_map.items()})

    with caplog.at_level(logging.WARNING):
        state = SessionResumeHelper(units).resume(pack_envelope(p_doc(make_doc, units)), early)
    assert seen[q("a")].data["command"] == "other"
    assert "defined twice with different content" in caplog.text
    assert state.discarded_job_ids == [q("a")]


def test_provider_job_after_a_sibling_with_its_id_and_same_content_replaces_it(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, PARENT.format(command="a"), JOB_A)
    doc = p_doc(make_doc, units)
    doc["session"]["desired_job_list"].append(q("a"))
    state = resume(units, doc)
    provider_a = next(u for u in units if u.id == q("a"))
    assert state.job_state_map[q("a")].job is provider_a
    assert [job.id for job in state.job_list] == [q("p"), q("a")]


def test_each_session_decides_about_an_id_defined_twice(
    make_doc: Any, make_provider: Any
) -> None:
    first = make_provider(JOB_A + "\nid: b\nplugin: shell\ncommand: b\n")
    second = make_provider(JOB_A.replace("command: a", "command: a2"), name="com.example:u")
    units = load_providers([first, second]).units
    b = next(u for u in units if u.id == q("b"))
    plain = make_doc(11, jobs={b.id: b.checksum}, results={}, desired_job_list=[b.id])
    naming_a = make_doc(11, jobs={b.id: b.checksum}, results={}, desired_job_list=[b.id, q("a")])
    assert [j.id for j in resume(units, plain).run_list] == [q("b")]
    with pytest.raises(IncompatibleJobError):
        resume(units, naming_a)
    assert [j.id for j in resume(units, plain).run_list] == [q("b")]


def test_resuming_again_with_the_same_units_gives_the_same_session(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, JOB_A, "id: c\nplugin: shell\ndepends: a\ncommand: c\n")
    sums = {u.id: u.checksum for u in units}
    doc = make_doc(11, jobs=sums, results={q("a"): [result("fail")]}, desired_job_list=[q("c")])
    first, again = resume(units, doc), resume(list(units), doc)
    assert [j.id for j in again.run_list] == [j.id for j in first.run_list] == [q("a"), q("c")]
    assert again.job_state_map[q("a")].result_history == first.job_state_map[q("a")].result_history
    assert again.job_state_map[q("a")] is not first.job_state_map[q("a")]


def test_stored_io_log_decodes_to_the_records_the_session_holds(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, JOB_A)
    lines = (b"one\n", b"two\n", b"\xff binary\n")
    doc = make_doc(11, jobs={q("a"): units[0].checksum}, results={q("a"): [result("pass", lines)]},
                   desired_job_list=[q("a")])
    stored = resume(units, doc).job_state_map[q("a")].result
    assert stored.io_log_records == 3
    by_hand = MemoryJobResult("pass", None, 0, 1.0, tuple(
        IOLogRecord(0.5 * i, "stdout", line) for i, line in enumerate(lines)))
    assert stored == by_hand
    assert hash(stored) == hash(by_hand)
    assert repr(stored) == repr(by_hand)
    assert isinstance(stored, MemoryJobResult)
    assert stored.io_log == by_hand.io_log
    assert all(type(record) is IOLogRecord for record in stored.io_log)


def test_unit_list_keeps_templates_kept_jobs_and_generated_ones_in_order(
    make_doc: Any, make_provider: Any
) -> None:
    text = ("id: res\nplugin: resource\ncommand: r\n\n"
            "unit: template\ntemplate-resource: res\nid: gen-{n}\nplugin: shell\ncommand: g {n}\n\n"
            + JOB_A + "\nid: c\nplugin: shell\ncommand: c\n")
    first = make_provider(text)
    second = make_provider(JOB_A + "\nid: c\nplugin: shell\ncommand: c\n", name="com.example:u")
    units = load_providers([first, second]).units
    sums = {u.id: u.checksum for u in units}
    stdout = (b"n: 1\n", b"\n", b"n: 2\n")
    template = next(u for u in units if u.id == q("gen-{n}"))
    gen_1 = template.instantiate([{"n": "1"}, {"n": "2"}], "suspend-rendered")[0]
    doc = make_doc(11, jobs={q("res"): sums[q("res")], q("a"): sums[q("a")],
                             gen_1.id: gen_1.checksum},
                   results={q("res"): [result("pass", stdout)]},
                   desired_job_list=[q("a"), q("res")])
    state = resume(units, doc)
    assert sorted(state.discarded_job_ids) == [q("c"), q("gen-2")]
    ids = [u.id for u in state.unit_list]
    assert ids == [q("res"), q("gen-{n}"), q("a"), q("a"), q("gen-1")]
    assert state.unit_list[2] is units[2]
    assert state.unit_list[3] is units[4]


TEMPLATE = ("id: res\nplugin: resource\ncommand: r\n\n"
            "unit: template\ntemplate-resource: res\nid: gen-{n}\nplugin: shell\ncommand: g {n}\n")


def generated_session(make_doc: Any, units: list[Any], eras: tuple[str, str]) -> dict[str, Any]:
    template = next(u for u in units if u.id == q("gen-{n}"))
    records = [{"n": "1"}, {"n": "2"}]
    jobs = {q("res"): next(u for u in units if u.id == q("res")).checksum}
    for era, job in zip(eras, template.instantiate(records, "legacy"), strict=True):
        jobs[job.id] = job.checksum_for(era)
    stdout = (b"n: 1\n", b"\n", b"n: 2\n")
    return make_doc(7, jobs=jobs, results={q("res"): [result("pass", stdout)]},
                    desired_job_list=list(jobs), mandatory_job_list=[])


def test_generated_jobs_all_from_1_18_1_resume_under_its_rule(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, TEMPLATE)
    state = resume(units, generated_session(make_doc, units, ("legacy", "legacy")))
    assert state.checksum_rules == ["legacy"]
    assert [j.id for j in state.run_list] == [q("res"), q("gen-1"), q("gen-2")]
    assert all(not j.data.get("template-id") for j in state.run_list[1:])


def test_generated_jobs_of_mixed_eras_name_the_one_that_does_not_match(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, TEMPLATE)
    with pytest.raises(IncompatibleJobError) as info:
        resume(units, generated_session(make_doc, units, ("legacy", "suspend-rendered")))
    assert info.value.job_ids == [q("gen-1")]


def test_generated_jobs_sibling_taking_a_provider_jobs_id_is_incompatible(
    make_doc: Any, make_provider: Any
) -> None:
    units = units_of(make_provider, JOB_A, TEMPLATE + 'siblings: [{{"id": "a"}}]\n')
    with pytest.raises(IncompatibleJobError) as info:
        resume(units, generated_session(make_doc, units, ("legacy", "legacy")))
    assert info.value.job_ids == [q("a")]
