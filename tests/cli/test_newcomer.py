"""A newcomer's mistakes and interruptions: each gets one line that says what to do next."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.emulator.seed import generated_items
from tests.cli.test_cli_foundation import connect, one_clean_line
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, wait_for

BIG = 3000


def test_a_refused_first_connect_says_to_connect_again_not_to_reconnect(cli: Cli, emu: Emulator) -> None:
    result = connect(cli, emu, "wxyz-wxyz-wxyz-wxyz")
    assert result.returncode == 3
    line = one_clean_line(result)
    assert "app-specific password" in line and "`calmirror connect` again" in line
    assert "--again" not in line  # nothing is connected yet: `connect --again` would only refuse
    assert cli("connect", "--again", input=APP_PASSWORD + "\n").returncode == 2


@pytest.fixture
def big_emu() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emulator:
        emulator.bulk_load(emulator.calendar_id("Work"), generated_items(BIG, date.today()))
        yield emulator


def _mirrored(home: Path) -> int:
    folder = home / "store" / "collection-root" / "calmirror" / "icloud-work"
    return len(list(folder.glob("*.ics"))) if folder.is_dir() else 0


def test_ctrl_c_in_a_long_sync_says_so_and_the_next_sync_carries_on(cli: Cli, big_emu: Emulator, home: Path) -> None:
    assert connect(cli, big_emu).returncode == 0
    assert cli("link", "Work").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "calmirror", "sync"],
        env={**os.environ, "CALMIRROR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: _mirrored(home) > 0, 120), "the sync never wrote a mirrored event"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = _mirrored(home)
    assert proc.returncode == 130
    assert [line for line in err.splitlines() if line.strip()] == [
        "calmirror: interrupted; what was finished is kept: run the command again to carry on"
    ]
    again = cli("sync", timeout=300)
    assert again.returncode == 0, again.stderr
    added = int(re.search(r"Work: (\d+) added", again.stdout).group(1))  # type: ignore[union-attr]
    total = _mirrored(home)
    assert total == len(big_emu.items(big_emu.calendar_id("Work")))
    # It carried on: batches the first sync recorded were not fetched again (a batch written
    # to the folder but not yet recorded when Ctrl-C came is written again, the same text).
    assert total - kept <= added < total


def test_emulator_serve_says_how_to_connect_to_it(cli: Cli) -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "calmirror", "emulator", "serve"),
            *("--apple-id", APPLE_ID, "--password-env", "PW", "--port", "0", "--events", "20"),
        ],
        env={**os.environ, "PW": APP_PASSWORD},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stderr.readline().strip() == "Putting 20 generated events into Work..."
        hint = next(line for line in iter(proc.stdout.readline, "") if line.startswith("Connect calmirror to it: "))
        command = hint.split(": ", 1)[1].split()
        assert command[:2] == ["calmirror", "connect"] and APP_PASSWORD not in hint
        connected = cli(*command[1:], "--password-stdin", input=APP_PASSWORD + "\n")
        assert connected.returncode == 0, connected.stderr
        assert "Connected " + APPLE_ID in connected.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_a_taken_port_says_how_to_choose_another(cli: Cli, home: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        (home / "config.toml").write_text(f"[server]\nport = {holder.getsockname()[1]}\n")
        result = cli("run", timeout=60)
    finally:
        holder.close()
    assert result.returncode == 5
    line = one_clean_line(result)
    assert "the address is already in use" in line and "set port under [server] in config.toml" in line
