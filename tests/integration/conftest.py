"""Fixtures for the daemon's integration tests: real processes on a private bus.

- ``private_bus``: a ``dbus-daemon`` with a system-bus policy like Debian's that
  includes our shipped ``dbus/org.resumed.Resume1.conf`` (so the policy is tested).
- ``workspace``: a session root with copies of the sample sessions, a provider
  for ``tests/data/samples/units``, a state directory and a config file.
- ``start_daemon``: runs ``resumed`` as a subprocess with a real ``NOTIFY_SOCKET``
  (an AF_UNIX datagram socket read by a thread) and waits for ``READY=1``.

Helpers live here (as fixtures and classes) because the suite runs with
``--import-mode=importlib``, where sibling helper modules are not importable.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from resumed.session.envelope import unpack_envelope

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
POLICY = REPO / "dbus" / "org.resumed.Resume1.conf"
INTERFACE_XML = REPO / "dbus" / "org.resumed.Resume1.xml"
BUS_NAME = "org.resumed.Resume1"
ROOT_PATH = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
SESSION = "org.resumed.Resume1.Session"
TIMEOUT = 30.0
TEST_USER = "resumed-test"
#: Sample sets copied into the workspace, with the prefix given to their ids.
SAMPLE_SETS = {"git": "checkbox-git-2026-08", "cb118": "checkbox-1.18.1"}
#: A time long before this boot (SPEC §3: tests set mtime in 2020).
OLD_MTIME = 1577880000.0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- Debian's system.conf default policy: deny owning and calling, allow replies. -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <!-- python-dbusmock plays logind. -->
  <policy user="root">
    <allow own="org.freedesktop.login1"/>
    <allow send_destination="org.freedesktop.login1"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


_readable_copy: list[Path] = []


def _as_other_user(command: list[str]) -> tuple[list[str], str]:
    """``command`` and a PYTHONPATH that another user can run from this checkout.

    The checkout (and its ``.venv``) may sit in a directory only root can enter,
    such as a ``mktemp -d`` clone, so the project's code is copied once to a
    world-readable directory and run with Debian's python3 (which has the same
    system packages as the venv).
    """
    if not _readable_copy:
        base = Path(tempfile.mkdtemp(prefix="resumed-code-"))
        base.chmod(0o755)
        atexit.register(shutil.rmtree, base, True)
        shutil.copytree(REPO / "src" / "resumed", base / "resumed",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        _readable_copy.append(base)
    if command and command[0] == sys.executable:
        command = ["/usr/bin/python3", *command[1:]]
    elif command and command[0] == resumectl_executable():
        command = ["/usr/bin/python3", "-c",
                   "import sys; from resumed.cli.main import main; sys.exit(main())",
                   *command[1:]]
    return command, str(_readable_copy[0])


class PrivateBus:
    """A running private ``dbus-daemon`` and command-line clients for it."""

    def __init__(self, directory: Path) -> None:
        """Start the bus with its socket in ``directory`` (readable by every user)."""
        self.directory = directory
        config = directory / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=directory / "bus", policy=POLICY))
        out = subprocess.run(
            ["dbus-daemon", f"--config-file={config}", "--print-address=1", "--print-pid=1",
             "--fork"], check=True, capture_output=True, text=True, timeout=TIMEOUT).stdout
        address, pid = out.split()[:2]
        self.address = address
        self.pid = int(pid)

    def stop(self) -> None:
        """Stop the bus."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def env(self) -> dict[str, str]:
        """An environment whose system bus is this bus."""
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def run(self, argv: Sequence[str], user: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a client (as ``user`` through runuser when given)."""
        command = list(argv)
        env = self.env()
        if user is not None:
            command, env["PYTHONPATH"] = _as_other_user(command)
            command = ["runuser", "-u", user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              check=check, env=env)

    def busctl(self, *args: str, user: str | None = None, check: bool = True) -> Any:
        """``busctl --json=short`` on this bus; the parsed reply."""
        result = self.run(["busctl", f"--address={self.address}", "--json=short", *args],
                          user=user, check=check)
        if result.returncode != 0:
            return result
        return json.loads(result.stdout) if result.stdout.strip() else None

    def call(self, path: str, interface: str, method: str, *args: str,
             user: str | None = None, check: bool = True) -> Any:
        """``busctl call`` on the daemon; the parsed reply's data."""
        reply = self.busctl("call", BUS_NAME, path, interface, method, *args, user=user,
                            check=check)
        return reply["data"] if isinstance(reply, dict) else reply

    def list_sessions(self) -> list[list[str]]:
        """ListSessions rows."""
        return self.call(ROOT_PATH, MANAGER, "ListSessions")[0]

    def list_discarded(self) -> list[list]:
        """ListDiscarded rows."""
        return self.call(ROOT_PATH, MANAGER, "ListDiscarded")[0]

    def get_property(self, path: str, interface: str, name: str) -> Any:
        """One property's value."""
        return self.busctl("get-property", BUS_NAME, path, interface, name)["data"]

    def wait_state(self, state: str = "ready") -> None:
        """Wait until the Manager's ``State`` is ``state``."""
        self.wait_for(lambda: self.get_property(ROOT_PATH, MANAGER, "State") == state,
                      f"State {state}")

    def gdbus(self, *args: str) -> str:
        """``gdbus`` on this bus; its stdout."""
        return self.run(["gdbus", *args[:1], "--address", self.address, *args[1:]]).stdout

    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout: float = TIMEOUT) -> None:
        """Poll ``predicate`` until true; fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")


class NotifyReader:
    """A NOTIFY_SOCKET: an AF_UNIX datagram socket read by a thread."""

    def __init__(self, path: Path) -> None:
        """Bind the socket at ``path`` and start reading."""
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.2)
        self._messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                for line in data.decode("latin-1").splitlines():
                    self._messages.append((time.monotonic(), line))
                self._cond.notify_all()

    def close(self) -> None:
        """Stop reading."""
        self._closed = True
        self._thread.join(2)
        self._socket.close()

    def lines(self, since: float = 0.0) -> list[str]:
        """Every line received after ``since`` (a monotonic time)."""
        with self._cond:
            return [line for t, line in self._messages if t >= since]

    def count(self, line: str) -> int:
        """How often ``line`` was received."""
        return self.lines().count(line)

    def wait_for(self, line: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        """Wait until ``line`` was received ``count`` times."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while [m for _t, m in self._messages].count(line) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"no {line!r} (x{count}) on NOTIFY_SOCKET; got "
                                f"{[m for _t, m in self._messages]}")
                self._cond.wait(remaining)


