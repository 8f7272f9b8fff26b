"""A corpus of hostile calendar objects and a fake CalDAV server that serves them verbatim.

Used by `test_hostile_remote.py` (the items come from "iCloud") and `test_hostile_local.py`
(a client writes them into `appointments/`). Each `Case` says what it is and what
calmirror must do with it; the corpus is generated here rather than kept as files so the
5 MB and 11 MB items and the binary ones do not live in the repository.

`remote` is what a mirror pass must do with the item when iCloud serves it:
    "skip"  never mirrored; recorded in `skipped_items` with a reason matching `reason` (a regex)
    "keep"  mirrored (it is odd but valid iCalendar that Radicale stores)
`local` is what happens when a client PUTs it into `appointments/`:
    "refused"      the local server answers 4xx and stores nothing
    "quarantined"  stored locally, its outbox row fails with a reason, iCloud never sees it
    "pushed"       stored and pushed; iCloud's copy parses and has the same UID
`xml` is how the fake server embeds the item in a multiget answer:
    "text"     escaped text inside calendar-data (what a real server does)
    "raw"      the bytes pasted unescaped (binary, invalid UTF-8): the answer is not XML
    "doctype"  the answer declares an external entity that the item's data references
    "laughs"   the answer declares a billion-laughs entity chain
    "deep"     the item's calendar-data is wrapped in 10,000 nested elements
    "cut"      the answer stops in the middle of this item

`kind` says what the item is to the availability engine:
    "hostile"     broken, hostile or not an event: nothing it says may block time
    "must-count"  valid iCalendar, only extreme (a COUNT of a billion, a secondly rule, 100,000
                  RDATEs, an unknown TZID): its busy time must count, within time and memory
                  bounds. `expect_busy` gives the merged UTC busy intervals in `BUSY_WINDOW`
                  (configured zone UTC), worked out by hand beside `MUST_COUNT` below.
A "must-count" item may still have `remote == "skip"` while the mirror cannot store it in
Radicale; its busy time counts all the same.

The fake server (`CorpusServer`) answers only what calmirror's client sends: discovery
(PROPFIND on /, the principal and the home), sync-collection and calendar-multiget
REPORTs. It records every request so a test can prove an external DTD was never fetched.
"""

from __future__ import annotations

import base64
import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

CRLF = "\r\n"
HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile corpus//EN\r\n"
TAIL = "END:VCALENDAR\r\n"


def vevent(
    uid: str | None,
    *,
    summary: str = "Hostile",
    start: str = "DTSTART:20270301T100000Z",
    end: str | None = "DTEND:20270301T110000Z",
    extra: str = "",
    uid_line: str | None = None,
) -> str:
    lines = ["BEGIN:VEVENT"]
    if uid_line is not None:
        lines.append(uid_line)
    elif uid is not None:
        lines.append(f"UID:{uid}")
    lines += ["DTSTAMP:20270101T000000Z", start]
    if end:
        lines.append(end)
    lines.append(f"SUMMARY:{summary}")
    body = CRLF.join(lines) + CRLF + extra + "END:VEVENT\r\n"
    return body


def cal(*components: str, head: str = HEAD, tail: str = TAIL) -> str:
    return head + "".join(components) + tail


