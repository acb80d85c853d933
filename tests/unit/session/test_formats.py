"""Format versions 1-11: what each version holds and how every key is validated."""

from __future__ import annotations

import os
from typing import Any

import pytest

from resumed.session.errors import CorruptedSessionError, IncompatibleSessionError
from resumed.session.formats import VERSIONS, read_document, read_metadata, read_version
from resumed.session.model import DiskJobResult, MemoryJobResult

JOB = "ns::job"
GOOD_RESULT: dict[str, Any] = {
    "outcome": "pass",
    "comments": None,
    "return_code": 0,
    "execution_duration": 1.5,
    "io_log": [[0.0, "stdout", "aGk="]],
}


def with_result(make_doc: Any, result: dict[str, Any], version: int = 11) -> dict[str, Any]:
    return make_doc(version, jobs={JOB: "c" * 64}, results={JOB: [result]})


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_minimal_document_of_every_version_is_valid(make_doc: Any, version: int) -> None:
    doc = read_document(make_doc(version))
    assert doc.version.number == version
    assert doc.metadata.flags == {"incomplete"}


@pytest.mark.parametrize(
    ("version", "key", "expected"),
    [
        (1, "app_blob", None),
        (2, "app_id", None),
        (5, "custom_joblist", None),
        (6, "last_job_start_time", None),
        (10, "remaining_todo_jobs", None),
        (11, "remaining_todo_jobs", True),
    ],
)
def test_metadata_keys_absent_from_a_version_are_none(
    make_doc: Any, version: int, key: str, expected: Any
) -> None:
    assert getattr(read_metadata(make_doc(version)), key) == expected


@pytest.mark.parametrize("raw", [0, 12, 99, "7", [7], {"v": 7}, 7.5, float("nan")])
def test_unknown_version_is_incompatible_session(make_doc: Any, raw: Any) -> None:
    doc = make_doc(7)
    doc["version"] = raw
    with pytest.raises(IncompatibleSessionError) as info:
        read_version(doc)
    assert info.value.reason == "incompatible-session"


def test_version_7_0_reads_as_version_7(make_doc: Any) -> None:
    doc = make_doc(7)
    doc["version"] = 7.0
    assert read_version(doc).number == 7


@pytest.mark.parametrize("raw", [None, "missing"])
def test_missing_or_null_version_is_corrupted(make_doc: Any, raw: Any) -> None:
    doc = make_doc(7)
    if raw == "missing":
        del doc["version"]
    else:
        doc["version"] = raw
    with pytest.raises(CorruptedSessionError, match="'version'"):
        read_version(doc)


@pytest.mark.parametrize("top", [[], "x", 3, None])
def test_top_level_not_an_object_is_corrupted(top: Any) -> None:
    with pytest.raises(CorruptedSessionError):
        read_document(top)


@pytest.mark.parametrize(
    "key", ["jobs", "results", "metadata", "desired_job_list", "mandatory_job_list"]
)
def test_missing_session_key_is_corrupted(make_doc: Any, key: str) -> None:
    doc = make_doc(7)
    del doc["session"][key]
    with pytest.raises(CorruptedSessionError, match=f"Missing value for key '{key}'"):
        read_document(doc)


def test_v1_to_v5_never_read_mandatory_job_list(make_doc: Any) -> None:
    doc = make_doc(5)
    del doc["session"]["mandatory_job_list"]
    assert read_document(doc).mandatory_job_list is None


@pytest.mark.parametrize(
    ("version", "key", "value"),
    [
        (1, "title", 3),
        (1, "flags", "incomplete"),
        (1, "flags", [1]),
        (1, "running_job_name", 1),
        (2, "app_blob", "not base64!!="),
        (2, "app_blob", "é"),
        (3, "app_id", []),
        (6, "custom_joblist", "no"),
        (6, "rejected_jobs", None),
        (7, "last_job_start_time", "now"),
        (11, "remaining_todo_jobs", None),
    ],
)
def test_bad_metadata_value_is_corrupted(make_doc: Any, version: int, key: str, value: Any) -> None:
    doc = make_doc(version)
    doc["session"]["metadata"][key] = value
    with pytest.raises(CorruptedSessionError):
        read_metadata(doc)


@pytest.mark.parametrize("key", ["custom_joblist", "rejected_jobs", "last_job_start_time"])
def test_v8_requires_every_metadata_key(make_doc: Any, key: str) -> None:
    doc = make_doc(8)
    del doc["session"]["metadata"][key]
    with pytest.raises(CorruptedSessionError, match=key):
        read_metadata(doc)


def test_v11_requires_remaining_todo_jobs(make_doc: Any) -> None:
    doc = make_doc(11)
    del doc["session"]["metadata"]["remaining_todo_jobs"]
    with pytest.raises(CorruptedSessionError, match="remaining_todo_jobs"):
        read_metadata(doc)


@pytest.mark.parametrize("version", [6, 7])
def test_pre_2019_v6_v7_without_custom_joblist_read_as_false_and_empty(
    make_doc: Any, version: int
) -> None:
    doc = make_doc(version)
    del doc["session"]["metadata"]["custom_joblist"]
    del doc["session"]["metadata"]["rejected_jobs"]
    meta = read_metadata(doc)
    assert (meta.custom_joblist, meta.rejected_jobs) == (False, [])


def test_null_last_job_start_time_is_accepted_like_current_checkbox(make_doc: Any) -> None:
    doc = make_doc(7)
    doc["session"]["metadata"]["last_job_start_time"] = None
    assert read_metadata(doc).last_job_start_time is None


