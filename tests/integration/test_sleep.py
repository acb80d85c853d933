"""Sleep: a logind delay inhibitor (python-dbusmock's template) released and re-taken."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

ROOT = "/org/resumed/Resume1"
MANAGER = "org.resumed.Resume1.Manager"
LOGIN = "org.freedesktop.login1"


@pytest.fixture
def logind(private_bus) -> Iterator[None]:
    """python-dbusmock's logind template on the private bus."""
    mock = subprocess.Popen([sys.executable, "-m", "dbusmock", "--system", "--template", "logind"],
                            env=private_bus.env(), stdout=subprocess.DEVNULL)
    private_bus.wait_for(
        lambda: private_bus.run(["busctl", f"--address={private_bus.address}", "status", LOGIN],
                                check=False).returncode == 0, "logind mock")
    yield
    mock.terminate()
    mock.wait()


def _inhibitors(private_bus) -> list[list]:
    return private_bus.busctl("call", LOGIN, "/org/freedesktop/login1",
                              "org.freedesktop.login1.Manager", "ListInhibitors")["data"][0]


def _prepare_for_sleep(private_bus, going: bool) -> None:
    private_bus.busctl("call", LOGIN, "/org/freedesktop/login1", "org.freedesktop.DBus.Mock",
                       "EmitSignal", "sssav", "org.freedesktop.login1.Manager",
                       "PrepareForSleep", "b", "1", "b", "true" if going else "false")


def test_sleep_releases_the_inhibitor_and_wake_up_retakes_it_and_rescans(
        private_bus, workspace, start_daemon, logind) -> None:
    workspace.config.write_text("debounce = 3600\nrescan_interval = 3600\n")
    start_daemon()
    private_bus.wait_for(lambda: private_bus.get_property(ROOT, MANAGER, "State") == "ready",
                         "State ready")
    # The mock drops an inhibitor when its fd is closed: listed means the fd was received.
    private_bus.wait_for(lambda: [i[:4] for i in _inhibitors(private_bus)] == [
        ["sleep", "resumed", "Save session state before sleep", "delay"]], "inhibitor taken")
    _prepare_for_sleep(private_bus, True)
    private_bus.wait_for(lambda: _inhibitors(private_bus) == [], "inhibitor released")
    workspace.add_sample("git", 11)
    _prepare_for_sleep(private_bus, False)
    private_bus.wait_for(lambda: len(_inhibitors(private_bus)) == 1, "inhibitor taken again")
    private_bus.wait_for(lambda: [r[0] for r in private_bus.list_sessions()] == ["git-v11"],
                         "the session found by the wake-up rescan")


def test_daemon_runs_without_logind(private_bus, workspace, start_daemon) -> None:
    workspace.add_sample("git", 11)
    daemon = start_daemon()
    private_bus.wait_for(lambda: private_bus.get_property(ROOT, MANAGER, "State") == "ready",
                         "State ready")
    assert "No logind sleep inhibitor" in daemon.log.read_text()
