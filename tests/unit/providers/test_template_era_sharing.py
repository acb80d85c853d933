"""Instances of one record under several eras share their checksums, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from resumed.providers.checksum import ERAS
from resumed.providers.templates import same_instances
from resumed.providers.units import TemplateUnit, make_unit

NS = "com.example.demo"
RECORDS = [{"name": "eth0", "d": "1", "x": "unused"}, {"name": "wlan0", "d": "0"},
           {"name": "lo", "d": "2"}]


def template(**fields: str) -> TemplateUnit:
    data: dict[str, Any] = {"unit": "template", "template-resource": "devices",
                            "plugin": "shell", "id": "check-{name}", "command": "check {name}"}
    data.update(fields)
    unit = make_unit(data, NS, "t.pxu:1")
    assert isinstance(unit, TemplateUnit)
    return unit


def fingerprint(jobs: list[Any]) -> list[tuple[str, dict[str, str]]]:
    return [(job.id, {era: job.checksum_for(era) for era in ERAS}) for job in jobs]


@pytest.mark.parametrize("first", ERAS)
def test_instances_built_for_another_era_first_hash_as_if_built_alone(first: str) -> None:
    unit = template(summary="Check {name}")
    memo: dict[tuple[int, int], Any] = {}
    unit.instantiate(RECORDS, first, memo=memo)
    for era in ERAS:
        shared = unit.instantiate(RECORDS, era, memo=memo)
        alone = template(summary="Check {name}").instantiate(RECORDS, era)
        assert fingerprint(shared) == fingerprint(alone)
        assert [job.checksum for job in shared] == [job.checksum for job in alone]


def test_legacy_and_current_instances_differ_only_where_template_id_enters() -> None:
    memo: dict[tuple[int, int], Any] = {}
    unit = template()
    legacy = unit.instantiate(RECORDS, "legacy", memo=memo)[0]
    current = unit.instantiate(RECORDS, "suspend-rendered", memo=memo)[0]
    assert legacy.checksum == current.checksum_for("legacy")
    assert current.checksum == legacy.checksum_for("suspend-rendered")
    assert legacy.checksum != current.checksum


def test_instances_whose_requires_renders_invalid_are_dropped_one_by_one() -> None:
    records = [{"name": "eth0", "req": "device.up == 'yes'"}, {"name": "wlan0", "req": "device =="},
               {"name": "lo", "req": "device.up == 'yes'"}]
    unit = template(requires="{req}")
    assert [job.id for job in unit.instantiate(records, "legacy")] == [
        f"{NS}::check-eth0", f"{NS}::check-lo"]
    invalid = unit.instantiate(records, "legacy", strict=True)
    assert [job.is_invalid for job in invalid] == [False, True, False]


def test_static_broken_requires_drops_every_instance() -> None:
    assert template(requires="device.name ==").instantiate(RECORDS, "legacy") == []
    assert template(requires="device.name == 'eth0'").instantiate(RECORDS, "legacy") != []


def test_plain_template_keeps_the_same_instances_in_every_era() -> None:
    unit = template(_summary="Check {name}")
    assert all(same_instances(unit, "suspend-rendered", era) for era in ERAS)


def test_eras_whose_checks_differ_do_not_stand_for_each_other() -> None:
    unit = template(summary="Check the device")  # 1.18.1 wants a parameter in the summary
    assert not same_instances(unit, "suspend-rendered", "legacy")
    assert same_instances(unit, "suspend-rendered", "suspend-list")
    assert unit.instantiate(RECORDS, "legacy") == []
    assert len(unit.instantiate(RECORDS, "suspend-rendered")) == 3


def test_filtered_template_stands_only_for_eras_that_compile_the_filter_alike() -> None:
    unit = template(**{"template-filter": "devices.name != 'lo'"})
    assert not same_instances(unit, "suspend-rendered", "legacy")
    assert same_instances(unit, "suspend-rendered", "template-id")
