"""Run ``.venv/bin/resumed`` on a private bus with a NOTIFY_SOCKET, and time bus calls.

The timed client is libdbus (``python3-dbus``'s low-level API): it receives
and validates the whole reply and never unpacks it, so the numbers are the
daemon's and the bus's round trips. A GDBus client (``call_sync``) would also
parse every reply into a GVariant tree in C, 4-5 ms for a 1,000-row
``ListSessions`` reply here: ``python -m benchmarks.daemon breakdown`` prints
where the floor of that reply goes. ``serve_raw`` (``serve-raw``), a raw-socket
responder sending the reply pre-serialized, is for that measurement only: it
gives the round trip through dbus-daemon with no serialization in the server.
"""

from __future__ import annotations

import collections
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
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
    with proc:
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
    with _service("serve", address, rows, name) as proc:
        yield proc


@contextmanager
def _service(command: str, address: str, rows: int, name: str
             ) -> Iterator[subprocess.Popen[str]]:
    """``python -m benchmarks.daemon command ...`` in a subprocess, once it says ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.daemon", command, address, str(rows), name],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    with proc:
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


# A raw-socket D-Bus responder, for measurement only (never used by the daemon).
# It answers ``ListSessions`` with the same reply body as :func:`serve_rows`,
# serialized once at start, so its round trip is what dbus-daemon and a libdbus
# client cost with no per-call serialization in the server at all.

_METHOD_CALL, _METHOD_RETURN, _ERROR, _SIGNAL = 1, 2, 3, 4
_NO_REPLY_EXPECTED = 0x1
_PATH, _INTERFACE, _MEMBER, _ERROR_NAME, _REPLY_SERIAL, _DESTINATION, _SENDER, _SIGNATURE = (
    range(1, 9))
_BUS = "org.freedesktop.DBus"


@dataclass
class WireMessage:
    """The few parts of a received D-Bus message the raw responder needs."""

    kind: int
    flags: int
    serial: int
    fields: dict[int, str | int]
    body: bytes


def _align(offset: int, boundary: int) -> int:
    """``offset`` rounded up to a multiple of ``boundary``."""
    return -(-offset // boundary) * boundary


def _marshal_string(buf: bytearray, signature: str, value: str | int) -> None:
    """Append a basic ``s``, ``o``, ``g`` or ``u`` value (little-endian) to ``buf``."""
    if signature == "g":
        data = str(value).encode()
        buf += bytes((len(data),)) + data + b"\0"
        return
    buf += bytes(_align(len(buf), 4) - len(buf))
    if signature == "u":
        buf += struct.pack("<I", value)
    else:
        data = str(value).encode()
        buf += struct.pack("<I", len(data)) + data + b"\0"


def wire_message(kind: int, serial: int, fields: list[tuple[int, str, str | int]],
                 body: bytes = b"", flags: int = 0) -> bytes:
    """A little-endian D-Bus message: header fields ``(code, signature, value)`` + ``body``.

    ``body`` must already be in the wire format; it starts 8-aligned, so any
    body serialized on its own (like the cached reply body) can follow any header.
    """
    buf = bytearray(16)
    for code, signature, value in fields:
        buf += bytes(_align(len(buf), 8) - len(buf))
        buf += bytes((code, 1)) + signature.encode() + b"\0"
        _marshal_string(buf, signature, value)
    struct.pack_into("<cBBBIII", buf, 0, b"l", kind, flags, 1, len(body), serial, len(buf) - 16)
    buf += bytes(_align(len(buf), 8) - len(buf))
    return bytes(buf) + body


def split_messages(buffer: bytearray) -> list[WireMessage]:
    """Remove and parse every complete message at the start of ``buffer``.

    Bytes of an incomplete message stay in ``buffer`` for the next read, so
    messages split across reads or coalesced in one read are handled alike.
    Only the header fields of type ``s``, ``o``, ``g`` and ``u`` (all the
    standard ones) are understood.
    """
    messages = []
    while len(buffer) >= 16:
        order = "<" if buffer[0:1] == b"l" else ">"
        kind, flags, _, body_length, serial, fields_length = struct.unpack_from(
            order + "BBBIII", buffer, 1)
        start = _align(16 + fields_length, 8)
        if len(buffer) < start + body_length:
            break
        fields: dict[int, str | int] = {}
        offset = 16
        while offset < 16 + fields_length:
            offset = _align(offset, 8)
            code, length = buffer[offset], buffer[offset + 1]
            signature = bytes(buffer[offset + 2:offset + 2 + length]).decode()
            offset += 3 + length
            if signature == "g":
                length = buffer[offset]
                fields[code] = bytes(buffer[offset + 1:offset + 1 + length]).decode()
                offset += 2 + length
                continue
            offset = _align(offset, 4)
            (number,) = struct.unpack_from(order + "I", buffer, offset)
            if signature == "u":
                fields[code] = number
                offset += 4
            elif signature in ("s", "o"):
                fields[code] = bytes(buffer[offset + 4:offset + 4 + number]).decode()
                offset += 5 + number
            else:
                raise ValueError(f"header field {code} of type {signature!r}")
        messages.append(WireMessage(kind, flags, serial, fields,
                                    bytes(buffer[start:start + body_length])))
        del buffer[:start + body_length]
    return messages


def unix_socket_address(address: str) -> str | bytes:
    """The socket address of the first ``unix:path=`` or ``unix:abstract=`` D-Bus address."""
    for entry in address.split(";"):
        transport, _, options = entry.partition(":")
        if transport != "unix":
            continue
        keys = dict(option.split("=", 1) for option in options.split(","))
        if "path" in keys:
            return urllib.parse.unquote(keys["path"])
        if "abstract" in keys:
            return b"\0" + urllib.parse.unquote_to_bytes(keys["abstract"])
    raise ValueError(f"no unix:path= or unix:abstract= in D-Bus address {address!r}")


def reply_body(rows: int) -> bytes:
    """The wire-format body of :func:`floor_reply` (``rows`` rows), serialized once by GDBus."""
    call = Gio.DBusMessage.new_method_call(_FLOOR_NAME, "/", _FLOOR_NAME, "ListSessions")
    call.set_serial(1)
    message = call.new_method_reply()
    message.set_body(floor_reply(rows))
    blob = bytes(message.to_blob(Gio.DBusCapabilityFlags.NONE))
    (body,) = split_messages(bytearray(blob))
    return body.body


class RawConnection:
    """A blocking bus connection over a plain socket: SASL EXTERNAL, then raw messages."""

    def __init__(self, address: str) -> None:
        """Connect, authenticate as this uid and say ``Hello``."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(unix_socket_address(address))
        self.buffer = bytearray()
        self.pending: collections.deque[WireMessage] = collections.deque()
        self.serial = 0
        uid = str(os.getuid()).encode().hex().encode()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\n")
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the bus closed the connection during SASL")
            line += chunk
        if not line.startswith(b"OK "):
            raise ConnectionError(f"SASL EXTERNAL refused: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.unique_name = self.call_bus("Hello")

    def next_serial(self) -> int:
        """A fresh serial for an outgoing message."""
        self.serial += 1
        return self.serial

    def call_bus(self, member: str, signature: str = "", body: bytes = b"") -> str:
        """Call ``member`` on the bus driver; wait for its reply (the first string, if any)."""
        serial = self.next_serial()
        fields: list[tuple[int, str, str | int]] = [
            (_PATH, "o", "/org/freedesktop/DBus"), (_INTERFACE, "s", _BUS),
            (_MEMBER, "s", member), (_DESTINATION, "s", _BUS)]
        if signature:
            fields.append((_SIGNATURE, "g", signature))
        self.sock.sendall(wire_message(_METHOD_CALL, serial, fields, body))
        for message in self.messages():
            if message.kind in (_METHOD_RETURN, _ERROR) \
                    and message.fields.get(_REPLY_SERIAL) == serial:
                if message.kind == _ERROR:
                    raise ConnectionError(f"{member}: {message.fields.get(_ERROR_NAME)}")
                if str(message.fields.get(_SIGNATURE, "")).startswith("s"):
                    (length,) = struct.unpack_from("<I", message.body)
                    return message.body[4:4 + length].decode()
                return ""
        raise ConnectionError("the bus closed the connection")

    def messages(self) -> Iterator[WireMessage]:
        """Every message received, as it arrives (ends when the bus hangs up)."""
        while True:
            while self.pending:
                yield self.pending.popleft()
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return
            self.buffer += chunk
            self.pending.extend(split_messages(self.buffer))


def serve_raw(address: str, count: int, name: str = _FLOOR_NAME + "Raw") -> None:
    """A raw-socket responder answering ``ListSessions`` with ``count`` pre-serialized rows.

    For measurement only (``python -m benchmarks.daemon serve-raw``): the reply
    body is the one :func:`serve_rows` sends, serialized once at start; each
    call costs a small header built in Python and one ``sendall``. Signals are
    ignored; other methods get an ``UnknownMethod`` error.
    """
    body = reply_body(count)
    conn = RawConnection(address)
    request = bytearray()
    _marshal_string(request, "s", name)
    _marshal_string(request, "u", 4)  # DBUS_NAME_FLAG_DO_NOT_QUEUE
    conn.call_bus("RequestName", "su", bytes(request))
    print("ready", flush=True)
    for message in conn.messages():
        if message.kind != _METHOD_CALL or message.flags & _NO_REPLY_EXPECTED:
            continue
        fields: list[tuple[int, str, str | int]] = [
            (_REPLY_SERIAL, "u", message.serial),
            (_DESTINATION, "s", message.fields[_SENDER])]
        if message.fields.get(_MEMBER) == "ListSessions":
            fields.append((_SIGNATURE, "g", "a(sossss)"))
            conn.sock.sendall(wire_message(_METHOD_RETURN, conn.next_serial(), fields, body))
        else:
            fields.append((_ERROR_NAME, "s", "org.freedesktop.DBus.Error.UnknownMethod"))
            conn.sock.sendall(wire_message(_ERROR, conn.next_serial(), fields))


@contextmanager
def raw_floor_service(address: str, rows: int, name: str = _FLOOR_NAME + "Raw"
                      ) -> Iterator[subprocess.Popen[str]]:
    """:func:`serve_raw` in a subprocess, once it owns ``name``."""
    with _service("serve-raw", address, rows, name) as proc:
        yield proc


def raw_floor_round_trips(address: str, rows: int, count: int) -> list[float]:
    """Seconds of ``count`` libdbus calls to :func:`serve_raw` (replies not unpacked)."""
    with raw_floor_service(address, rows):
        conn = dbus.bus.BusConnection(address)
        try:
            return time_calls(lambda: raw_call(conn, _FLOOR_NAME + "Raw", "/", _FLOOR_NAME,
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
    before the caller sees the reply). Over a private bus: round trips of a
    libdbus client (no parsing) to :func:`serve_rows` and to :func:`serve_raw`
    (the same reply pre-serialized: no per-call serialization), with the CPU
    each process spends per call; of a GDBus client; and of an empty reply.
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
            raw_floor_service(address, rows) as raw_server, \
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

        def list_sessions(name: str) -> Callable[[], object]:
            return lambda: raw_call(conn, name, "/", _FLOOR_NAME, "ListSessions")

        empty = _p50(time_calls(list_sessions(_FLOOR_NAME + "Empty"), count))
        measured = [_round_trip_cpu(list_sessions(name), (pid, bus_pid), count)
                    for name, pid in ((_FLOOR_NAME, server.pid),
                                      (_FLOOR_NAME + "Raw", raw_server.pid))]
        parsed = _p50(time_calls(lambda: gio.call_sync(
            _FLOOR_NAME, "/", _FLOOR_NAME, "ListSessions", None, None,
            Gio.DBusCallFlags.NONE, 60_000, None), count))
        conn.close()
    for what, (p50, cpu) in zip(("Gio service (GDBus serializes at every call)",
                                 "raw-socket responder (pre-serialized reply)"),
                                measured, strict=True):
        result += [(f"round trip, {rows} rows, {what}, libdbus client (reply not parsed)", p50),
                   ("  CPU per call: server process (mean)", cpu[0]),
                   ("  CPU per call: dbus-daemon (mean)", cpu[1]),
                   ("  CPU per call: libdbus client (mean)", cpu[2])]
    return [*result,
            ("round trip, empty reply, libdbus client", empty),
            (f"round trip, {rows} rows, Gio service, GDBus client call_sync (parses in C)",
             parsed)]


def _round_trip_cpu(call: Callable[[], object], pids: tuple[int, int],
                    count: int) -> tuple[float, list[float]]:
    """p50 ms of ``count`` calls, and the mean CPU ms per call of ``pids`` and of this process."""
    before = (*(_cpu_seconds(pid) for pid in pids), time.process_time())
    p50 = _p50(time_calls(call, count))
    after = (*(_cpu_seconds(pid) for pid in pids), time.process_time())
    return p50, [(b - a) / count * 1000 for a, b in zip(before, after, strict=True)]


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


__all__ = ["SESSION_INTERFACE", "Daemon", "RawConnection", "WireMessage", "breakdown",
           "floor_round_trips", "floor_service", "percentiles", "private_bus", "raw_call",
           "raw_floor_round_trips", "raw_floor_service", "reply_body", "run_daemon",
           "serve_raw", "serve_rows", "split_messages", "time_calls", "time_calls_while",
           "unix_socket_address", "wire_message"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_rows(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    elif sys.argv[1:2] == ["serve-raw"]:
        serve_raw(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    else:
        print(f"load average {os.getloadavg()[0]:.2f}")
        for what, ms in breakdown():
            print(f"{ms:7.2f} ms  {what}")