class DaemonProcess:
    """``resumed`` running as a subprocess on a private bus."""

    def __init__(self, argv: list[str], env: dict[str, str], notify: NotifyReader,
                 log: Path) -> None:
        """Start the daemon; its stderr goes to ``log``."""
        self.notify = notify
        self.log = log
        with log.open("ab") as stream:
            self.proc = subprocess.Popen(argv, env=env, stdout=stream, stderr=stream)

    @property
    def pid(self) -> int:
        """The daemon's pid."""
        return self.proc.pid

    def wait_ready(self, count: int = 1) -> None:
        """Wait for the ``count``-th READY=1, failing early if the daemon dies."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.notify.count("READY=1") >= count:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"resumed exited {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        pytest.fail(f"resumed never sent READY=1:\n{self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM and wait; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        return self.proc.returncode


class Workspace:
    """A session root, a provider, a state directory and a config file."""

    def __init__(self, base: Path) -> None:
        """Lay out the directories under ``base``."""
        self.base = base
        self.root = base / "sessions"
        self.root.mkdir()
        self.state = base / "state"
        self.provider_dir = base / "providers"
        self.provider_dir.mkdir()
        self.units = base / "provider-synth" / "units"
        self.units.mkdir(parents=True)
        shutil.copy2(SAMPLES / "units" / "synth-small.pxu", self.units)
        (self.provider_dir / "synth.provider").write_text(
            "[PlainBox Provider]\nname = com.example:synth\nnamespace = com.example.synth\n"
            f"version = 1.0\nlocation = {self.units.parent}\nunits_dir = {self.units}\n")
        self.config = base / "resumed.toml"
        self.config.write_text("debounce = 0.2\nrescan_interval = 3600\n")

    def add_sample(self, prefix: str, version: int, session_id: str | None = None,
                   mtime: float | None = None, root: Path | None = None) -> Path:
        """Copy sample ``small-v<version>`` of set ``prefix`` in; return its directory."""
        source = SAMPLES / SAMPLE_SETS[prefix] / f"small-v{version}.session"
        target = (root or self.root) / f"{session_id or f'{prefix}-v{version}'}.session"
        shutil.copytree(source, target)
        if mtime is not None:
            os.utime(target / "session", (mtime, mtime))
        return target

    def add_all_samples(self) -> list[str]:
        """Copy every sample session in; return their ids."""
        ids = []
        for prefix, directory in SAMPLE_SETS.items():
            for path in sorted((SAMPLES / directory).glob("small-v*.session")):
                version = int(path.name.removeprefix("small-v").removesuffix(".session"))
                ids.append(self.add_sample(prefix, version).name.removesuffix(".session"))
        return ids

    def edit_session(self, directory: Path, edit: Callable[[dict[str, Any]], object],
                     mtime: float) -> dict[str, Any]:
        """Let ``edit`` change the JSON document of ``directory/session`` in place; re-pack it.

        The file gets ``mtime``; the edited document is returned.
        """
        blob = directory / "session"
        doc = unpack_envelope(blob.read_bytes(), 1 << 28)
        edit(doc)
        self.write_session_text(directory, json.dumps(doc, sort_keys=True), mtime)
        return doc

    @staticmethod
    def write_session_text(directory: Path, text: str, mtime: float) -> None:
        """Write ``text`` (JSON, kept as is: escapes and all) gzipped as ``directory/session``."""
        blob = directory / "session"
        blob.write_bytes(gzip.compress(text.encode("ascii")))
        os.utime(blob, (mtime, mtime))

    def add_corrupted(self, session_id: str = "corrupted") -> Path:
        """A session whose blob is not gzip; return its ``session`` file."""
        directory = self.root / f"{session_id}.session"
        directory.mkdir()
        blob = directory / "session"
        blob.write_bytes(b"this is not a gzip stream\n")
        return blob

    def argv(self, bus: PrivateBus, extra: Sequence[str] = ()) -> list[str]:
        """The daemon's command line for this workspace on ``bus``."""
        return [sys.executable, "-m", "resumed.daemon.main", "--bus", bus.address,
                "--config", str(self.config), "--session-root", str(self.root),
                "--provider-dir", str(self.provider_dir), "--state-dir", str(self.state),
                "--log-level", "debug", *extra]


