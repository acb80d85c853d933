"""Resume a session with PlainBox's own code and print it like `resumectl inspect --json`.

Run by the PlainBox reference venv's python (checkbox-ng 1.18.1, built by
``tools/checkbox-venv.sh``), never by the project's venv::

    plainbox_inspect.py [--provider-dir DIR]... [--flag FLAG]... PATH

Providers are loaded from DIR (its ``*.provider`` files) with PlainBox's own
provider and unit loading, and every unit they define is the ``job_list``
given to PlainBox's ``SessionResumeHelper``, as Checkbox does.

It prints the subset of SPEC §6 that PlainBox can express: ``format_version``,
``session_id``, ``metadata``, ``jobs`` (id → checksum), ``results``
(histories), ``desired_job_list``, ``mandatory_job_list``, ``run_list`` (in
PlainBox's order; compare it as a set) and ``discarded_jobs``. There is no
``checksum_rules``: 1.18.1 knows one rule. On failure it prints
``{"ok": false, "error": <class name>, "typed": <is a SessionResumeError>,
"message": ...}`` and exits 1. ``--time N`` resumes N times and adds the
median seconds of the resume call alone as ``resume_seconds`` (loading
providers and reading the file are outside it).
"""

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import time

from plainbox.impl.providers.v1 import InsecureProvider1PlugInCollection
from plainbox.impl.result import MemoryJobResult
from plainbox.impl.session.resume import SessionResumeError, SessionResumeHelper

# Metadata keys, and the first format version that stores each of them.
METADATA_SINCE = {
    "title": 1,
    "flags": 1,
    "running_job_name": 1,
    "app_blob": 2,
    "app_id": 3,
    "custom_joblist": 6,
    "rejected_jobs": 6,
    "last_job_start_time": 7,
    "remaining_todo_jobs": 11,
}


def load_units(provider_dirs):
    """Load every unit of the providers in ``provider_dirs`` with PlainBox's loader."""
    os.environ["PROVIDERPATH"] = os.pathsep.join(provider_dirs)
    collection = InsecureProvider1PlugInCollection()
    collection.load()
    for problem in collection.problem_list:
        print(f"plainbox_inspect: provider problem: {problem}", file=sys.stderr)
    units = []
    for provider in collection.get_all_plugin_objects():
        units.extend(provider.unit_list)
    return units


def session_paths(path):
    """Return (session file, location, session id) for a file or ``<id>.session`` dir."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        location, session_file = path, os.path.join(path, "session")
    else:
        location, session_file = os.path.dirname(path), path
    name = os.path.basename(location)
    if name.endswith(".session"):
        session_id = name[: -len(".session")]
    elif os.path.isdir(path):
        session_id = name
    else:
        session_id = os.path.basename(path)
    return session_file, location, session_id


def result_repr(result):
    """Return the SPEC §6 form of one PlainBox job result."""
    records = len(result.io_log) if isinstance(result, MemoryJobResult) else None
    return {
        "outcome": result.outcome,
        "comments": result.comments,
        "return_code": result.return_code,
        "execution_duration": result.execution_duration,
        "io_log_records": records,
    }


def metadata_repr(metadata, stored, version):
    """Return the SPEC §6 metadata object; keys absent from ``version`` are null."""
    values = {
        "title": metadata.title,
        "flags": sorted(metadata.flags),
        "running_job_name": metadata.running_job_name,
        "app_blob": stored.get("app_blob"),
        "app_id": metadata.app_id,
        "custom_joblist": getattr(metadata, "custom_joblist", None),
        "rejected_jobs": list(getattr(metadata, "rejected_jobs", None) or []),
        "last_job_start_time": getattr(metadata, "last_job_start_time", None),
        "remaining_todo_jobs": None,
    }
    return {
        key: (value if version >= METADATA_SINCE[key] else None)
        for key, value in values.items()
    }


def state_repr(state, discarded, json_repr, session_id):
    """Return the SPEC §6 object of a resumed PlainBox SessionState."""
    version = json_repr["version"]
    stored_metadata = json_repr["session"]["metadata"]
    results = {}
    for job_id, job_state in state.job_state_map.items():
        if job_state.result_history:
            results[job_id] = [result_repr(r) for r in job_state.result_history]
    return {
        "ok": True,
        "format_version": version,
        "session_id": session_id,
        "metadata": metadata_repr(state.metadata, stored_metadata, version),
        "jobs": {job.id: job.checksum for job in state.job_list},
        "results": results,
        "desired_job_list": [job.id for job in state.desired_job_list],
        "mandatory_job_list": [job.id for job in state.mandatory_job_list],
        "run_list": [job.id for job in state.run_list],
        "discarded_jobs": discarded,
    }


def resume_once(units, flags, location, data):
    """Resume ``data`` once; return (state, discarded job ids, seconds)."""
    discarded = []

    def early_cb(session):
        session.on_job_removed.connect(lambda job: discarded.append(job.id))

    helper = SessionResumeHelper(units, flags, location)
    start = time.perf_counter()
    state = helper.resume(data, early_cb)
    return state, discarded, time.perf_counter() - start


def main(argv=None):
    """Parse arguments, resume with PlainBox, print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider-dir", action="append", default=[])
    parser.add_argument("--flag", action="append", default=None)
    parser.add_argument("--time", type=int, default=0, metavar="N")
    parser.add_argument("path")
    args = parser.parse_args(argv)
    logging.getLogger("plainbox").setLevel(logging.ERROR)
    units = load_units(args.provider_dir)
    session_file, location, session_id = session_paths(args.path)
    with open(session_file, "rb") as stream:
        data = stream.read()
    try:
        state, discarded, seconds = resume_once(units, args.flag, location, data)
        timings = [seconds]
        timings += [resume_once(units, args.flag, location, data)[2] for _ in range(1, args.time)]
    except Exception as exc:  # noqa: BLE001 - every failure is reported, raw ones included
        print(json.dumps({
            "ok": False,
            "error": type(exc).__name__,
            "typed": isinstance(exc, SessionResumeError),
            "message": str(exc),
        }))
        return 1
    output = state_repr(state, discarded, json.loads(gzip.decompress(data)), session_id)
    if args.time:
        output["resume_seconds"] = statistics.median(timings)
    print(json.dumps(output, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
