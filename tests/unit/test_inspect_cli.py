"""``resumectl inspect``: every sample session resumes offline exactly as its manifest says."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from resumed.cli.main import main
from resumed.session.formats import VERSIONS

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
MANIFESTS = sorted(SAMPLES.glob("*/*.manifest.json"))
RESUMECTL = Path(sys.executable).with_name("resumectl")


@pytest.fixture
def synth_providers(tmp_path: Path) -> Path:
    """A provider dir holding the provider the samples were written against."""
    location = tmp_path / "synth"
    (location / "units").mkdir(parents=True)
    shutil.copy(SAMPLES / "units" / "synth-small.pxu", location / "units")
    providers = tmp_path / "providers"
    providers.mkdir()
    (providers / "synth.provider").write_text(
        "[PlainBox Provider]\nname = com.example:synth\nnamespace = com.example.synth\n"
        f"version = 1.0\nlocation = {location}\n"
    )
    return providers


def inspect_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["inspect", "--json", *argv])
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return status, json.loads(out)


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_sample_inspects_as_its_manifest_says(
    manifest_path: Path, synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads(manifest_path.read_text())
    session_dir = SAMPLES / manifest["session_dir"]
    status, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session_dir))
    assert status == 0, report
    version = manifest["format_version"]
    assert report["ok"] is True
    assert report["format_version"] == version
    assert report["session_id"] == session_dir.name.removesuffix(".session")
    legacy = manifest["generator"]["package"] != "checkbox-ng" or "1.18.1" in str(manifest_path)
    assert report["checksum_rules"] == (["legacy"] if legacy else ["template-id"])
    retained = {job["id"]: job for job in manifest["jobs"] if job["retained_after_resume"]}
    assert report["jobs"] == {job_id: job["checksum"] for job_id, job in retained.items()}
    for job_id, job in retained.items():
        outcomes = [result["outcome"] for result in report["results"].get(job_id, [])]
        assert outcomes == job["outcome_history"], job_id
        assert (job_id in report["run_list"]) == job["in_run_list"], job_id
    assert report["desired_job_list"] == manifest["desired_job_list"]
    expected_mandatory = (
        manifest["mandatory_job_list"] if VERSIONS[version].has("mandatory_job_list") else []
    )
    assert report["mandatory_job_list"] == expected_mandatory
    assert len(report["discarded_jobs"]) == manifest["counts"]["discarded_on_resume"]
    assert len(report["run_list"]) == manifest["counts"]["run_list"]
    meta = manifest["metadata"]
    assert report["metadata"]["running_job_name"] == meta["running_job_name"]
    assert report["metadata"]["rejected_jobs"] == (
        meta["rejected_jobs"] if VERSIONS[version].has("rejected_jobs") else None
    )


def test_memory_results_count_io_log_records_and_disk_results_do_not(
    synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = SAMPLES / "checkbox-git-2026-08" / "small-v11.session"
    _, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session))
    results = report["results"]
    assert results["com.example.synth::synth/attach-dmesg"][0]["io_log_records"] == 1
    assert results["com.example.synth::synth/devices"][0]["io_log_records"] is None
    assert results["com.example.synth::synth/manual-audio"][0] == {
        "outcome": "skip",
        "comments": "No headphones available",
        "return_code": None,
        "execution_duration": 41.3004,
        "io_log_records": 0,
    }


def test_session_file_path_gives_the_directory_session_id(
    synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = SAMPLES / "checkbox-1.18.1" / "small-v5.session" / "session"
    _, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session))
    assert report["session_id"] == "small-v5"


def test_without_the_provider_the_session_is_unknown_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = SAMPLES / "checkbox-1.18.1" / "small-v7.session"
    status, report = inspect_json(capsys, "--provider-dir", str(tmp_path), str(session))
    assert status == 1
    assert report["ok"] is False
    assert report["error"] == "CorruptedSessionError"
    assert report["reason"] == "unknown-jobs"
    assert "com.example.synth::synth/reboot" in report["job_ids"]


def copy_session(tmp_path: Path, name: str = "small-v11") -> Path:
    target = tmp_path / f"{name}.session"
    shutil.copytree(SAMPLES / "checkbox-git-2026-08" / f"{name}.session", target)
    return target


def test_corrupted_session_prints_one_line_exits_1_and_is_not_touched(
    tmp_path: Path, synth_providers: Path
) -> None:
    session = copy_session(tmp_path)
    blob = (session / "session").read_bytes()[:-10]
    (session / "session").write_bytes(blob)
    before = hashlib.sha256(blob).hexdigest(), (session / "session").stat().st_mtime_ns
    proc = subprocess.run(
        [str(RESUMECTL), "inspect", "--provider-dir", str(synth_providers), str(session)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "CorruptedSessionError" in proc.stderr
    assert "corrupted" in proc.stderr
    data = (session / "session").read_bytes()
    assert (hashlib.sha256(data).hexdigest(), (session / "session").stat().st_mtime_ns) == before
    assert sorted(p.name for p in session.iterdir()) == ["io-logs", "session"]


def test_corrupted_session_json_failure_object(tmp_path: Path, synth_providers: Path) -> None:
    session = copy_session(tmp_path)
    (session / "session").write_bytes(b"garbage")
    proc = subprocess.run(
        [str(RESUMECTL), "inspect", "--json", "--provider-dir", str(synth_providers), str(session)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {
        "ok": False,
        "error": "CorruptedSessionError",
        "reason": "corrupted",
        "message": "Cannot decompress session data",
        "job_ids": [],
    }


def test_symlinked_session_file_is_an_io_error(
    tmp_path: Path, synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = copy_session(tmp_path)
    (session / "real").write_bytes((session / "session").read_bytes())
    (session / "session").unlink()
    (session / "session").symlink_to(session / "real")
    status, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session))
    assert status == 1
    assert (report["error"], report["reason"]) == ("OSError", "io-error")


def test_readable_output_names_the_session_and_its_jobs(
    synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = SAMPLES / "checkbox-git-2026-08" / "small-v11.session"
    assert main(["inspect", "--provider-dir", str(synth_providers), str(session)]) == 0
    out = capsys.readouterr().out
    assert "small-v11 (format 11)" in out
    assert "com.example.synth::synth/device-check-dev00000: fail, fail" in out


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"]])
def test_help_lists_the_checksum_eras(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    for era in ("legacy", "template-id"):
        assert f"  {era} " in out


@pytest.mark.parametrize(
    "argv",
    [[], ["inspect"], ["inspect", "--flag", "bogus", "x"], ["frobnicate"], ["show"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_inspect_does_not_import_dbus_libraries(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom resumed.cli.main import main\n"
        f"main(['inspect', '--json', '--provider-dir', {str(tmp_path)!r}, {str(tmp_path)!r}])\n"
        "bad = {'gi', 'pydbus', 'sdnotify', 'watchdog'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_fifo_session_file_is_an_io_error_and_never_blocks(
    tmp_path: Path, synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "fifo.session"
    session.mkdir()
    os.mkfifo(session / "session")
    status, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session))
    assert (status, report["reason"]) == (1, "io-error")


def test_changed_job_is_incompatible_unless_checksums_are_ignored(
    tmp_path: Path, synth_providers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pxu = next((synth_providers.parent / "synth" / "units").iterdir())
    pxu.write_text(pxu.read_text().replace("command: dmesg", "command: dmesg -T"))
    session = SAMPLES / "checkbox-git-2026-08" / "small-v11.session"
    status, report = inspect_json(capsys, "--provider-dir", str(synth_providers), str(session))
    assert (status, report["error"], report["reason"]) == (
        1,
        "IncompatibleJobError",
        "incompatible-job",
    )
    assert report["job_ids"] == ["com.example.synth::synth/attach-dmesg"]
    status, report = inspect_json(
        capsys,
        "--flag",
        "ignore-job-checksums",
        "--provider-dir",
        str(synth_providers),
        str(session),
    )
    assert status == 0
    assert report["ok"] is True


def test_provider_dirs_default_to_providerpath(
    synth_providers: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERPATH", f"/nonexistent:{synth_providers}")
    session = SAMPLES / "checkbox-1.18.1" / "small-v6.session"
    status, report = inspect_json(capsys, str(session))
    assert (status, report["ok"]) == (0, True)
