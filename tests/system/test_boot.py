"""The .deb on a real booted Debian 12, under systemd.

Resume at boot, settle once across a reboot, and systemd's reload, restart and
watchdog around the daemon. The tests share one guest (booting is the expensive
part) and run in file order: the first one needs the guest's first boot.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.system

BUS_NAME = "org.resumed.Resume1"
ROOT_PATH = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
REBOOT_JOB = "com.example.synth::synth/reboot"
SESSION_IDS = ("small-v11", "small-v7")
NOT_SETTLED_AGAIN = (
    "Job rebooted the machine or the Checkbox agent. Resuming the session and "
    "marking it as passed because the job has the `noreturn` flag"
)
READY_TIMEOUT = 90.0
DROP_IN = "/run/systemd/system/resumed.service.d/test-watchdog.conf"


class Daemon:
    """The daemon in the guest, seen through the guest's system bus and systemd."""

    def __init__(self, guest: Any) -> None:
        """Talk to the daemon of ``guest`` (a conftest ``Guest``)."""
        self.guest = guest

    def _busctl(self, *argv: str) -> Any:
        """Run busctl against the guest bus; return the decoded ``data`` (None on error)."""
        proc = self.guest.busctl(*argv)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)["data"]

    def manager_state(self) -> str | None:
        """The Manager's State property, or None while the daemon is not on the bus."""
        return self._busctl("get-property", BUS_NAME, ROOT_PATH, MANAGER, "State")

    def session_path(self, session_id: str) -> str | None:
        """The object path of a published session, or None."""
        data = self._busctl("call", BUS_NAME, ROOT_PATH, MANAGER, "GetSession", "s", session_id)
        return None if data is None else data[0]

    def session_property(self, session_id: str, name: str) -> Any:
        """A property of a published session, or None."""
        path = self.session_path(session_id)
        return None if path is None else self._busctl("get-property", BUS_NAME, path, SESSION,
                                                      name)

    def job_results(self, session_id: str, job_id: str) -> list[dict[str, Any]]:
        """The result history of a job of a resumed session, values unwrapped."""
        path = self.session_path(session_id)
        assert path is not None, self.guest.diagnose()
        proc = self.guest.busctl("call", BUS_NAME, path, SESSION, "GetJobResults", "s", job_id)
        assert proc.returncode == 0, proc.stderr
        history = json.loads(proc.stdout)["data"][0]
        return [{k: v["data"] for k, v in result.items()} for result in history]

    def unit(self, *names: str) -> dict[str, str]:
        """Properties of resumed.service."""
        return self.guest.unit_properties("resumed.service", *names)

    def wait_running(self) -> dict[str, str]:
        """Wait until the unit runs; return its ActiveState, SubState, MainPID, NRestarts."""
        names = ("ActiveState", "SubState", "MainPID", "NRestarts")

        def running() -> dict[str, str] | None:
            props = self.unit(*names)
            ok = props.get("ActiveState") == "active" and props.get("SubState") == "running"
            return props if ok else None

        return self.guest.wait_for("resumed.service to run", running, READY_TIMEOUT)

    def wait_settled(self) -> None:
        """Wait until the daemon is ready and every sample session is resumed and settled."""
        def settled() -> bool:
            if self.manager_state() != "ready":
                return False
            return all(self.session_property(s, "State") == "resumed"
                       and self.session_property(s, "InterruptedJobOutcome") == "pass"
                       for s in SESSION_IDS)

        self.guest.wait_for("the sample sessions to be resumed and settled", settled,
                            READY_TIMEOUT, self.describe)

    def describe(self) -> str:
        """What the daemon publishes, for failure messages."""
        sessions = self._busctl("call", BUS_NAME, ROOT_PATH, MANAGER, "ListSessions")
        discarded = self._busctl("call", BUS_NAME, ROOT_PATH, MANAGER, "ListDiscarded")
        errors = {s: self.session_property(s, "SettleError") for s in SESSION_IDS}
        return (f"State={self.manager_state()!r}\nsessions={sessions}\ndiscarded={discarded}\n"
                f"settle errors={errors}\n{self.guest.diagnose()}")


def session_file(root: Path, session_id: str) -> Path:
    """Where the guest keeps a sample session's blob."""
    return root / "var/tmp/checkbox-ng/sessions" / f"{session_id}.session" / "session"


def backups(root: Path, session_id: str) -> list[Path]:
    """The backups settle made of a session."""
    return sorted((root / "var/lib/resumed/backups" / session_id).glob("*.session"))


@pytest.fixture
def daemon(guest: Any) -> Daemon:
    """The daemon of the booted guest."""
    return Daemon(guest)


def test_session_interrupted_by_reboot_is_settled_once_across_reboots(
        guest: Any, daemon: Daemon) -> None:
    """At boot the daemon resumes the dormant sessions and passes their noreturn job, once."""
    daemon.wait_running()
    daemon.wait_settled()
    written: dict[str, bytes] = {}
    for session_id in SESSION_IDS:
        results = daemon.job_results(session_id, REBOOT_JOB)
        assert [(r["outcome"], r["comments"]) for r in results] == [("pass", NOT_SETTLED_AGAIN)]
        assert daemon.session_property(session_id, "SettleError") == ""
        written[session_id] = session_file(guest.root, session_id).read_bytes()
        assert len(backups(guest.root, session_id)) == 1

    guest.reboot()

    daemon.wait_running()
    daemon.wait_settled()
    for session_id in SESSION_IDS:
        assert session_file(guest.root, session_id).read_bytes() == written[session_id]
        results = daemon.job_results(session_id, REBOOT_JOB)
        assert [r["outcome"] for r in results] == ["pass"]
        assert len(backups(guest.root, session_id)) == 1


