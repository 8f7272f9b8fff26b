"""Small helpers for tests that drive real servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from calmirror import config, config_edit
from calmirror.account import connect
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State

APPLE_ID = "me@example.com"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def event(uid: str, summary: str = "Meeting", start: str = "20261201T100000Z",
          end: str | None = "20261201T110000Z", extra: str = "") -> str:
    end_line = f"DTEND:{end}\r\n" if end else ""
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror tests//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{start}\r\n{end_line}SUMMARY:{summary}\r\n"
            f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


def wait_for(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def connected_home(root: Path, emu: object, *, linked: str | None = "Work",
                   conflicts: tuple[str, ...] = ("Work",), extra_config: str = "") -> Home:
    """A home connected to the emulator with a linked calendar and conflict calendars chosen."""
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n" + extra_config, encoding="utf-8")
    state = State(home.state_db)
    try:
        calendars = connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD,
                            emu.url)  # type: ignore[attr-defined]
    finally:
        state.close()
    ids = {c.name: c.id for c in calendars}
    if linked:
        config_edit.set_linked(home.config_file, ids[linked], also_conflict=False)
    config_edit.set_conflicts(home.config_file, [ids[n] for n in conflicts])
    return home


def engine_for(home: Home) -> Engine:
    return Engine(home, config.load(home.config_file), State(home.state_db))
