"""What settle records for the interrupted job, on the JSON document (SPEC §3)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from resumed import settle
from resumed.session.envelope import unpack_envelope

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "checkbox-git-2026-08"

REBOOT = "com.example.synth::synth/reboot"
AUDIO = "com.example.synth::synth/manual-audio"
NORETURN = frozenset({"noreturn"})


def doc(sample: str = "small-v11") -> dict[str, Any]:
    data = (SAMPLES / f"{sample}.session" / "session").read_bytes()
    value = unpack_envelope(data)
    assert isinstance(value, dict)
    return value


def test_noreturn_shell_job_passes_with_checkboxs_comment() -> None:
    plan = settle.plan_settle(doc(), REBOOT, "shell", NORETURN, None)
    assert plan == settle.Plan(
        {
            "outcome": "pass",
            "comments": "Job rebooted the machine or the Checkbox agent. Resuming the session"
            " and marking it as passed because the job has the `noreturn` flag",
            "return_code": None,
            "execution_duration": None,
            "io_log": [],
        },
        replace_last=False,
    )


def test_other_shell_job_crashes_with_checkboxs_comment() -> None:
    plan = settle.plan_settle(doc(), REBOOT, "shell", frozenset(), None)
    assert plan is not None
    assert plan.outcome == "crash"
    assert plan.result["comments"] == (
        "Job rebooted the machine or the Checkbox agent. Resuming the session and marking it"
        " as crashed."
    )


def test_non_shell_job_without_result_file_gets_nothing() -> None:
    assert settle.plan_settle(doc(), REBOOT, "user-interact", NORETURN, None) is None


def test_shell_job_that_already_has_a_result_gets_nothing() -> None:
    document = doc()
    document["session"]["metadata"]["running_job_name"] = AUDIO
    assert settle.plan_settle(document, AUDIO, "shell", frozenset(), None) is None


def test_nothing_when_no_jobs_remain_to_do() -> None:
    document = doc()
    document["session"]["metadata"]["remaining_todo_jobs"] = False
    assert settle.plan_settle(document, REBOOT, "shell", NORETURN, b'{"outcome": "pass"}') is None


def test_absent_remaining_todo_jobs_means_true() -> None:
    plan = settle.plan_settle(doc("small-v10"), REBOOT, "shell", NORETURN, None)
    assert plan is not None
    assert plan.outcome == "pass"


def test_result_file_overrides_and_replaces_the_last_result() -> None:
    raw = b'{"outcome": "fail", "comments": "from the job", "extra": 1}'
    plan = settle.plan_settle(doc(), AUDIO, "manual", frozenset(), raw)
    assert plan == settle.Plan(settle.memory_result("fail", "from the job"), replace_last=True)
    document = doc()
    assert settle.apply_plan(document, AUDIO, plan)
    assert document["session"]["results"][AUDIO] == [settle.memory_result("fail", "from the job")]


@pytest.mark.parametrize(
    ("raw", "comments"),
    [
        (b'{"outcome": "maybe", "comments": "hm"}', "hm"),
        (b'{"outcome": null}', ""),
        (b"{}", ""),
    ],
)
def test_result_file_with_an_invalid_outcome_crashes(raw: bytes, comments: str) -> None:
    plan = settle.plan_settle(doc(), REBOOT, "shell", NORETURN, raw)
    assert plan is not None
    assert plan.result == settle.memory_result(
        "crash",
        comments + "\n\nJob specified an invalid outcome in the result file, marking it as crashed",
    )


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b"\xff\xfe", b'"pass"'])
def test_result_file_without_an_object_is_ignored(raw: bytes) -> None:
    plan = settle.plan_settle(doc(), REBOOT, "shell", NORETURN, raw)
    assert plan is not None
    assert plan.outcome == "pass"


def test_hollow_placeholder_of_v3_is_replaced() -> None:
    document = doc("small-v3")
    assert document["session"]["results"][REBOOT][0]["outcome"] is None
    plan = settle.plan_settle(document, REBOOT, "shell", NORETURN, None)
    assert plan is not None
    assert plan.replace_last
    assert settle.apply_plan(document, REBOOT, plan)
    assert document["session"]["results"][REBOOT] == [plan.result]


def test_applying_changes_only_that_one_results_entry() -> None:
    before = doc()
    before["session"]["unknown_future_key"] = {"kept": [1, 2.5, None]}
    after = copy.deepcopy(before)
    plan = settle.plan_settle(after, REBOOT, "shell", NORETURN, None)
    assert plan is not None
    assert settle.apply_plan(after, REBOOT, plan)
    assert after["session"]["results"].pop(REBOOT) == [plan.result]
    assert after == before


def test_already_settled_document_is_left_alone() -> None:
    document = doc()
    plan = settle.plan_settle(document, REBOOT, "shell", NORETURN, None)
    assert plan is not None
    settle.apply_plan(document, REBOOT, plan)
    again = settle.plan_settle(document, REBOOT, "shell", NORETURN, None)
    assert again is not None
    assert again.outcome == "pass"
    assert not settle.apply_plan(document, REBOOT, again)


def test_interruption_key_is_stable() -> None:
    key = settle.Interruption("sid", REBOOT, 1764300000.25).key
    assert key == '["sid", "com.example.synth::synth/reboot", 1764300000.25]'
    assert settle.Interruption("sid", REBOOT, None).key.endswith("null]")
