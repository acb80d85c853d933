"""Finding providers and their unit files; unsafe and broken files are skipped (§1)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from resumed.providers.errors import ProviderDefinitionError
from resumed.providers.loader import (
    default_provider_dirs,
    is_builtin_namespace,
    load_provider,
    load_providers,
)
from resumed.providers.units import JobDefinition, TemplateUnit


def _provider(root: Path, name: str, body: str, fname: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / (fname or f"{name.replace(':', '_')}.provider")
    path.write_text(f"[PlainBox Provider]\nname = {name}\nversion = 1.0\n{body}")
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _private_umask() -> object:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_two_providers_load_in_sorted_path_order_with_their_namespaces(tmp_path: Path) -> None:
    """Providers from two dirs are loaded sorted by full path; namespace rules apply."""
    p1, p2 = tmp_path / "z", tmp_path / "a"
    _write(p1 / "loc1/units/u.pxu", "id: one\nplugin: shell\ncommand: true\n")
    _write(p2 / "loc2/units/u.pxu", "id: two\nplugin: shell\ncommand: true\n")
    _provider(p1, "com.example:p1", f"location = {p1 / 'loc1'}\n")
    _provider(p2, "2013.com.example:p2", f"location = {p2 / 'loc2'}\nnamespace = ex\n")
    result = load_providers([p1, p2])
    assert [p.name for p in result.providers] == ["2013.com.example:p2", "com.example:p1"]
    assert [u.id for u in result.units] == ["ex::two", "com.example::one"]
    assert result.warnings == []
    assert all(isinstance(u, JobDefinition) for u in result.units)
    assert set(result.unit_files) >= {p1 / "loc1/units/u.pxu", p2 / "loc2/units/u.pxu"}
    st = (p1 / "loc1/units/u.pxu").stat()
    assert result.unit_files[p1 / "loc1/units/u.pxu"] == (st.st_mtime_ns, st.st_size)


def test_unit_files_are_found_like_plainbox(tmp_path: Path) -> None:
    """The reference's §1.7 example: which files load, in which order."""
    loc = tmp_path / "p1"
    for rel in ("units/a.pxu", "units/b.txt", "units/c.txt.in", "units/.hidden.pxu",
                "units/sub/d.pxu", "units2/e.pxu", "jobs/f.in", "jobs/g.txt", "jobs/h.pxu",
                "data/x.pxu"):
        _write(loc / rel, f"id: {rel}\n")
    _write(loc / "units/y.yaml", "id: units/y.yaml\n")
    _write(loc / "jobs/i.yaml", "id: jobs/i.yaml\n")
    _write(loc / "units/z-bad.pxu", "id: good\n\nnot a key\n")
    _write(loc / "units/z-bad2.pxu", "unit: nonsense\nid: x\n")
    _provider(tmp_path, "2013.com.example:p1", f"location = {loc}\n")
    result = load_providers([tmp_path])
    assert [u.partial_id for u in result.units] == [
        "jobs/f.in", "jobs/g.txt", "jobs/h.pxu", "jobs/i.yaml", "units/.hidden.pxu",
        "units/a.pxu", "units/b.txt", "units/sub/d.pxu", "units/y.yaml", "units2/e.pxu",
    ]
    assert len(result.providers[0].problems) == 2
    assert all("z-bad" in w for w in result.warnings)


def test_bad_unit_file_is_skipped_with_a_warning_and_others_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-UTF-8 file and a syntax error skip only their own file."""
    loc = tmp_path / "loc"
    (loc / "units").mkdir(parents=True)
    (loc / "units/a.pxu").write_bytes(b"id: \xff\n")
    _write(loc / "units/b.pxu", "id: b\n\n continuation\n")
    _write(loc / "units/c.pxu", "id: c\n")
    _provider(tmp_path, "com.example:p", f"location = {loc}\n")
    with caplog.at_level(logging.WARNING):
        result = load_providers([tmp_path])
    assert [u.partial_id for u in result.units] == ["c"]
    assert len(result.warnings) == 2
    assert "a.pxu" in caplog.text
    assert "b.pxu" in caplog.text


@pytest.mark.parametrize(
    "body",
    ["location = relative\n", "location = /nonexistent/x\n", "namespace =\n",
     "relocatable = maybe\n", "units_dir = /nonexistent\n", "description = 100%\n",
     "name = dup\n"],
)
def test_bad_provider_definition_is_skipped_and_the_next_one_loads(
    tmp_path: Path, body: str
) -> None:
    """Every broken `.provider` is one warning; it never stops the scan."""
    _provider(tmp_path, "com.example:bad", body, "a.provider")
    _write(tmp_path / "ok/units/u.pxu", "id: ok\n")
    _provider(tmp_path, "com.example:ok", f"location = {tmp_path / 'ok'}\n", "b.provider")
    result = load_providers([tmp_path])
    assert [p.name for p in result.providers] == ["com.example:ok"]
    assert len(result.warnings) == 1
    assert "a.provider" in result.warnings[0]


@pytest.mark.parametrize("name", ["shortname", "Upper:case", "com.example:weird!!x"])
def test_provider_names_follow_plainbox_validation(tmp_path: Path, name: str) -> None:
    """A short name needs a namespace; an IQN-looking prefix passes the loose regex."""
    path = _provider(tmp_path, name, "")
    if name == "com.example:weird!!x":
        with pytest.raises(ProviderDefinitionError):  # validate_whole wants a full IQN
            load_provider(path)
        assert load_provider(_provider(tmp_path, name, "namespace = w\n")).namespace == "w"
    else:
        with pytest.raises(ProviderDefinitionError):
            load_provider(path)


def test_relocatable_provider_uses_its_own_directory(tmp_path: Path) -> None:
    """`relocatable = yes`: location is the `.provider` file's directory."""
    _write(tmp_path / "units/u.pxu", "id: r\n")
    provider = load_provider(_provider(tmp_path, "com.example:r", "relocatable = yes\n"))
    assert provider.location == tmp_path
    assert provider.units_dir == tmp_path / "units"


