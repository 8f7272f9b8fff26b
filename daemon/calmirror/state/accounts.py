"""Accounts and their calendars.

The first account stays in the one-row `account` table and its calendars keep their bare
ids, as before a second account existed; every further account is a row of `accounts`,
keyed by its short name, and its calendars' ids carry the name (`work/home`). So which
account a calendar belongs to is read off its id, and no table keyed by calendar id
changes shape.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from calmirror.model import PRIMARY, Account, CalendarRow, account_of
from calmirror.state.base import StateBase

_ACCOUNT_FIELDS = ("apple_id", "server", "principal_url", "home_url", "connected_at")


def _calendars_of(name: str) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (on `id`) selecting the calendars of account `name`."""
    if name == PRIMARY:
        return "instr(id, '/') = 0", ()
    return "substr(id, 1, ?) = ?", (len(name) + 1, name + "/")


def _account(r: dict[str, Any], name: str) -> Account:
    return Account(r["apple_id"], r["server"], r["principal_url"], r["home_url"], r["connected_at"], name)


def _row(account: Account) -> dict[str, Any]:
    return {field: getattr(account, field) for field in _ACCOUNT_FIELDS}


class AccountTables(StateBase):
    """The connected accounts and the calendars each lists."""

    def account(self, name: str = PRIMARY) -> Account | None:
        if name == PRIMARY:
            rows = self._rows("SELECT * FROM account WHERE id = 1")
        else:
            rows = self._rows("SELECT * FROM accounts WHERE name = ?", (name,))
        if not rows:
            return None
        return _account(rows[0], name)

    def accounts(self) -> list[Account]:
        """Every account, the first one first, then the named ones by name."""
        first = self.account()
        named = [_account(r, r["name"]) for r in self._rows("SELECT * FROM accounts ORDER BY name")]
        return ([first] if first else []) + named

    def set_account(self, account: Account) -> None:
        with self.transaction() as db:
            self._put_account(db, account)

    def _put_account(self, db: sqlite_utils.Database, account: Account) -> None:
        if account.name == PRIMARY:
            db.table("account").upsert({"id": 1, **_row(account)}, pk="id")
        else:
            db.table("accounts").upsert({"name": account.name, **_row(account)}, pk="name")

    def forget_account(self, name: str = PRIMARY) -> None:
        """Drop an account and everything learnt from it; appointments stay. The first
        account's goes with everything learnt from any server (it is forgotten last)."""
        with self.transaction() as db:
            if name == PRIMARY:
                for table in ("account", "calendars", "account_addresses"):
                    db.execute(f"DELETE FROM {table}")
                # Subscribed feeds (`feed:…`) do not come from an account: they stay.
                for table, column in (
                    ("calendar_names", "id"),
                    ("mirrors", "calendar_id"),
                    ("mirror_items", "calendar_id"),
                    ("skipped_items", "calendar_id"),
                ):
                    db.execute(f"DELETE FROM {table} WHERE {column} NOT LIKE 'feed:%'")
                db.execute("DELETE FROM busy_spans WHERE source LIKE 'mirror:%' AND source NOT LIKE 'mirror:feed:%'")
                db.execute("DELETE FROM busy_items WHERE source LIKE 'mirror:%' AND source NOT LIKE 'mirror:feed:%'")
                db.execute(
                    "UPDATE appointments SET remote_calendar = NULL, remote_href = NULL, "
                    "remote_etag = NULL, pushed_etag = NULL"
                )
                db.execute("DELETE FROM remote_versions")
                db.execute(
                    "DELETE FROM meta WHERE key LIKE 'health%' OR key LIKE 'rediscovery%' OR key LIKE 'mirror_clean:%'"
                )
                return
            gone = self.account(name)
            where, args = _calendars_of(name)
            ids = [r["id"] for r in self._rows(f"SELECT id FROM calendar_names WHERE {where}", args)]
            ids += [r["id"] for r in self._rows(f"SELECT id FROM calendars WHERE {where}", args)]
            db.execute(f"DELETE FROM calendars WHERE {where}", args)
            db.execute(f"DELETE FROM calendar_names WHERE {where}", args)
            for calendar_id in set(ids):
                db.execute("DELETE FROM remote_versions WHERE calendar_id = ?", (calendar_id,))
            if gone is not None and gone.home_url:
                db.execute(
                    "UPDATE appointments SET remote_calendar = NULL, remote_href = NULL, remote_etag = NULL, "
                    "pushed_etag = NULL WHERE substr(remote_calendar, 1, ?) = ?",
                    (len(gone.home_url), gone.home_url),
                )
            db.execute("DELETE FROM accounts WHERE name = ?", (name,))
            db.execute("DELETE FROM account_addresses WHERE account = ?", (name,))
            db.execute("DELETE FROM meta WHERE key IN (?, ?)", (f"health:{name}", f"rediscovery:{name}"))

    def set_calendars(self, calendars: list[CalendarRow], account: str = PRIMARY) -> None:
        """Replace the calendars of one account (ids already scoped, see `model.scoped_id`)."""
        where, args = _calendars_of(account)
        with self.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO calendar_names (id, name) SELECT id, name FROM calendars WHERE {where}", args
            )
            db.execute(f"DELETE FROM calendars WHERE {where}", args)
            db.table("calendars").insert_all(
                [
                    {
                        "id": c.id,
                        "url": c.url,
                        "name": c.name,
                        "color": c.color,
                        "components": ",".join(c.components),
                        "writable": int(c.writable),
                    }
                    for c in calendars
                    if account_of(c.id) == account
                ],
                pk="id",
                replace=True,
            )

    def move_home(self, account: Account, calendars: list[CalendarRow]) -> None:
        """Store a re-discovered account and its calendars; when the home moved, every stored
        URL under the old home moves with it (mirror items, skipped items, appointments,
        their remote versions), so nothing looks deleted and re-added. One transaction."""
        with self.transaction() as db:
            current = self.account(account.name)
            old, new = (current.home_url if current else ""), account.home_url
            if old and old != new:
                # A new generation for every mirror, so caches of the texts (keyed by href)
                # read them all again under the new hrefs instead of dropping the old ones.
                row = db.execute("SELECT value FROM meta WHERE key = 'text_generation'").fetchone()
                generation = (json.loads(row[0]) if row else 0) + 1
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('text_generation', ?)", (json.dumps(generation),)
                )
                db.execute("UPDATE mirror_items SET gen = ?", (generation,))
                db.execute("UPDATE mirrors SET generation = ?", (generation,))
                for table, column in (
                    ("mirror_items", "href"),
                    ("skipped_items", "href"),
                    ("appointments", "remote_href"),
                    ("appointments", "remote_calendar"),
                    ("remote_versions", "href"),
                    ("busy_items", "href"),
                ):
                    db.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
                        (new, len(old) + 1, len(old), old),
                    )
            self._put_account(db, account)
            self.set_calendars(calendars, account.name)

    def calendar_names(self) -> dict[str, str]:
        """Calendar id -> name, for the calendars listed now and the last name of those gone."""
        names = {r["id"]: r["name"] for r in self._rows("SELECT id, name FROM calendar_names")}
        names.update((r["id"], r["name"]) for r in self._rows("SELECT id, name FROM calendars"))
        return names
