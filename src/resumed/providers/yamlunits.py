"""YAML unit files (current Checkbox): one mapping per document, kept as loaded.

PlainBox loads these with PyYAML's full loader; we use the safe loader, which
builds the same plain types (str, int, float, bool, None, list, dict). Values
PlainBox could not hash anyway (dates, binary, non-string keys) make the file a
`UnitParseError`, and so does a document that expands (through aliases) to more
than `MAX_NODES` values, so hashing one can never exhaust memory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from resumed.providers.errors import UnitParseError
from resumed.providers.rfc822 import Record

MAX_NODES = 1_000_000
_SCALARS = (str, int, float, bool, type(None))


@functools.cache
def _yaml() -> tuple[Any, Any]:
    """(the yaml module, its safe loader); imported on first use (daemon start-up)."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml_units(text: str, filename: str = "<string>") -> list[Record]:
    """Parse a YAML unit file's text into records (one per non-empty document)."""
    yaml, loader_class = _yaml()
    records: list[Record] = []
    try:
        loader = loader_class(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                line = node.start_mark.line + 1
                doc = loader.construct_document(node)
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise UnitParseError("a YAML unit must be a mapping", filename, line)
                _check_value(doc, filename, line)
                records.append(Record(doc, f"{filename}:{line}"))
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise UnitParseError(f"YAML error: {exc}", filename) from exc
    except RecursionError as exc:
        raise UnitParseError("YAML document nested too deeply", filename) from exc
    return records


def _check_value(doc: dict[Any, Any], filename: str, line: int) -> None:
    """Reject non-JSON types and alias bombs; sizes are memoized per object."""
    sizes: dict[int, int] = {}

    def size(value: Any) -> int:
        if isinstance(value, _SCALARS):
            return 1
        known = sizes.get(id(value))
        if known is not None:
            return known
        sizes[id(value)] = MAX_NODES + 1  # a cycle counts as too big
        total = 1
        if isinstance(value, list):
            for item in value:
                total += size(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise UnitParseError(f"non-string key {key!r}", filename, line)
                total += size(item)
        else:
            raise UnitParseError(
                f"value of type {type(value).__name__} cannot be hashed", filename, line
            )
        total = min(total, MAX_NODES + 1)
        sizes[id(value)] = total
        return total

    if size(doc) > MAX_NODES:
        raise UnitParseError("YAML document too large after alias expansion", filename, line)


def load_yaml_file(path: Path) -> list[Record]:
    """Read and parse a YAML unit file (strict UTF-8)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnitParseError(f"Cannot load: {exc}", str(path)) from exc
    return parse_yaml_units(text, str(path))
