"""Run one peek, resume or registry pass in a fresh process and report time and peak memory.

Usage: ``python probe.py MODE PATH PROVIDER_DIR [MAX_BYTES]`` where MODE is
``peek`` or ``resume`` (PATH: a session directory) or ``registry`` (PATH: a
session root; the state directory is PATH's sibling ``state``). Prints one JSON
object: ``error`` (class name or null), ``reason``, ``seconds``, ``maxrss_kib``
and, for ``registry``, ``listed`` and ``discarded`` (id to state or reason).
Resource bombs run here so that a bomb that did exhaust memory would kill this
process, not the test run.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any


def run(mode: str, path: Path, provider_dir: Path, max_bytes: int) -> dict[str, Any]:
    """Do the work of ``mode`` in a worker thread (as the daemon does); return the report."""
    from resumed.bootinfo import BootInfo
    from resumed.config import Config
    from resumed.providers.loader import load_providers
    from resumed.registry import Registry
    from resumed.session.errors import SessionResumeError
    from resumed.session.peek import SessionPeekHelper
    from resumed.session.resume import SessionResumeHelper

    units = load_providers([provider_dir]).units
    report: dict[str, Any] = {"error": None, "reason": None}

    def work() -> None:
        try:
            if mode == "registry":
                config = Config((path,), (provider_dir,), (), True, 300.0, 1.0, max_bytes,
                                path.parent / "state")
                registry = Registry(config, load_providers([provider_dir]),
                                    BootInfo("0000-probe", 1700000000.0))
                registry.scan()
                for session_id in registry.pending_ids():
                    registry.resume_one(session_id)
                report["listed"] = {r.id: r.state for r in registry.list_sessions()}
                report["discarded"] = {d.id: d.reason for d in registry.list_discarded()}
                return
            data = (path / "session").read_bytes()
            if mode == "peek":
                SessionPeekHelper(max_bytes).peek(data)
            else:
                SessionResumeHelper(units, None, str(path), max_bytes).resume(data)
        except SessionResumeError as error:
            report["error"], report["reason"] = type(error).__name__, error.reason
        except BaseException as error:  # noqa: BLE001 (reported, and the test fails on it)
            report["error"], report["reason"] = f"untyped {type(error).__name__}", str(error)

    start = time.monotonic()
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    report["seconds"] = round(time.monotonic() - start, 3)
    report["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return report


if __name__ == "__main__":
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else 256 * 1024 * 1024
    print(json.dumps(run(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), limit)))
