"""The running daemon under hostile load (issue #6, parts 1-3 and 6).

- Damaged and hostile sessions are discarded with a reason and the daemon stays up.
- SPEC §5 cleaning of NUL, lone surrogates and NaN is what clients read.
- A full disk or a read-only filesystem during a settle: SettleError is
  published, the file stays intact, and the settle succeeds at a later rescan.
- More directories than inotify watches: the daemon says so once, keeps
  answering, and the periodic rescan finds new sessions.
- Churn: create/modify/rename/delete operations while clients list in a loop:
  no crash, RSS stable, and afterwards the published list equals the disk.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import reliability_integration as it
import reliability_support as rs
from gi.repository import Gio, GLib

from resumed.session.envelope import unpack_envelope

ROOT = it.ROOT_PATH
NAME = it.BUS_NAME
GIT = rs.SAMPLES / "checkbox-git-2026-08"
V11 = GIT / "small-v11.session"


def wait_ready_state(bus: Any, timeout: float = 60.0) -> None:
    """Wait until the Manager's State is ``ready``."""
    bus.wait_for(lambda: bus.get_property(ROOT, it.MANAGER, "State") == "ready", "State ready",
                 timeout=timeout)


def client(address: str) -> Gio.DBusConnection:
    """A new client connection."""
    flags = (Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
             | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION)
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def list_ids(con: Gio.DBusConnection, method: str = "ListSessions") -> set[str]:
    """The ids ListSessions (or ListDiscarded) returns."""
    reply = con.call_sync(NAME, ROOT, it.MANAGER, method, None, None,
                          Gio.DBusCallFlags.NONE, 30_000, None)
    return {row[0] for row in reply.unpack()[0]}


def add_copy(workspace: Any, session_id: str, **kwargs: Any) -> Path:
    """A writable copy of the v11 sample in the workspace root (written in 2020)."""
    return rs.copy_session(V11, workspace.root, session_id, **kwargs)


