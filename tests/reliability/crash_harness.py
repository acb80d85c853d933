"""Kill a settling registry with SIGKILL, restart it, and check that nothing was lost.

Usage: ``python crash_harness.py WORKDIR PROVIDER_DIR PLAN_JSON`` where the plan
is ``{"rounds": [{"samples": [sample dir, ...], "step": "after-fsync" | null,
"delay": seconds | null, "result_file": text | null}, ...]}``. A round copies
the samples (as sessions last written in 2020) into a fresh root, forks a child
that scans, resumes and settles them (with ``RESUMED_TEST_KILL_AT=step``, or
killed by the parent after ``delay`` seconds), then checks what the kill left
and restarts: after the restart every session is settled exactly once.

Forking from this preloaded process keeps a kill round to tens of milliseconds.
Prints one JSON object: ``kills`` (the child died of SIGKILL), ``finished``
(the child finished before the kill), ``violations`` (what went wrong, empty
when nothing did) and ``states`` (what each kill left, counted by kind).
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import support as rs

from resumed import settle
from resumed.bootinfo import BootInfo
from resumed.config import Config
from resumed.providers.loader import load_providers
from resumed.registry import Registry
from resumed.session.envelope import unpack_envelope
from resumed.session.resume import SessionResumeHelper

BOOT = BootInfo("0000-crash-boot", 1700000000.0)


class Harness:
    """Rounds of kill, inspect, restart, inspect."""

    def __init__(self, workdir: Path, provider_dir: Path) -> None:
        """Load the providers once (the forked children inherit them)."""
        self.workdir = workdir
        self.provider_dir = provider_dir
        self.providers = load_providers([provider_dir])
        self.violations: list[str] = []
        self.states: collections.Counter[str] = collections.Counter()
        self.kills = self.finished = 0
        self.child_seconds = 0.0
        self.damaged_backups: set[str] = set()
        self.expected: dict[tuple[str, str | None], Any] = {}

    def config(self, root: Path, state: Path) -> Config:
        """The config of one round."""
        return Config((root,), (self.provider_dir,), (), True, 300.0, 1.0, 1 << 28, state)

    def prepare(self, index: int, samples: list[str], result_file: str | None
                ) -> tuple[Path, Path, dict[str, tuple[bytes, Any]]]:
        """A fresh root with the round's sessions; their original bytes and expected docs."""
        base = self.workdir / f"round-{index}"
        root, state = base / "root", base / "state"
        root.mkdir(parents=True)
        sessions = {}
        for number, sample in enumerate(samples):
            sid = f"s{number}"
            directory = rs.copy_session(Path(sample), root, sid)
            if result_file is not None:
                (directory / "session-share" / "__result").write_text(result_file)
            sessions[sid] = ((directory / "session").read_bytes(),
                             self.expected_doc(Path(sample), result_file))
        return root, state, sessions

    def expected_doc(self, sample: Path, result_file: str | None) -> Any:
        """The settled document of ``sample``, from a clean settle (cached)."""
        key = (str(sample), result_file)
        if key not in self.expected:
            base = self.workdir / f"reference-{len(self.expected)}"
            root = base / "root"
            root.mkdir(parents=True)
            directory = rs.copy_session(sample, root, "ref")
            if result_file is not None:
                (directory / "session-share" / "__result").write_text(result_file)
            registry = Registry(self.config(root, base / "state"), self.providers, BOOT)
            rs_drain(registry)
            self.expected[key] = unpack_envelope((directory / "session").read_bytes())
            shutil.rmtree(base)
        return self.expected[key]

    def check_version(self, what: str, directory: Path, old: bytes, new_doc: Any) -> str:
        """``old``/``new``: which version ``session`` holds (a violation when neither)."""
        data = (directory / "session").read_bytes()
        if data == old:
            kind = "old"
        elif unpack_envelope(data) == new_doc:
            kind = "new"
        else:
            self.violations.append(f"{what}: {directory} holds neither version")
            return "bad"
        try:
            SessionResumeHelper(self.providers.units, None, str(directory), 1 << 28).resume(data)
        except Exception as error:  # noqa: BLE001 (a violation to report)
            self.violations.append(f"{what}: {directory} ({kind}) does not resume: {error!r}")
        return kind

    def check_backups(self, what: str, state: Path, sid: str, old: bytes) -> None:
        """Every backup of ``sid`` holds the original bytes (a leftover may hold the new)."""
        for backup in sorted((state / "backups" / sid).glob("*")):
            if backup.name.endswith(".session") and backup.read_bytes() != old:
                self.damaged_backups.add(str(backup))
                self.violations.append(f"{what}: backup {backup} is damaged "
                                       f"({backup.stat().st_size} of {len(old)} bytes)")

    def wait(self, pid: int, delay: float | None) -> int:
        """Wait for the child, SIGKILLing it ``delay`` seconds after the fork if still alive."""
        if delay is not None:
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return status
                time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
            os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]

    def run_round(self, index: int, plan: dict[str, Any]) -> None:
        """One kill and restart."""
        root, state, sessions = self.prepare(index, plan["samples"], plan.get("result_file"))
        how = plan.get("step") or f"delay {plan['delay']:.4f}"
        what = f"round {index} ({how})"
        forked = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: settle until killed
            code = 0
            try:
                if plan.get("step") == "mid-backup":
                    kill_mid_backup()
                environ = {settle.KILL_ENV: plan["step"]} if plan.get("step") in \
                    settle.KILL_STEPS else {}
                registry = Registry(self.config(root, state), self.providers, BOOT,
                                    environ=environ)
                rs_drain(registry)
            except BaseException:  # noqa: BLE001
                code = 3
            os._exit(code)
        status = self.wait(pid, plan.get("delay"))
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            self.kills += 1
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self.finished += 1
            self.child_seconds = max(self.child_seconds, time.monotonic() - forked)
            if plan.get("step") in settle.KILL_STEPS:
                self.violations.append(f"{what}: the kill seam did not fire")
        else:
            self.violations.append(f"{what}: child ended with status {status}")
        for sid, (old, new_doc) in sessions.items():
            directory = root / f"{sid}.session"
            kind = self.check_version(what, directory, old, new_doc)
            stale = (directory / "session.next").exists()
            self.states[f"{kind}{' + stale session.next' if stale else ''}"] += 1
            self.check_backups(what, state, sid, old)
        self.restart_and_check(what, root, state, sessions)
        shutil.rmtree(root.parent)

    def restart_and_check(self, what: str, root: Path, state: Path,
                          sessions: dict[str, tuple[bytes, Any]]) -> None:
        """Restart twice: settled exactly once, stale files recovered, nothing rewritten."""
        registry = Registry(self.config(root, state), self.providers, BOOT)
        rs_drain(registry)
        after = {}
        for sid, (old, new_doc) in sessions.items():
            directory = root / f"{sid}.session"
            if self.check_version(what + " after restart", directory, old, new_doc) != "new":
                self.violations.append(f"{what}: {sid} not settled after the restart")
            if (directory / "session.next").exists():
                self.violations.append(f"{what}: {sid} stale session.next not recovered")
            record = registry.get(sid)
            if record is None or record.interrupted_job_outcome == "" or record.settle_error:
                self.violations.append(f"{what}: {sid} published as {record}")
            self.check_backups(what + " after restart", state, sid, old)
            after[sid] = (directory / "session").read_bytes()
        recorded = json.loads((state / "state.json").read_text())["settled"]
        if len(recorded) != len(sessions):
            self.violations.append(f"{what}: {len(recorded)} settle records for "
                                   f"{len(sessions)} sessions")
        rs_drain(Registry(self.config(root, state), self.providers, BOOT))
        for sid in sessions:
            if (root / f"{sid}.session" / "session").read_bytes() != after[sid]:
                self.violations.append(f"{what}: {sid} rewritten by a second restart")


def kill_mid_backup() -> None:
    """Make this (child) process SIGKILL itself halfway through writing a backup file."""
    from resumed import storage

    write_all = storage._write_all

    def half_then_die(fd: int, data: bytes) -> None:
        if "/backups/" in str(Path(f"/proc/self/fd/{fd}").readlink()):
            write_all(fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        write_all(fd, data)

    storage._write_all = half_then_die


def rs_drain(registry: Registry) -> None:
    """Scan, then resume and settle everything pending."""
    registry.scan()
    for session_id in registry.pending_ids():
        registry.resume_one(session_id)


def main() -> None:
    """Run the plan and print the report."""
    workdir, provider_dir = Path(sys.argv[1]), Path(sys.argv[2])
    plan = json.loads(Path(sys.argv[3]).read_text())
    harness = Harness(workdir, provider_dir)
    random.seed(plan.get("seed", 0))
    for index, round_plan in enumerate(plan["rounds"]):
        harness.run_round(index, round_plan)
    print(json.dumps({"kills": harness.kills, "finished": harness.finished,
                      "violations": harness.violations[:50],
                      "child_seconds": harness.child_seconds,
                      "damaged_backups": len(harness.damaged_backups), "states": harness.states}))


if __name__ == "__main__":
    main()
