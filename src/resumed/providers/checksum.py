"""Job checksums (PlainBox's `Unit._compute_checksum`) and the Checkbox eras.

The checksum is sha256 of the canonical JSON of the unit's data (top-level
keys sorted by code point, `namespace` appended last, compact separators,
`ensure_ascii`), followed for generated units by the canonical JSON of the
parameters (sorted by key).

An *era* is a span of Checkbox history with one rule for the data of generated
jobs and after-suspend siblings. `ERAS` is in chronological order; plain jobs
hash the same in every era.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_DUMPS = json.JSONEncoder(separators=(",", ":")).encode
#: How `_DUMPS` writes a string (ensure_ascii: the C function the encoder itself uses).
_STRING_TEXT = json.encoder.encode_basestring_ascii


@dataclass(frozen=True, slots=True)
class Era:
    """The per-era rules: `template_id` key, after-suspend sibling variant, relaxed checks."""

    name: str
    description: str
    template_id: bool
    suspend_rule: str  # "a", "b", "c" or "d" as in the providers reference §6.4
    relaxed_checks: bool  # 2026-03 template checks (§4.8), HEAD `template-engine` handling


_ERA_LIST = (
    Era("legacy", "Checkbox up to 2024-01 (1.18.1): generated jobs have no template-id",
        False, "a", False),
    Era("template-id", "2024-02 to 2025-09: generated jobs carry template-id",
        True, "a", False),
    Era("suspend-after", "2025-09-30 to 2026-03-25: after-suspend siblings gain after and group",
        True, "b", False),
    Era("suspend-list", "2026-03-26 to 2026-07-07: after-suspend siblings use list depends/after",
        True, "c", True),
    Era("suspend-rendered", "2026-07-08 on (current): sibling depends from the rendered parent",
        True, "d", True),
)

ERA_INFO: dict[str, Era] = {era.name: era for era in _ERA_LIST}
ERAS: tuple[str, ...] = tuple(era.name for era in _ERA_LIST)
ERA_DESCRIPTIONS: dict[str, str] = {era.name: era.description for era in _ERA_LIST}
CURRENT_ERA = ERAS[-1]


def era_info(era: str) -> Era:
    """Return the rules of `era`; raise `ValueError` for an unknown name."""
    try:
        return ERA_INFO[era]
    except KeyError:
        raise ValueError(f"unknown checksum era {era!r} (known: {', '.join(ERAS)})") from None


def _data_text(data: Mapping[str, Any], namespace: str | None) -> str:
    ordered = dict(sorted(data.items()))
    if namespace:
        ordered["namespace"] = namespace
    return _DUMPS(ordered)


def canonical_text(
    data: Mapping[str, Any], namespace: str | None, parameters: Mapping[str, Any] | None = None
) -> str:
    """The exact text PlainBox hashes for a unit."""
    text = _data_text(data, namespace)
    if parameters is not None:
        text += parameters_text(parameters)
    return text


def compute_checksum(
    data: Mapping[str, Any], namespace: str | None, parameters: Mapping[str, Any] | None = None
) -> str:
    """PlainBox's checksum of a unit with `data`, provider `namespace` and `parameters`."""
    return hashlib.sha256(canonical_text(data, namespace, parameters).encode("utf-8")).hexdigest()


class ChecksumPrefix:
    """The hash state after a unit's data: instances sharing `data` only hash their parameters.

    `ChecksumPrefix(data, ns).checksum_text(parameters_text(params))` equals
    `compute_checksum(data, ns, params)`;
    template instances of one era share their data, so its canonical text is
    encoded and hashed once per template and era instead of once per instance.
    """

    __slots__ = ("_hash",)

    def __init__(self, data: Mapping[str, Any], namespace: str | None) -> None:
        self._hash = hashlib.sha256(_data_text(data, namespace).encode("utf-8"))

    def checksum_text(self, text: str | None) -> str:
        """The checksum of a unit with the prefix's data and parameters of canonical `text`."""
        digest = self._hash.copy()
        if text is not None:
            digest.update(text.encode("utf-8"))
        return digest.hexdigest()


def parameters_text(parameters: Mapping[str, Any]) -> str:
    """The canonical text of a unit's parameters (what follows its data in the hash).

    Parameters are resource record fields (strings) and `__index__` (an int):
    those are written here directly, as `_DUMPS` writes them; any other value
    goes through `_DUMPS`.
    """
    items = sorted(parameters.items())
    parts = []
    for key, value in items:
        if type(value) is str:
            text = _STRING_TEXT(value)
        elif type(value) is int:
            text = int.__repr__(value)
        else:
            return _DUMPS(dict(items))
        if type(key) is not str:
            return _DUMPS(dict(items))
        parts.append(_STRING_TEXT(key) + ":" + text)
    return "{" + ",".join(parts) + "}"
