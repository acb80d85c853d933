"""Units: `JobDefinition` and `TemplateUnit` (other unit types are parsed and ignored).

A unit keeps its field dict (`data`, PlainBox's `_data`: every key as written,
translatable `_name` keys included), its provider namespace and its origin.
Derived values (ids, relations, checksums) are computed on first use and cached.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from resumed.providers.checksum import compute_checksum
from resumed.providers.errors import ProvidersError, UnitParseError
from resumed.providers.render import MissingParam, render
from resumed.providers.resource import compile_program
from resumed.providers.wordlist import qualify, words_of

if TYPE_CHECKING:
    from resumed.providers.loader import Provider

JOB_UNIT_TYPES = frozenset({"job", "setup job"})
IGNORED_UNIT_TYPES = frozenset(
    {"test plan", "category", "manifest entry", "packaging meta-data", "exporter", "unit"}
)
SUSPEND_AUTO_ID = "com.canonical.certification::suspend/suspend_advanced_auto"
SUSPEND_MANUAL_ID = "com.canonical.certification::suspend/suspend_advanced"
UNCATEGORISED = "com.canonical.plainbox::uncategorised"
EraVariant = Callable[[str], tuple[dict[str, Any], dict[str, Any] | None]]
EraChecksum = Callable[[str], str]
_DURATION = re.compile(r"^(\d+h)?[ :]*(\d+m)?[ :]*(\d+s)?$")


class Unit:
    """A provider unit: `data` (hashed fields), `namespace`, `origin` (file:line)."""

    def __init__(
        self,
        data: dict[str, Any],
        namespace: str,
        origin: str = "",
        provider: Provider | None = None,
    ) -> None:
        self.data = data
        self.namespace = namespace
        self.origin = origin
        self.provider = provider

    @property
    def unit_type(self) -> str:
        """The `unit:` value (default `job`)."""
        return str(self.data.get("unit", "job"))

    @functools.cached_property
    def partial_id(self) -> str:
        """The `id` field (else the legacy `name` field) as written."""
        value = self.data.get("id")
        if value is None:
            value = self.data.get("name")
        return "" if value is None else str(value)

    @functools.cached_property
    def id(self) -> str:
        """The qualified id `namespace::partial id`."""
        return f"{self.namespace}::{self.partial_id}"

    @functools.cached_property
    def checksum(self) -> str:
        """PlainBox's checksum of this unit."""
        return compute_checksum(self.data, self.namespace)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} at {self.origin}>"


