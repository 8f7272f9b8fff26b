"""Clients' writes of different items of `appointments/` go side by side, and stay correct.

Against a real local server and store over HTTP, with real threads: one PUT is held in the
middle of its upload while other items are written and deleted beside it; writes of the same
item, of a new item with the same UID and a write of the whole collection wait for it. Then
many threads write at once, some racing to create different items with one UID: exactly one
wins each race, every item and sync history entry is there, and the UID cache is still the
one read at the start, matching the disk.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from calmirror.local import LocalServer, LocalStore, layout, uid_cache
from calmirror.local.storage import StoreCollection
from calmirror.local.uid_cache import UidCachedCollection
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

AUTH = (USER, PASSWORD)
ICS = {"Content-Type": "text/calendar"}
SYNC = (
    '<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
    "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
)


class Held:
    """The upload of `held.ics` stops until `release` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    pause = Held()
    real = UidCachedCollection.upload

    def upload(self: UidCachedCollection, href: str, item: Any) -> Any:
        if href == "held.ics":
            pause.entered.set()
            assert pause.release.wait(30)
        return real(self, href, item)

    monkeypatch.setattr(UidCachedCollection, "upload", upload)
    try:
        yield pause
    finally:
        pause.release.set()


def url(server: LocalServer, href: str) -> str:
    return f"{server.url}{USER}/{layout.APPOINTMENTS}/{href}"


def put(server: LocalServer, href: str, uid: str, timeout: float = 30) -> int:
    body = event(uid, start="20261202T100000Z", end="20261202T110000Z")
    return requests.put(url(server, href), data=body, headers=ICS, auth=AUTH, timeout=(5, timeout)).status_code


def in_thread(work: Callable[[], object], results: list[object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(work()), daemon=True)
    thread.start()
    return thread


def test_other_items_are_written_beside_a_held_write_and_its_own_item_and_uid_wait(
    server: LocalServer, store: LocalStore, held: Held
) -> None:
    assert put(server, "gone.ics", "uid-gone") == 201
    results: list[object] = []
    first = in_thread(lambda: put(server, "held.ics", "uid-held"), results)
    assert held.entered.wait(10)
    # Answered while held.ics is still being written (with one lane per collection they waited).
    assert put(server, "beside.ics", "uid-beside", timeout=5) == 201
    assert requests.delete(url(server, "gone.ics"), auth=AUTH, timeout=(5, 5)).status_code in (200, 204)
    same_item: list[object] = []
    same_uid: list[object] = []
    whole: list[object] = []
    waiting = [
        in_thread(lambda: put(server, "held.ics", "uid-held"), same_item),
        in_thread(lambda: put(server, "twin.ics", "uid-held"), same_uid),
        in_thread(lambda: store.write_appointment("icloud.ics", event("uid-icloud")), whole),
    ]
    for thread in waiting:
        thread.join(0.5)
    assert all(thread.is_alive() for thread in waiting)
    assert results == same_item == same_uid == whole == []
    held.release.set()
    for thread in [first, *waiting]:
        thread.join(30)
    assert results == [201]
    assert same_item == [204]  # after the first: a change of the item it wrote
    assert same_uid == [409]  # the UID is taken by then
    assert whole == [None]
    assert set(store.items(layout.APPOINTMENTS)) == {"held.ics", "beside.ics", "icloud.ics"}


def sync(server: LocalServer, token: str) -> tuple[str, set[str]]:
    """A sync-collection REPORT: the new token and the hrefs (names) it reports."""
    answer = requests.request(
        "REPORT", url(server, ""), data=SYNC.format(token=token), auth=AUTH, headers={"Depth": "1"}, timeout=60
    )
    assert answer.status_code == 207
    root = ET.fromstring(answer.content)
    hrefs = {el.text.rstrip("/").rsplit("/", 1)[-1] for el in root.iter("{DAV:}href") if el.text}
    new_token = root.findtext("{DAV:}sync-token")
    assert new_token
    return new_token, hrefs


def test_many_writers_at_once_keep_uids_unique_and_the_history_whole(server: LocalServer, store: LocalStore) -> None:
    folder = store.collection_dir(layout.APPOINTMENTS)
    assert put(server, "first.ics", "uid-first") == 201
    assert put(server, "clash.ics", "uid-first") == 409  # the UIDs are read here, once
    reads = uid_cache.reads_of(folder)
    token, _ = sync(server, "")
    codes: dict[str, int] = {}
    races: dict[int, list[int]] = {}
    lock = threading.Lock()
    start = threading.Barrier(12)

    def writer(n: int) -> None:
        start.wait(10)
        for k in range(6):
            href = f"w{n}-{k}.ics"
            code = put(server, href, f"uid-{n}-{k}")
            if k % 3 == 2:  # then change it, as clients do
                code = put(server, href, f"uid-{n}-{k}")
            with lock:
                codes[href] = code

    def racer(n: int, race: int) -> None:
        code = put(server, f"race{race}-{n}.ics", f"uid-race-{race}")
        with lock:
            races.setdefault(race, []).append(code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for race in range(6):
        racers = [threading.Thread(target=racer, args=(n, race)) for n in range(6)]
        for thread in racers:
            thread.start()
        for thread in racers:
            thread.join(60)
    for thread in threads:
        thread.join(60)

    assert sorted(set(codes.values())) == [201, 204] and len(codes) == 72
    assert {race: sorted(found) for race, found in races.items()} == {race: [201] + [409] * 5 for race in range(6)}
    on_disk = store.items(layout.APPOINTMENTS)
    uids = [line for text in on_disk.values() for line in text.splitlines() if line.startswith("UID:")]
    assert len(uids) == len(set(uids)) == len(on_disk) == 1 + 72 + 6
    _, changed = sync(server, token)
    assert changed == set(on_disk) - {"first.ics"}  # every write is in the sync history
    assert uid_cache.reads_of(folder) == reads  # followed every write, never read again
    assert put(server, "late.ics", "uid-race-3") == 409 and put(server, "late.ics", "uid-late") == 201
    assert uid_cache.reads_of(folder) == reads


def test_a_write_failing_half_way_makes_the_next_check_read_the_disk(
    server: LocalServer, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = store.collection_dir(layout.APPOINTMENTS)
    assert put(server, "a.ics", "uid-a") == 201
    assert put(server, "b.ics", "uid-a") == 409
    reads = uid_cache.reads_of(folder)
    real = StoreCollection._store_item_cache

    def failing(self: StoreCollection, href: str, item: Any, cache_hash: str = "") -> Any:
        if href == "broken.ics":  # after the item's file is in place
            raise OSError("disk full")
        return real(self, href, item, cache_hash)

    monkeypatch.setattr(StoreCollection, "_store_item_cache", failing)
    assert put(server, "broken.ics", "uid-broken") >= 400
    monkeypatch.undo()
    assert "broken.ics" in store.items(layout.APPOINTMENTS)
    assert put(server, "c.ics", "uid-broken") == 409  # the disk holds it: read again
    assert uid_cache.reads_of(folder) == reads + 1
    assert put(server, "d.ics", "uid-a") == 409 and put(server, "d.ics", "uid-d") == 201
    assert uid_cache.reads_of(folder) == reads + 1
