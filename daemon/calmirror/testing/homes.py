"""Homes connected to an emulator, for tests and benchmarks that drive the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from calmirror import config, config_edit
from calmirror.account import connect
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State
from calmirror.testing import APP_PASSWORD, APPLE_ID


class Server(Protocol):
    """The emulator, or any stand-in for iCloud's front door that has the test account."""

    url: str


def connected_home(
    root: Path,
    emu: Server,
    *,
    linked: str | None = "Work",
    conflicts: tuple[str, ...] = ("Work",),
    extra_config: str = "",
) -> Home:
    """A home connected to the emulator with a linked calendar and conflict calendars chosen."""
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n" + extra_config, encoding="utf-8")
    state = State(home.state_db)
    try:
        calendars = connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD, emu.url)
    finally:
        state.close()
    ids = {c.name: c.id for c in calendars}
    if linked:
        config_edit.set_linked(home.config_file, ids[linked], also_conflict=False)
    config_edit.set_conflicts(home.config_file, [ids[n] for n in conflicts])
    return home


def engine_for(home: Home) -> Engine:
    return Engine(home, config.load(home.config_file), State(home.state_db))