def fold(line: str, width: int = 74) -> str:
    """RFC 5545 folding of one long content line."""
    parts = [line[:width]] + [" " + line[i : i + width - 1] for i in range(width, len(line), width - 1)]
    return CRLF.join(parts) + CRLF


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    remote: str  # "skip" | "keep"
    local: str  # "refused" | "quarantined" | "pushed"
    reason: str = ""  # a fragment of the skip reason (remote), case-insensitive
    xml: str = "text"
    uid: str | None = None  # the UID a client would see, when there is one
    why: str = ""
    busy: str | None = None  # the remote outcome in a busy-only mirror, when it differs
    kind: str = "hostile"  # "hostile" | "must-count"
    expect_busy: tuple[tuple[str, str], ...] = ()  # for "must-count": UTC busy in BUSY_WINDOW

    def remote_in(self, details: str) -> str:
        """A busy-only mirror rebuilds each event from its times alone (icalendar, lenient), so
        some items Radicale refuses verbatim come out as clean busy blocks."""
        return self.busy if details == "busy" and self.busy else self.remote

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _garbage(seed: int, size: int, xml_safe: bool) -> bytes:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    if xml_safe:  # characters XML 1.0 can carry: no C0 controls but tab/newline, no invalid UTF-8
        text = data.decode("latin-1")
        text = "".join(ch if (ch >= " " or ch in "\t\n") and ch != "\x7f" else "?" for ch in text)
        return text.encode("utf-8")
    return data


def _nested(depth: int) -> str:
    opens = "".join(f"BEGIN:X-NEST{n % 7}\r\n" for n in range(depth))
    closes = "".join(f"END:X-NEST{n % 7}\r\n" for n in reversed(range(depth)))
    return opens + closes


def _vtimezone(tzid: str, inner: str) -> str:
    return f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{inner}END:VTIMEZONE\r\n"


#: The window (UTC) in which `Case.expect_busy` is given: most items start 2027-03-01 10:00Z.
BUSY_WINDOW = ("2027-03-01 00:00", "2027-03-03 00:00")

#: Valid but extreme items, moved here from "hostile": their busy time in BUSY_WINDOW.
MUST_COUNT: dict[str, tuple[tuple[str, str], ...]] = {
    # DAILY 10:00-11:00, COUNT=1e9: every day
    "rrule-count-1e9": (("2027-03-01 10:00", "2027-03-01 11:00"), ("2027-03-02 10:00", "2027-03-02 11:00")),
    # every second from 10:00, each an hour long: busy without a gap to the window's end
    "rrule-secondly-count-1e9": (("2027-03-01 10:00", "2027-03-03 00:00"),),
    "rrule-secondly-until-9999": (("2027-03-01 10:00", "2027-03-03 00:00"),),
    # every second from 10:00, each one second long: the same, back to back
    "rrule-secondly-forever": (("2027-03-01 10:00", "2027-03-03 00:00"),),
    # each minute of 09:00-10:59 on Mondays and Wednesdays from Mon 10:00, an hour each
    "rrule-minutely-byday": (("2027-03-01 10:00", "2027-03-01 11:59"),),
    # 30 February never comes: DTSTART alone
    "rrule-never-matches": (("2027-03-01 10:00", "2027-03-01 11:00"),),
    # no RDATE of the 100,000 falls on 1 or 2 March (n = 2 mod 12 never meets n = 0 or 1 mod 28)
    "hundred-thousand-rdates": (("2027-03-01 10:00", "2027-03-01 11:00"),),
    # DAILY 10:00, the first 2,000 days moved to 12:00
    "many-overrides": (("2027-03-01 12:00", "2027-03-01 13:00"), ("2027-03-02 12:00", "2027-03-02 13:00")),
    # yearly on 1 January 00:00 since the year 1: nothing in March
    "year-one": (),
    # no such zone and no VTIMEZONE: wall time in the configured zone (UTC here)
    "unknown-tzid": (("2027-03-01 10:00", "2027-03-01 11:00"),),
    # a VTIMEZONE with nothing inside names no zone either: the same
    "empty-vtimezone": (("2027-03-01 10:00", "2027-03-01 11:00"),),
}


