"""Changes on disk reach the bus without a restart (events may be lost: no exact lists)."""

from __future__ import annotations

import shutil
import subprocess
import time

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"


def wait_state(private_bus, state: str = "ready") -> None:
    private_bus.wait_for(
        lambda: private_bus.get_property(ROOT, MANAGER, "State") == state, f"State {state}")


def test_new_session_dir_appears_and_deleting_it_removes_it(
        private_bus, workspace, start_daemon, tmp_path) -> None:
    start_daemon()
    wait_state(private_bus)
    log = tmp_path / "monitor.log"
    with log.open("w") as stream:
        monitor = subprocess.Popen(["gdbus", "monitor", "--address", private_bus.address,
                                    "--dest", "org.resumed.Resume1"], stdout=stream)
    try:
        time.sleep(0.5)
        session_dir = workspace.add_sample("git", 11, session_id="dropped")
        private_bus.wait_for(lambda: "dropped" in {r[0] for r in private_bus.list_sessions()},
                             "the dropped session to be listed")
        shutil.rmtree(session_dir)
        private_bus.wait_for(lambda: private_bus.list_sessions() == [],
                             "the deleted session to be removed")
        private_bus.wait_for(lambda: "SessionRemoved ('dropped'" in log.read_text(),
                             "SessionRemoved")
    finally:
        monitor.terminate()
        monitor.wait()
    text = log.read_text()
    assert "SessionAdded ('dropped'" in text
    assert "InterfacesAdded" in text


def test_session_root_created_after_start_is_watched(
        private_bus, workspace, start_daemon) -> None:
    late_root = workspace.base / "late" / "sessions"
    start_daemon(extra=["--session-root", str(late_root)])
    wait_state(private_bus)
    late_root.mkdir(parents=True)
    workspace.add_sample("git", 11, session_id="late-v11", root=late_root)
    private_bus.wait_for(lambda: {r[0] for r in private_bus.list_sessions()} == {"late-v11"},
                         "the session in the new root")


def test_editing_a_provider_job_makes_sessions_incompatible_job(
        private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    workspace.add_sample("cb118", 7)
    start_daemon()
    wait_state(private_bus)
    assert {r[2] for r in private_bus.list_sessions()} == {"resumed"}
    units = workspace.units / "synth-small.pxu"
    units.write_text(units.read_text().replace("command: dmesg", "command: dmesg --ctime"))
    private_bus.wait_for(lambda: len(private_bus.list_discarded()) == 2,
                         "both sessions to be discarded")
    for row in private_bus.list_discarded():
        assert row[1] == "incompatible-job"
        assert "com.example.synth::synth/attach-dmesg" in row[4]
    assert private_bus.list_sessions() == []
