"""The cached ``ListSessions``/``ListDiscarded`` replies never go stale.

The bus adapter keeps each reply until the published sessions change. Here a
real :class:`BusAdapter` owns the name on a private bus (its main loop runs in
a thread of the test process) and ``busctl`` reads the replies, after each
kind of change the registry can hand over: a session added, removed, moved,
its state, title or running job changed, a session discarded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from gi.repository import Gio, GLib

from resumed.daemon.bus import BusAdapter
from resumed.daemon.names import BUS_NAME, session_object_path
from resumed.registry import DiscardRecord, SessionRecord

TIMEOUT = 30.0


class _NoBackend:
    """A backend the listing calls never reach."""

    def request_rescan(self) -> None:
        """Nothing to rescan."""

    def job_results(self, session_id: str, job_id: str) -> list[dict[str, Any]]:
        """No results."""
        raise AssertionError(f"unexpected GetJobResults {session_id} {job_id}")


class AdapterThread:
    """A :class:`BusAdapter` owning the bus name, served by a main loop in a thread."""

    def __init__(self, address: str) -> None:
        """Connect, export and take the name inside the thread; wait until done."""
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.adapter: BusAdapter | None = None
        self._thread = threading.Thread(target=self._run, args=(address,), daemon=True)
        self._thread.start()
        assert self._started.wait(TIMEOUT), "adapter thread did not start"
        if self._error is not None:
            raise self._error

    def _run(self, address: str) -> None:
        self._context.push_thread_default()
        try:
            connection = Gio.DBusConnection.new_for_address_sync(
                address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
            self.adapter = BusAdapter(connection, _NoBackend())
            self.adapter.export()
            connection.call_sync(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "RequestName", GLib.Variant("(su)", (BUS_NAME, 4)), None,
                Gio.DBusCallFlags.NONE, -1, None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            self._error = exc
        self._started.set()
        if self._error is None:
            self._loop.run()
        self._context.pop_thread_default()

    def run(self, action: Callable[[BusAdapter], None]) -> None:
        """Run ``action(adapter)`` in the adapter's thread and wait for it."""
        done = threading.Event()
        errors: list[BaseException] = []

        def call() -> bool:
            try:
                assert self.adapter is not None
                action(self.adapter)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
            done.set()
            return GLib.SOURCE_REMOVE

        self._context.invoke_full(GLib.PRIORITY_DEFAULT, call)
        assert done.wait(TIMEOUT), "adapter thread did not run the action"
        if errors:
            raise errors[0]

    def publish(self, sessions: list[SessionRecord],
                discarded: list[DiscardRecord] | None = None) -> None:
        """Publish ``sessions`` (newest first) and ``discarded``."""
        self.run(lambda adapter: adapter.publish(sessions, discarded or []))

    def stop(self) -> None:
        """Unexport and stop the loop."""
        self.run(lambda adapter: adapter.unexport())
        self._loop.quit()
        self._thread.join(TIMEOUT)


@pytest.fixture
def adapter(private_bus: Any) -> Iterator[AdapterThread]:
    """A real adapter owning ``org.resumed.Resume1`` on the private bus."""
    served = AdapterThread(private_bus.address)
    yield served
    served.stop()


def _record(session_id: str, state: str = "dormant", **fields: Any) -> SessionRecord:
    return SessionRecord(id=session_id, location=f"/var/tmp/{session_id}", state=state,
                         title=f"title of {session_id}", app_id="checkbox-cli", **fields)


def _row(record: SessionRecord) -> list[str]:
    return [record.id, session_object_path(record.id), record.state, record.title,
            record.app_id, record.running_job]


def test_list_sessions_follows_sessions_added_moved_changed_and_removed(
        private_bus: Any, adapter: AdapterThread) -> None:
    """Each ListSessions after a change shows the change, never the earlier reply."""
    adapter.publish([])
    assert private_bus.list_sessions() == []

    first = _record("first")
    adapter.publish([first])
    assert private_bus.list_sessions() == [_row(first)]

    second = _record("second")
    adapter.publish([second, first])
    assert private_bus.list_sessions() == [_row(second), _row(first)]

    adapter.publish([first, second])
    assert private_bus.list_sessions() == [_row(first), _row(second)]

    resuming = replace(first, state="resuming")
    adapter.publish([resuming, second])
    assert private_bus.list_sessions() == [_row(resuming), _row(second)]

    running = replace(resuming, state="resumed", title="renamed",
                      running_job="com.example::job-2")
    adapter.publish([running, second])
    assert private_bus.list_sessions() == [_row(running), _row(second)]

    adapter.publish([second])
    assert private_bus.list_sessions() == [_row(second)]


def test_a_change_outside_the_row_keeps_list_sessions_and_shows_in_the_property(
        private_bus: Any, adapter: AdapterThread) -> None:
    """A count that is not in a ListSessions row changes the property, the rows stay right."""
    session = _record("counted", job_count=3, done_count=1)
    adapter.publish([session])
    assert private_bus.list_sessions() == [_row(session)]

    adapter.publish([replace(session, done_count=2)])
    assert private_bus.list_sessions() == [_row(session)]
    assert private_bus.get_property(session_object_path("counted"),
                                    "org.resumed.Resume1.Session", "DoneCount") == 2


def test_list_discarded_follows_sessions_discarded_and_readmitted(
        private_bus: Any, adapter: AdapterThread) -> None:
    """A discarded session appears in ListDiscarded and leaves it when it is listed again."""
    kept = _record("kept")
    broken = DiscardRecord("broken", "corrupted", "bad gzip", "/var/tmp/broken", ["job-1"])
    adapter.publish([kept], [broken])
    assert private_bus.list_discarded() == [
        ["broken", "corrupted", "bad gzip", "/var/tmp/broken", ["job-1"]]]
    assert private_bus.list_sessions() == [_row(kept)]

    fixed = _record("broken")
    adapter.publish([fixed, kept], [])
    assert private_bus.list_discarded() == []
    assert private_bus.list_sessions() == [_row(fixed), _row(kept)]


def test_a_step_of_a_big_publish_lists_new_sessions_at_once_and_the_final_publish_orders_them(
        private_bus: Any, adapter: AdapterThread) -> None:
    """``add_or_update`` shows new and changed sessions; ``Sessions`` waits for ``publish``."""
    old, gone = _record("old"), _record("gone")
    adapter.publish([old, gone])
    newer, renamed = _record("newer"), replace(old, title="renamed")
    adapter.run(lambda a: a.add_or_update([newer, renamed]))
    assert private_bus.list_sessions() == [_row(renamed), _row(gone), _row(newer)]
    paths = private_bus.get_property("/org/resumed/Resume1", "org.resumed.Resume1.Manager",
                                     "Sessions")
    assert paths == [session_object_path("old"), session_object_path("gone")]

    adapter.publish([newer, renamed])
    assert private_bus.list_sessions() == [_row(newer), _row(renamed)]
    paths = private_bus.get_property("/org/resumed/Resume1", "org.resumed.Resume1.Manager",
                                     "Sessions")
    assert paths == [session_object_path("newer"), session_object_path("old")]