def build() -> list[Case]:
    """The corpus. Deterministic: the same bytes on every call."""
    c: list[Case] = []

    def add(
        name: str,
        text: str | bytes,
        remote: str,
        local: str,
        reason: str = "",
        *,
        xml: str = "text",
        uid: str | None = None,
        why: str = "",
        busy: str | None = None,
    ) -> None:
        body = text.encode("utf-8") if isinstance(text, str) else text
        c.append(Case(name, body, remote, local, reason, xml, uid if uid is not None else f"hostile-{name}", why, busy))

    # --- identity ------------------------------------------------------------------------
    add("no-uid", cal(vevent(None)), "skip", "refused", "no uid", uid="", why="VEVENT without UID")
    add(
        "empty-uid", cal(vevent(None, uid_line="UID:")), "skip", "refused", "uid", uid="", why="UID with an empty value"
    )
    add(
        "two-uids-one-resource",
        cal(vevent("hostile-two-a"), vevent("hostile-two-b")),
        "skip",
        "refused",
        "different uids",
        uid="hostile-two-a",
        why="two VEVENTs with different UIDs in one resource",
    )
    add(
        "uid-path-traversal",
        cal(vevent(None, uid_line="UID:../../../../etc/passwd")),
        "keep",
        "pushed",
        uid="../../../../etc/passwd",
        why="a UID that would escape a folder if used as a file name",
    )
    add(
        "uid-10k-chars",
        cal(vevent(None, uid_line=fold("UID:" + "u" * 10_000).rstrip(CRLF))),
        "keep",
        "pushed",
        uid="u" * 10_000,
        why="a 10,000-character UID",
    )
    add(
        "marker-injection",
        cal(vevent("hostile-marker-injection", extra="X-CALMIRROR-SOURCE:someone-else\r\n")),
        "keep",
        "quarantined",
        why="carries calmirror's own mirror marker: never pushed back",
    )

    # --- line structure ------------------------------------------------------------------
    add(
        "broken-folding",
        cal(
            vevent(
                "hostile-broken-folding",
                extra="DESCRIPTION:first half of a long line\r\nsecond half without the leading space\r\n",
            )
        ),
        "skip",
        "refused",
        "not valid icalendar",
        busy="keep",
        why="a continuation line that lost its leading space",
    )
    add(
        "fold-before-first-line",
        " " + cal(vevent("hostile-fold-before-first-line")),
        "keep",
        "pushed",
        why="the object starts with a continuation line",
    )
    add(
        "missing-end-vevent",
        HEAD + vevent("hostile-missing-end-vevent").replace("END:VEVENT\r\n", "") + TAIL,
        "skip",
        "refused",
        "not valid icalendar|does not parse",
        why="BEGIN:VEVENT never closed",
    )
    add(
        "missing-end-vcalendar",
        cal(vevent("hostile-missing-end-vcalendar"), tail=""),
        "skip",
        "refused",
        "not valid icalendar|does not parse",
        why="truncated object: no END:VCALENDAR",
    )
    add(
        "two-vcalendars",
        cal(vevent("hostile-two-vcalendars")) + cal(vevent("hostile-two-vcalendars-b")),
        "skip",
        "refused",
        "2 components|does not parse",
        why="two VCALENDAR objects in one resource",
    )
    add(
        "no-colon-line",
        cal(vevent("hostile-no-colon-line", extra="THIS LINE HAS NO COLON AT ALL\r\n")),
        "skip",
        "refused",
        "not valid icalendar",
        busy="keep",
        why="a content line without a colon",
    )
    add(
        "two-mb-single-line",
        cal(vevent("hostile-two-mb-single-line", summary="S" * 2_000_000)),
        "keep",
        "pushed",
        why="a 2 MB SUMMARY on one unfolded line",
    )

    # --- dates and time zones ------------------------------------------------------------
    add(
        "invalid-date-month-13",
        cal(vevent("hostile-invalid-date-month-13", start="DTSTART:20261340T250000Z", end="DTEND:20261340T260000Z")),
        "skip",
        "refused",
        "not valid icalendar",
        why="month 13, day 40, hour 25",
    )
    add(
        "invalid-date-words",
        cal(vevent("hostile-invalid-date-words", start="DTSTART:tomorrow", end="DTEND:later")),
        "skip",
        "refused",
        "not valid icalendar",
        why="words as dates",
    )
    add(
        "feb-30-all-day",
        cal(vevent("hostile-feb-30-all-day", start="DTSTART;VALUE=DATE:20270230", end="DTEND;VALUE=DATE:20270231")),
        "skip",
        "refused",
        "not valid icalendar",
        why="30 February",
    )
    add(
        "end-before-start",
        cal(vevent("hostile-end-before-start", start="DTSTART:20270301T110000Z", end="DTEND:20270301T090000Z")),
        "keep",
        "refused",
        why="DTEND two hours before DTSTART",
    )
    add(
        "no-dtstart",
        cal(vevent("hostile-no-dtstart", start="", end="DTEND:20270301T110000Z").replace("\r\n\r\n", "\r\n")),
        "skip",
        "refused",
        "missing dtstart",
        why="a VEVENT without DTSTART",
    )
    add(
        "negative-duration",
        cal(vevent("hostile-negative-duration", end="DURATION:-PT1H")),
        "keep",
        "refused",
        why="DURATION of minus one hour",
    )
    add(
        "year-one",
        cal(
            vevent(
                "hostile-year-one",
                start="DTSTART:00010101T000000Z",
                end="DTEND:00010101T010000Z",
                extra="RRULE:FREQ=YEARLY\r\n",
            )
        ),
        "keep",
        "pushed",
        why="a yearly series from year 1",
    )
    add(
        "unknown-tzid",
        cal(
            vevent(
                "hostile-unknown-tzid",
                start="DTSTART;TZID=Mars/Olympus_Mons:20270301T100000",
                end="DTEND;TZID=Mars/Olympus_Mons:20270301T110000",
            )
        ),
        "keep",
        "refused",
        why="TZID with no VTIMEZONE and no IANA zone of that name",
    )
    add(
        "empty-vtimezone",
        cal(
            _vtimezone("Empty/Zone", ""),
            vevent(
                "hostile-empty-vtimezone",
                start="DTSTART;TZID=Empty/Zone:20270301T100000",
                end="DTEND;TZID=Empty/Zone:20270301T110000",
            ),
        ),
        "keep",
        "refused",
        why="a VTIMEZONE with neither STANDARD nor DAYLIGHT (the mirror's copy drops it)",
    )

    # --- size and depth ------------------------------------------------------------------
    add(
        "five-mb-description",
        cal(vevent("hostile-five-mb-description", extra=fold("DESCRIPTION:" + "x" * 5_000_000))),
        "keep",
        "pushed",
        why="a 5 MB DESCRIPTION, folded",
    )
    add(
        "eleven-mb-description",
        cal(vevent("hostile-eleven-mb-description", extra=fold("DESCRIPTION:" + "y" * 11_000_000))),
        "skip",
        "refused",
        "too large|too long",
        why="over the 10 MB resource limit",
    )
    add(
        "nested-500",
        cal(vevent("hostile-nested-500", extra=_nested(500))),
        "skip",
        "refused",
        "recursion",
        busy="keep",
        why="500 nested components inside a VEVENT",
    )
    add(
        "nested-5000",
        cal(vevent("hostile-nested-5000", extra=_nested(5000))),
        "skip",
        "refused",
        "not valid icalendar",
        busy="keep",
        why="5,000 nested components: deeper than Python's recursion limit",
    )
    add(
        "ten-thousand-attendees",
        cal(
            vevent(
                "hostile-ten-thousand-attendees",
                extra="".join(
                    f"ATTENDEE;CN=Guest {n};PARTSTAT=NEEDS-ACTION:mailto:guest{n}@example.org\r\n"
                    for n in range(10_000)
                ),
            )
        ),
        "keep",
        "pushed",
        why="10,000 ATTENDEE lines",
    )
    base = datetime(2027, 3, 1, 10, 0, 0)
    overrides = [
        vevent(
            "hostile-many-overrides",
            summary=f"Moved {n}",
            start=f"DTSTART:{base + timedelta(days=n, hours=2):%Y%m%dT%H%M%SZ}",
            end="DURATION:PT1H",
            extra=f"RECURRENCE-ID:{base + timedelta(days=n):%Y%m%dT%H%M%SZ}\r\n",
        )
        for n in range(2000)
    ]
    add(
        "many-overrides",
        cal(vevent("hostile-many-overrides", extra="RRULE:FREQ=DAILY;COUNT=3000\r\n"), *overrides),
        "keep",
        "pushed",
        why="a series with 2,000 overrides in one resource",
    )

    # --- recurrence bombs ----------------------------------------------------------------
    add(
        "rrule-count-1e9",
        cal(vevent("hostile-rrule-count-1e9", extra="RRULE:FREQ=DAILY;COUNT=1000000000\r\n")),
        "skip",
        "refused",
        "too many recurrence",
        why="COUNT=1,000,000,000",
    )
    add(
        "rrule-secondly-count-1e9",
        cal(vevent("hostile-rrule-secondly-count-1e9", extra="RRULE:FREQ=SECONDLY;COUNT=1000000000\r\n")),
        "skip",
        "refused",
        "too many recurrence",
        why="FREQ=SECONDLY;COUNT=1,000,000,000",
    )
    add(
        "rrule-secondly-forever",
        cal(
            vevent(
                "hostile-rrule-secondly-forever",
                start="DTSTART:20270301T100000Z",
                end="DTEND:20270301T100001Z",
                extra="RRULE:FREQ=SECONDLY\r\n",
            )
        ),
        "keep",
        "pushed",
        why="FREQ=SECONDLY with no end: 31 million occurrences a year",
    )
    add(
        "rrule-secondly-until-9999",
        cal(vevent("hostile-rrule-secondly-until-9999", extra="RRULE:FREQ=SECONDLY;UNTIL=99991231T235959Z\r\n")),
        "skip",
        "refused",
        "too many recurrence",
        why="FREQ=SECONDLY until the year 9999",
    )
    add(
        "rrule-minutely-byday",
        cal(vevent("hostile-rrule-minutely-byday", extra="RRULE:FREQ=MINUTELY;BYDAY=MO,WE;BYHOUR=9,10\r\n")),
        "keep",
        "pushed",
        why="filtered sub-daily rule: dateutil walks every minute",
    )
    add(
        "rrule-never-matches",
        cal(vevent("hostile-rrule-never-matches", extra="RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\n")),
        "keep",
        "pushed",
        why="a rule whose filters never match: a naive walk runs to the year 9999",
    )
    add(
        "rrule-garbage",
        cal(vevent("hostile-rrule-garbage", extra="RRULE:FREQ=FORTNIGHTLY;BYDAY=XX;COUNT=-4\r\n")),
        "skip",
        "refused",
        "invalid 'freq'",
        why="an RRULE that is not one",
    )
    add(
        "hundred-thousand-rdates",
        cal(
            vevent(
                "hostile-hundred-thousand-rdates",
                extra=fold(
                    "RDATE:"
                    + ",".join(
                        f"2027{1 + n % 12:02d}{1 + n % 28:02d}T{n % 24:02d}{n % 60:02d}00Z" for n in range(100_000)
                    )
                ),
            )
        ),
        "keep",
        "pushed",
        why="100,000 RDATE values on one (folded) line",
    )

    # --- not iCalendar / wrong type ------------------------------------------------------
    add(
        "binary-garbage",
        _garbage(1, 4096, xml_safe=True),
        "skip",
        "refused",
        "not an icalendar",
        uid="",
        why="4 KB of random bytes (the XML-safe subset)",
    )
    add(
        "binary-with-nul",
        b"BEGIN:VCALENDAR\r\n" + _garbage(2, 2048, xml_safe=False) + b"\r\nEND:VCALENDAR\r\n",
        "skip",
        "refused",
        "unreadable answer",
        xml="raw",
        uid="",
        why="random bytes with NULs: a multiget cannot even carry it",
    )
    add(
        "invalid-utf8",
        cal(vevent("hostile-invalid-utf8", summary="@@BAD@@"))
        .encode()
        .replace(b"@@BAD@@", b"\xff\xfe\xc3\x28\xa0\xa1"),
        "skip",
        "pushed",
        "unreadable answer",
        xml="raw",
        why="bytes that are not UTF-8 (the local server reads them as Latin-1)",
    )
    add("empty-body", b"", "skip", "refused", "not an icalendar", uid="", why="nothing at all")
    add(
        "html-page",
        b"<html><body><h1>503 Service Unavailable</h1></body></html>",
        "skip",
        "refused",
        "not an icalendar",
        uid="",
        why="an HTML error page as calendar data",
    )
    add(
        "vtodo-only",
        cal(vevent("hostile-vtodo-only").replace("VEVENT", "VTODO")),
        "skip",
        "refused",
        "no vevent",
        why="a task in an event calendar",
    )
    add(
        "vjournal-only",
        cal(vevent("hostile-vjournal-only").replace("VEVENT", "VJOURNAL")),
        "skip",
        "refused",
        "no vevent",
        why="a journal entry in an event calendar",
    )
    add(
        "vcard",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:hostile-vcard\r\nFN:Mallory\r\nEND:VCARD\r\n",
        "skip",
        "refused",
        "not an icalendar",
        uid="hostile-vcard",
        why="a contact, not a calendar",
    )
    add(
        "vevent-and-vtodo",
        cal(vevent("hostile-vevent-and-vtodo"), vevent("hostile-vevent-and-vtodo").replace("VEVENT", "VTODO")),
        "skip",
        "refused",
        "multiple component types",
        why="two component types in one resource",
    )
    add(
        "lone-vtimezone",
        cal(
            _vtimezone(
                "Europe/Berlin",
                "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
                "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n",
            )
        ),
        "skip",
        "quarantined",
        "no vevent",
        uid="",
        why="a VTIMEZONE and nothing else",
    )

    # --- XML-level attacks (remote only; a client's PUT carries no XML) ------------------
    add(
        "xxe-file",
        cal(vevent("hostile-xxe-file", summary="@@XXE@@")),
        "skip",
        "pushed",
        "doctype",
        xml="doctype",
        why="the multiget answer declares <!ENTITY xxe SYSTEM 'file:///etc/passwd'>",
    )
    add(
        "billion-laughs",
        cal(vevent("hostile-billion-laughs", summary="@@XXE@@")),
        "skip",
        "pushed",
        "amplification|doctype",
        xml="laughs",
        why="the multiget answer declares an exponential entity chain",
    )
    add(
        "xml-deep-nesting",
        cal(vevent("hostile-xml-deep-nesting")),
        "skip",
        "pushed",
        "depth",
        xml="deep",
        why="calendar-data inside 10,000 nested XML elements",
    )
    add(
        "xml-cut-off",
        cal(vevent("hostile-xml-cut-off")),
        "skip",
        "pushed",
        "premature end|cut off",
        xml="cut",
        why="the multiget answer stops in the middle of this item",
    )
    return [replace(x, kind="must-count", expect_busy=MUST_COUNT[x.name]) if x.name in MUST_COUNT else x for x in c]


