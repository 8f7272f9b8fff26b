"""Answers for the discovery chain, which iCloud serves outside the calendar store.

`PROPFIND /` names the principal; the principal names a calendar home on another
host (the partition), as an absolute URL with an explicit port. Radicale would put
the home on the same host and inside the principal, so these are built here.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from calmirror.emulator import xmlbits
from calmirror.emulator.xmlbits import CALDAV, DAV, clark


def root_answer(request_path: str, principal_path: str, props: list[str]) -> bytes:
    known = {
        clark(DAV, "current-user-principal"): xmlbits.href(principal_path),
        clark(DAV, "resourcetype"): xmlbits.element(clark(DAV, "collection")),
    }
    return _answer(request_path, known, props)


def principal_answer(
    principal_path: str, home_url: str, apple_id: str, props: list[str], addresses: tuple[str, ...] = ()
) -> bytes:
    """`addresses`: the account's further addresses (aliases), served in the
    calendar-user-address-set after the Apple ID and before the principal, as iCloud lists
    every address the user is invited under there."""
    display = apple_id.split("@", 1)[0]
    address_set = [f"mailto:{apple_id}", *(a if ":" in a else f"mailto:{a}" for a in addresses), principal_path]
    known = {
        clark(DAV, "current-user-principal"): xmlbits.href(principal_path),
        clark(DAV, "principal-URL"): xmlbits.href(principal_path),
        clark(DAV, "displayname"): escape(display),
        clark(DAV, "resourcetype"): xmlbits.element(clark(DAV, "principal"))
        + xmlbits.element(clark(DAV, "collection")),
        clark(CALDAV, "calendar-home-set"): xmlbits.href(home_url),
        clark(CALDAV, "calendar-user-address-set"): "".join(xmlbits.href(a) for a in address_set),
        clark(CALDAV, "schedule-inbox-URL"): xmlbits.href(home_url + "inbox/"),
        clark(CALDAV, "schedule-outbox-URL"): xmlbits.href(home_url + "outbox/"),
    }
    return _answer(principal_path, known, props)


def allprop_answer(request_path: str) -> bytes:
    """iCloud does not support allprop: one response whose propstat is a bare 404."""
    return xmlbits.multistatus(
        "<response>"
        + xmlbits.href(request_path)
        + "<propstat><prop/><status>HTTP/1.1 404 Not Found</status></propstat></response>"
    )


def _answer(target: str, known: dict[str, str], props: list[str]) -> bytes:
    found = {tag: known[tag] for tag in props if tag in known}
    missing = [tag for tag in props if tag not in known]
    return xmlbits.multistatus(xmlbits.response(target, found, missing))
