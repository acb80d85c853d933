"""Run ``.venv/bin/resumed`` on a private bus with a NOTIFY_SOCKET, and time bus calls.

The client uses Gio's ``call_sync`` and never unpacks replies, so the numbers
are the daemon's round trips, not Python's unpacking.
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
    conn: Gio.DBusConnection
    ready_seconds: float

    def call(self, path: str, interface: str, method: str,
             params: GLib.Variant | None = None) -> GLib.Variant:
        """One method call; the reply stays a GVariant (never unpacked)."""
        return self.conn.call_sync(BUS_NAME, path, interface, method, params, None,
                                   Gio.DBusCallFlags.NONE, 60_000, None)

    def state(self) -> str:
        """The Manager's ``State`` property."""
        reply = self.call(ROOT_PATH, PROPERTIES_INTERFACE, "Get",
                          GLib.Variant("(ss)", (MANAGER_INTERFACE, "State")))
        return str(reply.unpack()[0])

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
        return str(reply.unpack()[0])

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
        conn = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        yield Daemon(proc, conn, ready)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        notify.close()
        shutil.rmtree(work, ignore_errors=True)


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


def serve_rows(address: str, count: int) -> None:
    """A trivial Gio service answering ``ListSessions`` with ``count`` prebuilt rows.

    It does nothing else, so its round trip is the floor of the same reply
    through GDBus and dbus-daemon (run as ``python -m benchmarks.daemon``).
    """
    info = Gio.DBusNodeInfo.new_for_xml(_FLOOR_XML).interfaces[0]
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    rows = [GLib.Variant("(sossss)", (
        f"bench-{i:05d}", f"/org/resumed/Resume1/session/bench_{i:05d}", "resumed",
        "bench-500", "checkbox-cli", "com.example.bench::bench/job-00300"))
        for i in range(count)]
    reply = GLib.Variant.new_tuple(GLib.Variant.new_array(GLib.VariantType("(sossss)"), rows))
    conn.register_object("/", info, lambda *args: args[-1].return_value(reply), None, None)
    conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "RequestName", GLib.Variant("(su)", (_FLOOR_NAME, 4)), None,
                   Gio.DBusCallFlags.NONE, -1, None)
    print("ready", flush=True)
    GLib.MainLoop().run()


def floor_round_trips(address: str, rows: int, count: int) -> list[float]:
    """Seconds of ``count`` calls to :func:`serve_rows` (started in a subprocess)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.daemon", address, str(rows)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        conn = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        return time_calls(lambda: conn.call_sync(
            _FLOOR_NAME, "/", _FLOOR_NAME, "ListSessions", None, None,
            Gio.DBusCallFlags.NONE, 60_000, None), count)
    finally:
        proc.terminate()
        proc.wait(10)


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


__all__ = ["SESSION_INTERFACE", "Daemon", "floor_round_trips", "percentiles", "private_bus",
           "run_daemon", "serve_rows", "time_calls", "time_calls_while"]


if __name__ == "__main__":
    serve_rows(sys.argv[1], int(sys.argv[2]))
