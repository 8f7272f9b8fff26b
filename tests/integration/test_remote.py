"""`calmirror.remote` against the iCloud emulator (and, for hostile XML only, a tiny fake
server: no real CalDAV server can be made to send an external entity)."""

from __future__ import annotations

import base64
import http.server
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.errors import (
    AuthFailed,
    BadRemoteData,
    Forbidden,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    RemoteError,
    Unavailable,
    Unreachable,
)
from calmirror.model import CalendarRow
from calmirror.remote import ICloudClient, canonical_url
from calmirror.remote.http import parse_retry_after
from calmirror.testing import APP_PASSWORD as PASSWORD
from calmirror.testing import APPLE_ID
from calmirror.testing.ical import event


@pytest.fixture
def client(emu: Emulator) -> Iterator[ICloudClient]:
    with ICloudClient(emu.url, APPLE_ID, PASSWORD) as remote:
        yield remote


def calendars(client: ICloudClient) -> dict[str, CalendarRow]:
    return {cal.name: cal for cal in client.list_calendars(client.discover().home_url)}


def logged_since(emu: Emulator, start: float, expected: int) -> list[Any]:
    """The emulator's log entries for requests begun after `start`. The emulator logs a
    request after answering it, so wait for `expected` entries, then a little longer to
    catch any extra one."""
    deadline = time.monotonic() + 5
    while len([r for r in emu.requests if r.time >= start]) < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    time.sleep(0.05)
    return [r for r in emu.requests if r.time >= start]


def sent_headers(client: ICloudClient) -> list[tuple[str, dict[str, str]]]:
    """Record (method, request headers) of everything the client sends from now on."""
    seen: list[tuple[str, dict[str, str]]] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((str(response.request.method), dict(response.request.headers)))

    client._http.session.hooks["response"].append(hook)  # test-only peek at the wire
    return seen


# --- discovery and listing -------------------------------------------------------------


def test_discovery_goes_from_the_front_host_to_the_partition_home(emu: Emulator, client: ICloudClient) -> None:
    start = time.time()
    account = client.discover()
    assert account.principal_url == f"{emu.url}{emu.dsid}/principal/"
    assert account.home_url == f"{emu.partition_url}{emu.dsid}/calendars/"
    assert [(r.method, r.path, r.host) for r in logged_since(emu, start, 2)] == [
        ("PROPFIND", "/", "front"),
        ("PROPFIND", f"/{emu.dsid}/principal/", "front"),
    ]


def test_discovery_falls_back_to_well_known(emu: Emulator) -> None:
    start = time.time()
    with ICloudClient(emu.url + "no/such/place/", APPLE_ID, PASSWORD) as remote:
        account = remote.discover()
    assert account.home_url == f"{emu.partition_url}{emu.dsid}/calendars/"
    assert [r.path for r in logged_since(emu, start, 3)] == [
        "/no/such/place/",
        "/.well-known/caldav",
        f"/{emu.dsid}/principal/",
    ]


def test_calendars_are_typed_and_exclude_the_home_and_scheduling_boxes(emu: Emulator, client: ICloudClient) -> None:
    account = client.discover()
    start = time.time()
    found = client.list_calendars(account.home_url)
    assert [r.method for r in logged_since(emu, start, 1)] == ["PROPFIND"]
    by_name = {cal.name: cal for cal in found}
    assert {"Home", "Work", "Family", "Reminders"} <= set(by_name)
    assert all(cal.url.startswith(account.home_url) and cal.url != account.home_url for cal in found)
    assert not any(cal.id in ("inbox", "outbox", "notification") for cal in found)
    assert by_name["Home"].id == "home" and by_name["Home"].components == ("VEVENT",)
    assert by_name["Reminders"].components == ("VTODO",)
    assert by_name["Work"].writable and not by_name["Family"].writable
    assert by_name["Work"].id == emu.calendar_id("Work")
    assert by_name["Work"].url == canonical_url(emu.calendar_url(emu.calendar_id("Work")))
    assert by_name["Work"].color and by_name["Work"].color.startswith("#")
    assert client.get_ctag(by_name["Work"].url) == client.sync(by_name["Work"].url, None).token  # ICLOUD.md #10


# --- sync and fetch --------------------------------------------------------------------


def test_initial_sync_of_250_items_is_one_report_and_three_multigets(emu: Emulator, client: ICloudClient) -> None:
    cal_id = emu.create_calendar("Big")
    emu.bulk_load(cal_id, [(f"item-{n}.ics", event(f"big-{n}", f"n{n}")) for n in range(250)])
    url = calendars(client)["Big"].url
    start = time.time()
    changes = client.sync(url, None)
    items, missing = client.fetch(url, list(changes.changed), batch=100)
    assert changes.full and len(changes.changed) == 250 and not changes.deleted and not missing
    expected = 1 + math.ceil(250 / 100)
    assert [r.method for r in logged_since(emu, start, expected)] == ["REPORT"] * expected
    assert {item.href for item in items} == set(changes.changed)
    assert all(item.etag == changes.changed[item.href] for item in items)
    sample = next(item for item in items if item.href.endswith("/item-7.ics"))
    assert "UID:big-7\r\n" in sample.body and sample.body.endswith("END:VCALENDAR\r\n")
    assert client.get(sample.href).body == sample.body  # fetched body reads like the GET


