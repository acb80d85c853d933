"""The code passes ruff and mypy as configured in pyproject.toml (STYLE.md §11, §12).

The tools are the venv's (Makefile ``TEST_TOOLS``), found next to
``sys.executable``. Outside a venv (the Debian package build, which does not
build-depend on them) the checks are skipped; inside one a missing tool fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# The whole tree: every rule selected in pyproject.toml, with its per-file ignores.
RUFF_PATHS = ["src", "tests", "benchmarks"]
# mypy --strict (pyproject.toml) on the package.
MYPY_PATHS = ["src/resumed"]


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


def test_ruff_finds_nothing() -> None:
    """Every rule selected in pyproject.toml holds on src, tests and benchmarks."""
    result = _run(_tool("ruff"), "check", "--no-fix", "--output-format=concise", *RUFF_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    """Strict mypy (pyproject.toml) reports no error in the package."""
    result = _run(_tool("mypy"), *MYPY_PATHS)
    assert result.returncode == 0, result.stdout + result.stderr
