"""The local CalDAV server over real HTTP: auth, read-only mirrors, traps, callables."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from calmirror.errors import LocalServerError
from calmirror.local import AddressInUse, LocalServer, LocalStore, NonLoopbackHost
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

DAV = "{DAV:}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (USER, PASSWORD)
        yield session


@pytest.fixture
def mirror(server: LocalServer) -> LocalStore:
    store = LocalStore(server.store_dir, USER)
    store.ensure_mirror("work", "Work", "#FF2968FF")
    assert store.apply_mirror("work", [("standup.ics", event("standup@icloud", "Standup"))], []) == []
    return store


def url(server: LocalServer, path: str) -> str:
    return server.url + path.lstrip("/")


def put(http: requests.Session, target: str, body: str) -> requests.Response:
    return http.put(target, data=body.encode(), headers={"Content-Type": "text/calendar"})


def displaynames(http: requests.Session, server: LocalServer) -> dict[str, str]:
    body = '<propfind xmlns="DAV:"><prop><displayname/></prop></propfind>'
    answer = http.request("PROPFIND", url(server, f"/{USER}/"), data=body, headers={"Depth": "1"})
    assert answer.status_code == 207
    names = {}
    for response in ET.fromstring(answer.content).iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        names[href] = response.findtext(f".//{DAV}displayname") or ""
    return names


# --- starting and stopping ---------------------------------------------------------------


def test_port_zero_is_replaced_by_the_bound_port(server: LocalServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    assert port > 0
    assert requests.options(server.url, timeout=5).status_code == 200


def test_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with LocalServer(tmp_path / "store", host="::1", port=0, username=USER, password=PASSWORD) as srv:
        assert srv.url.startswith("http://[::1]:")
        answer = requests.request("PROPFIND", srv.url, auth=(USER, PASSWORD), headers={"Depth": "0"}, timeout=5)
        assert answer.status_code == 207


def test_start_answers_at_once_and_stop_is_quick(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD)
    began = time.perf_counter()
    base = srv.start()
    started = time.perf_counter() - began
    assert requests.options(base, timeout=5).status_code == 200  # no retry needed
    began = time.perf_counter()
    srv.stop()
    print(f"start {started * 1000:.0f} ms, stop {(time.perf_counter() - began) * 1000:.0f} ms")
    assert started < 3
    with pytest.raises(requests.ConnectionError):
        requests.options(base, timeout=2)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "calendar.example.com"])
def test_non_loopback_host_is_refused_without_opt_in(tmp_path: Path, host: str) -> None:
    with pytest.raises(NonLoopbackHost) as refused:
        LocalServer(tmp_path / "store", host=host, port=0, username=USER, password=PASSWORD)
    assert "server.allow_non_loopback" in str(refused.value)
    assert refused.value.key == "server.allow_non_loopback"
    assert not (tmp_path / "store").exists()  # nothing was started or created


def test_non_loopback_host_is_accepted_with_opt_in(tmp_path: Path) -> None:
    srv = LocalServer(
        tmp_path / "store", host="0.0.0.0", port=0, allow_non_loopback=True, username=USER, password=PASSWORD
    )
    assert not srv.running


def test_address_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = LocalServer(tmp_path / "store", port=port, username=USER, password=PASSWORD)
        with pytest.raises(AddressInUse) as refused:
            srv.start()
    assert isinstance(refused.value, LocalServerError)
    assert str(refused.value) == f"cannot listen on 127.0.0.1:{port}: the address is already in use"
    assert not srv.running


def test_stop_lets_a_request_in_flight_finish(server: LocalServer, http: requests.Session) -> None:
    entered = threading.Event()

    def slow_guard(collection: str, body: bytes) -> None:
        entered.set()
        time.sleep(0.7)

    server.guard = slow_guard
    answers: list[int] = []
    target = url(server, f"/{USER}/appointments/slow.ics")
    worker = threading.Thread(target=lambda: answers.append(put(http, target, event("slow")).status_code))
    worker.start()
    assert entered.wait(5)
    server.stop(timeout=10)
    worker.join(5)
    assert answers == [201]


# --- authentication and the collections ----------------------------------------------------


def test_authentication_is_required(server: LocalServer) -> None:
    target = url(server, f"/{USER}/appointments/")
    anonymous = requests.request("PROPFIND", target, headers={"Depth": "0"}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    wrong = requests.request("PROPFIND", target, headers={"Depth": "0"}, auth=(USER, "nope"), timeout=10)
    assert wrong.status_code == 401
    other_user = requests.request("PROPFIND", target, headers={"Depth": "0"}, auth=("eve", PASSWORD), timeout=10)
    assert other_user.status_code == 401
    right = requests.request("PROPFIND", target, headers={"Depth": "0"}, auth=(USER, PASSWORD), timeout=10)
    assert right.status_code == 207


def test_collections_have_their_display_names(server: LocalServer, http: requests.Session, mirror: LocalStore) -> None:
    names = displaynames(http, server)
    assert names[f"/{USER}/appointments/"] == "Appointments"
    assert names[f"/{USER}/blocked/"] == "Blocked slots"
    assert names[f"/{USER}/busy/"] == "Busy (all calendars)"
    assert names[f"/{USER}/icloud-work/"] == "iCloud · Work"


def test_mirror_colour_is_served(server: LocalServer, http: requests.Session, mirror: LocalStore) -> None:
    body = '<propfind xmlns="DAV:" xmlns:I="http://apple.com/ns/ical/"><prop><I:calendar-color/></prop></propfind>'
    answer = http.request("PROPFIND", url(server, f"/{USER}/icloud-work/"), data=body, headers={"Depth": "0"})
    assert "#FF2968FF" in answer.text


def test_put_get_delete_in_appointments(server: LocalServer, http: requests.Session) -> None:
    target = url(server, f"/{USER}/appointments/a1.ics")
    assert put(http, target, event("a1", "Haircut")).status_code == 201
    fetched = http.get(target)
    assert fetched.status_code == 200
    assert "SUMMARY:Haircut" in fetched.text
    assert put(http, target, event("a1", "Haircut moved")).status_code in (200, 204)
    assert http.delete(target).status_code in (200, 204)
    assert http.get(target).status_code == 404


def test_clients_cannot_create_replace_or_delete_calendars(server: LocalServer, http: requests.Session) -> None:
    answer = http.request("MKCALENDAR", url(server, f"/{USER}/personal/"))
    assert answer.status_code == 403
    assert http.delete(url(server, f"/{USER}/appointments/")).status_code in (401, 403)
    whole = put(http, url(server, f"/{USER}/appointments/"), event("replaces-everything"))
    assert whole.status_code in (403, 409)
    assert http.request("PROPFIND", url(server, f"/{USER}/appointments/"), headers={"Depth": "0"}).ok


# --- read-only mirrors --------------------------------------------------------------------------


def mirror_state(store: LocalStore, http: requests.Session, server: LocalServer) -> tuple[object, ...]:
    return store.mirror_hrefs("work"), store.list_mirrors(), displaynames(http, server)


def test_every_write_method_on_a_mirror_is_refused(
    server: LocalServer, http: requests.Session, mirror: LocalStore
) -> None:
    before = mirror_state(mirror, http, server)
    item = url(server, f"/{USER}/icloud-work/standup.ics")
    collection = url(server, f"/{USER}/icloud-work/")
    proppatch = (
        '<propertyupdate xmlns="DAV:"><set><prop><displayname>Mine now</displayname></prop></set></propertyupdate>'
    )
    attempts = {
        "PUT new": lambda: put(http, url(server, f"/{USER}/icloud-work/new.ics"), event("new")),
        "PUT over": lambda: put(http, item, event("standup@icloud", "Changed")),
        "DELETE item": lambda: http.delete(item),
        "DELETE collection": lambda: http.delete(collection),
        "PROPPATCH": lambda: http.request("PROPPATCH", collection, data=proppatch),
        "MKCOL inside": lambda: http.request("MKCOL", url(server, f"/{USER}/icloud-work/sub/")),
        "MKCALENDAR mirror name": lambda: http.request("MKCALENDAR", url(server, f"/{USER}/icloud-new/")),
        "MOVE out": lambda: http.request(
            "MOVE", item, headers={"Destination": url(server, f"/{USER}/appointments/x.ics")}
        ),
        "COPY out": lambda: http.request(
            "COPY", item, headers={"Destination": url(server, f"/{USER}/appointments/x.ics")}
        ),
    }
    for name, attempt in attempts.items():
        answer = attempt()
        assert answer.status_code == 403, name
        assert "read-only" in answer.text, name
    assert mirror_state(mirror, http, server) == before
    assert http.get(url(server, f"/{USER}/appointments/x.ics")).status_code == 404


def test_every_write_method_on_busy_is_refused(server: LocalServer, http: requests.Session) -> None:
    store = LocalStore(server.store_dir, USER)
    assert store.apply_busy([("b.ics", event("busy-1", "Busy"))], []) == []
    item, collection = url(server, f"/{USER}/busy/b.ics"), url(server, f"/{USER}/busy/")
    appointment = url(server, f"/{USER}/appointments/m.ics")
    assert put(http, appointment, event("m")).status_code == 201
    attempts = {
        "PUT new": lambda: put(http, url(server, f"/{USER}/busy/new.ics"), event("new")),
        "PUT over": lambda: put(http, item, event("busy-1", "Mine")),
        "DELETE item": lambda: http.delete(item),
        "DELETE collection": lambda: http.delete(collection),
        "PROPPATCH": lambda: http.request(
            "PROPPATCH",
            collection,
            data='<propertyupdate xmlns="DAV:"><set><prop><displayname>x</displayname></prop></set></propertyupdate>',
        ),
        "MOVE in": lambda: http.request(
            "MOVE", appointment, headers={"Destination": url(server, f"/{USER}/busy/m.ics")}
        ),
    }
    for name, attempt in attempts.items():
        answer = attempt()
        assert answer.status_code == 403, name
        assert "busy/ is calmirror's read-only summary" in answer.text, name
    assert store.busy_item_names() == {"b.ics"}
    assert http.get(appointment).status_code == 200


def test_move_from_appointments_into_a_mirror_is_refused(
    server: LocalServer, http: requests.Session, mirror: LocalStore
) -> None:
    source = url(server, f"/{USER}/appointments/mine.ics")
    assert put(http, source, event("mine")).status_code == 201
    before = mirror.mirror_hrefs("work")
    for destination in (f"/{USER}/icloud-work/mine.ics", f"/{USER}/icloud-work/%2e%2e/icloud-work/m.ics"):
        answer = http.request("MOVE", source, headers={"Destination": url(server, destination)})
        assert answer.status_code == 403
    assert mirror.mirror_hrefs("work") == before
    assert http.get(source).status_code == 200


def test_mirror_stays_readable(server: LocalServer, http: requests.Session, mirror: LocalStore) -> None:
    answer = http.get(url(server, f"/{USER}/icloud-work/standup.ics"))
    assert answer.status_code == 200
    assert "SUMMARY:Standup" in answer.text


# --- request bodies ------------------------------------------------------------------------------

XXE = (
    '<?xml version="1.0"?><!DOCTYPE propfind [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<propfind xmlns="DAV:"><prop><displayname>&xxe;</displayname></prop></propfind>'
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    '<propfind xmlns="DAV:"><prop><displayname>&lol2;</displayname></prop></propfind>'
)


@pytest.mark.parametrize("method", ["PROPFIND", "REPORT", "PROPPATCH"])
@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["external-entity", "entity-expansion"])
def test_xml_with_a_doctype_or_entities_is_400(
    server: LocalServer, http: requests.Session, method: str, body: str
) -> None:
    answer = http.request(method, url(server, f"/{USER}/appointments/"), data=body, headers={"Depth": "0"})
    assert answer.status_code == 400
    assert "root:" not in answer.text


def test_body_over_the_limit_is_413(tmp_path: Path, http: requests.Session) -> None:
    with LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD, max_body_bytes=2000) as srv:
        big = event("big", "x" * 3000)
        answer = put(http, url(srv, f"/{USER}/appointments/big.ics"), big)
        assert answer.status_code == 413
        assert "raise server.max_body_mb in config.toml" in answer.text and "\n" not in answer.text.strip()
        assert put(http, url(srv, f"/{USER}/appointments/small.ics"), event("small")).status_code == 201


@pytest.mark.parametrize(
    "update",
    [
        "<set><prop><resourcetype><collection/></resourcetype><displayname>Broken</displayname></prop></set>",
        "<remove><prop><resourcetype/></prop></remove>",
        '<set><prop><C:supported-calendar-component-set><C:comp name="VTODO"/>'
        "</C:supported-calendar-component-set></prop></set>",
    ],
    ids=["set-resourcetype", "remove-resourcetype", "component-set"],
)
def test_proppatch_of_protected_properties_is_refused(server: LocalServer, http: requests.Session, update: str) -> None:
    body = f'<propertyupdate xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">{update}</propertyupdate>'
    answer = http.request("PROPPATCH", url(server, f"/{USER}/appointments/"), data=body)
    assert answer.status_code == 403
    assert displaynames(http, server)[f"/{USER}/appointments/"] == "Appointments"
    assert put(http, url(server, f"/{USER}/appointments/after.ics"), event("after")).status_code == 201


def test_proppatch_of_ordinary_properties_still_works(server: LocalServer, http: requests.Session) -> None:
    body = '<propertyupdate xmlns="DAV:"><set><prop><displayname>Bookings</displayname></prop></set></propertyupdate>'
    assert http.request("PROPPATCH", url(server, f"/{USER}/appointments/"), data=body).status_code == 207
    assert displaynames(http, server)[f"/{USER}/appointments/"] == "Bookings"
    assert put(http, url(server, f"/{USER}/appointments/ok.ics"), event("ok")).status_code == 201


# --- the daemon's callables ----------------------------------------------------------------------


def test_guard_refusal_is_409_with_the_reason(server: LocalServer, http: requests.Session) -> None:
    seen: list[tuple[str, bytes]] = []

    def guard(collection: str, body: bytes) -> str | None:
        seen.append((collection, body))
        return "overlaps busy time 2025-01-05 10:00–11:00 UTC" if b"Clash" in body else None

    server.guard = guard
    clash = url(server, f"/{USER}/appointments/clash.ics")
    answer = put(http, clash, event("clash", "Clash"))
    assert answer.status_code == 409
    assert answer.text.strip() == "overlaps busy time 2025-01-05 10:00–11:00 UTC"
    assert http.get(clash).status_code == 404
    assert put(http, url(server, f"/{USER}/appointments/fine.ics"), event("fine")).status_code == 201
    assert put(http, url(server, f"/{USER}/blocked/clash.ics"), event("b", "Clash")).status_code == 201
    assert [collection for collection, _ in seen] == ["appointments", "appointments"]
    assert b"UID:clash" in seen[0][1]


def test_guard_is_not_consulted_without_authentication(server: LocalServer) -> None:
    server.guard = lambda collection, body: "secret busy time"
    answer = requests.put(url(server, f"/{USER}/appointments/x.ics"), data=event("x").encode(), timeout=10)
    assert answer.status_code == 401
    assert "secret" not in answer.text


def test_a_failing_guard_lets_the_write_through(server: LocalServer, http: requests.Session) -> None:
    def broken(collection: str, body: bytes) -> str | None:
        raise RuntimeError("boom")

    server.guard = broken
    assert put(http, url(server, f"/{USER}/appointments/x.ics"), event("x")).status_code == 201


def test_move_from_blocked_into_appointments_is_guarded(server: LocalServer, http: requests.Session) -> None:
    source = url(server, f"/{USER}/blocked/b.ics")
    assert put(http, source, event("b", "Clash")).status_code == 201
    server.guard = lambda collection, body: "busy" if b"Clash" in body else None
    destination = url(server, f"/{USER}/appointments/b.ics")
    answer = http.request("MOVE", source, headers={"Destination": destination})
    assert answer.status_code == 409
    assert http.get(source).status_code == 200


def test_on_change_follows_successful_writes(server: LocalServer, http: requests.Session) -> None:
    calls: list[str] = []
    server.on_change = calls.append
    appointment = url(server, f"/{USER}/appointments/c.ics")
    assert put(http, appointment, event("c")).status_code == 201
    assert calls == ["appointments"]
    assert put(http, url(server, f"/{USER}/blocked/b.ics"), event("b")).status_code == 201
    assert http.get(appointment).status_code == 200
    assert calls == ["appointments", "blocked"]
    moved = url(server, f"/{USER}/blocked/c.ics")
    assert http.request("MOVE", appointment, headers={"Destination": moved}).status_code == 201
    assert calls == ["appointments", "blocked"] * 2
    assert http.delete(url(server, f"/{USER}/appointments/missing.ics")).status_code == 404
    assert http.delete(url(server, f"/{USER}/blocked/missing.ics")).status_code == 404
    assert calls == ["appointments", "blocked"] * 2


def test_a_failing_on_change_does_not_fail_the_request(server: LocalServer, http: requests.Session) -> None:
    def broken(collection: str) -> None:
        raise RuntimeError("boom")

    server.on_change = broken
    target = url(server, f"/{USER}/appointments/d.ics")
    assert put(http, target, event("d")).status_code == 201
    assert http.delete(target).status_code in (200, 204)


FREE_BUSY_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20250105T000000Z" end="20250106T000000Z"/></C:free-busy-query>'
)
VFREEBUSY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror//EN\r\nBEGIN:VFREEBUSY\r\n"
    "DTSTART:20250105T000000Z\r\nDTEND:20250106T000000Z\r\n"
    "FREEBUSY:20250105T100000Z/20250105T110000Z\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n"
)


def test_free_busy_report_is_answered_by_the_callable(server: LocalServer, http: requests.Session) -> None:
    asked: list[tuple[str, datetime, datetime]] = []

    def freebusy(path: str, start: datetime, end: datetime) -> str:
        asked.append((path, start, end))
        return VFREEBUSY

    server.freebusy = freebusy
    answer = http.request("REPORT", url(server, f"/{USER}/appointments/"), data=FREE_BUSY_QUERY, headers={"Depth": "1"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/calendar")
    assert answer.text == VFREEBUSY
    assert asked == [(f"/{USER}/appointments/", datetime(2025, 1, 5, tzinfo=UTC), datetime(2025, 1, 6, tzinfo=UTC))]


def test_free_busy_report_needs_authentication(server: LocalServer) -> None:
    server.freebusy = lambda path, start, end: VFREEBUSY
    answer = requests.request("REPORT", url(server, f"/{USER}/appointments/"), data=FREE_BUSY_QUERY, timeout=10)
    assert answer.status_code == 401
    assert "FREEBUSY" not in answer.text


def test_free_busy_report_without_callable_is_radicales(server: LocalServer, http: requests.Session) -> None:
    assert (
        put(
            http,
            url(server, f"/{USER}/appointments/fb.ics"),
            event("fb", start="20250105T100000Z", end="20250105T110000Z"),
        ).status_code
        == 201
    )
    answer = http.request("REPORT", url(server, f"/{USER}/appointments/"), data=FREE_BUSY_QUERY)
    assert answer.status_code == 200
    assert "FREEBUSY" in answer.text


def test_free_busy_report_without_time_range_is_400(server: LocalServer, http: requests.Session) -> None:
    server.freebusy = lambda path, start, end: VFREEBUSY
    body = '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>'
    assert http.request("REPORT", url(server, f"/{USER}/appointments/"), data=body).status_code == 400
