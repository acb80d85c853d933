"""Fixtures for the daemon core: session roots with real sample sessions, configs, boots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.registry import Registry

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
UNITS_PXU = SAMPLES / "units" / "synth-small.pxu"
NAMESPACE = "com.example.synth"
#: 2020-01-01: "last written in a previous boot" (SPEC §3).
OLD_MTIME = 1577836800.0
BOOT = BootInfo(boot_id="0000-this-boot", boot_time=1700000000.0)


def sample_dir(name: str, writer: str = "checkbox-git-2026-08") -> Path:
    """The sample session directory ``<writer>/<name>.session``."""
    return SAMPLES / writer / f"{name}.session"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty session root."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def second_root(tmp_path: Path) -> Path:
    """Another empty session root, listed after ``root``."""
    path = tmp_path / "second"
    path.mkdir()
    return path


def kinds(changes: list[Any]) -> list[tuple[str, str]]:
    """The (kind, session id) of registry changes, in order."""
    return [(c.kind, c.session_id) for c in changes]


@pytest.fixture
def add_session(root: Path) -> Callable[..., Path]:
    """Copy a sample session into the root under ``session_id``; returns its directory."""

    def add(
        session_id: str,
        sample: str = "small-v11",
        writer: str = "checkbox-git-2026-08",
        mtime: float | None = OLD_MTIME,
        into: Path | None = None,
    ) -> Path:
        target = (into or root) / f"{session_id}.session"
        shutil.copytree(sample_dir(sample, writer), target)
        (target / "session-share").mkdir(exist_ok=True)
        if mtime is not None:
            os.utime(target / "session", (mtime, mtime))
        return target

    return add


@pytest.fixture
def make_config(root: Path, tmp_path: Path) -> Callable[..., Config]:
    """A config over the test root and a state dir in ``tmp_path``."""

    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "session_roots": (root,),
            "provider_dirs": (),
            "trusted_owners": (),
            "settle": True,
            "rescan_interval": 300.0,
            "debounce": 1.0,
            "max_session_bytes": 256 * 1024 * 1024,
            "state_dir": tmp_path / "state",
        }
        values.update(overrides)
        return Config(**values)

    return make


PROVIDER = """[PlainBox Provider]
name = com.example:synth
namespace = com.example.synth
version = 1.0
location = {location}
"""


def write_provider(directory: Path, units_text: str) -> Path:
    """A provider directory holding the sample provider with ``units_text`` as its units."""
    location = directory / "synth"
    (location / "units").mkdir(parents=True, exist_ok=True)
    (location / "units" / "synth-small.pxu").write_text(units_text)
    (directory / "synth.provider").write_text(PROVIDER.format(location=location))
    return directory


def load_synth(directory: Path, units_text: str | None = None) -> Any:
    """Load the sample provider (optionally with edited units) from ``directory``."""
    from resumed.providers.loader import load_providers

    text = UNITS_PXU.read_text() if units_text is None else units_text
    providers = load_providers([write_provider(directory, text)])
    assert providers.units, providers.warnings
    return providers


@pytest.fixture
def providers(tmp_path: Path) -> Any:
    """The sample provider, loaded from a provider directory."""
    return load_synth(tmp_path / "providers")


@pytest.fixture
def providers_with(tmp_path: Path) -> Callable[[Callable[[str], str]], Any]:
    """Load the sample provider with its units text changed by ``change``."""
    counter = iter(range(1000))

    def load(change: Callable[[str], str]) -> Any:
        return load_synth(tmp_path / f"providers-{next(counter)}", change(UNITS_PXU.read_text()))

    return load


@pytest.fixture
def registry_for(make_config: Callable[..., Config], providers: Any) -> Callable[..., Registry]:
    """Build a registry over the test root with the synth providers (config overrides apply)."""

    def make(boot: BootInfo = BOOT, **overrides: Any) -> Registry:
        return Registry(make_config(**overrides), providers, boot)

    return make