@pytest.fixture
def private_bus() -> Iterator[PrivateBus]:
    """A private system-like bus loading our shipped policy."""
    directory = Path(tempfile.mkdtemp(prefix="resumed-bus-"))
    directory.chmod(0o755)
    bus = PrivateBus(directory)
    yield bus
    bus.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """Session root, provider, state directory and config under ``tmp_path``."""
    return Workspace(tmp_path)


@pytest.fixture
def start_daemon(private_bus: PrivateBus, workspace: Workspace,
                 tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start ``resumed`` (waiting for READY=1 unless told not to); stopped at teardown."""
    started: list[DaemonProcess] = []
    readers: list[NotifyReader] = []

    def start(extra: Sequence[str] = (), env: dict[str, str] | None = None,
              wait: bool = True) -> DaemonProcess:
        notify = NotifyReader(tmp_path / f"notify-{len(readers)}.sock")
        readers.append(notify)
        environ = {**private_bus.env(), "NOTIFY_SOCKET": str(notify.path),
                   "WATCHDOG_USEC": "1000000", **(env or {})}
        environ.pop("WATCHDOG_PID", None)
        daemon = DaemonProcess(workspace.argv(private_bus, extra), environ, notify,
                               tmp_path / "resumed.log")
        started.append(daemon)
        if wait:
            daemon.wait_ready()
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
    for reader in readers:
        reader.close()


def resumectl_executable() -> str:
    """The installed ``resumectl`` beside this interpreter (else the one on PATH)."""
    beside = Path(sys.executable).with_name("resumectl")
    found = str(beside) if beside.is_file() else shutil.which("resumectl")
    if found is None:
        pytest.fail("no resumectl executable (run make test, which installs it)")
    return found


@pytest.fixture
def resumectl(private_bus: PrivateBus) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``resumectl`` with ``--address`` of the private bus appended.

    ``address=None`` leaves ``--address`` out; ``user`` runs it through runuser.
    """
    executable = resumectl_executable()

    def run(*args: str, address: str | None = private_bus.address,
            user: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [executable, *args]
        if address is not None:
            argv += ["--address", address]
        return private_bus.run(argv, user=user, check=False)

    return run


@pytest.fixture(scope="session")
def unprivileged_user() -> Iterator[str]:
    """A non-root user created for the test run (removed afterwards)."""
    created = subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, timeout=TIMEOUT)
    yield TEST_USER
    if created:
        subprocess.run(["userdel", TEST_USER], check=False, timeout=TIMEOUT)
