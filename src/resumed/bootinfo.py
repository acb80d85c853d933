"""Which boot this is: the kernel's boot id and boot time (SPEC §3).

A session "last written in a previous boot" has an mtime before ``boot_time``
(``btime`` in ``/proc/stat``), or was recorded unchanged by the daemon under
another ``boot_id`` (systemd-nspawn gives each container boot its own id while
the kernel's boot time stays the host's). Tests build :class:`BootInfo` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class BootInfo:
    """The current boot: ``boot_id`` (text) and ``boot_time`` (epoch seconds)."""

    boot_id: str
    boot_time: float


def read_boot_info(proc: Path = PROC) -> BootInfo:
    """Read the boot id and ``btime`` from ``proc``; raises ``OSError`` or ``ValueError``."""
    boot_id = (proc / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    for line in (proc / "stat").read_text(encoding="ascii").splitlines():
        if line.startswith("btime "):
            return BootInfo(boot_id=boot_id, boot_time=float(line.split()[1]))
    raise ValueError(f"no btime line in {proc / 'stat'}")
