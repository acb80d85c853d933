"""The core stays pure: resumed.session and resumed.providers load no D-Bus/GLib/systemd code."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("gi", "pydbus", "sdnotify", "watchdog")
CORE_MODULES = (
    "resumed.session.envelope",
    "resumed.session.formats",
    "resumed.session.model",
    "resumed.session.iolog",
    "resumed.session.peek",
    "resumed.session.suspend",
    "resumed.session.resume",
    "resumed.session.inspect",
    "resumed.providers.loader",
    "resumed.providers.solver",
    "resumed.providers.templates",
    "resumed.providers.siblings",
)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_bus_glib_or_systemd_library(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_forbidden_libraries_are_really_importable_here() -> None:
    """Guards the test above: a missing library would make it pass vacuously."""
    code = "import gi, pydbus, sdnotify, watchdog"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
