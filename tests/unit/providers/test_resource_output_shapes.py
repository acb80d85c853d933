"""Resource output reads the same whatever its shape: usual outputs take a fast path.

`parse_resource_records` parses output of the usual shape (`key: value` lines and
blank lines, one per io-log record) without the general RFC 822 parser; these
tests check that it gives exactly what the general parser gives, records and
warnings, for usual and odd outputs alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumed.providers import resource
from resumed.providers.resource import parse_resource_records

KEYS = st.sampled_from(["name", "category", "path", "bus", "a.b", "x-y_z", "Name", "k#"])
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
USUAL_LINE = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}\n".encode(), KEYS, VALUES),
    st.just(b"\n"),
)
ODD_LINES = (
    b"# comment\n", b"#name: x\n", b" continued\n", b" .\n", b"  name: lead\n",
    b"name : spaced key\n", b"name:tight\n", b"name:\n", b"name:   \n", b"url: http://x:80\n",
    b"name: crlf\r\n", b"name: cr\r", b"\r\n", b"   \n", b"\t\n", b"name:\ttab\n",
    b"garbage\n", b": no key\n", b"name: \xff\xfe bad utf-8\n", b"name: caf\xc3\xa9\n",
    b"name: \xe2\x82", b"\xac split\n", b"name: no newline", b"a: 1\nb: 2\n",
    b"name: \x0b vt\n", b"name: x\x1c\n", b"\x85\n", b"name: del\x7f\n",
)
ODD_LINE = st.sampled_from(ODD_LINES)


@st.composite
def outputs(draw: st.DrawFn) -> list[bytes]:
    """Usual lines with up to two odd ones among them."""
    lines = draw(st.lists(USUAL_LINE, max_size=20))
    for odd in draw(st.lists(ODD_LINE, max_size=2)):
        lines.insert(draw(st.integers(0, len(lines))), odd)
    return lines


@contextmanager
def warnings_of_resource() -> Iterator[list[str]]:
    """The messages `resumed.providers.resource` logs inside the block."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(resource.__name__)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def parse(
    lines: list[bytes], fast: bool, as_list: bool = False
) -> tuple[list[dict[str, str]], list[str]]:
    """Records and warnings of `lines` (given as an iterator or as the list itself)."""
    with warnings_of_resource() as messages:
        if fast:
            records = parse_resource_records(lines if as_list else iter(lines))
        else:
            with mock.patch.object(resource, "_plain_records", return_value=None):
                records = parse_resource_records(iter(lines))
    return records, messages


@given(outputs())
def test_any_output_gives_the_general_parsers_records_and_warnings(lines: list[bytes]) -> None:
    """Comments, continuations, odd spaces, CR, bad UTF-8, split lines: no difference."""
    general = parse(lines, fast=False)
    assert parse(lines, fast=True) == general
    assert parse(lines, fast=True, as_list=True) == general


@given(st.lists(USUAL_LINE, max_size=30))
def test_usual_output_takes_the_fast_path_with_the_same_result(lines: list[bytes]) -> None:
    """Usual output is parsed by the fast path unless a record repeats a key."""
    fast = resource._plain_records(lines)
    records, messages = parse(lines, fast=False)
    if fast is None:
        assert messages
        assert "duplicate key" in messages[0]
    else:
        assert (fast, []) == (records, messages)


@pytest.mark.parametrize("odd", ODD_LINES)
def test_each_odd_line_among_usual_ones_reads_as_with_the_general_parser(odd: bytes) -> None:
    for lines in ([odd], [b"\n", odd, b"\n"], [b"name: a\n", odd, b"bus: 1\n", b"\n", b"x: y\n"]):
        general = parse(lines, fast=False)
        assert parse(lines, fast=True) == general
        assert parse(lines, fast=True, as_list=True) == general


def test_duplicate_key_keeps_the_records_before_it_and_warns() -> None:
    lines = [b"name: a\n", b"\n", b"name: b\n", b"bus: 1\n", b"name: c\n", b"\n", b"name: d\n"]
    assert parse(lines, fast=True) == (
        [{"name": "a"}],
        ["local script returned invalid RFC822 data: "
         "<resource output>:5: Job has a duplicate key 'name'"],
    )


def test_usual_output_values_are_stripped_and_may_hold_colons() -> None:
    lines = [b"\n", b"name:  a b  \n", b"url: http://h:8/\n", b"empty:\n", b"\n", b"\n",
             b"\n", b"name: c\n"]
    assert resource._plain_records(lines) == [
        {"name": "a b", "url": "http://h:8/", "empty": ""}, {"name": "c"}]
    assert parse(lines, fast=True) == parse(lines, fast=False)
