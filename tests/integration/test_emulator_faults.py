"""The iCloud emulator's scripted faults, its request log and its iCloud-side API, over real
HTTP (the protocol itself is test_emulator's)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from calmirror.emulator import Emulator, LoggedRequest
from calmirror.testing import APP_PASSWORD as PASSWORD
from calmirror.testing import APPLE_ID
from calmirror.testing.ical import event
from tests.integration.test_emulator import DSID, Client, responses

# --- faults (26-27) and the request log ---------------------------------------------------


def test_fail_fault_with_retry_after_then_recovery(emu: Emulator) -> None:
    client = Client(emu)
    emu.faults.fail(count=2, status=503, retry_after=120, method="PROPFIND")
    for _ in range(2):
        r = client.propfind(emu.url, "d:current-user-principal")
        assert r.status_code == 503 and r.headers["Retry-After"] == "120"
    assert client.propfind(emu.url, "d:current-user-principal").status_code == 207
    statuses = [(e.method, e.status) for e in emu.requests]
    assert statuses == [("PROPFIND", 503), ("PROPFIND", 503), ("PROPFIND", 207)]


def test_fail_fault_matches_method_and_path(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    emu.faults.fail(count=1, status=500, retry_after=None, method="REPORT", path_contains=work)
    assert client.sync("home").status_code == 207
    assert client.propfind(emu.calendar_url(work), "d:displayname").status_code == 207
    r = client.sync(work)
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert client.sync(work).status_code == 207


def test_truncated_body_fault(emu: Emulator) -> None:
    emu.faults.fail(truncate_body=True)
    with pytest.raises(requests.exceptions.RequestException):
        Client(emu).propfind(emu.url, "d:current-user-principal")
    assert emu.requests[-1].status == 503


def test_delay_fault(emu: Emulator) -> None:
    emu.faults.delay(0.6, method="PROPFIND")
    started = time.monotonic()
    assert Client(emu).propfind(emu.url, "d:current-user-principal").status_code == 207
    assert time.monotonic() - started >= 0.6
    assert emu.requests[-1].duration_s >= 0.6
    started = time.monotonic()
    Client(emu).propfind(emu.url, "d:current-user-principal")
    assert time.monotonic() - started < 0.5


def test_reset_fault_and_clear(emu: Emulator) -> None:
    emu.faults.reset(count=1, path_contains="/principal/")
    with pytest.raises(requests.exceptions.ConnectionError):
        Client(emu).propfind(emu.url + f"{DSID}/principal/", "d:displayname")
    assert emu.requests[-1].status == 0
    emu.faults.fail(count=5)
    emu.faults.clear()
    assert Client(emu).propfind(emu.url, "d:current-user-principal").status_code == 207


def test_request_log_counts_hosts_bytes_and_skips_icloud_side_edits(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    emu.clear_requests()
    client.propfind(emu.url, "d:current-user-principal")
    client.propfind(emu.url + f"{DSID}/principal/", "c:calendar-home-set")
    client.sync(work)
    client.put(work, "log.ics", event("LOG-1"))
    emu.put_item(work, "side.ics", event("SIDE-1"))
    emu.delete_item(work, "side.ics")
    requests.request("PROPFIND", emu.url, timeout=10)  # unauthenticated: logged as 401
    log = emu.requests
    assert all(isinstance(e, LoggedRequest) for e in log)
    assert [(e.method, e.host, e.status) for e in log] == [
        ("PROPFIND", "front", 207),
        ("PROPFIND", "front", 207),
        ("REPORT", "partition", 207),
        ("PUT", "partition", 201),
        ("PROPFIND", "front", 401),
    ]
    put = log[3]
    assert put.path == emu.store.calendar_path(work) + "log.ics"
    assert put.request_bytes == len(event("LOG-1").encode()) and put.response_bytes == 0
    assert log[2].response_bytes > 1000 and all(e.duration_s >= 0 and e.time > 0 for e in log)
    emu.clear_requests()
    assert emu.requests == []


# --- iCloud-side API ----------------------------------------------------------------------


def test_icloud_side_edits_calendars_and_bulk_load(tmp_path: object) -> None:
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, seed="empty") as emu:
        assert {i.name for i in emu.store.calendars()} == {"Home", "Work", "Family", "Reminders"}
        assert all(emu.items(i.cal_id) == {} for i in emu.store.calendars())
        cal = emu.create_calendar("Big", color="#00FF00FF")
        started = time.monotonic()
        emu.bulk_load(cal, [(f"B{n}.ics", event(f"BULK-{n}")) for n in range(300)])
        assert time.monotonic() - started < 15
        client = Client(emu)
        assert len(responses(client.sync(cal).text)) == 300
        href = emu.put_item(cal, "one.ics", event("ONE-1"))
        assert href == f"/{DSID}/calendars/{cal}/one.ics" and href in emu.items(cal)
        assert client.request("GET", emu.calendar_url(cal) + "one.ics").headers["ETag"] == emu.item_etag(cal, "one.ics")
        emu.delete_item(cal, "one.ics")
        with pytest.raises(KeyError):
            emu.item_etag(cal, "one.ics")
        emu.set_writable(cal, False)
        assert client.put(cal, "two.ics", event("TWO-1")).status_code == 403
        emu.delete_calendar(cal)
        assert client.propfind(emu.calendar_url(cal), "d:displayname").status_code == 404
        # a deleted calendar's UIDs are free again
        assert client.put("home", "b0.ics", event("BULK-0")).status_code == 201


def test_data_dir_is_kept_and_reused(tmp_path: object) -> None:
    folder = Path(str(tmp_path)) / "store"
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="empty") as emu:
        emu.put_item("home", "kept.ics", event("KEPT-1"))
        etag = emu.item_etag("home", "kept.ics")
        work = emu.calendar_id("Work")
    assert folder.is_dir()
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, data_dir=str(folder), seed="sample") as again:
        assert again.item_etag("home", "kept.ics") == etag
        assert again.calendar_id("Work") == work
        assert list(again.items("home")) == [f"/{DSID}/calendars/home/kept.ics"]
        assert Client(again).put(work, "x.ics", event("KEPT-1")).status_code == 403
