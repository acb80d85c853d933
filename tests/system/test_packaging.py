"""The shipped artefacts: the unit as systemd sees it, the .deb as lintian sees it, the config."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from resumed.config import load_config

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "resumed.service"
CONFIG = REPO / "etc" / "resumed.toml"
DEB_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# SPEC §7: every key of /etc/resumed/resumed.toml.
CONFIG_KEYS = ("session_roots", "provider_dirs", "trusted_owners", "settle", "rescan_interval",
               "debounce", "max_session_bytes")
MAX_EXPOSURE = 5.0
MAX_SETTINGS_PER_COMMENT = 6


def _analyze(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``systemd-analyze`` with Debian's PATH, from a neutral directory."""
    return subprocess.run(["systemd-analyze", *argv], capture_output=True, text=True,
                          cwd="/", env={**os.environ, "PATH": DEB_PATH}, timeout=120,
                          check=False)


def _security_report(unit: str, *extra: str) -> str:
    """Return ``systemd-analyze security --offline`` output for ``unit``."""
    proc = _analyze("security", "--offline=true", "--no-pager", *extra, unit)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.system
def test_installed_unit_verifies_without_a_single_warning(installed_root: Path) -> None:
    """`systemd-analyze verify` of the unit as installed by the .deb prints nothing at all.

    It only warns (exit 0) on typos, so any output on stderr is a failure. The
    manual pages named in Documentation= are looked up in the guest root.
    """
    proc = subprocess.run(
        ["systemd-analyze", "verify", f"--root={installed_root}", "resumed.service"],
        capture_output=True, text=True, cwd="/", timeout=120, check=False,
        env={**os.environ, "PATH": DEB_PATH, "MANPATH": str(installed_root / "usr/share/man")},
    )
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.system
def test_installed_unit_is_enabled_for_boot(installed_root: Path) -> None:
    """dh_installsystemd enabled the unit: multi-user.target wants it after installation."""
    wants = installed_root / "etc/systemd/system/multi-user.target.wants/resumed.service"
    assert wants.readlink() == Path("/lib/systemd/system/resumed.service")


def test_unit_exposure_is_at_most_five() -> None:
    """`systemd-analyze security` rates the shipped unit at most 5.0 (OK or better)."""
    report = _security_report(str(UNIT))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", report)
    assert match, report
    assert float(match.group(1)) <= MAX_EXPOSURE, report


def test_every_setting_left_open_is_explained_in_the_unit() -> None:
    """Each setting `systemd-analyze security` finds open is named in the unit's comments."""
    report = _security_report(str(UNIT))
    text = UNIT.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    open_settings = {m.group(1) for m in re.finditer(r"^✗ ([A-Za-z]+)=", report, re.MULTILINE)}
    assert open_settings, report
    unexplained = sorted(s for s in open_settings if f"{s}=" not in comments)
    assert unexplained == []


def test_every_unit_setting_is_commented() -> None:
    """Every setting of the unit sits under a comment that says why (at most six per comment)."""
    run = None  # settings since the last comment; None before any comment
    for line in UNIT.read_text().splitlines():
        if line.startswith("#"):
            run = 0
        elif not line.strip() or line.startswith("["):
            run = None
        else:
            assert run is not None, f"{line!r} has no comment"
            run += 1
            assert run <= MAX_SETTINGS_PER_COMMENT, f"{line!r} shares a comment with too many"


def test_shipped_config_documents_every_key_and_sets_none() -> None:
    """/etc/resumed/resumed.toml is all comments, and names every SPEC §7 key with its default."""
    text = CONFIG.read_text()
    assert tomllib.loads(text) == {}
    uncommented = "\n".join(
        re.sub(r"^#(?=[a-z_]+ = )", "", line) for line in text.splitlines()
    )
    values = tomllib.loads(uncommented)
    assert sorted(values) == sorted(CONFIG_KEYS)


def test_shipped_config_defaults_are_the_daemon_defaults(tmp_path: Path) -> None:
    """Uncommenting every key of the shipped config changes nothing the daemon does."""
    text = CONFIG.read_text()
    uncommented = tmp_path / "resumed.toml"
    uncommented.write_text("\n".join(
        re.sub(r"^#(?=[a-z_]+ = )", "", line) for line in text.splitlines()))
    environ = {"STATE_DIRECTORY": "/var/lib/resumed"}
    defaults = load_config(None, {}, environ)
    documented = load_config(uncommented, {}, environ)
    # provider_dirs: unset means $PROVIDERPATH or the two default directories.
    assert documented.provider_dirs == (Path("/usr/local/share/plainbox-providers-1"),
                                        Path("/usr/share/plainbox-providers-1"))
    assert dataclasses.replace(documented, provider_dirs=None) == defaults


@pytest.mark.system
def test_package_is_lintian_clean(built_deb: Path) -> None:
    """Lintian finds no error and no warning in the built package."""
    proc = subprocess.run(
        ["lintian", "--fail-on", "error,warning", str(built_deb)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": DEB_PATH},
    )
    tags = [ln for ln in proc.stdout.splitlines() if ln[:2] in ("E:", "W:")]
    assert (proc.returncode, tags) == (0, [])


@pytest.mark.system
def test_manual_pages_render_without_warnings() -> None:
    """resumed(8) and resumectl(1) format cleanly with man's warnings turned on."""
    for page in ("resumed.8", "resumectl.1"):
        proc = subprocess.run(
            ["man", "--warnings", "-l", "-Tutf8", "-Z", str(REPO / "docs" / "man" / page)],
            capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "PATH": DEB_PATH, "LC_ALL": "C.UTF-8"},
        )
        assert (proc.returncode, proc.stderr) == (0, ""), page
