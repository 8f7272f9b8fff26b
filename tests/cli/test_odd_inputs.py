"""What a new user types that the command could take the wrong way: options that do nothing
where they were given, values that look like options. One line saying what to do, exit 2."""

from __future__ import annotations

import pytest

from tests.cli.test_cli_foundation import one_clean_line
from tests.conftest import Cli


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
