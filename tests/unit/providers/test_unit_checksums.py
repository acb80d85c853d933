"""Job, template, generated-job and sibling checksums match PlainBox's for every era."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumed.providers.checksum import ERA_DESCRIPTIONS, ERAS, compute_checksum, parameters_text
from resumed.providers.errors import UnitParseError
from resumed.providers.resource import parse_resource_records
from resumed.providers.rfc822 import load_pxu_file
from resumed.providers.siblings import make_siblings
from resumed.providers.units import JobDefinition, TemplateUnit, make_unit
from resumed.providers.yamlunits import parse_yaml_units

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = DATA / "samples"
MANIFESTS = sorted(SAMPLES.glob("*/small-v*.manifest.json"))
NS = "com.example.synth"


def _synth_units() -> list[Any]:
    records = load_pxu_file(SAMPLES / "units" / "synth-small.pxu")
    return [make_unit(r.data, NS, r.origin) for r in records]


def _devices_records() -> list[dict[str, str]]:
    io_logs = SAMPLES / "checkbox-1.18.1/small-v1.session/io-logs"
    log = io_logs / "com.example.synth__synth_devices.record.gz"
    lines = gzip.decompress(log.read_bytes()).decode().splitlines()
    chunks = [base64.b64decode(json.loads(line)[2]) for line in lines if line.strip()]
    return parse_resource_records(chunks)


def test_every_era_has_a_stable_name_and_description() -> None:
    """`inspect --help` can list each era with a one-line description."""
    assert ERAS[:2] == ("legacy", "template-id")
    assert set(ERA_DESCRIPTIONS) == set(ERAS)
    assert all(d and "\n" not in d for d in ERA_DESCRIPTIONS.values())


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_session_jobs_hash_like_checkbox(manifest_path: Path) -> None:
    """Every job and generated job of every sample manifest gets Checkbox's checksum."""
    manifest = json.loads(manifest_path.read_text())
    era = "legacy" if "1.18.1" in manifest_path.parent.name else "template-id"
    units = _synth_units()
    jobs = {u.id: u for u in units if isinstance(u, JobDefinition)}
    for template in (u for u in units if isinstance(u, TemplateUnit)):
        for job in template.instantiate(_devices_records(), era):
            jobs[job.id] = job
    assert manifest["jobs"]
    for expected in manifest["jobs"]:
        job = jobs[expected["id"]]
        assert job.data_for(era) == expected["data"]
        assert job.checksum_for(era) == expected["checksum"]
        assert job.parameters == expected["parameters"]
    for expected in manifest["templates"]:
        template = next(u for u in units if u.id == expected["id"])
        assert template.checksum == expected["checksum"]


def test_generated_job_checksum_differs_only_by_template_id_era() -> None:
    """A generated job gives the 1.18.1 checksum under `legacy` and the HEAD one after."""
    (template,) = (u for u in _synth_units() if isinstance(u, TemplateUnit))
    (job,) = template.instantiate(_devices_records(), "suspend-rendered")
    assert job.checksum_for("legacy").startswith("3e9689c1")
    assert {job.checksum_for(era) for era in ERAS[1:]} == {job.checksum}
    assert job.checksum.startswith("13620162")


def test_hashed_text_appends_namespace_last_and_escapes_non_ascii() -> None:
    """Keys are sorted, `namespace` comes last, non-ASCII is escaped."""
    import hashlib

    data = {"z": "é", "_a": "1", "A": "2"}
    text = '{"A":"2","_a":"1","z":"\\u00e9","namespace":"ns"}'
    assert compute_checksum(data, "ns") == hashlib.sha256(text.encode()).hexdigest()


def test_yaml_unit_keeps_native_types_in_its_checksum() -> None:
    """The reference's §2.5 YAML example: data as loaded, checksum b15cfd25…."""
    text = (
        "id: ylist\nplugin: shell\ncommand: |\n  echo hi\nestimated_duration: 1.5\n"
        "flags: [noreturn, also-after-suspend]\ndepends: [c]\nrequires:\n  - res.x == '1'\n"
        "user: root\n"
    )
    (record,) = parse_yaml_units(text, "y.yaml")
    job = make_unit(record.data, "ex", record.origin)
    assert isinstance(job, JobDefinition)
    assert job.data["command"] == "echo hi\n"
    assert job.checksum == "b15cfd25b2671c07a31c50d4ad99189a499d607b15850224c888c78388bef884"
    assert job.flags == {"noreturn", "also-after-suspend"}
    assert job.depends_ids == ("ex::c",)
    assert job.resource_ids == ("ex::res",)


def test_yaml_documents_become_one_unit_each_and_dates_are_rejected() -> None:
    """`---` separates units; a value PlainBox cannot hash makes the file invalid."""
    records = parse_yaml_units("id: a\n---\nid: b\n", "y.yaml")
    assert [r.data for r in records] == [{"id": "a"}, {"id": "b"}]
    assert records[1].origin == "y.yaml:3"
    with pytest.raises(UnitParseError, match="date"):
        parse_yaml_units("id: a\nwhen: 2024-01-01\n", "y.yaml")
    with pytest.raises(UnitParseError):
        parse_yaml_units("id: [unclosed\n", "y.yaml")


