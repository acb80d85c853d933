"""Boot identity, the state file, and the purity of the daemon core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resumed.bootinfo import BootInfo, read_boot_info
from resumed.settle import Interruption
from resumed.statefile import StateStore
from resumed.storage import FileStamp


def test_boot_id_and_boot_time_come_from_proc(tmp_path: Path) -> None:
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text("abc-123\n")
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1795841166\nprocesses 9\n")
    assert read_boot_info(tmp_path) == BootInfo("abc-123", 1795841166.0)


def test_real_proc_has_a_boot() -> None:
    boot = read_boot_info()
    assert boot.boot_id
    assert boot.boot_time > 0


def test_state_remembers_settles_and_first_seen_boots(tmp_path: Path) -> None:
    stamp = FileStamp(1, 2, 3, 4, 5)
    key = Interruption("sid", "job", 1.5)
    store = StateStore(tmp_path)
    assert store.first_seen_boot(tmp_path / "s", stamp, "boot-a") == "boot-a"
    store.record_settle(key, "boot-a", "pass")
    again = StateStore(tmp_path)
    assert again.settled_outcome(key) == "pass"
    assert again.settled_outcome(Interruption("sid", "job", None)) is None
    assert again.first_seen_boot(tmp_path / "s", stamp, "boot-b") == "boot-a"
    changed = FileStamp(1, 2, 3, 99, 5)
    assert again.first_seen_boot(tmp_path / "s", changed, "boot-b") == "boot-b"


def test_unreadable_state_file_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state.json").write_text("{not json")
    store = StateStore(tmp_path)
    assert store.settled_outcome(Interruption("sid", "job", 1.5)) is None
    assert "ignoring unreadable state file" in caplog.text


@pytest.mark.parametrize(
    "module",
    ["resumed.registry", "resumed.settle", "resumed.storage", "resumed.config",
     "resumed.values", "resumed.bootinfo", "resumed.statefile"],
)
def test_daemon_core_imports_no_bus_glib_or_systemd_library(module: str) -> None:
    code = (
        f"import importlib, sys\nimportlib.import_module({module!r})\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('gi', 'pydbus', 'sdnotify', 'watchdog')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
