"""What a new user types that the command could take the wrong way (options that do nothing
where they were given, values that look like options: one line saying what to do, exit 2),
and what a command writes beside its own output when the server is gone."""

from __future__ import annotations

import re

import pytest

from calmirror.emulator import Emulator
from tests.cli.test_cli_foundation import connect, one_clean_line
from tests.conftest import Cli
from tests.helpers import APP_PASSWORD, APPLE_ID


@pytest.mark.parametrize("given", [["--days", "mon-fri"], ["--within", "09:00-17:00"]])
def test_availability_refuses_slot_hours_without_slots(cli: Cli, given: list[str]) -> None:
    """`availability --days mon-fri` printed the weekend's busy time too: the option shapes
    free slots only and was dropped without a word."""
    result = cli("availability", *given)
    assert result.returncode == 2
    line = one_clean_line(result)
    assert given[0] in line and "--slots" in line


def test_a_day_back_that_reads_as_an_option_says_how_to_write_it(cli: Cli) -> None:
    """`week -3d` answered "No such option: -3" and no more, though `week -- -3d` works."""
    refused = cli("week", "-3d")
    assert refused.returncode == 2
    assert "`calmirror week -- -3d`" in one_clean_line(refused)
    assert cli("week", "--", "-3d").returncode == 0


def test_sync_with_the_server_gone_writes_its_warnings_as_the_command_line_does(cli: Cli) -> None:
    """`calmirror sync` with iCloud unreachable put a daemon log line (a timestamp, WARNING and
    the logger's name) among its own lines."""
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD) as emu:
        assert connect(cli, emu).returncode == 0
        assert cli("link", "Work").returncode == 0
        assert cli("sync").returncode == 0
    gone = cli("sync")
    assert gone.returncode == 4
    said = [line for line in gone.stderr.splitlines() if line.strip()]
    assert any(line.startswith("warning: ") and "stopped answering" in line for line in said), gone.stderr
    assert not [line for line in said if re.match(r"\d{4}-\d\d-\d\d ", line)], gone.stderr
    assert said[-1].startswith("calmirror: 1 of 1 calendars could not be synced")