def test_damaged_and_hostile_sessions_are_discarded_and_the_daemon_stays_up(
    private_bus: Any, workspace: Any, start_daemon: Any
) -> None:
    """A root full of bombs and damage: each is discarded with a reason; good ones resume."""
    add_copy(workspace, "good")
    blob = (V11 / "session").read_bytes()
    doc = unpack_envelope(blob)
    bad: dict[str, bytes] = {
        "not-gzip": b"hello", "truncated": blob[: len(blob) // 2], "bomb": rs.gzip_bomb(300),
        "deep": gzip.compress(b'{"version":11,"session":' + b"[" * 100_000 + b"]" * 100_000
                              + b"}"),
        "random": os.urandom(3000), "empty-json": gzip.compress(b"{}"),
        "bad-utf8": gzip.compress(b'{"version":11,"session":"\xff"}'),
        "version-99": gzip.compress(json.dumps({**doc, "version": 99}).encode()),
        "no-metadata": gzip.compress(json.dumps(
            {**doc, "session": {k: v for k, v in doc["session"].items()
                                if k != "metadata"}}).encode()),
        "results-null": gzip.compress(json.dumps(
            {**doc, "session": {**doc["session"], "results": {rs.REBOOT_JOB: None}}}).encode()),
        "unknown-job": gzip.compress(json.dumps(
            {**doc, "session": {**doc["session"], "desired_job_list": ["x::nope"]}}).encode()),
    }
    for session_id, data in bad.items():
        add_copy(workspace, session_id, blob=data)
    fifo = add_copy(workspace, "fifo")
    (fifo / "session").unlink()
    os.mkfifo(fifo / "session")
    link = add_copy(workspace, "link")
    (link / "session").unlink()
    (link / "session").symlink_to("/etc/shadow")
    huge = add_copy(workspace, "huge")
    with (huge / "session").open("r+b") as stream:
        stream.truncate(2 * 1024**3)
    before = {p: p.read_bytes() for p in workspace.root.glob("*.session/session")
              if p.is_file() and not p.is_symlink() and p.stat().st_size < 2**20
              and p.parent.name != "good.session"}
    daemon = start_daemon()
    wait_ready_state(private_bus)
    discarded = {row[0]: row[1] for row in private_bus.list_discarded()}
    expected = set(bad) | {"fifo", "link", "huge"}
    assert set(discarded) == expected, discarded
    assert discarded["fifo"] == discarded["link"] == "io-error"
    assert discarded["version-99"] == "incompatible-session"
    assert discarded["unknown-job"] == "unknown-jobs"
    assert [row[0] for row in private_bus.list_sessions()] == ["good"]
    assert daemon.proc.poll() is None
    assert {p: p.read_bytes() for p in before} == before
    assert "Traceback" not in daemon.log.read_text()
    rs.count("hostile inputs tried", len(expected))


def test_nul_surrogates_and_nan_reach_clients_cleaned(
    private_bus: Any, workspace: Any, start_daemon: Any
) -> None:
    """A session titled with NUL and a lone surrogate, start time NaN: clients read U+FFFD, 0.0."""
    directory = add_copy(workspace, "hostile", mtime=None)
    add_copy(workspace, "plain", mtime=None)
    text = json.dumps(unpack_envelope((directory / "session").read_bytes()),
                      separators=(",", ":"))
    text = text.replace('"title":"synthetic-small (checkbox-ng-git-bda305f)"',
                        '"title":"a\\u0000b\\ud800c"')
    text = text.replace('"last_job_start_time":1764300000.25', '"last_job_start_time":NaN')
    (directory / "session").write_bytes(gzip.compress(text.encode()))
    start_daemon()
    wait_ready_state(private_bus)
    assert {row[0] for row in private_bus.list_sessions()} == {"hostile", "plain"}
    path = private_bus.call(ROOT, it.MANAGER, "GetSession", "s", "hostile")[0]
    assert private_bus.get_property(path, it.SESSION, "Title") == "a\ufffdb\ufffdc"
    assert private_bus.get_property(path, it.SESSION, "LastJobStartTime") == 0.0
    rs.count("hostile inputs tried")


@pytest.fixture
def tiny_root(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs to fill up or remount read-only."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=755", "tmpfs",
                           str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory``; return the filler file."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as stream:
        try:
            while stream.write(b"\0" * 512):
                pass
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("failure", ["ENOSPC", "EROFS"])
def test_failed_settle_is_published_then_retried_at_the_next_scan(
    private_bus: Any, workspace: Any, start_daemon: Any, tiny_root: Path, failure: str
) -> None:
    """Full disk / read-only fs: SettleError says why, the file is intact, a rescan settles it."""
    directory = rs.copy_session(V11, tiny_root, "tiny")
    original = (directory / "session").read_bytes()
    filler = fill(tiny_root) if failure == "ENOSPC" else None
    if failure == "EROFS":
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_root)], check=True)
    start_daemon(["--session-root", str(tiny_root)])
    wait_ready_state(private_bus)
    path = private_bus.call(ROOT, it.MANAGER, "GetSession", "s", "tiny")[0]
    error = private_bus.get_property(path, it.SESSION, "SettleError")
    assert ("No space left" if failure == "ENOSPC" else "Read-only") in error, error
    assert private_bus.get_property(path, it.SESSION, "InterruptedJobOutcome") == ""
    assert (directory / "session").read_bytes() == original
    assert not (directory / "session.next").exists()
    if filler is not None:
        filler.unlink()
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_root)], check=True)
    private_bus.call(ROOT, it.MANAGER, "Rescan")
    private_bus.wait_for(
        lambda: private_bus.get_property(path, it.SESSION, "InterruptedJobOutcome") == "pass",
        "the settle retried at the rescan")
    assert private_bus.get_property(path, it.SESSION, "SettleError") == ""
    assert rs.REBOOT_JOB in unpack_envelope((directory / "session").read_bytes())[
        "session"]["results"]
    rs.count("write failures survived (ENOSPC, EROFS)")


