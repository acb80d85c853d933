"""Sibling jobs: the `siblings` field and the `also-after-suspend*` flags (reference §6.3, §6.4).

Checkbox creates these whenever a job is added, generated jobs included. A
sibling's data is its parent's data minus every key ending in `siblings`, then
the override (or, for after-suspend siblings, the era's rewrite of `id`, `flags`,
`_summary`, `depends`, `after` and `group`). It keeps the parent's namespace,
origin and parameters.
"""

from __future__ import annotations

import json
from typing import Any

from resumed.providers.checksum import era_info
from resumed.providers.errors import ProvidersError, SiblingError
from resumed.providers.render import MissingParam
from resumed.providers.units import SUSPEND_AUTO_ID, SUSPEND_MANUAL_ID, JobDefinition

AFTER_SUSPEND_FLAGS = (
    ("also-after-suspend", "after-suspend", SUSPEND_AUTO_ID),
    ("also-after-suspend-manual", "after-suspend-manual", SUSPEND_MANUAL_ID),
)
_FLAG_NAMES = frozenset(flag for flag, _, _ in AFTER_SUSPEND_FLAGS)


def make_siblings(job: JobDefinition, era: str) -> list[JobDefinition]:
    """All siblings of `job` as the Checkbox of `era` creates them.

    Raises `SiblingError` when `siblings` is not a JSON list of objects (PlainBox
    raises out of `add_unit`, and so out of resume).
    """
    era_info(era)
    siblings = [_override_sibling(job, override, era) for override in _overrides(job)]
    for flag, prefix, suspend_id in AFTER_SUSPEND_FLAGS:
        if flag in job.flags:
            siblings.append(_suspend_sibling(job, prefix, suspend_id, era))
    return siblings


def _overrides(job: JobDefinition) -> list[dict[str, Any]]:
    try:
        value = job.get_record_value("siblings")
    except (MissingParam, ProvidersError) as exc:
        raise SiblingError(f"{job.id}: cannot render siblings: {exc}") from exc
    if value is None:
        return []
    try:
        items = value if isinstance(value, list) else json.loads(value)
    except ValueError as exc:
        raise SiblingError(f"{job.id}: siblings is not valid JSON: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise SiblingError(f"{job.id}: siblings must be a JSON list of objects")
    return items


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.endswith("siblings")}


def _new(job: JobDefinition, era: str, variant: Any) -> JobDefinition:
    data, parameters = variant(era)
    return JobDefinition(
        data, job.namespace, job.origin, job.provider,
        parameters=parameters, template_id=job.template_id, era_variant=variant,
    )


def _override_sibling(job: JobDefinition, override: dict[str, Any], era: str) -> JobDefinition:
    def variant(some_era: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        data, parameters = job.variant_for(some_era)
        sibling = _strip(data)
        sibling.update(override)
        return sibling, parameters

    return _new(job, era, variant)


def _suspend_sibling(job: JobDefinition, prefix: str, suspend_id: str, era: str) -> JobDefinition:
    def variant(some_era: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        rule = era_info(some_era).suspend_rule
        data, parameters = job.variant_for(some_era)
        sibling = _strip(data)
        sibling["id"] = f"{prefix}-{job.partial_id}"
        flags = sibling.get("flags")
        if isinstance(flags, list):
            sibling["flags"] = [f for f in flags if f not in _FLAG_NAMES]
        elif flags is not None:
            sibling["flags"] = (
                str(flags).replace("also-after-suspend", "")
                .replace("also-after-suspend-manual", "")
            )
        sibling["_summary"] = f"{job.summary} after suspend (S3)"
        depends = job.field("depends") if rule == "d" else data.get("depends")
        if depends:
            sibling["depends"] = _append(depends, job.id, suspend_id)
        elif rule in ("a", "b"):
            sibling["depends"] = f"{job.id} {suspend_id}"
        else:
            sibling["depends"] = [job.id, suspend_id]
        if rule in ("b", "c"):
            after = data.get("after")
            if after:
                sibling["after"] = _append(after, job.id)
            else:
                sibling["after"] = job.id if rule == "b" else [job.id]
        if rule != "a" and data.get("group"):
            sibling["group"] = f"{prefix}-{data['group']}"
        return sibling, parameters

    return _new(job, era, variant)


def _append(value: Any, *ids: str) -> Any:
    if isinstance(value, list):
        return [*value, *ids]
    return " ".join((str(value), *ids))
