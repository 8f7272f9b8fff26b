"""The iCloud emulator over real HTTP: each behaviour from ICLOUD.md it promises to reproduce."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.testing import APP_PASSWORD as PASSWORD
from calmirror.testing import APPLE_ID
from calmirror.testing.ical import event

DSID = "10000001"
CAL_XMLNS = (
    'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" '
    'xmlns:cs="http://calendarserver.org/ns/" xmlns:ic="http://apple.com/ns/ical/"'
)
SHORT_ETAG = re.compile(r'^"[0-9a-z]{8}"$')


def propfind_body(*props: str) -> str:
    inner = "".join(f"<{p}/>" for p in props)
    return f'<?xml version="1.0"?><d:propfind {CAL_XMLNS}><d:prop>{inner}</d:prop></d:propfind>'


def sync_body(token: str = "") -> str:
    return (
        f"<d:sync-collection {CAL_XMLNS}><d:sync-token>{token}</d:sync-token>"
        "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def multiget_body(*hrefs: str) -> str:
    return (
        f"<c:calendar-multiget {CAL_XMLNS}><d:prop><d:getetag/><c:calendar-data/></d:prop>"
        + "".join(f"<d:href>{h}</d:href>" for h in hrefs)
        + "</c:calendar-multiget>"
    )


def responses(text: str) -> dict[str, str]:
    """href -> the XML of its <response>, for Radicale's and the layer's multistatus."""
    found = {}
    for block in re.findall(r"<response>.*?</response>", text, re.S):
        href = re.search(r"<href[^>]*>([^<]+)</href>", block)
        assert href is not None
        found[href.group(1)] = block
    return found


def text_of(tag: str, xml: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{tag}(?: [^>]*)?>([^<]*)</(?:\w+:)?{tag}>", xml)
    return match.group(1) if match else None


class Client:
    def __init__(self, emu: Emulator, password: str = PASSWORD) -> None:
        self.emu = emu
        self.session = requests.Session()
        self.session.auth = (APPLE_ID, password)

    def request(self, method: str, url: str, body: str | None = None, **headers: str) -> requests.Response:
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/xml; charset=utf-8"
        return self.session.request(
            method, url, data=body.encode() if body else None, headers=hdrs, allow_redirects=False, timeout=30
        )

    def propfind(self, url: str, *props: str, depth: str = "0") -> requests.Response:
        return self.request("PROPFIND", url, propfind_body(*props), Depth=depth)

    def sync(self, cal_id: str, token: str = "") -> requests.Response:
        return self.request("REPORT", self.emu.calendar_url(cal_id), sync_body(token))

    def put(self, cal_id: str, name: str, ics: str, **headers: str) -> requests.Response:
        headers.setdefault("Content_Type", "text/calendar; charset=utf-8")
        return self.request("PUT", self.emu.calendar_url(cal_id) + name, ics, **headers)

    def ctag_and_token(self, cal_id: str) -> tuple[str, str]:
        text = self.propfind(self.emu.calendar_url(cal_id), "cs:getctag", "d:sync-token").text
        ctag, token = text_of("getctag", text), text_of("sync-token", text)
        assert ctag and token
        return ctag, token


@pytest.fixture(scope="module")
def shared() -> Iterator[Emulator]:
    """For tests that only read the sample account."""
    with Emulator(apple_id=APPLE_ID, password=PASSWORD, seed="sample") as emu:
        yield emu


# --- discovery (ICLOUD.md 1-4) ------------------------------------------------------------


def test_urls_carry_real_ports_and_the_partition_is_named_localhost(shared: Emulator) -> None:
    front, partition = urlsplit(shared.url), urlsplit(shared.partition_url)
    assert (front.hostname, partition.hostname) == ("127.0.0.1", "localhost")
    assert front.port and partition.port and front.port != partition.port
    assert shared.dsid == DSID
    assert shared.calendar_url("home") == f"{shared.partition_url}{DSID}/calendars/home/"


@pytest.mark.parametrize("path", ["", ".well-known/caldav"])
def test_front_names_the_principal_without_redirect(shared: Emulator, path: str) -> None:
    r = Client(shared).propfind(shared.url + path, "d:current-user-principal")
    assert r.status_code == 207
    assert text_of("href", r.text.split("current-user-principal", 1)[1]) == f"/{DSID}/principal/"


@pytest.mark.parametrize("host", ["url", "partition_url"])
def test_principal_points_to_absolute_home_on_partition(shared: Emulator, host: str) -> None:
    r = Client(shared).propfind(
        getattr(shared, host) + f"{DSID}/principal/", "c:calendar-home-set", "d:displayname", "d:unknown-thing"
    )
    assert r.status_code == 207
    home = re.search(r"<calendar-home-set[^>]*><href[^>]*>([^<]+)</href>", r.text)
    assert home and home.group(1) == f"{shared.partition_url}{DSID}/calendars/"
    assert "404 Not Found" in r.text and "unknown-thing" in r.text


def test_allprop_is_a_404_propstat_and_depth1_principal_is_400(shared: Emulator) -> None:
    client = Client(shared)
    allprop = f"<d:propfind {CAL_XMLNS}><d:allprop/></d:propfind>"
    r = client.request("PROPFIND", shared.calendar_url("home"), allprop, Depth="0")
    assert r.status_code == 207 and "404 Not Found" in r.text and "200 OK" not in r.text
    r = client.propfind(shared.url + f"{DSID}/principal/", "d:displayname", depth="1")
    assert r.status_code == 400


# --- authentication (5) -------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, (APPLE_ID, "wxyz-wxyz-wxyz-wxyz"), ("other@example.com", PASSWORD)])
def test_bad_credentials_get_bare_401_with_two_challenges(shared: Emulator, auth: tuple[str, str] | None) -> None:
    r = requests.request("PROPFIND", shared.url, auth=auth, headers={"Depth": "0"}, timeout=10)
    assert r.status_code == 401
    assert r.content == b""
    assert r.raw.headers.getlist("WWW-Authenticate") == [
        'Basic realm="MMCalDav"',
        'X-MobileMe-AuthToken realm="MMCalDav"',
    ]


def test_set_password_revokes_the_old_one(emu: Emulator) -> None:
    assert Client(emu).propfind(emu.url, "d:current-user-principal").status_code == 207
    emu.set_password("new0-new0-new0-new0")
    assert Client(emu).propfind(emu.url, "d:current-user-principal").status_code == 401
    assert Client(emu, "new0-new0-new0-new0").propfind(emu.url, "d:current-user-principal").status_code == 207


# --- collections (6-8) --------------------------------------------------------------------


def test_home_listing_has_calendars_and_special_collections(shared: Emulator) -> None:
    r = Client(shared).propfind(
        shared.calendar_url("home").rsplit("home/", 1)[0],
        "d:resourcetype",
        "d:displayname",
        "c:supported-calendar-component-set",
        "ic:calendar-color",
        depth="1",
    )
    assert r.status_code == 207
    found = responses(r.text)
    home = f"/{DSID}/calendars/"
    specials = {home + name + "/" for name in ("inbox", "outbox", "notification")}
    calendars = {href for href, block in found.items() if "<C:calendar" in block}
    assert set(found) == {home} | specials | calendars
    assert specials.isdisjoint(calendars) and home not in calendars
    names = {text_of("displayname", found[href]): href for href in calendars}
    assert set(names) == {"Home", "Work", "Family", "Reminders"}
    assert names["Home"] == home + "home/"
    assert re.fullmatch(rf"{home}[0-9A-F]{{8}}(-[0-9A-F]{{4}}){{3}}-[0-9A-F]{{12}}/", names["Work"])
    assert re.fullmatch(rf"{home}[0-9a-f]{{64}}/", names["Family"])
    for name, href in names.items():
        comps = re.findall(r'<C:comp name="(\w+)"', found[href])
        assert comps == (["VTODO"] if name == "Reminders" else ["VEVENT"])
        assert re.search(r"<ICAL:calendar-color>#[0-9A-F]{8}</ICAL:calendar-color>", found[href])
    assert shared.calendar_id("Work") == names["Work"].split("/")[-2]


def test_ctags_in_a_depth1_listing_equal_each_calendars_sync_token(shared: Emulator) -> None:
    client = Client(shared)
    r = client.propfind(f"{shared.partition_url}{DSID}/calendars/", "d:displayname", "cs:getctag", depth="1")
    found = responses(r.text)
    assert "sync-token" not in r.text
    for info in shared.store.calendars():
        ctag = text_of("getctag", found[shared.store.calendar_path(info.cal_id)])
        assert ctag == client.ctag_and_token(info.cal_id)[1]
    assert re.search(r"<getctag[^>]*/>", found[f"/{DSID}/calendars/inbox/"])
    assert client.propfind(f"{shared.url}{DSID}/", "d:displayname").status_code == 404


def test_family_is_read_only(emu: Emulator) -> None:
    client = Client(emu)
    family, work = emu.calendar_id("Family"), emu.calendar_id("Work")
    privileges = {
        cal: re.findall(
            r"<privilege><(?:\w+:)?([\w-]+) ?/></privilege>",
            client.propfind(emu.calendar_url(cal), "d:current-user-privilege-set").text,
        )
        for cal in (family, work)
    }
    assert "read" in privileges[family] and not {"write", "write-content", "all"} & set(privileges[family])
    assert "write" in privileges[work]
    name = next(iter(emu.items(family))).rsplit("/", 1)[-1]
    assert client.put(family, "new.ics", event(str(uuid.uuid4()))).status_code == 403
    assert client.request("DELETE", emu.calendar_url(family) + name).status_code == 403
    assert client.request("GET", emu.calendar_url(family) + name).status_code == 200
    emu.set_writable(family, True)
    assert client.put(family, "new.ics", event(str(uuid.uuid4()))).status_code == 201


# --- sync and queries (10-16) -------------------------------------------------------------


def test_ctag_equals_sync_token_is_opaque_base64_and_changes_on_every_write(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    ctag, token = client.ctag_and_token(work)
    assert ctag == token and "://" not in token
    assert base64.b64decode(token, validate=True) and token.endswith("=")
    only_ctag = client.propfind(emu.calendar_url(work), "cs:getctag").text
    assert text_of("getctag", only_ctag) == ctag and "sync-token" not in only_ctag
    seen = {ctag}
    assert client.put(work, "a.ics", event("A-1")).status_code == 201
    seen.add(client.ctag_and_token(work)[0])
    emu.put_item(work, "b.ics", event("B-1"))
    seen.add(client.ctag_and_token(work)[0])
    assert client.request("DELETE", emu.calendar_url(work) + "a.ics").status_code == 204
    seen.add(client.ctag_and_token(work)[0])
    assert len(seen) == 4


def test_sync_collection_lists_hrefs_and_etags_then_only_changes(emu: Emulator) -> None:
    client, home = Client(emu), "home"
    first = client.sync(home)
    assert first.status_code == 207
    listed = responses(first.text)
    assert set(listed) == set(emu.items(home))
    assert all(
        "calendar-data" not in block and SHORT_ETAG.match(text_of("getetag", block) or "") for block in listed.values()
    )
    token = text_of("sync-token", first.text)
    assert token and token == client.ctag_and_token(home)[1]
    gone = next(iter(listed)).rsplit("/", 1)[-1]
    emu.delete_item(home, gone)
    emu.put_item(home, "added.ics", event("ADDED-1"))
    second = client.sync(home, token)
    changed = responses(second.text)
    assert set(changed) == {emu.store.calendar_path(home) + gone, emu.store.calendar_path(home) + "added.ics"}
    assert "404 Not Found" in changed[emu.store.calendar_path(home) + gone]
    assert text_of("getetag", changed[emu.store.calendar_path(home) + "added.ics"]) == emu.item_etag(home, "added.ics")
    third = client.sync(home, text_of("sync-token", second.text) or "")
    assert responses(third.text) == {}


def test_sync_with_calendar_data_goes_through_radicale_with_the_same_shapes(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    body = sync_body().replace("<d:getetag/>", "<d:getetag/><c:calendar-data/>")
    r = client.request("REPORT", emu.calendar_url(work), body)
    assert r.status_code == 207 and "BEGIN:VCALENDAR" in r.text
    assert text_of("sync-token", r.text) == client.ctag_and_token(work)[1]
    assert all(SHORT_ETAG.match(text_of("getetag", b) or "") for b in responses(r.text).values())


def test_invalid_and_invalidated_tokens(emu: Emulator) -> None:
    client, home = Client(emu), "home"
    for bad in ("garbage", "http://radicale.org/ns/sync/" + "0" * 64, base64.b64encode(b"x" * 35).decode()):
        r = client.sync(home, bad)
        assert r.status_code == 403 and "valid-sync-token" in r.text
    token = text_of("sync-token", client.sync(home).text) or ""
    assert client.sync(home, token).status_code == 207
    emu.invalidate_sync_tokens()
    r = client.sync(home, token)
    assert r.status_code == 403 and re.search(r"<error[^>]*>\s*<valid-sync-token", r.text)
    fresh = text_of("sync-token", client.sync(home).text) or ""
    assert fresh != token and client.sync(home, fresh).status_code == 207
    emu.invalidate_sync_tokens(mode="full")
    full = client.sync(home, fresh)
    assert full.status_code == 207 and set(responses(full.text)) == set(emu.items(home))
    newest = text_of("sync-token", full.text) or ""
    assert newest not in (fresh, token) and responses(client.sync(home, newest).text) == {}


def test_multiget_reports_vanished_href_as_404(shared: Emulator) -> None:
    hrefs = list(shared.items("home"))[:3]
    missing = shared.store.calendar_path("home") + "vanished.ics"
    r = Client(shared).request("REPORT", shared.calendar_url("home"), multiget_body(*hrefs, missing), Depth="1")
    assert r.status_code == 207
    found = responses(r.text)
    assert "404 Not Found" in found[missing]
    for href in hrefs:
        assert "BEGIN:VEVENT" in found[href]
        assert text_of("getetag", found[href]) == shared.item_etag("home", href.rsplit("/", 1)[-1])


def test_calendar_query_without_time_range_also_returns_the_collection(shared: Emulator) -> None:
    client, url = Client(shared), shared.calendar_url("home")
    filt = (
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">{}</c:comp-filter>'
        "</c:comp-filter></c:filter>"
    )
    query = f"<c:calendar-query {CAL_XMLNS}><d:prop><d:getetag/></d:prop>{filt}</c:calendar-query>"
    plain = responses(client.request("REPORT", url, query.format(""), Depth="1").text)
    collection = shared.store.calendar_path("home")
    assert collection in plain and set(plain) - {collection} == set(shared.items("home"))
    ranged = client.request(
        "REPORT", url, query.format('<c:time-range start="20261207T000000Z" end="20261208T000000Z"/>'), Depth="1"
    )
    assert ranged.status_code == 207
    in_range = responses(ranged.text)
    assert collection not in in_range
    assert collection + "dentist-floating-time.ics" in in_range


def test_free_busy_query_is_refused(shared: Emulator) -> None:
    body = (
        f'<c:free-busy-query {CAL_XMLNS}><c:time-range start="20261201T000000Z" end="20261231T000000Z"/>'
        "</c:free-busy-query>"
    )
    assert Client(shared).request("REPORT", shared.calendar_url("home"), body, Depth="1").status_code == 400


# --- writes (14, 19-23) -------------------------------------------------------------------


def test_short_etags_agree_across_put_get_propfind_report(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    put = client.put(work, "e.ics", event("E-1"))
    assert put.status_code == 201 and SHORT_ETAG.match(put.headers["ETag"])
    url = emu.calendar_url(work) + "e.ics"
    href = emu.store.calendar_path(work) + "e.ics"
    get = client.request("GET", url)
    propfind = text_of("getetag", client.propfind(url, "d:getetag").text)
    report = text_of(
        "getetag",
        responses(client.request("REPORT", emu.calendar_url(work), multiget_body(href), Depth="1").text)[href],
    )
    synced = text_of("getetag", responses(client.sync(work).text)[href])
    assert put.headers["ETag"] == get.headers["ETag"] == propfind == report == synced
    assert synced == emu.item_etag(work, "e.ics")
    assert get.text.replace("\r\n", "\n") == event("E-1").replace("\r\n", "\n")


def test_put_and_delete_status_codes_and_preconditions(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    created = client.put(work, "p.ics", event("P-1"), If_None_Match="*")
    assert created.status_code == 201
    etag = created.headers["ETag"]
    assert client.put(work, "p.ics", event("P-1"), If_None_Match="*").status_code == 412
    assert client.put(work, "p.ics", event("P-1", summary="x"), If_Match='"zzzzzzzz"').status_code == 412
    # iCloud gets If-Match: * backwards (ICLOUD.md 23)
    assert client.put(work, "p.ics", event("P-1", summary="x"), If_Match="*").status_code == 412
    updated = client.put(work, "p.ics", event("P-1", summary="Changed"), If_Match=etag)
    assert updated.status_code == 204 and updated.headers["ETag"] not in ("", etag)
    assert client.put(work, "p.ics", event("P-1"), If_Match=etag).status_code == 412  # stale now
    url = emu.calendar_url(work) + "p.ics"
    assert client.request("DELETE", url, If_Match=etag).status_code == 412
    assert client.request("DELETE", url, If_Match=updated.headers["ETag"]).status_code == 204
    assert client.request("DELETE", url).status_code == 404
    assert client.put(work, "q.ics", event("Q-1"), If_Match='"abcdefgh"').status_code == 412


def test_concurrent_if_match_writes_have_one_winner(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    etag = client.put(work, "race.ics", event("RACE-1")).headers["ETag"]
    statuses: list[int] = []

    def writer(n: int) -> None:
        statuses.append(Client(emu).put(work, "race.ics", event("RACE-1", summary=f"w{n}"), If_Match=etag).status_code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [204] + [412] * 5


def test_event_without_end_is_404_but_duration_is_fine(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    assert client.put(work, "noend.ics", event("NOEND-1", end=None)).status_code == 404
    with_duration = event("DUR-1", end=None, duration="PT30M")
    assert client.put(work, "dur.ics", with_duration).status_code == 201
    assert "noend.ics" not in "".join(emu.items(work))


def test_same_uid_in_another_calendar_is_refused(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    home_uid = re.search(r"^UID:(.+)$", next(iter(emu.items("home").values())), re.M)
    assert home_uid
    assert client.put(work, "dup.ics", event(home_uid.group(1).strip())).status_code == 403
    assert client.put(work, "u1.ics", event("U-1")).status_code == 201
    assert client.put(work, "u2.ics", event("U-1")).status_code == 409  # same calendar, other name
    assert client.put("home", "u1.ics", event("U-1")).status_code == 403


def test_put_needs_text_calendar_and_the_right_component(emu: Emulator) -> None:
    client, work = Client(emu), emu.calendar_id("Work")
    wrong_type = client.put(work, "ct.ics", event("CT-1"), Content_Type="application/octet-stream")
    assert wrong_type.status_code == 415
    assert client.put(work, "bad.ics", "not a calendar").status_code == 400
    todo = event("TODO-1").replace("VEVENT", "VTODO")
    assert client.put(work, "todo.ics", todo).status_code == 403
    assert client.put(emu.calendar_id("Reminders"), "todo.ics", todo).status_code == 201


def test_proppatch_of_resourcetype_is_refused(emu: Emulator) -> None:
    body = (
        f"<d:propertyupdate {CAL_XMLNS}><d:set><d:prop><d:resourcetype><d:collection/></d:resourcetype>"
        "<d:displayname>Oops</d:displayname></d:prop></d:set></d:propertyupdate>"
    )
    assert Client(emu).request("PROPPATCH", emu.calendar_url("home"), body).status_code == 403
    assert Client(emu).put("home", "still.ics", event("STILL-1")).status_code == 201
