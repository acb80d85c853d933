"""The D-Bus adapter: exports the manager and session objects, converts types, forwards.

Objects are registered through the Gio connection directly (not pydbus's
``publish``) so that every failed call is answered with a name from
:mod:`resumed.daemon.errors` and no traceback. The interfaces come from
``dbus/org.resumed.Resume1.xml``.

Publishing is incremental: a record the registry hands over again (the same
object) costs nothing, a changed one rebuilds only its own ``ListSessions`` row
and the properties that changed. The ``ListSessions`` reply is assembled from
the rows in C (``GLib.Variant.new_array``) at the first call after a change, so
it costs about the same whatever the daemon is doing; see :func:`_array_reply`
for why it stays a tree of the row variants. Session properties are
converted on demand (``Get``/``GetAll``) rather than kept as variants, which
keeps the daemon small with many resumed sessions.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gi.repository import Gio, GLib

from resumed import __version__
from resumed.daemon import names
from resumed.daemon.errors import AccessDeniedError, dbus_error_for
from resumed.registry import DiscardRecord, NoSuchSessionError, SessionRecord

logger = logging.getLogger(__name__)

#: Session property name -> (SessionRecord attribute, D-Bus signature).
SESSION_PROPERTIES: dict[str, tuple[str, str]] = {
    "Id": ("id", "s"),
    "Title": ("title", "s"),
    "AppId": ("app_id", "s"),
    "Flags": ("flags", "as"),
    "FormatVersion": ("format_version", "u"),
    "State": ("state", "s"),
    "Location": ("location", "s"),
    "RunningJob": ("running_job", "s"),
    "LastJobStartTime": ("last_job_start_time", "d"),
    "RemainingTodoJobs": ("remaining_todo_jobs", "b"),
    "InterruptedJobOutcome": ("interrupted_job_outcome", "s"),
    "SettleError": ("settle_error", "s"),
    "DesiredJobs": ("desired_jobs", "as"),
    "MandatoryJobs": ("mandatory_jobs", "as"),
    "RunList": ("run_list", "as"),
    "DiscardedJobs": ("discarded_jobs", "as"),
    "JobCount": ("job_count", "u"),
    "DoneCount": ("done_count", "u"),
    "Outcomes": ("outcomes", "a{ss}"),
}

#: GetJobResults keys -> D-Bus signature (a key whose value is None is omitted).
JOB_RESULT_TYPES: dict[str, str] = {
    "outcome": "s",
    "comments": "s",
    "return_code": "x",
    "execution_duration": "d",
    "io_log_records": "u",
}

ROOT_UID = 0


class Backend(Protocol):
    """What the adapter forwards to (implemented by the composition root)."""

    def request_rescan(self) -> None:
        """Schedule a full rescan and return at once."""

    def job_results(self, session_id: str, job_id: str) -> list[dict[str, Any]]:
        """Return a job's result history (raises the registry's errors)."""


def _plain(value: Any, signature: str) -> Any:
    """Return ``value`` in the Python shape GLib.Variant wants for ``signature``."""
    if signature == "s":
        return "" if value is None else str(value)
    if signature == "as":
        items = sorted(value) if isinstance(value, set | frozenset) else list(value or ())
        return [str(item) for item in items]
    if signature == "a{ss}":
        return {str(k): str(v) for k, v in dict(value or {}).items()}
    if signature == "b":
        return bool(value)
    if signature == "d":
        return float(value or 0.0)
    return int(value or 0)


_STRING_DICT = GLib.VariantType.new("a{ss}")


def _string_dict(value: dict[str, str]) -> GLib.Variant:
    """``a{ss}`` from a dict of clean strings, parsed in C from its JSON text.

    A JSON object of strings is also GVariant text (same quotes and escapes);
    building the variant through PyGObject costs about ten times more, which
    adds up for the ``Outcomes`` of big sessions.
    """
    try:
        return GLib.Variant.parse(_STRING_DICT, json.dumps(value, ensure_ascii=False), None, None)
    except GLib.Error:
        return GLib.Variant("a{ss}", value)


#: The C constructors of the signatures properties and results use (PyGObject's
#: generic ``GLib.Variant(signature, value)`` costs ten to twenty times more).
_CONSTRUCTORS: dict[str, Callable[[Any], GLib.Variant]] = {
    "s": GLib.Variant.new_string,
    "as": GLib.Variant.new_strv,
    "a{ss}": _string_dict,
    "b": GLib.Variant.new_boolean,
    "d": GLib.Variant.new_double,
    "u": GLib.Variant.new_uint32,
    "x": GLib.Variant.new_int64,
}


def to_variant(value: Any, signature: str) -> GLib.Variant:
    """``value`` as a variant of ``signature`` (D-Bus-safe values, see :func:`_plain`)."""
    plain = _plain(value, signature)
    constructor = _CONSTRUCTORS.get(signature)
    return GLib.Variant(signature, plain) if constructor is None else constructor(plain)


def session_properties(record: SessionRecord,
                       names: Iterable[str] | None = None) -> dict[str, GLib.Variant]:
    """Return the Session properties ``names`` (default: all) of ``record`` as variants."""
    wanted = SESSION_PROPERTIES if names is None else names
    result = {}
    for name in wanted:
        attribute, signature = SESSION_PROPERTIES[name]
        result[name] = to_variant(getattr(record, attribute), signature)
    return result


def changed_properties(old: SessionRecord, new: SessionRecord) -> list[str]:
    """The names of the Session properties whose values differ between two records."""
    return [name for name, (attribute, _) in SESSION_PROPERTIES.items()
            if getattr(old, attribute) != getattr(new, attribute)]


_ROW_TYPE = GLib.VariantType.new("(sossss)")
_DISCARDED_ROW_TYPE = GLib.VariantType.new("(ssssas)")


def _row_fields(record: SessionRecord, path: str) -> tuple[str, ...]:
    """The fields of a ``ListSessions`` row."""
    return (_plain(record.id, "s"), path, _plain(record.state, "s"), _plain(record.title, "s"),
            _plain(record.app_id, "s"), _plain(record.running_job, "s"))


@functools.lru_cache(maxsize=256)
def _shared_string(text: str) -> GLib.Variant:
    """One ``s`` variant per text, shared by every row that shows it.

    A row's state, title and app id take few values; sharing their (immutable)
    variants leaves fewer scattered nodes for GDBus to visit at every
    ``ListSessions`` reply (about 10 % of the reply's cost in a big heap).
    """
    return GLib.Variant.new_string(text)


def _row(fields: tuple[str, ...]) -> GLib.Variant:
    """The ``(sossss)`` row variant of ``fields`` (built with the C constructors)."""
    session_id, path, state, title, app_id, running_job = fields
    return GLib.Variant.new_tuple(
        GLib.Variant.new_string(session_id), GLib.Variant.new_object_path(path),
        _shared_string(state), _shared_string(title), _shared_string(app_id),
        GLib.Variant.new_string(running_job))


def _array_reply(row_type: GLib.VariantType, rows: Sequence[GLib.Variant]) -> GLib.Variant:
    """``(a<row_type>)`` from prebuilt row variants, assembled in C and kept a tree.

    GDBus converts a reply to the D-Bus wire format value by value at every
    call (the GVariant serialization is never copied), and it walks a tree of
    children about 1.7 times faster than a serialized variant (1,000
    ``ListSessions`` rows: 1.8 ms against 3.1 ms, GLib 2.74). Anything that asks
    a tree for its bytes (``get_data``, ``equal``, ``print``) serializes it in
    place, so the cached replies are only ever handed to GDBus.
    """
    return GLib.Variant.new_tuple(GLib.Variant.new_array(row_type, list(rows)))


_VARDICT_ENTRY = GLib.VariantType.new("{sv}")
_VARDICT = GLib.VariantType.new("a{sv}")
_INTERFACES_ENTRY = GLib.VariantType.new("{sa{sv}}")
_MANAGED_ENTRY = GLib.VariantType.new("{oa{sa{sv}}}")


def vardict(values: dict[str, GLib.Variant]) -> GLib.Variant:
    """``a{sv}`` of ready variants, built with the C constructors."""
    string, boxed = GLib.Variant.new_string, GLib.Variant.new_variant
    return GLib.Variant.new_array(_VARDICT_ENTRY, [
        GLib.Variant.new_dict_entry(string(key), boxed(value)) for key, value in values.items()])


#: Session properties that differ from session to session: never shared.
_OWN_PROPERTIES = frozenset({"Id", "Location", "LastJobStartTime"})
#: Lists up to this long are shared between sessions (flags, short job lists).
_SHARED_LIST_LENGTH = 8
#: Marks a property a session does not share, in the key of :func:`_shared_entries`.
_OWN = object()


def _property_entry(name: str, signature: str, value: Any) -> GLib.Variant:
    """The ``{sv}`` entry of one property."""
    return GLib.Variant.new_dict_entry(
        _shared_string(name), GLib.Variant.new_variant(to_variant(value, signature)))


@functools.lru_cache(maxsize=4096)
def _shared_property_entry(name: str, signature: str, value: Any) -> GLib.Variant:
    """One immutable ``{sv}`` entry per property value, shared by every session that has it."""
    return _property_entry(name, signature, value)


@functools.lru_cache(maxsize=1024)
def _shared_entries(values: tuple[Any, ...]) -> tuple[GLib.Variant | None, ...]:
    """The shared entries of sessions whose shareable property values are ``values``."""
    return tuple(
        None if value is _OWN else _shared_property_entry(name, signature, value)
        for (name, (_, signature)), value in zip(SESSION_PROPERTIES.items(), values, strict=True))


def _shareable(value: Any, signature: str) -> Any:
    """``value`` as a key of the shared entries, or :data:`_OWN` when not worth sharing."""
    if isinstance(value, list | set | frozenset | dict):
        if len(value) > _SHARED_LIST_LENGTH or (value and isinstance(value, dict)):
            return _OWN
        return tuple(_plain(value, signature))
    return value


def session_interfaces_variant(record: SessionRecord) -> GLib.Variant:
    """``a{sa{sv}}`` of a session's properties (``InterfacesAdded``, ``GetManagedObjects``).

    Most entries (a state, a count, no run list yet) are the same in many
    sessions: those are built once and shared, because each variant PyGObject
    wraps costs microseconds, and 100,000 sessions announced one by one keep the
    main loop busy for all of them (about 40 µs a session instead of 350).
    """
    values = []
    own = []
    for index, (name, (attribute, signature)) in enumerate(SESSION_PROPERTIES.items()):
        value = getattr(record, attribute)
        key = _OWN if name in _OWN_PROPERTIES else _shareable(value, signature)
        if key is _OWN:
            own.append((index, _property_entry(name, signature, value)))
        values.append(key)
    entries = list(_shared_entries(tuple(values)))
    for index, entry in own:
        entries[index] = entry
    return GLib.Variant.new_array(_INTERFACES_ENTRY, [GLib.Variant.new_dict_entry(
        _shared_string(names.SESSION_INTERFACE), GLib.Variant.new_array(_VARDICT_ENTRY, entries))])


def job_results_variant(results: Iterable[dict[str, Any]]) -> GLib.Variant:
    """Return the ``(aa{sv})`` reply of GetJobResults."""
    history = [
        vardict({key: to_variant(entry[key], signature)
                 for key, signature in JOB_RESULT_TYPES.items() if entry.get(key) is not None})
        for entry in results
    ]
    return GLib.Variant.new_tuple(GLib.Variant.new_array(_VARDICT, history))


@dataclass
class _Published:
    """One exported session: its record, its ``ListSessions`` row and registration id."""

    record: SessionRecord
    path: str
    row_fields: tuple[str, ...]
    row: GLib.Variant
    registration: int


class PublishedRecords(Mapping[str, SessionRecord]):
    """The records of the exported sessions, by session id (a read-only view)."""

    def __init__(self, sessions: dict[str, _Published]) -> None:
        self._sessions = sessions

    def __getitem__(self, session_id: str) -> SessionRecord:
        return self._sessions[session_id].record

    def __iter__(self) -> Iterator[str]:
        return iter(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)


class BusAdapter:
    """Exports ``/org/resumed/Resume1`` and one object per published session."""

    def __init__(self, connection: Gio.DBusConnection, backend: Backend,
                 xml_path: Path | None = None) -> None:
        """Load the interface XML; nothing is exported until :meth:`export`."""
        text = (xml_path or names.interface_xml_path()).read_text(encoding="utf-8")
        node = Gio.DBusNodeInfo.new_for_xml(text)
        self._manager_info = node.lookup_interface(names.MANAGER_INTERFACE)
        self._object_manager_info = node.lookup_interface(names.OBJECT_MANAGER_INTERFACE)
        self._session_info = node.lookup_interface(names.SESSION_INTERFACE)
        self._connection = connection
        self._backend = backend
        self._root_registrations: list[int] = []
        self._sessions: dict[str, _Published] = {}
        self._discarded: list[DiscardRecord] = []
        self._manager: dict[str, GLib.Variant] = {
            "Version": GLib.Variant("s", __version__),
            "State": GLib.Variant("s", "starting"),
            "SessionRoots": GLib.Variant("as", []),
            "ProviderDirs": GLib.Variant("as", []),
            "Sessions": GLib.Variant("ao", []),
            "DiscardedCount": GLib.Variant("u", 0),
        }
        self._order: list[str] = []
        self._list_sessions_reply: GLib.Variant | None = None
        self._list_discarded_reply = GLib.Variant("(a(ssssas))", ([],))

    # -- export --------------------------------------------------------------

    def export(self) -> None:
        """Register the root object (call before requesting the bus name)."""
        for info in (self._manager_info, self._object_manager_info):
            self._root_registrations.append(self._connection.register_object(
                names.ROOT_PATH, info, self._on_root_call, None, None))

    def unexport(self) -> None:
        """Unregister every object."""
        for published in self._sessions.values():
            self._connection.unregister_object(published.registration)
        self._sessions.clear()
        for registration in self._root_registrations:
            self._connection.unregister_object(registration)
        self._root_registrations.clear()

    @property
    def records(self) -> PublishedRecords:
        """The records of the sessions exported now (a live view)."""
        return PublishedRecords(self._sessions)

    # -- manager properties --------------------------------------------------

    def set_state(self, state: str) -> None:
        """Publish the Manager's ``State``."""
        self._set_manager_properties({"State": GLib.Variant("s", state)})

    @property
    def state(self) -> str:
        """The published Manager ``State``."""
        return str(self._manager["State"].unpack())

    def set_configuration(self, session_roots: Sequence[Path],
                          provider_dirs: Sequence[Path]) -> None:
        """Publish ``SessionRoots`` and ``ProviderDirs``."""
        self._set_manager_properties({
            "SessionRoots": GLib.Variant("as", [str(p) for p in session_roots]),
            "ProviderDirs": GLib.Variant("as", [str(p) for p in provider_dirs]),
        })

    def _set_manager_properties(self, values: dict[str, GLib.Variant]) -> None:
        """Store ``values`` and emit PropertiesChanged for those that changed."""
        changed = {k: v for k, v in values.items() if not self._manager[k].equal(v)}
        if not changed:
            return
        self._manager.update(changed)
        self._emit_properties_changed(names.ROOT_PATH, names.MANAGER_INTERFACE, changed)

    # -- publishing what the registry says ----------------------------------

    def publish(self, sessions: Sequence[SessionRecord],
                discarded: Sequence[DiscardRecord], announce: bool = True) -> None:
        """Make the exported objects match ``sessions`` and ``discarded`` (newest first).

        Emits SessionRemoved/InterfacesRemoved, SessionAdded/InterfacesAdded,
        PropertiesChanged and SessionDiscarded for what differs from before
        (``announce=False``: no SessionAdded/InterfacesAdded, for the objects
        exported before the bus name is taken).
        """
        wanted = {record.id: record for record in sessions}
        rows_changed = False
        for session_id in [sid for sid in self._sessions if sid not in wanted]:
            self._remove_session(session_id)
            rows_changed = True
        for record in sessions:
            published = self._sessions.get(record.id)
            if published is None:
                self._add_session(record, announce)
                rows_changed = True
            elif published.record is not record:
                rows_changed |= self._update_session(published, record)
        order = [record.id for record in sessions]
        if rows_changed or order != self._order:
            self._list_sessions_reply = None  # assembled again at the next ListSessions
        if order != self._order:
            self._order = order
            self._set_manager_properties({
                "Sessions": GLib.Variant.new_objv([self._sessions[sid].path for sid in order])})
        if list(discarded) != self._discarded:
            self._publish_discarded(list(discarded))

    def add_or_update(self, sessions: Sequence[SessionRecord]) -> None:
        """Export new ``sessions``, update changed ones, nothing else (a step of a big publish).

        Costs what ``sessions`` hold, not what is published: new sessions are
        announced and go to the end of the ``ListSessions`` order; removals,
        the final order and the ``Sessions`` property wait for :meth:`publish`.
        """
        rows_changed = False
        for record in sessions:
            published = self._sessions.get(record.id)
            if published is None:
                self._add_session(record)
                self._order.append(record.id)
                rows_changed = True
            elif published.record is not record:
                rows_changed |= self._update_session(published, record)
        if rows_changed:
            self._list_sessions_reply = None

    def _publish_discarded(self, discarded: list[DiscardRecord]) -> None:
        """Announce new discard entries and rebuild the ``ListDiscarded`` reply."""
        old_discarded = {(d.id, d.reason) for d in self._discarded}
        self._discarded = discarded
        for entry in discarded:
            if (entry.id, entry.reason) not in old_discarded:
                self._emit_manager_signal("SessionDiscarded", GLib.Variant(
                    "(sss)", (_plain(entry.id, "s"), _plain(entry.reason, "s"),
                              _plain(entry.message, "s"))))
        self._list_discarded_reply = _array_reply(_DISCARDED_ROW_TYPE, [
            GLib.Variant("(ssssas)", (
                _plain(d.id, "s"), _plain(d.reason, "s"), _plain(d.message, "s"),
                _plain(d.location, "s"), _plain(d.job_ids, "as")))
            for d in discarded])
        self._set_manager_properties({"DiscardedCount": GLib.Variant("u", len(discarded))})

    def _list_sessions(self) -> GLib.Variant:
        """Answer ListSessions (the reply is assembled once per change)."""
        if self._list_sessions_reply is None:
            self._list_sessions_reply = _array_reply(
                _ROW_TYPE, [self._sessions[sid].row for sid in self._order])
        return self._list_sessions_reply

    def _add_session(self, record: SessionRecord, announce: bool = True) -> None:
        """Export a new session object and (``announce``) announce it."""
        path = names.session_object_path(record.id)
        session_id = record.id
        registration = self._connection.register_object(
            path, self._session_info,
            lambda *args: self._on_session_call(session_id, *args), None, None)
        fields = _row_fields(record, path)
        published = _Published(record, path, fields, _row(fields), registration)
        self._sessions[record.id] = published
        if not announce:
            return
        self._emit(names.ROOT_PATH, names.OBJECT_MANAGER_INTERFACE, "InterfacesAdded",
                   GLib.Variant.new_tuple(GLib.Variant.new_object_path(path),
                                          session_interfaces_variant(record)))
        self._emit_manager_signal("SessionAdded", GLib.Variant.new_tuple(
            GLib.Variant.new_string(record.id), GLib.Variant.new_object_path(path)))

    def _update_session(self, published: _Published, record: SessionRecord) -> bool:
        """Store a changed record, emit PropertiesChanged for what changed.

        Returns whether the session's ``ListSessions`` row changed.
        """
        changed = changed_properties(published.record, record)
        published.record = record
        if changed:
            self._emit_properties_changed(published.path, names.SESSION_INTERFACE,
                                          session_properties(record, changed))
        fields = _row_fields(record, published.path)
        if fields == published.row_fields:
            return False
        published.row_fields = fields
        published.row = _row(fields)
        return True

    def _remove_session(self, session_id: str) -> None:
        """Unexport a session object and announce it."""
        published = self._sessions.pop(session_id)
        self._connection.unregister_object(published.registration)
        self._emit(names.ROOT_PATH, names.OBJECT_MANAGER_INTERFACE, "InterfacesRemoved",
                   GLib.Variant("(oas)", (published.path, [names.SESSION_INTERFACE])))
        self._emit_manager_signal("SessionRemoved",
                                  GLib.Variant("(so)", (session_id, published.path)))

    # -- signals -------------------------------------------------------------

    def _emit(self, path: str, interface: str, member: str, args: GLib.Variant) -> None:
        """Emit one signal; a closed connection is logged, not raised."""
        try:
            self._connection.emit_signal(None, path, interface, member, args)
        except GLib.Error as exc:
            logger.warning("Cannot emit %s.%s: %s", interface, member, exc.message)

    def _emit_manager_signal(self, member: str, args: GLib.Variant) -> None:
        """Emit a Manager signal from the root object."""
        self._emit(names.ROOT_PATH, names.MANAGER_INTERFACE, member, args)

    def _emit_properties_changed(self, path: str, interface: str,
                                 changed: dict[str, GLib.Variant]) -> None:
        """Emit org.freedesktop.DBus.Properties.PropertiesChanged."""
        self._emit(path, names.PROPERTIES_INTERFACE, "PropertiesChanged",
                   GLib.Variant.new_tuple(GLib.Variant.new_string(interface), vardict(changed),
                                          GLib.Variant.new_strv([])))

    # -- calls ---------------------------------------------------------------

    def _answer(self, invocation: Gio.DBusMethodInvocation, method: str,
                handler: Callable[[], GLib.Variant | None]) -> None:
        """Run ``handler`` and answer ``invocation`` with its value or a mapped error."""
        try:
            reply = handler()
        except Exception as exc:  # noqa: BLE001 - mapped; unknown ones become Internal
            name, message = dbus_error_for(exc, method)
            invocation.return_dbus_error(name, message)
            return
        invocation.return_value(reply)

    def _on_root_call(self, _connection: Gio.DBusConnection, sender: str, _path: str,
                      interface: str, method: str, parameters: GLib.Variant,
                      invocation: Gio.DBusMethodInvocation) -> None:
        """Dispatch a call on the root object."""
        manager = names.MANAGER_INTERFACE
        handlers: dict[tuple[str, str], Callable[[], GLib.Variant | None]] = {
            (manager, "ListSessions"): self._list_sessions,
            (manager, "ListDiscarded"): lambda: self._list_discarded_reply,
            (manager, "GetSession"): lambda: self._get_session(*parameters.unpack()),
            (manager, "Rescan"): lambda: self._rescan(sender),
            (names.OBJECT_MANAGER_INTERFACE, "GetManagedObjects"): self._managed_objects,
            (names.PROPERTIES_INTERFACE, "Get"): lambda: self._get(self._manager, parameters),
            (names.PROPERTIES_INTERFACE, "GetAll"):
                lambda: self._get_all(self._manager, parameters),
        }
        self._dispatch(handlers, interface, method, invocation)

    def _on_session_call(self, session_id: str, _connection: Gio.DBusConnection, _sender: str,
                         _path: str, interface: str, method: str, parameters: GLib.Variant,
                         invocation: Gio.DBusMethodInvocation) -> None:
        """Dispatch a call on a session object."""
        def record() -> SessionRecord:
            published = self._sessions.get(session_id)
            if published is None:
                raise NoSuchSessionError(session_id)
            return published.record

        def get() -> GLib.Variant:
            _interface, name = parameters.unpack()
            return self._get(session_properties(record(), [name]), parameters)

        handlers: dict[tuple[str, str], Callable[[], GLib.Variant | None]] = {
            (names.SESSION_INTERFACE, "GetJobResults"): lambda: job_results_variant(
                self._backend.job_results(session_id, *parameters.unpack())),
            (names.PROPERTIES_INTERFACE, "Get"): get,
            (names.PROPERTIES_INTERFACE, "GetAll"):
                lambda: self._get_all(session_properties(record()), parameters),
        }
        self._dispatch(handlers, interface, method, invocation)

    def _dispatch(self, handlers: dict[tuple[str, str], Callable[[], GLib.Variant | None]],
                  interface: str, method: str, invocation: Gio.DBusMethodInvocation) -> None:
        """Answer ``interface.method`` with its handler, or UnknownMethod."""
        handler = handlers.get((interface, method))
        if handler is None:
            invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod",
                                         f"Unknown method {interface}.{method}")
            return
        self._answer(invocation, f"{interface}.{method}", handler)

    @staticmethod
    def _get(values: dict[str, GLib.Variant], parameters: GLib.Variant) -> GLib.Variant:
        """Answer Properties.Get from ``values``."""
        _interface, name = parameters.unpack()
        return GLib.Variant("(v)", (values[name],))

    @staticmethod
    def _get_all(values: dict[str, GLib.Variant], _parameters: GLib.Variant) -> GLib.Variant:
        """Answer Properties.GetAll from ``values``."""
        return GLib.Variant.new_tuple(vardict(values))

    def _get_session(self, session_id: str) -> GLib.Variant:
        """Answer GetSession."""
        published = self._sessions.get(session_id)
        if published is None:
            raise NoSuchSessionError(f"No session {session_id!r}")
        return GLib.Variant("(o)", (published.path,))

    def _managed_objects(self) -> GLib.Variant:
        """Answer ObjectManager.GetManagedObjects."""
        return GLib.Variant.new_tuple(GLib.Variant.new_array(
            _MANAGED_ENTRY, [
                GLib.Variant.new_dict_entry(
                    GLib.Variant.new_object_path(p.path),
                    session_interfaces_variant(p.record))
                for p in self._sessions.values()]))

    def _rescan(self, sender: str) -> None:
        """Answer Rescan: root only, checked on the caller's uid."""
        reply = self._connection.call_sync(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            "GetConnectionUnixUser", GLib.Variant("(s)", (sender,)),
            GLib.VariantType.new("(u)"), Gio.DBusCallFlags.NONE, 5000, None)
        (uid,) = reply.unpack()
        if uid != ROOT_UID:
            raise AccessDeniedError("Only root may rescan")
        self._backend.request_rescan()
