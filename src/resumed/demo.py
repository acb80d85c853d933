"""``make demo``: run resumed on a private bus over the bundled sample sessions.

Starts a private ``dbus-daemon``, copies the sample sessions of
``tests/data/samples`` (and one corrupted session) into a temporary session
root, writes a provider for ``tests/data/samples/units``, runs the daemon with
a ``NOTIFY_SOCKET`` read here, waits for ``READY=1`` and for the resumes to
finish, shows ``resumectl list`` and ``resumectl discarded``, and stops the
daemon with SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from gi.repository import Gio, GLib

from resumed.cli import remote
from resumed.daemon import names

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
SAMPLE_SETS = {"git": "checkbox-git-2026-08", "cb118": "checkbox-1.18.1"}
TIMEOUT = 60.0
#: Sessions "last written in a previous boot" (SPEC §3), so the interrupted job is settled.
OLD_MTIME = 1577880000.0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_type="signal"/>
  </policy>
</busconfig>
"""


def say(text: str) -> None:
    """Write one line of the demo's narration."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def prepare(base: Path) -> tuple[Path, Path]:
    """Lay out the session root and the provider directory; return both."""
    root = base / "sessions"
    root.mkdir()
    for prefix, directory in SAMPLE_SETS.items():
        for source in sorted((SAMPLES / directory).glob("*.session")):
            target = root / f"{prefix}-{source.name.removeprefix('small-')}"
            shutil.copytree(source, target)
            os.utime(target / "session", (OLD_MTIME, OLD_MTIME))
    corrupted = root / "corrupted.session"
    corrupted.mkdir()
    (corrupted / "session").write_bytes(b"not a gzip stream\n")
    providers = base / "providers"
    units = base / "provider-synth" / "units"
    providers.mkdir()
    units.mkdir(parents=True)
    shutil.copy2(SAMPLES / "units" / "synth-small.pxu", units)
    (providers / "synth.provider").write_text(
        "[PlainBox Provider]\nname = com.example:synth\nnamespace = com.example.synth\n"
        f"version = 1.0\nlocation = {units.parent}\nunits_dir = {units}\n", encoding="utf-8")
    return root, providers


def start_bus(base: Path) -> tuple[str, int]:
    """Start a private dbus-daemon; return its address and pid."""
    config = base / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=base / "bus"), encoding="utf-8")
    out = subprocess.run(["dbus-daemon", f"--config-file={config}", "--print-address=1",
                          "--print-pid=1", "--fork"], check=True, capture_output=True,
                         text=True, timeout=TIMEOUT).stdout.split()
    return out[0], int(out[1])


def wait_ready(notify: socket.socket, daemon: subprocess.Popen[bytes]) -> None:
    """Read NOTIFY_SOCKET until READY=1, echoing what the daemon says."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"resumed exited with status {daemon.returncode}")
        try:
            message = notify.recv(4096).decode("latin-1")
        except TimeoutError:
            continue
        for line in message.splitlines():
            say(f"  sd_notify: {line}")
            if line == "READY=1":
                return
    raise SystemExit("resumed did not send READY=1")


def drain(notify: socket.socket) -> None:
    """Keep reading NOTIFY_SOCKET (in a thread) so the daemon's messages are not dropped."""
    def read() -> None:
        while True:
            try:
                notify.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
    threading.Thread(target=read, daemon=True).start()


def wait_settled(address: str) -> None:
    """Wait until the daemon's State is ``ready`` (every session resumed)."""
    connection = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        reply = connection.call_sync(
            names.BUS_NAME, names.ROOT_PATH, names.PROPERTIES_INTERFACE, "Get",
            GLib.Variant("(ss)", (names.MANAGER_INTERFACE, "State")),
            GLib.VariantType.new("(v)"), Gio.DBusCallFlags.NONE, 5000, None)
        if reply.unpack()[0] == "ready":
            return
        time.sleep(0.2)
    raise SystemExit("resumed did not finish resuming")


def main() -> int:
    """Run the demo; return 0 when the daemon started, published and stopped cleanly."""
    with tempfile.TemporaryDirectory(prefix="resumed-demo-") as tmp:
        base = Path(tmp)
        root, providers = prepare(base)
        address, bus_pid = start_bus(base)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(base / "notify"))
        notify.settimeout(0.5)
        config = base / "resumed.toml"
        config.write_text("debounce = 0.2\n", encoding="utf-8")
        argv = [sys.executable, "-m", "resumed.daemon.main", "--bus", address,
                "--config", str(config), "--session-root", str(root),
                "--provider-dir", str(providers), "--state-dir", str(base / "state")]
        say(f"Starting resumed on a private bus ({address.split(',')[0]})")
        daemon = subprocess.Popen(argv, env={**os.environ, "NOTIFY_SOCKET": str(base / "notify")})
        try:
            wait_ready(notify, daemon)
            drain(notify)
            wait_settled(address)
            for command in ("list", "discarded"):
                say(f"\n$ resumectl --address ... {command}")
                status = remote.run(SimpleNamespace(command=command, json=False,
                                                    address=address, id=None))
                if status != 0:
                    return status
            say("\nStopping resumed (SIGTERM)")
            daemon.send_signal(signal.SIGTERM)
            status = daemon.wait(TIMEOUT)
            say(f"resumed exited with status {status}")
            return status
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            notify.close()
            os.kill(bus_pid, signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
