"""`LocalStore.changes` from the folder's listing: every writer is seen (a client over HTTP,
calmirror's own writes, a file written by another program), the same bytes again are no
change, an unchanged collection keeps its token, and a token of another process falls
back to Radicale's sync without losing a change."""

from __future__ import annotations

import os

import requests

from calmirror.local import LocalServer, LocalStore, layout, listing
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event
from tests.helpers import write_lock_held

APPOINTMENTS = layout.APPOINTMENTS


def put(server: LocalServer, href: str, text: str) -> None:
    answer = requests.put(
        f"{server.url}{USER}/{APPOINTMENTS}/{href}",
        data=text.encode(),
        auth=(USER, PASSWORD),
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )
    assert answer.status_code in (201, 204), answer.text


def test_client_writes_and_own_writes_are_seen_without_radicales_sync(server: LocalServer, store: LocalStore) -> None:
    put(server, "a.ics", event("a"))
    put(server, "b.ics", event("b"))
    start = store.changes(APPOINTMENTS, None)
    assert start.full and start.changed == ["a.ics", "b.ics"]

    store.write_appointment("a.ics", event("a", summary="Changed in iCloud"))
    requests.delete(f"{server.url}{USER}/{APPOINTMENTS}/b.ics", auth=(USER, PASSWORD), timeout=10)
    put(server, "c.ics", event("c"))
    since = store.changes(APPOINTMENTS, start.token)
    assert not since.full
    assert sorted(since.changed) == ["a.ics", "b.ics", "c.ics"]  # b.ics: deleted
    assert listing.split(since.token)[1] is not None  # answered from the listing, not Radicale's sync

    again = store.changes(APPOINTMENTS, since.token)
    assert again.changed == [] and again.token == since.token  # nothing changed: the same token


def test_the_same_bytes_again_are_no_change(server: LocalServer, store: LocalStore) -> None:
    put(server, "a.ics", event("a"))
    token = store.changes(APPOINTMENTS, None).token
    put(server, "a.ics", event("a"))
    assert store.changes(APPOINTMENTS, token).changed == []


def test_a_file_written_by_another_program_is_seen(store: LocalStore) -> None:
    folder = store.collection_dir(APPOINTMENTS)
    (folder / "x.ics").write_text(event("x"))
    token = store.changes(APPOINTMENTS, None).token
    (folder / "y.ics").write_text(event("y"))
    path = folder / "x.ics"
    before = path.stat()
    text = path.read_text()
    path.write_text(text.replace("SUMMARY:", "SUMMARY;X=1:")[: len(text)].ljust(len(text)))  # same size, in place
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    assert sorted(store.changes(APPOINTMENTS, token).changed) == ["x.ics", "y.ics"]


def test_a_settled_file_changed_in_place_keeping_its_stamp_but_not_ctime_is_seen(store: LocalStore) -> None:
    """A stamp is trusted only once settled; then the change time still tells an in-place write."""
    folder = store.collection_dir(APPOINTMENTS)
    path = folder / "x.ics"
    path.write_text(event("x"))
    old = 1_600_000_000_000_000_000
    os.utime(path, ns=(old, old))
    token = store.changes(APPOINTMENTS, None).token
    text = path.read_text()
    path.write_text(text.replace("SUMMARY:", "SUMMARY;X=1:")[: len(text)].ljust(len(text)))
    os.utime(path, ns=(old, old))
    assert store.changes(APPOINTMENTS, token).changed == ["x.ics"]


def test_a_token_of_another_process_falls_back_to_radicales_sync(store: LocalStore) -> None:
    store.write_appointment("a.ics", event("a"))
    token = store.changes(APPOINTMENTS, None).token
    radicale_token, _ = listing.split(token)
    foreign = f"{radicale_token}{listing.MARK}000000000000:0"  # what a restart leaves the caller
    store.write_appointment("b.ics", event("b"))
    since = store.changes(APPOINTMENTS, foreign)
    assert not since.full and since.changed == ["b.ics"]
    assert store.changes(APPOINTMENTS, since.token).changed == []


def test_following_appointments_does_not_wait_for_a_write_in_progress(store: LocalStore) -> None:
    """The push detector and the busy index follow appointments/ after every client write;
    with a listing token they read whole files without the store lock, so they do not queue
    behind the writes they are following."""
    store.write_appointment("a.ics", event("a"))
    token = store.changes(APPOINTMENTS, None).token
    (store.collection_dir(APPOINTMENTS) / "b.ics").write_text(event("b"))  # another program's write
    with write_lock_held(store):
        since = store.changes(APPOINTMENTS, token)
        assert since.changed == ["b.ics"]
        assert "UID:b" in (store.item(APPOINTMENTS, "b.ics") or "")
        assert set(store.items_named(APPOINTMENTS, ["a.ics", "gone.ics"])) == {"a.ics", "gone.ics"}
