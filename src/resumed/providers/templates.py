"""Template instantiation during resource replay (providers reference §4).

For each record that passes `template-filter`, the instance's data is the
template's data minus `template-*` keys plus `template-engine`, `unit` and (from
2024-02) `template-id`; its parameters are the record keys some value uses plus
`__index__` (1-based over filter-passing records). Instances failing PlainBox's
checks are dropped, or kept as `InvalidJob` under strict template expansion.
"""

from __future__ import annotations

import functools
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
        self.namespace = template.namespace
        self.legacy = not era.relaxed_checks
        self.engine = str(data["template-engine"])
        self.accessed = frozenset().union(
            *(accessed_names(value, self.engine, self.legacy) for value in data.values())
        )
        self.hasher = ChecksumPrefix(data, template.namespace)
        #: The first shape of this template with the same data and parameter names:
        #: every instance hashes the same under both (eras share checksums).
        self.rep = self
        self._checks: _Checks | None = None

    def same_hash_as(self, other: _EraShape) -> bool:
        """Whether instances hash the same under ``other`` (same data and parameters)."""
        return self.accessed == other.accessed and self.data == other.data

    def parameters(self, record: Mapping[str, str], index: int) -> dict[str, Any]:
        params: dict[str, Any] = {k: v for k, v in record.items() if k in self.accessed}
        params["__index__"] = index
        return params

    @property
    def checks(self) -> _Checks:
        """What `check_instance` needs, prepared once per template and era."""
        if self._checks is None:
            self._checks = _Checks(self.data, self.engine, self.legacy, self.namespace)
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

    def __init__(self, data: Mapping[str, Any], engine: str, legacy: bool, namespace: str) -> None:
        self.engine = engine
        self.legacy = legacy
        self.namespace = namespace
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
        #: The rendered fields with the static ones filled in (`id` is rendered first).
        self.base = {name: self.static[name] for name in _RENDERED_FIELDS}
        #: The other rendered fields that depend on the parameters, in rendering order.
        self.dynamic = [name for name in _RENDERED_FIELDS
                        if name != "id" and self.static[name] is _DYNAMIC]
        self.manual_dynamic = [name for name in _MANUAL_ONLY_FIELDS
                               if self.static[name] is _DYNAMIC]
        self._verdicts: dict[tuple[Any, ...], str | None] = {}
        #: The cached properties `_remember` fills besides the id, when the same
        #: for every instance (no field they come from uses a parameter).
        self.relations: dict[str, Any] | None = None
        if all(self.static[name] is not _DYNAMIC for name in _RELATION_FIELDS):
            self.relations = _relations(self.base, self)
        #: Whether `_check_rendered` can take the verdicts on static fields from here.
        self.static_checked = all(self.static[name] is not _DYNAMIC for name in _CHECKED_FIELDS)

    @functools.cached_property
    def plugin_problem(self) -> str | None:
        """`_plugin_problem` of the static fields."""
        return _plugin_problem(self.base)

    @functools.cached_property
    def value_problem(self) -> str | None:
        """`_value_problem` of the static fields."""
        return _value_problem(self.base, self)

    @functools.cached_property
    def relation_problem(self) -> str | None:
        """`_relation_problem` of the static fields."""
        return _relation_problem(self.base, self)

    def verdict(self, kind: str, value: Any, extra: Any = None) -> str | None:
        """`_problem(kind, value, extra)`, remembered for hashable (mostly static) values."""
        key = (kind, type(value), value, type(extra), extra)  # 1 == 1.0 == True
        try:
            return self._verdicts[key]
        except KeyError:
            problem = self._verdicts[key] = _problem(kind, value, extra, self)
            return problem
        except TypeError:  # an unhashable value (a list): not remembered
            return _problem(kind, value, extra, self)

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
        shape = _EraShape(template, era_info(era))
        shape.rep = next((s.rep for s in cache.values() if shape.same_hash_as(s)), shape)
        cache[era] = shape
    return shape


def same_instances(template: TemplateUnit, first: str, second: str) -> bool:
    """Whether `template` keeps the same instances under both eras, whatever the records.

    True when the two eras filter records alike, give instances the same
    parameters and render and check them alike: the same records then give
    instances with the same ids, parameters and per-era checksums (only the data
    differ, by `template-id`). Provider-only, remembered per template.
    """
    cache: dict[tuple[str, str], bool] = template.__dict__.setdefault("_same_instances", {})
    known = cache.get((first, second))
    if known is None:
        try:
            known = _same_instances(template, first, second)
        except ProvidersError:  # a shape or check that cannot be built: instantiate to see
            known = False
        cache[first, second] = known
    return known


