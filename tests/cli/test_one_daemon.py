"""One daemon per home: a second `run` on the same home refuses at once and leaves the first alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli_foundation import one_clean_line
from tests.conftest import Cli
from tests.helpers import wait_for


@pytest.fixture
def first_daemon(cli: Cli, home: Path) -> Iterator[subprocess.Popen[str]]:
    (home / "config.toml").write_text("[server]\nport = 0\n")
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "calmirror", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_for(lambda: json.loads(cli("status", "--json").stdout)["daemon_running"], 20):
            proc.kill()
            pytest.fail(f"the daemon never started: {proc.communicate()[1][-2000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def test_a_second_run_on_the_same_home_exits_at_once_naming_the_first(
    cli: Cli, home: Path, first_daemon: subprocess.Popen[str]
) -> None:
    url = json.loads(cli("status", "--json").stdout)["local_url"]
    second = cli("run", timeout=30)
    assert second.returncode == 5
    line = one_clean_line(second)
    assert f"calmirror is already running for {home}" in line
    assert f"pid {first_daemon.pid}" in line and url in line
    assert line.endswith("; it keeps running: use that one, or stop it first to start another")
    # The first daemon is untouched: its record stays, status and local-account still name it.
    status = json.loads(cli("status", "--json").stdout)
    assert status["daemon_running"] and status["local_url"] == url
    assert (home / "daemon.pid").read_text().split() == [str(first_daemon.pid), url]
    assert json.loads(cli("local-account", "--json").stdout)["url"] == url
    # Commands that write state keep working beside the daemon.
    assert cli("outbox", "retry").returncode == 0
    assert first_daemon.poll() is None


def test_the_lock_goes_with_the_daemon_so_a_new_one_starts(
    cli: Cli, home: Path, first_daemon: subprocess.Popen[str]
) -> None:
    first_daemon.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel drops the lock
    first_daemon.wait(10)
    env = {**os.environ, "CALMIRROR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "calmirror", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (home / "daemon.pid").read_text().split()[:1] == [str(proc.pid)], 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert not (home / "daemon.pid").exists()
