"""The logind sleep delay inhibitor: persist before sleep, rescan after wake-up.

pydbus cannot receive file descriptors, so ``Inhibit`` (which returns the
inhibitor as a handle ``h``) is called through the Gio connection directly.
Without logind (containers, test buses) the daemon simply runs without a lock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from gi.repository import Gio, GLib

logger = logging.getLogger(__name__)

LOGIND_NAME = "org.freedesktop.login1"
LOGIND_PATH = "/org/freedesktop/login1"
LOGIND_MANAGER = "org.freedesktop.login1.Manager"


class SleepInhibitor:
    """Holds a logind ``sleep`` delay lock and reacts to ``PrepareForSleep``.

    ``before_sleep()`` runs on ``PrepareForSleep(true)`` before the lock is
    released; ``after_wake()`` runs on ``PrepareForSleep(false)`` after it is
    taken again. Both run in the GLib main loop.
    """

    def __init__(
        self,
        connection: Gio.DBusConnection,
        before_sleep: Callable[[], None],
        after_wake: Callable[[], None],
    ) -> None:
        """Prepare the inhibitor on ``connection``; nothing happens until :meth:`start`."""
        self._connection = connection
        self._before_sleep = before_sleep
        self._after_wake = after_wake
        self._fd: int | None = None
        self._subscription: int | None = None

    @property
    def held(self) -> bool:
        """True while the delay lock is held."""
        return self._fd is not None

    def start(self) -> None:
        """Subscribe to ``PrepareForSleep`` and take the lock."""
        self._subscription = self._connection.signal_subscribe(
            LOGIND_NAME, LOGIND_MANAGER, "PrepareForSleep", LOGIND_PATH, None,
            Gio.DBusSignalFlags.NONE, self._on_prepare_for_sleep)
        self.take()

    def stop(self) -> None:
        """Unsubscribe and release the lock."""
        if self._subscription is not None:
            self._connection.signal_unsubscribe(self._subscription)
            self._subscription = None
        self.release()

    def take(self) -> None:
        """Take the delay lock (logged, not raised, when logind is unavailable)."""
        if self._fd is not None:
            return
        try:
            reply, fd_list = self._connection.call_with_unix_fd_list_sync(
                LOGIND_NAME, LOGIND_PATH, LOGIND_MANAGER, "Inhibit",
                GLib.Variant("(ssss)", ("sleep", "resumed",
                                        "Save session state before sleep", "delay")),
                GLib.VariantType.new("(h)"), Gio.DBusCallFlags.NO_AUTO_START, 5000, None, None)
        except GLib.Error as exc:
            logger.info("No logind sleep inhibitor: %s", exc.message)
            return
        fds = fd_list.steal_fds() if fd_list is not None else []
        (index,) = reply.unpack()
        for position, fd in enumerate(fds):
            if position == index:
                self._fd = fd
            else:
                os.close(fd)
        if self._fd is None:
            logger.warning("logind answered Inhibit without a file descriptor")
        else:
            logger.debug("Took the logind sleep delay lock (fd %d)", self._fd)

    def release(self) -> None:
        """Release the delay lock, letting the system sleep."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            logger.debug("Released the logind sleep delay lock")

    def _on_prepare_for_sleep(
        self, _connection: Gio.DBusConnection, _sender: str, _path: str,
        _interface: str, _signal: str, parameters: GLib.Variant,
    ) -> None:
        """Persist and release before sleep; re-take and rescan after wake-up."""
        (going_to_sleep,) = parameters.unpack()
        if going_to_sleep:
            logger.info("System is going to sleep")
            try:
                self._before_sleep()
            finally:
                self.release()
        else:
            logger.info("System woke up")
            self.take()
            self._after_wake()
