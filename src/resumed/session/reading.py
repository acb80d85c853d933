"""Reading an open file to its end, never more than a bound."""

from __future__ import annotations

import os

#: The size of every read after the first (each read allocates what it asks for).
_STEP = 1 << 20


def read_up_to(fd: int, limit: int, first: int = _STEP) -> bytes:
    """The bytes of ``fd`` up to its end or to ``limit`` bytes, whichever comes first.

    ``first`` sizes the first read (e.g. the size ``fstat`` gave, plus one to
    see the end): a 1 MiB read of every small file costs an allocation each.
    Read ``limit + 1`` bytes to tell a file of exactly ``limit`` bytes from a
    bigger one.
    """
    chunks: list[bytes] = []
    left = limit
    step = max(1, min(_STEP, first))
    while left > 0:
        chunk = os.read(fd, min(step, left))
        step = _STEP
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
