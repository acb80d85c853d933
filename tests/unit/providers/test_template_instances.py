"""Template replay: filter, parameters, `__index__`, engines and dropped instances (§4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resumed.providers.errors import ResourceProgramError, TemplateError
from resumed.providers.resource import compile_program, parse_imports, parse_resource_records
from resumed.providers.rfc822 import load_pxu_file
from resumed.providers.units import JobDefinition, TemplateUnit, make_unit

DATA = Path(__file__).resolve().parents[2] / "data" / "providers"
NS = "com.example.demo"


def _templates() -> list[TemplateUnit]:
    units = [make_unit(r.data, NS, r.origin)
             for r in load_pxu_file(DATA / "templates-demo.pxu")]
    return [u for u in units if isinstance(u, TemplateUnit)]


def _records() -> list[dict[str, str]]:
    return parse_resource_records((DATA / "devices.stdout").read_bytes())


def _template(text: str, resource: str = "devices") -> TemplateUnit:
    data = {"unit": "template", "template-resource": resource, "plugin": "shell"}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        data[key] = value
    unit = make_unit(data, NS, "t.pxu:1")
    assert isinstance(unit, TemplateUnit)
    return unit


def test_filter_keeps_network_records_and_index_counts_them() -> None:
    """§4.9: records 1 and 3 pass the filter; their `__index__` is 1 and 2."""
    ping = _templates()[0]
    jobs = ping.instantiate(_records(), "legacy")
    assert [(j.id, j.parameters) for j in jobs] == [
        (f"{NS}::net/ping_eth0", {"interface": "eth0", "gateway": "10.0.0.1", "__index__": 1}),
        (f"{NS}::net/ping_wlan0", {"interface": "wlan0", "gateway": "10.0.0.2", "__index__": 2}),
    ]
    assert [j.checksum for j in jobs] == [
        "a6c599212f73155111de179cb85fb2975f94ad1a891096b2b709979bf5b5d682",
        "5d9ff4cc9d399295dd0eb70a16edd4fa9c75072688e6d3c1d99565915fcb9378",
    ]
    assert jobs[0].summary == "Ping on eth0 (1)"
    assert jobs[0].get_record_value("command") == "ping -I eth0 10.0.0.1"


def test_current_era_adds_template_id_to_generated_data() -> None:
    """§4.9 HEAD: `template-id` is the slugified id and changes the checksum."""
    jobs = _templates()[0].instantiate(_records(), "suspend-rendered")
    assert jobs[0].data["template-id"] == f"{NS}::net/ping_interface"
    assert jobs[0].template_id == f"{NS}::net/ping_interface"
    assert [j.checksum for j in jobs] == [
        "379425c5616a69a7b10f8064cca30f565a485bc697b123b4fd20af6ea46489c3",
        "1d7d581a9e948b9e88b3a6a79fa0d5c3cc54c3b52380af3914d70c1eecaa2e56",
    ]
    assert jobs[0].checksum_for("legacy").startswith("a6c59921")


def test_jinja2_template_drops_the_record_without_interface() -> None:
    """§4.9 jinja2: record 2 is dropped; the others render with the sandbox."""
    jinja = _templates()[1]
    jobs = jinja.instantiate(_records(), "legacy")
    assert [(j.partial_id, j.checksum) for j in jobs] == [
        ("net/jinja_eth0", "3badbe6ab636da988a51d7f4b3636d3cde30684cc9c56db7022dff14a1556131"),
        ("net/jinja_wlan0", "ecb0bf370f3b3d4a813f48d1d7f732cd1e4fe306cf7e08807d4a05769451ed86"),
    ]
    assert jobs[0].summary == "Jinja ETH0 "
    assert jobs[0].get_record_value("command") == "\necho Intel\ntrue"
    assert jobs[1].parameters == {"interface": "wlan0", "__index__": 3}
    current = jinja.instantiate(_records(), "suspend-rendered")
    assert [j.checksum[:8] for j in current] == ["4008b011", "bdb0437e"]


def test_strict_expansion_keeps_invalid_instances_as_invalid_jobs() -> None:
    """With `strict_template_expansion`, record 2 becomes an InvalidJob `net/jinja_`."""
    jobs = _templates()[1].instantiate(_records(), "suspend-rendered", strict=True)
    invalid = jobs[1]
    assert invalid.is_invalid
    assert invalid.id == f"{NS}::net/jinja_"
    assert invalid.checksum == "d68ba64e760fffdafeb2956846eb6a2d9bfa5d5a42b3a8f8d1150fe18c0887aa"


def test_missing_key_drops_instance_or_fills_placeholder_when_strict() -> None:
    """§4.9: `net/gw_wlan0` lacks gateway: dropped, or `…_MISSING_PARAM_2` when strict."""
    template = _template("id: net/gw_{interface}_{gateway}\ncommand: true")
    records = [{"interface": "eth0", "gateway": "10.0.0.1"}, {"interface": "wlan0"}]
    assert [j.partial_id for j in template.instantiate(records, "legacy")] == [
        "net/gw_eth0_10.0.0.1"]
    strict = template.instantiate(records, "suspend-rendered", strict=True)
    assert [j.partial_id for j in strict] == [
        "net/gw_eth0_10.0.0.1", "net/gw_wlan0_MISSING_PARAM_2"]


def test_constant_summary_drops_instances_only_before_2026() -> None:
    """1.18.1 checks a literal `summary:` for parameters; current Checkbox does not."""
    template = _template("id: t_{n}\ncommand: true\nsummary: constant")
    assert template.instantiate([{"n": "1"}], "legacy") == []
    assert len(template.instantiate([{"n": "1"}], "suspend-rendered")) == 1


def test_purpose_with_missing_key_drops_instance_only_in_old_eras() -> None:
    """`_purpose: P {extra}` on a shell job: 1.18.1 drops the record lacking `extra`."""
    template = _template("id: t_{n}\ncommand: true\n_purpose: P {extra}")
    records = [{"n": "1", "extra": "x"}, {"n": "2"}]
    assert [j.partial_id for j in template.instantiate(records, "legacy")] == ["t_1"]
    assert len(template.instantiate(records, "suspend-list")) == 2


@pytest.mark.parametrize(
    "fields",
    ["id: tconst\ncommand: true", "id: t_{n}\ncommand: true\nflags: f{n}",
     "id: t_{n}\ncommand: 'unbalanced", "id: t_{n}\ncommand: true\nuser: nobody",
     "id: t_{n}\ncommand: true\nestimated_duration: 0", "id: t_{n}",
     "id: a::{n}\ncommand: true", "id: t_{n}\ncommand: true\nsiblings: not json",
     "id: t_{n}\ncommand: true\nrequires: res.x =="],
)
def test_invalid_instances_are_dropped(fields: str) -> None:
    """Instances failing PlainBox's checks never reach the session."""
    assert _template(fields).instantiate([{"n": "1"}], "legacy") == []


