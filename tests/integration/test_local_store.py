"""The in-process store API against a real Radicale store (and over HTTP where clients matter)."""

from __future__ import annotations

import json
import os
import resource
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from calmirror.local import CollectionMissing, LocalServer, LocalStore, StoreError, bulk
from calmirror.local.store import MIRROR_DISPLAYNAME_PREFIX
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

DAV = "{DAV:}"


def at(hour: int) -> str:
    """A start on one day, so many events in a test are told apart by their hour."""
    return f"20261201T{hour % 24:02d}0000Z"


@pytest.fixture
def work(store: LocalStore) -> LocalStore:
    store.ensure_mirror("work", "Work", "#1BADF8FF")
    return store


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD) as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (USER, PASSWORD)
        yield session


def props(store: LocalStore, name: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((store.collection_dir(name) / ".Radicale.props").read_text())
    return loaded


# --- base collections and mirror metadata --------------------------------------------------


def test_ensure_base_is_idempotent_and_repairs_a_lost_tag(store: LocalStore) -> None:
    store.ensure_base()
    assert store.items("appointments") == {}
    assert store.items("blocked") == {}
    props_file = store.collection_dir("appointments") / ".Radicale.props"
    props_file.write_text('{"D:displayname": "Appointments"}')  # what Radicale's PROPPATCH bug leaves
    store.ensure_base()
    assert props(store, "appointments")["tag"] == "VCALENDAR"
    assert props(store, "blocked") == {
        "tag": "VCALENDAR",
        "D:displayname": "Blocked slots",
        "C:supported-calendar-component-set": "VEVENT",
    }


def test_mirror_lifecycle(store: LocalStore) -> None:
    assert store.list_mirrors() == []
    store.ensure_mirror("work", "Work", "#FF0000FF")
    store.ensure_mirror("home", "iCloud · Home", None)
    store.ensure_mirror("work", "Work", "#FF0000FF")
    assert store.list_mirrors() == ["home", "work"]
    work = props(store, "icloud-work")
    assert work["D:displayname"] == "iCloud · Work"
    assert work["ICAL:calendar-color"] == "#FF0000FF"
    assert work["tag"] == "VCALENDAR"
    assert props(store, "icloud-home")["D:displayname"] == "iCloud · Home"
    assert "ICAL:calendar-color" not in props(store, "icloud-home")
    store.update_mirror_meta("work", "Office", "#00FF00FF")
    work = props(store, "icloud-work")
    assert work["D:displayname"] == f"{MIRROR_DISPLAYNAME_PREFIX}Office"
    assert work["ICAL:calendar-color"] == "#00FF00FF"
    store.update_mirror_meta("work", "Office", None)
    assert "ICAL:calendar-color" not in props(store, "icloud-work")
    store.apply_mirror("work", [("a.ics", event("a"))], [])
    assert (store.store_dir / "collection-cache" / USER / "icloud-work").is_dir()
    store.delete_mirror("work")
    store.delete_mirror("work")
    assert store.list_mirrors() == ["home"]
    assert not store.collection_dir("icloud-work").exists()
    assert not (store.store_dir / "collection-cache" / USER / "icloud-work").exists()
    with pytest.raises(CollectionMissing):
        store.apply_mirror("work", [("a.ics", event("a"))], [])
    with pytest.raises(CollectionMissing):
        store.update_mirror_meta("work", "Work", None)


@pytest.mark.parametrize("slug", ["", "a/b", ".hidden", "..", " padded"])
def test_unusable_mirror_slugs_are_refused(store: LocalStore, slug: str) -> None:
    with pytest.raises(StoreError):
        store.ensure_mirror(slug, "X", None)


# --- apply_mirror ------------------------------------------------------------------------------


def test_apply_mirror_upserts_and_deletes(work: LocalStore) -> None:
    refused = work.apply_mirror("work", [("a.ics", event("a")), ("b.ics", event("b"))], [])
    assert refused == []
    first = work.mirror_hrefs("work")
    assert set(first) == {"a.ics", "b.ics"}
    refused = work.apply_mirror("work", [("a.ics", event("a", "Changed")), ("c.ics", event("c"))], ["b.ics"])
    assert refused == []
    second = work.mirror_hrefs("work")
    assert set(second) == {"a.ics", "c.ics"}
    assert second["a.ics"] != first["a.ics"]
    assert "SUMMARY:Changed" in (work.item("icloud-work", "a.ics") or "")
    assert work.item("icloud-work", "b.ics") is None


def test_bad_items_are_skipped_with_a_reason(work: LocalStore) -> None:
    work.apply_mirror("work", [("taken.ics", event("taken-uid"))], [])
    batch = [
        ("good.ics", event("good")),
        ("garbage.ics", "this is not a calendar"),
        ("todo.ics", event("todo", component="VTODO")),
        (".hidden.ics", event("hidden")),
        ("dup-uid.ics", event("taken-uid")),
        ("good.ics", event("good-again")),
        ("two.ics", event("x") + event("y")),
    ]
    refused = dict(work.apply_mirror("work", batch, ["never-there.ics", "../escape.ics"]))
    assert set(refused) == {
        "garbage.ics",
        "todo.ics",
        ".hidden.ics",
        "dup-uid.ics",
        "good.ics",
        "two.ics",
        "../escape.ics",
    }
    assert refused["garbage.ics"] == "not valid iCalendar"
    assert refused["todo.ics"].startswith("not a VEVENT")
    assert refused[".hidden.ics"] == "unsafe href"
    assert "taken.ics" in refused["dup-uid.ics"]
    assert refused["good.ics"] == "href appears twice in one batch"
    assert set(work.mirror_hrefs("work")) == {"taken.ics", "good.ics"}
    assert "UID:good\r\n" in (work.item("icloud-work", "good.ics") or "")


def test_a_uid_may_move_to_another_href_within_one_batch(work: LocalStore) -> None:
    work.apply_mirror("work", [("old.ics", event("moving"))], [])
    assert work.apply_mirror("work", [("new.ics", event("moving"))], ["old.ics"]) == []
    assert set(work.mirror_hrefs("work")) == {"new.ics"}


def test_a_uid_taken_over_from_an_href_rewritten_later_in_the_batch_stays_claimed(work: LocalStore) -> None:
    """b takes a's UID while a, later in the same batch, gets another one: b holds the UID
    from then on, in this process and the next (the index once dropped b's claim when it
    rewrote a, and a third item could then take the same UID)."""
    work.apply_mirror("work", [("a.ics", event("first"))], [])
    assert work.apply_mirror("work", [("b.ics", event("first")), ("a.ics", event("second"))], []) == []
    refused = dict(work.apply_mirror("work", [("c.ics", event("first"))], []))
    assert "b.ics" in refused["c.ics"]
    refused = dict(LocalStore(work.store_dir, USER).apply_mirror("work", [("d.ics", event("first"))], []))
    assert "b.ics" in refused["d.ics"]
    assert set(work.mirror_hrefs("work")) == {"a.ics", "b.ics"}


def test_a_refused_replacement_keeps_its_old_uid_claimed(work: LocalStore) -> None:
    work.apply_mirror("work", [("x.ics", event("uid-x"))], [])
    batch = [("x.ics", "broken"), ("y.ics", event("uid-x"))]
    refused = dict(work.apply_mirror("work", batch, []))
    assert set(refused) == {"x.ics", "y.ics"}
    assert set(work.mirror_hrefs("work")) == {"x.ics"}


def test_large_batches_rebuild_the_mirror_and_keep_sync_tokens(work: LocalStore) -> None:
    work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}", start=at(i), duration="PT30M")) for i in range(300)], [])
    before = work.changes("icloud-work", None)
    assert before.full and len(before.changed) == 300
    upserts = [(f"e{i}.ics", event(f"e{i}", "Moved", start=at(i), duration="PT30M")) for i in range(0, 200)]
    upserts += [(f"n{i}.ics", event(f"n{i}")) for i in range(50)]
    deletes = [f"e{i}.ics" for i in range(250, 300)]
    assert work.apply_mirror("work", upserts, deletes) == []
    after = work.changes("icloud-work", before.token)
    assert not after.full
    assert set(after.changed) == {h for h, _ in upserts} | set(deletes)
    reopened = LocalStore(work.store_dir, USER)
    items = reopened.items("icloud-work")
    assert len(items) == 300
    assert "SUMMARY:Moved" in items["e5.ics"] and "SUMMARY:Meeting" in items["e220.ics"]
    assert reopened.changes("icloud-work", after.token).changed == []


