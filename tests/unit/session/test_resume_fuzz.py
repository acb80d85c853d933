"""Property: no input, however malformed, makes peek or resume raise anything untyped."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumed.providers.loader import load_providers
from resumed.session.envelope import pack_envelope, unpack_envelope
from resumed.session.errors import SessionResumeError
from resumed.session.peek import SessionPeekHelper
from resumed.session.resume import SessionResumeHelper

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
SESSIONS = sorted(SAMPLES.glob("*/*.session"))
BLOBS = [(path, (path / "session").read_bytes()) for path in SESSIONS]
EXAMPLES = int(os.environ.get("RESUMED_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "synth" / "units").mkdir(parents=True)
    shutil.copy(SAMPLES / "units" / "synth-small.pxu", root / "synth" / "units")
    (root / "synth.provider").write_text(
        "[PlainBox Provider]\nname = com.example:synth\nnamespace = com.example.synth\n"
        f"version = 1.0\nlocation = {root / 'synth'}\n"
    )
    return load_providers([root]).units


def only_typed_errors(units: list[Any], location: Path, blob: bytes) -> None:
    for run in (
        lambda: SessionPeekHelper(max_session_bytes=1 << 20).peek(blob),
        lambda: SessionResumeHelper(units, None, location, 1 << 20).resume(blob),
    ):
        with contextlib.suppress(SessionResumeError):
            run()


@FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_typed_errors(units: list[Any], data: bytes) -> None:
    only_typed_errors(units, SESSIONS[0], data)


@FUZZ
@given(
    which=st.sampled_from(range(len(BLOBS))),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
        min_size=1,
        max_size=3,
    ),
)
def test_fuzz_flipped_bytes_of_valid_blobs_only_raise_typed_errors(
    units: list[Any], which: int, flips: list[tuple[int, int]]
) -> None:
    location, blob = BLOBS[which]
    data = bytearray(blob)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    only_typed_errors(units, location, bytes(data))


def mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace the node reached by following ``path`` choices with ``value``."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    doc[key] = mutate(doc[key], path[1:], value)
    return doc


@FUZZ
@given(
    which=st.sampled_from(range(len(BLOBS))),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=7),
    value=json_values,
    delete=st.booleans(),
)
def test_fuzz_mutated_session_documents_only_raise_typed_errors(
    units: list[Any], which: int, path: list[int], value: Any, delete: bool
) -> None:
    location, blob = BLOBS[which]
    doc = unpack_envelope(blob)
    if delete and path:
        node = doc
        for step in path[:-1]:
            if not isinstance(node, dict) or not node:
                break
            node = node[list(node)[step % len(node)]]
        if isinstance(node, dict) and node:
            del node[list(node)[path[-1] % len(node)]]
    else:
        doc = mutate(doc, path, value)
    only_typed_errors(units, location, pack_envelope(doc))


TEMPLATES = """\
id: res
plugin: resource
command: r

unit: template
template-resource: res
template-filter: res.kind == 'disk'
id: disk-{name}
plugin: shell
command: check {name} {size}

unit: template
template-resource: res
template-engine: jinja2
id: j-{{ name }}
plugin: shell
flags: also-after-suspend
command: echo {{ name|upper }}
siblings: [{"id": "j-{{ name }}-again"}]
"""


@pytest.fixture(scope="module")
def template_units(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    root = tmp_path_factory.mktemp("templates")
    (root / "t" / "units").mkdir(parents=True)
    (root / "t" / "units" / "t.pxu").write_text(TEMPLATES)
    (root / "t.provider").write_text(
        "[PlainBox Provider]\nname = com.example:t\nnamespace = com.example.t\n"
        f"version = 1.0\nlocation = {root / 't'}\n"
    )
    return load_providers([root]).units


record_lines = st.one_of(
    st.text(max_size=30),
    st.builds("{}: {}\n".format, st.sampled_from(["name", "kind", "size"]), st.text(max_size=10)),
    st.just("\n"),
    st.just("kind: disk\n"),
)


@FUZZ
@given(lines=st.lists(record_lines, max_size=12), outcome=st.sampled_from(["pass", "fail"]))
def test_fuzz_random_resource_output_only_raises_typed_errors(
    template_units: list[Any], lines: list[str], outcome: str
) -> None:
    res = next(u for u in template_units if u.partial_id == "res")
    io_log = [
        [0.0, "stdout", base64.b64encode(line.encode("utf-8", "surrogatepass")).decode()]
        for line in lines
    ]
    result = {
        "outcome": outcome,
        "comments": None,
        "return_code": 0,
        "execution_duration": 1.0,
        "io_log": io_log,
    }
    doc = {
        "version": 11,
        "session": {
            "jobs": {res.id: res.checksum},
            "results": {res.id: [result]},
            "desired_job_list": [res.id],
            "mandatory_job_list": [],
            "metadata": {
                "title": None,
                "flags": ["strict_template_expansion"],
                "running_job_name": None,
                "app_blob": None,
                "app_id": None,
                "custom_joblist": False,
                "rejected_jobs": [],
                "last_job_start_time": None,
                "remaining_todo_jobs": True,
            },
            "system_information": {},
        },
    }
    only_typed_errors(template_units, SESSIONS[0], pack_envelope(doc))
