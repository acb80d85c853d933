"""Run ``.venv/bin/resumed`` on a private bus with a NOTIFY_SOCKET, and time bus calls.

The timed client is libdbus (``python3-dbus``'s low-level API): it receives
and validates the whole reply and never unpacks it, so the numbers are the
daemon's and the bus's round trips. A GDBus client (``call_sync``) would also
parse every reply into a GVariant tree in C, 4-5 ms for a 1,000-row
``ListSessions`` reply here: ``python -m benchmarks.daemon breakdown`` prints
where the floor of that reply goes.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dbus
import dbus.bus
import dbus.exceptions
import dbus.lowlevel
from gi.repository import Gio, GLib

from resumed.daemon.names import (
    BUS_NAME,
    MANAGER_INTERFACE,
    PROPERTIES_INTERFACE,
    ROOT_PATH,
    SESSION_INTERFACE,
)

DAEMON = Path(sys.prefix) / "bin" / "resumed"
READY_TIMEOUT = 120.0


@contextmanager
def private_bus() -> Iterator[str]:
    """A private dbus-daemon (session config); yields its address."""
    proc = subprocess.Popen(
        ["dbus-daemon", "--config-file=/usr/share/dbus-1/session.conf",
         "--print-address=1", "--nofork"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Daemon:
    """A running daemon, its bus connection and when it said READY=1."""

    proc: subprocess.Popen[bytes]
    conn: dbus.bus.BusConnection
    ready_seconds: float

    def call(self, path: str, interface: str, method: str,
             params: GLib.Variant | None = None) -> dbus.lowlevel.Message:
        """One method call; the reply message is returned as received (never unpacked)."""
        return raw_call(self.conn, BUS_NAME, path, interface, method, params)

    def state(self) -> str:
        """The Manager's ``State`` property."""
        reply = self.call(ROOT_PATH, PROPERTIES_INTERFACE, "Get",
                          GLib.Variant("(ss)", (MANAGER_INTERFACE, "State")))
        return str(reply.get_args_list()[0])

    def wait_state(self, wanted: str, timeout: float) -> float:
        """Wait until ``State`` is ``wanted``; return the seconds waited."""
        start = time.perf_counter()
        while self.state() != wanted:
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"daemon State did not become {wanted!r} in {timeout} s")
            time.sleep(0.05)
        return time.perf_counter() - start

    def session_path(self, session_id: str) -> str:
        """The object path of a session (``GetSession``)."""
        reply = self.call(ROOT_PATH, MANAGER_INTERFACE, "GetSession",
                          GLib.Variant("(s)", (session_id,)))
        return str(reply.get_args_list()[0])

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the daemon in KiB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields["VmRSS"], fields["VmHWM"]


@contextmanager
def run_daemon(address: str, roots: list[Path], provider_dir: Path,
               state_dir: Path | None = None) -> Iterator[Daemon]:
    """Start the daemon on ``address``; yields once it has sent READY=1.

    ``state_dir``: the daemon's state directory, kept between runs (a restart);
    by default a fresh one (a first start).
    """
    work = Path(tempfile.mkdtemp(prefix="resumed-bench-"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(work / "notify"))
    config = work / "resumed.toml"
    config.write_text("settle = false\n")
    args = [str(DAEMON), "--config", str(config), "--bus", address,
            "--provider-dir", str(provider_dir), "--state-dir", str(state_dir or work / "state"),
            "--log-level", "warning"]
    for root in roots:
        args += ["--session-root", str(root)]
    env = dict(os.environ, NOTIFY_SOCKET=str(work / "notify"))
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL)
    try:
        notify.settimeout(READY_TIMEOUT)
        while b"READY=1" not in notify.recv(65536).split(b"\n"):
            pass
        ready = time.perf_counter() - start
        notify.settimeout(0.2)
        threading.Thread(target=_drain, args=(notify,), daemon=True).start()
        conn = dbus.bus.BusConnection(address)
        try:
            yield Daemon(proc, conn, ready)
        finally:
            conn.close()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        notify.close()
        shutil.rmtree(work, ignore_errors=True)


def raw_call(conn: dbus.bus.BusConnection, destination: str, path: str, interface: str,
             method: str, params: GLib.Variant | None = None) -> dbus.lowlevel.Message:
    """One blocking libdbus call; the reply message as received (raises ``GLib.Error``)."""
    message = dbus.lowlevel.MethodCallMessage(destination, path, interface, method)
    if params is not None:
        message.append(*params.unpack(), signature=params.get_type_string()[1:-1])
    try:
        return conn.send_message_with_reply_and_block(message, 60.0)
    except dbus.exceptions.DBusException as exc:
        raise GLib.Error(f"{exc.get_dbus_name()}: {exc.get_dbus_message()}") from exc


def _drain(notify: socket.socket) -> None:
    """Read (and drop) the daemon's later STATUS= messages so its sends never block."""
    while notify.fileno() != -1:
        try:
            notify.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return


_FLOOR_NAME = "org.resumed.BenchFloor"
_FLOOR_XML = (
    '<node><interface name="org.resumed.BenchFloor"><method name="ListSessions">'
    '<arg type="a(sossss)" direction="out"/></method></interface></node>'
)


def floor_reply(count: int) -> GLib.Variant:
    """The ``(a(sossss))`` reply of ``count`` bench rows, a tree as the daemon keeps it."""
    string = GLib.Variant.new_string
    rows = [GLib.Variant.new_tuple(
        string(f"bench-{i:05d}"),
        GLib.Variant.new_object_path(f"/org/resumed/Resume1/session/bench_2d{i:05d}"),
        string("resumed"), string("bench-500"), string("checkbox-cli"),
        string("com.example.bench::bench/job-00300")) for i in range(count)]
    return GLib.Variant.new_tuple(GLib.Variant.new_array(GLib.VariantType("(sossss)"), rows))


