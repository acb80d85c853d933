"""Peek: the metadata of a session, for listing, without parsing results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resumed.session.envelope import pack_envelope
from resumed.session.errors import CorruptedSessionError, IncompatibleSessionError
from resumed.session.formats import VERSIONS
from resumed.session.peek import SessionPeekHelper, SessionPeekHelper7, SessionPeekHelper11

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
MANIFESTS = sorted(SAMPLES.glob("*/*.manifest.json"))


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_peek_of_every_sample_gives_its_manifest_metadata(manifest_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text())
    blob = (SAMPLES / manifest["session_file"]).read_bytes()
    meta = SessionPeekHelper().peek(blob)
    expected = manifest["metadata"]
    version = VERSIONS[manifest["format_version"]]
    assert meta.format_version == manifest["format_version"]
    assert meta.title == expected["title"]
    assert sorted(meta.flags) == expected["flags"]
    assert meta.running_job_name == expected["running_job_name"]
    for key in (
        "app_id",
        "custom_joblist",
        "rejected_jobs",
        "last_job_start_time",
        "remaining_todo_jobs",
    ):
        assert getattr(meta, key) == (expected[key] if version.has(key) else None), key
    if version.has("app_blob"):
        assert json.loads(meta.app_blob or b"") == expected["app_blob_json"]


def test_peek_lists_a_session_whose_results_are_broken(make_doc: Any) -> None:
    doc = make_doc(11, results={"ns::x": None}, jobs=7)
    assert SessionPeekHelper().peek(pack_envelope(doc)).title == "t"


def test_peek_rejects_broken_metadata(make_doc: Any) -> None:
    doc = make_doc(11)
    doc["session"]["metadata"]["flags"] = None
    with pytest.raises(CorruptedSessionError):
        SessionPeekHelper().peek(pack_envelope(doc))


def test_peek_of_truncated_blob_is_corrupted_not_eof_error(make_doc: Any) -> None:
    with pytest.raises(CorruptedSessionError):
        SessionPeekHelper().peek(pack_envelope(make_doc(11))[:-4])


def test_version_specific_peek_helper_rejects_other_versions(make_doc: Any) -> None:
    blob = pack_envelope(make_doc(11))
    assert SessionPeekHelper11().peek(blob).format_version == 11
    with pytest.raises(IncompatibleSessionError):
        SessionPeekHelper7().peek(blob)