def test_reload_rereads_everything_and_keeps_the_daemon(guest: Any, daemon: Daemon) -> None:
    """`systemctl reload resumed` succeeds, the same process serves on, and is ready again."""
    before = daemon.wait_running()
    guest.run("systemctl", "reload", "resumed")
    daemon.wait_settled()
    after = daemon.wait_running()
    assert after["MainPID"] == before["MainPID"]


def test_killed_daemon_is_restarted_by_systemd(guest: Any, daemon: Daemon) -> None:
    """After `kill -9` of the daemon systemd starts it again; it does not settle again."""
    before = daemon.wait_running()
    written = {s: session_file(guest.root, s).read_bytes() for s in SESSION_IDS}
    guest.run("kill", "-9", before["MainPID"])

    def restarted() -> dict[str, str] | None:
        props = daemon.unit("ActiveState", "SubState", "MainPID", "NRestarts")
        new = props["MainPID"] not in ("0", before["MainPID"]) and props["SubState"] == "running"
        return props if new else None

    after = guest.wait_for("systemd to restart the daemon", restarted, READY_TIMEOUT)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    daemon.wait_settled()
    assert {s: session_file(guest.root, s).read_bytes() for s in SESSION_IDS} == written


def test_watchdog_keeps_a_live_daemon_and_restarts_a_stuck_one(
        guest: Any, daemon: Daemon) -> None:
    """The unit arms the watchdog; the daemon feeds it; a frozen daemon is restarted."""
    assert daemon.unit("WatchdogUSec")["WatchdogUSec"] == "30s"
    # A short watchdog for the test only, so that a missed ping shows within seconds.
    drop_in = guest.path(DROP_IN)
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_text("[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n")
    try:
        guest.run("systemctl", "daemon-reload")
        guest.run("systemctl", "restart", "resumed")
        fed = daemon.wait_running()
        time.sleep(6)  # three watchdog periods
        assert daemon.unit("MainPID", "NRestarts", "SubState") == {
            "MainPID": fed["MainPID"], "NRestarts": fed["NRestarts"], "SubState": "running"}

        guest.run("kill", "-STOP", fed["MainPID"])

        def restarted() -> dict[str, str] | None:
            props = daemon.unit("MainPID", "NRestarts", "SubState")
            new = props["MainPID"] not in ("0", fed["MainPID"]) and props["SubState"] == "running"
            return props if new else None

        after = guest.wait_for("the watchdog to restart the frozen daemon", restarted,
                               READY_TIMEOUT)
        assert int(after["NRestarts"]) == int(fed["NRestarts"]) + 1
    finally:
        drop_in.unlink()
        guest.run("systemctl", "daemon-reload")
        guest.run("systemctl", "restart", "resumed")
    daemon.wait_settled()


def test_daemon_stops_cleanly_and_a_bus_call_starts_it_again(
        guest: Any, daemon: Daemon) -> None:
    """`systemctl stop` ends the daemon by SIGTERM (exit 0); bus activation brings it back."""
    daemon.wait_running()
    guest.run("systemctl", "stop", "resumed", timeout=READY_TIMEOUT)
    try:
        props = daemon.unit("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
        assert props == {"ActiveState": "inactive", "Result": "success",
                         "ExecMainCode": "1", "ExecMainStatus": "0"}, guest.diagnose()
        # The first call to the name makes dbus-daemon ask systemd for resumed.service.
        assert daemon.manager_state() is not None, guest.diagnose()
        daemon.wait_running()
    finally:
        guest.run("systemctl", "start", "resumed", timeout=READY_TIMEOUT)
    daemon.wait_settled()


def test_resumectl_in_the_guest_shows_the_settled_session(guest: Any, daemon: Daemon) -> None:
    """The installed `resumectl` lists the sessions and shows the settled outcome."""
    daemon.wait_settled()
    listed = json.loads(guest.run("resumectl", "--json", "list").stdout)
    assert sorted(s["id"] for s in listed) == sorted(SESSION_IDS)
    shown = json.loads(guest.run("resumectl", "--json", "show", "small-v11").stdout)
    assert (shown["state"], shown["interrupted_job_outcome"]) == ("resumed", "pass")


def test_purge_then_install_on_a_running_system(
        guest: Any, daemon: Daemon, built_deb: Path) -> None:
    """Purging stops the daemon and removes its config, never the sessions.

    Installing on a running system starts it at once, and it does not settle again.
    """
    daemon.wait_settled()
    written = {s: session_file(guest.root, s).read_bytes() for s in SESSION_IDS}
    guest.run("dpkg", "--purge", "resumed")
    assert daemon.unit("ActiveState")["ActiveState"] == "inactive"
    assert not (guest.root / "etc/resumed").exists()
    assert {s: session_file(guest.root, s).read_bytes() for s in SESSION_IDS} == written

    guest.path(f"/tmp/{built_deb.name}").write_bytes(built_deb.read_bytes())
    guest.run("dpkg", "-i", f"/tmp/{built_deb.name}")
    assert (guest.root / "etc/resumed/resumed.toml").is_file()
    daemon.wait_running()
    daemon.wait_settled()
    assert {s: session_file(guest.root, s).read_bytes() for s in SESSION_IDS} == written
    for session_id in SESSION_IDS:
        assert len(daemon.job_results(session_id, REBOOT_JOB)) == 1
