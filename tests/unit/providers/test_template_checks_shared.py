"""Template instance checks worked out once per template give what checking each instance gives.

`_check_rendered` takes the verdicts on fields that use no parameter from the
template (`_Checks`), and `_remember` its cached relations; checking every
instance field by field must keep and drop the same instances, for the same
reasons, with the same cached properties.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumed.providers import templates
from resumed.providers.checksum import ERAS
from resumed.providers.units import TemplateUnit, make_unit

NS = "com.example.shared"

#: Values of each checked field: fixed (valid or not) or taken from a record key.
#: Repeats make valid values likelier, so that instances get to the later checks.
_FIELDS: dict[str, list[str | None]] = {
    "plugin": ["shell", "shell", "manual", "bogus", None, "{plugin}"],
    "command": ["run {name}", "run {name}", "true", None, "run '{name}", "run \\ {name}"],
    "user": [None, None, "root", "nobody", "{user}"],
    "estimated_duration": [None, None, "2.0", "-1", "1m 3s", "{duration}"],
    "shell": [None, None, "/bin/bash", "/bin/zsh"],
    "requires": [None, None, "devices.category == 'NET'", "devices.category ==", "{requires}"],
    "imports": [None, None, "from com.example.shared import devices", "junk"],
    "siblings": [None, None, '[{"id": "x"}]', "not json", "{siblings}"],
    "depends": [None, "other", "{name}-dep"],
    "after": [None, "other"],
    "before": [None, "other"],
    "flags": [None, None, "also-after-suspend"],
    "group": [None, "grp"],
    "id": ["check-{name}", "check-{name}", "check::{name}"],
}
_RECORD_VALUES = {
    "name": ["eth0", "a::b"],
    "plugin": ["shell", "bogus"],
    "user": ["root", "nobody"],
    "duration": ["3.5", "0"],
    "shell": ["bash", "/bin/csh"],
    "requires": ["devices.category == 'NET'", "(("],
    "imports": ["from com.example.shared import devices", "junk"],
    "siblings": ['[{"id": "y"}]', "{"],
    "flags": ["noreturn", ""],
}


def _template(fields: dict[str, str | None]) -> TemplateUnit:
    data = {"unit": "template", "template-resource": "devices", "_summary": "Check {name}"}
    data.update({key: value for key, value in fields.items() if value is not None})
    unit = make_unit(data, NS, "t.pxu:1")
    assert isinstance(unit, TemplateUnit)
    return unit


def _outcome(template: TemplateUnit, records: list[dict[str, str]], era: str, strict: bool,
             caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    caplog.clear()
    try:
        jobs = template.instantiate(records, era, strict)
    except Exception as exc:  # noqa: BLE001 - a crash must be the same crash
        return ("raised", type(exc).__name__, str(exc))
    cached = [{k: v for k, v in job.__dict__.items() if k in _CACHED} for job in jobs]
    return (
        [(type(job).__name__, job.id, job.checksum) for job in jobs],
        cached,
        [record.getMessage() for record in caplog.records],
    )


_CACHED = {"partial_id", "id", "plugin", "depends_ids", "after_ids", "salvages_ids", "flags",
           "before_ids", "_requires", "resource_ids", "requires_error", "pull_edges",
           "pull_ids", "group"}


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries({key: st.sampled_from(values) for key, values in _FIELDS.items()}),
    records=st.lists(
        st.fixed_dictionaries({key: st.sampled_from(v) for key, v in _RECORD_VALUES.items()}),
        min_size=1, max_size=3),
    era=st.sampled_from(ERAS),
    strict=st.booleans(),
)
def test_checks_shared_by_instances_keep_drop_and_cache_alike(
    fields: dict[str, str | None], records: list[dict[str, str]], era: str, strict: bool,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger=templates.__name__)
    shared = _outcome(_template(fields), records, era, strict, caplog)
    with monkeypatch.context() as patch:
        original = templates._Checks.__init__

        def per_instance(self: Any, *args: Any) -> None:
            original(self, *args)
            self.relations = None
            self.static_checked = False

        patch.setattr(templates._Checks, "__init__", per_instance)
        assert _outcome(_template(fields), records, era, strict, caplog) == shared
