"""Session object paths are escaped exactly like systemd's ``sd_bus_path_encode``."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import pytest
from gi.repository import GLib
from hypothesis import given, settings
from hypothesis import strategies as st

from resumed.daemon.names import SESSION_PATH_PREFIX, encode_object_path, session_object_path

#: Outputs of sd_bus_path_encode("/p", id) (checked against libsystemd below).
KNOWN = [
    ("", "/p/_"),
    ("foo", "/p/foo"),
    ("Foo", "/p/Foo"),
    ("a-b", "/p/a_2db"),
    ("a_b", "/p/a_5fb"),
    ("1abc", "/p/_31abc"),
    ("a1", "/p/a1"),
    ("git-v11", "/p/git_2dv11"),
    ("foo.bar", "/p/foo_2ebar"),
    ("a b", "/p/a_20b"),
    ("ä", "/p/_c3_a4"),
    ("/", "/p/_2f"),
    ("_", "/p/_5f"),
]

#: Session ids as directory names can hold them: any text without NUL or lone surrogates.
SESSION_IDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                             blacklist_characters="\x00"))


def _libsystemd_encode() -> Callable[[str, str], str]:
    """``sd_bus_path_encode`` from libsystemd via ctypes, or skip when the library is absent."""
    name = _find_library("systemd")
    if name is None:
        pytest.skip("libsystemd is not installed")
    return _load_encoder(name)


@functools.cache
def _find_library(name: str) -> str | None:
    return ctypes.util.find_library(name)


@functools.cache
def _load_encoder(name: str) -> Callable[[str, str], str]:
    lib = ctypes.CDLL(name)
    libc = ctypes.CDLL(_find_library("c"))
    lib.sd_bus_path_encode.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.POINTER(ctypes.c_void_p)]
    lib.sd_bus_path_encode.restype = ctypes.c_int
    libc.free.argtypes = [ctypes.c_void_p]

    def encode(prefix: str, external_id: str) -> str:
        out = ctypes.c_void_p()
        status = lib.sd_bus_path_encode(prefix.encode(), external_id.encode("utf-8"),
                                        ctypes.byref(out))
        assert status >= 0, status
        try:
            return ctypes.string_at(out.value).decode("ascii")
        finally:
            libc.free(out.value)

    return encode


@pytest.mark.parametrize(("external_id", "path"), KNOWN)
def test_known_ids_encode_like_sd_bus_path_encode(external_id: str, path: str) -> None:
    assert encode_object_path("/p", external_id) == path
    assert GLib.Variant.is_object_path(path)


@pytest.mark.parametrize(("external_id", "path"), KNOWN)
def test_libsystemd_agrees_with_the_known_table(external_id: str, path: str) -> None:
    assert _libsystemd_encode()("/p", external_id) == path


@settings(max_examples=300, deadline=None)
@given(SESSION_IDS)
def test_any_session_id_encodes_like_libsystemd_to_a_valid_object_path(external_id: str) -> None:
    expected = _libsystemd_encode()(SESSION_PATH_PREFIX, external_id)
    path = session_object_path(external_id)
    assert path == expected
    assert GLib.Variant.is_object_path(path)


def test_different_ids_get_different_paths() -> None:
    ids = ["a-b", "a_2db", "a_b", "a.b", "1", "_31", ""]
    assert len({session_object_path(i) for i in ids}) == len(ids)
