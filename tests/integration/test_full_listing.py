"""A change no sync token reports is found by the periodic full listing.

iCloud lists a fresh write late (ICLOUD.md #17). Should a token move past such a write, the
changes since it never report that write; the emulator plays that with
`put_item(past_tokens=True)`. A pass compares every ETag of a full listing with the mirror
every `[sync] full_listing_hours`, and fetches only what differs."""

from __future__ import annotations

import time
from pathlib import Path

from calmirror.emulator import Emulator
from calmirror.full_listing import due, full_listing_due, listed_whole
from tests.helpers import connected_home, daemon_running, engine_for, event
from tests.integration.test_linked_changes import at_two, local, mirror_pass, push


def test_a_change_no_token_reports_is_found_by_the_next_full_listing(tmp_path: Path, emu: Emulator) -> None:
    work = emu.calendar_id("Work")
    engine = engine_for(connected_home(tmp_path / "home", emu, linked=None, conflicts=("Work",)))
    try:
        with engine.client() as client:
            (first,) = engine.mirror_pass(client)
            assert first.error is None and first.full
            assert not full_listing_due(engine.state, work, 24.0)  # the first pass listed everything

            name = sorted(emu.items(work))[0].rsplit("/", 1)[-1]
            emu.put_item(work, name, event("changed-late", "Moved late"), past_tokens=True)
            emu.put_item(work, "late.ics", event("listed-late", "Added late"), past_tokens=True)
            (by_token,) = engine.mirror_pass(client)
            assert (by_token.added, by_token.updated, by_token.deleted) == (0, 0, 0)  # the token hides both

            listed_whole(engine.state, work, now=time.time() - 25 * 3600)  # a day has passed
            emu.clear_requests()
            (audit,) = engine.mirror_pass(client)
            assert audit.error is None and audit.full
            assert (audit.added, audit.deleted) == (1, 0) and audit.updated + audit.added == 2
            multigets = [r for r in emu.requests[1:] if r.method == "REPORT"]
            assert len(multigets) == 1  # only the two that differ are fetched
            uids = {entry.uid for entry in engine.state.mirror_items(work).values()}
            assert {"changed-late", "listed-late"} <= uids
            assert not full_listing_due(engine.state, work, 24.0)

            emu.clear_requests()
            (idle,) = engine.mirror_pass(client)
            assert (idle.added, idle.updated, idle.deleted) == (0, 0, 0) and not idle.full
            assert len(emu.requests) == 1  # back to one sync REPORT
    finally:
        engine.connections.close()
        engine.state.close()


def test_a_pushed_appointment_changed_past_the_tokens_of_an_unmirrored_linked_calendar(
    tmp_path: Path, emu: Emulator
) -> None:
    """The linked calendar that is no conflict calendar is followed by a token of its own."""
    work = emu.calendar_id("Work")
    with daemon_running(connected_home(tmp_path / "home", emu, conflicts=("Home",))) as run:
        name = push(run, emu, "late-move")
        mirror_pass(run)  # the linked calendar's first follow lists it whole
        emu.put_item(work, name, at_two("late-move", "Call with Ada"), past_tokens=True)
        mirror_pass(run)
        assert "DTSTART:20290717T100000Z" in local(run, "late-move")  # no token reports the move
        state = run.state()
        try:
            listed_whole(state, work, now=time.time() - 25 * 3600)
        finally:
            state.close()
        mirror_pass(run)
        assert "DTSTART:20290717T140000Z" in local(run, "late-move")  # two-way: the local copy follows


def test_when_a_full_listing_is_due() -> None:
    assert due(None, 1000.0, 24)  # never listed whole by this home
    assert not due(1000.0, 1000.0 + 23.9 * 3600, 24)
    assert due(1000.0, 1000.0 + 24 * 3600, 24)
    assert due(1000.0, 500.0, 24)  # the clock went back: list now rather than wait for it
