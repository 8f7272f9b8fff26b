"""A client's PUT makes its item durable (fsync of the file and its folder) before the
answer, and writes the derived item cache and sync history without an fsync; an entry of
either left empty (a power cut) is read as missing, not as an error."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from radicale import pathutils

from calmirror.local import LocalServer, LocalStore, layout
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

ICS = {"Content-Type": "text/calendar"}


def url(server: LocalServer, href: str = "") -> str:
    return f"{server.url}{USER}/{layout.APPOINTMENTS}/{href}"


def test_a_put_syncs_the_item_and_not_its_derived_files(
    server: LocalServer, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = pathutils.fsync

    def recording(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    monkeypatch.setattr(pathutils, "fsync", recording)
    reply = requests.put(url(server, "a.ics"), data=event("a").encode(), headers=ICS, auth=(USER, PASSWORD), timeout=10)
    assert reply.status_code == 201
    folder = str(store.collection_dir(layout.APPOINTMENTS))
    # the item under its hidden scratch name, before the rename (no scratch folder: none is synced)
    assert any(Path(path).name.startswith(".Radicale.tmp-") and path.endswith("-a.ics") for path in synced)
    assert not any(Path(path).name.startswith(".Radicale.tmp-") and not path.endswith(".ics") for path in synced)
    assert folder in synced  # and its folder after it
    assert not any(".Radicale.cache" in path for path in synced)  # neither cache nor history
    assert not [p.name for p in Path(folder).iterdir() if p.name.startswith(".Radicale.tmp-")]  # nothing left over


def test_empty_cache_and_history_entries_are_read_as_missing(server: LocalServer, store: LocalStore) -> None:
    auth = (USER, PASSWORD)
    assert requests.put(url(server, "a.ics"), data=event("a").encode(), headers=ICS, auth=auth, timeout=10).ok
    cache = store.store_dir / "collection-cache" / USER / layout.APPOINTMENTS / ".Radicale.cache"
    for kind in ("item", "history"):
        entry = cache / kind / "a.ics"
        assert entry.is_file()
        entry.write_bytes(b"")  # what a power cut can leave of a file never fsynced
    got = requests.get(url(server, "a.ics"), auth=auth, timeout=10)
    assert got.status_code == 200 and "UID:a" in got.text
    changed = event("a", summary="Changed").encode()
    assert requests.put(url(server, "a.ics"), data=changed, headers=ICS, auth=auth, timeout=10).status_code == 204
    assert "SUMMARY:Changed" in (store.item(layout.APPOINTMENTS, "a.ics") or "")
    assert store.changes(layout.APPOINTMENTS, None).changed == ["a.ics"]


def test_the_history_clean_up_runs_once_an_hour_not_in_every_write(
    server: LocalServer, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Radicale scans every history entry of the collection after each write; here the first
    write of the hour does, the next ones do not (expired entries are 30 days old anyway)."""
    from calmirror.local import storage

    scans: list[str] = []
    real = storage.StoreCollection._get_deleted_history_hrefs

    def counted(self: storage.StoreCollection) -> object:
        scans.append(self.path)
        return real(self)

    monkeypatch.setattr(storage.StoreCollection, "_get_deleted_history_hrefs", counted)
    monkeypatch.setattr(storage, "_cleaned", {})
    for n in range(3):
        reply = requests.put(
            url(server, f"n{n}.ics"), data=event(f"n{n}").encode(), headers=ICS, auth=(USER, PASSWORD), timeout=10
        )
        assert reply.status_code == 201
    assert scans == [f"{USER}/{layout.APPOINTMENTS}"]
    monkeypatch.setattr(storage, "CLEAN_HISTORY_EVERY_S", 0.0)
    assert requests.put(
        url(server, "m.ics"), data=event("m").encode(), headers=ICS, auth=(USER, PASSWORD), timeout=10
    ).ok
    assert len(scans) == 2  # once the hour has passed, the next write cleans again
