"""``resumectl inspect``: resume one session offline and show what came back."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from resumed.session.inspect import inspect_path


def _outcomes(results: list[dict[str, Any]]) -> str:
    return ", ".join(str(result["outcome"]) for result in results) or "-"


def format_text(report: dict[str, Any]) -> str:
    """The readable form of a successful inspect report."""
    meta = report["metadata"]
    run_list = set(report["run_list"])
    lines = [
        f"Session:        {report['session_id']} (format {report['format_version']})",
        f"Title:          {meta['title'] or '-'}",
        f"Flags:          {', '.join(meta['flags']) or '-'}",
        f"App id:         {meta['app_id'] or '-'}",
        f"Running job:    {meta['running_job_name'] or '-'}",
        f"Checksum rules: {', '.join(report['checksum_rules']) or '-'}",
        f"Jobs:           {len(report['jobs'])} ({len(run_list)} in the run list,"
        f" {len(report['discarded_jobs'])} discarded)",
    ]
    for job_id in report["jobs"]:
        mark = "*" if job_id in run_list else " "
        lines.append(f"  {mark} {job_id}: {_outcomes(report['results'].get(job_id, []))}")
    lines.extend(f"  - {job_id}: discarded" for job_id in report["discarded_jobs"])
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``resumectl inspect``; return the exit status (0 ok, 1 the session failed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    report = inspect_path(args.path, args.provider_dir, args.flag or ())
    if args.json:
        out.write(json.dumps(report, allow_nan=False) + "\n")
    elif report["ok"]:
        out.write(format_text(report) + "\n")
    else:
        err.write(f"resumectl: {report['error']} ({report['reason']}): {report['message']}\n")
    return 0 if report["ok"] else 1
