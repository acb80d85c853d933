"""Shared builders for session tests: minimal valid documents of every version."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resumed.session.formats import VERSIONS

MakeDoc = Callable[..., dict[str, Any]]


def minimal_document(version: int) -> dict[str, Any]:
    """The smallest valid session document of ``version`` (no jobs)."""
    features = VERSIONS[version]
    metadata: dict[str, Any] = {"title": "t", "flags": ["incomplete"], "running_job_name": None}
    if features.has("app_blob"):
        metadata["app_blob"] = None
    if features.has("app_id"):
        metadata["app_id"] = "checkbox-cli"
    if features.has("custom_joblist"):
        metadata["custom_joblist"] = False
        metadata["rejected_jobs"] = []
    if features.has("last_job_start_time"):
        metadata["last_job_start_time"] = 1.5
    if features.has("remaining_todo_jobs"):
        metadata["remaining_todo_jobs"] = True
    session: dict[str, Any] = {
        "jobs": {},
        "results": {},
        "desired_job_list": [],
        "mandatory_job_list": [],
        "metadata": metadata,
    }
    if features.has("system_information"):
        session["system_information"] = {}
    return {"version": version, "session": session}


@pytest.fixture
def make_doc() -> MakeDoc:
    """Build a minimal document of a version, with ``session`` keys replaced."""

    def build(version: int = 11, **session: Any) -> dict[str, Any]:
        doc = minimal_document(version)
        doc["session"].update(copy.deepcopy(session))
        return doc

    return build


SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"

MakeProvider = Callable[..., Path]


def write_provider(root: Path, name: str, namespace: str, units: dict[str, str]) -> Path:
    """Write a provider ``name`` with unit files ``units`` under ``root``; return its dir."""
    providers = root / "providers"
    location = root / name.replace(":", "_")
    (location / "units").mkdir(parents=True)
    providers.mkdir(exist_ok=True)
    for filename, text in units.items():
        (location / "units" / filename).write_text(text)
    (providers / f"{name.replace(':', '_')}.provider").write_text(
        "[PlainBox Provider]\n"
        f"name = {name}\nnamespace = {namespace}\nversion = 1.0\nlocation = {location}\n"
    )
    return providers


@pytest.fixture
def make_provider(tmp_path: Path) -> MakeProvider:
    """Write a provider into ``tmp_path/providers`` (repeatable); return that dir."""

    def build(
        units: str | dict[str, str], namespace: str = "com.example.t", name: str | None = None
    ) -> Path:
        files = {"units.pxu": units} if isinstance(units, str) else units
        return write_provider(
            tmp_path,
            name or f"{namespace.rsplit('.', 1)[0]}:{namespace.rsplit('.', 1)[1]}",
            namespace,
            files,
        )

    return build


@pytest.fixture
def synth_provider_dir(make_provider: MakeProvider) -> Path:
    """The provider the sample sessions were written against."""
    text = (SAMPLES / "units" / "synth-small.pxu").read_text()
    return make_provider(text, namespace="com.example.synth", name="com.example:synth")
