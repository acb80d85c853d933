"""The registry over real session roots: listing, resume, discards and settling (SPEC §2-§5)."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resumed import settle
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.registry import (
    DiscardRecord,
    NoSuchJobError,
    NoSuchSessionError,
    NotResumedError,
    Registry,
    SessionRecord,
)
from resumed.session.envelope import unpack_envelope

from .conftest import BOOT, kinds
from .conftest import OLD_MTIME as OLD

REBOOT = "com.example.synth::synth/reboot"
AUDIO = "com.example.synth::synth/manual-audio"


def edit(directory: Path, change: Callable[[dict[str, Any]], None], mtime: float = OLD) -> None:
    """Rewrite a session's JSON document (as another writer would) and set its mtime."""
    path = directory / "session"
    document = unpack_envelope(path.read_bytes())
    change(document)
    path.write_bytes(gzip.compress(json.dumps(document, sort_keys=True).encode()))
    os.utime(path, (mtime, mtime))


def document(directory: Path) -> dict[str, Any]:
    value = unpack_envelope((directory / "session").read_bytes())
    assert isinstance(value, dict)
    return value


def resume_all(registry: Registry) -> list[Any]:
    changes = registry.scan()
    for session_id in registry.pending_ids():
        changes += registry.resume_one(session_id)
    return changes


