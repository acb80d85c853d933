"""Configuration: ``/etc/resumed/resumed.toml``, overridden by the command line (SPEC §7).

Every key is optional. Unknown keys and wrong types are a :class:`ConfigError`
with a message that names the key, so a bad file is refused at start and on
reload (where the old config stays).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/resumed/resumed.toml")
CHECKBOX_SESSION_ROOT = Path("/var/tmp/checkbox-ng/sessions")  # noqa: S108 - Checkbox writes here
DEFAULT_STATE_DIR = Path("/var/lib/resumed")
DEFAULT_RESCAN_INTERVAL = 300.0
DEFAULT_DEBOUNCE = 1.0
DEFAULT_MAX_SESSION_BYTES = 268435456

#: Keys of the TOML file (SPEC §7).
FILE_KEYS = frozenset(
    {
        "session_roots",
        "provider_dirs",
        "trusted_owners",
        "settle",
        "rescan_interval",
        "debounce",
        "max_session_bytes",
    }
)
#: Keys accepted as overrides: the file's, plus ``state_dir`` (``--state-dir``; under
#: systemd it comes from ``$STATE_DIRECTORY``).
OPTION_KEYS = FILE_KEYS | {"state_dir"}


class ConfigError(Exception):
    """The configuration file or an option is invalid; the message says which and why."""


@dataclass(frozen=True)
class Config:
    """The daemon's settings after defaults, file and command line are merged."""

    session_roots: tuple[Path, ...]
    provider_dirs: tuple[Path, ...] | None
    trusted_owners: tuple[str, ...]
    settle: bool
    rescan_interval: float
    debounce: float
    max_session_bytes: int
    state_dir: Path


def _state_dir_default(environ: Mapping[str, str]) -> Path:
    # systemd may pass several colon-separated directories; the first is ours.
    value = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(value) if value else DEFAULT_STATE_DIR


def _paths(key: str, value: object) -> tuple[Path, ...]:
    if isinstance(value, str | Path):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str | Path) and str(v) for v in value
    ):
        raise ConfigError(f"{key} must be a list of non-empty path strings")
    return tuple(Path(v) for v in value)


def _names(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key} must be a list of non-empty user names")
    return tuple(value)


def _seconds(key: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key} must be a number of seconds, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < minimum:
        raise ConfigError(f"{key} must be a finite number >= {minimum:g}, not {value!r}")
    return number


def _merge(path: Path | None, overrides: Mapping[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    if path is not None:
        try:
            with path.open("rb") as stream:
                values.update(tomllib.load(stream))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from error
        except OSError as error:
            raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
        unknown = sorted(set(values) - FILE_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s): {', '.join(unknown)}")
    unknown = sorted(set(overrides) - OPTION_KEYS)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def load_config(
    path: Path | None, overrides: Mapping[str, object], environ: Mapping[str, str]
) -> Config:
    """Build the config from defaults, the TOML file at ``path`` (if any) and ``overrides``.

    ``overrides`` holds command-line values by config key (``None`` means "not given");
    ``environ`` supplies ``STATE_DIRECTORY``. Raises :class:`ConfigError`.
    """
    values = _merge(path, overrides)
    state_dir = _paths("state_dir", values.get("state_dir", _state_dir_default(environ)))
    if len(state_dir) != 1:
        raise ConfigError("state_dir must be one path")
    roots_default = [CHECKBOX_SESSION_ROOT, state_dir[0] / "sessions"]
    settle = values.get("settle", True)
    if not isinstance(settle, bool):
        raise ConfigError(f"settle must be true or false, not {settle!r}")
    max_bytes = values.get("max_session_bytes", DEFAULT_MAX_SESSION_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"max_session_bytes must be a positive integer, not {max_bytes!r}")
    provider_dirs = values.get("provider_dirs")
    return Config(
        session_roots=_paths("session_roots", values.get("session_roots", roots_default)),
        provider_dirs=None if provider_dirs is None else _paths("provider_dirs", provider_dirs),
        trusted_owners=_names("trusted_owners", values.get("trusted_owners", [])),
        settle=settle,
        rescan_interval=_seconds(
            "rescan_interval", values.get("rescan_interval", DEFAULT_RESCAN_INTERVAL), 1.0
        ),
        debounce=_seconds("debounce", values.get("debounce", DEFAULT_DEBOUNCE), 0.0),
        max_session_bytes=max_bytes,
        state_dir=state_dir[0],
    )
