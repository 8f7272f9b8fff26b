"""Everything that touches Radicale: the local CalDAV server, its store, change detection.

Only this package imports `radicale`. The server (`LocalServer`) serves the user's
system calendar on loopback; the store (`LocalStore`) is the in-process storage API that
writes the read-only iCloud mirrors and reads any collection; the watcher
(`AppointmentWatcher`) says when a client changed `appointments/`.

- The server: `server`, `middleware` (the rules Radicale cannot express), `answers` (what
  it answers itself instead of Radicale), `http11` (persistent connections), `auth`,
  `rights`, `radicale_config`, `davxml` (client XML read safely), `refusals` and `suspect`
  (what a write is refused for, in one line), `fairness` (writers first), `loopback` (the
  running daemon asked as a client would), `errors`.
- The store: `store`, `storage` and `store_lock` (the lock, writers first), `layout`
  (collection names and paths, in one place), `listing` (changes since a token),
  `uid_cache` and `uid_index` (UIDs from memory), `watcher`.
- Mirror writes: `writer` (check and write batches behind the fetch), `items` (checking an
  object), `check_pool` and `items_worker` (checks in worker processes), `batch` (which
  changes of a batch may be applied), `bulk` (straight into Radicale's folders).
- Time-range queries on mirrors: `range_query`, `range_walk`, `range_answer`,
  `range_keeper`.
- vobject: `vobject_speed` (linear in an object's size), `vobject_logging` (its bare
  `logging.error` calls kept off the root logger) and `vobject_zones` (a TZID without a
  VTIMEZONE placed right across DST).

The names below load on first use: `calmirror.local.layout` (imported by state, the CLI
and nearly everything else) must not drag Radicale into a command that never touches
the store. Every module here that lets Radicale parse an object installs
`vobject_speed` itself when it is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calmirror.local.errors import AddressInUse, CollectionMissing, NonLoopbackHost, StoreError
    from calmirror.local.layout import APPOINTMENTS, BLOCKED, mirror_name
    from calmirror.local.server import LocalServer
    from calmirror.local.store import ChangeSet, LocalStore
    from calmirror.local.watcher import AppointmentWatcher

_HOME = {
    "APPOINTMENTS": "layout",
    "BLOCKED": "layout",
    "mirror_name": "layout",
    "AddressInUse": "errors",
    "CollectionMissing": "errors",
    "NonLoopbackHost": "errors",
    "StoreError": "errors",
    "LocalServer": "server",
    "ChangeSet": "store",
    "LocalStore": "store",
    "AppointmentWatcher": "watcher",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "APPOINTMENTS",
    "BLOCKED",
    "AddressInUse",
    "AppointmentWatcher",
    "ChangeSet",
    "CollectionMissing",
    "LocalServer",
    "LocalStore",
    "NonLoopbackHost",
    "StoreError",
    "mirror_name",
]
