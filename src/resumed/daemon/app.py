"""The composition root: builds every collaborator of the daemon and runs it.

Start-up order (SPEC §4): config -> providers -> peek the session roots (at
most 5 s) -> export objects -> request the name (no replacement) -> READY=1 ->
resume in the background with STATUS= progress -> STATUS= summary.

Threads: the GLib main loop answers the bus, pings the watchdog and receives
watcher events and signals; one worker thread does everything that touches
the disk (watch set-up, scans, resumes, provider reloads) and hands a snapshot
of what to publish back to the main loop. The registry is thread-safe and
never holds its lock during a peek, a resume or a write, so bus calls never
wait for a resume. A snapshot that adds, changes or removes many session
objects is published :data:`PUBLISH_BATCH` objects per idle callback (see
:class:`PublishPlan`), and the worker takes no new work until it is all published.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gi.repository import Gio, GLib

from resumed import __version__
from resumed.bootinfo import BootInfo, read_boot_info
from resumed.config import Config, ConfigError, load_config
from resumed.daemon import names
from resumed.daemon.bus import BusAdapter
from resumed.daemon.notify import Notifier, watchdog_interval_seconds
from resumed.daemon.sleep import SleepInhibitor
from resumed.daemon.watch import Watcher
from resumed.providers import ProviderSet, default_provider_dirs, load_providers
from resumed.registry import Change, DiscardRecord, Registry, SessionRecord

logger = logging.getLogger(__name__)

#: How long start-up may peek the session roots before READY=1 (SPEC §4).
STARTUP_SCAN_SECONDS = 5.0
#: How long SIGTERM waits for the worker to finish the session it is resuming.
STOP_JOIN_SECONDS = 10.0
#: Session objects added, changed or removed per main-loop callback.
PUBLISH_BATCH = 500
#: How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
#: PyGObject lets the GIL go around every C call, so a bus call answered while the
#: worker scans waits up to this long at each of its dozens of C calls (0.5-2 s
#: for one ``Get`` with 100,000 sessions at the default).
SWITCH_INTERVAL = 0.001
#: How often resuming many sessions hands a snapshot (and STATUS= progress) to the main loop.
PROGRESS_SECONDS = 0.5


class StartupError(Exception):
    """The daemon cannot start (bad config, bus unavailable, name taken)."""


@dataclass(frozen=True)
class Options:
    """What the command line asked for (``None``/empty: not given)."""

    config_path: Path | None
    overrides: Mapping[str, object]
    bus: str = "system"


@dataclass
class _Work:
    """What the worker has been asked to do, coalesced."""

    reload: bool = False
    watch: bool = False
    full_scan: bool = False
    providers: bool = False
    resume: bool = False
    paths: set[Path] = field(default_factory=set)

    def __bool__(self) -> bool:
        return (self.reload or self.watch or self.full_scan or self.providers or self.resume
                or bool(self.paths))


#: What the worker hands the main loop: sessions, discarded, state, status, READY.
Snapshot = tuple[list[SessionRecord], list[DiscardRecord], str | None, str | None, bool]


def merge_snapshots(older: Snapshot | None, newer: Snapshot) -> Snapshot:
    """``newer``'s lists; its state and status unless unset; READY if either asked for it."""
    if older is None:
        return newer
    return (newer[0], newer[1],
            newer[2] if newer[2] is not None else older[2],
            newer[3] if newer[3] is not None else older[3],
            newer[4] or older[4])


class PublishPlan:
    """The way from what is published to a snapshot's sessions, in steps.

    What to add or change is found once per snapshot (one pass over its
    sessions); each :meth:`step` then hands over at most ``budget`` records, so
    a step costs its records, not the sessions published. Removals, the order
    and ``Sessions`` are left to one final publish of the whole snapshot.
    """

    def __init__(self, target: Sequence[SessionRecord],
                 published: Mapping[str, SessionRecord]) -> None:
        self.target = target
        self._todo = [record for record in target if published.get(record.id) is not record]
        self._next = 0

    def step(self, budget: int) -> list[SessionRecord] | None:
        """The next records to add or change; ``None`` once only the final publish is left."""
        if self._next >= len(self._todo):
            return None
        records = self._todo[self._next:self._next + budget]
        self._next += len(records)
        return records


