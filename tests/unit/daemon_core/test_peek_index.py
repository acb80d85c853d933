"""The peek index: a restarted daemon lists unchanged sessions without peeking them again."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumed import registry as registry_module
from resumed import statefile
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.registry import Registry
from resumed.session.envelope import unpack_envelope

BOOT = BootInfo(boot_id="0000-this-boot", boot_time=1700000000.0)


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test files are seconds old: index them anyway (the racy window is tested below)."""
    monkeypatch.setattr(statefile, "RACY_SECONDS", 0.0)


@pytest.fixture
def peeks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every blob the registry peeks from now on."""
    seen: list[bytes] = []
    real = registry_module.SessionPeekHelper

    class Counting(real):  # type: ignore[misc, valid-type]
        def peek(self, data: bytes) -> Any:
            seen.append(data)
            return super().peek(data)

    monkeypatch.setattr(registry_module, "SessionPeekHelper", Counting)
    return seen


def _registry(make_config: Callable[..., Config], providers: Any) -> Registry:
    return Registry(make_config(), providers, BOOT)


def _retitle(directory: Path, title: str) -> None:
    path = directory / "session"
    document = unpack_envelope(path.read_bytes())
    document["session"]["metadata"]["title"] = title
    path.write_bytes(gzip.compress(json.dumps(document, sort_keys=True).encode()))


def test_restarted_registry_lists_unchanged_sessions_without_peeking_them(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any,
    peeks: list[bytes],
) -> None:
    add_session("s1")
    add_session("s2", sample="small-v7", writer="checkbox-1.18.1")
    first = _registry(make_config, providers)
    first.scan()
    assert len(peeks) == 2
    peeks.clear()
    second = _registry(make_config, providers)
    second.scan()
    assert peeks == []
    assert second.list_sessions() == first.list_sessions()


def test_session_rewritten_while_the_daemon_was_down_is_peeked_again(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any,
    peeks: list[bytes],
) -> None:
    directory = add_session("s1")
    _registry(make_config, providers).scan()
    _retitle(directory, "Written after the stop")
    peeks.clear()
    second = _registry(make_config, providers)
    second.scan()
    assert len(peeks) == 1
    assert [r.title for r in second.list_sessions()] == ["Written after the stop"]


def test_session_changed_within_the_racy_window_is_not_indexed(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any,
    peeks: list[bytes], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(statefile, "RACY_SECONDS", 3600.0)
    add_session("s1")
    _registry(make_config, providers).scan()
    peeks.clear()
    _registry(make_config, providers).scan()
    assert len(peeks) == 1


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"version": 1, "files": {"x": 1}}',
                                     b'{"version": 99, "files": {}}'])
def test_unreadable_peek_index_only_costs_peeks(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any,
    peeks: list[bytes], content: bytes,
) -> None:
    add_session("s1")
    config = make_config()
    config.state_dir.mkdir(parents=True, exist_ok=True)
    (config.state_dir / statefile.PEEK_INDEX_FILE).write_bytes(content)
    registry = Registry(config, providers, BOOT)
    registry.scan()
    assert [r.id for r in registry.list_sessions()] == ["s1"]
    assert len(peeks) == 1


def test_removed_session_leaves_the_index_after_a_complete_scan(
    add_session: Callable[..., Path], make_config: Callable[..., Config], providers: Any,
) -> None:
    directory = add_session("s1")
    add_session("s2")
    registry = _registry(make_config, providers)
    registry.scan()
    index_path = make_config().state_dir / statefile.PEEK_INDEX_FILE
    assert len(json.loads(index_path.read_bytes())["files"]) == 2
    (directory / "session").unlink()
    (directory / "session-share").rmdir()
    registry.scan()
    files = json.loads(index_path.read_bytes())["files"]
    assert [Path(p).parent.name for p in files] == ["s2.session"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10)


@given(doc=st.dictionaries(st.text(), _JSON | st.dictionaries(st.text(), _JSON), max_size=4))
def test_state_files_written_in_pieces_hold_the_one_piece_text(doc: dict[str, Any]) -> None:
    assert statefile.dumps_in_pieces(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"))