def test_dormant_session_is_listed_pending_then_resumed_and_settled(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    registry = registry_for()
    changes = registry.scan()
    assert kinds(changes) == [("added", "s1")]
    pending = changes[0].record
    assert isinstance(pending, SessionRecord)
    assert (pending.state, pending.running_job, pending.format_version) == ("pending", REBOOT, 11)
    assert (pending.run_list, pending.job_count, pending.outcomes) == ([], 0, {})
    assert pending.last_job_start_time == 1764300000.25
    assert registry.pending_ids() == ["s1"]

    assert kinds(registry.resume_one("s1")) == [("updated", "s1")]
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert record.location == str(directory)
    assert record.job_count == 5
    assert record.done_count == 5
    assert record.outcomes[REBOOT] == "pass"
    assert record.interrupted_job_outcome == "pass"
    assert record.settle_error == ""
    assert registry.pending_ids() == []
    history = registry.job_results("s1", REBOOT)
    assert history == [
        {"outcome": "pass", "comments": settle.COMMENT_NORETURN_PASS, "io_log_records": 0}
    ]
    assert registry.job_results("s1", AUDIO)[0]["io_log_records"] == 0


def test_job_results_errors(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    add_session("s1")
    registry = registry_for()
    registry.scan()
    with pytest.raises(NotResumedError):
        registry.job_results("s1", REBOOT)
    registry.resume_one("s1")
    with pytest.raises(NoSuchJobError):
        registry.job_results("s1", "com.example.synth::nope")
    with pytest.raises(NoSuchSessionError):
        registry.job_results("nope", REBOOT)


def test_complete_session_is_listed_from_peek_only(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("done")
    edit(directory, lambda d: d["session"]["metadata"].update(flags=["submitted"]))
    before = (directory / "session").read_bytes()
    registry = registry_for()
    registry.scan()
    record = registry.get("done")
    assert record is not None
    assert record.state == "complete"
    assert registry.pending_ids() == []
    assert (directory / "session").read_bytes() == before


def test_sessions_are_listed_newest_first(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    add_session("older", mtime=OLD)
    add_session("newer", mtime=OLD + 60)
    registry = registry_for()
    registry.scan()
    assert [r.id for r in registry.list_sessions()] == ["newer", "older"]
    assert registry.pending_ids() == ["newer", "older"]


def test_corrupted_session_is_discarded_and_never_modified(
    root: Path, registry_for: Callable[..., Registry]
) -> None:
    directory = root / "bad.session"
    directory.mkdir()
    (directory / "session").write_bytes(b"not gzip at all")
    registry = registry_for()
    changes = registry.scan()
    assert kinds(changes) == [("discarded", "bad")]
    assert registry.list_discarded() == [
        DiscardRecord("bad", "corrupted", "Cannot decompress session data", str(directory), [])
    ]
    assert registry.scan() == []
    assert (directory / "session").read_bytes() == b"not gzip at all"


def test_session_whose_jobs_are_gone_is_discarded_with_the_job_ids(
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers_with: Callable[..., Any],
) -> None:
    directory = add_session("s1")
    before = (directory / "session").read_bytes()
    providers = providers_with(lambda text: text.split("id: synth/reboot")[0])
    registry = Registry(make_config(), providers, BOOT)
    assert kinds(resume_all(registry)) == [("added", "s1"), ("removed", "s1"), ("discarded", "s1")]
    [discard] = registry.list_discarded()
    assert (discard.reason, discard.job_ids) == ("unknown-jobs", [REBOOT])
    assert registry.get("s1") is None
    assert (directory / "session").read_bytes() == before


def matching(providers: Any, directory: Path) -> None:
    """Make the session's stored checksum of the reboot job match ``providers``."""
    [unit] = [u for u in providers.units if u.id == REBOOT]
    edit(directory, lambda d: d["session"]["jobs"].update({REBOOT: unit.checksum}))


def test_interrupted_shell_job_without_noreturn_is_crashed(
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers_with: Callable[..., Any],
) -> None:
    directory = add_session("s1")
    providers = providers_with(lambda text: text.replace("flags: noreturn\n", ""))
    matching(providers, directory)
    registry = Registry(make_config(), providers, BOOT)
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == "crash"
    assert document(directory)["session"]["results"][REBOOT] == [
        settle.memory_result("crash", settle.COMMENT_CRASH)
    ]


def test_interrupted_job_that_is_not_shell_is_left_alone(
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers_with: Callable[..., Any],
) -> None:
    directory = add_session("s1")
    providers = providers_with(
        lambda text: text.replace("plugin: shell\nflags: noreturn", "plugin: user-interact")
    )
    matching(providers, directory)
    before = (directory / "session").read_bytes()
    registry = Registry(make_config(), providers, BOOT)
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert record.interrupted_job_outcome == ""
    assert (directory / "session").read_bytes() == before


def test_result_file_decides_the_outcome(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    (directory / "session-share" / "__result").write_text('{"outcome": "fail", "comments": "x"}')
    registry = registry_for()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == "fail"
    assert registry.job_results("s1", REBOOT) == [
        {"outcome": "fail", "comments": "x", "io_log_records": 0}
    ]


def test_nothing_is_settled_when_no_jobs_remain(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    edit(directory, lambda d: d["session"]["metadata"].update(remaining_todo_jobs=False))
    before = (directory / "session").read_bytes()
    registry = registry_for()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert (record.remaining_todo_jobs, record.interrupted_job_outcome) == (False, "")
    assert (directory / "session").read_bytes() == before


def test_session_of_this_boot_is_not_settled(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1", mtime=time.time())  # written this boot
    before = (directory / "session").read_bytes()
    registry = registry_for(BootInfo("b", time.time() - 3600))
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert record.interrupted_job_outcome == ""
    assert (directory / "session").read_bytes() == before


def test_session_seen_under_another_boot_id_is_settled(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    """systemd-nspawn: the kernel boot time stays the host's; the boot id changes."""
    add_session("s1", mtime=time.time())  # written this boot
    host_boot_time = time.time() - 3600
    first = registry_for(BootInfo("container-boot-1", host_boot_time))
    resume_all(first)
    first.persist()
    record = first.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == ""
    second = registry_for(BootInfo("container-boot-2", host_boot_time))
    resume_all(second)
    record = second.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"


def test_foreign_session_is_resumed_but_never_written(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    os.chown(directory / "session", 65534, 65534)
    before = (directory / "session").read_bytes()
    registry = registry_for()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert record.interrupted_job_outcome == ""
    assert (directory / "session").read_bytes() == before
    trusting = registry_for(trusted_owners=("nobody",))
    resume_all(trusting)
    assert (directory / "session").stat().st_uid == 65534
    assert document(directory)["session"]["results"][REBOOT][0]["outcome"] == "pass"


def test_settle_happens_once_across_restarts_byte_identical(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], tmp_path: Path
) -> None:
    directory = add_session("s1")
    original = (directory / "session").read_bytes()
    resume_all(registry_for())
    settled = (directory / "session").read_bytes()
    assert settled != original
    for _ in range(3):
        registry = registry_for()
        resume_all(registry)
        record = registry.get("s1")
        assert record is not None
        assert record.interrupted_job_outcome == "pass"
        assert (directory / "session").read_bytes() == settled
    [backup] = (tmp_path / "state" / "backups" / "s1").iterdir()
    assert backup.read_bytes() == original
    after = document(directory)
    before = unpack_envelope(original)
    assert after["session"]["results"].pop(REBOOT) == [
        settle.memory_result("pass", settle.COMMENT_NORETURN_PASS)
    ]
    assert after == before
    assert gzip.decompress(settled).decode().startswith('{"session":')


def test_every_sample_version_settles_and_still_resumes(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    for version in range(1, 12):
        add_session(f"v{version}", sample=f"small-v{version}")
    for version in range(1, 8):
        add_session(f"old-v{version}", sample=f"small-v{version}", writer="checkbox-1.18.1")
    registry = registry_for()
    resume_all(registry)
    assert registry.list_discarded() == []
    records = registry.list_sessions()
    assert len(records) == 18
    assert {(r.state, r.interrupted_job_outcome) for r in records} == {("resumed", "pass")}
    again = registry_for()
    resume_all(again)
    assert again.list_discarded() == []
    assert {r.outcomes.get(REBOOT) for r in again.list_sessions()} == {"pass"}


def test_provider_change_moves_session_to_discard_and_back(
    add_session: Callable[..., Path],
    registry_for: Callable[..., Registry],
    providers: Any,
    providers_with: Callable[..., Any],
) -> None:
    add_session("s1")
    registry = registry_for()
    resume_all(registry)
    changed = providers_with(lambda text: text.replace("systemctl reboot", "reboot -f"))
    assert registry.set_providers(changed) == []
    assert registry.pending_ids() == ["s1"]
    assert kinds(registry.resume_one("s1")) == [("removed", "s1"), ("discarded", "s1")]
    [discard] = registry.list_discarded()
    assert (discard.reason, discard.job_ids) == ("incompatible-job", [REBOOT])
    registry.set_providers(providers)
    assert kinds(registry.resume_one("s1")) == [("added", "s1")]
    assert registry.list_discarded() == []


def test_duplicate_id_in_a_later_root_is_discarded(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], root: Path,
    second_root: Path,
) -> None:
    second = second_root
    add_session("same")
    add_session("same", into=second)
    registry = registry_for(session_roots=(root, second))
    changes = registry.scan()
    assert sorted(kinds(changes)) == [("added", "same"), ("discarded", "same")]
    [discard] = registry.list_discarded()
    assert (discard.reason, discard.location) == ("duplicate-id", str(second / "same.session"))
    assert registry.scan() == []


def test_fifo_session_is_an_io_error_and_does_not_block(
    root: Path, registry_for: Callable[..., Registry]
) -> None:
    (root / "fifo.session").mkdir()
    os.mkfifo(root / "fifo.session" / "session")
    registry = registry_for()
    assert kinds(registry.scan()) == [("discarded", "fifo")]
    assert registry.list_discarded()[0].reason == "io-error"


def test_removed_session_is_announced(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    registry = registry_for()
    registry.scan()
    (directory / "session").unlink()
    changes = registry.scan()
    assert kinds(changes) == [("removed", "s1")]
    assert registry.list_sessions() == []


def test_scan_past_its_deadline_removes_nothing(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    add_session("s1")
    registry = registry_for()
    registry.scan()
    add_session("s2")
    assert registry.scan(deadline=time.monotonic() - 1) == []
    assert not registry.scan_complete
    assert [r.id for r in registry.list_sessions()] == ["s1"]
    assert kinds(registry.scan()) == [("added", "s2")]
    assert registry.scan_complete


def test_rescan_of_paths_sees_only_those_sessions(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], root: Path
) -> None:
    registry = registry_for()
    registry.scan()
    one = add_session("one")
    add_session("two")
    assert kinds(registry.rescan_paths([one / "session"])) == [("added", "one")]
    assert kinds(registry.rescan_paths([root])) == [("added", "two")]
    (one / "session").unlink()
    assert kinds(registry.rescan_paths([one])) == [("removed", "one")]


def test_session_changed_during_this_boot_is_resumed_again_not_settled(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1", mtime=time.time())  # written this boot
    registry = registry_for(BootInfo("b", time.time() - 3600))
    resume_all(registry)
    edit(directory, lambda d: d["session"]["metadata"].update(title="renamed"), time.time())
    changes = registry.scan()
    assert kinds(changes) == [("updated", "s1")]
    assert registry.pending_ids() == ["s1"]
    registry.resume_one("s1")
    record = registry.get("s1")
    assert record is not None
    assert (record.title, record.state) == ("renamed", "resumed")
    assert record.interrupted_job_outcome == ""


def test_hostile_strings_are_published_safely(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    edit(directory, lambda d: d["session"]["metadata"].update(title="a\x00b\udcff", app_id=None))
    before = (directory / "session").read_bytes()
    registry = registry_for()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert (record.title, record.app_id) == ("a\ufffdb\ufffd", "")
    assert "cannot be re-encoded" in record.settle_error
    assert (directory / "session").read_bytes() == before


def test_leftover_session_next_of_a_previous_boot_is_moved_away(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], tmp_path: Path
) -> None:
    directory = add_session("s1")
    (directory / "session.next").write_bytes(b"partial")
    os.utime(directory / "session.next", (OLD, OLD))
    registry = registry_for()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"
    assert not (directory / "session.next").exists()
    names = sorted(p.name for p in (tmp_path / "state" / "backups" / "s1").iterdir())
    assert [n.endswith(".session.next") for n in names].count(True) == 1


def test_fresh_session_next_means_retry_at_the_next_scan(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry]
) -> None:
    directory = add_session("s1")
    before = (directory / "session").read_bytes()
    (directory / "session.next").write_bytes(b"checkbox is writing")
    registry = registry_for(BootInfo("b", time.time() - 3600))
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert "session.next exists" in record.settle_error
    assert (directory / "session").read_bytes() == before
    assert registry.pending_ids() == []
    (directory / "session.next").unlink()
    registry.scan()
    assert registry.pending_ids() == ["s1"]
    registry.resume_one("s1")
    record = registry.get("s1")
    assert record is not None
    assert (record.settle_error, record.interrupted_job_outcome) == ("", "pass")


def test_same_interruption_is_never_settled_twice(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], tmp_path: Path
) -> None:
    """Even when the original file comes back (restored from the backup), the key is settled."""
    directory = add_session("s1")
    original = (directory / "session").read_bytes()
    resume_all(registry_for())
    (directory / "session").write_bytes(original)
    os.utime(directory / "session", (OLD, OLD))
    registry = registry_for()
    resume_all(registry)
    assert (directory / "session").read_bytes() == original
    record = registry.get("s1")
    assert record is not None
    assert record.interrupted_job_outcome == "pass"


@pytest.mark.parametrize("version", [3, 7, 11])
def test_session_written_by_our_suspend_helper_settles(
    version: int, add_session: Callable[..., Path], registry_for: Callable[..., Registry],
    providers: Any,
) -> None:
    from resumed.session import suspend
    from resumed.session.resume import SessionResumeHelper

    directory = add_session("ours")
    state = SessionResumeHelper(providers.units, location=str(directory)).resume(
        (directory / "session").read_bytes()
    )
    helper = getattr(suspend, f"SessionSuspendHelper{version}")()
    (directory / "session").write_bytes(helper.suspend(state, str(directory)))
    os.utime(directory / "session", (OLD, OLD))
    registry = registry_for()
    resume_all(registry)
    record = registry.get("ours")
    assert record is not None
    assert (record.format_version, record.interrupted_job_outcome) == (version, "pass")
    assert unpack_envelope((directory / "session").read_bytes())["version"] == version
    assert registry.job_results("ours", REBOOT)[-1]["outcome"] == "pass"