class JobDefinition(Unit):
    """A job: a provider job, a template instance (`is_generated`) or a sibling.

    `parameters` is None for plain jobs. `checksum` uses the data as built;
    `checksum_for(era)` uses the data the Checkbox of that era would have built
    (generated jobs and siblings differ between eras, plain jobs never do).
    """

    is_invalid = False

    def __init__(
        self,
        data: dict[str, Any],
        namespace: str,
        origin: str = "",
        provider: Provider | None = None,
        *,
        parameters: dict[str, Any] | None = None,
        template_id: str | None = None,
        era_variant: EraVariant | None = None,
        era_checksum: EraChecksum | None = None,
        built_era: str | None = None,
        era_checksums: dict[str, str] | None = None,
    ) -> None:
        super().__init__(data, namespace, origin, provider)
        self.parameters = parameters
        self.template_id = template_id
        self._era_variant = era_variant
        # A faster `checksum_for` (same values) and the era `data` was built for.
        self._era_checksum = era_checksum
        self._built_era = built_era
        # Checksums by era, maybe shared with other instances of the same record.
        self._era_checksums: dict[str, str] = {} if era_checksums is None else era_checksums

    @property
    def is_generated(self) -> bool:
        """True for a template instance (a parametric unit)."""
        return self.parameters is not None

    @property
    def engine(self) -> str:
        """The template engine used to render fields (`default` or `jinja2`)."""
        return str(self.data.get("template-engine", "default"))

    @property
    def render_parameters(self) -> Mapping[str, Any]:
        """The mapping fields are rendered with."""
        return self.parameters or {}

    # -- field access ---------------------------------------------------
    def get_record_value(self, name: str, default: Any = None) -> Any:
        """PlainBox's `get_record_value`: `_name` before `name`, rendered if generated.

        Raises `MissingParam` or `TemplateError` when rendering fails.
        """
        value = self.data.get("_" + name)
        if value is None:
            value = self.data.get(name)
        if value is None:
            return default
        if self.parameters is not None:
            return render(value, self.engine, self.render_parameters)
        return value

    def field(self, name: str, default: Any = None) -> Any:
        """Like `get_record_value`, but falls back to the raw value when rendering fails."""
        try:
            return self.get_record_value(name, default)
        except (MissingParam, ProvidersError):
            value = self.data.get("_" + name, self.data.get(name))
            return default if value is None else value

    def variant_for(self, era: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The hashed `(data, parameters)` as the Checkbox of `era` builds them."""
        if self._era_variant is None:
            return self.data, self.parameters
        return self._era_variant(era)

    def data_for(self, era: str) -> dict[str, Any]:
        """The hashed data as the Checkbox of `era` builds it."""
        return self.variant_for(era)[0]

    def checksum_for(self, era: str) -> str:
        """The checksum under `era`'s rule (cached per era)."""
        if self._era_variant is None:
            return self.checksum
        known = self._era_checksums.get(era)
        if known is None:
            if self._era_checksum is not None:
                known = self._era_checksum(era)
            else:
                data, parameters = self._era_variant(era)
                known = compute_checksum(data, self.namespace, parameters)
            self._era_checksums[era] = known
        return known

    @functools.cached_property
    def checksum(self) -> str:
        """PlainBox's checksum of this job as built (parameters included)."""
        if self._built_era is not None:
            return self.checksum_for(self._built_era)
        return compute_checksum(self.data, self.namespace, self.parameters)

    @functools.cached_property
    def partial_id(self) -> str:
        """The rendered `id` (else `name`) field."""
        value = self.field("id")
        if value is None:
            value = self.field("name")
        return "" if value is None else str(value)

    @functools.cached_property
    def plugin(self) -> str | None:
        """The `plugin` field; `shell` when missing and the `simple` flag is set."""
        value = self.field("plugin")
        if value is None and "simple" in self.flags:
            return "shell"
        return None if value is None else str(value)

    @functools.cached_property
    def flags(self) -> frozenset[str]:
        r"""The flag set (`re.split(r"[\s,]+")` of a string, or a YAML list)."""
        value = self.field("flags")
        if value is None:
            return frozenset()
        if isinstance(value, list):
            return frozenset(str(item) for item in value)
        return frozenset(re.split(r"[\s,]+", str(value)))

    @functools.cached_property
    def summary(self) -> str:
        """`_summary`, else `summary`, else the partial id."""
        value = self.field("summary")
        return self.partial_id if value is None else str(value)

    @functools.cached_property
    def estimated_duration(self) -> float | int | None:
        """Seconds, as PlainBox's `estimated_duration` property computes them."""
        return parse_duration(self.field("estimated_duration"))

    @functools.cached_property
    def category_id(self) -> str:
        """The qualified category id."""
        value = self.field("category_id")
        return UNCATEGORISED if not value else qualify(str(value), self.namespace)

    @functools.cached_property
    def group(self) -> str | None:
        """The `group` field (current Checkbox), or None."""
        value = self.field("group")
        return None if value in (None, "") else str(value)

    def _ids(self, name: str) -> tuple[str, ...]:
        words = words_of(self.field(name))
        return tuple(dict.fromkeys(qualify(word, self.namespace) for word in words))

    @functools.cached_property
    def depends_ids(self) -> tuple[str, ...]:
        """Qualified ids named by `depends`, in order."""
        return self._ids("depends")

    @functools.cached_property
    def after_ids(self) -> tuple[str, ...]:
        """Qualified ids named by `after`, in order."""
        return self._ids("after")

    @functools.cached_property
    def salvages_ids(self) -> tuple[str, ...]:
        """Qualified ids named by `salvages`, in order."""
        return self._ids("salvages")

    @functools.cached_property
    def before_ids(self) -> tuple[str, ...]:
        """Qualified ids named by `before`, plus (current Checkbox) some suspend jobs.

        Those are the suspend jobs the job's after-suspend siblings need and the
        job itself does not depend on or come after.
        """
        ids = list(self._ids("before"))
        pulled = set(self.depends_ids) | set(self.after_ids)
        for flag, suspend in (("also-after-suspend", SUSPEND_AUTO_ID),
                              ("also-after-suspend-manual", SUSPEND_MANUAL_ID)):
            if flag in self.flags and suspend not in pulled and suspend not in ids:
                ids.append(suspend)
        return tuple(ids)

    @functools.cached_property
    def _requires(self) -> tuple[tuple[str, ...], str | None]:
        try:
            program = compile_program(
                self.field("requires"), self.namespace, self.field("imports")
            )
            return program.resource_ids, None
        except ProvidersError as exc:
            return (), str(exc)

    @functools.cached_property
    def pull_edges(self) -> tuple[tuple[str, str], ...]:
        """`(id, relation)` for every job this one pulls into the run list.

        `depends`, then `after`, then `resource` (from `requires`), in field order.
        """
        edges = [(d, "depends") for d in self.depends_ids]
        edges += [(d, "after") for d in self.after_ids]
        edges += [(d, "resource") for d in self.resource_ids]
        return tuple(edges)

    @functools.cached_property
    def pull_ids(self) -> tuple[str, ...]:
        """The ids of `pull_edges`, in order, without duplicates."""
        return tuple(dict.fromkeys(d for d, _ in self.pull_edges))

    @functools.cached_property
    def resource_ids(self) -> tuple[str, ...]:
        """Resource job ids named by `requires` (`imports` aliases resolved); () if broken."""
        return self._requires[0]

    @functools.cached_property
    def requires_error(self) -> str | None:
        """Why `requires`/`imports` cannot be compiled, or None.

        PlainBox's readiness pass raises on such a job whenever it is on the run list.
        """
        return self._requires[1]


class InvalidJob(JobDefinition):
    """Current Checkbox's stand-in for an invalid template instance (strict expansion).

    Same data and checksum as the plain instance; missing parameters render as
    `MISSING_PARAM_<__index__>` (default engine). It runs as an immediate fail.
    """

    is_invalid = True

    @property
    def render_parameters(self) -> Mapping[str, Any]:
        """Parameters that fill every missing key with `MISSING_PARAM_<index>`."""
        return _FillMap(self.parameters or {})


class _FillMap(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return f"MISSING_PARAM_{self.get('__index__')}"


class TemplateUnit(Unit):
    """A template (`unit: template`): instances come from a resource job's records."""

    @functools.cached_property
    def resource_id(self) -> str:
        """The qualified id of the resource job (`template-resource`, imports resolved).

        Raises `ImportsError` for malformed `template-imports`, as PlainBox does on
        every replay.
        """
        from resumed.providers.resource import parse_imports

        value = str(self.data.get("template-resource", ""))
        namespace, sep, partial = value.partition("::")
        if not sep:
            namespace, partial = self.namespace, value
        for target, alias in parse_imports(self.data.get("template-imports")):
            if alias == partial:
                return target
        return f"{namespace}::{partial}"

    @property
    def resource_namespace(self) -> str:
        """The namespace of `template-resource` (the filter's implicit namespace)."""
        value = str(self.data.get("template-resource", ""))
        return value.partition("::")[0] if "::" in value else self.namespace

    def instantiate(
        self,
        records: Sequence[Mapping[str, str]],
        era: str,
        strict: bool = False,
        memo: dict[tuple[int, int], Any] | None = None,
    ) -> list[JobDefinition]:
        """The jobs this template makes from `records` under `era`'s rules.

        `strict` is current Checkbox's `strict_template_expansion` session flag: an
        invalid instance becomes an `InvalidJob` instead of being dropped.
        `memo`: an initially empty dict to pass to every call over the same
        (unchanged) `records`, under several eras: their checksums are then
        computed once. Raises `TemplateError`/`ResourceProgramError` where
        PlainBox's replay crashes.
        """
        from resumed.providers.templates import instantiate

        return instantiate(self, records, era, strict, memo)


def parse_duration(value: Any) -> float | int | None:
    """PlainBox's `estimated_duration`: numbers as is, `1h 2m 3s` style, else float, else None."""
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    match = _DURATION.match(text)
    if match:
        h, m, s = (int(g[:-1]) if g else 0 for g in match.groups())
        return h * 3600 + m * 60 + s
    try:
        return float(text)
    except ValueError:
        return None


def make_unit(
    data: dict[str, Any], namespace: str, origin: str, provider: Provider | None = None
) -> Unit | None:
    """Build the unit for one record; None for unit types resume ignores.

    Raises `UnitParseError` for an unknown `unit:` value (PlainBox skips the file).
    """
    kind = data.get("unit", "job")
    if not isinstance(kind, str):
        raise UnitParseError(f"Unknown unit type: {kind!r}", origin.rpartition(":")[0])
    if kind in JOB_UNIT_TYPES:
        return JobDefinition(data, namespace, origin, provider)
    if kind == "template":
        return TemplateUnit(data, namespace, origin, provider)
    if kind in IGNORED_UNIT_TYPES:
        return None
    raise UnitParseError(f"Unknown unit type: {kind!r}", origin.rpartition(":")[0])
