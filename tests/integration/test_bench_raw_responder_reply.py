"""The benchmark's raw-socket responder answers exactly what the Gio floor service answers.

``make bench`` compares the round trip of a pre-serialized ``ListSessions``
reply (``benchmarks.daemon.serve_raw``) with the Gio floor service's
(``serve_rows``): that comparison only means something if a libdbus client
gets the same valid reply from both.
"""

from __future__ import annotations

import importlib
from typing import Any

import dbus.bus
from gi.repository import Gio, GLib

FLOOR = "org.resumed.BenchFloor"


def _daemon() -> Any:
    return importlib.import_module("benchmarks.daemon")


def test_raw_responder_reply_equals_the_gio_service_reply() -> None:
    """ListSessions from both: same signature, same 1,000 rows, call after call."""
    daemon = _daemon()
    with daemon.private_bus() as address, daemon.floor_service(address, 1000), \
            daemon.raw_floor_service(address, 1000):
        conn = dbus.bus.BusConnection(address)
        try:
            gio = daemon.raw_call(conn, FLOOR, "/", FLOOR, "ListSessions")
            raws = [daemon.raw_call(conn, FLOOR + "Raw", "/", FLOOR, "ListSessions")
                    for _ in range(3)]
        finally:
            conn.close()
    expected = gio.get_args_list()
    assert len(expected[0]) == 1000
    for raw in raws:
        assert raw.get_signature() == gio.get_signature() == "a(sossss)"
        assert raw.get_args_list() == expected


def test_messages_split_or_coalesced_across_reads_are_each_parsed() -> None:
    """Two calls arriving in 7-byte pieces, or in one read, come out as the two calls."""
    daemon = _daemon()
    blobs = []
    for serial, member in ((7, "ListSessions"), (8, "Ping")):
        message = Gio.DBusMessage.new_method_call(FLOOR, "/", FLOOR, member)
        message.set_serial(serial)
        message.set_sender(":1.42")
        message.set_body(GLib.Variant("(su)", ("x" * serial, serial)))
        blobs.append(bytes(message.to_blob(Gio.DBusCapabilityFlags.NONE)))
    stream = b"".join(blobs)
    for size in (7, len(stream)):
        buffer = bytearray()
        parsed = []
        for start in range(0, len(stream), size):
            buffer += stream[start:start + size]
            parsed += daemon.split_messages(buffer)
        assert buffer == b""
        assert [(m.serial, m.fields[3], m.fields[7], m.fields[8]) for m in parsed] == [
            (7, "ListSessions", ":1.42", "su"), (8, "Ping", ":1.42", "su")]
        assert [m.body for m in parsed] == [blob[-len(m.body):] for blob, m in zip(
            blobs, parsed, strict=True)]
        assert parsed[1].body[4:12] == b"x" * 8


def test_wire_message_is_read_back_by_gdbus() -> None:
    """A reply header built by the responder, with the cached body, is a valid message."""
    daemon = _daemon()
    body = daemon.reply_body(2)
    blob = daemon.wire_message(2, 5, [(5, "u", 9), (6, "s", ":1.7"), (8, "g", "a(sossss)")],
                               body)
    message = Gio.DBusMessage.new_from_blob(blob, Gio.DBusCapabilityFlags.NONE)
    assert message.get_message_type() == Gio.DBusMessageType.METHOD_RETURN
    assert (message.get_serial(), message.get_reply_serial(), message.get_destination()) == (
        5, 9, ":1.7")
    assert message.get_body().equal(daemon.floor_reply(2))
