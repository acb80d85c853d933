"""The .pxu parser behaves exactly like PlainBox's (providers reference §2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumed.providers.errors import UnitParseError
from resumed.providers.rfc822 import parse_pxu
from resumed.providers.units import make_unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k:\n   a\n     b\n   c\n", {"k": "a\n  b\nc"}),
        ("k: x\n .\n y\n", {"k": "x\n\ny"}),
        ("k: x\n    .\n y\n", {"k": "x\n\ny"}),
        ("k:\n .\n", {"k": "."}),
        ("k: x\n ..\n y\n", {"k": "x\n..\ny"}),
        ("k:   \n   hello   \n", {"k": "hello"}),
        ("k: a\n# c\n b\n", {"k": "a\nb"}),
        ("k: a\n # c\n", {"k": "a\n# c"}),
        ("a: 1\r\nb: 2\r\n", {"a": "1", "b": "2"}),
        ("a:\nb: 2\n", {"a": "", "b": "2"}),
        ("summary: x\n_summary: y\n", {"summary": "x", "_summary": "y"}),
        ("\tk2: w\n", {"k2": "w"}),
        (": v\n", {"": "v"}),
    ],
)
def test_values_are_normalized_like_plainbox(text: str, expected: dict[str, str]) -> None:
    """Each edge case of the reference's §2.2 table gives PlainBox's data."""
    assert [r.data for r in parse_pxu(text)] == [expected]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  Some Key : v", "Unexpected multi-line value"),
        ("k: v\n\tcontinued\n", "Unexpected non-empty line"),
        ("k: v\nk: w\n", "duplicate key"),
        ("a: x\u2028y\n", "Unexpected non-empty line"),
    ],
)
def test_syntax_errors_name_the_problem_and_line(text: str, message: str) -> None:
    """Bad input raises UnitParseError with PlainBox's message and a line number."""
    with pytest.raises(UnitParseError, match=message) as info:
        parse_pxu(text, "f.pxu")
    assert info.value.filename == "f.pxu"
    assert info.value.line is not None


def test_records_are_split_by_blank_lines_and_carry_origins() -> None:
    """Whitespace-only lines separate records; origin is file:first line."""
    records = parse_pxu("\n\na: 1\n  \t\n\nb: 2\nc: 3\n", "u.pxu")
    assert [r.data for r in records] == [{"a": "1"}, {"b": "2", "c": "3"}]
    assert [r.origin for r in records] == ["u.pxu:3", "u.pxu:6"]


def test_a_bom_is_kept_in_the_first_key() -> None:
    """PlainBox does not strip a UTF-8 BOM, so the first key starts with it."""
    assert parse_pxu("\ufeffid: x\n")[0].data == {"\ufeffid": "x"}


EXAMPLE_A = """# comment line: ignored
id: disk/detect
plugin: resource
_summary: Detect disks
command:
  udevadm info --export-db |
    awk '/^P:/ {print}'
estimated_duration: 1.5
flags: preserve-locale, noreturn
"""
EXAMPLE_B = """id: audio/playback
plugin: manual
_description:
 First paragraph.
 .
    indented line
 last line
# a comment line inside a value is dropped too
_steps: Plug headphones
 Press play
"""
EXAMPLE_C = """name: legacy-name
plugin: shell
command: echo "a: b"
estimated_duration:
depends: foo
 bar
"""


@pytest.mark.parametrize(
    ("text", "namespace", "job_id", "data", "checksum"),
    [
        (EXAMPLE_A, "com.example.demo", "com.example.demo::disk/detect",
         {"id": "disk/detect", "plugin": "resource", "_summary": "Detect disks",
          "command": "udevadm info --export-db |\n  awk '/^P:/ {print}'",
          "estimated_duration": "1.5", "flags": "preserve-locale, noreturn"},
         "b101cad1409f8ce6a45051fc71dd8f2c716eabc9a616c71ff2ba66430c6610bc"),
        (EXAMPLE_B, "com.example.demo", "com.example.demo::audio/playback",
         {"id": "audio/playback", "plugin": "manual",
          "_description": "First paragraph.\n\n   indented line\nlast line",
          "_steps": "Plug headphones\nPress play"},
         "17c807866a008871689e945165da1b1986e763eb6237f9af65601039fd229499"),
        (EXAMPLE_C, "com.example", "com.example::legacy-name",
         {"name": "legacy-name", "plugin": "shell", "command": 'echo "a: b"',
          "estimated_duration": "", "depends": "foo\nbar"},
         "4a813807e39839e7ebcb3bf794fcfca93a975437e8f757a95847a02538edaba4"),
    ],
)
def test_worked_examples_give_plainbox_data_ids_and_checksums(
    text: str, namespace: str, job_id: str, data: dict[str, str], checksum: str
) -> None:
    """The reference's §2.4 examples A, B and C."""
    (record,) = parse_pxu(text, "demo.pxu")
    job = make_unit(record.data, namespace, record.origin)
    assert job is not None
    assert job.data == data
    assert job.id == job_id
    assert job.checksum == checksum


def test_legacy_name_job_has_zero_duration_and_two_dependencies() -> None:
    """Example C: an empty estimated_duration is 0; `depends` spans two lines."""
    (record,) = parse_pxu(EXAMPLE_C)
    job = make_unit(record.data, "com.example", record.origin)
    assert job.estimated_duration == 0  # type: ignore[union-attr]
    assert job.depends_ids == ("com.example::foo", "com.example::bar")  # type: ignore[union-attr]


@given(st.text())
def test_any_text_gives_records_or_a_unit_parse_error(text: str) -> None:
    """Random text never makes the parser raise anything but UnitParseError."""
    try:
        records = parse_pxu(text)
    except UnitParseError:
        return
    for record in records:
        assert all(isinstance(v, str) for v in record.data.values())
