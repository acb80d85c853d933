"""The start-up scan's quick peek: listed at once, confirmed by the next scan."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resumed import statefile
from resumed.config import Config
from resumed.registry import DiscardRecord, Registry
from resumed.session.envelope import dumps_compact, unpack_envelope

from .conftest import BOOT
from .conftest import OLD_MTIME as OLD


def rewrite(directory: Path, change: Callable[[str], str]) -> None:
    """Rewrite a session file as Checkbox writes it (compact, sorted), text changed."""
    path = directory / "session"
    text = change(dumps_compact(unpack_envelope(path.read_bytes())))
    path.write_bytes(gzip.compress(text.encode("UTF-8")))
    os.utime(path, (OLD, OLD))


@pytest.fixture(autouse=True)
def _index_fresh_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test just now may enter the peek index."""
    monkeypatch.setattr(statefile, "RACY_SECONDS", 0.0)


def indexed_paths(config: Config) -> set[str]:
    """The session files the peek index on disk holds."""
    path = config.state_dir / statefile.PEEK_INDEX_FILE
    return set(json.loads(path.read_text())["files"]) if path.exists() else set()


def test_quick_start_up_listing_is_confirmed_by_the_next_scan_without_changes(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any
) -> None:
    directory = add_session("s1")
    rewrite(directory, lambda text: text)
    config = make_config()
    registry = Registry(config, providers, BOOT)
    changes = registry.scan(quick=True)
    assert [(c.kind, c.session_id) for c in changes] == [("added", "s1")]
    listed = registry.get("s1")
    assert listed is not None
    assert listed.state == "pending"
    assert str(directory / "session") not in indexed_paths(config)

    assert registry.scan() == []
    assert registry.get("s1") == listed
    assert str(directory / "session") in indexed_paths(config)


def test_session_with_broken_results_is_listed_at_start_then_discarded(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any
) -> None:
    directory = add_session("broken")
    rewrite(directory, lambda text: text.replace('"results":{', '"results":{]', 1))
    before = (directory / "session").read_bytes()
    registry = Registry(make_config(), providers, BOOT)
    assert [c.kind for c in registry.scan(quick=True)] == ["added"]

    changes = registry.scan()
    assert [(c.kind, c.session_id) for c in changes] == [("removed", "broken"),
                                                         ("discarded", "broken")]
    assert registry.list_sessions() == []
    assert registry.list_discarded() == [DiscardRecord(
        "broken", "corrupted", "Cannot interpret session JSON", str(directory), [])]
    assert (directory / "session").read_bytes() == before


def test_a_session_the_quick_peek_cannot_read_is_peeked_fully_at_start(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any
) -> None:
    directory = add_session("spaced")
    path = directory / "session"
    path.write_bytes(gzip.compress(json.dumps(unpack_envelope(path.read_bytes())).encode()))
    os.utime(path, (OLD, OLD))
    config = make_config()
    registry = Registry(config, providers, BOOT)
    assert [c.kind for c in registry.scan(quick=True)] == ["added"]
    assert str(path) in indexed_paths(config)
