"""Typed errors of the provider layer.

Every problem the provider code can meet in hostile or broken input is one of
these classes, so callers (the session layer, the daemon) catch
`ProvidersError` and map it to their own taxonomy.
"""

from __future__ import annotations


class ProvidersError(Exception):
    """Base class of every error raised by `resumed.providers`."""


class UnitParseError(ProvidersError):
    """A unit file (pxu or YAML) cannot be parsed; the whole file is skipped."""

    def __init__(self, message: str, filename: str = "<string>", line: int | None = None) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        where = filename if line is None else f"{filename}:{line}"
        super().__init__(f"{where}: {message}")


class ProviderDefinitionError(ProvidersError):
    """A `.provider` file is invalid; that provider is skipped."""


class ResourceProgramError(ProvidersError):
    """A `requires` / `template-filter` program cannot be compiled."""


class ResourceSyntaxError(ResourceProgramError):
    """A resource expression is not valid Python syntax."""


class CodeNotAllowed(ResourceProgramError):  # noqa: N818 - PlainBox's name
    """A resource expression uses a construct outside PlainBox's whitelist."""


class NoResourcesReferenced(ResourceProgramError):  # noqa: N818 - PlainBox's name
    """A resource expression names no resource."""


class ImportsError(ResourceProgramError):
    """An `imports` / `template-imports` statement is malformed (a raw ValueError in PlainBox)."""


class TemplateError(ProvidersError):
    """A template cannot be instantiated; in PlainBox this crashes the replay."""


class SiblingError(ProvidersError):
    """A `siblings` field is not a JSON list of objects; in PlainBox this crashes `add_unit`."""