def inotify_watches(pid: int) -> int:
    """How many inotify watches process ``pid`` holds."""
    total = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            total += sum(1 for line in info.read_text().splitlines()
                         if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


MANY = 100_000 if rs.LONG else 60
#: The daemon runs in a user namespace with this watch limit. The long mode's 300,000
#: directories exceed the system's limit too (192,536 here); its 150,000 leaves other
#: root processes some watches while finding #4 is open.
WATCH_LIMIT = 150_000 if rs.LONG else 100


@pytest.fixture
def exhausted_daemon(private_bus: Any, workspace: Any, tmp_path: Path) -> Iterator[Any]:
    """The daemon over ``MANY`` session directories, more than its inotify watch limit."""
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 100 > /proc/sys/user/max_inotify_watches"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no user namespace with its own inotify limit: {probe.stderr!r}")
    workspace.config.write_text("debounce = 0.2\nrescan_interval = 3\n")
    if rs.LONG:
        doc = unpack_envelope((V11 / "session").read_bytes())
        doc["session"]["metadata"]["flags"] = ["submitted"]
        blob = gzip.compress(json.dumps(doc).encode())
        for index in range(MANY):
            directory = workspace.root / f"many{index}.session"
            (directory / "io-logs").mkdir(parents=True)
            (directory / "session-share").mkdir()
            (directory / "session").write_bytes(blob)
    else:
        for index in range(MANY):
            add_copy(workspace, f"many{index}", mtime=None)
    limit = f"echo {WATCH_LIMIT} > /proc/sys/user/max_inotify_watches && "
    argv = ["unshare", "--user", "--map-root-user", "sh", "-c", limit + 'exec "$@"', "sh",
            *workspace.argv(private_bus)]
    notify = it.NotifyReader(tmp_path / "notify.sock")
    env = {**private_bus.env(), "NOTIFY_SOCKET": str(notify.path)}
    started = time.monotonic()
    daemon = it.DaemonProcess(argv, env, notify, tmp_path / "daemon.log")
    try:
        # systemd's default TimeoutStartSec is 90 s: READY=1 must come before that.
        while notify.count("READY=1") == 0:
            assert daemon.proc.poll() is None, daemon.log.read_text()[-3000:]
            assert time.monotonic() - started < 90, "no READY=1 within 90 s"
            time.sleep(0.1)
        rs.count(f"inotify fallback: ms until READY=1 with {MANY} sessions",
                 int((time.monotonic() - started) * 1000))
        yield daemon
    finally:
        daemon.stop()
        notify.close()


def test_more_directories_than_inotify_watches_falls_back_to_rescans_and_says_so_once(
    private_bus: Any, workspace: Any, exhausted_daemon: Any
) -> None:
    """Past the watch limit the daemon warns once, answers, and periodic rescans find changes."""
    con = client(private_bus.address)
    start = time.monotonic()
    worst = 0.0
    while time.monotonic() - start < 600:
        began = time.monotonic()
        state = con.call_sync(NAME, ROOT, "org.freedesktop.DBus.Properties", "Get",
                              GLib.Variant("(ss)", (it.MANAGER, "State")), None,
                              Gio.DBusCallFlags.NONE, 30_000, None).unpack()[0]
        worst = max(worst, time.monotonic() - began)
        if state == "ready":
            break
        time.sleep(0.05)
    assert len(list_ids(con)) == MANY
    add_copy(workspace, "late", mtime=None)
    private_bus.wait_for(lambda: "late" in list_ids(con), "the periodic rescan",
                         timeout=300 if rs.LONG else 30)
    time.sleep(3.5)  # one more periodic rescan
    warnings = exhausted_daemon.log.read_text().count("inotify is exhausted")
    assert warnings == 1
    assert exhausted_daemon.proc.poll() is None
    rs.count(f"inotify fallback: session directories ({MANY} x 3 dirs)", MANY)
    rs.count("inotify fallback: worst State Get ms while scanning", int(worst * 1000))
    assert worst < 2.0