def test_small_batches_into_a_big_mirror_keep_sync_tokens(work: LocalStore) -> None:
    work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}")) for i in range(400)], [])
    token = work.changes("icloud-work", None).token
    assert work.apply_mirror("work", [("e1.ics", event("e1", "Edited"))], ["e2.ics"]) == []
    delta = work.changes("icloud-work", token)
    assert sorted(delta.changed) == ["e1.ics", "e2.ics"] and not delta.full


def test_changes_with_an_unknown_token_lists_everything(work: LocalStore) -> None:
    work.apply_mirror("work", [("a.ics", event("a"))], [])
    for token in ("http://radicale.org/ns/sync/" + "0" * 64, "garbage"):
        result = work.changes("icloud-work", token)
        assert result.full and result.changed == ["a.ics"]


def test_reading_a_missing_collection_raises(store: LocalStore) -> None:
    with pytest.raises(CollectionMissing):
        store.items("icloud-nothing")
    assert store.item("appointments", "../../etc/passwd") is None


# --- with clients ---------------------------------------------------------------------------------


def test_changes_follow_client_put_delete_and_move(server: LocalServer, http: requests.Session) -> None:
    store = LocalStore(server.store_dir, USER)
    base = server.url + f"{USER}/"
    headers = {"Content-Type": "text/calendar"}
    token = store.changes("appointments", None).token
    assert http.put(base + "appointments/p.ics", data=event("p"), headers=headers).status_code == 201
    assert http.put(base + "appointments/q.ics", data=event("q"), headers=headers).status_code == 201
    step = store.changes("appointments", token)
    assert sorted(step.changed) == ["p.ics", "q.ics"] and not step.full
    assert http.delete(base + "appointments/p.ics").status_code in (200, 204)
    step = store.changes("appointments", step.token)
    assert step.changed == ["p.ics"]
    assert store.item("appointments", "p.ics") is None
    moved = http.request("MOVE", base + "appointments/q.ics", headers={"Destination": base + "appointments/r.ics"})
    assert moved.status_code == 201
    step = store.changes("appointments", step.token)
    assert sorted(step.changed) == ["q.ics", "r.ics"]
    assert set(store.etags("appointments")) == {"r.ics"}


