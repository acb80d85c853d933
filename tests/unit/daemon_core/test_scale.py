"""What keeps 100,000 sessions cheap.

Events rescan only the sessions they name, scans stop on request, big snapshots
are published in batches, and trees larger than the inotify limit are not walked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from resumed import storage
from resumed.daemon import watch
from resumed.daemon.app import PublishPlan, merge_snapshots
from resumed.registry import Registry, SessionRecord

from .conftest import kinds


def test_event_rescan_sees_the_named_sessions_and_their_duplicates_in_other_roots(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], root: Path,
    second_root: Path,
) -> None:
    second = second_root
    registry = registry_for(session_roots=(root, second))
    add_session("quiet")
    registry.scan()
    add_session("other")  # no event names it: not seen by the rescan below
    late = add_session("twin", into=second)
    assert sorted(kinds(registry.rescan_paths([late / "session"]))) == [("added", "twin")]
    first = add_session("twin")
    changes = registry.rescan_paths([first])
    assert sorted(kinds(changes)) == [("discarded", "twin"), ("updated", "twin")]
    assert [r.id for r in registry.list_sessions()] == ["quiet", "twin"]
    assert registry.get("twin").location == str(first)  # type: ignore[union-attr]
    assert [(d.id, d.reason) for d in registry.list_discarded()] == [("twin", "duplicate-id")]
    late.rename(second / "gone.session.old")
    assert sorted(kinds(registry.rescan_paths([late]))) == [("removed", "twin")]
    assert registry.list_discarded() == []
    assert {r.id for r in registry.list_sessions()} == {"quiet", "twin"}


def test_event_naming_a_root_rescans_that_root_whole(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry], root: Path,
) -> None:
    registry = registry_for()
    registry.scan()
    add_session("one")
    add_session("two")
    changes = registry.rescan_paths([root.parent])
    assert sorted(kinds(changes)) == [("added", "one"), ("added", "two")]


def test_discover_some_skips_links_hidden_and_foreign_names(root: Path) -> None:
    (root / "real.session").mkdir()
    (root / ".hidden.session").mkdir()
    (root / "file.session").write_text("")
    (root / "link.session").symlink_to(root / "real.session")
    names = ["real.session", ".hidden.session", "file.session", "link.session",
             "missing.session", "io-logs"]
    found, duplicates = storage.discover_some([root], names)
    assert [c.directory for c in found] == [root / "real.session"]
    assert duplicates == []


def test_scan_asked_to_stop_stops_between_sessions_and_removes_nothing(
    add_session: Callable[..., Path], registry_for: Callable[..., Registry],
) -> None:
    for name in ("a", "b", "c"):
        add_session(name)
    registry = registry_for()
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    changes = registry.scan(stop=stop)
    assert len(changes) == 2
    assert not registry.scan_complete
    assert len(registry.scan()) == 1
    assert registry.scan_complete


def record(session_id: str, title: str = "") -> SessionRecord:
    return SessionRecord(id=session_id, location=f"/r/{session_id}.session", state="complete",
                         title=title)


def test_a_big_snapshot_is_published_in_steps_of_new_and_changed_sessions_only() -> None:
    kept, changed, gone = record("kept"), record("changed"), record("gone")
    published = {r.id: r for r in (kept, changed, gone)}
    new = [record(f"new{i}") for i in range(5)]
    retitled = record("changed", "retitled")
    target = [new[0], kept, retitled, *new[1:]]
    plan = PublishPlan(target, published)
    steps = []
    while (records := plan.step(2)) is not None:
        steps.append(records)
    # 5 added and 1 changed, 2 per step; "gone" waits for the final publish of ``target``.
    assert steps == [[new[0], retitled], new[1:3], new[3:5]]
    assert plan.target is target
    assert plan.step(2) is None


def test_a_snapshot_with_nothing_new_goes_straight_to_the_final_publish() -> None:
    kept = record("kept")
    assert PublishPlan([kept], {"kept": kept, "gone": record("gone")}).step(500) is None


def test_newer_snapshots_keep_the_state_status_and_ready_not_yet_published() -> None:
    first = ([record("a")], [], "scanning", "Reloaded", True)
    second = ([record("b")], [], None, "1 sessions", False)
    merged = merge_snapshots(first, second)
    assert merged == (second[0], [], "scanning", "1 sessions", True)
    assert merge_snapshots(None, second) == second


def test_directories_are_counted_only_up_to_the_limit(tmp_path: Path) -> None:
    for index in range(30):
        (tmp_path / f"d{index}" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "d0")
    assert watch.count_directories(tmp_path, 1000) == 61
    assert 11 <= watch.count_directories(tmp_path, 10) <= 31


def test_watch_limit_is_the_smallest_readable_one(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("150000\n")
    (tmp_path / "b").write_text("8192\n")
    (tmp_path / "bad").write_text("many\n")
    assert watch.watch_limit([tmp_path / "a", tmp_path / "b", tmp_path / "missing"]) == 8192
    assert watch.watch_limit([tmp_path / "bad"]) is None
    assert watch.watch_limit() is not None


def test_tree_over_the_watch_limit_is_not_watched_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    limit = tmp_path / "limit"
    limit.write_text("20\n")
    monkeypatch.setattr(watch, "_WATCH_LIMIT_FILES", (limit,))
    root = tmp_path / "root"
    for index in range(30):
        (root / f"s{index}.session" / "io-logs").mkdir(parents=True)
    watcher = watch.Watcher(0.1, lambda _paths: None, lambda: None, lambda: None)
    before = watch._inotify_fds()
    with caplog.at_level(logging.WARNING):
        watcher.watch([root], [])
        watcher.watch([root], [])
    try:
        assert watcher.exhausted
        assert caplog.text.count("inotify is exhausted") == 1
        assert watch._inotify_fds() == before
    finally:
        watcher.stop()