def _parent(**fields: str) -> JobDefinition:
    return JobDefinition({"plugin": "shell", **fields}, "com.example.demo")


def test_siblings_field_makes_overridden_jobs() -> None:
    """The reference's §6.3 example: two siblings with PlainBox's checksums."""
    parent = _parent(
        id="video/out", _summary="Video out", command="vout",
        siblings='[{"id": "video/out-hdmi", "_summary": "Video out HDMI", '
                 '"command": "vout --hdmi"}, {"id": "video/out-dp", "depends": "video/out-hdmi"}]',
    )
    hdmi, dp = make_siblings(parent, "legacy")
    assert hdmi.id == "com.example.demo::video/out-hdmi"
    assert hdmi.data == {"plugin": "shell", "id": "video/out-hdmi",
                         "_summary": "Video out HDMI", "command": "vout --hdmi"}
    assert hdmi.checksum == "6a5fb4327464a93ea5635d4dbbb4b0fa345813b32f0b5ace5d1bb28d60986d91"
    assert dp.checksum == "5214e51f6218ef426b1943868094f5a23eb9ebcdab6931f26df0d5bf3a9d1c81"
    assert dp.depends_ids == ("com.example.demo::video/out-hdmi",)


# Parent fields beyond those the reference lists (plugin, command, _summary) were
# recovered by matching its checksums.
@pytest.mark.parametrize(
    ("parent", "sibling_id", "legacy", "current"),
    [
        ({"id": "audio/playback", "flags": "also-after-suspend", "depends": "audio/detect",
          "command": "play", "_summary": "Audio playback"},
         "after-suspend-audio/playback",
         "0c5ae85e2f8d1bb3023ddc5ae5f35c4e3f7d695df9906a7c0c43c5db9fa9c39d",
         "0c5ae85e2f8d1bb3023ddc5ae5f35c4e3f7d695df9906a7c0c43c5db9fa9c39d"),
        ({"id": "audio/record", "flags": "noreturn also-after-suspend-manual",
          "command": "record", "_summary": "Audio record"},
         "after-suspend-manual-audio/record",
         "8413f8734467e5627dcec1dc10d41f979a1014c72ca24f594d678c3200ca1a14",
         "3437695ff93084fe79041b33ab6c41445da99761ddabbe85d0a2ef1e3fa8e171"),
        ({"id": "audio/both", "summary": "Both", "after": "audio/detect", "command": "both",
          "flags": "also-after-suspend, also-after-suspend-manual"},
         "after-suspend-audio/both",
         "4e6440130d4c2f69f06511d74128b0fc1d8932f0c7b2d50533d51065e33d9c80",
         "0022dd0c9fc32024ffe7b2a98dcf91fa957fabc8884834ec0f03d7f961ead3ad"),
    ],
)
def test_after_suspend_siblings_hash_per_era(
    parent: dict[str, str], sibling_id: str, legacy: str, current: str
) -> None:
    """§6.4: the 1.18.1 and current checksums of after-suspend siblings."""
    siblings = {s.partial_id: s for s in make_siblings(_parent(**parent), "suspend-rendered")}
    sibling = siblings[sibling_id]
    assert sibling.checksum_for("legacy") == legacy
    assert sibling.checksum_for("suspend-rendered") == current
    assert sibling.checksum == current


def test_after_suspend_sibling_flags_and_depends_follow_the_quirks() -> None:
    """The first replace turns `also-after-suspend-manual` into `-manual`."""
    parent = _parent(id="audio/record", flags="noreturn also-after-suspend-manual")
    (sibling,) = make_siblings(parent, "legacy")
    assert sibling.data["flags"] == "noreturn -manual"
    assert sibling.data["depends"] == (
        "com.example.demo::audio/record com.canonical.certification::suspend/suspend_advanced"
    )
    assert sibling.data_for("suspend-list")["depends"] == [
        "com.example.demo::audio/record", "com.canonical.certification::suspend/suspend_advanced"
    ]
    assert sibling.data_for("suspend-after")["after"] == "com.example.demo::audio/record"
    assert "com.canonical.certification::suspend/suspend_advanced" in parent.before_ids


def test_broken_siblings_json_is_a_typed_error() -> None:
    """Invalid JSON in `siblings` raises SiblingError, not a raw ValueError."""
    from resumed.providers.errors import SiblingError

    with pytest.raises(SiblingError):
        make_siblings(_parent(id="x", siblings="[{"), "legacy")


_PARAMETER_VALUES = st.one_of(
    st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False),
    st.lists(st.text(), max_size=2),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.one_of(st.text(), st.just("__index__")), _PARAMETER_VALUES, max_size=6))
def test_parameters_hash_as_their_json_whatever_the_values(parameters: dict[str, Any]) -> None:
    """Parameters (record strings, `__index__`, anything else) hash as PlainBox encodes them."""
    expected = json.dumps(dict(sorted(parameters.items())), separators=(",", ":"))
    assert parameters_text(parameters) == expected
    data = {"id": "x", "plugin": "shell"}
    assert compute_checksum(data, NS, parameters) == hashlib.sha256(
        (json.dumps({**dict(sorted(data.items())), "namespace": NS}, separators=(",", ":"))
         + expected).encode()).hexdigest()
