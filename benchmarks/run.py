"""Run the benchmark suite and print one table: ``python -m benchmarks.run [--quick]``.

Everything is measured in one run on the same generated files (see
``benchmarks.generate``): our resume against the floor (gunzip + json.loads of
the same blob) and against PlainBox 1.18.1's own resume (in the reference venv
built by ``tools/checkbox-venv.sh``), peek of 1,000 dormant sessions, and the
daemon on a private bus. Times are medians of several runs. Loading providers
is its own line, outside the timed resume.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import generate

REPO = Path(__file__).resolve().parents[1]
PLAINBOX_INSPECT = REPO / "tests" / "differential" / "plainbox_inspect.py"
VENV_SCRIPT = REPO / "tools" / "checkbox-venv.sh"
#: (jobs, io-log shape) of each resume benchmark: see ``benchmarks.generate``.
CASES = ((50, "inline"), (500, "inline"), (500, "disk"), (10_000, "inline"), (50_000, "inline"))


@dataclass
class Row:
    """One line of the table."""

    name: str
    value: str
    target: str = ""
    ok: bool | None = None


def seconds(value: float) -> str:
    """A duration for the table."""
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def median_time(func: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls of ``func``, from the call to its return.

    What ``func`` returns is freed after the clock stops, as PlainBox's timing
    (``plainbox_inspect.py --time``) keeps the state it resumed: each side is
    timed until it hands its result over.
    """
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = func()
        samples.append(time.perf_counter() - start)
        del result
    return statistics.median(samples)


def load_job_list(provider_dir: Path) -> tuple[list[Any], float]:
    """Load the providers in ``provider_dir``; return (units, seconds)."""
    from resumed.providers.loader import load_providers

    start = time.perf_counter()
    units = list(load_providers([provider_dir]).units)
    return units, time.perf_counter() - start


def floor(blob: bytes) -> None:
    """The floor: gunzip + json.loads of the blob (the parsed document is freed, as in resume)."""
    json.loads(gzip.decompress(blob))


def plainbox_python() -> Path | str:
    """The reference venv's python, or the reason it cannot be had."""
    proc = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return "checkbox-ng 1.18.1 unavailable: " + proc.stderr.strip().splitlines()[-1]
    return Path(proc.stdout.strip().splitlines()[-1])


def plainbox_resume(python: Path, data: generate.Dataset, runs: int) -> float | str:
    """Median seconds of PlainBox's own resume of ``data`` (or why it failed)."""
    proc = subprocess.run(
        [str(python), str(PLAINBOX_INSPECT), "--time", str(runs),
         "--provider-dir", str(data.provider_dir), str(data.session_dir)],
        capture_output=True, text=True, check=False,
    )
    result = json.loads(proc.stdout) if proc.stdout else {"ok": False, "error": proc.stderr}
    if not result["ok"]:
        return f"PlainBox failed: {result['error']} {result.get('message', '')}"
    return float(result["resume_seconds"])


def resume_rows(quick: bool) -> Iterator[Row]:
    """Our resume vs the floor and vs PlainBox 1.18.1, per session (size, io-log shape).

    The provider line includes ``resume.prepare``: indexing the units for
    resume is provider-only work, done once per provider set (the daemon loads
    providers once and resumes many sessions), not at every resume.
    """
    from resumed.session.resume import SessionResumeHelper, prepare

    python = plainbox_python()
    for n_jobs, io_logs in CASES:
        data = generate.generate(n_jobs, io_logs=io_logs)
        blob = data.blob
        name = case_name(data)
        units, load_seconds = load_job_list(data.provider_dir)
        start = time.perf_counter()
        prepare(units)
        load_seconds += time.perf_counter() - start
        if io_logs == "inline":
            yield Row(f"load providers + resume index ({len(units)} units, {n_jobs} jobs)",
                      seconds(load_seconds))
        runs = 3 if quick or n_jobs >= 50_000 else 7
        location = str(data.session_dir)
        helper = SessionResumeHelper(units, None, location)
        ours = median_time(functools.partial(helper.resume, blob), runs)
        base = median_time(functools.partial(floor, blob), runs)
        size = f"{len(blob) / 1e6:.2f} MB gz"
        ratio = ours / base
        target, ok = "", None
        if n_jobs >= 10_000:
            target, ok = "≤2.5x floor", ratio <= 2.5
        yield Row(f"{name} ({size}), ours", seconds(ours),
                  *(("≤0.5 s", ours <= 0.5) if n_jobs == 10_000 else ()))
        yield Row(f"{name}, floor (gunzip+json.loads)", seconds(base))
        yield Row(f"{name}, ours / floor", f"{ratio:.2f}x", target, ok)
        yield from plainbox_rows(python, data, ours, quick)


def case_name(data: generate.Dataset) -> str:
    """How the table names the resume of ``data``."""
    if data.io_logs == "disk":
        return f"resume {data.n_jobs} jobs, io-logs on disk (Checkbox's runner)"
    return f"resume {data.n_jobs} jobs"


