"""Template engines: which parameters a value uses, and rendering it.

`default` is Python's `str.format` (PlainBox calls `Formatter().vformat`);
`jinja2` renders in a sandboxed environment with jinja2's stock defaults
(undefined renders as "", no autoescape, one trailing newline dropped).
"""

from __future__ import annotations

import functools
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resumed.providers.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

_FORMATTER = string.Formatter()


@functools.cache
def _jinja() -> Any:
    """The sandboxed jinja2 environment (jinja2 is imported on first use: daemon start-up)."""
    import jinja2.sandbox

    return jinja2.sandbox.SandboxedEnvironment()


class MissingParam(Exception):  # noqa: N818 - PlainBox's name
    """A value references a parameter the record does not have."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"reference to unknown parameter {name!r}")


@functools.lru_cache(maxsize=8192)
def accessed_default(value: str) -> frozenset[str]:
    """Field names `str.format` would look up in `value` (whole references, e.g. `a.b`)."""
    try:
        return frozenset(f for _, f, _, _ in _FORMATTER.parse(value) if f is not None)
    except ValueError as exc:
        raise TemplateError(f"malformed format string {value!r}: {exc}") from exc


@functools.lru_cache(maxsize=8192)
def accessed_jinja2(value: str) -> frozenset[str]:
    """Undeclared variables of a jinja2 template string."""
    import jinja2.meta

    try:
        return frozenset(jinja2.meta.find_undeclared_variables(_jinja().parse(value)))
    except jinja2.TemplateError as exc:
        raise TemplateError(f"malformed jinja2 template {value!r}: {exc}") from exc


def accessed_names(value: Any, engine: str, legacy: bool) -> frozenset[str]:
    """Parameter names `value` uses under `engine`.

    1.18.1 (`legacy`) treats every engine but `jinja2` as `default` and only looks
    at strings; current Checkbox knows only `default` and `jinja2`, recurses into
    lists, and for a dict into its first key.
    """
    if legacy:
        if not isinstance(value, str):
            return frozenset()
        return accessed_jinja2(value) if engine == "jinja2" else accessed_default(value)
    if isinstance(value, list):
        return frozenset().union(*(accessed_names(item, engine, legacy) for item in value))
    if isinstance(value, dict):
        return accessed_names(next(iter(value), None), engine, legacy)
    if not isinstance(value, str):
        return frozenset()
    if engine == "jinja2":
        return accessed_jinja2(value)
    if engine == "default":
        return accessed_default(value)
    return frozenset()


@functools.lru_cache(maxsize=8192)
def _jinja_template(value: str) -> jinja2.Template:
    template: jinja2.Template = _jinja().from_string(value)
    return template


def render_default(value: str, parameters: Mapping[str, Any]) -> str:
    """`str.format`-render `value`; `MissingParam` for a missing key, `TemplateError` else.

    PlainBox calls `Formatter().vformat(value, (), parameters)`. `str.format_map`
    gives the same text and the same `KeyError` for named fields, ten times
    faster; anything else it raises (positional fields, bad specs) goes through
    `Formatter` so errors stay exactly PlainBox's.
    """
    try:
        return value.format_map(parameters)
    except KeyError as exc:
        raise MissingParam(str(exc.args[0]) if exc.args else "") from exc
    except Exception:  # noqa: BLE001 - redone by Formatter for PlainBox's exact error
        return _render_formatter(value, parameters)


def _render_formatter(value: str, parameters: Mapping[str, Any]) -> str:
    """`render_default` the way PlainBox does it, with `string.Formatter`."""
    try:
        return _FORMATTER.vformat(value, (), parameters)
    except KeyError as exc:
        raise MissingParam(str(exc.args[0]) if exc.args else "") from exc
    except Exception as exc:  # IndexError, ValueError, AttributeError crash PlainBox's replay
        raise TemplateError(f"cannot render {value!r}: {exc!r}") from exc


def render_jinja2(value: str, parameters: Mapping[str, Any]) -> str:
    """Render `value` with jinja2 (sandboxed) and Checkbox's extra names."""
    import jinja2

    context = dict(parameters)
    context.update(jinja2_environment_names())
    try:
        return _jinja_template(value).render(context)
    except jinja2.TemplateError as exc:  # UndefinedError, syntax, security errors
        raise TemplateError(f"cannot render {value!r}: {exc}") from exc
    except Exception as exc:
        raise TemplateError(f"cannot render {value!r}: {exc!r}") from exc


@functools.cache
def jinja2_environment_names() -> dict[str, Any]:
    """`__checkbox_env__`, `__system_env__`, `__on_ubuntucore__` as Checkbox provides them.

    Read once per process: the resuming process's environment, as in Checkbox.
    """
    snap = os.environ.get("SNAP")
    on_core = False
    if snap:
        on_core = True
        try:
            meta = Path(snap, "meta", "snap.yaml").read_text(encoding="utf-8", errors="replace")
            on_core = "confinement: classic" not in meta
        except OSError:
            pass
    return {
        "__checkbox_env__": {},
        "__system_env__": dict(os.environ),
        "__on_ubuntucore__": on_core,
    }


def render(value: Any, engine: str, parameters: Mapping[str, Any]) -> Any:
    """Render a field value of a generated unit (strings, and strings inside lists)."""
    if isinstance(value, str):
        if engine == "jinja2":
            return render_jinja2(value, parameters)
        return render_default(value, parameters)
    if isinstance(value, list):
        return [render(item, engine, parameters) for item in value]
    return value
