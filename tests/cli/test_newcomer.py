"""A newcomer's mistakes and interruptions: each gets one line that says what to do next."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.emulator.seed import generated_items
from tests.cli.test_cli_foundation import connect, one_clean_line
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID, emulator_serve, interruptible, wait_for

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


def _recorded(cli: Cli, name: str) -> int:
    mirrors = json.loads(cli("status", "--json").stdout)["mirrors"]
    return next((int(m["items"]) for m in mirrors if m["name"] == name), 0)


def test_ctrl_c_in_a_long_sync_says_so_and_the_next_sync_carries_on(cli: Cli, big_emu: Emulator, home: Path) -> None:
    assert connect(cli, big_emu).returncode == 0
    assert cli("link", "Work").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "calmirror", "sync"],
        env={**os.environ, "CALMIRROR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        # Interrupted once a batch is recorded (the folder fills a moment before the record).
        assert wait_for(lambda: _recorded(cli, "Work") > 0, 120), "the sync never recorded a mirrored event"
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
    proc = emulator_serve("--events", "20")
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


def _last_sync(cli: Cli, name: str) -> float:
    mirrors = json.loads(cli("status", "--json").stdout)["mirrors"]
    return next((m["last_sync"] or 0.0 for m in mirrors if m["name"] == name), 0.0)


def test_an_idle_daemon_logs_nothing_for_passes_that_changed_nothing(cli: Cli, emu: Emulator, home: Path) -> None:
    assert connect(cli, emu).returncode == 0
    assert cli("link", "Work").returncode == 0
    (home / "config.toml").write_text((home / "config.toml").read_text() + "\n[server]\nport = 0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "calmirror", "run"],
        env={**os.environ, "CALMIRROR_HOME": str(home)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: _last_sync(cli, "Work") > 0, 60), "the first pass never ended"
        first = _last_sync(cli, "Work")
        assert cli("sync", "--now").returncode == 0
        assert wait_for(lambda: _last_sync(cli, "Work") > first, 60), "the second pass never ended"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "sync Work: 16 added, 0 updated, 0 deleted, 0 skipped" in err  # the first pass is news
    assert "0 added, 0 updated, 0 deleted, 0 skipped" not in err, err  # the idle one is not


def _with_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is its stdin (a pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_d_at_the_password_prompt_is_one_line_and_exit_2(home: Path) -> None:
    controller, terminal = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calmirror", "connect", "--apple-id", APPLE_ID, "--server", "http://127.0.0.1:9/"],
        env={**os.environ, "CALMIRROR_HOME": str(home)},
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_with_terminal,  # the child must own the pty to be prompted on it
    )
    os.close(terminal)
    try:
        # The prompt's text goes to stdout; the hidden read writes to the terminal once it has
        # turned echo off (and flushed what was typed before), so Ctrl-D goes after that.
        ready, _, _ = select.select([controller], [], [], 60)
        assert ready and os.read(controller, 1024), "never asked for the password"
        os.write(controller, b"\x04")  # Ctrl-D
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    assert proc.returncode == 2
    assert [line for line in err.splitlines() if line.strip()] == ["calmirror: no password given; nothing was changed"]


def test_status_in_an_80_column_terminal_keeps_each_problem_on_one_line(cli: Cli, home: Path) -> None:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as gone:
        assert connect(cli, gone).returncode == 0
        assert cli("link", "Work").returncode == 0
        assert cli("sync").returncode == 0
    assert cli("sync").returncode == 4  # iCloud stopped answering
    shown = cli("status", env={"COLUMNS": "80"}).stdout.splitlines()
    table = shown[shown.index("Mirrors") + 1 : next(i for i, line in enumerate(shown) if line.startswith("(!)"))]
    assert all(len(line) <= 80 for line in table), "\n".join(table)
    assert any(line.split()[:2] == ["Work", "(!)"] and "icloud-work" in line for line in table), table
    problem = next(line for line in shown if line.startswith("(!) Work: "))
    assert problem.endswith("connection refused")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["availability", "--slots", "1h", "--within"],
            "calmirror: Option '--within' requires an argument; see `calmirror availability --help`",
        ),
        (["link"], "calmirror: Missing argument 'calendar'; see `calmirror link --help`"),
        (["sync", "--bogus"], "calmirror: No such option: --bogus; see `calmirror sync --help`"),
        (["frobnicate"], "calmirror: No such command 'frobnicate'; see `calmirror --help`"),
    ],
)
def test_a_usage_mistake_is_one_line_too(cli: Cli, args: list[str], said: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert one_clean_line(result) == said and not result.stdout
