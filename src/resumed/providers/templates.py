"""Template instantiation during resource replay (providers reference §4).

For each record that passes `template-filter`, the instance's data is the
template's data minus `template-*` keys plus `template-engine`, `unit` and (from
2024-02) `template-id`; its parameters are the record keys some value uses plus
`__index__` (1-based over filter-passing records). Instances failing PlainBox's
checks are dropped, or kept as `InvalidJob` under strict template expansion.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from resumed.providers.checksum import ChecksumPrefix, Era, era_info, parameters_text
from resumed.providers.errors import ProvidersError, ResourceProgramError
from resumed.providers.render import MissingParam, accessed_default, accessed_names, render
from resumed.providers.resource import compile_program, parse_imports
from resumed.providers.units import (
    JOB_UNIT_TYPES,
    InvalidJob,
    JobDefinition,
    TemplateUnit,
    parse_duration,
)

log = logging.getLogger(__name__)

VALID_PLUGINS = frozenset(
    {"shell", "resource", "attachment", "manual", "user-interact", "user-verify",
     "user-interact-verify"}
)
VALID_SHELLS = frozenset({"/bin/sh", "/bin/bash", "bash"})
_VARIANT_FIELDS = ("id", "description", "name")
_INVARIANT_FIELDS = (
    "unit", "plugin", "user", "estimated_duration", "shell", "imports", "category_id",
    "flags", "certification_status", "auto_retry",
)
_RENDERED_FIELDS = (
    "name", "id", "summary", "plugin", "command", "user", "environ", "estimated_duration",
    "depends", "after", "before", "salvages", "requires", "shell", "imports", "flags",
    "category_id", "qml_file", "certification_status", "siblings", "auto_retry",
)
_MANUAL_ONLY_FIELDS = ("description", "purpose", "steps", "verification")
_SLUG_DROP = re.compile(r"[^-_.:/\\A-Za-z0-9]")
_SHLEX_SPECIAL = frozenset("'\"\\")
#: Marks a field whose rendered value differs between instances.
_DYNAMIC = object()


def template_id_of(template: TemplateUnit) -> str:
    """Current Checkbox's `template-id` value: `ns::<template-id or slugified id>` or ""."""
    value = template.data.get("template-id")
    partial = str(value) if value else _SLUG_DROP.sub("", template.partial_id)
    return f"{template.namespace}::{partial}" if partial else ""


class _EraShape:
    """What every instance of one template shares under one era."""

    def __init__(self, template: TemplateUnit, era: Era) -> None:
        data = {k: v for k, v in template.data.items() if not k.startswith("template-")}
        data["template-engine"] = template.data.get("template-engine", "default")
        if era.template_id:
            data["template-id"] = template_id_of(template)
        data["unit"] = template.data.get("template-unit", "job")
        self.data = data
        self.legacy = not era.relaxed_checks
        self.engine = str(data["template-engine"])
        self.accessed = frozenset().union(
            *(accessed_names(value, self.engine, self.legacy) for value in data.values())
        )
        self.hasher = ChecksumPrefix(data, template.namespace)
        self._checks: _Checks | None = None

    def parameters(self, record: Mapping[str, str], index: int) -> dict[str, Any]:
        params: dict[str, Any] = {k: v for k, v in record.items() if k in self.accessed}
        params["__index__"] = index
        return params

    @property
    def checks(self) -> _Checks:
        """What `check_instance` needs, prepared once per template and era."""
        if self._checks is None:
            self._checks = _Checks(self.data, self.engine, self.legacy)
        return self._checks


def _field_value(data: Mapping[str, Any], name: str) -> Any:
    """The raw value `get_record_value` renders: `_name` before `name`."""
    value = data.get("_" + name)
    return data.get(name) if value is None else value


def _static_rendering(value: Any, engine: str) -> Any:
    """`value` rendered, when that cannot depend on the parameters; else `_DYNAMIC`.

    Only values whose rendering cannot fail and uses no parameter qualify:
    strings the default engine formats without any field, lists of those,
    and non-strings. jinja2 strings are always rendered per instance.
    """
    if isinstance(value, list):
        items = [_static_rendering(item, engine) for item in value]
        return _DYNAMIC if any(item is _DYNAMIC for item in items) else items
    if not isinstance(value, str):
        return value
    if engine == "jinja2":
        return _DYNAMIC
    try:
        if accessed_default(value):
            return _DYNAMIC
        return render(value, engine, {})
    except (MissingParam, ProvidersError):
        return _DYNAMIC