def test_incremental_sync_reports_changes_and_deletions_with_stable_hrefs(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    first = client.sync(work.url, None)
    gone = next(iter(first.changed))
    emu.delete_item(work.id, gone.rsplit("/", 1)[1])
    emu.put_item(work.id, "added@example.com.ics", event("added@example.com"))
    start = time.time()
    second = client.sync(work.url, first.token)
    assert len(logged_since(emu, start, 1)) == 1 and not second.full
    assert second.deleted == [gone]
    assert list(second.changed) == [work.url + "added@example.com.ics"]
    assert second.token != first.token
    third = client.sync(work.url, second.token)
    assert not third.changed and not third.deleted


def test_multiget_reports_a_vanished_href_as_missing(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    listed = list(client.sync(work.url, None).changed)
    emu.delete_item(work.id, listed[0].rsplit("/", 1)[1])
    items, missing = client.fetch(work.url, listed)
    assert missing == [listed[0]]
    assert sorted(item.href for item in items) == sorted(listed[1:])


def test_fetch_accepts_paths_and_other_spellings_and_answers_canonically(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    emu.put_item(work.id, "a@b.ics", event("a@b"))
    path = work.url.split(emu.partition_url.rstrip("/"), 1)[1]
    items, missing = client.fetch(work.url, [path + "a%40b.ics"])
    assert not missing and [item.href for item in items] == [work.url + "a@b.ics"]


def test_odd_item_names_round_trip_create_sync_fetch(client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    token = client.sync(work.url, None).token
    names = ["a@b+c.ics", "semi;colon.ics", "café x.ics"]
    etags = {canonical_url(work.url + name): client.create(work.url + name, event(name)) for name in names}
    changes = client.sync(work.url, token)
    assert changes.changed == etags  # PUT's ETag is the later getetag (ICLOUD.md #14)
    assert work.url + "a@b+c.ics" in etags and work.url + "semi%3Bcolon.ics" in etags
    items, missing = client.fetch(work.url, list(changes.changed))
    assert not missing and {item.href: item.etag for item in items} == etags


def test_stale_token_is_invalid_sync_token_and_a_tokenless_sync_recovers(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    token = client.sync(work.url, None).token
    emu.invalidate_sync_tokens(mode="403")
    with pytest.raises(InvalidSyncToken):
        client.sync(work.url, token)
    again = client.sync(work.url, None)
    assert again.full and again.changed


def test_stale_token_answered_with_a_full_listing_is_not_claimed_full(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    first = client.sync(work.url, None)
    emu.invalidate_sync_tokens(mode="full")
    changes = client.sync(work.url, first.token)
    assert set(changes.changed) == set(first.changed)
    assert not changes.full  # indistinguishable from a big change set: see ICloudClient.sync


def test_ctag_is_one_propfind_and_changes_on_write(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    start = time.time()
    before = client.get_ctag(work.url)
    assert before and len(logged_since(emu, start, 1)) == 1
    emu.put_item(work.id, "ctag.ics", event("ctag"))
    assert client.get_ctag(work.url) not in (None, before)


# --- writes ----------------------------------------------------------------------------


def test_create_update_delete_follow_the_etags(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    href = work.url + "appt-1.ics"
    wire = sent_headers(client)
    etag = client.create(href, event("appt-1"))
    assert etag == emu.item_etag(work.id, "appt-1.ics")
    with pytest.raises(PreconditionFailed):
        client.create(href, event("appt-1", "again"))
    newer = client.update(href, event("appt-1", "moved"), etag)
    assert newer != etag and "SUMMARY:moved" in client.get(href).body
    with pytest.raises(PreconditionFailed):
        client.update(href, event("appt-1", "stale"), etag)
    with pytest.raises(PreconditionFailed):
        client.delete(href, etag)
    client.delete(href, newer)
    with pytest.raises(NotFound):
        client.delete(href, None)
    with pytest.raises(NotFound):
        client.get(href)
    puts = [headers for method, headers in wire if method == "PUT"]
    assert puts[0]["If-None-Match"] == "*" and "If-Match" not in puts[0]
    assert puts[0]["Content-Type"] == "text/calendar; charset=utf-8"
    assert all(h.get("If-Match") not in (None, "*") for h in puts[2:])
    assert all(h.get("If-Match") != "*" for _, h in wire)


def test_if_match_star_is_refused_before_anything_is_sent(emu: Emulator, client: ICloudClient) -> None:
    start = time.time()
    with pytest.raises(ValueError):
        client.update(emu.partition_url + "x/calendars/home/y.ics", event("y"), "*")
    assert logged_since(emu, start, 0) == []


def test_path_only_hrefs_land_on_the_partition_host(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    path = work.url.split(emu.partition_url.rstrip("/"), 1)[1] + "by-path.ics"
    start = time.time()
    client.create(path, event("by-path"))
    assert client.get(path).href == work.url + "by-path.ics"
    logged = logged_since(emu, start, 2)
    assert [(r.method, r.host) for r in logged] == [("PUT", "partition"), ("GET", "partition")]


def test_icloud_refusals_become_typed_errors(emu: Emulator, client: ICloudClient) -> None:
    cals = calendars(client)
    with pytest.raises(Forbidden):  # read-only shared calendar (ICLOUD.md #8)
        client.create(cals["Family"].url + "no.ics", event("no"))
    client.create(cals["Work"].url + "dup.ics", event("dup"))
    with pytest.raises(Forbidden):  # same UID in a second calendar (#21)
        client.create(cals["Home"].url + "dup.ics", event("dup"))
    with pytest.raises(NotFound):  # no DTEND nor DURATION (#20)
        client.create(cals["Work"].url + "open.ics", event("open", end=None))


# --- failures --------------------------------------------------------------------------


def test_wrong_password_is_auth_failed_without_the_secret(emu: Emulator) -> None:
    secret = "wxyz-wxyz-wxyz-wxyz"
    with ICloudClient(emu.url, APPLE_ID, secret) as remote, pytest.raises(AuthFailed) as caught:
        remote.discover()
    text = f"{caught.value} {caught.value.url} {caught.value!r}"
    basic = base64.b64encode(f"{APPLE_ID}:{secret}".encode()).decode()
    assert secret not in text and basic not in text and "Authorization" not in text
    front = emu.url.removeprefix("http://").rstrip("/")
    assert "app-specific password" in str(caught.value) and f"PROPFIND {front}/: 401" in str(caught.value)
    assert caught.value.status == 401


def test_revoked_password_mid_session_is_auth_failed(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    emu.set_password("new0-new0-new0-new0")
    with pytest.raises(AuthFailed):
        client.sync(work.url, None)


@pytest.mark.parametrize("truncate", [False, True])
def test_503_is_unavailable_with_retry_after(emu: Emulator, client: ICloudClient, truncate: bool) -> None:
    work = calendars(client)["Work"]
    emu.faults.fail(1, status=503, retry_after=120, method="REPORT", truncate_body=truncate)
    with pytest.raises(Unavailable) as caught:
        client.sync(work.url, None)
    assert caught.value.retry_after == 120 and caught.value.status == 503
    assert client.sync(work.url, None).changed  # the next call is not affected


def test_other_5xx_is_unavailable_without_retry_after(emu: Emulator, client: ICloudClient) -> None:
    emu.faults.fail(1, status=500, retry_after=None)
    with pytest.raises(Unavailable) as caught:
        client.discover()
    assert caught.value.retry_after is None and caught.value.status == 500


def test_truncated_207_is_bad_remote_data(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    emu.faults.fail(1, status=207, retry_after=None, method="REPORT", truncate_body=True)
    with pytest.raises(BadRemoteData):
        client.sync(work.url, None)


def test_connection_reset_is_unreachable(emu: Emulator, client: ICloudClient) -> None:
    work = calendars(client)["Work"]
    emu.faults.reset(1, method="REPORT")
    with pytest.raises(Unreachable) as caught:
        client.sync(work.url, None)
    assert "REPORT localhost:" in str(caught.value)  # the host that failed is named


def test_slow_answer_times_out_as_unreachable(emu: Emulator) -> None:
    emu.faults.delay(1.5, method="PROPFIND")
    with ICloudClient(emu.url, APPLE_ID, PASSWORD, timeout=(2.0, 0.3)) as remote, pytest.raises(Unreachable) as caught:
        remote.discover()
    assert "timed out" in str(caught.value)


def test_refused_connection_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ICloudClient(f"http://127.0.0.1:{port}/", APPLE_ID, PASSWORD) as remote, pytest.raises(Unreachable) as caught:
        remote.discover()
    assert "connection refused" in str(caught.value)


def test_canonical_url_is_one_spelling_per_resource() -> None:
    spelt = "HTTPS://P72-Caldav.icloud.com:443/1/calendars/w/a%40b%3bc%2Fd%20%c3%a9.ics?x#y"
    assert canonical_url(spelt) == "https://p72-caldav.icloud.com:443/1/calendars/w/a@b%3Bc%2Fd%20%C3%A9.ics"
    assert canonical_url("http://h/a@b;c.ics") == canonical_url("http://h/a%40b%3Bc.ics")
    with pytest.raises(RemoteError):
        canonical_url("webcal://p01-calendars.icloud.com/published/2/abc")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) == 60
    assert parse_retry_after(formatdate(999_000, usegmt=True), now=1_000_000) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# --- hostile or broken XML (fake server) ----------------------------------------------


@dataclass
class Fake:
    """A canned-answer HTTP server: each request takes the next (status, headers, body)."""

    url: str
    answers: list[tuple[int, dict[str, str], bytes]]
    seen: list[tuple[str, str, dict[str, str]]]

    def multistatus(self, body: bytes) -> None:
        self.answers.append((207, {"Content-Type": "application/xml; charset=utf-8"}, body))


@pytest.fixture
def fake() -> Iterator[Fake]:
    state = Fake("", [], [])

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.seen.append((self.command, self.path, dict(self.headers)))
            status, headers, body = state.answers.pop(0) if state.answers else (500, {}, b"")
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        do_PROPFIND = do_REPORT = do_PUT = do_GET = answer

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield state
    server.shutdown()
    server.server_close()


def test_external_entity_is_refused_not_resolved(fake: Fake, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    hostile = f"""<?xml version="1.0"?>
<!DOCTYPE d:multistatus [<!ENTITY xxe SYSTEM "file://{secret}">]>
<d:multistatus xmlns:d="DAV:"><d:response><d:href>/</d:href><d:propstat><d:prop>
<d:current-user-principal><d:href>/&xxe;/</d:href></d:current-user-principal></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>""".encode()
    fake.multistatus(hostile)
    fake.multistatus(hostile)  # the /.well-known/caldav fallback gets the same
    with ICloudClient(fake.url, APPLE_ID, PASSWORD) as remote, pytest.raises(BadRemoteData) as caught:
        remote.discover()
    assert "DOCTYPE" in str(caught.value) and "TOP-SECRET" not in str(caught.value)


def test_sync_ignores_the_collection_itself_and_honours_truncation(fake: Fake) -> None:
    cal = fake.url + "1/calendars/work/"
    fake.multistatus(b"""<?xml version="1.0"?><multistatus xmlns="DAV:">
<response><href>/1/calendars/work/</href><status>HTTP/1.1 507 Insufficient Storage</status></response>
<response><href>/1/calendars/work/a%40b.ics</href><propstat><prop><getetag>"e1"</getetag></prop>
<status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>/1/calendars/work/gone.ics</href><status>HTTP/1.1 404 Not Found</status></response>
<sync-token>tok+/=</sync-token></multistatus>""")
    fake.multistatus(b"<multistatus xmlns='DAV:'><response><href>/1/")  # cut-off XML
    with ICloudClient(fake.url, APPLE_ID, PASSWORD) as remote:
        changes = remote.sync(cal, None)
        assert changes.changed == {cal + "a@b.ics": '"e1"'} and changes.deleted == [cal + "gone.ics"]
        assert changes.token == "tok+/=" and changes.truncated and not changes.full
        with pytest.raises(BadRemoteData):
            remote.sync(cal, changes.token)
    assert fake.seen[0][2]["Depth"] == "0"


def test_create_without_etag_header_asks_once_by_propfind(fake: Fake) -> None:
    fake.answers.append((201, {}, b""))
    fake.multistatus(b"""<multistatus xmlns="DAV:"><response><href>/c/x.ics</href><propstat><prop>
<getetag>"late1"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>""")
    with ICloudClient(fake.url, APPLE_ID, PASSWORD) as remote:
        assert remote.create("/c/x.ics", event("x")) == '"late1"'
    assert [(method, path) for method, path, _ in fake.seen] == [("PUT", "/c/x.ics"), ("PROPFIND", "/c/x.ics")]


def test_discovery_does_not_follow_a_redirect_to_another_host(fake: Fake) -> None:
    fake.answers.append((301, {"Location": "https://elsewhere.example/dav/"}, b""))
    with ICloudClient(fake.url, APPLE_ID, PASSWORD) as remote, pytest.raises(RemoteError) as caught:
        remote.discover()
    assert "elsewhere.example" in str(caught.value) and len(fake.seen) == 1


def test_429_with_an_http_date_is_unavailable_until_then(fake: Fake) -> None:
    fake.answers.append((429, {"Retry-After": formatdate(time.time() + 300, usegmt=True)}, b"<html>slow"))
    with ICloudClient(fake.url, APPLE_ID, PASSWORD) as remote, pytest.raises(Unavailable) as caught:
        remote.get("/c/x.ics")
    assert caught.value.retry_after is not None and 290 < caught.value.retry_after <= 300
