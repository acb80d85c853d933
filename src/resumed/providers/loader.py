"""Finding and loading PlainBox providers (`.provider` INI files) and their unit files.

Follows the providers reference §1, with our hardening: a `.provider` file, its
directory, a units/jobs directory or a unit file writable by group or others is
skipped with a warning, and one bad provider or unit file never stops the others.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from resumed.providers.errors import ProviderDefinitionError, UnitParseError
from resumed.providers.rfc822 import Record, load_pxu_file
from resumed.providers.units import JobDefinition, TemplateUnit, Unit, make_unit
from resumed.providers.yamlunits import load_yaml_file

log = logging.getLogger(__name__)

SECTION = "PlainBox Provider"
DEFAULT_PROVIDER_DIRS = (
    Path("/usr/local/share/plainbox-providers-1"),
    Path("/usr/share/plainbox-providers-1"),
)
BUILTIN_NAMESPACE = "com.canonical.plainbox"
_IQN = r"([0-9]{4}\.)?[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+:[a-z][a-z0-9-]*"
_NAME_RE = re.compile(rf"^({_IQN})|([a-z0-9-]+)$")
_FULL_IQN_RE = re.compile(rf"^{_IQN}$")
_VERSION_RE = re.compile(r"\s*v?([0-9]+!)?[0-9]+")
_GETTEXT_RE = re.compile(r"[a-z0-9_-]+")
_DIR_KEYS = ("units_dir", "jobs_dir", "data_dir", "bin_dir", "locale_dir")
_BOOLEANS = configparser.ConfigParser.BOOLEAN_STATES
_JOBS_EXT = frozenset({".txt", ".in", ".pxu"})
_UNITS_EXT = frozenset({".txt", ".pxu"})
_YAML_EXT = frozenset({".yaml", ".yml"})
Warn = Callable[[str], None]


def is_builtin_namespace(namespace: str) -> bool:
    """True for Checkbox's built-in provider namespace (`com.canonical.plainbox`).

    Its units (`manifest`, `collect-manifest`, …) are not shipped.
    """
    return namespace == BUILTIN_NAMESPACE


def default_provider_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """`$PROVIDERPATH` (colon-separated, empty parts skipped) if set, else the defaults."""
    env = os.environ if environ is None else environ
    if "PROVIDERPATH" in env:
        return [Path(part) for part in env["PROVIDERPATH"].split(":") if part]
    return list(DEFAULT_PROVIDER_DIRS)


@dataclass
class Provider:
    """One loaded provider: its definition and the units of its unit files."""

    name: str
    namespace: str
    version: str
    definition: Path
    location: Path | None = None
    description: str | None = None
    gettext_domain: str | None = None
    units_dir: Path | None = None
    jobs_dir: Path | None = None
    data_dir: Path | None = None
    bin_dir: Path | None = None
    locale_dir: Path | None = None
    units: list[Unit] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class ProviderSet:
    """Every provider found, in load order, with their job and template units."""

    providers: list[Provider] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unit_files: dict[Path, tuple[int, int]] = field(default_factory=dict)

    @property
    def jobs(self) -> list[JobDefinition]:
        """The job units, in load order."""
        return [unit for unit in self.units if isinstance(unit, JobDefinition)]

    @property
    def templates(self) -> list[TemplateUnit]:
        """The template units, in load order."""
        return [unit for unit in self.units if isinstance(unit, TemplateUnit)]

    @property
    def namespaces(self) -> set[str]:
        """Namespaces of the loaded providers."""
        return {provider.namespace for provider in self.providers}


def _unsafe(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def load_providers(dirs: Sequence[Path]) -> ProviderSet:
    """Load every `*.provider` file directly inside `dirs`, sorted by full path."""
    result = ProviderSet()

    def warn(message: str) -> None:
        log.warning("%s", message)
        result.warnings.append(message)

    found: set[Path] = set()
    for directory in dirs:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            log.debug("provider directory %s not readable: %s", directory, exc)
            continue
        for entry in entries:
            try:
                if entry.name.endswith(".provider") and entry.is_file():
                    found.add(Path(entry.path))
            except OSError:
                continue
    for path in sorted(found, key=str):
        try:
            st, dir_st = path.stat(), path.parent.stat()
        except OSError as exc:
            warn(f"skipping provider {path}: {exc}")
            continue
        if _unsafe(st) or _unsafe(dir_st):
            which = path if _unsafe(st) else path.parent
            warn(f"skipping provider {path}: {which} is writable by group or others")
            continue
        result.unit_files[path] = (st.st_mtime_ns, st.st_size)
        try:
            provider = load_provider(path)
        except ProviderDefinitionError as exc:
            warn(f"skipping provider {path}: {exc}")
            continue
        _load_units(provider, result, warn)
        result.providers.append(provider)
        result.units.extend(provider.units)
    return result


def load_provider(path: Path) -> Provider:
    """Parse and validate a `.provider` file (no units). Raises `ProviderDefinitionError`."""
    try:
        text = path.read_bytes().decode("utf-8")
        parser = configparser.ConfigParser(delimiters=("=",), allow_no_value=True, strict=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text, str(path))
        values = dict(parser.items(SECTION)) if parser.has_section(SECTION) else {}
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ProviderDefinitionError(f"cannot read provider definition: {exc}") from exc
    return _validate(path, values)


def _problem(key: str, message: str) -> ProviderDefinitionError:
    return ProviderDefinitionError(f"Problem in provider definition, field {key!r}: {message}")


def _directory(key: str, value: str | None) -> Path | None:
    if value is None:
        return None
    if not value:
        raise _problem(key, "cannot be empty")
    if not os.path.isabs(value):
        raise _problem(key, "cannot be relative")
    if not os.path.isdir(value):
        raise _problem(key, "no such directory")
    return Path(value)


def _validate(path: Path, values: Mapping[str, str | None]) -> Provider:
    relocatable = False
    if values.get("relocatable") is not None:
        flag = str(values["relocatable"]).lower()
        if flag not in _BOOLEANS:
            raise _problem("relocatable", f"not a boolean: {values['relocatable']!r}")
        relocatable = _BOOLEANS[flag]
    location = _directory("location", values.get("location"))
    name = values.get("name")
    if not name:
        raise _problem("name", "must be set")
    if not _NAME_RE.match(name):
        raise _problem("name", "must look like RFC3720 IQN")
    namespace = values.get("namespace")
    if namespace is not None and not namespace:
        raise _problem("namespace", "cannot be empty")
    version = values.get("version")
    if not version or not _VERSION_RE.match(version):
        raise _problem("version", "must be a PEP 440 version")
    gettext_domain = values.get("gettext_domain")
    if gettext_domain is not None and not _GETTEXT_RE.match(gettext_domain):
        raise _problem("gettext_domain", "invalid gettext domain")
    dirs = {key: _directory(key, values.get(key)) for key in _DIR_KEYS}
    if not namespace and not _FULL_IQN_RE.match(name):
        raise _problem("name", "must look like RFC3720 IQN")
    if relocatable:
        location = path.parent
        dirs = dict.fromkeys(_DIR_KEYS)
    if location is not None:
        for key in _DIR_KEYS:
            if dirs[key] is None:
                default = location / key.removesuffix("_dir")
                if default.is_dir():
                    dirs[key] = default
                elif key == "locale_dir" and (location / "build" / "mo").is_dir():
                    dirs[key] = location / "build" / "mo"
    return Provider(
        name=name,
        namespace=namespace or name.split(":", 1)[0],
        version=version,
        definition=path,
        location=location,
        description=values.get("description"),
        gettext_domain=gettext_domain,
        units_dir=dirs["units_dir"],
        jobs_dir=dirs["jobs_dir"],
        data_dir=dirs["data_dir"],
        bin_dir=dirs["bin_dir"],
        locale_dir=dirs["locale_dir"],
    )


def _classify(path: str, provider: Provider) -> str | None:
    ext = os.path.splitext(path)[1]
    if provider.jobs_dir is not None and path.startswith(str(provider.jobs_dir)):
        if ext in _JOBS_EXT:
            return "pxu"
        if ext in _YAML_EXT:
            return "yaml"
    if provider.units_dir is not None and path.startswith(str(provider.units_dir)):
        if ext in _UNITS_EXT:
            return "pxu"
        if ext in _YAML_EXT:
            return "yaml"
    return None


def _unit_file_paths(provider: Provider, warn: Warn) -> list[str]:
    """Unit files of `provider` (§1.7), minus those in unsafe places, sorted."""
    targets = [str(d) for d in (provider.units_dir, provider.jobs_dir) if d is not None]
    if provider.location is not None:
        loc = provider.location
        roots = [loc, loc / "src", loc / "build" / "bin", loc / "build" / "mo"]
    else:
        roots = [d for d in (getattr(provider, k) for k in _DIR_KEYS) if d is not None]
    found: set[str] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            inside = any(dirpath.startswith(t) for t in targets)
            if inside and _unsafe_dir(dirpath, warn):
                dirnames[:] = []
                continue
            dirnames[:] = [
                d for d in dirnames
                if any(_may_hold(os.path.join(dirpath, d), t) for t in targets)
            ]
            found.update(os.path.join(dirpath, name) for name in filenames)
    return sorted(found)


def _may_hold(directory: str, target: str) -> bool:
    return directory.startswith(target) or target.startswith(directory + os.sep)


def _unsafe_dir(directory: str, warn: Warn) -> bool:
    try:
        unsafe = _unsafe(os.stat(directory))
    except OSError:
        return True
    if unsafe:
        warn(f"skipping unit directory {directory}: writable by group or others")
    return unsafe


def _load_units(provider: Provider, result: ProviderSet, warn: Warn) -> None:
    for path in _unit_file_paths(provider, warn):
        kind = _classify(path, provider)
        if kind is None:
            continue
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            if _unsafe(st):
                raise UnitParseError("writable by group or others", path)
            result.unit_files[Path(path)] = (st.st_mtime_ns, st.st_size)
            records: list[Record] = (
                load_pxu_file(Path(path)) if kind == "pxu" else load_yaml_file(Path(path))
            )
            units = [make_unit(r.data, provider.namespace, r.origin, provider) for r in records]
        except (OSError, UnitParseError) as exc:
            message = f"skipping unit file {path} of provider {provider.name}: {exc}"
            provider.problems.append(message)
            warn(message)
            continue
        provider.units.extend(unit for unit in units if unit is not None)
