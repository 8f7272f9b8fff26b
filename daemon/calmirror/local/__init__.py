"""Everything that touches Radicale: the local CalDAV server, its store, change detection.

Only this package imports `radicale`. The server (`LocalServer`) serves the user's
system calendar on loopback; the store (`LocalStore`) is the in-process storage API that
writes the read-only iCloud mirrors and reads any collection; the watcher
(`AppointmentWatcher`) says when a client changed `appointments/`.
"""

from calmirror.local import vobject_speed
from calmirror.local.errors import AddressInUse, CollectionMissing, NonLoopbackHost, StoreError
from calmirror.local.layout import APPOINTMENTS, BLOCKED, mirror_name
from calmirror.local.server import LocalServer
from calmirror.local.store import ChangeSet, LocalStore
from calmirror.local.watcher import AppointmentWatcher

vobject_speed.install()  # before anything parses an object

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
