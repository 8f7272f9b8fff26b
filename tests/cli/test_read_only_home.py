"""A home that cannot be written (a read-only mount, a backup restored read-only): every command
says so in one line, without the advice to move state.db aside (which would throw away every
link, mirror and waiting appointment), and doctor lists it as a problem among its other checks.
Needs root, to bind-mount the home read-only; skipped without it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from calmirror.testing.homes import connected_home
from tests.cli.test_cli_foundation import one_clean_line
from tests.conftest import Cli


@pytest.fixture
def read_only_home(tmp_path: Path, emu: Emulator) -> Iterator[Path]:
    """A connected home, then the same folder mounted read-only elsewhere."""
    writable = connected_home(tmp_path / "home", emu).data_dir
    assert Cli(writable)("local-account").returncode == 0  # a home in use has its local login
    view = tmp_path / "read-only"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(writable), str(view)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs root to bind-mount the home ({mounted.stderr.strip()})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.parametrize("command", [["status"], ["sync"], ["availability"], ["outbox", "list"]])
def test_a_read_only_home_is_said_and_state_db_is_not_to_be_moved(read_only_home: Path, command: list[str]) -> None:
    result = Cli(read_only_home)(*command)
    assert result.returncode == 5
    line = one_clean_line(result)
    assert "cannot be written" in line and "read-only" in line
    assert "move it aside" not in line


def test_doctor_lists_a_read_only_home_among_its_checks(read_only_home: Path) -> None:
    result = Cli(read_only_home)("doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr and not result.stderr
    problems = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("problem")]
    assert problems == ["local", "watcher:", "state:"], result.stdout
