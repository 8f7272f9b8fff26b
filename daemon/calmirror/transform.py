"""Pure rewrites of calendar objects on their way in (mirror) and out (push).

Mirroring 10,000 events must take seconds, so a full-detail mirror copy is made with
text operations only (the marker is one inserted line); icalendar parses only when the
content itself has to change (busy-only privacy, push fix-ups), and is imported only then:
loading it is a tenth of a fresh one-change `calmirror sync`, which never needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

from calmirror.errors import BadItem

if TYPE_CHECKING:
    import icalendar

MARKER = "X-CALMIRROR-SOURCE"
_FOLD = re.compile(r"\r?\n[ \t]")
_UID = re.compile(r"^UID(?:;[^:\r\n]*)?:(.*?)\r?$", re.MULTILINE)
_BEGIN_VEVENT = re.compile(r"^BEGIN:VEVENT\r?$", re.MULTILINE)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,150}\.ics$")
_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,100}$")

# Busy-only copies keep exactly what availability needs and nothing personal.
BUSY_KEEP = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "EXRULE",
        "RECURRENCE-ID",
        "TRANSP",
        "STATUS",
        "DTSTAMP",
        "SEQUENCE",
        "CREATED",
        "LAST-MODIFIED",
        "CLASS",
        "X-MICROSOFT-CDO-BUSYSTATUS",
        MARKER,
    }
)


def unfold(text: str) -> str:
    return _FOLD.sub("", text)


def extract_uid(text: str) -> str | None:
    """The first UID; the whole text is unfolded only when that line is folded (rare), as
    unfolding every fetched event cost more than the rest of its planning."""
    match = _UID.search(text)
    if match is not None and text[match.end() : match.end() + 3].lstrip("\r\n")[:1] not in (" ", "\t"):
        return match.group(1).strip() or None
    match = _UID.search(unfold(text))
    return match.group(1).strip() or None if match else None


def has_marker(text: str) -> bool:
    return f"\n{MARKER}" in text or text.startswith(MARKER)


def local_name(remote_href: str) -> str:
    """A stable, file-system-safe local href for a remote item."""
    name = unquote(remote_href.rstrip("/").rsplit("/", 1)[-1])
    if _SAFE_NAME.match(name):
        return name
    return hashlib.sha1(remote_href.encode()).hexdigest()[:32] + ".ics"


def remote_name(uid: str) -> str:
    """The iCloud resource name of a pushed appointment: derived from its UID so that a
    retried create after a crash targets the same URL and cannot make a second copy."""
    if _SAFE_UID.match(uid):
        return f"{uid}.ics"
    return hashlib.sha256(uid.encode()).hexdigest()[:40] + ".ics"


def check_event_resource(text: str, href: str) -> str:
    """Cheap structural checks; returns the UID or raises BadItem with the reason."""
    if "\x00" in text:
        raise BadItem(href, "binary data, not iCalendar")
    stripped = text.lstrip("\ufeff \r\n\t")
    if not stripped.startswith("BEGIN:VCALENDAR"):
        raise BadItem(href, "not an iCalendar object")
    if not _BEGIN_VEVENT.search(text):
        raise BadItem(href, "no VEVENT")
    uid = extract_uid(text)
    if uid is None:
        raise BadItem(href, "no UID")
    return uid


def mark_mirrored(text: str, source: str) -> str:
    """Tag every VEVENT so nothing downstream mistakes a mirrored event for an appointment."""
    return (
        _BEGIN_VEVENT.sub(lambda m: f"{m.group(0).rstrip(chr(13))}\r\n{MARKER}:{source}\r", text)
        if "\r\n" in text
        else _BEGIN_VEVENT.sub(lambda m: f"{m.group(0)}\n{MARKER}:{source}", text)
    )


def _parse(text: str, href: str) -> icalendar.Calendar:
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(text)
    except Exception as exc:
        raise BadItem(href, f"does not parse ({type(exc).__name__})") from None
    if not isinstance(cal, icalendar.Calendar):
        raise BadItem(href, "not a single VCALENDAR")
    return cal


def _text(cal: icalendar.Calendar) -> str:
    body: bytes = cal.to_ical()  # icalendar leaves to_ical's return unannotated
    return body.decode("utf-8")


def _declined_by(event: icalendar.cal.Component, me: frozenset[str]) -> bool:
    attendees = event.get("ATTENDEE", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    for attendee in attendees:
        address = str(attendee).lower().removeprefix("mailto:")
        if address in me and str(attendee.params.get("PARTSTAT", "")).upper() == "DECLINED":
            return True
    return False


def busy_only(text: str, href: str, me: frozenset[str]) -> str:
    """Strip everything personal; keep time, recurrence, TRANSP and STATUS.

    A meeting the user declined becomes TRANSPARENT, because its attendee list (which
    said so) is dropped and the copy must still leave that time free.
    """
    cal = _parse(text, href)
    for component in cal.walk("VEVENT"):
        declined = _declined_by(component, me)
        for key in list(component.keys()):
            if key.upper() not in BUSY_KEEP:
                del component[key]
        component.subcomponents = []
        component.add("SUMMARY", "Busy")
        if declined:
            component.pop("TRANSP", None)
            component.add("TRANSP", "TRANSPARENT")
    return _text(cal)


def mirror_copy(text: str, href: str, source: str, details: str, me: frozenset[str]) -> tuple[str, str]:
    """(uid, body) of the local copy of a remote item, or BadItem."""
    uid = check_event_resource(text, href)
    body = busy_only(text, href, me) if details == "busy" else text
    return uid, mark_mirrored(body, source)


# --- push --------------------------------------------------------------------------------


def icloud_body(text: str, href: str, *, cancelled: bool = False) -> str:
    """The version of a local appointment that iCloud accepts and that emails nobody.

    The local copy stays as the client wrote it; only what is sent changes.
    """
    cal = _parse(text, href)
    cal.pop("METHOD", None)
    events = list(cal.walk("VEVENT"))
    if not events:
        raise BadItem(href, "no VEVENT")
    for event in events:
        start = event.get("DTSTART")
        if start is None:
            raise BadItem(href, "VEVENT without DTSTART")
        if "DTEND" not in event and "DURATION" not in event:
            value = start.dt
            if isinstance(value, datetime):
                event.add("DTEND", value)
            elif isinstance(value, date):
                event.add("DTEND", value + timedelta(days=1))
        attendees = event.get("ATTENDEE")
        for attendee in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
            attendee.params["SCHEDULE-AGENT"] = "CLIENT"
        if cancelled:
            event.pop("STATUS", None)
            event.add("STATUS", "CANCELLED")
    with contextlib.suppress(Exception):
        cal.add_missing_timezones()
    return _text(cal)


def is_cancelled(text: str) -> bool:
    """True when every VEVENT master says STATUS:CANCELLED (one cancelled override is not enough)."""
    statuses = re.findall(r"^BEGIN:VEVENT\r?\n(.*?)^END:VEVENT", unfold(text), re.MULTILINE | re.DOTALL)
    masters = [block for block in statuses if not re.search(r"^RECURRENCE-ID", block, re.MULTILINE)]
    return bool(masters) and all(re.search(r"^STATUS:CANCELLED\r?$", b, re.MULTILINE) for b in masters)


def mark_cancelled(text: str, href: str) -> str:
    """The local appointment with every VEVENT STATUS:CANCELLED: what an appointment deleted
    in iCloud becomes in `appointments/` (two-way), so the booking tool sees it called off
    and its text stays there."""
    cal = _parse(text, href)
    for event in cal.walk("VEVENT"):
        event.pop("STATUS", None)
        event.add("STATUS", "CANCELLED")
    body: bytes = cal.to_ical()  # icalendar leaves to_ical's return unannotated
    return body.decode("utf-8")