def test_explicit_units_dir_outside_location_is_never_read(tmp_path: Path) -> None:
    """PlainBox walks only `location` when it is set."""
    _write(tmp_path / "ext/u.pxu", "id: ext\n")
    (tmp_path / "p2").mkdir()
    _provider(tmp_path / "defs", "com.example:p2",
              f"location = {tmp_path / 'p2'}\nunits_dir = {tmp_path / 'ext'}\n")
    assert load_providers([tmp_path / "defs"]).units == []


def test_world_writable_provider_file_dir_or_units_dir_is_skipped(tmp_path: Path) -> None:
    """Files and directories writable by group or others are never loaded."""
    safe, shared = tmp_path / "safe", tmp_path / "shared"
    _write(tmp_path / "l1/units/u.pxu", "id: one\n")
    _write(tmp_path / "l2/units/u.pxu", "id: two\n")
    _write(tmp_path / "l3/units/u.pxu", "id: three\n")
    _write(tmp_path / "l4/units/u.pxu", "id: four\n")
    writable_file = _provider(safe, "com.example:p1", f"location = {tmp_path / 'l1'}\n")
    writable_file.chmod(0o666)
    _provider(shared, "com.example:p2", f"location = {tmp_path / 'l2'}\n")
    shared.chmod(0o1777)
    _provider(safe, "com.example:p3", f"location = {tmp_path / 'l3'}\n")
    (tmp_path / "l3/units").chmod(0o775)
    _provider(safe, "com.example:p4", f"location = {tmp_path / 'l4'}\n")
    (tmp_path / "l4/units/u.pxu").chmod(0o646)
    result = load_providers([safe, shared])
    assert [p.name for p in result.providers] == ["com.example:p3", "com.example:p4"]
    assert result.units == []
    assert len(result.warnings) == 4
    assert all("writable by group or others" in w for w in result.warnings)


def test_yaml_and_templates_load_from_a_units_dir(tmp_path: Path) -> None:
    """YAML unit files load next to pxu; templates are units; other types are ignored."""
    _write(tmp_path / "loc/units/a.yaml",
           "id: y\nplugin: shell\ncommand: true\n---\nunit: category\nid: c\n")
    _write(tmp_path / "loc/units/b.pxu",
           "unit: template\ntemplate-resource: r\nid: t_{n}\n\nunit: test plan\nid: tp\n")
    _provider(tmp_path, "com.example:p", f"location = {tmp_path / 'loc'}\n")
    result = load_providers([tmp_path])
    assert [type(u) for u in result.units] == [JobDefinition, TemplateUnit]
    assert [t.resource_id for t in result.templates] == ["com.example::r"]


def test_provider_search_path_comes_from_providerpath_or_defaults() -> None:
    """`$PROVIDERPATH` (even empty) replaces the defaults; empty parts are skipped."""
    assert default_provider_dirs({"PROVIDERPATH": "/a::/b"}) == [Path("/a"), Path("/b")]
    assert default_provider_dirs({"PROVIDERPATH": ""}) == []
    assert default_provider_dirs({}) == [
        Path("/usr/local/share/plainbox-providers-1"), Path("/usr/share/plainbox-providers-1")]


def test_checkbox_builtin_namespace_is_recognised() -> None:
    """The session layer can word its message about Checkbox's built-in provider."""
    assert is_builtin_namespace("com.canonical.plainbox")
    assert not is_builtin_namespace("com.canonical.certification")


def test_missing_provider_directory_is_not_an_error(tmp_path: Path) -> None:
    """A search directory that does not exist contributes nothing."""
    result = load_providers([tmp_path / "nope"])
    assert result.providers == []
    assert result.warnings == []
