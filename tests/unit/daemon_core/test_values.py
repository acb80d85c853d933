"""D-Bus-safe values (SPEC §5): one hostile session never breaks a reply."""

from __future__ import annotations

import math

from resumed import values


def test_strings_lose_nul_and_lone_surrogates() -> None:
    assert values.clean_str(None) == ""
    assert values.clean_str("a\x00b") == "a\ufffdb"
    assert values.clean_str("x\udcffy") == "x\ufffdy"
    assert values.clean_str("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"


def test_numbers_are_finite_and_clamped() -> None:
    assert values.clean_float(None) == 0.0
    assert values.clean_float(math.nan) == 0.0
    assert values.clean_float(-math.inf) == 0.0
    assert values.clean_float(10**400) == 0.0
    assert values.clean_float(1.5) == 1.5
    assert values.clean_int(2**70) == values.INT64_MAX
    assert values.clean_int(-(2**70)) == values.INT64_MIN
    assert values.clean_uint32(-3) == 0
    assert values.clean_uint32(2**40) == values.UINT32_MAX


def test_lists_and_maps_of_strings_are_cleaned() -> None:
    assert values.clean_str_list(None) == []
    assert values.clean_str_list(["a\x00", None]) == ["a\ufffd", ""]
    assert values.clean_str_dict({"j\udcff": None}) == {"j\ufffd": ""}


def test_absent_remaining_todo_jobs_is_true() -> None:
    assert values.clean_bool(None) is True
    assert values.clean_bool(False) is False


def test_job_result_omits_null_fields() -> None:
    assert values.job_result_dict("pass", None, 0, None, 3) == {
        "outcome": "pass",
        "return_code": 0,
        "io_log_records": 3,
    }
    assert values.job_result_dict(None, "c\x00", None, math.nan, None) == {
        "comments": "c\ufffd",
        "execution_duration": 0.0,
    }
