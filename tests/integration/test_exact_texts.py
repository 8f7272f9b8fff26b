"""Busy time comes from iCloud's exact text, whatever the local mirror could store.

A plain CalDAV server on loopback (`CorpusServer`) serves the objects verbatim, a real
mirror pass writes them into the real local store, and busy time is read back through
`BusySources`, which the guard, the free-busy REPORT and `availability` share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from calmirror import config, config_edit
from calmirror.account import connect
from calmirror.availability.sources import BusySources
from calmirror.doctor import check_mirrors
from calmirror.engine import Engine
from calmirror.home import Home
from calmirror.state import State
from calmirror.sync_report import SyncReport
from tests.corpus_server import CorpusServer, FakeCalendar
from tests.helpers import APP_PASSWORD, APPLE_ID, event

DAILY_FOREVER = event(
    "daily-forever", "Stand-up", "20261201T090000Z", "20261201T093000Z", extra="RRULE:FREQ=DAILY;COUNT=1000000000\r\n"
)
GARBAGE = "<html><body>502 Bad Gateway</body></html>"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def connected(root: Path, server: CorpusServer, calendar_id: str) -> Home:
    home = Home(config_file=root / "config.toml", data_dir=root)
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n", encoding="utf-8")
    state = State(home.state_db)
    try:
        connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD, server.url)
    finally:
        state.close()
    config_edit.set_conflicts(home.config_file, [calendar_id])
    return home


def mirrored_once(tmp_path: Path, items: dict[str, object]) -> tuple[Engine, SyncReport]:
    """One real mirror pass of a calendar "SHAPES" holding `items`, served verbatim."""
    with CorpusServer(APPLE_ID, APP_PASSWORD, [FakeCalendar("SHAPES", "Shapes", items)]) as server:  # type: ignore[arg-type]
        home = connected(tmp_path, server, "SHAPES")
        engine = Engine(home, config.load(home.config_file), State(home.state_db))
        client = engine.client()
        try:
            (report,) = engine.mirror_pass(client)
        finally:
            client.close()
    return engine, report


#: The busy time of DAILY_FOREVER and the "plain" event on 10 December 2026.
STAND_UP_AND_PLAIN = [(utc(2026, 12, 10, 9), utc(2026, 12, 10, 9, 30)), (utc(2026, 12, 10, 14), utc(2026, 12, 10, 15))]


def busy_on_december_10(engine: Engine) -> list[tuple[datetime, datetime]]:
    return BusySources(engine.store, engine.state, engine.settings).busy(utc(2026, 12, 10), utc(2026, 12, 11))


def test_an_object_the_mirror_refuses_still_counts_from_its_exact_text(tmp_path: Path) -> None:
    items: dict[str, object] = {
        "plain.ics": event("plain", "Plain", "20261210T140000Z", "20261210T150000Z"),
        "daily.ics": DAILY_FOREVER,
        "junk.ics": GARBAGE,
    }
    engine, report = mirrored_once(tmp_path, items)
    state = engine.state
    texts = {href.rsplit("/", 1)[-1]: text for href, text in state.mirror_texts("SHAPES").items()}
    assert texts == {"plain.ics": items["plain.ics"], "daily.ics": DAILY_FOREVER}  # byte for byte
    counts = state.copy_counts("SHAPES")
    assert counts["exact"] == {"": 1}
    assert sum(counts["compatible"].values()) + sum(counts["withheld"].values()) == 1
    assert list(counts["unreadable"].values()) == [1]
    assert report.skipped == 1 and report.added == 2

    assert busy_on_december_10(engine) == STAND_UP_AND_PLAIN
    state.close()


def test_a_compatible_copy_that_cannot_be_made_withholds_that_object_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault while making one object's compatible copy (a YEARLY rule "forever" once raised
    OverflowError there) must not stop the calendar's pass: the object is withheld from the
    local mirror and its busy time still counts from the exact text."""
    from calmirror import compat

    def broken(*args: object, **kwargs: object) -> bool:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(compat, "bound_rules", broken)
    items: dict[str, object] = {
        "plain.ics": event("plain", "Plain", "20261210T140000Z", "20261210T150000Z"),
        "daily.ics": DAILY_FOREVER,
    }
    engine, report = mirrored_once(tmp_path, items)
    state = engine.state
    counts = state.copy_counts("SHAPES")
    assert counts["exact"] == {"": 1} and sum(counts["withheld"].values()) == 1 and report.added == 2
    assert busy_on_december_10(engine) == STAND_UP_AND_PLAIN
    state.close()


def test_a_fault_copying_one_object_withholds_it_and_keeps_its_busy_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while making one object's local copy is that object's problem: it
    is withheld from the local mirror with the fault as its reason, its busy time counts from
    the exact text, and the calendar's other objects are mirrored."""
    from calmirror import plan

    original = plan.mirror_copy

    def faulty(text: str, href: str, *args: object) -> tuple[str, str]:
        if "UID:plain" in text:
            raise KeyError("a fault in the copy")
        return original(text, href, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(plan, "mirror_copy", faulty)
    items: dict[str, object] = {
        "plain.ics": event("plain", "Plain", "20261210T140000Z", "20261210T150000Z"),
        "other.ics": event("other", "Other", "20261210T160000Z", "20261210T170000Z"),
    }
    engine, report = mirrored_once(tmp_path, items)
    assert report.added == 2 and report.skipped == 0
    counts = engine.state.copy_counts("SHAPES")
    assert counts["withheld"] == {"could not be copied (KeyError)": 1} and not counts["unreadable"]
    assert sorted(local_items(engine)) == ["other.ics"]
    said = check_mirrors(engine.state)
    assert said.ok and "Shapes: 1 × could not be copied (KeyError)" in said.detail and "withheld" in said.detail
    assert busy_on_december_10(engine) == [
        (utc(2026, 12, 10, 14), utc(2026, 12, 10, 15)),
        (utc(2026, 12, 10, 16), utc(2026, 12, 10, 17)),
    ]
    engine.state.close()


def test_an_object_without_uid_is_withheld_and_its_busy_time_counts(tmp_path: Path) -> None:
    """A real shape the copy step refuses (no UID: the local server keys every object by it)
    is withheld, not unreadable: the engine reads it, so its busy time counts."""
    no_uid = event("gone", "Nameless", "20261210T140000Z", "20261210T150000Z").replace("UID:gone\r\n", "")
    assert "\nUID" not in no_uid
    items: dict[str, object] = {"no-uid.ics": no_uid, "daily.ics": DAILY_FOREVER, "junk.ics": GARBAGE}
    engine, report = mirrored_once(tmp_path, items)
    counts = engine.state.copy_counts("SHAPES")
    assert counts["withheld"] == {"no UID": 1}
    assert sum(counts["unreadable"].values()) == 1  # GARBAGE: not iCalendar at all
    assert report.skipped == 1
    assert not check_mirrors(engine.state).ok  # GARBAGE's busy time may be missing: doctor says so
    assert busy_on_december_10(engine) == STAND_UP_AND_PLAIN
    engine.state.close()


def local_items(engine: Engine) -> list[str]:
    """The names of the files the local mirror of SHAPES holds."""
    (slug,) = [row.slug for row in engine.state.mirrors() if row.calendar_id == "SHAPES"]
    return [href.rsplit("/", 1)[-1] for href in engine.store.mirror_item_names(slug or "")]
