"""Loading ``resumed.toml`` and command-line overrides (SPEC §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resumed.config import Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resumed.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, {}, {})
    assert config == Config(
        session_roots=(Path("/var/tmp/checkbox-ng/sessions"), Path("/var/lib/resumed/sessions")),
        provider_dirs=None,
        trusted_owners=(),
        settle=True,
        rescan_interval=300.0,
        debounce=1.0,
        max_session_bytes=268435456,
        state_dir=Path("/var/lib/resumed"),
    )


def test_state_directory_comes_from_systemd() -> None:
    config = load_config(None, {}, {"STATE_DIRECTORY": "/run/state/resumed"})
    assert config.state_dir == Path("/run/state/resumed")
    assert config.session_roots[1] == Path("/run/state/resumed/sessions")


def test_file_values_and_command_line_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'session_roots = ["/a", "/b"]\nprovider_dirs = ["/p"]\ntrusted_owners = ["ubuntu"]\n'
        "settle = false\nrescan_interval = 60\ndebounce = 0.5\nmax_session_bytes = 1024\n",
    )
    config = load_config(path, {"session_roots": ["/c"], "provider_dirs": None}, {})
    assert config.session_roots == (Path("/c"),)
    assert config.provider_dirs == (Path("/p"),)
    assert config.trusted_owners == ("ubuntu",)
    assert (config.settle, config.rescan_interval, config.debounce) == (False, 60.0, 0.5)
    assert config.max_session_bytes == 1024


def test_state_dir_option_overrides_systemd(tmp_path: Path) -> None:
    config = load_config(None, {"state_dir": str(tmp_path)}, {"STATE_DIRECTORY": "/x"})
    assert config.state_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("settle = [", "invalid TOML"),
        ("colour = 1", "unknown key(s): colour"),
        ("state_dir = '/x'", "unknown key(s): state_dir"),
        ("settle = 'yes'", "settle must be true or false"),
        ("session_roots = 3", "session_roots must be a list"),
        ("session_roots = ['']", "session_roots must be a list"),
        ("trusted_owners = [1]", "trusted_owners must be a list of non-empty user names"),
        ("rescan_interval = 'soon'", "rescan_interval must be a number"),
        ("rescan_interval = 0", "rescan_interval must be a finite number >= 1"),
        ("debounce = -1", "debounce must be a finite number >= 0"),
        ("debounce = nan", "debounce must be a finite number"),
        ("max_session_bytes = 1.5", "max_session_bytes must be a positive integer"),
        ("max_session_bytes = 0", "max_session_bytes must be a positive integer"),
    ],
)
def test_bad_file_is_refused_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {}, {})
    assert message in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml", {}, {})


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        load_config(None, {"colour": 1}, {})
