"""Filesystem watches on session roots and provider units directories.

One recursive watch per session root and per provider units directory (the
watchdog library opens an inotify instance and threads per watch, never one
per session). Events are reduced to the session directories (or provider
directories) they touch, handed to the GLib main loop and debounced there;
events can be lost, so the daemon also rescans periodically. When inotify
runs out of instances or watches the daemon says so once and relies on that
periodic rescan; the inotify instance of the failed watch is closed, so the
watches it had already added are given back to the system.

Scheduling a recursive watch walks every directory below it (100,000 sessions
are 300,000 directories), so :meth:`Watcher.watch` is called from the daemon's
worker thread, never from the main loop. Before each recursive watch the
directories are counted, stopping at the watch limit: a tree that would take
more than the limit (less a reserve for the rest of the system) is not walked
again by the watch, and falls back to the periodic rescan at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gi.repository import GLib
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

logger = logging.getLogger(__name__)

#: errno values meaning "inotify is exhausted" (instances, watches, or fds).
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOSPC, errno.ENOMEM}

_INOTIFY_LINK = "anon_inode:inotify"

#: Where the kernel says how many watches a user may hold (the second: per user namespace).
_WATCH_LIMIT_FILES = (Path("/proc/sys/fs/inotify/max_user_watches"),
                      Path("/proc/sys/user/max_inotify_watches"))
#: The share of the watch limit left to the rest of the system (root's other processes).
_RESERVE_FRACTION = 10

#: The link count of a directory without subdirectories ("." and its name in the parent).
_LEAF_LINKS = 2

#: One schedule at a time in the whole process: a failed schedule finds its
#: inotify instances by comparing ``/proc/self/fd`` before and after it.
_SCHEDULE_LOCK = threading.Lock()


def watch_limit(files: Sequence[Path] | None = None) -> int | None:
    """The smallest inotify watch limit in ``files`` (default: the kernel's), None if none."""
    limits = []
    for path in _WATCH_LIMIT_FILES if files is None else files:
        try:
            limits.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def count_directories(path: Path, stop_after: int) -> int:
    """Count ``path`` and the directories below it (links not followed), up to ``stop_after + 1``.

    The count stops as soon as it passes ``stop_after``, so a tree far larger
    than the watch limit costs a walk of the limit, not of the tree. Level by
    level, a directory's link count says how many subdirectories it has (one
    ``lstat``, no listing; file systems without that convention are listed),
    and only directories that have subdirectories are listed.
    """
    count = 1
    level = [os.fsencode(path)]
    while level:
        parents = []
        for directory in level:
            try:
                links = os.lstat(directory).st_nlink
            except OSError:
                continue
            counted = links >= _LEAF_LINKS
            if counted:
                count += links - _LEAF_LINKS
                if links == _LEAF_LINKS:
                    continue
            parents.append((directory, counted))
            if count > stop_after:
                return count
        level = []
        for directory, counted in parents:
            try:
                with os.scandir(directory) as entries:
                    subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            if not counted:
                count += len(subdirs)
                if count > stop_after:
                    return count
            level.extend(subdirs)
    return count


def _inotify_fds() -> set[int]:
    """The file descriptors of this process that are inotify instances."""
    found = set()
    for link in Path("/proc/self/fd").iterdir():
        try:
            if str(link.readlink()) == _INOTIFY_LINK:
                found.add(int(link.name))
        except OSError:
            continue
    return found


def _release_failed_watch(
    observer: Observer, handler: _Handler, path: Path, recursive: bool, before: set[int]
) -> None:
    """Undo what a failed ``observer.schedule`` left behind.

    watchdog 2.2.1 raises out of its recursive watch setup after ``inotify_init``
    without closing that instance, so every watch it added stays held (for root:
    every watch of the system). The instances that appeared since ``before`` were
    opened by this schedule (schedules hold ``_SCHEDULE_LOCK``, and watchdog's
    threads open none) and are closed; the handler it registered is dropped.
    """
    leaked = _inotify_fds() - before
    for fd in leaked:
        os.close(fd)
    with contextlib.suppress(KeyError):
        observer.remove_handler_for_watch(handler, ObservedWatch(str(path), recursive))
    logger.debug("closed %d inotify instance(s) left by the failed watch of %s", len(leaked), path)


def nearest_existing_parent(path: Path) -> Path:
    """Return ``path`` itself if it is a directory, else its nearest existing ancestor."""
    candidate = path
    while not candidate.is_dir():
        if candidate.parent == candidate:
            return candidate
        candidate = candidate.parent
    return candidate


def _is_under(path: Path, directory: Path) -> bool:
    """Whether ``directory`` is one of ``path.parents``, without building them.

    Events come by the thousand when a session with many io-logs is copied in.
    """
    if not (path.is_absolute() and directory.is_absolute()):
        return directory in path.parents
    prefix = str(directory)
    if not prefix.endswith("/"):
        prefix += "/"
    text = str(path)
    return text != prefix and text.startswith(prefix)


def session_dir_for(root: Path, changed: str) -> Path | None:
    """Return the ``<root>/<entry>`` directory that ``changed`` lies in, or None."""
    prefix = str(root)
    if (prefix.startswith("/") and changed.startswith("/") and "//" not in changed
            and "/." not in changed):
        # The common case, as strings (events come by the thousand).
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        if not changed.startswith(prefix):
            return None
        entry = changed[len(prefix):].split("/", 1)[0]
        return root / entry if entry not in ("", ".") else None
    try:
        relative = Path(changed).relative_to(root)
    except ValueError:
        return None
    if not relative.parts:
        return None
    return root / relative.parts[0]


def _stop_observer(observer: Observer) -> None:
    """Stop ``observer``'s threads and give its inotify instances back."""
    observer.stop()
    observer.join(timeout=5)


class _Handler(FileSystemEventHandler):
    """Forwards every event's paths to a callback (called from watchdog's thread)."""

    def __init__(self, callback: Callable[[list[str]], None]) -> None:
        super().__init__()
        self._callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Forward ``event``'s source and destination paths."""
        paths = [os.fsdecode(event.src_path)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(os.fsdecode(dest))
        self._callback(paths)


class Watcher:
    """Watches session roots and provider directories; calls back on the main loop.

    ``on_sessions(paths)`` receives the session directories that changed,
    ``on_providers()`` is called when a provider directory changed, and
    ``on_layout()`` when a missing root or provider directory may have appeared
    (the caller then rescans fully and calls :meth:`watch` again).
    All three run in the GLib main loop, after ``debounce`` seconds of quiet.
    :meth:`watch` may take seconds (it walks the trees it watches): call it from
    a worker thread; :meth:`stop` and the callbacks belong to the main loop.
    """

    def __init__(
        self,
        debounce: float,
        on_sessions: Callable[[set[Path]], None],
        on_providers: Callable[[], None],
        on_layout: Callable[[], None],
    ) -> None:
        """Prepare a watcher; nothing is watched until :meth:`watch`."""
        self._debounce = debounce
        self._on_sessions = on_sessions
        self._on_providers = on_providers
        self._on_layout = on_layout
        self._observer: Observer | None = None
        self._observer_lock = threading.Lock()
        self._closed = False
        self._roots: list[Path] = []
        self._provider_dirs: list[Path] = []
        self._missing: list[Path] = []
        self._pending_sessions: set[Path] = set()
        self._pending_providers = False
        self._pending_layout = False
        self._timer: int | None = None
        self._inbox: list[str] = []
        self._inbox_lock = threading.Lock()
        self.exhausted = False

    def watch(self, roots: Sequence[Path], provider_dirs: Sequence[Path]) -> None:
        """(Re)schedule one watch per root and per provider directory (worker thread).

        The old watches are given back first (the new ones may need them all);
        after :meth:`stop` nothing is watched any more.
        """
        roots = [Path(r) for r in roots]
        provider_dirs = [Path(p) for p in provider_dirs]
        missing = []
        targets: dict[Path, bool] = {}
        for path in [*roots, *provider_dirs]:
            target = nearest_existing_parent(path)
            recursive = target == path
            if not recursive:
                missing.append(path)
            if target not in targets and target.is_dir():
                targets[target] = recursive
        # Whole lists are swapped in: the main loop reads them while this thread runs.
        self._roots, self._provider_dirs, self._missing = roots, provider_dirs, missing
        with self._observer_lock:
            old, self._observer = self._observer, None
        if old is not None:
            _stop_observer(old)
        observer = Observer()
        observer.daemon = True
        observer.start()
        limit = watch_limit()
        available = None if limit is None else limit - limit // _RESERVE_FRACTION
        with _SCHEDULE_LOCK:
            for target, recursive in targets.items():
                if available is None:
                    needed = 0
                else:
                    needed = count_directories(target, available) if recursive else 1
                    if needed > available:
                        # Too big for the watches left: not worth walking (smaller ones may fit).
                        self._say_exhausted(f"{target} holds more than {available} directories")
                        continue
                    available -= needed
                if not self._schedule(observer, target, recursive):
                    break
        with self._observer_lock:
            closed = self._closed
            if not closed:
                self._observer = observer
        if closed:
            _stop_observer(observer)

    def _say_exhausted(self, why: str) -> None:
        """Warn, once per watcher, that inotify cannot cover the trees."""
        if not self.exhausted:
            self.exhausted = True
            logger.warning("inotify is exhausted (%s); relying on periodic rescans", why)

    def _schedule(self, observer: Observer, path: Path, recursive: bool) -> bool:
        """Schedule one watch; return False (said once) when inotify is exhausted.

        A failed watch gives back the inotify instance and watches it had taken.
        """
        handler = _Handler(self._from_thread)
        before = _inotify_fds()
        try:
            observer.schedule(handler, str(path), recursive=recursive)
        except OSError as exc:
            _release_failed_watch(observer, handler, path, recursive, before)
            if exc.errno in _EXHAUSTED:
                self._say_exhausted(exc.strerror or str(exc))
                return False
            logger.warning("Cannot watch %s: %s", path, exc)
        return True

    def stop(self) -> None:
        """Stop every watch and drop pending events (main loop; for good)."""
        with self._observer_lock:
            self._closed = True
            observer, self._observer = self._observer, None
        if observer is not None:
            _stop_observer(observer)
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        self._pending_sessions.clear()
        self._pending_providers = self._pending_layout = False
        with self._inbox_lock:
            self._inbox.clear()

    def _from_thread(self, paths: list[str]) -> None:
        """Queue ``paths`` from watchdog's thread for the main loop.

        Copying a session in makes thousands of events: they are queued and
        one main-loop callback takes them all (each path once), so bus calls
        are not kept waiting behind a callback per event.
        """
        with self._inbox_lock:
            first = not self._inbox
            self._inbox.extend(paths)
        if first:
            GLib.idle_add(self._drain)

    def _drain(self) -> bool:
        """Main loop: sort every queued path (see :meth:`_collect`)."""
        with self._inbox_lock:
            paths, self._inbox = self._inbox, []
        return self._collect(dict.fromkeys(paths))

    def _collect(self, paths: Iterable[str]) -> bool:
        """Sort changed paths into sessions, providers and layout; (re)arm the debounce."""
        # A list, not a generator: every path is classified, not just up to the first hit.
        if not any([self._classify(changed) for changed in paths]):  # noqa: C419
            return False
        if self._timer is not None:
            GLib.source_remove(self._timer)
        self._timer = GLib.timeout_add(int(self._debounce * 1000), self._fire)
        return False

    def _classify(self, changed: str) -> bool:
        """Record what a change of ``changed`` means; False when it means nothing."""
        path = Path(changed)
        relevant = False
        for missing in self._missing:
            if missing.is_dir() or missing == path or path in missing.parents:
                self._pending_layout = relevant = True
        for directory in self._provider_dirs:
            if path == directory or _is_under(path, directory):
                self._pending_providers = relevant = True
        for root in self._roots:
            session_dir = session_dir_for(root, changed)
            if session_dir is not None:
                self._pending_sessions.add(session_dir)
                relevant = True
        return relevant

    def _fire(self) -> bool:
        """Deliver what accumulated during the debounce window."""
        self._timer = None
        sessions, self._pending_sessions = self._pending_sessions, set()
        providers, self._pending_providers = self._pending_providers, False
        layout, self._pending_layout = self._pending_layout, False
        if layout:
            self._on_layout()
            return False
        if providers:
            self._on_providers()
        if sessions:
            self._on_sessions(sessions)
        return False
