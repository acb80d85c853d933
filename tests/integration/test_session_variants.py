"""The shared-entry ``InterfacesAdded`` value equals the plain one, session by session."""

from __future__ import annotations

from gi.repository import GLib
from hypothesis import given, settings
from hypothesis import strategies as st

from resumed.daemon.bus import session_interfaces_variant, session_properties
from resumed.daemon.names import SESSION_INTERFACE
from resumed.registry import SessionRecord

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=12)
_IDS = st.lists(_TEXT, max_size=12)

_RECORDS = st.builds(
    SessionRecord, id=_TEXT, location=_TEXT, state=st.sampled_from(["pending", "resumed"]),
    title=_TEXT, app_id=st.sampled_from(["", "checkbox-cli"]),
    flags=st.lists(st.sampled_from(["incomplete", "submitted", "bootstrapping"]), max_size=3),
    format_version=st.integers(0, 11), running_job=_TEXT,
    last_job_start_time=st.floats(allow_nan=False, allow_infinity=False),
    remaining_todo_jobs=st.booleans(), interrupted_job_outcome=_TEXT, settle_error=_TEXT,
    desired_jobs=_IDS, mandatory_jobs=_IDS, run_list=_IDS, discarded_jobs=_IDS,
    job_count=st.integers(0, 2**32 - 1), done_count=st.integers(0, 2**32 - 1),
    outcomes=st.dictionaries(_TEXT, _TEXT, max_size=10))


def plain_interfaces(record: SessionRecord) -> GLib.Variant:
    """The same value built without sharing, by PyGObject's generic conversion."""
    return GLib.Variant("a{sa{sv}}", {SESSION_INTERFACE: session_properties(record)})


@settings(max_examples=300)
@given(records=st.lists(_RECORDS, min_size=1, max_size=4))
def test_announced_properties_equal_the_plain_ones_whatever_other_sessions_share(
        records: list[SessionRecord]) -> None:
    built = [session_interfaces_variant(record) for record in records]
    for record, variant in zip(records, built, strict=True):
        assert variant.equal(plain_interfaces(record)), record
