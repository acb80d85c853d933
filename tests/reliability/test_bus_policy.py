"""Bus policy (issue #6, part 5): an unprivileged user reads everything and changes nothing.

Every method and property of the interface XML is tried as a non-root user on
a private bus that loads the shipped policy: reads work; ``Rescan``,
``Properties.Set`` and owning the name are denied. With a permissive bus
policy the daemon still refuses ``Rescan`` by the caller's uid. A client that
floods calls does not starve another client (the latencies are measured).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reliability_integration as it
import reliability_support as rs
from gi.repository import Gio, GLib

ROOT = it.ROOT_PATH
NAME = it.BUS_NAME
XML = ET.parse(it.INTERFACE_XML).getroot()
SAMPLE_JOB = "com.example.synth::synth/devices"
#: An argument that is valid for each method that takes one.
ARGS = {"GetSession": ["s", "git-v11"], "GetJobResults": ["s", SAMPLE_JOB]}
READ_METHODS = {"ListSessions", "ListDiscarded", "GetSession", "GetJobResults",
                "GetManagedObjects"}

FLOODER = """
import sys, time
from gi.repository import Gio, GLib
address, seconds, inflight = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
         | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
con = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
loop = GLib.MainLoop()
end = time.monotonic() + seconds
done = [0, 0]
def call():
    con.call("org.resumed.Resume1", "/org/resumed/Resume1", "org.resumed.Resume1.Manager",
             "ListSessions", None, None, Gio.DBusCallFlags.NONE, -1, None, finished)
def finished(c, result):
    try:
        c.call_finish(result)
        done[0] += 1
    except GLib.Error:
        done[1] += 1
    if time.monotonic() < end:
        call()
for _ in range(inflight):
    call()
GLib.timeout_add(int(seconds * 1000) + 2000, loop.quit)
loop.run()
print(done[0], done[1])
"""


def members(interface: str, tag: str) -> list[ET.Element]:
    """The ``tag`` elements (method, property) of ``interface`` in the XML."""
    for node in XML.findall("interface"):
        if node.get("name") == interface:
            return node.findall(tag)
    raise AssertionError(interface)


def denied(result: Any) -> bool:
    """Whether a busctl/gdbus result is an access-denied error."""
    return (isinstance(result, subprocess.CompletedProcess) and result.returncode != 0
            and ("denied" in result.stderr.lower() or "AccessDenied" in result.stderr))


@pytest.fixture
def running(private_bus: Any, workspace: Any, start_daemon: Any) -> Iterator[Any]:
    """The daemon over one sample session, State ``ready``."""
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    private_bus.wait_for(lambda: private_bus.get_property(ROOT, it.MANAGER, "State") == "ready",
                         "State ready")
    return daemon


def test_unprivileged_user_reads_every_method_and_property_and_writes_nothing(
    private_bus: Any, running: Any, unprivileged_user: str
) -> None:
    """As a non-root user: every read works; Rescan, every Set and owning the name are denied."""
    user = unprivileged_user
    session_path = private_bus.call(ROOT, it.MANAGER, "GetSession", "s", "git-v11",
                                    user=user)[0]
    tried = 0
    for interface, path in ((it.MANAGER, ROOT), (it.SESSION, session_path),
                            ("org.freedesktop.DBus.ObjectManager", ROOT)):
        for method in members(interface, "method"):
            name = method.get("name")
            reply = private_bus.busctl("call", NAME, path, interface, name,
                                       *ARGS.get(name, []), user=user, check=False)
            tried += 1
            if name in READ_METHODS:
                assert not isinstance(reply, subprocess.CompletedProcess), (name, reply)
            else:
                assert denied(reply), (name, reply)
        for prop in members(interface, "property"):
            name, signature = prop.get("name"), prop.get("type")
            value = private_bus.busctl("get-property", NAME, path, interface, name,
                                       user=user, check=False)
            assert isinstance(value, dict), (name, value)
            fake = {"s": ["x"], "u": ["1"], "b": ["true"], "d": ["1.0"], "as": ["0"],
                    "ao": ["0"], "a{ss}": ["0"]}[signature]
            result = private_bus.busctl("set-property", NAME, path, interface, name,
                                        signature, *fake, user=user, check=False)
            assert denied(result), (name, result)
            tried += 2
        everything = private_bus.busctl("call", NAME, path, "org.freedesktop.DBus.Properties",
                                        "GetAll", "s", interface, user=user, check=False)
        assert isinstance(everything, dict), everything
        tried += 1
    for extra in (["org.freedesktop.DBus.Introspectable", "Introspect"],
                  ["org.freedesktop.DBus.Peer", "Ping"]):
        assert not isinstance(private_bus.busctl("call", NAME, ROOT, *extra, user=user,
                                                 check=False), subprocess.CompletedProcess)
        tried += 1
    unknown = private_bus.busctl("call", NAME, ROOT, it.MANAGER, "Shutdown", user=user,
                                 check=False)
    assert denied(unknown), unknown
    owner = private_bus.run(["gdbus", "call", "--address", private_bus.address, "--dest",
                             "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus",
                             "--method", "org.freedesktop.DBus.RequestName", NAME, "4"],
                            user=user, check=False)
    assert owner.returncode != 0, owner
    assert "AccessDenied" in owner.stderr, owner
    tried += 2
    rs.count("bus calls tried as an unprivileged user", tried)
    assert running.proc.poll() is None


def test_daemon_refuses_rescan_by_uid_even_when_the_bus_policy_allows_it(
    tmp_path: Path, workspace: Any, unprivileged_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misconfigured bus lets anyone call Rescan: the daemon still answers AccessDenied."""
    permissive = tmp_path / "permissive.conf"
    permissive.write_text(
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"'
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
        f"<busconfig><include>{it.POLICY}</include><policy context=\"default\">"
        f"<allow send_destination=\"{NAME}\"/></policy></busconfig>\n")
    monkeypatch.setattr(it, "POLICY", permissive)
    directory = Path(tempfile.mkdtemp(prefix="resumed-bus-"))  # reachable by the test user
    directory.chmod(0o755)
    bus = it.PrivateBus(directory)
    notify = it.NotifyReader(tmp_path / "notify.sock")
    env = {**bus.env(), "NOTIFY_SOCKET": str(notify.path)}
    daemon = it.DaemonProcess(workspace.argv(bus), env, notify, tmp_path / "daemon.log")
    try:
        daemon.wait_ready()
        result = bus.busctl("call", NAME, ROOT, it.MANAGER, "Rescan", user=unprivileged_user,
                            check=False)
        assert isinstance(result, subprocess.CompletedProcess), result
        assert "org.resumed.Resume1.Error.AccessDenied" in result.stderr or \
            "Only root" in result.stderr, result.stderr
        assert bus.call(ROOT, it.MANAGER, "Rescan") is None  # root still may
        assert "Traceback" not in daemon.log.read_text()
    finally:
        daemon.stop()
        notify.close()
        bus.stop()
        shutil.rmtree(directory, ignore_errors=True)


