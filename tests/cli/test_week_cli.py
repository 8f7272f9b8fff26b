"""`calmirror week` as a user runs it: days with weekday names, titles and calendars, free ranges,
and the same busy time as `availability --json`."""

from __future__ import annotations

import json
from pathlib import Path

from calmirror.emulator import Emulator
from tests.cli.test_cli_foundation import one_clean_line
from tests.conftest import Cli
from tests.helpers import connected_home, engine_for


def _mirrored(home: Path, emu: Emulator) -> None:
    engine = engine_for(connected_home(home, emu, conflicts=("Work", "Home")))
    client = engine.client()
    try:
        assert all(r.error is None for r in engine.mirror_pass(client))
    finally:
        client.close()
        engine.state.close()


def test_week_shows_days_events_and_free_ranges_and_agrees_with_availability(
    cli: Cli, emu: Emulator, home: Path
) -> None:
    _mirrored(home, emu)
    text = cli("week", "2026-12-07", "--no-daemon")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "Monday 7 December" in lines and "Sunday 13 December" in lines
    assert any("Dentist" in line and "· Home" in line for line in lines)
    assert any(line.strip().startswith("free 09:30–17:00") for line in lines)

    week = json.loads(cli("week", "2026-12-07", "--no-daemon", "--json").stdout)
    busy = json.loads(cli("availability", "--from", "2026-12-07", "--to", "2026-12-14", "--json", "--no-daemon").stdout)
    assert week["busy"] == busy["intervals"] and busy["intervals"]
    assert [d["weekday"] for d in week["days"]][:2] == ["Monday", "Tuesday"]


def test_a_date_nobody_writes_is_one_line(cli: Cli, emu: Emulator, home: Path) -> None:
    _mirrored(home, emu)
    result = cli("week", "the day after", "--no-daemon")
    assert result.returncode == 2
    assert "next monday" in one_clean_line(result)


def test_a_date_of_two_words_needs_no_quotes(cli: Cli, emu: Emulator, home: Path) -> None:
    _mirrored(home, emu)
    quoted = json.loads(cli("week", "next monday", "--no-daemon", "--json").stdout)
    unquoted = json.loads(cli("week", "next", "monday", "--no-daemon", "--json").stdout)
    assert unquoted == quoted
