"""The emulator's Radicale store: calendars of one account, items, a UID index and change logs.

Items are kept as their exact text; what Radicale refuses is kept in an envelope
(see `objects`). Each calendar's change log (see `changelog`) gives its sync tokens and
ETags, so a token poll, a sync-collection page or a ctag costs what changed, not the
calendar's size.

All writes go through the storage API (never Radicale's HTTP PUT, which is O(n) per
item) under one lock, so HTTP writes, "iCloud-side" edits and bulk loads can all
check-and-write atomically and keep the account-wide UID index exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import radicale.item as radicale_item
import radicale.storage
from radicale.storage import BaseCollection

from calmirror.emulator.changelog import ChangeLog
from calmirror.emulator.objects import InvalidObject, opened, prepare_item
from calmirror.emulator.radicale_setup import FastCollection, build_configuration
from calmirror.emulator.tokens import RADICALE_TOKEN_PREFIX

__all__ = ["CalendarInfo", "InvalidObject", "Store", "prepare_item"]

SPECIAL_COLLECTIONS = ("inbox", "outbox", "notification")
READ_ONLY_KEY = "{http://calmirror.invalid/ns/emulator}read-only"
COMPONENTS_KEY = "C:supported-calendar-component-set"
COLOR_KEY = "ICAL:calendar-color"
NAME_KEY = "D:displayname"


@dataclass(frozen=True)
class CalendarInfo:
    cal_id: str
    name: str
    components: tuple[str, ...]
    writable: bool
    color: str


class Store:
    """One account's calendars in a Radicale folder.

    The calendar registry and the UID index are kept in memory and rebuilt from disk
    at start, so an existing data directory is picked up as it is; the change logs are
    read back and reconciled with the items found.
    """

    def __init__(self, folder: str, dsid: str) -> None:
        self.dsid = dsid
        self.lock = threading.RLock()
        self._calendars: dict[str, CalendarInfo] = {}
        self._uid_locations: dict[str, set[tuple[str, str]]] = {}
        self._uid_of: dict[tuple[str, str], str] = {}
        self._logs: dict[str, ChangeLog] = {}
        self._lag_s = 0.0
        self.configuration = build_configuration(folder, dsid, self.calendar_access, self._log_at)
        self.storage = radicale.storage.load(self.configuration)
        self._ensure_layout()
        self._load_calendars()

    # --- paths ------------------------------------------------------------------------

    @property
    def principal_path(self) -> str:
        return f"/{self.dsid}/principal/"

    @property
    def home_path(self) -> str:
        return f"/{self.dsid}/calendars/"

    def calendar_path(self, cal_id: str) -> str:
        return f"{self.home_path}{cal_id}/"

    def calendar_folder(self, cal_id: str) -> str:
        """The calendar's folder on disk (its items and its change log)."""
        return self._collection(cal_id).folder

    def calendar_access(self, cal_id: str) -> str | None:
        """Rights letters Radicale should grant on a calendar; None if not a calendar."""
        info = self._calendars.get(cal_id)
        if info is None:
            return None
        return "rw" if info.writable else "r"

    @contextmanager
    def _locked(self, mode: str) -> Iterator[None]:
        with self.storage.acquire_lock(mode, self.dsid):
            yield

    def _collection(self, cal_id: str) -> FastCollection:
        found = next(iter(self.storage.discover(self.calendar_path(cal_id))), None)
        if not isinstance(found, FastCollection):
            raise KeyError(cal_id)
        return found

    def _log(self, cal_id: str) -> ChangeLog:
        log = self._logs.get(cal_id)
        if log is None:
            raise KeyError(cal_id)
        return log

    def _log_at(self, path: str) -> ChangeLog | None:
        """The change log of the calendar at a Radicale collection path, if it is one."""
        home = self.home_path.strip("/") + "/"
        return self._logs.get(path[len(home) :]) if path.startswith(home) else None

    # --- calendars --------------------------------------------------------------------

    def _ensure_layout(self) -> None:
        with self.lock, self._locked("w"):
            for path in (
                f"/{self.dsid}/",
                self.home_path,
                *(self.home_path + name + "/" for name in SPECIAL_COLLECTIONS),
            ):
                if next(iter(self.storage.discover(path)), None) is None:
                    self.storage.create_collection(path)

    def _load_calendars(self) -> None:
        with self.lock, self._locked("r"):
            self._calendars.clear()
            for found in self.storage.discover(self.home_path, depth="1"):
                if isinstance(found, BaseCollection) and found.tag == "VCALENDAR":
                    info = _info_from_meta(found.path.rsplit("/", 1)[-1], found.get_meta())
                    self._calendars[info.cal_id] = info
            self._rebuild_indexes()

    def _rebuild_indexes(self) -> None:
        """The UID index from every item, and each change log brought up to the items on disk."""
        self._uid_locations.clear()
        self._uid_of.clear()
        self._logs.clear()
        for cal_id in self._calendars:
            collection = self._collection(cal_id)
            present: dict[str, str] = {}
            for item in collection.get_all():
                assert item.href is not None
                self._index(cal_id, item.href, item.uid)
                present[item.href] = item.etag
            self._logs[cal_id] = ChangeLog.open(collection.folder, present)
            self._logs[cal_id].lag_s = self._lag_s

    def calendars(self) -> list[CalendarInfo]:
        return list(self._calendars.values())

    def calendar(self, cal_id: str) -> CalendarInfo | None:
        return self._calendars.get(cal_id)

    def create_calendar(self, info: CalendarInfo) -> None:
        props = {
            "tag": "VCALENDAR",
            NAME_KEY: info.name,
            COMPONENTS_KEY: ",".join(info.components),
            COLOR_KEY: info.color,
        }
        if not info.writable:
            props[READ_ONLY_KEY] = "1"
        with self.lock, self._locked("w"):
            if next(iter(self.storage.discover(self.calendar_path(info.cal_id))), None) is not None:
                raise ValueError(f"calendar {info.cal_id!r} exists")
            self.storage.create_collection(self.calendar_path(info.cal_id), props=props)
            self._logs[info.cal_id] = ChangeLog.create(self._collection(info.cal_id).folder)
            self._logs[info.cal_id].lag_s = self._lag_s
            self._calendars[info.cal_id] = info

    def delete_calendar(self, cal_id: str) -> None:
        with self.lock, self._locked("w"):
            self._collection(cal_id).delete()
            del self._calendars[cal_id]
            self._logs.pop(cal_id, None)
            for key in [k for k in self._uid_of if k[0] == cal_id]:
                self._unindex(*key)

    def set_writable(self, cal_id: str, writable: bool) -> None:
        with self.lock, self._locked("w"):
            collection = self._collection(cal_id)
            props = dict(collection.get_meta())
            props.pop(READ_ONLY_KEY, None)
            if not writable:
                props[READ_ONLY_KEY] = "1"
            collection.set_meta(props)
            old = self._calendars[cal_id]
            self._calendars[cal_id] = CalendarInfo(old.cal_id, old.name, old.components, writable, old.color)

    def rescan(self) -> None:
        """Re-read calendars and UIDs after a change the layer did not make itself (MOVE)."""
        self._load_calendars()

    # --- items ------------------------------------------------------------------------

    def get_item(self, cal_id: str, name: str) -> radicale_item.Item | None:
        with self._locked("r"):
            _, item = next(iter(self._collection(cal_id).get_multi([name])))
            return item

    def items(self, cal_id: str) -> dict[str, str]:
        with self._locked("r"):
            return {
                self.calendar_path(cal_id) + str(item.href): opened(item.serialize())
                for item in self._collection(cal_id).get_all()
            }

    def write_items(
        self, cal_id: str, items: Iterable[tuple[str, radicale_item.Item]], *, past_tokens: bool = False
    ) -> list[tuple[str, bool]]:
        """Store prepared items under one storage lock; (long etag, created) for each.
        `past_tokens`: no sync token reports these writes (`ChangeLog.record_past_tokens`)."""
        results = []
        with self.lock, self._locked("w"):
            collection = self._collection(cal_id)
            log = self._log(cal_id)
            try:
                for name, item in items:
                    uploaded, replaced = collection.upload(name, item)
                    self._unindex(cal_id, name)
                    self._index(cal_id, name, uploaded.uid)
                    results.append((name, uploaded.etag, replaced is None))
            finally:  # what was written before a failure is in the calendar, so in its log
                if past_tokens:
                    for name, etag, _created in results:
                        log.record_past_tokens(name, etag)
                else:
                    log.record((name, etag) for name, etag, _created in results)
        return [(etag, created) for _name, etag, created in results]

    def delete_item(self, cal_id: str, name: str) -> bool:
        with self.lock, self._locked("w"):
            collection = self._collection(cal_id)
            _, item = next(iter(collection.get_multi([name])))
            if item is None:
                return False
            collection.delete(name)
            self._unindex(cal_id, name)
            self._log(cal_id).record([(name, None)])
            return True

    @property
    def listing_lag_s(self) -> float:
        return self._lag_s

    @listing_lag_s.setter
    def listing_lag_s(self, seconds: float) -> None:
        """Writes from now on stay out of listings for `seconds` (see `changelog`)."""
        with self.lock:
            self._lag_s = max(0.0, float(seconds))
            for log in self._logs.values():
                log.lag_s = self._lag_s

    def hidden_paths(self, cal_id: str) -> set[str]:
        """Paths of the calendar's items written too recently to be listed."""
        log = self._logs.get(cal_id)
        if log is None:
            return set()
        return {self.calendar_path(cal_id) + name for name in log.hidden()}

    def sync_token(self, cal_id: str) -> str:
        """Radicale's form of the calendar's current sync token (from its change log: O(1))."""
        return RADICALE_TOKEN_PREFIX + self._log(cal_id).token_hex()

    def changes_since(self, cal_id: str, radicale_token: str) -> tuple[str, list[tuple[str, str | None]]]:
        """The current token and each name changed since ``radicale_token`` with its current
        long ETag (None for a deleted item); every item for "".

        Costs the number of changes since the token, not the calendar's size. Raises
        KeyError for an unknown calendar, ValueError for a token this calendar never gave.
        """
        log = self._log(cal_id)
        position = None
        if radicale_token:
            position = log.position(radicale_token.removeprefix(RADICALE_TOKEN_PREFIX))
            if position is None or not radicale_token.startswith(RADICALE_TOKEN_PREFIX):
                raise ValueError(f"unknown sync token {radicale_token!r}")
        token, changes = log.changes_since(position)
        return RADICALE_TOKEN_PREFIX + token, changes

    # --- UID index --------------------------------------------------------------------

    def uid_locations(self, uid: str) -> set[tuple[str, str]]:
        return set(self._uid_locations.get(uid, ()))

    def _index(self, cal_id: str, name: str, uid: str) -> None:
        self._uid_of[(cal_id, name)] = uid
        self._uid_locations.setdefault(uid, set()).add((cal_id, name))

    def _unindex(self, cal_id: str, name: str) -> None:
        uid = self._uid_of.pop((cal_id, name), None)
        if uid is None:
            return
        locations = self._uid_locations.get(uid)
        if locations is not None:
            locations.discard((cal_id, name))
            if not locations:
                del self._uid_locations[uid]


def _info_from_meta(cal_id: str, meta: Mapping[str, str]) -> CalendarInfo:
    props = dict(meta)
    components = tuple(c for c in str(props.get(COMPONENTS_KEY, "VEVENT")).split(",") if c)
    return CalendarInfo(
        cal_id=cal_id,
        name=str(props.get(NAME_KEY, cal_id)),
        components=components,
        writable=READ_ONLY_KEY not in props,
        color=str(props.get(COLOR_KEY, "")),
    )