REPORT_ALL = (
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="20260101T000000Z" end="20270101T000000Z"/>'
    "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the checking workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def test_a_client_reads_a_10000_event_mirror_in_one_report(server: LocalServer) -> None:
    store = LocalStore(server.store_dir, USER)
    store.ensure_mirror("big", "Big", None)
    events = [
        (f"ev-{i}.ics", event(f"ev-{i}@icloud", f"Event {i}", start=at(i), duration="PT30M")) for i in range(10_000)
    ]
    began, cpu_began = time.perf_counter(), cpu_seconds()
    assert store.apply_mirror("big", events, []) == []
    applied, applied_cpu = time.perf_counter() - began, cpu_seconds() - cpu_began
    began = time.perf_counter()
    answer = requests.request(
        "REPORT",
        server.url + f"{USER}/icloud-big/",
        data=REPORT_ALL,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        auth=(USER, PASSWORD),
        timeout=120,
    )
    reported = time.perf_counter() - began
    print(
        f"apply_mirror 10,000: {applied:.2f} s ({applied_cpu:.2f} CPU-s with its workers); "
        f"calendar-query REPORT over them: {reported:.2f} s"
    )
    assert answer.status_code == 207, answer.text[:300]
    responses = ET.fromstring(answer.content).findall(f"{DAV}response")
    assert len(responses) == 10_000
    # ~5 s wall, ~8 CPU-s on an idle 2-vCPU machine. CPU time, not wall time, so a busy test
    # machine cannot fail it; the bound catches an O(n²) regression (minutes).
    assert applied_cpu < 20


SYNC_COLLECTION = (
    '<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
    "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
)


def sync_collection(server: LocalServer, http: requests.Session, token: str) -> tuple[str, dict[str, str]]:
    """A client's sync-collection REPORT: the new token and href -> status of each change."""
    answer = http.request(
        "REPORT",
        server.url + f"{USER}/icloud-work/",
        data=SYNC_COLLECTION.format(token=token),
        headers={"Depth": "1", "Content-Type": "application/xml"},
    )
    assert answer.status_code == 207, answer.text[:300]
    root = ET.fromstring(answer.content)
    changes = {}
    for response in root.findall(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").rsplit("/", 1)[-1]
        status = response.findtext(f"{DAV}status") or response.findtext(f".//{DAV}status") or ""
        changes[href] = "gone" if "404" in status else "here"
    return root.findtext(f"{DAV}sync-token") or "", changes


def test_a_clients_sync_token_survives_a_big_batch(server: LocalServer, http: requests.Session) -> None:
    store = LocalStore(server.store_dir, USER)
    store.ensure_mirror("work", "Work", None)
    store.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}", start=at(i), duration="PT30M")) for i in range(100)], [])
    token, first = sync_collection(server, http, "")
    assert len(first) == 100
    upserts = [(f"e{i}.ics", event(f"e{i}", "Moved", start=at(i), duration="PT30M")) for i in range(60)]
    assert store.apply_mirror("work", upserts, ["e99.ics"]) == []
    token, delta = sync_collection(server, http, token)
    assert delta == {**{f"e{i}.ics": "here" for i in range(60)}, "e99.ics": "gone"}
    assert sync_collection(server, http, token)[1] == {}


def test_a_mirror_removed_and_added_again_in_one_process_can_be_written(work: LocalStore) -> None:
    work.apply_mirror("work", [("a.ics", event("a"))], [])
    work.delete_mirror("work")  # also removes its cache folders
    work.ensure_mirror("work", "Work", None)
    assert work.apply_mirror("work", [("b.ics", event("b"))], []) == []
    assert set(work.items("icloud-work")) == {"b.ics"}


def test_scratch_folders_of_a_crashed_fill_are_cleaned_up(work: LocalStore) -> None:
    cache = work.store_dir / "collection-cache" / USER / "icloud-work" / ".Radicale.cache" / "item"
    work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}")) for i in range(50)], [])
    leftover = cache / bulk.SCRATCH_DIR / f"{bulk.SCRATCH_PREFIX}crashed"
    leftover.mkdir(parents=True)
    (leftover / "e1.ics").write_bytes(b"")
    restarted = LocalStore(work.store_dir, USER)  # leftovers come from a writer that died
    restarted.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}", "Again")) for i in range(50)], [])
    assert not leftover.exists()
    assert len(restarted.items("icloud-work")) == 50


