"""PlainBox providers for resume: loading, units, checksums, templates, siblings, run list.

Pure Python: no D-Bus, GLib, sdnotify or watchdog.
"""

from resumed.providers.checksum import CURRENT_ERA, ERA_DESCRIPTIONS, ERAS
from resumed.providers.errors import (
    ProviderDefinitionError,
    ProvidersError,
    ResourceProgramError,
    SiblingError,
    TemplateError,
    UnitParseError,
)
from resumed.providers.loader import (
    BUILTIN_NAMESPACE,
    Provider,
    ProviderSet,
    default_provider_dirs,
    is_builtin_namespace,
    load_providers,
)
from resumed.providers.resource import parse_resource_records
from resumed.providers.siblings import make_siblings
from resumed.providers.solver import DependencyProblem, RunList, solve_run_list
from resumed.providers.units import InvalidJob, JobDefinition, TemplateUnit, Unit

__all__ = [
    "BUILTIN_NAMESPACE",
    "CURRENT_ERA",
    "ERAS",
    "ERA_DESCRIPTIONS",
    "DependencyProblem",
    "InvalidJob",
    "JobDefinition",
    "Provider",
    "ProviderDefinitionError",
    "ProviderSet",
    "ProvidersError",
    "ResourceProgramError",
    "RunList",
    "SiblingError",
    "TemplateError",
    "TemplateUnit",
    "Unit",
    "UnitParseError",
    "default_provider_dirs",
    "is_builtin_namespace",
    "load_providers",
    "make_siblings",
    "parse_resource_records",
    "solve_run_list",
]
