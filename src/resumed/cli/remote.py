"""``resumectl list | show ID | discarded | rescan``: talk to the running daemon.

Human tables by default, ``--json`` (SPEC §6) for scripts. Exit status: 0
done, 1 the daemon answered with an error, 3 the daemon is not running and
cannot be activated, 4 access denied (2, usage, is argparse's).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from gi.repository import Gio, GLib

from resumed.daemon import names

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3
EXIT_ACCESS_DENIED = 4

#: D-Bus errors meaning "nobody owns the name and activation failed".
NOT_RUNNING_ERRORS = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.Spawn.",
    "org.freedesktop.systemd1.",
)
ACCESS_DENIED_ERRORS = (
    "org.freedesktop.DBus.Error.AccessDenied",
    names.error_name("AccessDenied"),
)
CALL_TIMEOUT_MS = 30_000


class RemoteError(Exception):
    """A call failed; ``exit_code`` is what resumectl exits with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def snake_case(name: str) -> str:
    """Return ``CamelCase`` D-Bus property names as ``snake_case``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _classify(exc: GLib.Error) -> RemoteError:
    """Turn a GLib error into a RemoteError with the right exit status."""
    remote = Gio.DBusError.get_remote_error(exc) or ""
    # Gio.DBusError.strip_remote_error returns a bool in PyGObject; strip by hand.
    message = exc.message.removeprefix(f"GDBus.Error:{remote}: ") if remote else exc.message
    if remote.startswith(ACCESS_DENIED_ERRORS):
        return RemoteError(f"Access denied: {message}", EXIT_ACCESS_DENIED)
    if remote.startswith(NOT_RUNNING_ERRORS):
        return RemoteError(f"resumed is not running and cannot be activated: {message}",
                           EXIT_NOT_RUNNING)
    if remote:
        return RemoteError(f"{remote}: {message}", EXIT_ERROR)
    return RemoteError(message, EXIT_ERROR)


class Client:
    """A minimal org.resumed.Resume1 client on a Gio connection."""

    def __init__(self, address: str | None) -> None:
        """Connect to the system bus, or to ``address``."""
        try:
            if address:
                self._connection = Gio.DBusConnection.new_for_address_sync(
                    address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
            else:
                self._connection = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        except GLib.Error as exc:
            raise RemoteError(f"Cannot connect to the bus: {exc.message}",
                              EXIT_NOT_RUNNING) from exc

    def call(self, path: str, interface: str, method: str, args: GLib.Variant | None,
             reply_type: str) -> Any:
        """Call ``interface.method`` on ``path`` and return the unpacked reply tuple."""
        try:
            reply = self._connection.call_sync(
                names.BUS_NAME, path, interface, method, args,
                GLib.VariantType.new(reply_type), Gio.DBusCallFlags.NONE, CALL_TIMEOUT_MS, None)
        except GLib.Error as exc:
            raise _classify(exc) from exc
        return reply.unpack()

    def list_sessions(self) -> list[tuple[str, str, str, str, str, str]]:
        """ListSessions."""
        return list(self.call(names.ROOT_PATH, names.MANAGER_INTERFACE, "ListSessions",
                              None, "(a(sossss))")[0])

    def list_discarded(self) -> list[tuple[str, str, str, str, list[str]]]:
        """ListDiscarded."""
        return list(self.call(names.ROOT_PATH, names.MANAGER_INTERFACE, "ListDiscarded",
                              None, "(a(ssssas))")[0])

    def session_properties(self, session_id: str) -> dict[str, Any]:
        """GetSession, then every property of that session."""
        (path,) = self.call(names.ROOT_PATH, names.MANAGER_INTERFACE, "GetSession",
                            GLib.Variant("(s)", (session_id,)), "(o)")
        (properties,) = self.call(path, names.PROPERTIES_INTERFACE, "GetAll",
                                  GLib.Variant("(s)", (names.SESSION_INTERFACE,)), "(a{sv})")
        return dict(properties)

    def rescan(self) -> None:
        """Rescan."""
        self.call(names.ROOT_PATH, names.MANAGER_INTERFACE, "Rescan", None, "()")


def _table(rows: Sequence[Sequence[str]], header: Sequence[str], out: TextIO) -> None:
    """Write ``rows`` as left-aligned columns under ``header``."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
                  .rstrip() + "\n")


def _json_value(value: Any) -> Any:
    """A JSON-safe value (non-finite floats are null)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _list(client: Client, as_json: bool, out: TextIO) -> None:
    sessions = client.list_sessions()
    if as_json:
        keys = ("id", "path", "state", "title", "app_id", "running_job")
        json.dump([dict(zip(keys, row, strict=True)) for row in sessions], out, indent=2)
        out.write("\n")
        return
    _table([(i, state, running or "-", title) for i, _p, state, title, _a, running in sessions],
           ("ID", "STATE", "RUNNING JOB", "TITLE"), out)


def _discarded(client: Client, as_json: bool, out: TextIO) -> None:
    discarded = client.list_discarded()
    if as_json:
        keys = ("id", "reason", "message", "location", "job_ids")
        json.dump([dict(zip(keys, row, strict=True)) for row in discarded], out, indent=2)
        out.write("\n")
        return
    _table([(i, reason, message + (f" ({', '.join(jobs)})" if jobs else ""))
            for i, reason, message, _loc, jobs in discarded], ("ID", "REASON", "MESSAGE"), out)


def _show(client: Client, session_id: str, as_json: bool, out: TextIO) -> None:
    properties = client.session_properties(session_id)
    if as_json:
        json.dump({snake_case(k): _json_value(v) for k, v in properties.items()}, out, indent=2)
        out.write("\n")
        return
    width = max(len(k) for k in properties)
    for key, value in properties.items():
        if isinstance(value, list):
            text = ", ".join(value)
        elif isinstance(value, dict):
            text = ", ".join(f"{k}={v}" for k, v in value.items())
        else:
            text = str(value)
        out.write(f"{key.rjust(width)}: {text or '-'}\n")


def _rescan(client: Client, _as_json: bool, out: TextIO) -> None:
    client.rescan()
    out.write("Rescan scheduled.\n")


def run(args: Any, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the remote command ``args.command``; return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    commands: dict[str, Callable[[Client], None]] = {
        "list": lambda c: _list(c, args.json, out),
        "discarded": lambda c: _discarded(c, args.json, out),
        "show": lambda c: _show(c, args.id, args.json, out),
        "rescan": lambda c: _rescan(c, args.json, out),
    }
    try:
        commands[args.command](Client(getattr(args, "address", None)))
    except RemoteError as exc:
        err.write(f"resumectl: {exc}\n")
        return exc.exit_code
    return EXIT_OK