def plainbox_rows(python: Path | str, data: generate.Dataset, ours: float,
                  quick: bool) -> Iterator[Row]:
    """PlainBox 1.18.1's resume of the same file, and how much faster we are."""
    name = f"{case_name(data)}, PlainBox 1.18.1"
    if data.n_jobs >= 50_000:
        yield Row(name, "skipped (hours: quadratic resume)")
        return
    if quick and data.n_jobs >= 10_000:
        yield Row(name, "skipped in --quick (about 100 s)")
        return
    if isinstance(python, str):
        yield Row(name, python)
        return
    theirs = plainbox_resume(python, data, 1 if data.n_jobs >= 10_000 else 5)
    if isinstance(theirs, str):
        yield Row(name, theirs)
        return
    yield Row(name, seconds(theirs))
    target, ok = ("≥30x", theirs / ours >= 30) if data.n_jobs == 500 else ("", None)
    yield Row(f"{case_name(data)}, PlainBox / ours", f"{theirs / ours:.1f}x", target, ok)


def peek_rows(count: int) -> Iterator[Row]:
    """Peek of ``count`` dormant 500-job sessions: every file, then as the daemon lists them.

    The first line reads and fully peeks every file (``SessionPeekHelper``:
    gunzip + JSON parse of the whole file, as PlainBox validates it); the second
    uses the provisional ``quick_peek`` the daemon uses before READY=1 (gunzip,
    then only the metadata object is parsed; the full peek or the resume
    confirms it after READY=1). The daemon's registry keeps a peek index in its
    state directory (the start-up index), so a restart (or a boot) peeks only
    the files that changed since: the last lines are those scans.
    """
    from resumed.bootinfo import read_boot_info
    from resumed.config import Config
    from resumed.providers.loader import load_providers
    from resumed.registry import Registry
    from resumed.session.peek import SessionPeekHelper, quick_peek

    data = generate.generate(500)
    root = generate.clone_sessions(data.session_dir, generate.bench_dir() / f"root-{count}",
                                   count)
    files = sorted(root.glob("*.session/session"))

    def peek_all() -> None:
        helper = SessionPeekHelper()
        for path in files:
            helper.peek(path.read_bytes())

    def quick_all() -> None:
        for path in files:
            quick_peek(path.read_bytes())

    total = median_time(peek_all, 3)
    yield Row(f"peek {count} dormant sessions of 500 jobs, every file, full peek",
              seconds(total))
    quick = median_time(quick_all, 3)
    yield Row(f"peek {count} dormant sessions of 500 jobs, every file, quick peek",
              seconds(quick))
    providers = load_providers([data.provider_dir])
    boot = read_boot_info()
    with tempfile.TemporaryDirectory(prefix="resumed-bench-") as state:
        config = Config((root,), (data.provider_dir,), (), False, 300.0, 1.0,
                        256 * 1024 * 1024, Path(state))
        first = median_time(lambda: Registry(config, providers, boot).scan(quick=True), 1)
        yield Row(f"daemon start-up scan of {count} sessions, empty peek index (quick peek)",
                  seconds(first))
        warm = median_time(lambda: Registry(config, providers, boot).scan(), 3)
        yield Row(f"peek {count} sessions, daemon scan with the start-up peek index",
                  seconds(warm), "≤1 s", warm <= 1.0)


def daemon_rows(quick: bool) -> Iterator[Row]:
    """The daemon on a private bus: READY=1, RSS, ListSessions and GetJobResults."""
    try:
        from gi.repository import GLib

        from benchmarks import daemon
        from resumed.daemon import app  # noqa: F401 (the daemon must be importable)
    except ImportError as exc:
        yield Row("daemon benchmarks", f"skipped: daemon not importable ({exc})")
        return
    if shutil.which("dbus-daemon") is None:
        yield Row("daemon benchmarks", "skipped: no dbus-daemon (make deps)")
        return
    # The .deb's postinst compiles the bytecode (py3compile); with
    # PYTHONDONTWRITEBYTECODE set, the daemon would compile every module at each start.
    compileall.compile_dir(REPO / "src" / "resumed", quiet=1)
    data = generate.generate(500)
    big = generate.generate(10_000)
    root100 = generate.clone_sessions(data.session_dir, generate.bench_dir() / "root-100", 100)
    root1000 = generate.clone_sessions(data.session_dir, generate.bench_dir() / "root-1000", 1000)
    with daemon.private_bus() as address:
        firsts = []
        for _ in range(2):  # each with an empty state directory (no peek index)
            with daemon.run_daemon(address, [root100], data.provider_dir) as d:
                firsts.append(d.ready_seconds)
        state = Path(tempfile.mkdtemp(prefix="resumed-bench-state-"))
        with daemon.run_daemon(address, [root100], data.provider_dir, state) as d:
            firsts.append(d.ready_seconds)  # the third first start, kept for the restarts
            first = statistics.median(firsts)
            yield Row("daemon first start to READY=1 (100 dormant 500-job sessions)",
                      seconds(first), "≤0.5 s", first <= 0.5)
            waited = d.wait_state("ready", 600)
            yield Row("daemon READY=1 to all 100 resumed", seconds(waited))
            rss, hwm = d.memory_kib()
            yield Row("daemon RSS, 100 resumed 500-job sessions",
                      f"{rss / 1024:.0f} MB (peak {hwm / 1024:.0f} MB)", "≤80 MB",
                      rss / 1024 <= 80)
        restarts = []
        for _ in range(3):
            with daemon.run_daemon(address, [root100], data.provider_dir, state) as d:
                restarts.append(d.ready_seconds)
        ready = statistics.median(restarts)
        yield Row("daemon restart to READY=1 (same state dir: peek index)", seconds(ready),
                  "≤0.5 s", ready <= 0.5)
        shutil.rmtree(state, ignore_errors=True)
        try:
            yield from bus_rows(daemon, address, root1000, big, quick)
        except (TimeoutError, GLib.Error) as exc:
            yield Row("ListSessions / GetJobResults, 1000 sessions", f"failed: {exc}")


