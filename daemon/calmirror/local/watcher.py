"""Noticing client changes to `appointments/` the moment they land on disk.

A watch on the collection folder (non-recursive) sees a client's PUT as a created item
file, a DELETE as a deleted one and a MOVE as a move; it also sees Radicale's own
scratch files (`.Radicale.tmp-*`, props, lock), which are dot-names and ignored. Which
items changed is not worked out here: the callback only says "look now", and the caller
asks Radicale (`LocalStore.changes`), which also covers anything a watch can miss.
A burst of events (a client syncing many items) becomes one call per `debounce_s`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from calmirror.local.errors import StoreError

log = logging.getLogger("calmirror.local")

_RELEVANT = frozenset({"created", "deleted", "moved", "modified"})


def is_item_name(path: str | bytes) -> bool:
    """Item files are the only non-dot files in a collection folder."""
    name = Path(os.fsdecode(path)).name
    return bool(name) and not name.startswith(".")


class _Handler(FileSystemEventHandler):
    def __init__(self, nudge: Callable[[], None]) -> None:
        self._nudge = nudge

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _RELEVANT:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(path and is_item_name(path) for path in paths):
            self._nudge()


class AppointmentWatcher:
    def __init__(self, folder: Path, on_change: Callable[[], None], debounce_s: float = 0.05) -> None:
        self.folder = Path(folder)
        self.on_change = on_change
        self.debounce_s = debounce_s
        self._pending = threading.Event()
        self._stopping = threading.Event()
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._observer is not None:
            return
        if not self.folder.is_dir():
            raise StoreError(f"cannot watch {self.folder}: it is not a folder")
        self._stopping.clear()
        observer = Observer()
        observer.schedule(_Handler(self._pending.set), str(self.folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name="calmirror-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._pending.wait()
            # Let the rest of a burst arrive; stop() interrupts the wait.
            if self._stopping.wait(self.debounce_s):
                return
            self._pending.clear()
            try:
                self.on_change()
            except Exception:
                log.exception("appointment change callback failed")

    def stop(self, timeout: float = 5.0) -> None:
        observer, thread = self._observer, self._thread
        if observer is None:
            return
        self._stopping.set()
        self._pending.set()
        observer.stop()
        observer.join(timeout)
        if thread is not None:
            thread.join(timeout)
        self._observer = self._thread = None
