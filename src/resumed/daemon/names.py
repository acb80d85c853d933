"""Every D-Bus name of resumed in one place: bus name, paths, interfaces, errors."""

from __future__ import annotations

from pathlib import Path

BUS_NAME = "org.resumed.Resume1"
ROOT_PATH = "/org/resumed/Resume1"
SESSION_PATH_PREFIX = ROOT_PATH + "/session"

MANAGER_INTERFACE = "org.resumed.Resume1.Manager"
SESSION_INTERFACE = "org.resumed.Resume1.Session"
OBJECT_MANAGER_INTERFACE = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"

ERROR_PREFIX = "org.resumed.Resume1.Error."

#: The interface XML shipped in the source tree; installed copies use the data path.
INTERFACE_XML_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "dbus" / "org.resumed.Resume1.xml",
    Path("/usr/share/dbus-1/interfaces/org.resumed.Resume1.xml"),
)


def error_name(name: str) -> str:
    """Return the full D-Bus error name for the short error ``name``."""
    return ERROR_PREFIX + name


def encode_object_path(prefix: str, external_id: str) -> str:
    """Return ``prefix/<label>`` with ``external_id`` escaped like ``sd_bus_path_encode``.

    Each byte of the UTF-8 encoding that is not an ASCII letter (or a digit
    past the first position) becomes ``_xx`` in lower-case hex; an empty id
    becomes ``_``.
    """
    if not external_id:
        return prefix + "/_"
    out = []
    for index, byte in enumerate(external_id.encode("utf-8", "surrogatepass")):
        char = chr(byte)
        if ("a" <= char <= "z") or ("A" <= char <= "Z") or (index > 0 and "0" <= char <= "9"):
            out.append(char)
        else:
            out.append(f"_{byte:02x}")
    return prefix + "/" + "".join(out)


def session_object_path(session_id: str) -> str:
    """Return the object path of the session ``session_id``."""
    return encode_object_path(SESSION_PATH_PREFIX, session_id)


def interface_xml_path() -> Path:
    """Return the path of the interface XML (source tree first, then the installed copy)."""
    for candidate in INTERFACE_XML_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("org.resumed.Resume1.xml not found in " + ", ".join(
        str(c) for c in INTERFACE_XML_CANDIDATES))