CORPUS = build()
BY_NAME = {case.name: case for case in CORPUS}


def good_event(n: int) -> str:
    uid = f"good-{n}"
    return cal(
        vevent(
            uid,
            summary=f"Good {n}",
            start=f"DTSTART:202703{1 + n % 28:02d}T{8 + n % 9:02d}0000Z",
            end=f"DTEND:202703{1 + n % 28:02d}T{8 + n % 9:02d}3000Z",
        )
    )


# --- the fake CalDAV server ----------------------------------------------------------------

DSID = "424242"
XXE_DTD = '<!DOCTYPE d:multistatus [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY ext SYSTEM "{base}evil.dtd">]>'
LAUGHS = (
    '<!DOCTYPE d:multistatus [<!ENTITY l0 "ha">'
    + "".join(f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
    + "]>"
)


@dataclass
class FakeCalendar:
    cal_id: str
    name: str
    items: dict[str, Case | str] = field(default_factory=dict)  # file name -> Case or plain text
    # "doctype" | "laughs" | "cut" | "short": the sync answer itself is hostile ("short": the
    # connection closes before the Content-Length it announced)
    evil_listing: str | None = None


class CorpusServer:
    """A tiny CalDAV server on 127.0.0.1:0 that serves hostile items exactly as given."""

    def __init__(self, apple_id: str, password: str, calendars: list[FakeCalendar]) -> None:
        self.apple_id, self.password = apple_id, password
        self.calendars = {c.cal_id: c for c in calendars}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _any(self) -> None:
                server._handle(self)

            do_PROPFIND = do_REPORT = do_GET = do_PUT = do_DELETE = do_OPTIONS = _any

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> CorpusServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def home_path(self) -> str:
        return f"/{DSID}/calendars/"

    # --- dispatch --------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append((h.command, path))
        expected = "Basic " + base64.b64encode(f"{self.apple_id}:{self.password}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            self._send(h, 401, b"", headers={"WWW-Authenticate": 'Basic realm="fake"'})
            return
        if h.command == "PROPFIND" and path in ("/", "/.well-known/caldav"):
            self._send(
                h,
                207,
                self._ms(
                    self._resp(
                        path,
                        f"<d:current-user-principal><d:href>/{DSID}/principal/</d:href></d:current-user-principal>",
                    )
                ),
            )
        elif h.command == "PROPFIND" and path == f"/{DSID}/principal/":
            home = self.url.rstrip("/") + self.home_path
            self._send(
                h,
                207,
                self._ms(self._resp(path, f"<c:calendar-home-set><d:href>{home}</d:href></c:calendar-home-set>")),
            )
        elif h.command == "PROPFIND" and path == self.home_path:
            self._send(h, 207, self._listing())
        elif h.command == "REPORT" and path.startswith(self.home_path):
            cal_id = path[len(self.home_path) :].strip("/")
            calendar = self.calendars.get(cal_id)
            if calendar is None:
                self._send(h, 404, b"")
            elif b"sync-collection" in body:
                answer = self._sync(calendar, body)
                short = calendar.evil_listing == "short" and b"<d:sync-token>t1</d:sync-token>" not in body
                self._send(h, 207, answer, declared=len(answer) + 4096 if short else None)
            else:
                self._send(h, 207, self._multiget(calendar, body))
        else:
            self._send(h, 403, b"")

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: dict[str, str] | None = None,
        declared: int | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/xml; charset=utf-8")
        h.send_header("Content-Length", str(declared if declared is not None else len(payload)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        with contextlib.suppress(OSError):
            h.wfile.write(payload)

    # --- bodies ----------------------------------------------------------------------------

    NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'

    def _ms(self, inner: str | bytes, prolog: str = "", extra: str = "") -> bytes:
        inner_b = inner.encode() if isinstance(inner, str) else inner
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}<d:multistatus {self.NS}>'.encode()
            + inner_b
            + f"{extra}</d:multistatus>".encode()
        )

    @staticmethod
    def _resp(href: str, props: str, status: str = "200 OK") -> str:
        return (
            f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{props}</d:prop>"
            f"<d:status>HTTP/1.1 {status}</d:status></d:propstat></d:response>"
        )

    def _listing(self) -> bytes:
        parts = [self._resp(self.home_path, "<d:resourcetype><d:collection/></d:resourcetype>")]
        for calendar in self.calendars.values():
            props = (
                "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype>"
                f"<d:displayname>{escape(calendar.name)}</d:displayname>"
                '<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>'
                "<d:current-user-privilege-set><d:privilege><d:read/></d:privilege></d:current-user-privilege-set>"
                "<cs:getctag>t1</cs:getctag><d:sync-token>t1</d:sync-token>"
            )
            parts.append(self._resp(f"{self.home_path}{calendar.cal_id}/", props))
        return self._ms("".join(parts))

    @staticmethod
    def _etag(name: str) -> str:
        return f'"{abs(hash(name)) % 10**8:08d}"'

    def _sync(self, calendar: FakeCalendar, body: bytes) -> bytes:
        base = f"{self.home_path}{calendar.cal_id}/"
        if b"<d:sync-token>t1</d:sync-token>" in body:  # nothing changed since
            return self._ms("", extra="<d:sync-token>t1</d:sync-token>")
        rows = "".join(self._resp(base + name, f"<d:getetag>{self._etag(name)}</d:getetag>") for name in calendar.items)
        if calendar.evil_listing == "doctype":
            return self._ms(rows, prolog=XXE_DTD.format(base=self.url), extra="<d:sync-token>&xxe;&ext;</d:sync-token>")
        if calendar.evil_listing == "laughs":
            return self._ms(rows, prolog=LAUGHS, extra="<d:sync-token>&l9;</d:sync-token>")
        answer = self._ms(rows, extra="<d:sync-token>t1</d:sync-token>")
        if calendar.evil_listing == "cut":
            return answer[: len(answer) // 2]
        return answer

    def _multiget(self, calendar: FakeCalendar, body: bytes) -> bytes:
        base = f"{self.home_path}{calendar.cal_id}/"
        wanted = [chunk.split(b"</d:href>", 1)[0].decode() for chunk in body.split(b"<d:href>")[1:]]
        kinds: set[str] = set()
        parts: list[bytes] = []
        for href in wanted:
            name = href[len(base) :] if href.startswith(base) else href.rsplit("/", 1)[-1]
            from urllib.parse import unquote

            item = calendar.items.get(unquote(name))
            if item is None:
                parts.append(
                    f"<d:response><d:href>{escape(href)}</d:href><d:status>HTTP/1.1 404 Not Found"
                    "</d:status></d:response>".encode()
                )
                continue
            case = item if isinstance(item, Case) else None
            raw = case.body if case else item.encode()  # type: ignore[union-attr]
            kind = case.xml if case else "text"
            kinds.add(kind)
            if kind == "raw":
                data = raw
            elif kind in ("doctype", "laughs"):
                data = escape(raw.decode()).replace("@@XXE@@", "&xxe;" if kind == "doctype" else "&l9;").encode()
            elif kind == "deep":
                data = ("<x>" * 10_000 + escape(raw.decode()) + "</x>" * 10_000).encode()
            else:
                data = escape(raw.decode("utf-8")).encode()
            parts.append(
                f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop><d:getetag>"
                f"{self._etag(unquote(name))}</d:getetag><c:calendar-data>".encode()
                + data
                + b"</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
                b"</d:response>"
            )
        answer = self._ms(
            b"".join(parts),
            prolog=XXE_DTD.format(base=self.url) if "doctype" in kinds else LAUGHS if "laughs" in kinds else "",
        )
        if "cut" in kinds:
            return answer[: len(answer) // 2]
        return answer


def corpus_calendar(
    cal_id: str = "HOSTILE", name: str = "Hostile", good: int = 20, only: Callable[[Case], bool] = lambda case: True
) -> FakeCalendar:
    """One calendar with every corpus item (under `<name>.ics`) and `good` ordinary events."""
    items: dict[str, Case | str] = {f"{case.name}.ics": case for case in CORPUS if only(case)}
    items.update({f"good-{n}.ics": good_event(n) for n in range(good)})
    return FakeCalendar(cal_id, name, items)


def iter_local_cases() -> Iterator[Case]:
    """The cases a client can write (everything but the XML-level attacks)."""
    return (case for case in CORPUS if case.xml in ("text", "raw"))