def test_unused_record_keys_stay_out_of_parameters() -> None:
    """Only keys some field uses, plus `__index__`, are parameters (bug 1561821)."""
    (job,) = _template("id: t_{n}\ncommand: true\nfoo: {extra}").instantiate(
        [{"n": "1", "unused": "u"}], "legacy")
    assert job.parameters == {"n": "1", "__index__": 1}


@pytest.mark.parametrize(
    "fields", ["id: t_{}\ncommand: true", "id: t_{n\ncommand: true",
               "template-engine: jinja2\nid: t_{{ x.y }}\ncommand: true"],
)
def test_templates_that_crash_plainbox_replay_raise_template_error(fields: str) -> None:
    """`{}`, malformed format strings and jinja2 UndefinedError are TemplateError."""
    with pytest.raises(TemplateError):
        _template(fields).instantiate([{"n": "1"}], "legacy")


def test_filter_must_name_the_resource_and_uses_imports() -> None:
    """A filter naming another resource matches nothing; import aliases resolve."""
    wrong = _template("id: t_{n}\ncommand: true\ntemplate-filter: device.n == '1'")
    assert wrong.instantiate([{"n": "1"}], "legacy") == []
    aliased = _template(
        "id: t_{n}\ncommand: true\ntemplate-imports: from other.ns import devs as d\n"
        "template-filter: d.n == '2'", resource="d")
    assert aliased.resource_id == "other.ns::devs"
    assert [j.parameters for j in aliased.instantiate([{"n": "1"}, {"n": "2"}], "legacy")] == [
        {"n": "2", "__index__": 1}]


def test_filter_compile_errors_raise() -> None:
    """`int(devices.n) > 0` references no resource: PlainBox's replay crashes."""
    template = _template("id: t_{n}\ncommand: true\ntemplate-filter: int(devices.n) > 0")
    with pytest.raises(ResourceProgramError):
        template.instantiate([{"n": "1"}], "legacy")


def test_resource_output_is_parsed_record_per_line_and_keeps_good_records() -> None:
    """§4.2: records are lines; on a syntax error earlier records are kept."""
    assert parse_resource_records([b"a: 1\nb: 2\n"]) == [{"a": "1\nb: 2"}]
    assert parse_resource_records(b"a: 1\n\nb: 2\ngarbage\n") == [{"a": "1"}]
    assert parse_resource_records([b"k: \xff\n"]) == [{"k": "\ufffd"}]


def test_requires_names_resources_through_imports() -> None:
    """§5.4: names are resource ids, imports give aliases, calls are restricted."""
    program = compile_program(
        "other_thing.y == '1'\nres.x == '1' and pkg.name == 'a'", "ex",
        "from com.example.other import thing as other_thing")
    assert program.resource_ids == ("com.example.other::thing", "ex::res", "ex::pkg")
    assert program.evaluate({"com.example.other::thing": [{"y": "1"}],
                             "ex::res": [{"x": "1"}], "ex::pkg": [{"name": "a"}]})
    for bad in ("len(res.x) > 0", "res.x == (", "not res.x", "res.x.startswith('a')",
                "__import__('os')", "res.a.b == 1"):
        with pytest.raises(ResourceProgramError):
            compile_program(bad, "ex")
    with pytest.raises(ResourceProgramError):
        parse_imports("from a import b as")
    assert parse_imports("from a.b import c/d as cd") == [("a.b::c/d", "cd")]


def test_generated_job_relations_render_parameters() -> None:
    """`depends` of a generated job is rendered before qualification."""
    (job,) = _template("id: t_{n}\ncommand: true\ndepends: dev_{n}").instantiate(
        [{"n": "7"}], "legacy")
    assert isinstance(job, JobDefinition)
    assert job.depends_ids == (f"{NS}::dev_7",)