def client(address: str) -> Gio.DBusConnection:
    """A new client connection to the bus at ``address``."""
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
             | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def latencies(con: Gio.DBusConnection, seconds: float) -> list[float]:
    """ListSessions round trips (seconds) made one after the other for ``seconds``."""
    result = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        con.call_sync(NAME, ROOT, it.MANAGER, "ListSessions", None, None,
                      Gio.DBusCallFlags.NONE, 10_000, None)
        result.append(time.monotonic() - start)
    return result


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(values, n=20)[-1]


def test_a_client_flooding_calls_does_not_starve_another(
    private_bus: Any, workspace: Any, start_daemon: Any, unprivileged_user: str
) -> None:
    """An unprivileged flooder with 100 calls in flight; a second client still gets answers."""
    workspace.add_all_samples()
    start_daemon()
    private_bus.wait_for(lambda: private_bus.get_property(ROOT, it.MANAGER, "State") == "ready",
                         "State ready")
    con = client(private_bus.address)
    quiet = latencies(con, 2.0)
    flooder = subprocess.Popen(
        ["runuser", "-u", unprivileged_user, "--", "/usr/bin/python3", "-c", FLOODER,
         private_bus.address, "6", "100"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    loaded = latencies(con, 4.0)
    out, _ = flooder.communicate(timeout=60)
    flood_ok, flood_errors = (int(x) for x in out.split())
    figures = {
        "quiet calls/s": len(quiet) / 2.0, "quiet p95 ms": p95(quiet) * 1000,
        "flooded calls/s": len(loaded) / 4.0, "flooded p95 ms": p95(loaded) * 1000,
        "flooder calls/s": flood_ok / 6.0,
    }
    for key, value in figures.items():
        rs.count(f"flood: {key}", int(value))
    assert flood_ok > 0
    assert flood_errors == 0
    assert len(loaded) >= 20, figures
    assert p95(loaded) < 1.0, figures
    assert max(loaded) < 5.0, figures


def test_bus_stays_responsive_while_a_resume_holds_the_worker(
    private_bus: Any, workspace: Any, start_daemon: Any, tmp_path: Path
) -> None:
    """While the worker resumes a big session, Version and ListSessions answer quickly."""
    for index in range(40):
        workspace.add_sample("git", 11, session_id=f"busy{index}")
    daemon = start_daemon()
    con = client(private_bus.address)
    worst = 0.0
    calls = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        start = time.monotonic()
        reply = con.call_sync(NAME, ROOT, "org.freedesktop.DBus.Properties", "Get",
                              GLib.Variant("(ss)", (it.MANAGER, "State")), None,
                              Gio.DBusCallFlags.NONE, 10_000, None)
        worst = max(worst, time.monotonic() - start)
        calls += 1
        if reply.unpack()[0] == "ready":
            break
    assert daemon.proc.poll() is None
    rs.count("busy: worst State Get ms while resuming", int(worst * 1000))
    assert calls > 1
    assert worst < 1.0