def test_a_new_process_finds_the_uids_in_the_log_without_reading_items(
    work: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh process changing one item of a big mirror must not read every item for the UID rule."""
    from radicale.storage import multifilesystem

    work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}")) for i in range(50)], [])
    work.apply_mirror("work", [("e1.ics", event("e1", "Edited")), ("f.ics", event("f"))], ["e2.ics"])

    def no_full_read(self: object) -> None:
        raise AssertionError("read every item of the collection")

    monkeypatch.setattr(multifilesystem.Collection, "get_all", no_full_read)
    reopened = LocalStore(work.store_dir, USER)
    refused = dict(reopened.apply_mirror("work", [("g.ics", event("e3")), ("e2.ics", event("e2"))], []))
    assert set(refused) == {"g.ics"} and "e3.ics" in refused["g.ics"]  # e3 keeps its UID
    monkeypatch.undo()
    assert set(LocalStore(work.store_dir, USER).mirror_hrefs("work")) == {f"e{i}.ics" for i in range(50)} | {"f.ics"}


def test_a_folder_changed_behind_the_log_is_read_again(work: LocalStore) -> None:
    """Another program adds an item: the log no longer ends at the folder's stamp, so the UIDs
    are read from the items and the new item's UID is claimed."""
    work.apply_mirror("work", [("a.ics", event("a"))], [])
    folder = work.collection_dir("icloud-work")
    (folder / "stranger.ics").write_text(event("taken"), encoding="utf-8")
    reopened = LocalStore(work.store_dir, USER)
    refused = dict(reopened.apply_mirror("work", [("b.ics", event("taken"))], []))
    assert "stranger.ics" in refused["b.ics"]
    # and in the same process, after its own writes, the log is trusted again
    assert reopened.apply_mirror("work", [("c.ics", event("c"))], []) == []
    again = dict(LocalStore(work.store_dir, USER).apply_mirror("work", [("d.ics", event("c"))], []))
    assert "c.ics" in again["d.ics"]


def test_a_client_put_checks_uids_without_reading_every_appointment(
    tmp_path: Path, server: LocalServer, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Radicale checks a new item's UID against the whole collection under the exclusive lock;
    from the second write on the answer comes from memory, and it still follows every change:
    our own PUTs and DELETEs, and a file written behind the server's back."""
    from calmirror.local.uid_cache import UidCachedCollection

    base = server.url + f"{USER}/appointments/"
    ics = {"Content-Type": "text/calendar"}
    assert http.put(base + "a.ics", data=event("uid-a").encode(), headers=ics, timeout=10).status_code == 201
    reads: list[str] = []
    real_get_all = UidCachedCollection.get_all

    def counted(self: UidCachedCollection) -> Any:
        reads.append(self.path)
        return real_get_all(self)

    monkeypatch.setattr(UidCachedCollection, "get_all", counted)
    for n in range(5):
        assert (
            http.put(base + f"n{n}.ics", data=event(f"uid-n{n}").encode(), headers=ics, timeout=10).status_code == 201
        )
    assert reads == []
    clash = http.put(base + "b.ics", data=event("uid-a").encode(), headers=ics, timeout=10)
    assert clash.status_code == 409 and "no-uid-conflict" in clash.text
    assert http.delete(base + "a.ics", timeout=10).status_code in (200, 204)
    assert http.put(base + "b.ics", data=event("uid-a").encode(), headers=ics, timeout=10).status_code == 201
    assert reads == []
    LocalStore(tmp_path / "store", USER).write_appointment("behind.ics", event("uid-behind"))
    clash = http.put(base + "c.ics", data=event("uid-behind").encode(), headers=ics, timeout=10)
    assert clash.status_code == 409 and reads  # the folder changed: the UIDs were read again


def test_a_batch_cut_off_between_its_renames_leaves_no_scratch_file_behind(
    work: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scratch folders are kept from batch to batch: one that failed half-way is cleared,
    so the same objects can be written again by the next batch."""
    moves = {"left": 1}
    real_replace = os.replace

    def replace_then_fail(source: str, destination: str) -> None:
        if moves["left"] == 0:
            raise OSError("disk gone")
        moves["left"] -= 1
        real_replace(source, destination)

    monkeypatch.setattr(bulk.os, "replace", replace_then_fail)
    with pytest.raises(StoreError, match="disk gone"):
        work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}")) for i in range(5)], [])
    monkeypatch.setattr(bulk.os, "replace", real_replace)
    folder = work.store_dir / "collection-root" / USER / "icloud-work"
    cache = work.store_dir / "collection-cache" / USER / "icloud-work" / ".Radicale.cache"
    for scratch_parent in (folder, cache / "item", cache / "history"):
        assert not any((scratch_parent / bulk.SCRATCH_DIR).glob("*/*"))
    assert work.apply_mirror("work", [(f"e{i}.ics", event(f"e{i}", "Again")) for i in range(5)], []) == []
    assert len(work.items("icloud-work")) == 5
    assert all(not any((p / bulk.SCRATCH_DIR).glob("*/*")) for p in (folder, cache / "item", cache / "history"))
