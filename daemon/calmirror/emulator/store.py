"""The emulator's Radicale store: calendars of one account, items, and a UID index.

Items are kept as their exact text; what Radicale refuses is kept in an envelope
(see `objects`).

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

from calmirror.emulator.objects import InvalidObject, opened, prepare_item
from calmirror.emulator.radicale_setup import build_configuration

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
    at start, so an existing data directory is picked up as it is.
    """

    def __init__(self, folder: str, dsid: str) -> None:
        self.dsid = dsid
        self.lock = threading.RLock()
        self._calendars: dict[str, CalendarInfo] = {}
        self._uid_locations: dict[str, set[tuple[str, str]]] = {}
        self._uid_of: dict[tuple[str, str], str] = {}
        self._etag_of: dict[tuple[str, str], str] = {}
        # Per-calendar write counters and the last token computed at each, so polling a
        # quiet calendar's ctag does not make Radicale re-read every item.
        self._revision: dict[str, int] = {}
        self._token_at: dict[str, tuple[int, str]] = {}
        self.configuration = build_configuration(folder, dsid, self.calendar_access)
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

    def _collection(self, cal_id: str) -> BaseCollection:
        found = next(iter(self.storage.discover(self.calendar_path(cal_id))), None)
        if not isinstance(found, BaseCollection):
            raise KeyError(cal_id)
        return found

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
            self._rebuild_uid_index()

    def _rebuild_uid_index(self) -> None:
        self._uid_locations.clear()
        self._uid_of.clear()
        self._etag_of.clear()
        self._token_at.clear()
        for cal_id in self._calendars:
            for item in self._collection(cal_id).get_all():
                assert item.href is not None
                self._index(cal_id, item.href, item.uid, item.etag)

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
            self._calendars[info.cal_id] = info
            self._token_at.pop(info.cal_id, None)

    def delete_calendar(self, cal_id: str) -> None:
        with self.lock, self._locked("w"):
            self._collection(cal_id).delete()
            del self._calendars[cal_id]
            self._token_at.pop(cal_id, None)
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

    def write_items(self, cal_id: str, items: Iterable[tuple[str, radicale_item.Item]]) -> list[tuple[str, bool]]:
        """Store prepared items under one storage lock; (long etag, created) for each."""
        results = []
        with self.lock, self._locked("w"):
            collection = self._collection(cal_id)
            for name, item in items:
                uploaded, replaced = collection.upload(name, item)
                self._unindex(cal_id, name)
                self._index(cal_id, name, uploaded.uid, uploaded.etag)
                results.append((uploaded.etag, replaced is None))
        return results

    def delete_item(self, cal_id: str, name: str) -> bool:
        with self.lock, self._locked("w"):
            collection = self._collection(cal_id)
            _, item = next(iter(collection.get_multi([name])))
            if item is None:
                return False
            collection.delete(name)
            self._unindex(cal_id, name)
            return True

    def sync_token(self, cal_id: str) -> str:
        """Radicale's current sync token for the calendar (cached until the next write)."""
        with self._locked("r"):
            cached = self._token_at.get(cal_id)
            if cached is not None and cached[0] == self._revision.get(cal_id, 0):
                return cached[1]
        token, _ = self.changes_since(cal_id, "")
        return token

    def changes_since(self, cal_id: str, radicale_token: str) -> tuple[str, list[tuple[str, str | None]]]:
        """Radicale's sync over the calendar, with each changed name's current long ETag.

        ETags come from the in-memory index instead of loading every item again, which
        makes a full sync-collection over 10,000 items several times cheaper than
        Radicale's own REPORT. None marks a deleted item. Raises ValueError for a token
        Radicale does not know.
        """
        with self._locked("r"):
            revision = self._revision.get(cal_id, 0)
            cached = self._token_at.get(cal_id)
            if cached == (revision, radicale_token) and radicale_token:
                return radicale_token, []
            token, names = self._collection(cal_id).sync(radicale_token)
            self._token_at[cal_id] = (revision, token)
            return token, [(name, self._etag_of.get((cal_id, name))) for name in names]

    # --- UID index --------------------------------------------------------------------

    def uid_locations(self, uid: str) -> set[tuple[str, str]]:
        return set(self._uid_locations.get(uid, ()))

    def _index(self, cal_id: str, name: str, uid: str, etag: str) -> None:
        self._revision[cal_id] = self._revision.get(cal_id, 0) + 1
        self._uid_of[(cal_id, name)] = uid
        self._etag_of[(cal_id, name)] = etag
        self._uid_locations.setdefault(uid, set()).add((cal_id, name))

    def _unindex(self, cal_id: str, name: str) -> None:
        self._revision[cal_id] = self._revision.get(cal_id, 0) + 1
        self._etag_of.pop((cal_id, name), None)
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