#: ``RequestName`` flag and replies (the D-Bus specification).
_DO_NOT_QUEUE = 4
_PRIMARY_OWNER, _ALREADY_OWNER = 1, 4


def connect_bus(spec: str) -> Gio.DBusConnection:
    """Return a connection to ``system``, ``session`` or a D-Bus address.

    Gio directly: pydbus costs a tenth of a second at start-up and converts
    every value in Python.
    """
    if spec == "system":
        return Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    if spec == "session":
        return Gio.bus_get_sync(Gio.BusType.SESSION, None)
    return Gio.DBusConnection.new_for_address_sync(
        spec,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)


def _bus_driver_call(connection: Gio.DBusConnection, method: str, args: GLib.Variant,
                     reply_type: str) -> GLib.Variant:
    """Call a method of the bus driver (``org.freedesktop.DBus``) and wait for the reply."""
    return connection.call_sync(
        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", method, args,
        GLib.VariantType.new(reply_type), Gio.DBusCallFlags.NONE, -1, None)


def request_name(connection: Gio.DBusConnection, name: str) -> None:
    """Own ``name`` now, without replacing or queueing behind another owner (RuntimeError)."""
    reply = _bus_driver_call(connection, "RequestName",
                             GLib.Variant("(su)", (name, _DO_NOT_QUEUE)), "(u)")
    if reply.unpack()[0] not in (_PRIMARY_OWNER, _ALREADY_OWNER):
        raise RuntimeError("the name is already owned on the bus")


def release_name(connection: Gio.DBusConnection, name: str) -> None:
    """Give ``name`` up (raises GLib.Error when the bus is gone)."""
    _bus_driver_call(connection, "ReleaseName", GLib.Variant("(s)", (name,)), "(u)")


def resolve_provider_dirs(config: Config, environ: Mapping[str, str]) -> list[Path]:
    """Return the provider directories of ``config`` (default search when unset)."""
    if config.provider_dirs is not None:
        return list(config.provider_dirs)
    return list(default_provider_dirs(environ))


def watched_provider_paths(provider_dirs: Sequence[Path], providers: ProviderSet) -> list[Path]:
    """Return the provider directories plus every units directory they use."""
    paths = list(provider_dirs)
    for unit_file in providers.unit_files:
        if unit_file.parent not in paths:
            paths.append(unit_file.parent)
    return paths


def summary(sessions: Sequence[SessionRecord], discarded: Sequence[DiscardRecord]) -> str:
    """Return the one-line STATUS= summary of what is published."""
    counts: dict[str, int] = {}
    for record in sessions:
        counts[record.state] = counts.get(record.state, 0) + 1
    states = ", ".join(
        f"{counts[s]} {s}" for s in ("resumed", "pending", "complete") if s in counts)
    return f"{len(sessions)} sessions ({states or 'none'}), {len(discarded)} discarded"


