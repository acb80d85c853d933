"""Write a session with PlainBox's own SessionState and SessionSuspendHelperN.

Run by the PlainBox reference venv's python (checkbox-ng 1.18.1)::

    plainbox_make_session.py --provider-dir DIR SPEC.json OUT.session

SPEC is a JSON object::

    {"version": 1..7,
     "results": [[job_id, {"outcome": "pass", "comments": null, "return_code": 0,
                           "execution_duration": 1.5,
                           "io_log": [[0.0, "stdout", "text"]], "disk": false}], ...],
     "desired": [job ids], "mandatory": [job ids],
     "metadata": {"title": ..., "flags": [...], "running_job_name": ...,
                  "app_id": ..., "app_blob": "<text, stored as UTF-8 bytes>",
                  "custom_joblist": false, "rejected_jobs": [...],
                  "last_job_start_time": 1.0}}

Results are replayed in order through ``SessionState.update_job_result`` (a
resource job's result instantiates its templates, as in a real run), so list a
resource job before the jobs generated from it. A ``disk`` result's io log is
written with PlainBox's ``IOLogRecordWriter`` to ``OUT.session/io-logs/``.
The session is suspended with ``SessionSuspendHelper<version>`` and written
to ``OUT.session/session``.
"""

import argparse
import gzip
import json
import logging
import os
import sys

from plainbox.impl.providers.v1 import InsecureProvider1PlugInCollection
from plainbox.impl.result import DiskJobResult, IOLogRecord, IOLogRecordWriter, MemoryJobResult
from plainbox.impl.runner import slugify
from plainbox.impl.session import suspend
from plainbox.impl.session.state import SessionState


def load_units(provider_dirs):
    """Load every unit of the providers in ``provider_dirs`` with PlainBox's loader."""
    os.environ["PROVIDERPATH"] = os.pathsep.join(provider_dirs)
    collection = InsecureProvider1PlugInCollection()
    collection.load()
    if collection.problem_list:
        raise SystemExit(f"provider problems: {collection.problem_list!r}")
    units = []
    for provider in collection.get_all_plugin_objects():
        units.extend(provider.unit_list)
    return units


def build_result(job_id, spec, session_dir, serial):
    """Build a MemoryJobResult or DiskJobResult from one SPEC result."""
    records = [
        IOLogRecord(delay, stream, text.encode("UTF-8"))
        for delay, stream, text in spec.get("io_log", [])
    ]
    data = {
        "outcome": spec.get("outcome"),
        "comments": spec.get("comments"),
        "return_code": spec.get("return_code"),
        "execution_duration": spec.get("execution_duration"),
    }
    if not spec.get("disk"):
        data["io_log"] = records
        return MemoryJobResult(data)
    suffix = f".{serial}" if serial else ""
    filename = os.path.join(
        session_dir, "io-logs", f"{slugify(job_id)}{suffix}.record.gz")
    with gzip.open(filename, "wt", encoding="UTF-8") as raw:
        writer = IOLogRecordWriter(raw)
        for record in records:
            writer.write_record(record)
    data["io_log_filename"] = filename
    return DiskJobResult(data)


def build_state(units, spec, session_dir):
    """Build a PlainBox SessionState the way a run would leave it."""
    state = SessionState(units)
    seen = {}
    for job_id, result_spec in spec.get("results", []):
        serial = seen.get(job_id, 0)
        seen[job_id] = serial + 1
        job = state.job_state_map[job_id].job
        state.update_job_result(job, build_result(job_id, result_spec, session_dir, serial))
    jobs = state.job_state_map
    state.update_mandatory_job_list([jobs[i].job for i in spec.get("mandatory", [])])
    state.update_desired_job_list([jobs[i].job for i in spec.get("desired", [])])
    meta = spec.get("metadata", {})
    state.metadata.title = meta.get("title")
    state.metadata.flags = set(meta.get("flags", []))
    state.metadata.running_job_name = meta.get("running_job_name")
    if meta.get("app_blob") is not None:
        state.metadata.app_blob = meta["app_blob"].encode("UTF-8")
    state.metadata.app_id = meta.get("app_id")
    state.metadata.custom_joblist = meta.get("custom_joblist", False)
    state.metadata.rejected_jobs = meta.get("rejected_jobs", [])
    state.metadata.last_job_start_time = meta.get("last_job_start_time")
    return state


def main(argv=None):
    """Parse arguments, build the state, suspend it, write the session directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider-dir", action="append", default=[])
    parser.add_argument("spec")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    logging.getLogger("plainbox").setLevel(logging.ERROR)
    with open(args.spec, encoding="UTF-8") as stream:
        spec = json.load(stream)
    session_dir = os.path.abspath(args.out)
    os.makedirs(os.path.join(session_dir, "io-logs"), exist_ok=True)
    os.makedirs(os.path.join(session_dir, "session-share"), exist_ok=True)
    state = build_state(load_units(args.provider_dir), spec, session_dir)
    helper = getattr(suspend, f"SessionSuspendHelper{spec['version']}")()
    data = helper.suspend(state, session_dir)
    with open(os.path.join(session_dir, "session"), "wb") as stream:
        stream.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
