"""The guard's warnings, written off the request path, arrive in the state database in the
order the guard decided them, and none queued is lost when the daemon closes them."""

from __future__ import annotations

from pathlib import Path

from calmirror.availability.guard import GuardNotes, StateNotes
from calmirror.model import GuardNote
from calmirror.state import State


def note(summary: str, ts: float) -> GuardNote:
    return GuardNote(summary, "2027-01-04T10:00:00+00:00", "2027-01-04T10:30:00+00:00", ts)


def warned(state: State) -> dict[str, str]:
    return {w["uid"]: w["summary"] for w in state.guard_warnings()}


def test_notes_keep_the_guards_order(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    notes = GuardNotes(state)
    notes.start()
    try:
        notes.warn("a", note("first", 1.0))
        notes.warn("b", note("clash", 2.0))
        notes.clear("a")  # re-saved at a free time
        notes.warn("b", note("clash again", 3.0))
        notes.clear("nobody")  # let through, never warned: nothing to write
        assert notes.flush(10)
        assert warned(state) == {"b": "clash again"}
    finally:
        notes.close()
        state.close()


def test_closing_writes_what_is_still_queued(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    notes = GuardNotes(state)  # never started: only close() writes
    notes.warn("x", note("queued", 1.0))
    notes.warn("y", note("queued too", 2.0))
    notes.clear("y")
    notes.close()
    assert warned(state) == {"x": "queued"}
    state.close()


def test_written_at_once_without_the_thread(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    notes = StateNotes(state)
    notes.warn("x", note("now", 1.0))
    assert warned(state) == {"x": "now"}
    notes.clear("x")
    assert warned(state) == {}
    state.close()
