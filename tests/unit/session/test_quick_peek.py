"""The quick start-up peek: the full peek's answer or none, never another one."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumed.session.envelope import dumps_compact, pack_envelope
from resumed.session.errors import SessionResumeError
from resumed.session.model import SessionMetaData
from resumed.session.peek import SessionPeekHelper, quick_peek

from .conftest import SAMPLES

SAMPLE_FILES = sorted(
    SAMPLES / json.loads(p.read_text())["session_file"] for p in SAMPLES.glob("*/*.manifest.json"))


def full_peek(blob: bytes) -> SessionMetaData | None:
    """The full peek's metadata, or None when it fails."""
    try:
        return SessionPeekHelper().peek(blob)
    except SessionResumeError:
        return None


def text_blob(text: str) -> bytes:
    """A session blob holding exactly ``text``."""
    return gzip.compress(text.encode("UTF-8"))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parents[1].name}/{p.parent.name}")
def test_every_checkbox_sample_peeks_quickly_with_the_full_peeks_metadata(path: Path) -> None:
    blob = path.read_bytes()
    quick = quick_peek(blob)
    assert quick is not None
    assert repr(quick) == repr(SessionPeekHelper().peek(blob))


def test_broken_results_peek_quickly_but_the_full_peek_still_rejects_them(make_doc: Any) -> None:
    text = dumps_compact(make_doc(11)).replace('"results":{}', '"results":{]')
    assert quick_peek(text_blob(text)) is not None
    assert full_peek(text_blob(text)) is None


@pytest.mark.parametrize("case", [
    "spaced key with a nested decoy",
    "second session object",
    "title says session",
    "version is a float",
    "version is not last",
    "trailing newline",
    "metadata after a space",
])
def test_documents_off_the_checkbox_shape_fall_back_to_the_full_peek(
        make_doc: Any, case: str) -> None:
    doc = make_doc(11)
    compact = dumps_compact(doc)
    meta = dumps_compact(doc["session"]["metadata"])
    decoy = meta.replace('"title":"t"', '"title":"decoy"')
    text = {
        "spaced key with a nested decoy": compact.replace(
            '"metadata":', '"metadata" :').replace(
            '"results":{}', '"results":{"x":[{"metadata":' + decoy + "}]}"),
        "second session object": compact.replace(
            ',"version":11}', ',"session":{"metadata":' + decoy + '},"version":11}'),
        "title says session": compact.replace('"title":"t"', '"title":"session"'),
        "version is a float": compact.replace('"version":11}', '"version":11.0}'),
        "version is not last": '{"session":' + dumps_compact(doc["session"])[:-1]
        + ',"z":{}},"version":11,"zz":1}',
        "trailing newline": compact + "\n",
        "metadata after a space": compact.replace('"metadata":{', '"metadata": {'),
    }[case]
    assert quick_peek(text_blob(text)) is None
    full = full_peek(text_blob(text))
    expected = {"second session object": "decoy", "title says session": "session"}.get(case, "t")
    assert (full.title if full else None) == expected


def test_damaged_gzip_gives_no_quick_answer(make_doc: Any) -> None:
    blob = pack_envelope(make_doc(11))
    assert quick_peek(blob[:-4]) is None
    assert quick_peek(b"") is None


def test_unsupported_version_and_bad_metadata_give_no_quick_answer(make_doc: Any) -> None:
    assert quick_peek(text_blob(dumps_compact(make_doc(11)).replace(':11}', ':99}'))) is None
    doc = make_doc(11)
    doc["session"]["metadata"]["flags"] = None
    assert quick_peek(pack_envelope(doc)) is None


_JSON_BITS = st.sampled_from([
    '"session"', '"metadata"', '"version"', ":", ",", "{", "}", "[", "]", '"', "\\", " ", "1",
    '"metadata":{"title":"x","flags":[]}', "null", '"version":7'])


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from([1, 5, 7, 11]), cut=st.integers(0, 10_000),
       length=st.integers(0, 3), insert=st.lists(_JSON_BITS, max_size=3))
def test_whenever_the_full_peek_succeeds_the_quick_peek_agrees_or_abstains(
        make_doc: Any, version: int, cut: int, length: int, insert: list[str]) -> None:
    doc = make_doc(version, jobs={"ns::a": "0" * 64}, desired_job_list=["ns::a"],
                   results={"ns::a": [{"outcome": "pass", "comments": "metadata",
                                        "return_code": 0, "execution_duration": 1.0,
                                        "io_log": []}]})
    text = dumps_compact(doc)
    cut %= len(text) + 1
    mutated = text[:cut] + "".join(insert) + text[cut + length:]
    blob = text_blob(mutated)
    quick = quick_peek(blob)
    full = full_peek(blob)
    if full is not None:
        assert quick is None or repr(quick) == repr(full)
