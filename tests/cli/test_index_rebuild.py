"""After an upgrade that changes how busy time is computed (INDEX_VERSION), the first question
rebuilds the busy index: seconds per thousand events, which a user waited through in silence."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.emulator.seed import generated_items
from calmirror.state import State
from calmirror.testing.homes import connected_home
from tests.conftest import Cli

NOTE = "The busy index is being rebuilt (calmirror was upgraded, or availability.timezone or your addresses changed)"


def test_the_first_question_after_an_upgrade_says_the_index_is_rebuilt(cli: Cli, emu: Emulator, home: Path) -> None:
    emu.bulk_load(emu.calendar_id("Work"), generated_items(1000, date.today()))
    connected_home(home, emu, conflicts=("Work",))
    assert cli("sync").returncode == 0
    window = ("--from", "today", "--to", "+2d", "--json", "--no-daemon")
    before = cli("availability", *window)
    assert before.returncode == 0, before.stderr

    state = State(home / "state.db")
    try:  # what an older calmirror's index looks like to this one: built under other rules
        state.busy_reset("an older calmirror", (0, 1))
    finally:
        state.close()
    rebuilt = cli("availability", *window)
    assert rebuilt.returncode == 0
    assert rebuilt.stderr.splitlines() == [f"{NOTE}: 1,016 mirrored events, once."]
    assert rebuilt.stdout == before.stdout  # the same answer once rebuilt

    again = cli("availability", *window)
    assert again.returncode == 0 and again.stderr == ""
    assert cli("week", "--no-daemon").stderr == ""
