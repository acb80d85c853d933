"""Values that are safe to put on D-Bus (SPEC §5).

D-Bus has no null, rejects NUL characters and lone surrogates in strings,
fixed-width integers and (in practice) cares about NaN. Every value the daemon
publishes goes through one of these functions, so one hostile session never
breaks a reply that lists many.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

_REPLACEMENT = "\ufffd"

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def clean_str(value: object) -> str:
    """A D-Bus-safe string: ``None`` is ``""``; NUL and lone surrogates become U+FFFD."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", _REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join(_REPLACEMENT if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def clean_float(value: object) -> float:
    """A finite float: ``None``, NaN, infinities and non-numbers are ``0.0``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def clean_int(value: object, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An int clamped to ``[low, high]``; ``None`` and non-integers are clamped ``0``."""
    number = int(value) if isinstance(value, int) else 0
    return max(low, min(high, number))


def clean_uint32(value: object) -> int:
    """An int clamped to D-Bus ``u``."""
    return clean_int(value, 0, UINT32_MAX)


def clean_bool(value: object, default: bool = True) -> bool:
    """A bool; ``None`` (absent from the format) is ``default``."""
    if value is None:
        return default
    return bool(value)


def clean_str_list(values: Iterable[object] | None) -> list[str]:
    """A list of D-Bus-safe strings (``None`` is ``[]``)."""
    return [clean_str(v) for v in values or ()]


def clean_str_dict(values: Mapping[object, object] | None) -> dict[str, str]:
    """A ``a{ss}`` dict of D-Bus-safe strings (``None`` is ``{}``)."""
    return {clean_str(k): clean_str(v) for k, v in (values or {}).items()}


def job_result_dict(
    outcome: object,
    comments: object,
    return_code: object,
    execution_duration: object,
    io_log_records: object,
) -> dict[str, object]:
    """One ``GetJobResults`` entry (``a{sv}`` values), each key omitted when null (SPEC §5)."""
    result: dict[str, object] = {}
    if outcome is not None:
        result["outcome"] = clean_str(outcome)
    if comments is not None:
        result["comments"] = clean_str(comments)
    if isinstance(return_code, int):
        result["return_code"] = clean_int(return_code)
    if isinstance(execution_duration, int | float) and not isinstance(execution_duration, bool):
        result["execution_duration"] = clean_float(execution_duration)
    if isinstance(io_log_records, int):
        result["io_log_records"] = clean_uint32(io_log_records)
    return result