def _same_instances(template: TemplateUnit, first: str, second: str) -> bool:
    if (template.data.get("template-filter") is not None
            and era_info(first).template_id != era_info(second).template_id):
        return False  # the filter compiles by the era's rules
    one, two = _shape(template, first), _shape(template, second)
    if one.accessed != two.accessed or _without_template_id(one.data) != _without_template_id(
            two.data):
        return False
    a, b = one.checks, two.checks
    if a.variant != b.variant or a.invariant_problem != b.invariant_problem:
        return False
    # Only the legacy rules render the manual-only fields of every instance.
    return a.legacy == b.legacy or not (a.manual_dynamic or b.manual_dynamic)


def _without_template_id(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "template-id"}


#: What the instances of one record (at one index) share across eras: era variant,
#: era checksum and the per-era checksum cache.
_Shared = tuple[Any, Any, dict[str, str]]


def instantiate(
    template: TemplateUnit,
    records: Sequence[Mapping[str, str]],
    era: str,
    strict: bool = False,
    memo: dict[tuple[int, int], _Shared] | None = None,
) -> list[JobDefinition]:
    """Instantiate `template` over `records` under `era` (see `TemplateUnit.instantiate`).

    `memo` (empty at first) is shared by calls for the same template and the same,
    unchanged `records` under several eras: a record's instances at the same index
    have the same checksum under each era, so it is computed once.
    """
    if memo is None:
        memo = {}
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
    for position, record in enumerate(records):
        if program is not None and not program.evaluate({resource_id: [record]}):
            continue
        index += 1
        params = shape.parameters(record, index)
        shared = memo.get((position, index))
        if shared is None:
            shared = memo[position, index] = (*_variant_maker(template, record, index), {})
        variant, checksum, checksums = shared
        job = JobDefinition(
            shape.data, template.namespace, template.origin, template.provider,
            parameters=params, template_id=template_id, era_variant=variant,
            era_checksum=checksum, built_era=era, era_checksums=checksums,
        )
        problem = check_instance(job, info, shape.checks)
        if problem is None:
            jobs.append(job)
        elif strict:
            log.warning("invalid generated job kept as InvalidJob (%s): %s", template.id, problem)
            jobs.append(InvalidJob(
                shape.data, template.namespace, template.origin, template.provider,
                parameters=params, template_id=template_id, era_variant=variant,
                era_checksum=checksum, built_era=era, era_checksums=checksums,
            ))
        else:
            log.info("ignoring invalid generated job from %s: %s", template.id, problem)
    return jobs


