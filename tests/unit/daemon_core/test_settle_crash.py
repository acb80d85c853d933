"""Settling survives being killed at every step, and failed writes are retried (SPEC §3)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from resumed import settle
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.registry import Registry
from resumed.session.envelope import unpack_envelope

REBOOT = "com.example.synth::synth/reboot"
BOOT = BootInfo(boot_id="0000-this-boot", boot_time=1700000000.0)

CHILD = """
import os, sys
from pathlib import Path
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.providers.loader import load_providers
from resumed.registry import Registry

root, state, providers = (Path(a) for a in sys.argv[1:4])
config = Config((root,), (providers,), (), True, 300.0, 1.0, 2**28, state)
registry = Registry(config, load_providers([providers]), BootInfo("0000-this-boot", 1700000000.0),
                    environ=dict(os.environ))
registry.scan()
for session_id in registry.pending_ids():
    registry.resume_one(session_id)
"""


def resume_all(registry: Registry) -> None:
    registry.scan()
    for session_id in registry.pending_ids():
        registry.resume_one(session_id)


@pytest.mark.parametrize("step", settle.KILL_STEPS)
def test_kill_at_any_step_then_restart_settles_exactly_once(
    step: str,
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers: Any,
    root: Path,
    tmp_path: Path,
) -> None:
    directory = add_session("s1")
    original = (directory / "session").read_bytes()
    config = make_config()
    provider_dir = tmp_path / "providers"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(config.state_dir), str(provider_dir)],
        env={**os.environ, settle.KILL_ENV: step},
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    left = (directory / "session").read_bytes()
    assert left == original or step in ("after-rename", "before-record")

    registry = Registry(config, providers, BOOT)
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert (record.state, record.interrupted_job_outcome, record.settle_error) == (
        "resumed", "pass", ""
    )
    assert not (directory / "session.next").exists()
    history = unpack_envelope((directory / "session").read_bytes())["session"]["results"][REBOOT]
    assert history == [settle.memory_result("pass", settle.COMMENT_NORETURN_PASS)]
    state = json.loads((config.state_dir / "state.json").read_text())
    assert [v["outcome"] for v in state["settled"].values()] == ["pass"]
    assert state["writing"] == {}
    settled = (directory / "session").read_bytes()
    resume_all(Registry(config, providers, BOOT))
    assert (directory / "session").read_bytes() == settled


@pytest.fixture
def tiny_root(tmp_path: Path) -> Iterator[Path]:
    """A session root on a 64 KiB tmpfs."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {result.stderr.decode()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_settle_on_a_full_disk_fails_visibly_then_succeeds_when_space_returns(
    tiny_root: Path,
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers: Any,
) -> None:
    directory = add_session("s1", into=tiny_root)
    original = (directory / "session").read_bytes()
    filler = tiny_root / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    registry = Registry(make_config(session_roots=(tiny_root,)), providers, BOOT)
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert record.state == "resumed"
    assert "No space left" in record.settle_error
    assert record.interrupted_job_outcome == ""
    assert (directory / "session").read_bytes() == original
    assert not (directory / "session.next").exists()
    filler.unlink()
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert (record.settle_error, record.interrupted_job_outcome) == ("", "pass")


def test_settle_on_a_read_only_filesystem_leaves_the_file(
    tiny_root: Path,
    add_session: Callable[..., Path],
    make_config: Callable[..., Config],
    providers: Any,
) -> None:
    directory = add_session("s1", into=tiny_root)
    original = (directory / "session").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_root)], check=True)
    registry = Registry(make_config(session_roots=(tiny_root,)), providers, BOOT)
    resume_all(registry)
    record = registry.get("s1")
    assert record is not None
    assert "Read-only file system" in record.settle_error
    assert (directory / "session").read_bytes() == original
