"""The calendars in an account's home, and a calendar's ctag.

A home lists more than calendars: the scheduling inbox and outbox and iCloud's
notification collection are left out, and a calendar's privileges say whether appointments
can be written to it (a server that sends none is taken as writable)."""

from __future__ import annotations

from calmirror.model import COMPONENT_KINDS, CalendarRow, component_kinds
from calmirror.remote import hrefs
from calmirror.remote import xml as dav
from calmirror.remote.http import Http
from calmirror.remote.multistatus import first, multistatus

WRITE_PRIVILEGES = frozenset({"write", "write-content", "all"})
NOT_CALENDARS = frozenset({"inbox", "outbox", "notification", "notifications"})


def list_calendars(http: Http, home: str) -> list[CalendarRow]:
    """One Depth-1 PROPFIND on the home (a collection URL) with explicit properties
    (iCloud has no allprop)."""
    status = multistatus(http, "PROPFIND", home, dav.CALENDAR_PROPS, depth="1")
    calendars = []
    for response in status.responses:
        url = hrefs.as_collection(hrefs.rebase(home, response.href))
        if hrefs.same_resource(url, home) or not dav.has_resourcetype(response, dav.CALDAV, "calendar"):
            continue
        if hrefs.last_segment(url).lower() in NOT_CALENDARS or _is_scheduling(response):
            continue
        calendars.append(_calendar(url, response))
    return calendars


def get_ctag(http: Http, url: str) -> str | None:
    """One Depth-0 PROPFIND. iCloud's ctag equals its sync token (ICLOUD.md #10)."""
    status = multistatus(http, "PROPFIND", url, dav.propfind("cs:getctag"), depth="0")
    return first(status, lambda r: r.text(dav.GETCTAG))


def _is_scheduling(response: dav.DavResponse) -> bool:
    kinds = ("schedule-inbox", "schedule-outbox")
    return any(dav.has_resourcetype(response, dav.CALDAV, kind) for kind in kinds)


def _calendar(url: str, response: dav.DavResponse) -> CalendarRow:
    calendar_id = hrefs.last_segment(url)
    privileges = dav.privileges(response)
    components = dav.component_names(response)
    return CalendarRow(
        id=calendar_id,
        url=url,
        name=response.text(dav.DISPLAYNAME) or calendar_id,
        color=response.text(dav.COLOR),
        components=COMPONENT_KINDS if components is None else component_kinds(components),
        writable=True if privileges is None else bool(privileges & WRITE_PRIVILEGES),
    )
