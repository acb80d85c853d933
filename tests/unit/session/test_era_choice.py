"""Choosing the era of generated jobs: a hint never changes the era chosen."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resumed.providers.checksum import ERAS
from resumed.session.resume import _Resume


class _Job:
    """A job whose checksum under each era is given."""

    def __init__(self, job_id: str, checksums: dict[str, str]) -> None:
        self.id = job_id
        self.checksums = checksums

    def checksum_for(self, era: str) -> str:
        return self.checksums[era]


# Few checksum values, so eras often agree, match or half-match what is stored.
_CHECKSUM = st.sampled_from("abc")


@st.composite
def _jobs_and_stored(draw: Any) -> tuple[list[_Job], dict[str, str]]:
    count = draw(st.integers(0, 5))
    jobs = [_Job(f"job-{i}", {era: draw(_CHECKSUM) for era in ERAS}) for i in range(count)]
    stored = {job.id: draw(_CHECKSUM) for job in jobs if draw(st.booleans())}
    return jobs, stored


@settings(max_examples=2000, deadline=None)
@given(_jobs_and_stored(), st.sampled_from(ERAS), st.sampled_from(ERAS))
def test_a_hint_gives_the_era_the_full_comparison_gives(
    case: tuple[list[_Job], dict[str, str]], preferred: str, hint: str
) -> None:
    jobs, stored = case
    run = SimpleNamespace(doc=SimpleNamespace(jobs=stored))
    expected = _Resume._pick_era(run, jobs, preferred)  # type: ignore[arg-type]
    assert _Resume._pick_era(run, jobs, preferred, hint) == expected  # type: ignore[arg-type]