def serve_rows(address: str, count: int, name: str = _FLOOR_NAME) -> None:
    """A trivial Gio service answering ``ListSessions`` with ``count`` prebuilt rows.

    It does nothing else, so its round trip is the floor of the same reply
    through GDBus and dbus-daemon (run as ``python -m benchmarks.daemon serve``).
    """
    info = Gio.DBusNodeInfo.new_for_xml(_FLOOR_XML).interfaces[0]
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    reply = floor_reply(count)
    conn.register_object("/", info, lambda *args: args[-1].return_value(reply), None, None)
    conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "RequestName", GLib.Variant("(su)", (name, 4)), None,
                   Gio.DBusCallFlags.NONE, -1, None)
    print("ready", flush=True)
    GLib.MainLoop().run()


@contextmanager
def floor_service(address: str, rows: int, name: str = _FLOOR_NAME
                  ) -> Iterator[subprocess.Popen[str]]:
    """:func:`serve_rows` in a subprocess, once it owns ``name``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.daemon", "serve", address, str(rows), name],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def floor_round_trips(address: str, rows: int, count: int) -> list[float]:
    """Seconds of ``count`` libdbus calls to :func:`serve_rows` (replies not unpacked)."""
    with floor_service(address, rows):
        conn = dbus.bus.BusConnection(address)
        try:
            return time_calls(lambda: raw_call(conn, _FLOOR_NAME, "/", _FLOOR_NAME,
                                               "ListSessions"), count)
        finally:
            conn.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(rows: int = 1000, count: int = 400) -> list[tuple[str, float]]:
    """Where the floor of a ``rows``-row ``ListSessions`` round trip goes (ms, p50 or mean).

    In-process: GDBus writing the cached reply to the wire format (what every
    reply costs the server) and parsing it back (what a GDBus client does
    before the caller sees the reply). Over a private bus with :func:`serve_rows`:
    round trips of a libdbus client (no parsing), of a GDBus client and of an
    empty reply, and the CPU each process spends per call.
    """
    reply = floor_reply(rows)
    call = Gio.DBusMessage.new_method_call(_FLOOR_NAME, "/", _FLOOR_NAME, "ListSessions")
    call.set_serial(1)

    def to_blob() -> bytes:
        message = call.new_method_reply()
        message.set_body(reply)
        return bytes(message.to_blob(Gio.DBusCapabilityFlags.NONE))

    blob = to_blob()
    result = [
        ("server: GDBus writes the cached reply (to_blob)", _p50(time_calls(to_blob, count))),
        ("GDBus client: parses the reply (new_from_blob)", _p50(time_calls(
            lambda: Gio.DBusMessage.new_from_blob(blob, Gio.DBusCapabilityFlags.NONE), count))),
    ]
    with private_bus() as address, floor_service(address, rows) as server, \
            floor_service(address, 0, _FLOOR_NAME + "Empty"):
        conn = dbus.bus.BusConnection(address)
        bus_pid = int(raw_call(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                               GLib.Variant("(s)", ("org.freedesktop.DBus",))).get_args_list()[0])
        gio = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        empty = _p50(time_calls(lambda: raw_call(conn, _FLOOR_NAME + "Empty", "/", _FLOOR_NAME,
                                                 "ListSessions"), count))
        before = (_cpu_seconds(server.pid), _cpu_seconds(bus_pid), time.process_time())
        raw = _p50(time_calls(lambda: raw_call(conn, _FLOOR_NAME, "/", _FLOOR_NAME,
                                               "ListSessions"), count))
        after = (_cpu_seconds(server.pid), _cpu_seconds(bus_pid), time.process_time())
        parsed = _p50(time_calls(lambda: gio.call_sync(
            _FLOOR_NAME, "/", _FLOOR_NAME, "ListSessions", None, None,
            Gio.DBusCallFlags.NONE, 60_000, None), count))
        conn.close()
    cpu = [(b - a) / count * 1000 for a, b in zip(before, after, strict=True)]
    return [*result,
            ("round trip, empty reply, libdbus client", empty),
            (f"round trip, {rows} rows, libdbus client (reply not parsed)", raw),
            ("  CPU per call: server process (mean)", cpu[0]),
            ("  CPU per call: dbus-daemon (mean)", cpu[1]),
            ("  CPU per call: libdbus client (mean)", cpu[2]),
            (f"round trip, {rows} rows, GDBus client call_sync (parses in C)", parsed)]


def _p50(samples: list[float]) -> float:
    """The median of ``samples`` in milliseconds."""
    return statistics.median(samples) * 1000


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``samples``."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def time_calls(call: Callable[[], object], count: int) -> list[float]:
    """Seconds of each of ``count`` back-to-back calls."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def time_calls_while(call: Callable[[], object], busy: Callable[[], bool],
                     limit: float) -> list[float]:
    """Seconds of back-to-back calls made while ``busy()`` holds (at most ``limit`` s)."""
    samples: list[float] = []
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
        if len(samples) % 20 == 0 and not busy():
            break
    return samples


__all__ = ["SESSION_INTERFACE", "Daemon", "breakdown", "floor_round_trips", "floor_service",
           "percentiles", "private_bus", "raw_call", "run_daemon", "serve_rows", "time_calls",
           "time_calls_while"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_rows(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    else:
        print(f"load average {os.getloadavg()[0]:.2f}")
        for what, ms in breakdown():
            print(f"{ms:7.2f} ms  {what}")
