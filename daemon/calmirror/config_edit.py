"""Edits to the config file made by commands (`link`, `conflicts`, privacy).

tomlkit keeps the user's comments and layout; the edited text is validated with the
same parser the daemon uses before it replaces the file, so a command can never leave
a config behind that the daemon would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from calmirror import config
from calmirror.errors import ConfigError
from calmirror.home import write_private


def _edit(file: Path, change: Callable[[tomlkit.TOMLDocument], None]) -> config.Settings:
    text = config.read_text(file) if file.exists() else ""  # a byte-order mark is dropped on rewrite
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.TOMLKitError as exc:
        raise ConfigError(str(file), None, f"not valid TOML ({exc})") from None
    change(doc)
    new_text = tomlkit.dumps(doc)
    settings = config.parse(file, tomlkit.loads(new_text).unwrap())
    write_private(file, new_text)
    return settings


def _icloud(doc: tomlkit.TOMLDocument) -> Table:
    if "icloud" not in doc:
        doc["icloud"] = tomlkit.table()
    table = doc["icloud"]
    assert isinstance(table, Table)
    return table


def set_linked(file: Path, calendar_id: str | None, *, also_conflict: bool) -> config.Settings:
    def change(doc: tomlkit.TOMLDocument) -> None:
        table = _icloud(doc)
        if calendar_id is None:
            table.pop("linked", None)
            return
        table["linked"] = calendar_id
        conflicts = list(table.get("conflicts", []))
        if also_conflict and calendar_id not in conflicts:
            table["conflicts"] = [*conflicts, calendar_id]

    return _edit(file, change)


def set_conflicts(file: Path, calendar_ids: list[str]) -> config.Settings:
    def change(doc: tomlkit.TOMLDocument) -> None:
        _icloud(doc)["conflicts"] = list(dict.fromkeys(calendar_ids))

    return _edit(file, change)


def set_calendar_details(file: Path, calendar_id: str, details: str) -> config.Settings:
    def change(doc: tomlkit.TOMLDocument) -> None:
        if "calendars" not in doc:
            doc["calendars"] = tomlkit.table(is_super_table=True)
        calendars = doc["calendars"]
        assert isinstance(calendars, Table)
        if calendar_id not in calendars:
            calendars[calendar_id] = tomlkit.table()
        entry = calendars[calendar_id]
        assert isinstance(entry, Table)
        entry["details"] = details

    return _edit(file, change)