#: How long after READY=1 the daemon may take to list every session and be ``ready``.
#: In long mode: a full scan of 100,000 sessions (~25 s here), then ~78,000 objects
#: exported and announced with two signals each (~0.3 ms an object): 55-60 s on an
#: idle 2-core machine (findings #7), so the bound leaves room for a loaded one.
READY_STATE_SECONDS = 120.0 if rs.LONG else 60.0


def test_inotify_fallback_releases_the_watches_it_could_not_use(
    private_bus: Any, workspace: Any, exhausted_daemon: Any
) -> None:
    """After falling back to rescans the daemon holds no half-built recursive watch."""
    started = time.monotonic()  # the fixture yields at READY=1
    wait_ready_state(private_bus, READY_STATE_SECONDS)
    rs.count(f"inotify fallback: s from READY=1 to State ready, {MANY} sessions",
             int(time.monotonic() - started))
    held = inotify_watches(exhausted_daemon.pid)
    assert held < WATCH_LIMIT // 2, f"{held} inotify watches still held"


SHARED_LIMIT_SCRIPT = """
import sys
from pathlib import Path
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from resumed.daemon import watch
base = Path(sys.argv[1])
other = Observer()
other.start()
other.schedule(FileSystemEventHandler(), str(base / "other"), recursive=True)
watcher = watch.Watcher(0.1, lambda paths: None, lambda: None, lambda: None)
watcher.watch([base / "root"], [])
held = 0
for info in Path("/proc/self/fdinfo").iterdir():
    try:
        held += info.read_text().count("inotify wd:")
    except OSError:
        continue
print(watcher.exhausted, held)
"""


def test_watch_that_fits_the_count_but_not_the_shared_limit_gives_its_watches_back(
    tmp_path: Path,
) -> None:
    """Another watcher holds 60 of 100 watches; the root's 41 fit the count, not the kernel.

    The walk is tried, fails with ENOSPC, the daemon says so, and the half-built
    watch is closed: only the other watcher's 60 watches stay held.
    """
    for index in range(59):
        (tmp_path / "other" / f"d{index}").mkdir(parents=True)
    for index in range(40):
        (tmp_path / "root" / f"s{index}.session").mkdir(parents=True)
    limit = "echo 100 > /proc/sys/user/max_inotify_watches && "
    done = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                           limit + 'exec "$@"', "sh", sys.executable, "-c", SHARED_LIMIT_SCRIPT,
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"no user namespace with its own inotify limit: {done.stderr}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "60"], done.stdout + done.stderr
    assert done.stderr.count("inotify is exhausted") <= 1


CHURN_OPS = 10_000 if rs.LONG else 1_500


