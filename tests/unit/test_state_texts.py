"""The exact-text store in the state database: texts per batch, generations, counts, and the
upgrade of a version-1 database (real SQLite files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from calmirror.model import MirrorEntry
from calmirror.raw_text import exact_bytes, from_bytes
from calmirror.state import SCHEMA_VERSION, State
from tests.helpers import event

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE mirrors (calendar_id TEXT PRIMARY KEY, slug TEXT, sync_token TEXT, last_sync FLOAT,
  last_attempt FLOAT, last_error TEXT, item_count INTEGER, skipped INTEGER, held_empty INTEGER);
CREATE TABLE mirror_items (calendar_id TEXT, href TEXT, etag TEXT, uid TEXT, local_href TEXT,
  PRIMARY KEY (calendar_id, href));
INSERT INTO mirrors VALUES ('WORK', 'work', 'token-7', 1.0, 1.0, NULL, 1, 0, 0);
INSERT INTO mirror_items VALUES ('WORK', 'https://p/c/a.ics', '"e1"', 'a', 'a.ics');
PRAGMA user_version = 1;
"""


def entry(name: str, body: str | None, **kw: str) -> MirrorEntry:
    return MirrorEntry(f"https://p/c/{name}.ics", f'"{name}"', name, f"{name}.ics", body=body, **kw)  # type: ignore[arg-type]


def test_a_version_1_database_is_upgraded_and_refetched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    state = State(path)
    try:
        assert state.db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        known = state.mirror_items("WORK")
        # the map still knows the local copy (deletions keep working), but every item is fetched again
        assert known["https://p/c/a.ics"].local_href == "a.ics" and known["https://p/c/a.ics"].etag == ""
        assert state.mirror("WORK").sync_token is None  # type: ignore[union-attr]
        assert state.mirror_texts("WORK") == {}
        state.apply_mirror_map("WORK", [entry("a", event("a"))], [], {}, replace=False)
        assert state.mirror_texts("WORK") == {"https://p/c/a.ics": event("a")}
    finally:
        state.close()
    State(path).close()  # opening an upgraded database again changes nothing


def test_texts_are_kept_byte_for_byte_whatever_the_mirror_holds(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    try:
        odd = event("b").replace("SUMMARY:Meeting", "SUMMARY:caf\u00e9 \u2603\r\n X-FOLDED") + "\r\n"
        state.apply_mirror_map(
            "WORK",
            [entry("a", event("a")), entry("b", odd, copy="withheld", reason="refused by Radicale: x")],
            [],
            {"https://p/c/junk.ics": "not an iCalendar object"},
            replace=False,
        )
        assert state.mirror_texts("WORK") == {"https://p/c/a.ics": event("a"), "https://p/c/b.ics": odd}
        known = state.mirror_items("WORK")
        assert known["https://p/c/b.ics"].copy == "withheld" and not known["https://p/c/b.ics"].in_mirror
        assert known["https://p/c/a.ics"].body is None  # the map is read without the texts
        assert state.copy_counts("WORK") == {
            "exact": {"": 1},
            "compatible": {},
            "withheld": {"refused by Radicale: x": 1},
            "unreadable": {"not an iCalendar object": 1},
        }
    finally:
        state.close()


def test_copy_counts_equal_a_count_of_every_row(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    try:
        kinds = [
            ("a", "exact", ""),
            ("b", "exact", ""),
            ("c", "exact", "zone kept as sent"),
            ("d", "compatible", "RDATE periods"),
            ("e", "compatible", "RDATE periods"),
            ("f", "compatible", ""),
            ("g", "withheld", "refused by Radicale: x"),
        ]
        entries = [entry(name, event(name), copy=copy, reason=reason) for name, copy, reason in kinds]
        state.apply_mirror_map("WORK", entries, [], {}, replace=False)
        state.apply_mirror_map("OTHER", [entry("h", event("h"), copy="compatible", reason="x")], [], {}, replace=False)
        state.db.execute("UPDATE mirror_items SET copy = NULL WHERE href LIKE '%/b.ics'")  # rows from before copy kinds
        expected: dict[str, dict[str, int]] = {"exact": {}, "compatible": {}, "withheld": {}, "unreadable": {}}
        for known in state.mirror_items("WORK").values():
            by_reason = expected[known.copy or "exact"]
            by_reason[known.reason or ""] = by_reason.get(known.reason or "", 0) + 1
        assert state.copy_counts("WORK") == expected
        assert expected["exact"] == {"": 2, "zone kept as sent": 1} and expected["compatible"]["RDATE periods"] == 2
    finally:
        state.close()


def test_a_batch_recorded_without_waiting_for_the_disk_leaves_the_connection_durable(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    full = 2  # PRAGMA synchronous: 1 NORMAL, 2 FULL
    try:
        state.apply_mirror_map("WORK", [entry("a", event("a"))], [], {}, replace=False, durable=False)
        assert state.db.conn.execute("PRAGMA synchronous").fetchone()[0] == full
        with pytest.raises(ValueError), state.transaction(durable=False):
            raise ValueError("a failed batch")
        assert state.db.conn.execute("PRAGMA synchronous").fetchone()[0] == full
        assert state.mirror_texts("WORK") == {"https://p/c/a.ics": event("a")}
    finally:
        state.close()
    reopened = State(tmp_path / "state.db")
    try:
        assert reopened.mirror_texts("WORK") == {"https://p/c/a.ics": event("a")}
    finally:
        reopened.close()


def test_a_text_with_bytes_that_are_not_utf8_is_kept_byte_for_byte(tmp_path: Path) -> None:
    """An old client's Windows-1252 `é` and an encoded lone surrogate stay as iCloud holds them
    (read with surrogateescape, `raw_text`); SQLite's TEXT cannot hold them, the state keeps them."""
    raw = event("c").encode().replace(b"SUMMARY:Meeting", b"SUMMARY:Caf\xe9 \xed\xa0\x80")
    state = State(tmp_path / "state.db")
    try:
        state.apply_mirror_map(
            "WORK", [entry("c", from_bytes(raw), copy="compatible", reason="r")], [], {}, replace=False
        )
        assert exact_bytes(state.mirror_texts("WORK")["https://p/c/c.ics"]) == raw
        assert exact_bytes(state.mirror_texts_of("WORK", ["https://p/c/c.ics"])["https://p/c/c.ics"]) == raw
    finally:
        state.close()