class _Checks:
    """The parts of PlainBox's instance checks that are the same for every instance."""

    def __init__(self, data: Mapping[str, Any], engine: str, legacy: bool) -> None:
        self.engine = engine
        self.legacy = legacy
        names = (*_RENDERED_FIELDS, *_MANUAL_ONLY_FIELDS)
        self.raw = {name: _field_value(data, name) for name in names}
        self.static = {name: _static_rendering(self.raw[name], engine) for name in names}
        variant_fields = _VARIANT_FIELDS + (("summary",) if legacy else ())
        #: (field, sorted names it uses) for each variant field present, in check order.
        self.variant: list[tuple[str, list[str]]] = [
            (name, sorted(accessed_names(data[name], engine, legacy)))
            for name in variant_fields if name in data
        ]
        self.group_absent = _field_value(data, "group") is None
        self.invariant_problem: str | None = None
        for name in _INVARIANT_FIELDS:
            if name in data and accessed_names(data[name], engine, legacy):
                self.invariant_problem = f"field {name!r} must not use template parameters"
                break

    def value(self, name: str, params: Mapping[str, Any]) -> Any:
        """The rendered field `name` (`get_record_value`); raises as rendering does."""
        static = self.static[name]
        if static is not _DYNAMIC:
            return static
        return render(self.raw[name], self.engine, params)


def _shape(template: TemplateUnit, era: str) -> _EraShape:
    cache: dict[str, _EraShape] = template.__dict__.setdefault("_era_shapes", {})
    shape = cache.get(era)
    if shape is None:
        shape = cache[era] = _EraShape(template, era_info(era))
    return shape


def instantiate(
    template: TemplateUnit, records: Sequence[Mapping[str, str]], era: str, strict: bool = False
) -> list[JobDefinition]:
    """Instantiate `template` over `records` under `era` (see `TemplateUnit.instantiate`)."""
    info = era_info(era)
    shape = _shape(template, era)
    if shape.data["unit"] not in JOB_UNIT_TYPES:
        return []
    resource_id = template.resource_id
    program = None
    if template.data.get("template-filter") is not None:
        program = compile_program(
            template.data["template-filter"], template.resource_namespace,
            template.data.get("template-imports"), legacy=not info.template_id,
        )
    template_id = template_id_of(template) if info.template_id else None
    jobs: list[JobDefinition] = []
    index = 0
    for record in records:
        if program is not None and not program.evaluate({resource_id: [record]}):
            continue
        index += 1
        params = shape.parameters(record, index)
        variant, checksum = _variant_maker(template, record, index)
        job = JobDefinition(
            shape.data, template.namespace, template.origin, template.provider,
            parameters=params, template_id=template_id, era_variant=variant,
            era_checksum=checksum, built_era=era,
        )
        problem = check_instance(job, info, shape.checks)
        if problem is None:
            jobs.append(job)
        elif strict:
            log.warning("invalid generated job kept as InvalidJob (%s): %s", template.id, problem)
            jobs.append(InvalidJob(
                shape.data, template.namespace, template.origin, template.provider,
                parameters=params, template_id=template_id, era_variant=variant,
                era_checksum=checksum, built_era=era,
            ))
        else:
            log.info("ignoring invalid generated job from %s: %s", template.id, problem)
    return jobs


