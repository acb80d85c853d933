"""Fixtures for the system test: the built .deb, a cached Debian 12 root, a booted guest.

Everything here drives real tools: ``dpkg-buildpackage`` builds the package from a
copy of the source tree, ``mmdebstrap`` builds a minbase Debian 12 root (cached
outside the repository, keyed by its package list), and ``systemd-nspawn --boot``
runs real systemd on it. Helpers live in this file because the suite runs with
``--import-mode=importlib``, where sibling helper modules are not importable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "data" / "samples"
# Debian's own PATH: pyenv shims must not hijack pybuild or the guest's python.
DEB_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SUITE = "bookworm"
# What the guest needs: an init, the system bus and every runtime dependency of
# the package, since the .deb is installed offline with dpkg.
GUEST_PACKAGES = (
    "dbus",
    "procps",
    "python3",
    "python3-gi",
    "python3-jinja2",
    "python3-pydbus",
    "python3-sdnotify",
    "python3-watchdog",
    "python3-yaml",
    "systemd",
)
CACHE_ROOT = Path(os.environ.get("RESUMED_TEST_CACHE", "/var/cache/resumed-test"))
BOOT_TIMEOUT = 60.0
# nspawn's exit status when the guest asked for a reboot.
EXIT_REBOOT = 133


def root_cache_key(packages: Sequence[str] = GUEST_PACKAGES) -> str:
    """Return the cache key of a guest root: a hash of what goes into it."""
    text = "\n".join([SUITE, "minbase", *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_root(packages: Sequence[str] = GUEST_PACKAGES) -> Path:
    """Return a pristine guest root for ``packages``, building it with mmdebstrap once."""
    cache = CACHE_ROOT / root_cache_key(packages)
    root = cache / "rootfs"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "usr" / "bin" / "python3").exists():
            partial = cache / "rootfs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            subprocess.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=minbase",
                    "--include=" + ",".join(packages),
                    SUITE,
                    str(partial),
                ],
                check=True,
                env={**os.environ, "PATH": DEB_PATH},
            )
            shutil.rmtree(root, ignore_errors=True)
            partial.rename(root)
    return root


# Not part of the package source: the developer's venv, build and test leftovers.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "dist", ".pybuild", "__pycache__", ".hypothesis", ".pytest_cache",
    ".mypy_cache", ".ruff_cache", "*.pyc",
)


def build_deb(workdir: Path) -> Path:
    """Build ``resumed_<version>_all.deb`` from a copy of the source tree in ``workdir``.

    A copy, so that the build neither races other work in the tree nor leaves
    build products in it.
    """
    src = workdir / "resumed"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE, symlinks=True)
    for leftover in ("debian/resumed", "debian/.debhelper", "debian/files"):
        shutil.rmtree(src / leftover, ignore_errors=True)
    log = workdir / "dpkg-buildpackage.log"
    with log.open("wb") as out:
        proc = subprocess.run(
            ["dpkg-buildpackage", "-us", "-uc", "-b"],
            cwd=src,
            env={**os.environ, "PATH": DEB_PATH},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-6000:]
        raise AssertionError(f"dpkg-buildpackage failed ({proc.returncode}):\n{tail}")
    version = subprocess.run(
        ["dpkg-parsechangelog", "-S", "Version"],
        cwd=src, env={**os.environ, "PATH": DEB_PATH},
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    deb = workdir / f"resumed_{version}_all.deb"
    assert deb.is_file(), f"dpkg-buildpackage made no {deb.name}"
    return deb


def _children(pid: int) -> list[int]:
    """Return the direct children of ``pid``."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError:
        return []


