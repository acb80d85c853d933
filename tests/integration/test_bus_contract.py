"""The D-Bus contract as independent clients (busctl, gdbus) see it on a private bus."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gi.repository import Gio, GLib

REPO = Path(__file__).resolve().parents[2]
INTERFACE_XML = REPO / "dbus" / "org.resumed.Resume1.xml"
ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
OURS = {MANAGER, SESSION, "org.freedesktop.DBus.ObjectManager"}


def _interfaces(xml: str) -> dict[str, ET.Element]:
    return {i.get("name"): i for i in ET.fromstring(xml).findall("interface")}


def _shape(interface: ET.Element) -> list[tuple[str, str, tuple[tuple[str, ...], ...]]]:
    """Members of an interface as comparable tuples (annotations and comments ignored)."""
    members = []
    for member in interface:
        if member.tag not in ("method", "signal", "property"):
            continue
        args = tuple((a.get("name") or "", a.get("type") or "",
                      a.get("direction") or ("in" if member.tag == "method" else ""))
                     for a in member.findall("arg"))
        extra = ((member.get("type") or "", member.get("access") or ""),)
        members.append((member.tag, member.get("name") or "", args + extra))
    return sorted(members)


def wait_state(private_bus, state: str = "ready") -> None:
    private_bus.wait_for(
        lambda: private_bus.get_property(ROOT, MANAGER, "State") == state, f"State {state}")


def test_every_type_signature_in_the_interface_xml_is_valid() -> None:
    """Each arg and property type is one complete D-Bus signature, and GDBus accepts the file."""
    root = ET.parse(INTERFACE_XML).getroot()
    types = [e.get("type") for e in root.iter() if e.tag in ("arg", "property")]
    assert types
    for signature in types:
        assert GLib.Variant.is_signature(signature), signature
        assert GLib.VariantType.string_is_valid(signature), signature
    node = Gio.DBusNodeInfo.new_for_xml(INTERFACE_XML.read_text())
    assert {i.name for i in node.interfaces} == OURS


def test_ready_then_busctl_and_gdbus_list_every_sample_session(
        private_bus, workspace, start_daemon) -> None:
    ids = workspace.add_all_samples()
    daemon = start_daemon()
    assert "READY=1" in daemon.notify.lines()
    wait_state(private_bus)
    listed = {row[0]: row for row in private_bus.list_sessions()}
    assert set(ids) <= set(listed)
    for session_id in ids:
        assert listed[session_id][2] in ("resumed", "complete", "pending")
        assert listed[session_id][1].startswith(ROOT + "/session/")
    gdbus = private_bus.gdbus("call", "--dest", "org.resumed.Resume1", "--object-path", ROOT,
                              "--method", f"{MANAGER}.ListSessions")
    for session_id in ids:
        assert f"'{session_id}'" in gdbus


def test_sample_session_resumes_with_its_jobs_and_results(
        private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    start_daemon()
    wait_state(private_bus)
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
    assert private_bus.get_property(path, SESSION, "State") == "resumed"
    running = private_bus.get_property(path, SESSION, "RunningJob")
    assert running == "com.example.synth::synth/reboot"
    assert private_bus.get_property(path, SESSION, "JobCount") == 5
    outcomes = private_bus.get_property(path, SESSION, "Outcomes")
    assert outcomes["com.example.synth::synth/devices"] == "pass"
    history = private_bus.call(path, SESSION, "GetJobResults", "s",
                               "com.example.synth::synth/devices")[0]
    assert history[0]["outcome"]["data"] == "pass"


def test_corrupted_session_is_discarded_and_left_byte_identical(
        private_bus, workspace, start_daemon) -> None:
    blob = workspace.add_corrupted()
    before = blob.read_bytes()
    start_daemon()
    wait_state(private_bus)
    discarded = {row[0]: row for row in private_bus.list_discarded()}
    assert discarded["corrupted"][1] == "corrupted"
    assert discarded["corrupted"][3] == str(blob.parent)
    assert "corrupted" not in {row[0] for row in private_bus.list_sessions()}
    assert blob.read_bytes() == before
    assert sorted(p.name for p in blob.parent.iterdir()) == ["session"]


def test_errors_have_resumed_names_and_no_traceback(private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    wait_state(private_bus)
    result = private_bus.run(["gdbus", "call", "--address", private_bus.address, "--dest",
                              "org.resumed.Resume1", "--object-path", ROOT, "--method",
                              f"{MANAGER}.GetSession", "no-such-session"], check=False)
    assert result.returncode != 0
    assert "org.resumed.Resume1.Error.NoSuchSession" in result.stderr
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
    result = private_bus.run(["gdbus", "call", "--address", private_bus.address, "--dest",
                              "org.resumed.Resume1", "--object-path", path, "--method",
                              f"{SESSION}.GetJobResults", "no::such-job"], check=False)
    assert "org.resumed.Resume1.Error.NoSuchJob" in result.stderr
    assert "Traceback" not in daemon.log.read_text()


def test_live_introspection_equals_the_interface_xml(private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    start_daemon()
    wait_state(private_bus)
    expected = _interfaces(INTERFACE_XML.read_text())
    path = private_bus.call(ROOT, MANAGER, "GetSession", "s", "git-v11")[0]
    live = {}
    for object_path in (ROOT, path):
        xml = private_bus.gdbus("introspect", "--xml", "--dest", "org.resumed.Resume1",
                                "--object-path", object_path)
        live.update({k: v for k, v in _interfaces(xml).items() if k in OURS})
    assert set(live) == OURS
    for name in OURS:
        assert _shape(live[name]) == _shape(expected[name]), name


def test_unprivileged_user_can_list_but_not_rescan(
        private_bus, workspace, start_daemon, unprivileged_user) -> None:
    """With the shipped policy, a non-root user lists sessions; Rescan is denied."""
    workspace.add_sample("git", 11)
    start_daemon()
    wait_state(private_bus)
    rows = private_bus.call(ROOT, MANAGER, "ListSessions", user=unprivileged_user)[0]
    assert [r[0] for r in rows] == ["git-v11"]
    denied = private_bus.busctl("call", "org.resumed.Resume1", ROOT, MANAGER, "Rescan",
                                user=unprivileged_user, check=False)
    assert isinstance(denied, subprocess.CompletedProcess)
    assert denied.returncode != 0
    assert "denied" in denied.stderr.lower()
    script = ("import sys, types; from resumed.cli.remote import run; sys.exit(run("
              "types.SimpleNamespace(command='rescan', json=False, "
              f"address={private_bus.address!r},"
              " id=None)))")
    resumectl = private_bus.run([sys.executable, "-c", script], user=unprivileged_user,
                                check=False)
    assert resumectl.returncode == 4, resumectl.stderr
    owner = private_bus.run(["gdbus", "call", "--address", private_bus.address, "--dest",
                             "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus",
                             "--method", "org.freedesktop.DBus.RequestName",
                             "org.resumed.Resume1", "4"], user=unprivileged_user, check=False)
    assert owner.returncode != 0


def test_root_rescan_finds_a_session_no_event_announced(
        private_bus, workspace, start_daemon) -> None:
    """Rescan returns at once and the full rescan finds what the (slow) watcher has not."""
    workspace.config.write_text("debounce = 3600\nrescan_interval = 3600\n")
    start_daemon()
    wait_state(private_bus)
    workspace.add_sample("git", 11)
    assert private_bus.list_sessions() == []
    assert private_bus.call(ROOT, MANAGER, "Rescan") is None
    private_bus.wait_for(lambda: [r[0] for r in private_bus.list_sessions()] == ["git-v11"],
                         "the rescanned session")
