"""The daemon's life under systemd's eyes: READY, RELOADING, STOPPING, WATCHDOG, settling."""

from __future__ import annotations

import os
import signal
import time

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
OLD_MTIME = 1577880000.0


def wait_state(private_bus, state: str = "ready") -> None:
    private_bus.wait_for(
        lambda: private_bus.get_property(ROOT, MANAGER, "State") == state, f"State {state}")


def test_sigterm_sends_stopping_and_exits_cleanly(private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    wait_state(private_bus)
    assert daemon.stop() == 0
    assert "STOPPING=1" in daemon.notify.lines()
    names = private_bus.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "ListNames")["data"][0]
    assert "org.resumed.Resume1" not in names


def test_daemon_exits_when_the_bus_goes_away_first(private_bus, workspace, start_daemon) -> None:
    """A bus that stops before the daemon (dbus restarted) makes it exit, not hang."""
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    wait_state(private_bus)
    private_bus.stop()
    assert daemon.proc.wait(timeout=20) == 1
    assert "Lost the connection to the bus" in daemon.log.read_text()


def test_sighup_reloads_and_a_bad_config_keeps_the_old_one(
        private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    wait_state(private_bus)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1", count=2)
    lines = daemon.notify.lines()
    reloading = lines.index("RELOADING=1")
    assert lines[reloading + 1].startswith("MONOTONIC_USEC=")
    assert int(lines[reloading + 1].split("=", 1)[1]) > 0
    workspace.config.write_text("no_such_key = 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.notify.wait_for("READY=1", count=3)
    assert daemon.proc.poll() is None
    assert "Keeping the old configuration" in daemon.log.read_text()
    wait_state(private_bus)
    assert [r[0] for r in private_bus.list_sessions()] == ["git-v11"]


def test_bad_config_at_start_is_refused(private_bus, workspace, start_daemon) -> None:
    workspace.config.write_text("no_such_key = 1\n")
    daemon = start_daemon(wait=False)
    assert daemon.proc.wait(30) == 1
    assert "no_such_key" in daemon.log.read_text()
    assert "READY=1" not in daemon.notify.lines()


def test_stopped_daemon_stops_pinging_the_watchdog(private_bus, workspace, start_daemon) -> None:
    daemon = start_daemon()
    daemon.notify.wait_for("WATCHDOG=1", count=3)
    os.kill(daemon.pid, signal.SIGSTOP)
    time.sleep(0.3)
    stopped_at = time.monotonic()
    time.sleep(2.0)
    assert "WATCHDOG=1" not in daemon.notify.lines(since=stopped_at)
    os.kill(daemon.pid, signal.SIGCONT)
    resumed = daemon.notify.count("WATCHDOG=1")
    daemon.notify.wait_for("WATCHDOG=1", count=resumed + 2)


def test_busy_daemon_keeps_pinging_and_answering(private_bus, workspace, start_daemon) -> None:
    """While 100 sessions are being resumed, ListSessions answers and WATCHDOG=1 keeps coming."""
    for index in range(100):
        workspace.add_sample("git", 11, session_id=f"bulk-{index:03d}")
    daemon = start_daemon()
    started = time.monotonic()
    answers = 0
    while private_bus.get_property(ROOT, MANAGER, "State") != "ready":
        before = time.monotonic()
        assert len(private_bus.list_sessions()) == 100
        assert time.monotonic() - before < 5.0
        answers += 1
        assert time.monotonic() - started < 120
    wait_state(private_bus)
    elapsed = time.monotonic() - started
    pings = len([m for m in daemon.notify.lines(since=started) if m == "WATCHDOG=1"])
    # WATCHDOG_USEC=1s: a ping every 0.5 s from the main loop.
    assert pings >= int(elapsed / 0.5) - 2
    states = {row[2] for row in private_bus.list_sessions()}
    assert states == {"resumed"}
    status = [m for m in daemon.notify.lines() if m.startswith("STATUS=")]
    assert any("100 sessions" in m for m in status)


def test_interrupted_noreturn_job_is_settled_pass_once_across_three_restarts(
        private_bus, workspace, start_daemon) -> None:
    session_dir = workspace.add_sample("git", 11, mtime=OLD_MTIME)
    blob = session_dir / "session"
    seen = []
    for _restart in range(3):
        daemon = start_daemon()
        wait_state(private_bus)
        path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
        assert private_bus.get_property(path, SESSION, "InterruptedJobOutcome") == "pass"
        assert private_bus.get_property(path, SESSION, "SettleError") == ""
        history = private_bus.call(path, SESSION, "GetJobResults", "s",
                                   "com.example.synth::synth/reboot")[0]
        assert [h["outcome"]["data"] for h in history] == ["pass"]
        seen.append(blob.read_bytes())
        assert daemon.stop() == 0
    assert seen[0] == seen[1] == seen[2]
    backups = list((workspace.state / "backups" / "git-v11").iterdir())
    assert len(backups) == 1