def _variant_maker(template: TemplateUnit, record: Mapping[str, str], index: int) -> Any:
    def variant(era: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        shape = _shape(template, era)
        return shape.data, shape.parameters(record, index)

    # Eras mostly agree on which record keys are parameters: encode each set once.
    texts: dict[frozenset[str], str] = {}

    def checksum(era: str) -> str:
        shape = _shape(template, era)
        text = texts.get(shape.accessed)
        if text is None:
            text = texts[shape.accessed] = parameters_text(shape.parameters(record, index))
        return shape.hasher.checksum_text(text)

    return variant, checksum


def check_instance(job: JobDefinition, era: Era, checks: _Checks | None = None) -> str | None:
    """Why PlainBox (of `era`) rejects this instance, or None if it is kept.

    Raises `TemplateError` where rendering crashes PlainBox's replay. Only the
    fields that use parameters are rendered per instance (`checks`: what the
    instances of one template share, prepared once).
    """
    legacy = not era.relaxed_checks
    if checks is None or checks.legacy != legacy:
        checks = _Checks(job.data, job.engine, legacy)
    params = job.parameters or {}
    try:  # rendering the id comes first: its crashes (`{}`, undefined.attr) abort replay
        rendered_id = checks.value("id", params)
    except MissingParam as exc:
        return str(exc)
    for name, used in checks.variant:
        if not used:
            return f"field {name!r} must use a template parameter"
        for param in used:
            if param not in params:
                return f"reference to unknown parameter {param!r}"
    if checks.invariant_problem is not None:
        return checks.invariant_problem
    try:
        rendered = {
            name: rendered_id if name == "id" else checks.value(name, params)
            for name in _RENDERED_FIELDS
        }
        plugin = rendered["plugin"]
        if plugin == "manual" or legacy:
            for name in _MANUAL_ONLY_FIELDS:
                checks.value(name, params)
    except MissingParam as exc:
        return str(exc)
    _remember(job, rendered, checks)
    return _check_rendered(job, rendered)


def _remember(job: JobDefinition, rendered: Mapping[str, Any], checks: _Checks) -> None:
    """Fill `job`'s cached properties from what the checks rendered.

    The id and plugin as rendered, and the relations of fields the template
    does not have (empty): the solver asks every instance for them, and
    computing them again would render every field once more.
    """
    known = job.__dict__
    name = rendered["id"] if rendered["id"] is not None else rendered["name"]
    known["partial_id"] = "" if name is None else str(name)
    if rendered["plugin"] is not None:
        known["plugin"] = str(rendered["plugin"])
    for field, cached in (("depends", "depends_ids"), ("after", "after_ids"),
                          ("salvages", "salvages_ids")):
        if rendered[field] is None:
            known[cached] = ()
    if rendered["flags"] is None:
        known["flags"] = frozenset()
        if rendered["before"] is None:
            known["before_ids"] = ()
    if rendered["requires"] is None and rendered["imports"] is None:
        known["_requires"] = ((), None)
    if checks.group_absent:
        known["group"] = None


def _shlex_problem(command: str) -> str | None:
    """Why `shlex.split(command)` fails, or None (only quotes and backslashes can fail)."""
    if _SHLEX_SPECIAL.isdisjoint(command):
        return None
    try:
        shlex.split(command)
    except ValueError as exc:
        return f"bad command: {exc}"
    return None


def _check_rendered(job: JobDefinition, rendered: Mapping[str, Any]) -> str | None:
    plugin = rendered["plugin"]
    if plugin not in VALID_PLUGINS:
        return f"invalid plugin {plugin!r}"
    command = rendered["command"]
    if command is None and plugin != "manual":
        return "command is required"
    if isinstance(command, str):
        problem = _shlex_problem(command)
        if problem is not None:
            return problem
    if rendered["user"] is not None and rendered["user"] != "root":
        return f"invalid user {rendered['user']!r}"
    if rendered["estimated_duration"] is not None:
        duration = parse_duration(rendered["estimated_duration"])
        if duration is None or duration <= 0:
            return "estimated_duration must be > 0"
    if rendered["shell"] is not None and rendered["shell"] not in VALID_SHELLS:
        return f"invalid shell {rendered['shell']!r}"
    if "::" in job.partial_id:
        return "generated id contains '::'"
    try:
        parse_imports(rendered["imports"])
        if rendered["requires"] is not None:
            compile_program(rendered["requires"], job.namespace, rendered["imports"])
    except ResourceProgramError as exc:
        return f"bad requires/imports: {exc}"
    return _check_siblings(rendered["siblings"])


def _check_siblings(value: Any) -> str | None:
    if value is None:
        return None
    try:
        items = value if isinstance(value, list) else json.loads(value)
    except (ValueError, ProvidersError) as exc:
        return f"malformed siblings: {exc}"
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return "siblings must be a list of objects"
    return None
