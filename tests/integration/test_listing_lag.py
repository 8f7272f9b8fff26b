"""iCloud lists a resource written seconds ago late (ICLOUD.md #17). The emulator plays it
(`listing_lag_s`): a listing misses what was written within the lag, its token stops before
it, a GET or multiget finds it at once. calmirror must lose nothing under it: a full listing
that misses an appointment just pushed, or an event just changed on a phone, is not a
deletion. Both `[push] linked` modes; the real emulator and the real daemon.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.remote import ICloudClient
from tests.helpers import (
    APP_PASSWORD,
    APPLE_ID,
    Running,
    connected_home,
    daemon_running,
    emulator_serve,
    event,
    wait_for,
    wrong_in_icloud,
)
from tests.integration.test_linked_changes import DAY, busy

LAG = 3.0
TEN = (DAY.replace(hour=10), DAY.replace(hour=11))
TWO = (DAY.replace(hour=14), DAY.replace(hour=15))
QUERY = (
    '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
)


@pytest.fixture
def lagging() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample", listing_lag_s=LAG) as emulator:
        yield emulator


def listed_by_query(client: ICloudClient, url: str) -> set[str]:
    answer = client._http.request(
        "REPORT", url, body=QUERY, headers={"Depth": "1", "Content-Type": "application/xml"}, ok=(207,)
    )
    return {name for name in ("new.ics", "old.ics") if name.encode() in answer.content}


def test_the_emulator_lists_a_new_write_late_and_loses_no_change(tmp_path: Path) -> None:
    with (
        Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu,
        ICloudClient(emu.url, APPLE_ID, APP_PASSWORD) as client,
    ):
        url = emu.calendar_url(emu.calendar_id("Home"))
        emu.put_item(emu.calendar_id("Home"), "old.ics", event("old", "Old", "20290717T080000Z", "20290717T090000Z"))
        emu.listing_lag_s = 1.0
        before = client.sync(url, None)
        ctag = client.get_ctag(url)
        etag = client.create(url + "new.ics", event("new", "New", "20290717T100000Z", "20290717T110000Z"))
        assert url + "new.ics" not in client.sync(url, None).changed  # a full listing misses it
        late = client.sync(url, before.token)
        assert url + "new.ics" not in late.changed  # so does an incremental one
        assert listed_by_query(client, url) == {"old.ics"}
        assert set(client.sync_by_ctag(url, None).changed) == {url + "old.ics"}  # Depth-1 PROPFIND
        assert client.get_ctag(url) == ctag  # the ctag does not move past it either
        assert client.get(url + "new.ics").etag == etag  # a direct read finds it at once
        items, missing = client.fetch(url, [url + "new.ics"])
        assert [i.href for i in items] == [url + "new.ics"] and not missing
        time.sleep(1.1)
        assert client.sync(url, late.token).changed == {url + "new.ics": etag}  # reported once it shows
        assert set(client.sync(url, None).changed) == {url + "old.ics", url + "new.ics"}
        assert listed_by_query(client, url) == {"old.ics", "new.ics"}
        assert client.get_ctag(url) != ctag


@pytest.fixture(params=["two-way", "one-way"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def push(run: Running, emu: Emulator, uid: str) -> None:
    body = event(uid, "Call with Ada", "20290717T100000Z", "20290717T110000Z")
    assert run.put(f"{uid}.ics", body).status_code == 201
    work = emu.calendar_id("Work")
    assert wait_for(lambda: any(f"UID:{uid}" in b for b in emu.items(work).values()), 5)
    assert wait_for(lambda: not run.state().outbox(("pending", "in_flight")), 5)


def mirror_pass(run: Running) -> None:
    client = run.daemon.engine.client()
    try:
        reports = run.daemon.engine.mirror_pass(client)
        assert all(r.error is None for r in reports), [r.error for r in reports]
    finally:
        client.close()


def intact(run: Running, uid: str) -> None:
    """The appointment is as the client wrote it, still pushed, counted busy, and nothing
    records it as deleted in iCloud."""
    local = requests.get(run.href("appointments", f"{uid}.ics"), auth=run.auth, timeout=10)
    assert local.status_code == 200 and "CANCELLED" not in local.text
    appt = run.state().appointment(uid)
    assert appt is not None and appt.remote_href
    assert not [v for v in run.state().remote_versions() if v.deleted]
    assert TEN in busy(run)


@pytest.mark.parametrize("mirrored", [True, False], ids=["linked-mirrored", "linked-not-mirrored"])
def test_an_appointment_just_pushed_is_not_taken_as_deleted(
    tmp_path: Path, lagging: Emulator, mode: str, mirrored: bool
) -> None:
    """Mirrored: iCloud forgot the sync token just after the push, so the pass lists the
    calendar in full. Not mirrored: the first pass that follows it has no token yet."""
    conflicts = ("Work", "Home") if mirrored else ("Home",)
    home = connected_home(tmp_path, lagging, conflicts=conflicts, extra_config=f'[push]\nlinked = "{mode}"\n')
    with daemon_running(home) as run:
        push(run, lagging, "appt-lag")
        lagging.invalidate_sync_tokens("403")
        mirror_pass(run)
        intact(run, "appt-lag")
        time.sleep(LAG)
        mirror_pass(run)
        intact(run, "appt-lag")
        assert run.state().remote_versions() == []
        assert wrong_in_icloud(lagging, lagging.calendar_id("Work"), {"appt-lag": "Call with Ada"}) == []


def test_an_event_changed_on_a_phone_keeps_its_busy_time_through_a_late_full_listing(
    tmp_path: Path, lagging: Emulator
) -> None:
    home = connected_home(tmp_path, lagging, conflicts=("Work", "Home"))
    home_id = lagging.calendar_id("Home")
    lagging.listing_lag_s = 0.0
    lagging.put_item(home_id, "moved.ics", event("moved", "Dentist", "20290717T100000Z", "20290717T110000Z"))
    lagging.put_item(home_id, "gone.ics", event("gone", "Gym", "20290717T140000Z", "20290717T150000Z"))
    lagging.listing_lag_s = LAG
    with daemon_running(home) as run:
        mirror_pass(run)
        assert busy(run) == [TEN, TWO]
        lagging.put_item(
            home_id, "moved.ics", event("moved", "Dentist (confirmed)", "20290717T100000Z", "20290717T113000Z")
        )
        lagging.delete_item(home_id, "gone.ics")
        lagging.invalidate_sync_tokens("full")  # the stale token answered with a full listing
        mirror_pass(run)
        # The event the listing missed was read directly (its new version); the deleted one is gone.
        longer = [(TEN[0], TEN[1] + dt.timedelta(minutes=30))]
        assert busy(run) == longer
        copies = run.daemon.engine.store.items("icloud-home")
        assert [b for b in copies.values() if "Dentist (confirmed)" in b]
        assert not [b for b in copies.values() if "UID:gone" in b]
        time.sleep(LAG)
        mirror_pass(run)
        assert busy(run) == longer
        copies = run.daemon.engine.store.items("icloud-home")
        assert len([b for b in copies.values() if "UID:moved" in b]) == 1


def test_calmirror_emulator_serve_takes_the_lag_from_the_environment(tmp_path: Path) -> None:
    proc = emulator_serve("--empty", env={"CALMIRROR_EMULATOR_LISTING_LAG": "30"})
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "listings miss what was written in the last 30 s" in lines[2]
        home = next(line for line in iter(proc.stdout.readline, "") if line.strip().startswith("Home:"))
        url = home.split(": ", 1)[1].strip()
        auth = (APPLE_ID, APP_PASSWORD)
        body, ical = event("new", "New").encode(), {"Content-Type": "text/calendar"}
        put = requests.put(url + "new.ics", data=body, auth=auth, headers=ical, timeout=10)
        assert put.status_code == 201
        headers = {"Depth": "1", "Content-Type": "application/xml"}
        listed = requests.request("REPORT", url, data=QUERY, auth=auth, headers=headers, timeout=10)
        assert listed.status_code == 207 and b"new.ics" not in listed.content
        assert requests.get(url + "new.ics", auth=auth, timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