def _variant_maker(
    template: TemplateUnit, record: Mapping[str, str], index: int
) -> tuple[Any, Any]:
    # Each era's `_EraShape.rep`, filled as eras are asked for.
    reps: dict[str, _EraShape] = template.__dict__.setdefault("_era_reps", {})

    def variant(era: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        shape = _shape(template, era)
        return shape.data, shape.parameters(record, index)

    # Eras mostly agree on the data and on which record keys are parameters:
    # hash each distinct shape once, encode each parameter set once.
    texts: dict[frozenset[str], str] = {}
    sums: dict[_EraShape, str] = {}

    def checksum(era: str) -> str:
        shape = reps.get(era)
        if shape is None:
            shape = reps[era] = _shape(template, era).rep
        known = sums.get(shape)
        if known is None:
            text = texts.get(shape.accessed)
            if text is None:
                text = texts[shape.accessed] = parameters_text(shape.parameters(record, index))
            known = sums[shape] = shape.hasher.checksum_text(text)
        return known

    return variant, checksum


def check_instance(job: JobDefinition, era: Era, checks: _Checks | None = None) -> str | None:
    """Why PlainBox (of `era`) rejects this instance, or None if it is kept.

    Raises `TemplateError` where rendering crashes PlainBox's replay. Only the
    fields that use parameters are rendered per instance (`checks`: what the
    instances of one template share, prepared once).
    """
    legacy = not era.relaxed_checks
    if checks is None or checks.legacy != legacy:
        checks = _Checks(job.data, job.engine, legacy, job.namespace)
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
    # Static fields cannot fail to render: rendering the dynamic ones in field
    # order raises exactly what rendering every field in order raises.
    raw, engine = checks.raw, checks.engine
    rendered = checks.base.copy()
    rendered["id"] = rendered_id
    try:
        for name in checks.dynamic:
            rendered[name] = render(raw[name], engine, params)
        if rendered["plugin"] == "manual" or legacy:
            for name in checks.manual_dynamic:
                render(raw[name], engine, params)
    except MissingParam as exc:
        return str(exc)
    _remember(job, rendered, checks)
    return _check_rendered(job, rendered, checks)


def _remember(job: JobDefinition, rendered: Mapping[str, Any], checks: _Checks) -> None:
    """Fill `job`'s cached properties from what the checks rendered.

    The id and plugin as rendered, and the relations of fields the template
    does not have (empty, and so what pulls nothing): the solver asks every
    instance for them, and computing them again would render every field once
    more. What does not depend on the parameters is worked out once per
    template (`_Checks.relations`).
    """
    known = job.__dict__
    name = rendered["id"] if rendered["id"] is not None else rendered["name"]
    known["partial_id"] = partial_id = "" if name is None else str(name)
    known["id"] = f"{job.namespace}::{partial_id}"
    relations = checks.relations
    known.update(_relations(rendered, checks) if relations is None else relations)


#: The rendered fields `_relations` reads.
_RELATION_FIELDS = ("plugin", "depends", "after", "salvages", "flags", "before", "requires",
                    "imports")


def _relations(rendered: Mapping[str, Any], checks: _Checks) -> dict[str, Any]:
    """The cached properties `_remember` fills besides the id (see there)."""
    known: dict[str, Any] = {}
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
        known["resource_ids"] = ()
        known["requires_error"] = None
        if rendered["depends"] is None and rendered["after"] is None:
            known["pull_edges"] = known["pull_ids"] = ()
    if checks.group_absent:
        known["group"] = None
    return known


def _shlex_problem(command: str) -> str | None:
    """Why `shlex.split(command)` fails, or None (only quotes and backslashes can fail)."""
    if _SHLEX_SPECIAL.isdisjoint(command):
        return None
    try:
        shlex.split(command)
    except ValueError as exc:
        return f"bad command: {exc}"
    return None


def _check_rendered(job: JobDefinition, rendered: Mapping[str, Any], checks: _Checks) -> str | None:
    """Why PlainBox rejects the rendered instance (its checks, in its order), or None.

    When every field checked but `command` and the id is static, the verdicts
    on those fields are the template's (`_Checks`), each worked out once, when
    first reached.
    """
    static = checks.static_checked
    problem = checks.plugin_problem if static else _plugin_problem(rendered)
    if problem is None:
        problem = _command_problem(rendered)
    if problem is None:
        problem = checks.value_problem if static else _value_problem(rendered, checks)
    if problem is None and "::" in job.partial_id:
        problem = "generated id contains '::'"
    if problem is None:
        problem = checks.relation_problem if static else _relation_problem(rendered, checks)
    return problem


#: The rendered fields `_check_rendered` reads, besides `command` and the id.
_CHECKED_FIELDS = ("plugin", "user", "estimated_duration", "shell", "requires", "imports",
                   "siblings")


def _plugin_problem(rendered: Mapping[str, Any]) -> str | None:
    plugin = rendered["plugin"]
    return None if plugin in VALID_PLUGINS else f"invalid plugin {plugin!r}"


def _command_problem(rendered: Mapping[str, Any]) -> str | None:
    command = rendered["command"]
    if command is None and rendered["plugin"] != "manual":
        return "command is required"
    if isinstance(command, str):
        return _shlex_problem(command)
    return None


def _value_problem(rendered: Mapping[str, Any], checks: _Checks) -> str | None:
    if rendered["user"] is not None and rendered["user"] != "root":
        return f"invalid user {rendered['user']!r}"
    if rendered["estimated_duration"] is not None:
        problem = checks.verdict("estimated_duration", rendered["estimated_duration"])
        if problem is not None:
            return problem
    if rendered["shell"] is not None and rendered["shell"] not in VALID_SHELLS:
        return f"invalid shell {rendered['shell']!r}"
    return None


def _relation_problem(rendered: Mapping[str, Any], checks: _Checks) -> str | None:
    problem = checks.verdict("requires", rendered["requires"], rendered["imports"])
    if problem is not None:
        return problem
    return checks.verdict("siblings", rendered["siblings"])


def _problem(kind: str, value: Any, extra: Any, checks: _Checks) -> str | None:
    """One of the value checks of `_check_rendered` (pure: `_Checks.verdict` remembers it)."""
    if kind == "estimated_duration":
        duration = parse_duration(value)
        return "estimated_duration must be > 0" if duration is None or duration <= 0 else None
    if kind == "requires":
        try:
            parse_imports(extra)
            if value is not None:
                compile_program(value, checks.namespace, extra)
        except ResourceProgramError as exc:
            return f"bad requires/imports: {exc}"
        return None
    return _check_siblings(value)


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
