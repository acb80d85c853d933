"""Our suspend writes exactly what Checkbox wrote: resume a sample, suspend it, same JSON text."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from resumed.providers.loader import load_providers
from resumed.session.envelope import unpack_envelope
from resumed.session.resume import SessionResumeHelper
from resumed.session.suspend import (
    SessionSuspendHelper,
    SessionSuspendHelper1,
    SessionSuspendHelper2,
    SessionSuspendHelper3,
    SessionSuspendHelper4,
    SessionSuspendHelper5,
    SessionSuspendHelper6,
    SessionSuspendHelper7,
    SessionSuspendHelper8,
    SessionSuspendHelper9,
    SessionSuspendHelper10,
    SessionSuspendHelper11,
)

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
SESSIONS = sorted(SAMPLES.glob("*/*.session"))
HELPERS: dict[int, type[SessionSuspendHelper]] = {
    helper.VERSION: helper
    for helper in (
        SessionSuspendHelper1,
        SessionSuspendHelper2,
        SessionSuspendHelper3,
        SessionSuspendHelper4,
        SessionSuspendHelper5,
        SessionSuspendHelper6,
        SessionSuspendHelper7,
        SessionSuspendHelper8,
        SessionSuspendHelper9,
        SessionSuspendHelper10,
        SessionSuspendHelper11,
    )
}


@pytest.mark.parametrize("session_dir", SESSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_suspending_a_resumed_sample_gives_back_checkbox_json_text(
    session_dir: Path, synth_provider_dir: Path
) -> None:
    blob = (session_dir / "session").read_bytes()
    version = unpack_envelope(blob)["version"]
    units = load_providers([synth_provider_dir]).units
    state = SessionResumeHelper(units, location=session_dir).resume(blob)
    ours = HELPERS[version]().suspend(state, str(session_dir))
    assert gzip.decompress(ours) == gzip.decompress(blob)


def test_newest_suspend_helper_writes_version_11() -> None:
    assert SessionSuspendHelper.VERSION == 11 == max(HELPERS)
