"""sd_notify messages to systemd: READY, STATUS, WATCHDOG, RELOADING, STOPPING."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

import sdnotify

logger = logging.getLogger(__name__)


def ascii_status(text: str) -> str:
    """Return ``text`` as one line of printable ASCII (sdnotify drops non-Latin-1 text)."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text.replace("\n", " "))
    return cleaned[:200]


class Notifier:
    """Sends sd_notify messages when ``NOTIFY_SOCKET`` is set, and nothing otherwise.

    A failure to send is logged as a warning once per kind of message and never
    raised: the daemon keeps running without its supervisor's notifications.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Connect to ``$NOTIFY_SOCKET`` from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._warned: set[str] = set()
        self._notifier: sdnotify.SystemdNotifier | None = None
        if self.enabled:
            try:
                self._notifier = sdnotify.SystemdNotifier(debug=True)
                # A reader that stops reading must never block the main loop.
                self._notifier.socket.setblocking(False)
            except OSError as exc:
                logger.warning("Cannot connect to NOTIFY_SOCKET: %s", exc)

    def _send(self, kind: str, message: str) -> None:
        """Send ``message``; warn once per ``kind`` when it cannot be sent."""
        if not self.enabled or self._notifier is None:
            return
        try:
            self._notifier.notify(message)
        except (OSError, UnicodeError) as exc:
            if kind not in self._warned:
                self._warned.add(kind)
                logger.warning("Cannot send %s to NOTIFY_SOCKET: %s", kind, exc)

    def ready(self, status: str | None = None) -> None:
        """Tell systemd that start-up (or a reload) is complete."""
        message = "READY=1"
        if status is not None:
            message += "\nSTATUS=" + ascii_status(status)
        self._send("READY", message)

    def status(self, text: str) -> None:
        """Set the free-form status line shown by ``systemctl status``."""
        self._send("STATUS", "STATUS=" + ascii_status(text))

    def watchdog(self) -> None:
        """Ping the service watchdog."""
        self._send("WATCHDOG", "WATCHDOG=1")

    def reloading(self) -> None:
        """Tell systemd that a reload starts (with the monotonic timestamp it requires)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING", f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Tell systemd that the daemon is shutting down."""
        self._send("STOPPING", "STOPPING=1")


def watchdog_interval_seconds(environ: Mapping[str, str], pid: int) -> float | None:
    """Return half of ``$WATCHDOG_USEC`` in seconds, or None when no watchdog is asked for.

    ``$WATCHDOG_PID``, when set, must name this process (as sd_watchdog_enabled checks).
    """
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        logger.warning("Ignoring invalid WATCHDOG_USEC=%r", usec)
        return None
    if value <= 0:
        return None
    return value / 2_000_000
