"""A big first fill writes its busy-index rows with the window index set aside and sorts it
once at the end (`Mirror._big_fill`, `BusyTables.busy_window_deferred`): the index must end
up holding exactly what a fill that kept it writes, row for row, answer for answer; a fill
that fails half-way, or a process that dies, must not leave it missing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from calmirror import mirror
from calmirror.availability.busy_upkeep import BusyUpkeep
from calmirror.emulator import Emulator
from calmirror.engine import Engine
from calmirror.state import State
from calmirror.state.busy import SpanQuery
from calmirror.testing.corpus import generate_events
from tests.helpers import connected_home, engine_for

EVENTS = 300  # 45 weekly series among them: about 7,000 rows
BATCH = "[sync]\nbatch = 40\n"


def window_index(state: State) -> str | None:
    row = state.db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'busy_spans_window'").fetchone()
    return None if row is None else str(row[0])


def on_disk(path: Path) -> int:
    """How many window indexes the database file holds, read without calmirror's opening."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'busy_spans_window'").fetchone()[0])
    finally:
        conn.close()


def whole_horizon(state: State) -> SpanQuery:
    meta = state.busy_meta()
    assert meta is not None
    sources = sorted(state.busy_sources())
    return SpanQuery(meta["horizon"][0], meta["horizon"][1], sources, sources, [], True, True)


def table(state: State, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in state.db.conn.execute(sql)]


def fill(tmp_path: Path, emu: Emulator, name: str, monkeypatch: pytest.MonkeyPatch, defer_at: int) -> Engine:
    """One initial mirror of Work with the busy index built first, as the daemon's; what each
    batch's record saw of the window index and of the index's answers goes to `seen`."""
    monkeypatch.setattr(mirror, "DEFER_WINDOW_INDEX_AT", defer_at)
    engine = engine_for(connected_home(tmp_path / name, emu, conflicts=("Work",), extra_config=BATCH))
    BusyUpkeep(engine.store, engine.state, engine.settings).ensure()
    state = engine.state
    real = state.apply_mirror_map
    seen: list[tuple[bool, int]] = []

    def recorded(*args: Any, **kwargs: Any) -> int:
        count = real(*args, **kwargs)
        rows = table(state, "SELECT COUNT(*) FROM busy_spans")[0][0]
        seen.append((window_index(state) is not None, len(state.busy_spans(whole_horizon(state))) == rows))
        return count

    monkeypatch.setattr(state, "apply_mirror_map", recorded)
    client = engine.client()
    try:
        (report,) = engine.mirror_pass(client)
    finally:
        client.close()
    assert report.added == len(emu.items(emu.calendar_id("Work"))) >= EVENTS and not report.error
    engine.seen = seen  # type: ignore[attr-defined]
    return engine


@pytest.fixture
def loaded(emu: Emulator) -> Emulator:
    emu.bulk_load(emu.calendar_id("Work"), generate_events(EVENTS, seed=11))
    return emu


def test_a_big_first_fill_leaves_the_index_a_kept_index_would(
    tmp_path: Path, loaded: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = fill(tmp_path, loaded, "kept", monkeypatch, defer_at=10**9)
    deferred = fill(tmp_path, loaded, "deferred", monkeypatch, defer_at=EVENTS)
    assert all(present for present, _ in kept.seen) and len(kept.seen) >= 7  # type: ignore[attr-defined]
    assert not any(present for present, _ in deferred.seen)  # type: ignore[attr-defined]
    assert all(answered for _, answered in deferred.seen)  # queries answer, from the table, meanwhile
    a, b = kept.state, deferred.state
    assert window_index(b) == window_index(a) is not None
    spans_sql = "SELECT rowid, * FROM busy_spans ORDER BY rowid"
    assert table(b, spans_sql) == table(a, spans_sql) and len(table(a, spans_sql)) > 5 * EVENTS
    items_sql = "SELECT id, href, digest, lo, hi FROM busy_items ORDER BY id"
    assert table(b, items_sql) == table(a, items_sql)
    assert b.busy_spans(whole_horizon(b)) == a.busy_spans(whole_horizon(a))  # same rows, same order
    plan = "EXPLAIN QUERY PLAN SELECT start_us FROM busy_spans WHERE long = 0 AND start_us >= 0 AND start_us < 9"
    assert "busy_spans_window" in str(table(b, plan))


def test_a_fill_that_fails_half_way_makes_the_index_again(
    tmp_path: Path, loaded: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    real = State.apply_mirror_map

    def failing(self: State, *args: Any, **kwargs: Any) -> int:
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("the disk went away")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(State, "apply_mirror_map", failing)
    with pytest.raises(RuntimeError, match="the disk went away"):
        fill(tmp_path, loaded, "failed", monkeypatch, defer_at=EVENTS)
    assert calls[0] >= 3
    assert on_disk(tmp_path / "failed" / "state.db") == 1  # as the failed pass left it, before any reopening


def test_a_process_that_died_during_a_fill_leaves_the_index_to_the_next_one(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    filling = state.busy_window_deferred()
    filling.__enter__()  # and never left: the process dies here
    assert window_index(state) is None
    assert on_disk(tmp_path / "state.db") == 0  # what that process left
    reopened = State(tmp_path / "state.db")
    try:
        assert window_index(reopened) is not None
    finally:
        reopened.close()
