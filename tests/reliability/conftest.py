"""Fixtures of the reliability suite (issue #6): registries over real roots, the daemon.

The daemon fixtures (``private_bus``, ``workspace``, ``start_daemon``,
``unprivileged_user``) are the integration suite's own, imported from
``tests/integration/conftest.py`` by path (the suite runs with
``--import-mode=importlib``). Plain helpers live in ``support.py``, loaded here
as the module ``reliability_support``. At the end of a run the figures counted
by the tests (cases fuzzed, bombs, kills, hostile inputs) are printed.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


support = _load("reliability_support", HERE / "support.py")
integration = _load("reliability_integration", HERE.parent / "integration" / "conftest.py")

private_bus = integration.private_bus
workspace = integration.workspace
start_daemon = integration.start_daemon
unprivileged_user = integration.unprivileged_user

from resumed.bootinfo import BootInfo  # noqa: E402
from resumed.config import Config  # noqa: E402
from resumed.providers.loader import load_providers  # noqa: E402
from resumed.registry import Registry  # noqa: E402

#: A boot that started in 2023: sessions with 2020 mtimes were written before it.
BOOT = BootInfo(boot_id="0000-reliability-boot", boot_time=1700000000.0)


@pytest.fixture(scope="session")
def provider_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A provider directory with the sample provider."""
    return support.write_provider(tmp_path_factory.mktemp("providers"))


@pytest.fixture(scope="session")
def providers(provider_dir: Path) -> Any:
    """The sample provider, loaded."""
    loaded = load_providers([provider_dir])
    assert loaded.units, loaded.warnings
    return loaded


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty session root."""
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def make_config(root: Path, tmp_path: Path, provider_dir: Path) -> Callable[..., Config]:
    """A config over ``root`` with its state directory in ``tmp_path``."""

    def make(**overrides: Any) -> Config:
        values: dict[str, Any] = {
            "session_roots": (root,), "provider_dirs": (provider_dir,), "trusted_owners": (),
            "settle": True, "rescan_interval": 300.0, "debounce": 1.0,
            "max_session_bytes": 256 * 1024 * 1024, "state_dir": tmp_path / "state",
        }
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture
def make_registry(make_config: Callable[..., Config], providers: Any) -> Callable[..., Registry]:
    """A registry over ``root`` (config overrides as keywords)."""

    def make(**overrides: Any) -> Registry:
        return Registry(make_config(**overrides), providers, BOOT)

    return make


def drain(registry: Registry) -> None:
    """Scan, then resume (and settle) every pending session, as the daemon's worker does."""
    registry.scan()
    for session_id in registry.pending_ids():
        registry.resume_one(session_id)


support.drain = drain


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures of this run (copied into docs/reliability.md)."""
    figures = support.counts()
    if figures:
        terminalreporter.write_sep("-", "reliability figures")
        for key in sorted(figures):
            terminalreporter.write_line(f"{key}: {figures[key]}")
