"""What a client is told when it writes into a calendar only calmirror writes: 403 with
RFC 3744's `DAV:need-privileges` naming the resource and the privilege it lacks (the one the
collection's `current-user-privilege-set` leaves out), plus the line a person reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
import requests

from calmirror.local import LocalServer, LocalStore
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event
from tests.integration.test_local_server import http, mirror, put, server, url

__all__ = ["http", "mirror", "server"]  # the fixtures, shared with test_local_server

DAV = "{DAV:}"
WRITES: dict[str, Callable[[requests.Session, str], requests.Response]] = {
    "PUT": lambda http, target: put(http, target, event("new@local", "Mine")),
    "DELETE": lambda http, target: http.delete(target),
    "PROPPATCH": lambda http, target: http.request(
        "PROPPATCH",
        target,
        data='<propertyupdate xmlns="DAV:"><set><prop><displayname>x</displayname></prop></set></propertyupdate>',
    ),
}


@pytest.mark.parametrize("method", list(WRITES))
@pytest.mark.parametrize(
    ("target", "line"),
    [
        ("icloud-work/standup.ics", "mirrored iCloud calendars are read-only"),
        ("icloud-work/", "mirrored iCloud calendars are read-only"),
        ("busy/new%20one.ics", "busy/ is calmirror's read-only summary"),
    ],
)
def test_a_write_into_a_read_only_calendar_names_the_privilege_it_lacks(
    server: LocalServer, http: requests.Session, mirror: LocalStore, method: str, target: str, line: str
) -> None:
    path = f"/{USER}/{target}"
    answer = WRITES[method](http, url(server, path))
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/xml")
    error = ET.fromstring(answer.content)
    assert error.tag == f"{DAV}error"
    resource = error.find(f"{DAV}need-privileges/{DAV}resource")
    assert resource is not None
    assert resource.findtext(f"{DAV}href") == path
    assert resource.find(f"{DAV}privilege/{DAV}write") is not None
    assert line in (error.findtext(f"{DAV}responsedescription") or "")

    privileges = http.request(
        "PROPFIND",
        url(server, f"/{USER}/{target.split('/')[0]}/"),
        data='<propfind xmlns="DAV:"><prop><current-user-privilege-set/></prop></propfind>',
        headers={"Depth": "0"},
    )
    granted = {p.tag for p in ET.fromstring(privileges.content).iter() if p.tag.startswith(DAV)}
    assert f"{DAV}read" in granted and f"{DAV}write" not in granted  # the answer matches what is advertised
    assert set(mirror.mirror_hrefs("work")) == {"standup.ics"}