def _is_namespace_init(pid: int) -> bool:
    """Tell whether ``pid`` is PID 1 of a child PID namespace."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False


def wait_for(what: str, check: Callable[[], object], timeout: float,
             describe: Callable[[], str] = lambda: "") -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{describe()}")
        time.sleep(0.2)


class Guest:
    """A Debian root booted with ``systemd-nspawn --boot``, rebootable, always cleaned up."""

    def __init__(self, root: Path, name: str, log: Path) -> None:
        """Prepare to boot ``root`` as machine ``name``, console output to ``log``."""
        self.root = root
        self.name = name
        self.log = log
        self.boots = 0
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    @property
    def bus_address(self) -> str:
        """The D-Bus address of the guest's system bus, usable from the host."""
        return f"unix:path=/proc/{self.pid1}/root/run/dbus/system_bus_socket"

    def boot(self) -> None:
        """Boot the guest and wait until its systemd has finished starting up."""
        assert self._nspawn is None, "already running"
        with self.log.open("ab") as out:
            out.write(f"\n===== boot {self.boots + 1} =====\n".encode())
            out.flush()
            self._nspawn = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "-D", str(self.root), "--boot",
                 "--register=no", "--keep-unit", "-M", self.name],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PATH": DEB_PATH},
            )
        self.boots += 1
        nspawn = self._nspawn
        self.pid1 = int(wait_for("the guest's PID 1", self._find_pid1, BOOT_TIMEOUT,
                                 self.console_tail))
        wait_for("the guest's system bus",
                 lambda: nspawn.poll() is None
                 and Path(f"/proc/{self.pid1}/root/run/dbus/system_bus_socket").exists(),
                 BOOT_TIMEOUT, self.console_tail)
        state = self.run("systemctl", "is-system-running", "--wait", check=False,
                         timeout=BOOT_TIMEOUT).stdout.strip()
        assert state in ("running", "degraded"), f"guest boot ended {state!r}\n{self.diagnose()}"

    def _find_pid1(self) -> int:
        """Return the host PID of the guest's init, or 0 while it does not exist yet."""
        assert self._nspawn is not None
        if self._nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self._nspawn.returncode}\n"
                                 + self.console_tail())
        todo = [self._nspawn.pid]
        while todo:
            pid = todo.pop()
            if pid != self._nspawn.pid and _is_namespace_init(pid):
                return pid
            todo.extend(_children(pid))
        return 0

    def run(self, *argv: str, check: bool = True, timeout: float = 60.0,
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the guest (all its namespaces) and return the result."""
        proc = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-a", "env", f"PATH={DEB_PATH}", *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} failed ({proc.returncode}) in the guest:\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def busctl(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run the host's ``busctl`` against the guest's system bus."""
        return subprocess.run(
            ["busctl", f"--address={self.bus_address}", "--json=short", *argv],
            capture_output=True, text=True, timeout=30, check=False,
        )

    def wait_for(self, what: str, check: Callable[[], object], timeout: float,
                 describe: Callable[[], str] | None = None) -> object:
        """Poll ``check`` until truthy; on timeout fail with ``describe()``.

        ``describe`` defaults to the daemon's status and journal.
        """
        return wait_for(what, check, timeout, describe or self.diagnose)

    def path(self, guest_path: str) -> Path:
        """The host path of a file in the running guest (its /run and /tmp included)."""
        return Path(f"/proc/{self.pid1}/root{guest_path}")

    def unit_properties(self, unit: str, *names: str) -> dict[str, str]:
        """Return the given properties of a systemd unit in the guest."""
        out = self.run("systemctl", "show", unit, *(f"--property={n}" for n in names)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def reboot(self) -> None:
        """Reboot the guest with ``systemctl reboot`` and boot it again."""
        assert self._nspawn is not None
        self.run("systemctl", "reboot", check=False)
        try:
            code = self._nspawn.wait(timeout=BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("the guest did not reboot\n" + self.console_tail()) from None
        self._nspawn = None
        assert code == EXIT_REBOOT, f"nspawn exited {code}, not {EXIT_REBOOT} (reboot)"
        self.boot()

    def kill(self) -> None:
        """Stop the guest at once, whatever state it is in."""
        if self._nspawn is None:
            return
        if self._nspawn.poll() is None:
            pid1 = self._find_pid1_quietly()
            if pid1:
                # Killing a PID namespace's init kills everything in it.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, signal.SIGKILL)
            try:
                self._nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._nspawn.kill()
                self._nspawn.wait(timeout=30)
        self._nspawn = None

    def _find_pid1_quietly(self) -> int:
        """Like :meth:`_find_pid1`, but 0 instead of an error once nspawn is gone."""
        try:
            return self._find_pid1()
        except AssertionError:
            return 0

    def console_tail(self) -> str:
        """The end of the guest's console output, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def diagnose(self) -> str:
        """What to show when a check fails: the daemon's unit status and journal."""
        if self._nspawn is None or self._nspawn.poll() is not None:
            return self.console_tail()
        status = self.run("systemctl", "status", "--no-pager", "resumed", check=False)
        journal = self.run("journalctl", "-b", "--no-pager", "-n", "80", "-u", "resumed",
                           check=False)
        return status.stdout + status.stderr + journal.stdout + journal.stderr


def install_sample_provider(root: Path) -> None:
    """Install the provider the sample sessions were made against under ``root``."""
    location = root / "usr/share/resumed-test/com.example.synth"
    (location / "units").mkdir(parents=True)
    shutil.copy(SAMPLES / "units" / "synth-small.pxu", location / "units")
    providers = root / "usr/share/plainbox-providers-1"
    providers.mkdir(parents=True, exist_ok=True)
    (providers / "com.example.synth.provider").write_text(
        "[PlainBox Provider]\n"
        "name = com.example:synth\n"
        "namespace = com.example.synth\n"
        "version = 1.0\n"
        "location = /usr/share/resumed-test/com.example.synth\n"
    )
    for path in (location, location / "units", providers):
        path.chmod(0o755)
    for path in (location / "units" / "synth-small.pxu", providers / "com.example.synth.provider"):
        path.chmod(0o644)


# Dormant sessions written by Checkbox, interrupted by the noreturn job synth/reboot.
SAMPLE_SESSIONS = {
    "small-v11": SAMPLES / "checkbox-git-2026-08" / "small-v11.session",
    "small-v7": SAMPLES / "checkbox-1.18.1" / "small-v7.session",
}
# Last written long before any boot of the guest: settle treats them as interrupted.
SESSION_MTIME = time.mktime((2020, 6, 1, 12, 0, 0, 0, 0, -1))


def install_sample_sessions(root: Path) -> Path:
    """Copy the dormant sample sessions where Checkbox writes them; return that directory."""
    base = root / "var/tmp/checkbox-ng"
    sessions = base / "sessions"
    sessions.mkdir(parents=True)
    base.chmod(0o1777)  # what Checkbox creates
    for session_id, sample in SAMPLE_SESSIONS.items():
        target = sessions / f"{session_id}.session"
        shutil.copytree(sample, target)
        for dirpath, _, filenames in os.walk(target):
            Path(dirpath).chmod(0o755)
            for name in filenames:
                Path(dirpath, name).chmod(0o644)
        (target / "session-share").mkdir(exist_ok=True)
        for dirpath, _, filenames in os.walk(target, topdown=False):
            for name in filenames:
                os.utime(Path(dirpath, name), (SESSION_MTIME, SESSION_MTIME))
            os.utime(dirpath, (SESSION_MTIME, SESSION_MTIME))
    return sessions


@pytest.fixture(scope="session")
def nspawn_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip the boot tests only when this machine really cannot run systemd-nspawn."""
    missing = [t for t in ("systemd-nspawn", "mmdebstrap", "dpkg-buildpackage", "nsenter",
                           "busctl") if shutil.which(t, path=DEB_PATH) is None]
    if missing:
        pytest.skip(f"missing tools: {' '.join(missing)} (run `make deps-system`)")
    if os.geteuid() != 0:
        pytest.skip("systemd-nspawn needs root")
    # The probe: run a command in a container made of the host's own /usr.
    probe = tmp_path_factory.mktemp("nspawn-probe")
    for name in ("usr", "etc", "proc", "sys", "dev", "run", "tmp", "var"):
        (probe / name).mkdir()
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        (probe / link).symlink_to(target)
    (probe / "etc/os-release").write_text("ID=probe\n")
    proc = subprocess.run(
        ["systemd-nspawn", "--quiet", "-D", str(probe), "--register=no", "--keep-unit",
         "--bind-ro=/usr", "/usr/bin/true"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": DEB_PATH},
    )
    if proc.returncode != 0:
        pytest.skip(f"systemd-nspawn does not work here (exit {proc.returncode}): "
                    f"{proc.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built from the current source tree (unit tests skipped: nocheck).

    The unit tests run in their own part of the suite and in `make deb`; here
    only the package's contents matter.
    """
    if shutil.which("dpkg-buildpackage", path=DEB_PATH) is None:
        pytest.skip("dpkg-buildpackage is missing (run `make deps-system`)")
    workdir = tmp_path_factory.mktemp("deb")
    os.environ.setdefault("DEB_BUILD_OPTIONS", "nocheck")
    try:
        return build_deb(workdir)
    finally:
        if os.environ.get("DEB_BUILD_OPTIONS") == "nocheck":
            del os.environ["DEB_BUILD_OPTIONS"]


@pytest.fixture(scope="session")
def installed_root(built_deb: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh copy of the cached guest root with the package, a provider and sessions."""
    pristine = cached_root()
    root = tmp_path_factory.mktemp("guest") / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(pristine), str(root)], check=True)
    try:
        shutil.copy(built_deb, root / "tmp" / built_deb.name)
        subprocess.run(["chroot", str(root), "dpkg", "-i", f"/tmp/{built_deb.name}"],
                       check=True, capture_output=True, env={**os.environ, "PATH": DEB_PATH})
        (root / "tmp" / built_deb.name).unlink()
        install_sample_provider(root)
        install_sample_sessions(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def guest(nspawn_works: None, installed_root: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    """The installed root, booted; killed at the end whatever happened."""
    log = tmp_path_factory.mktemp("console") / "console.log"
    machine = Guest(installed_root, f"resumed-test-{os.getpid()}", log)
    try:
        machine.boot()
        yield machine
    finally:
        machine.kill()
