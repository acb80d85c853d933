"""Crash safety of settling (issue #6, part 3): SIGKILL at every step and at random times.

``crash_harness.py`` forks a registry that settles sessions and kills it, at
each step of the documented seam (``RESUMED_TEST_KILL_AT``, SPEC §3) and at
random times while it settles several sessions at once; after each kill it
checks that every session file is the old or the new version (both resume)
and the backups are intact, then restarts and checks that every interrupted
job was settled exactly once, stale ``session.next`` files were recovered and
a second restart rewrites nothing. Full-disk and read-only writes are checked
on the daemon in ``test_daemon_reliability.py`` and on the registry here.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import reliability_support as rs

from resumed import settle

HARNESS = Path(__file__).with_name("crash_harness.py")
GIT = rs.SAMPLES / "checkbox-git-2026-08"
OLD = rs.SAMPLES / "checkbox-1.18.1"
STEP_SAMPLES = [GIT / "small-v1.session", GIT / "small-v3.session", GIT / "small-v6.session",
                GIT / "small-v11.session", OLD / "small-v7.session"]
RESULT_FILES = [None, '{"outcome": "fail", "comments": "from __result"}', '{"outcome": "bogus"}']
RANDOM_KILLS = 2000 if rs.LONG else 180


def run_harness(tmp_path: Path, provider_dir: Path, rounds: list[dict[str, Any]]) -> Any:
    """Run the harness over ``rounds``; its report."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"rounds": rounds}))
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, str(HARNESS), str(work), str(provider_dir),
                           str(plan)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_kill_at_every_settle_step_loses_nothing_and_settles_once(
    tmp_path: Path, provider_dir: Path
) -> None:
    """SIGKILL at each of the six steps, over five formats and three ``__result`` cases."""
    rounds = [{"samples": [str(sample)], "step": step, "result_file": result}
              for step in settle.KILL_STEPS for sample in STEP_SAMPLES
              for result in RESULT_FILES]
    report = run_harness(tmp_path, provider_dir, rounds)
    assert report["violations"] == []
    assert report["kills"] == len(rounds)
    rs.count("kills survived: at a seam step", report["kills"])
    for state, n in report["states"].items():
        rs.count(f"kill left session file: {state}", n)


def test_kill_at_random_times_while_settling_several_sessions_loses_nothing(
    tmp_path: Path, provider_dir: Path
) -> None:
    """SIGKILL at random times while three sessions settle at once (restart after each)."""
    probe = run_harness(tmp_path / "probe", provider_dir,
                        [{"samples": [str(s) for s in STEP_SAMPLES[:3]], "delay": 30.0}])
    assert probe["finished"] == 1
    assert probe["violations"] == []
    chooser = random.Random(int(os.environ.get("RESUMED_CRASH_SEED", "6")))
    start = time.monotonic()
    rounds = []
    for _ in range(RANDOM_KILLS):
        samples = chooser.sample([str(s) for s in STEP_SAMPLES], 3)
        rounds.append({"samples": samples, "delay": chooser.uniform(0.0, probe["child_seconds"]),
                       "result_file": chooser.choice(RESULT_FILES)})
    report = run_harness(tmp_path / "random", provider_dir, rounds)
    # Backups are written under a temporary name and renamed (findings #3, fixed).
    assert report["violations"] == []
    assert report["damaged_backups"] == 0
    assert report["kills"] + report["finished"] == RANDOM_KILLS
    assert report["kills"] >= RANDOM_KILLS // 2, report
    rs.count("kills survived: at random times", report["kills"])
    for state, n in report["states"].items():
        rs.count(f"kill left session file: {state}", n)
    rs.count("crash rounds seconds", int(time.monotonic() - start))


def test_kill_while_writing_a_backup_leaves_no_damaged_backup(
    tmp_path: Path, provider_dir: Path
) -> None:
    """SIGKILL halfway through writing the backup: after the restart every backup is intact."""
    report = run_harness(tmp_path, provider_dir,
                         [{"samples": [str(GIT / "small-v11.session")], "step": "mid-backup"}])
    assert report["kills"] == 1
    assert report["violations"] == []
