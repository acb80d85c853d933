"""PlainBox's word lists (`depends`, `after`, `before`, `salvages`) and id qualification."""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

_SEPARATORS = frozenset(" \t\n\r\x0b\x0c,")
_STOP = _SEPARATORS | frozenset('#"=')


@functools.lru_cache(maxsize=16384)
def parse_word_list(text: str) -> tuple[str, ...]:
    """Split a word list: whitespace/comma separated, `"quoted"` words, `#` comments.

    `=` is an error entry (logged, skipped); an unterminated quote ends parsing.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _SEPARATORS:
            i += 1
        elif char == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                log.warning("unterminated quote in word list %r", text)
                break
            words.append(text[i + 1:end])
            i = end + 1
        elif char == "=":
            log.warning("unexpected '=' in word list %r", text)
            i += 1
        else:
            start = i
            while i < n and text[i] not in _STOP:
                i += 1
            words.append(text[start:i])
    return tuple(words)


def words_of(value: Any) -> tuple[str, ...]:
    """The words of a field value: a pxu string, or a YAML list of ids."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(s for s in (str(item).strip() for item in value) if s)
    return parse_word_list(str(value))


def qualify(word: str, namespace: str) -> str:
    """`ns::word` unless `word` is already qualified."""
    return word if "::" in word else f"{namespace}::{word}"
