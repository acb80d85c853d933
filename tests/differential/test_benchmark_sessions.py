"""The benchmark's generated sessions resume the same in PlainBox 1.18.1 and in ours.

`make bench` compares our resume with PlainBox's on these files, so both must
resume them to the same state, or the comparison would be meaningless.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize(("n_jobs", "io_logs"), [(50, "inline"), (500, "inline"), (500, "disk")])
def test_benchmark_session_resumes_the_same_in_plainbox_and_ours(
    plainbox: Any, ours: Any, tmp_path: Path, n_jobs: int, io_logs: str
) -> None:
    """A generated benchmark session: same jobs, results, lists and discards."""
    generate = importlib.import_module("benchmarks.generate")
    data = generate.generate(n_jobs, root=tmp_path, io_logs=io_logs)
    theirs = plainbox.inspect(data.session_dir, [data.provider_dir])
    mine = ours(data.session_dir, [data.provider_dir])
    assert theirs["ok"], (theirs, mine)
    assert mine["ok"], (theirs, mine)
    assert len(theirs["jobs"]) == n_jobs
    for key in ("jobs", "results", "mandatory_job_list", "metadata"):
        assert mine[key] == theirs[key], key
    assert sorted(mine["run_list"]) == sorted(theirs["run_list"])
    assert sorted(mine["discarded_jobs"]) == sorted(theirs["discarded_jobs"])
    assert mine["desired_job_list"] == list(dict.fromkeys(theirs["desired_job_list"]))