class Daemon:
    """The running daemon: owns the registry, the bus adapter and the helpers."""

    def __init__(self, options: Options, environ: Mapping[str, str] | None = None) -> None:
        """Build config, providers and the registry; raise StartupError when impossible."""
        self._options = options
        self._environ = dict(os.environ if environ is None else environ)
        self.notifier = Notifier(self._environ)
        self.config = self._load_config()
        self.provider_dirs = resolve_provider_dirs(self.config, self._environ)
        self.providers = load_providers(self.provider_dirs)
        self.boot = self._boot_info()
        self.registry = Registry(self.config, self.providers, self.boot)
        self._work = _Work()
        self._wake = threading.Condition()
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._snapshot: Snapshot | None = None
        self._publishing = False
        #: The snapshot the main loop is publishing batch by batch, and its plan.
        self._target: Snapshot | None = None
        self._plan: PublishPlan | None = None
        self._loop = GLib.MainLoop()
        self._connection: Gio.DBusConnection | None = None
        self._owns_name = False
        self.adapter: BusAdapter | None = None
        self.watcher: Watcher | None = None
        self.inhibitor: SleepInhibitor | None = None
        self._timers: list[int] = []
        self._rescan_timer: int | None = None
        self.exit_code = 0

    def _load_config(self) -> Config:
        """Load the config from the options; ConfigError becomes StartupError."""
        try:
            return load_config(self._options.config_path, self._options.overrides, self._environ)
        except ConfigError as exc:
            raise StartupError(f"Invalid configuration: {exc}") from exc

    @staticmethod
    def _boot_info() -> BootInfo:
        """Read this boot's id and time."""
        try:
            return read_boot_info()
        except (OSError, ValueError) as exc:
            raise StartupError(f"Cannot read the boot id and time: {exc}") from exc

    # -- start / run / stop --------------------------------------------------

    def run(self) -> int:
        """Start, run the main loop until SIGTERM, stop; return the exit status."""
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._log_changes(self.registry.scan(
            deadline=time.monotonic() + STARTUP_SCAN_SECONDS, quick=True))
        self._start_bus()
        self._start_helpers()
        self._set_state("scanning")
        self.notifier.ready(summary(self.registry.list_sessions(), self.registry.list_discarded()))
        logger.info("resumed %s ready on %s", __version__, self._options.bus)
        # Watching costs a walk of every root: the worker sets the watches up after
        # READY=1, then its first full scan (only stat() for what was peeked) covers the gap.
        self._new_watcher()
        self._worker = threading.Thread(target=self._work_loop, name="resume-worker", daemon=True)
        self._worker.start()
        self._submit(watch=True, full_scan=True, resume=True)
        self._loop.run()
        return self.exit_code

    def _start_bus(self) -> None:
        """Connect, export the objects, then take the name (no replacement)."""
        try:
            connection = self._connection = connect_bus(self._options.bus)
        except GLib.Error as exc:
            raise StartupError(
                f"Cannot connect to the {self._options.bus} bus: {exc.message}") from exc
        connection.set_exit_on_close(False)
        connection.connect("closed", self._on_bus_closed)
        self.adapter = BusAdapter(connection, self)
        self.adapter.export()
        self.adapter.set_configuration(self.config.session_roots, self.provider_dirs)
        # Nobody can address the daemon before it owns its name: no per-session signals.
        self.adapter.publish(self.registry.list_sessions(), self.registry.list_discarded(),
                             announce=False)
        try:
            request_name(connection, names.BUS_NAME)
            self._owns_name = True
        except (RuntimeError, GLib.Error) as exc:
            raise StartupError(f"Cannot own {names.BUS_NAME}: {exc}") from exc

    def _new_watcher(self) -> None:
        """A watcher for the session roots and provider directories (the worker schedules it)."""
        self.watcher = Watcher(
            self.config.debounce,
            on_sessions=lambda paths: self._submit(paths=paths),
            on_providers=lambda: self._submit(providers=True),
            on_layout=self._on_layout_changed)

    def _start_helpers(self) -> None:
        """Sleep inhibitor, timers and signal handlers."""
        assert self._connection is not None
        self.inhibitor = SleepInhibitor(self._connection, self.persist, self._after_wake)
        self.inhibitor.start()
        interval = watchdog_interval_seconds(self._environ, os.getpid())
        if interval is not None:
            self.notifier.watchdog()
            self._timers.append(GLib.timeout_add(max(1, int(interval * 1000)), self._ping))
        self._arm_rescan_timer()
        for signum, handler in ((signal.SIGTERM, self.stop), (signal.SIGINT, self.stop),
                                (signal.SIGHUP, self.reload)):
            self._timers.append(GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum,
                                                     self._signal_handler(handler)))

    @staticmethod
    def _signal_handler(handler: Any) -> Any:
        """Wrap ``handler`` as a GLib source callback that stays installed."""
        def callback() -> bool:
            handler()
            return True
        return callback

    def _arm_rescan_timer(self) -> None:
        """(Re)start the countdown to the next periodic full rescan.

        It counts from the last time ``State`` became ``ready`` (see
        :meth:`_publish_step`), not at a fixed rate: a full scan of 100,000
        sessions takes longer than a short ``rescan_interval``, and rescans back
        to back would keep ``State`` at ``scanning`` for ever.
        """
        if self._rescan_timer is not None:
            GLib.source_remove(self._rescan_timer)
        self._rescan_timer = GLib.timeout_add(
            int(self.config.rescan_interval * 1000), self._periodic_rescan)

    def _watch(self) -> None:
        """(Re)schedule the filesystem watches (worker: it walks every root)."""
        watcher = self.watcher
        if watcher is not None:
            watcher.watch(self.config.session_roots,
                          watched_provider_paths(self.provider_dirs, self.providers))

    def stop(self) -> None:
        """SIGTERM: STOPPING=1, stop the worker, persist, clean exit."""
        if self._stopping:
            return
        logger.info("Stopping")
        self.notifier.stopping()
        self._set_state("stopping")
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._worker is not None:
            self._worker.join(STOP_JOIN_SECONDS)
            if self._worker.is_alive():
                logger.warning("The resume worker did not stop within %gs", STOP_JOIN_SECONDS)
        if self.watcher is not None:
            self.watcher.stop()
        self.persist()
        if self.inhibitor is not None:
            self.inhibitor.stop()
        for source in [*self._timers, self._rescan_timer]:
            if source is not None:
                GLib.source_remove(source)
        self._timers.clear()
        self._rescan_timer = None
        try:
            if self._owns_name and self._connection is not None:
                self._owns_name = False
                release_name(self._connection, names.BUS_NAME)
            if self.adapter is not None:
                self.adapter.unexport()
        except GLib.Error as error:
            # The bus may already be gone (dbus restarted or stopped first):
            # there is nothing left to release on it, and the exit must go on.
            logger.info("Could not release the bus name: %s", error.message)
        self._loop.quit()

    def persist(self) -> None:
        """Write the registry's state (before sleep and at exit)."""
        self.registry.persist()

    def reload(self) -> None:
        """SIGHUP: RELOADING=1, reload config and providers, rescan, READY=1 (in the worker)."""
        if self._stopping:
            return
        logger.info("Reloading")
        self.notifier.reloading()
        self._set_state("reloading")
        self._submit(reload=True)

    # -- main-loop callbacks ---------------------------------------------------

    def _ping(self) -> bool:
        """Watchdog ping from the main loop."""
        self.notifier.watchdog()
        return True

    def _periodic_rescan(self) -> bool:
        """Full rescan and provider change check, ``rescan_interval`` after the last ``ready``."""
        self._rescan_timer = None
        self._submit(full_scan=True, providers=True)
        return False

    def _after_wake(self) -> None:
        """Rescan fully after wake-up from sleep."""
        self._submit(full_scan=True)

    def _on_layout_changed(self) -> None:
        """A missing root or provider directory may exist now: re-watch and rescan."""
        self._submit(watch=True, full_scan=True, providers=True)

    def _on_bus_closed(self, *_args: Any) -> None:
        """The bus went away: nothing can be published any more, so exit with failure."""
        if not self._stopping:
            logger.error("Lost the connection to the bus")
            self.exit_code = 1
            self.stop()

    def request_rescan(self) -> None:
        """Bus ``Rescan``: schedule a full rescan and return at once."""
        self._set_state("scanning")
        self._submit(full_scan=True)

    def job_results(self, session_id: str, job_id: str) -> list[dict[str, Any]]:
        """Bus ``GetJobResults``: the result history from the registry."""
        return self.registry.job_results(session_id, job_id)

    def _set_state(self, state: str) -> None:
        """Publish the Manager ``State`` (main loop only)."""
        if self.adapter is not None and (not self._stopping or state == "stopping"):
            self.adapter.set_state(state)

    def _set_state_idle(self, state: str) -> bool:
        """Idle callback: publish ``state`` unless reloading (which ends with READY)."""
        if self.adapter is not None and self.adapter.state != "reloading":
            self._set_state(state)
        return False

    def _publish_step(self, snapshot: Snapshot) -> bool:
        """Publish the next batch of ``snapshot``; True when all of it is published.

        Its state, status and READY=1 follow once its last batch is published.
        """
        if self.adapter is None or self._stopping:
            return True
        sessions, discarded, state, status, ready = snapshot
        if self._plan is None or self._plan.target is not sessions:
            self._plan = PublishPlan(sessions, self.adapter.records)
        records = self._plan.step(PUBLISH_BATCH)
        if records is not None:
            self.adapter.add_or_update(records)
            return False
        self._plan = None
        self.adapter.publish(sessions, discarded)
        if state is not None and self.adapter.state != "reloading":
            self._set_state(state)
        if ready:
            self._set_state(state or "scanning")
            self.notifier.ready(status)
        elif status is not None:
            self.notifier.status(status)
        if state == "ready" and self.adapter.state == "ready":  # also after a reload's READY=1
            self._arm_rescan_timer()
        return True

    # -- worker ----------------------------------------------------------------

    def _submit(self, *, reload: bool = False, watch: bool = False, full_scan: bool = False,
                providers: bool = False, resume: bool = False,
                paths: set[Path] | None = None) -> None:
        """Ask the worker to do something (coalesced with what is pending).

        Whatever it does, the worker then resumes the sessions left pending.
        """
        with self._wake:
            self._work.resume |= resume
            self._work.reload |= reload
            self._work.watch |= watch
            self._work.full_scan |= full_scan
            self._work.providers |= providers
            self._work.paths |= set(paths or ())
            self._wake.notify_all()

    def _take_work(self, block: bool) -> _Work | None:
        """Return the pending work (waiting for some when ``block``), None when stopping."""
        with self._wake:
            # New work waits until the main loop has published the last snapshot:
            # scanning again meanwhile would only slow the publishing down.
            while block and (not self._work or self._publishing) and not self._stopping:
                self._wake.wait()
            if self._stopping:
                return None
            work, self._work = self._work, _Work()
            return work

    def _has_work(self) -> bool:
        """True when new work or a stop request arrived."""
        with self._wake:
            return bool(self._work) or self._stopping

    def _work_loop(self) -> None:
        """Worker thread: scans, provider reloads and resumes, one at a time."""
        while True:
            work = self._take_work(block=True)
            if work is None:
                return
            GLib.idle_add(self._set_state_idle, "scanning")
            try:
                self._do(work)
                if not self._has_work():
                    self._resume_pending()
            except Exception:
                logger.exception("Unexpected error in the resume worker")
            if not self._has_work():
                self._post(state="ready", status=self._summary())

    def _stop_requested(self) -> bool:
        """Whether SIGTERM asked the worker to stop (a scan then stops between sessions)."""
        return self._stopping

    def _do(self, work: _Work) -> None:
        """Run one batch of coalesced work."""
        if work.watch:
            self._watch()
        if work.reload:
            self._reload_in_worker()
            return
        if work.providers:
            self._reload_providers(force=False)
        if work.full_scan:
            self._run(lambda: self.registry.scan(stop=self._stop_requested))
        elif work.paths:
            self._run(lambda: self.registry.rescan_paths(sorted(work.paths)))

    def _reload_in_worker(self) -> None:
        """Reload config (a bad one keeps the old), providers, rescan, then READY=1."""
        try:
            config = load_config(self._options.config_path, self._options.overrides,
                                 self._environ)
        except ConfigError as exc:
            logger.error("Keeping the old configuration: %s", exc)
            config = self.config
        if config != self.config:
            self.config = config
            self.provider_dirs = resolve_provider_dirs(config, self._environ)
            self.registry.set_config(config)
            GLib.idle_add(self._after_config_change)
        self._reload_providers(force=True)
        self._run(lambda: self.registry.scan(stop=self._stop_requested))
        self._post(state="scanning", status="Reloaded: " + self._summary(), ready=True)

    def _after_config_change(self) -> bool:
        """Main loop: re-watch (in the worker), re-arm timers and republish the configuration."""
        if self.adapter is not None:
            self.adapter.set_configuration(self.config.session_roots, self.provider_dirs)
        if self.watcher is not None and not self._stopping:
            self.watcher.stop()
            self._new_watcher()
            self._submit(watch=True)
        self._arm_rescan_timer()
        return False

    def _reload_providers(self, force: bool) -> None:
        """Load the providers again; hand them to the registry if their files changed."""
        providers = load_providers(self.provider_dirs)
        if not force and providers.unit_files == self.providers.unit_files:
            return
        logger.info("Providers changed; re-checking sessions")
        self.providers = providers
        self._run(lambda: self.registry.set_providers(providers))
        self._submit(watch=True)  # units directories may have changed

    def _resume_pending(self) -> None:
        """Resume pending sessions one by one, with STATUS= progress."""
        pending = self.registry.pending_ids()
        posted = 0.0
        for index, session_id in enumerate(pending, start=1):
            if self._has_work():
                return
            # A snapshot lists every session: one per resume would cost O(sessions) each.
            if time.monotonic() - posted >= PROGRESS_SECONDS:
                self._post(state="scanning", status=f"Resuming sessions: {index}/{len(pending)}")
                posted = time.monotonic()
            self._log_changes(self.registry.resume_one(session_id))

    def _run(self, action: Any) -> None:
        """Run a registry action, log its changes, publish a snapshot."""
        self._log_changes(action())
        self._post()

    def _post(self, state: str | None = None, status: str | None = None,
              ready: bool = False) -> None:
        """Hand a snapshot (and a state/status update) to the main loop.

        Only the worker changes the registry, so its two lists agree here.
        Snapshots not yet published are replaced by newer ones, so a busy
        worker never floods the main loop; status, state and READY are kept.
        """
        sessions = self.registry.list_sessions()
        discarded = self.registry.list_discarded()
        with self._wake:
            self._snapshot = merge_snapshots(
                self._snapshot, (sessions, discarded, state, status, ready))
            schedule, self._publishing = not self._publishing, True
        if schedule:
            GLib.idle_add(self._publish_latest)

    def _publish_latest(self) -> bool:
        """Idle callback: publish the next batch of the newest snapshot the worker left.

        Stays installed until all is published; a newer snapshot replaces the
        one being published (what was published of it stays, as far as it agrees).
        """
        with self._wake:
            snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            self._target = merge_snapshots(self._target, snapshot)
        if self._target is not None and self._publish_step(self._target):
            self._target = None
        with self._wake:
            if self._target is None and self._snapshot is None:
                self._publishing = False
                self._wake.notify_all()
                return False
        return True

    def _summary(self) -> str:
        """Summary of what the registry holds."""
        return summary(self.registry.list_sessions(), self.registry.list_discarded())

    @staticmethod
    def _log_changes(changes: Sequence[Change]) -> None:
        """Log each change at info level."""
        for change in changes:
            logger.info("Session %s: %s", change.session_id, change.kind)