def test_churn_under_watch_keeps_the_daemon_up_without_leaks_and_converges(
    private_bus: Any, workspace: Any, start_daemon: Any
) -> None:
    """Create/modify/rename/delete sessions while two clients list in a loop."""
    workspace.config.write_text("debounce = 0.2\nrescan_interval = 5\n")
    blob = (V11 / "session").read_bytes()
    for index in range(20):
        add_copy(workspace, f"c{index}", mtime=None)
    daemon = start_daemon()
    wait_ready_state(private_bus)
    stop = threading.Event()
    calls = [0, 0]
    errors: list[str] = []

    def lister(slot: int) -> None:
        con = client(private_bus.address)
        while not stop.is_set():
            try:
                list_ids(con)
                calls[slot] += 1
            except GLib.Error as error:
                errors.append(error.message)
                return

    threads = [threading.Thread(target=lister, args=(slot,), daemon=True) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    chooser = random.Random(6)
    alive = {f"c{index}" for index in range(20)}
    corrupt: set[str] = set()
    serial = 20
    rss = []
    started = time.monotonic()
    for op in range(CHURN_OPS):
        kind = chooser.choice(["create", "modify", "rename", "delete", "corrupt"]) \
            if len(alive) > 5 else "create"
        if kind == "create" or not alive:
            add_copy(workspace, f"c{serial}", mtime=None)
            alive.add(f"c{serial}")
            serial += 1
            continue
        victim = chooser.choice(sorted(alive))
        directory = workspace.root / f"{victim}.session"
        if kind == "modify":
            (directory / "session").write_bytes(blob)
            corrupt.discard(victim)
        elif kind == "corrupt":
            (directory / "session").write_bytes(b"not a session")
            corrupt.add(victim)
        elif kind == "rename":
            new = f"c{serial}"
            serial += 1
            directory.rename(workspace.root / f"{new}.session")
            alive.remove(victim)
            alive.add(new)
            if victim in corrupt:
                corrupt.remove(victim)
                corrupt.add(new)
        else:
            shutil.rmtree(directory)
            alive.remove(victim)
            corrupt.discard(victim)
        if op % max(1, CHURN_OPS // 10) == 0:
            rss.append(rs.rss_kib(daemon.pid))
    churn_seconds = time.monotonic() - started
    con = client(private_bus.address)
    expected_listed = alive - corrupt
    stopped = time.monotonic()
    # Within the rescan interval (5 s), plus the time to resume what changed.
    private_bus.wait_for(lambda: list_ids(con) == expected_listed
                         and list_ids(con, "ListDiscarded") == corrupt,
                         "the published lists to equal the disk", timeout=5 + 10)
    rs.count("churn: ms until the published lists equal the disk",
             int((time.monotonic() - stopped) * 1000))
    stop.set()
    for thread in threads:
        thread.join(30)
    rss.append(rs.rss_kib(daemon.pid))
    assert errors == []
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.log.read_text()
    assert min(calls) > 10
    rs.count(f"churn: operations ({CHURN_OPS})", CHURN_OPS)
    rs.count("churn: seconds", int(churn_seconds))
    rs.count("churn: ListSessions calls during churn", sum(calls))
    rs.count("churn: RSS KiB after first tenth", rss[1])
    rs.count("churn: RSS KiB at half", rss[len(rss) // 2])
    rs.count("churn: RSS KiB at end", rss[-1])
    # Stable: no growth beyond noise once warmed up (a leak grows with the operations).
    assert rss[-1] - rss[1] < 40 * 1024, rss


ODD_IDS = ["a..b", "line\nbreak", "tab\there", "sp ace", "ü-ñ-✓", "x" * 200, "-dash",
           "quote\"'", "$(reboot)", "a;b|c&d", "_2d_", "%00"]


def test_odd_session_ids_get_object_paths_and_round_trip_on_the_bus(
    private_bus: Any, workspace: Any, start_daemon: Any
) -> None:
    """Ids with newlines, ``..``, shell and Unicode characters: each has a path that answers."""
    for session_id in ODD_IDS:
        add_copy(workspace, session_id, mtime=None)
    os.mkdir(os.fsencode(workspace.root) + b"/bad\xff.session")  # noqa: PTH102 (bytes)
    daemon = start_daemon()
    wait_ready_state(private_bus)
    con = client(private_bus.address)
    assert list_ids(con) == set(ODD_IDS)
    paths = set()
    for session_id in ODD_IDS:
        path = con.call_sync(NAME, ROOT, it.MANAGER, "GetSession",
                             GLib.Variant("(s)", (session_id,)), None,
                             Gio.DBusCallFlags.NONE, 10_000, None).unpack()[0]
        assert path.startswith(ROOT + "/session/")
        paths.add(path)
        assert private_bus.get_property(path, it.SESSION, "Id") == session_id
    assert len(paths) == len(ODD_IDS)
    assert daemon.proc.poll() is None
    rs.count("hostile inputs tried", len(ODD_IDS) + 1)
