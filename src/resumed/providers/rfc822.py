"""The RFC 822-style `.pxu` unit parser, exactly as PlainBox's `gen_rfc822_records`.

Rules (see the providers reference §2): lines come from `str.splitlines`; a line
starting with `#` in column 0 is ignored (even inside a value); a blank or
whitespace-only line ends a record; a line starting with one space continues the
open key (that one space is removed); a line holding `:` opens a key (stripped
key, `lstrip`ped value); anything else is an error, and so is a duplicate key.
Values are normalized with the ` .` empty-line convention and `textwrap.dedent`
when they span several lines, then stripped.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resumed.providers.errors import UnitParseError

_DOT_LINE = re.compile(r"^(\s*)\.$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed unit record: its field dict and where it starts (`file:line`)."""

    data: dict[str, Any]
    origin: str


def normalize_value(raw: str) -> str:
    """Normalize a raw multi-line value the way PlainBox's `normalize_rfc822_value` does."""
    if raw.count("\n") > 1:
        raw = textwrap.dedent(_DOT_LINE.sub(r"\1", raw))
    return raw.strip()


def iter_records(lines: Iterable[str], filename: str = "<string>") -> Iterator[Record]:
    """Yield the records of `lines`; raise `UnitParseError` at the first syntax error.

    Records completed before the error have already been yielded, which is what
    the resource-output parser relies on.
    """
    raw: dict[str, str] = {}
    key: str | None = None
    start = 0
    for lineno, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            if raw:
                yield _finish(raw, filename, start)
            raw = {}
            key = None
            continue
        if line.startswith(" "):
            if key is None:
                raise UnitParseError("Unexpected multi-line value", filename, lineno)
            raw[key] += line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise UnitParseError(f"Unexpected non-empty line: {line!r}", filename, lineno)
        name = name.strip()
        if name in raw:
            raise UnitParseError(f"Job has a duplicate key {name!r}", filename, lineno)
        if not raw:
            start = lineno
        raw[name] = value.lstrip()
        key = name
    if raw:
        yield _finish(raw, filename, start)


def _finish(raw: dict[str, str], filename: str, start: int) -> Record:
    return Record({k: normalize_value(v) for k, v in raw.items()}, f"{filename}:{start}")


def parse_pxu(text: str, filename: str = "<string>") -> list[Record]:
    """Parse the text of a whole `.pxu` file (already decoded) into records."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return list(iter_records(text.splitlines(keepends=True), filename))


def load_pxu_file(path: Path) -> list[Record]:
    """Read and parse a `.pxu` file: strict UTF-8 (a BOM is kept), universal newlines."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnitParseError(f"Cannot load: {exc}", str(path)) from exc
    return parse_pxu(text, str(path))
