"""Writes into appointments/ and blocked/ that must not be stored as they are, over real HTTP:
each is refused with a CalDAV precondition and one line naming what is wrong, or stored exactly."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.local import LocalServer
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from tests.helpers import Running, wait_for

CALDAV = "{urn:ietf:params:xml:ns:caldav}"
DAV = "{DAV:}"


def calendar(*components: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmirror tests//EN\r\n"
        + "".join(components)
        + "END:VCALENDAR\r\n"
    )


def vevent(
    uid: str = "e-1", start: str = "DTSTART:20261201T100000Z", end: str = "DTEND:20261201T110000Z", extra: str = ""
) -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n{start}\r\n{end}\r\n"
        f"SUMMARY:Meeting\r\n{extra}END:VEVENT\r\n"
    )


def vtimezone(tzid: str, offset: str) -> str:
    return (
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path_factory.mktemp("suspect") / "store", port=0, username=USER, password=PASSWORD)
    srv.start()
    yield srv
    srv.stop()


def put(server: LocalServer, name: str, body: str, collection: str = "appointments") -> requests.Response:
    return requests.put(
        f"{server.url}{USER}/{collection}/{name}",
        data=body.encode(),
        auth=(USER, PASSWORD),
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )


def refused(answer: requests.Response, condition: str) -> str:
    """A 403 with a DAV:error naming `condition`; returns its one human line."""
    assert answer.status_code == 403, answer.text
    root = ET.fromstring(answer.content)
    assert root.tag == f"{DAV}error" and root.find(f"{CALDAV}{condition}") is not None, answer.text
    line = root.findtext(f"{DAV}responsedescription") or ""
    assert line and "\n" not in line
    return line


def absent(server: LocalServer, name: str, collection: str = "appointments") -> bool:
    return requests.get(f"{server.url}{USER}/{collection}/{name}", auth=(USER, PASSWORD), timeout=10).status_code == 404


@pytest.mark.parametrize("collection", ["appointments", "blocked"])
def test_an_event_ending_before_it_starts_is_refused(server: LocalServer, collection: str) -> None:
    body = calendar(vevent(start="DTSTART:20261201T110000Z", end="DTEND:20261201T100000Z"))
    line = refused(put(server, "backwards.ics", body, collection), "valid-calendar-data")
    assert "DTEND (20261201T100000Z) is before DTSTART (20261201T110000Z)" in line
    assert absent(server, "backwards.ics", collection)
    zoned = vevent(start="DTSTART;TZID=Europe/Berlin:20261201T110000", end="DTEND:20261201T095959Z")
    assert "DTEND" in refused(put(server, "backwards2.ics", calendar(zoned), collection), "valid-calendar-data")
    negative = vevent(end="DURATION:-PT1H")
    assert "negative" in refused(put(server, "backwards3.ics", calendar(negative), collection), "valid-calendar-data")


def test_an_unknown_tzid_is_refused_naming_it_and_logs_nothing_from_the_root_logger(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    body = calendar(
        vevent(start="DTSTART;TZID=Mars/Olympus:20261201T100000", end="DTEND;TZID=Mars/Olympus:20261201T110000")
    )
    line = refused(put(server, "mars.ics", body), "valid-calendar-data")
    assert "'Mars/Olympus'" in line and "VTIMEZONE" in line
    assert absent(server, "mars.ics")
    # Known zones go through: an IANA name, a Windows name, and a zone the object defines itself.
    iana = vevent("e-2", "DTSTART;TZID=America/New_York:20261201T100000", "DTEND;TZID=America/New_York:20261201T110000")
    assert put(server, "ny.ics", calendar(iana)).status_code == 201
    windows = vevent("e-3", "DTSTART;TZID=W. Europe Standard Time:20261201T100000", "DURATION:PT1H")
    assert put(server, "win.ics", calendar(windows)).status_code == 201
    own = vevent("e-4", "DTSTART;TZID=Mars/Olympus:20261201T100000", "DTEND;TZID=Mars/Olympus:20261201T110000")
    assert put(server, "own.ics", calendar(vtimezone("Mars/Olympus", "+0300"), own)).status_code == 201


def test_library_records_on_the_root_logger_are_not_logged() -> None:
    """vobject reports an unknown TZID with a bare `logging.error` (the `ERROR:root:'Mars/Olympus'` line).
    Run in a child process: `logs.setup` configures the process's loggers for good."""
    script = (
        "import logging\n"
        "from calmirror import logs\n"
        "from vobject.icalendar import getTzid\n"
        "logs.setup('info')\n"
        "getTzid('Mars/Olympus')\n"
        "logging.getLogger('calmirror.test').warning('a line of our own')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Mars/Olympus" not in done.stderr and "root" not in done.stderr
    assert "a line of our own" in done.stderr


@pytest.mark.parametrize("collection", ["appointments", "blocked"])
def test_only_events_are_advertised_and_accepted(server: LocalServer, collection: str) -> None:
    body = (
        '<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<prop><C:supported-calendar-component-set/></prop></propfind>"
    )
    answer = requests.request(
        "PROPFIND",
        f"{server.url}{USER}/{collection}/",
        data=body,
        auth=(USER, PASSWORD),
        headers={"Depth": "0"},
        timeout=10,
    )
    assert answer.status_code == 207
    names = [c.get("name") for c in ET.fromstring(answer.content).iter(f"{CALDAV}comp")]
    assert names == ["VEVENT"]
    todo = calendar("BEGIN:VTODO\r\nUID:t-1\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:Buy milk\r\nEND:VTODO\r\n")
    line = refused(put(server, "todo.ics", todo, collection), "supported-calendar-component")
    assert f"{collection}/ holds events (VEVENT) only; a VTODO" in line
    assert absent(server, "todo.ics", collection)


def test_proppatch_on_a_calendar_that_does_not_exist_is_404(server: LocalServer) -> None:
    body = '<propertyupdate xmlns="DAV:"><set><prop><displayname>X</displayname></prop></set></propertyupdate>'
    answer = requests.request(
        "PROPPATCH", f"{server.url}{USER}/nothing-here/", data=body, auth=(USER, PASSWORD), timeout=10
    )
    assert answer.status_code == 404
    ok = requests.request("PROPPATCH", f"{server.url}{USER}/blocked/", data=body, auth=(USER, PASSWORD), timeout=10)
    assert ok.status_code == 207


# --- iCloud-only shapes (issue 12 part 7): refused naming the construct, or stored exactly -------


@pytest.mark.parametrize(
    ("body", "condition", "named"),
    [
        (
            calendar(
                vevent(extra="RECURRENCE-ID:20261201T100000Z\r\n"),
                vevent(
                    start="DTSTART:20261208T120000Z",
                    end="DTEND:20261208T130000Z",
                    extra="RECURRENCE-ID:20261208T100000Z\r\n",
                ),
            ),
            "valid-calendar-object-resource",
            "an override (RECURRENCE-ID) without its master event",
        ),
        (
            calendar(vevent(extra="RRULE:FREQ=DAILY;COUNT=1000000000\r\n")),
            "valid-calendar-data",
            "RRULE COUNT=1000000000",
        ),
        (
            calendar(vevent(extra="RDATE;VALUE=PERIOD:20261203T100000Z/20261203T120000Z\r\n")),
            "valid-calendar-data",
            "RDATE;VALUE=PERIOD is not supported by the local store",
        ),
    ],
    ids=["masterless-overrides", "huge-count", "rdate-period"],
)
@pytest.mark.parametrize("collection", ["appointments", "blocked"])
def test_icloud_only_shapes_are_refused_naming_the_construct(
    server: LocalServer, collection: str, body: str, condition: str, named: str
) -> None:
    assert named in refused(put(server, "shape.ics", body, collection), condition)
    assert absent(server, "shape.ics", collection)


def test_two_custom_zones_with_one_name_are_each_stored_with_their_own_definition(server: LocalServer) -> None:
    zone = "Customized Time Zone"
    span = (f"DTSTART;TZID={zone}:20261201T100000", f"DTEND;TZID={zone}:20261201T110000")
    first = calendar(vtimezone(zone, "+0100"), vevent("cz-1", *span))
    second = calendar(vtimezone(zone, "-0500"), vevent("cz-2", *span))
    assert put(server, "cz-1.ics", first, "blocked").status_code == 201
    assert put(server, "cz-2.ics", second, "blocked").status_code == 201
    for name, offset, other in (("cz-1.ics", "+0100", "-0500"), ("cz-2.ics", "-0500", "+0100")):
        stored = requests.get(f"{server.url}{USER}/blocked/{name}", auth=(USER, PASSWORD), timeout=10).text
        assert f"TZOFFSETTO:{offset}" in stored and other not in stored


def test_custom_zones_sharing_a_name_are_pushed_each_with_its_own_definition(running: Running, emu: Emulator) -> None:
    zone = "Customized Time Zone"
    span = (f"DTSTART;TZID={zone}:20261202T100000", f"DTEND;TZID={zone}:20261202T110000")
    offsets = {"cz-push-1": "+0100", "cz-push-2": "-0500"}
    for uid, offset in offsets.items():
        assert running.put(f"{uid}.ics", calendar(vtimezone(zone, offset), vevent(uid, *span))).status_code == 201
    work = emu.calendar_id("Work")

    def remote() -> dict[str, str]:
        return {uid: body for body in emu.items(work).values() for uid in offsets if f"UID:{uid}" in body}

    assert wait_for(lambda: len(remote()) == 2, 20)
    for uid, body in remote().items():
        other = next(o for u, o in offsets.items() if u != uid)
        assert f"TZOFFSETTO:{offsets[uid]}" in body and other not in body
