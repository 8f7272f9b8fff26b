"""The state database's tables, their version and the upgrades between versions."""

from __future__ import annotations

import sqlite3
import time

import sqlite_utils

SCHEMA_VERSION = 3

# Columns added in version 2 (the exact-text store), with the SQL type each gets when an
# existing version-1 database is upgraded.
_V2_COLUMNS = {
    "mirror_items": {"body": "TEXT", "copy": "TEXT", "reason": "TEXT", "gen": "INTEGER", "horizon": "TEXT"},
    "mirrors": {"generation": "INTEGER"},
}


def create_schema(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("account").create(
        {"id": int, "apple_id": str, "server": str, "principal_url": str, "home_url": str, "connected_at": float},
        pk="id",
        if_not_exists=True,
    )
    # Every account after the first, by its short name (the first stays in `account`).
    db.table("accounts").create(
        {"name": str, "apple_id": str, "server": str, "principal_url": str, "home_url": str, "connected_at": float},
        pk="name",
        if_not_exists=True,
    )
    db.table("calendars").create(
        {"id": str, "url": str, "name": str, "color": str, "components": str, "writable": int},
        pk="id",
        if_not_exists=True,
    )
    # The last name seen for every calendar ever listed: a calendar deleted in iCloud leaves
    # `calendars`, but status still names its mirror and the appointments waiting for it.
    db.table("calendar_names").create({"id": str, "name": str}, pk="id", if_not_exists=True)
    db.table("mirrors").create(
        {
            "calendar_id": str,
            "slug": str,
            "sync_token": str,
            "last_sync": float,
            "last_attempt": float,
            "last_error": str,
            "item_count": int,
            "skipped": int,
            "held_empty": int,
            "generation": int,
        },
        pk="calendar_id",
        if_not_exists=True,
    )
    # `body` is iCloud's exact text of the resource: busy time is computed from it whether or
    # not Radicale took it. `gen` is the calendar's `generation` when the row was written, so
    # a cache asks only for what changed since it last looked.
    db.table("mirror_items").create(
        {
            "calendar_id": str,
            "href": str,
            "etag": str,
            "uid": str,
            "local_href": str,
            "body": str,
            "copy": str,
            "reason": str,
            "gen": int,
            "horizon": str,
        },
        pk=("calendar_id", "href"),
        if_not_exists=True,
    )
    db.table("skipped_items").create(
        {"calendar_id": str, "href": str, "reason": str, "seen_at": float},
        pk=("calendar_id", "href"),
        if_not_exists=True,
    )
    db.table("appointments").create(
        {
            "uid": str,
            "local_href": str,
            "local_etag": str,
            "remote_calendar": str,
            "remote_href": str,
            "remote_etag": str,
            "pushed_etag": str,
        },
        pk="uid",
        if_not_exists=True,
    )
    db.table("outbox").create(
        {
            "collection": str,
            "uid": str,
            "seq": int,
            "state": str,
            "attempts": int,
            "next_attempt": float,
            "last_error": str,
            "enqueued_at": float,
            "updated_at": float,
        },
        pk=("collection", "uid"),
        if_not_exists=True,
    )
    db.table("events").create(
        {"id": int, "ts": float, "level": str, "kind": str, "message": str}, pk="id", if_not_exists=True
    )
    db.table("guard_warnings").create(
        {"uid": str, "summary": str, "start": str, "end": str, "ts": float}, pk="uid", if_not_exists=True
    )
    # Far guard checks a stop interrupted, checked again at the next start (`state/far_left.py`).
    db.table("guard_far_left").create({"uid": str, "body": bytes, "ts": float}, pk="uid", if_not_exists=True)
    # Version 3: iCloud's version of a pushed appointment while it differs from the last
    # agreed one (busy time counts it; two-way brings it into appointments/), and the
    # versions a conflict overrode, kept so that neither side's change is lost silently.
    db.table("remote_versions").create(
        {
            "uid": str,
            "calendar_id": str,
            "href": str,
            "etag": str,
            "body": str,
            "seen_at": float,
            "applying": str,
        },
        pk="uid",
        if_not_exists=True,
    )
    db.table("version_conflicts").create(
        {"id": int, "uid": str, "local_body": str, "remote_body": str, "reason": str, "ts": float},
        pk="id",
        if_not_exists=True,
    )
    create_busy_tables(db)
    # Subscribed ICS feeds. Each is also a mirror (calendar id `feed:<name>` in `mirrors` and
    # `mirror_items`), so availability, the guard and status count it like any other.
    db.table("feeds").create(
        {
            "name": str,
            "url": str,
            "display": str,
            "interval": float,
            "privacy": str,
            "allow_http": int,
            "etag": str,
            "last_modified": str,
            "digest": str,
            "next_poll": float,
            "last_poll": float,
            "last_error": str,
            "held_empty": int,
            "requests": int,
        },
        pk="name",
        if_not_exists=True,
    )
    # A failing feed's failures in a row (its backoff, `feeds.py`), kept across restarts: a
    # daemon started again must not poll a failing publisher at its plain interval again.
    db.table("feed_failures").create({"name": str, "failures": int, "since": float}, pk="name", if_not_exists=True)
    # The addresses each account's server says the user is invited under (the principal's
    # calendar-user-address-set), by account name ("" for the first), as a JSON list.
    db.table("account_addresses").create(
        {"account": str, "addresses": str, "read_at": float}, pk="account", if_not_exists=True
    )
    db.execute("CREATE INDEX IF NOT EXISTS mirror_items_uid ON mirror_items(uid)")
    # copy_counts and the compatible copies due again, without reading every row's text
    db.execute("CREATE INDEX IF NOT EXISTS mirror_items_copy ON mirror_items(calendar_id, copy, reason, horizon)")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt)")
    db.execute("CREATE INDEX IF NOT EXISTS appointments_local ON appointments(local_href)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


BUSY_WINDOW_INDEX = (
    "CREATE INDEX IF NOT EXISTS busy_spans_window ON busy_spans"
    "(long, start_us, end_us, travel, maybe, all_day, source, uid)"
)


def create_busy_tables(db: sqlite_utils.Database) -> None:
    """The busy index (`state/busy.py`): one row per resource of every source of busy time,
    and its busy occurrences over the horizon. Times are UTC microseconds since the epoch.
    `long` splits spans at `availability.spans.SHORT`, so a window is a range scan on `start_us`."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS busy_items (id INTEGER PRIMARY KEY, source TEXT NOT NULL, "
        "href TEXT NOT NULL, digest TEXT NOT NULL, lo INTEGER, hi INTEGER, UNIQUE (source, href))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS busy_spans (item INTEGER NOT NULL, source TEXT NOT NULL, uid TEXT NOT NULL, "
        "summary TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL, travel INTEGER NOT NULL, "
        "long INTEGER NOT NULL, all_day INTEGER NOT NULL, tentative INTEGER NOT NULL, maybe INTEGER NOT NULL, "
        "approximate INTEGER NOT NULL)"
    )
    # Where busy time may have changed (lo NULL: anywhere), for `busy/`'s keeper to refresh only there.
    db.execute(
        "CREATE TABLE IF NOT EXISTS busy_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, lo INTEGER, hi INTEGER)"
    )
    # Covering for the merged-busy query (free-busy, the guard, `availability`): the window is
    # a range scan that never visits the table. It replaces the plain (long, start_us) index.
    db.execute("DROP INDEX IF EXISTS busy_spans_start")
    db.execute(BUSY_WINDOW_INDEX)  # also made again here if a process died while a big first fill had it away
    db.execute("CREATE INDEX IF NOT EXISTS busy_spans_item ON busy_spans(item)")
    db.execute("CREATE INDEX IF NOT EXISTS busy_items_dirty ON busy_items(digest) WHERE digest = ''")
    # Past the horizon, a year at a time (`state/busy_far.py`): the same rows, plus the year.
    db.execute(
        "CREATE TABLE IF NOT EXISTS busy_far_spans (item INTEGER NOT NULL, year INTEGER NOT NULL, "
        "source TEXT NOT NULL, uid TEXT NOT NULL, summary TEXT NOT NULL, start_us INTEGER NOT NULL, "
        "end_us INTEGER NOT NULL, travel INTEGER NOT NULL, long INTEGER NOT NULL, all_day INTEGER NOT NULL, "
        "tentative INTEGER NOT NULL, maybe INTEGER NOT NULL, approximate INTEGER NOT NULL)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS busy_far_window ON busy_far_spans"
        "(year, long, start_us, end_us, travel, maybe, all_day, source, uid)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS busy_far_item ON busy_far_spans(item)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS busy_far_done (item INTEGER NOT NULL, year INTEGER NOT NULL, "
        "digest TEXT NOT NULL, PRIMARY KEY (item, year))"
    )
    db.execute("CREATE TABLE IF NOT EXISTS busy_far_years (year INTEGER PRIMARY KEY, used REAL NOT NULL)")


def upgrade_from_1(db: sqlite_utils.Database) -> None:
    """Version 1 kept no texts: add the columns, then forget every mirror's ETags and token so
    the next pass fetches each resource once and fills the store (the map still knows the
    local copies, so deletions in between are applied)."""
    for table, columns in _V2_COLUMNS.items():
        have = {column.name for column in db.table(table).columns}
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    db.execute("UPDATE mirror_items SET etag = '', copy = 'exact', gen = 0")
    db.execute("UPDATE mirrors SET sync_token = NULL, generation = 0")


def enable_wal(conn: sqlite3.Connection, patience_s: float = 30.0) -> None:
    """Switching a new database to WAL needs it to itself, and SQLite answers "locked" at once
    instead of waiting when another process is opening it at the same moment: retry."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
