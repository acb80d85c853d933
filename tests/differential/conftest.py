"""Fixtures that run PlainBox 1.18.1's own code beside ours on the same files."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SAMPLES = REPO / "tests" / "data" / "samples"
VENV_SCRIPT = REPO / "tools" / "checkbox-venv.sh"
PIP_FAILED = 3  # tools/checkbox-venv.sh: pip could not install checkbox-ng

PROVIDERS = {
    "synth": ("com.example:synth", "com.example.synth", SAMPLES / "units" / "synth-small.pxu"),
    "rel": ("com.example:rel", "com.example.rel", HERE / "units" / "relations.pxu"),
}


@pytest.fixture(scope="session")
def plainbox_python() -> Path:
    """The python of the checkbox-ng 1.18.1 venv, built on first use."""
    proc = subprocess.run(
        ["bash", str(VENV_SCRIPT)], capture_output=True, text=True, check=False, timeout=900
    )
    if proc.returncode == PIP_FAILED:
        pytest.skip("pip cannot install checkbox-ng 1.18.1: " + proc.stderr.strip()[-2000:])
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def provider_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One provider directory per test provider (``synth``, ``rel``), by short name."""
    root = tmp_path_factory.mktemp("providers")
    dirs = {}
    for short, (name, namespace, pxu) in PROVIDERS.items():
        location = root / short / short
        (location / "units").mkdir(parents=True)
        shutil.copy(pxu, location / "units" / pxu.name)
        (root / short / f"{short}.provider").write_text(
            "[PlainBox Provider]\n"
            f"name = {name}\nnamespace = {namespace}\nversion = 1.0\n"
            f"location = {location}\n"
        )
        dirs[short] = root / short
    return dirs


@dataclass
class PlainBox:
    """PlainBox 1.18.1's own suspend and resume, run in its venv."""

    python: Path

    def _run(
        self, script: str, provider_dirs: Sequence[Path], *args: str
    ) -> subprocess.CompletedProcess[str]:
        dir_args = [arg for path in provider_dirs for arg in ("--provider-dir", str(path))]
        return subprocess.run(
            [str(self.python), str(HERE / script), *dir_args, *args],
            capture_output=True, text=True, check=False, timeout=600,
        )

    def make_session(
        self, spec: dict[str, Any], session_dir: Path, provider_dirs: Sequence[Path]
    ) -> Path:
        """Write ``session_dir`` with PlainBox's SessionState and SessionSuspendHelperN."""
        spec_file = session_dir.with_name(session_dir.name + ".spec.json")
        spec_file.write_text(json.dumps(spec))
        proc = self._run(
            "plainbox_make_session.py", provider_dirs, str(spec_file), str(session_dir)
        )
        assert proc.returncode == 0, proc.stderr
        return session_dir

    def inspect(
        self, path: Path, provider_dirs: Sequence[Path], flags: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Resume ``path`` with PlainBox; the SPEC §6 subset it can express."""
        flag_args = [arg for flag in flags for arg in ("--flag", flag)]
        proc = self._run("plainbox_inspect.py", provider_dirs, *flag_args, str(path))
        assert proc.returncode in (0, 1), proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result


@pytest.fixture(scope="session")
def plainbox(plainbox_python: Path) -> PlainBox:
    """PlainBox 1.18.1's own suspend and resume."""
    return PlainBox(plainbox_python)


@pytest.fixture
def ours() -> Any:
    """Our offline inspect (``resumectl inspect --json``) with the test providers."""
    inspect = pytest.importorskip("resumed.session.inspect")
    errors = pytest.importorskip("resumed.session.errors")

    def run(
        path: Path, provider_dirs: Sequence[Path], flags: Sequence[str] = ()
    ) -> dict[str, Any]:
        try:
            result: dict[str, Any] = inspect.inspect_path(path, list(provider_dirs), list(flags))
        except errors.SessionResumeError as exc:
            return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        return result

    return run