def bus_rows(daemon: Any, address: str, root: Path, big: generate.Dataset,
             quick: bool) -> Iterator[Row]:
    """ListSessions and GetJobResults round trips, idle and during a 10,000-job resume.

    The daemon loads the 10,000-job provider, a superset of the 500-job one
    (job definitions depend only on their index), so every session resumes.
    """
    from gi.repository import GLib

    from resumed.daemon.names import MANAGER_INTERFACE, ROOT_PATH, SESSION_INTERFACE

    extra = generate.bench_dir() / "root-extra"
    shutil.rmtree(extra, ignore_errors=True)
    extra.mkdir(parents=True)
    count = 300 if quick else 2000
    job = f"{generate.NAMESPACE}::bench/job-00001"
    with daemon.run_daemon(address, [root, extra], big.provider_dir) as d:
        d.wait_state("ready", 1800)
        session = d.session_path("bench-00000")

        def list_sessions() -> object:
            return d.call(ROOT_PATH, MANAGER_INTERFACE, "ListSessions")

        def job_results() -> object:
            return d.call(session, SESSION_INTERFACE, "GetJobResults",
                          GLib.Variant("(s)", (job,)))

        for name, call in (("ListSessions", list_sessions), ("GetJobResults", job_results)):
            p50, p99 = daemon.percentiles(daemon.time_calls(call, count))
            ok = p50 <= 0.002 if name == "ListSessions" else None
            yield Row(f"{name}, 1000 sessions, idle, p50 / p99",
                      f"{seconds(p50)} / {seconds(p99)}", "p50 ≤2 ms" if ok is not None else "", ok)
        p50, p99 = daemon.percentiles(daemon.floor_round_trips(address, 1000, count))
        yield Row("floor: the same 1000-row reply from a trivial Gio service, p50 / p99",
                  f"{seconds(p50)} / {seconds(p99)}")
        p50, p99 = daemon.percentiles(daemon.raw_floor_round_trips(address, 1000, count))
        yield Row("floor: the same reply pre-serialized, sent by a raw-socket responder "
                  "(no per-call serialization), p50 / p99", f"{seconds(p50)} / {seconds(p99)}")
        shutil.copytree(big.session_dir, extra / "big.session")
        d.call(ROOT_PATH, MANAGER_INTERFACE, "Rescan")
        for name, call in (("ListSessions", list_sessions), ("GetJobResults", job_results)):
            samples = daemon.time_calls_while(call, lambda: d.state() != "ready", 120)
            p50, p99 = daemon.percentiles(samples)
            ok = p99 <= 0.3 if name == "ListSessions" else None
            yield Row(f"{name} during a 10000-job resume, p50 / p99 ({len(samples)} calls)",
                      f"{seconds(p50)} / {seconds(p99)}", "p99 ≤300 ms" if ok is not None else "",
                      ok)


def render(rows: list[Row]) -> str:
    """The table as Markdown."""
    lines = ["| benchmark | result | target | |", "|---|---|---|---|"]
    for row in rows:
        mark = "" if row.ok is None else ("ok" if row.ok else "MISSED")
        lines.append(f"| {row.name} | {row.value} | {row.target} | {mark} |")
    return "\n".join(lines)


def machine() -> str:
    """A one-line description of this machine."""
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{platform.node()}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}, {platform.platform()}")


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, skip PlainBox 10,000")
    parser.add_argument("--only", choices=("resume", "peek", "daemon"), action="append")
    args = parser.parse_args(argv)
    sections = args.only or ["resume", "peek", "daemon"]
    rows: list[Row] = []
    for section in sections:
        produce = {"resume": lambda: resume_rows(args.quick),
                   "peek": lambda: peek_rows(1000),
                   "daemon": lambda: daemon_rows(args.quick)}[section]
        for row in produce():
            rows.append(row)
            print(f"  {row.name}: {row.value}", file=sys.stderr, flush=True)
    print(f"{time.strftime('%Y-%m-%d')}, {machine()}\n")
    print(render(rows))
    return 0 if all(row.ok is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
