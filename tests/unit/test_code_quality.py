"""The code passes ruff and mypy as configured in pyproject.toml (STYLE.md §11, §12).

The tools are the venv's (Makefile ``TEST_TOOLS``), found next to
``sys.executable``. Outside a venv (the Debian package build, which does not
build-depend on them) the checks are skipped; inside one a missing tool fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# What ruff checks, relative to ROOT: the paths already clean. It grows until
# it is ["src", "tests", "benchmarks"].
RUFF_PATHS = [
    "src/resumed/__init__.py",
    "src/resumed/bootinfo.py",
    "src/resumed/cli",
    "src/resumed/config.py",
    "src/resumed/daemon/__init__.py",
    "src/resumed/daemon/errors.py",
    "src/resumed/daemon/main.py",
    "src/resumed/daemon/names.py",
    "src/resumed/daemon/notify.py",
    "src/resumed/daemon/sleep.py",
    "src/resumed/demo.py",
    "src/resumed/providers/__init__.py",
    "src/resumed/providers/checksum.py",
    "src/resumed/providers/rfc822.py",
    "src/resumed/providers/siblings.py",
    "src/resumed/providers/templates.py",
    "src/resumed/providers/wordlist.py",
    "src/resumed/providers/yamlunits.py",
    "src/resumed/session",
    "src/resumed/settle.py",
    "src/resumed/statefile.py",
    "src/resumed/storage.py",
    "src/resumed/values.py",
    "tests/differential",
    "tests/integration/test_lifecycle.py",
    "tests/integration/test_resumectl.py",
    "tests/integration/test_settle_rules.py",
    "tests/integration/test_sleep.py",
    "tests/integration/test_values.py",
    "tests/reliability",
    "tests/system",
    "tests/unit",
    "benchmarks/generate.py",
]

# Files and directories whose mypy findings fail the test (mypy always checks
# the whole of src/resumed: it follows imports anyway). It grows until it is
# ["src/resumed"].
MYPY_PATHS = [
    "src/resumed/__init__.py",
    "src/resumed/bootinfo.py",
    "src/resumed/cli",
    "src/resumed/config.py",
    "src/resumed/daemon/__init__.py",
    "src/resumed/daemon/app.py",
    "src/resumed/daemon/bus.py",
    "src/resumed/daemon/errors.py",
    "src/resumed/daemon/main.py",
    "src/resumed/daemon/names.py",
    "src/resumed/daemon/notify.py",
    "src/resumed/daemon/sleep.py",
    "src/resumed/demo.py",
    "src/resumed/providers/__init__.py",
    "src/resumed/providers/checksum.py",
    "src/resumed/providers/errors.py",
    "src/resumed/providers/rfc822.py",
    "src/resumed/providers/siblings.py",
    "src/resumed/providers/templates.py",
    "src/resumed/providers/wordlist.py",
    "src/resumed/providers/yamlunits.py",
    "src/resumed/registry.py",
    "src/resumed/session",
    "src/resumed/settle.py",
    "src/resumed/statefile.py",
    "src/resumed/values.py",
]

_MYPY_FINDING = re.compile(r"(?P<path>[^:\s]+\.py):(?:\d+:)* error: ")


def _tool(name: str) -> Path:
    tool = BIN / name
    if not tool.exists():
        if sys.prefix == sys.base_prefix:
            pytest.skip(f"{name} is a venv test tool; {sys.executable} is not a venv")
        pytest.fail(f"{name} is not installed in {BIN}: run `make venv` (Makefile TEST_TOOLS)")
    return tool


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _covered(path: str) -> bool:
    return any(path == root or path.startswith(f"{root}/") for root in MYPY_PATHS)


def test_ruff_finds_nothing() -> None:
    """Every rule selected in pyproject.toml holds on the checked paths."""
    result = _run(_tool("ruff"), "check", "--no-fix", "--output-format=concise", *RUFF_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    """Strict mypy (pyproject.toml) reports no error in the checked files."""
    result = _run(_tool("mypy"), "src/resumed")
    if result.returncode not in (0, 1):
        pytest.fail(f"mypy crashed ({result.returncode}):\n{result.stdout}{result.stderr}")
    findings = [
        line
        for line in result.stdout.splitlines()
        if (match := _MYPY_FINDING.match(line)) and _covered(match["path"])
    ]
    assert not findings, "\n".join(findings)
    if MYPY_PATHS == ["src/resumed"]:
        assert result.returncode == 0, result.stdout + result.stderr