def test_app_blob_text_is_kept_verbatim_and_decoded(make_doc: Any) -> None:
    doc = make_doc(2)
    doc["session"]["metadata"]["app_blob"] = "aGk="
    meta = read_metadata(doc)
    assert (meta.app_blob, meta.app_blob_text) == (b"hi", "aGk=")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("outcome", "exploded"),
        ("outcome", 1),
        ("execution_duration", 2),
        ("return_code", 1.0),
        ("comments", 5),
        ("io_log", None),
        ("io_log", [[0.0, "stdin", "aGk="]]),
        ("io_log", [[0.0, "stdout"]]),
        ("io_log", [[0.0, "stdout", "a"]]),
        ("io_log", [[0.0, "stdout", "é"]]),
        ("io_log", [["abc", "stdout", "aGk="]]),
        ("io_log", [[[1], "stdout", "aGk="]]),
        ("io_log", [[-1, "stdout", "aGk="]]),
        ("io_log", [[10**400, "stdout", "aGk="]]),
        ("io_log_filename", None),
    ],
)
def test_bad_result_field_is_corrupted(make_doc: Any, key: str, value: Any) -> None:
    result = dict(GOOD_RESULT, **{key: value})
    with pytest.raises(CorruptedSessionError):
        read_document(with_result(make_doc, result))


@pytest.mark.parametrize(
    "key", ["outcome", "comments", "return_code", "execution_duration", "io_log"]
)
def test_missing_result_field_is_corrupted(make_doc: Any, key: str) -> None:
    result = dict(GOOD_RESULT)
    del result[key]
    with pytest.raises(CorruptedSessionError, match=key):
        read_document(with_result(make_doc, result))


def test_null_result_history_is_corrupted_not_a_type_error(make_doc: Any) -> None:
    doc = make_doc(11, jobs={JOB: "c" * 64}, results={JOB: None})
    with pytest.raises(CorruptedSessionError):
        read_document(doc)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("outcome", "skipped-dependency"),
        ("outcome", None),
        ("return_code", True),
        ("return_code", -9),
        ("io_log", [[0, "stdout", "aGk="], ["0.5", "stderr", "a G k = "]]),
    ],
)
def test_values_current_checkbox_accepts_are_accepted(make_doc: Any, key: str, value: Any) -> None:
    result = dict(GOOD_RESULT, **{key: value})
    doc = read_document(with_result(make_doc, result))
    assert len(doc.results[JOB]) == 1


def test_int_delay_and_lenient_base64_decode_like_current_checkbox(make_doc: Any) -> None:
    result = dict(GOOD_RESULT, io_log=[[0, "stdout", "aG\nk="]])
    (record,) = read_document(with_result(make_doc, result)).results[JOB][0].io_log  # type: ignore[attr-defined]
    assert record == (0.0, "stdout", b"hi")


def test_relative_io_log_filename_is_joined_with_the_location(make_doc: Any) -> None:
    result = dict(GOOD_RESULT, io_log_filename="io-logs/x.record.gz")
    doc = read_document(with_result(make_doc, result), location="/s/a.session")
    (disk,) = doc.results[JOB]
    assert isinstance(disk, DiskJobResult)
    assert disk.io_log_filename == "/s/a.session/io-logs/x.record.gz"
    assert disk.io_log_records is None


@pytest.mark.parametrize("location", ["/s/a.session", "/s/a.session/", "/", "", "rel/dir"])
@pytest.mark.parametrize("name", ["io-logs/x.record.gz", "", "x", "/abs/x.record.gz", "//x"])
@pytest.mark.parametrize("return_code", [0, True])  # True (a bool) takes the checked path
def test_io_log_filename_is_resolved_like_os_path_join(
    make_doc: Any, location: str, name: str, return_code: Any
) -> None:
    result = {k: v for k, v in GOOD_RESULT.items() if k != "io_log"}
    result.update(io_log_filename=name, return_code=return_code)
    (disk,) = read_document(with_result(make_doc, result), location=location).results[JOB]
    assert isinstance(disk, DiskJobResult)
    assert disk.return_code == return_code
    # PlainBox joins with os.path.join; the reader must give exactly that.
    assert disk.io_log_filename == os.path.join(location, name)  # noqa: PTH118


def test_memory_result_counts_its_records(make_doc: Any) -> None:
    (memory,) = read_document(with_result(make_doc, GOOD_RESULT)).results[JOB]
    assert isinstance(memory, MemoryJobResult)
    assert memory.io_log_records == 1


@pytest.mark.parametrize(
    "info",
    [
        [],
        {"uname": None},
        {"uname": {"success": True, "outputs": {"payload": {}}}},
        {"uname": {"tool_version": "1", "success": False, "outputs": {"stdout": ""}}},
    ],
)
def test_malformed_system_information_is_corrupted(make_doc: Any, info: Any) -> None:
    with pytest.raises(CorruptedSessionError):
        read_document(make_doc(8, system_information=info))


def test_desired_job_ids_must_be_strings(make_doc: Any) -> None:
    with pytest.raises(CorruptedSessionError, match="must be a string"):
        read_document(make_doc(7, desired_job_list=[1]))


def test_unknown_extra_keys_are_ignored(make_doc: Any) -> None:
    doc = make_doc(11, extra={"x": 1})
    doc["session"]["metadata"]["future"] = True
    doc["future"] = []
    assert read_document(doc).version.number == 11
