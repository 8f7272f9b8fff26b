"""Hostile corpus cases that attack a reader: recurrence bombs, bytes that are not iCalendar or
not an event, and XML-level attacks on the answer carrying them (`hostile_corpus` gathers them)."""

from __future__ import annotations

from tests.hostile_items import Cases, cal, fold, garbage, vevent, vtimezone


def recurrence_bombs(cases: Cases) -> None:
    """Rules with more occurrences than any reader can walk."""
    add = cases.add
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


def not_icalendar(cases: Cases) -> None:
    """Bytes that are not iCalendar, or not an event."""
    add = cases.add
    add(
        "binary-garbage",
        garbage(1, 4096, xml_safe=True),
        "skip",
        "refused",
        "not an icalendar",
        uid="",
        why="4 KB of random bytes (the XML-safe subset)",
    )
    add(
        "binary-with-nul",
        b"BEGIN:VCALENDAR\r\n" + garbage(2, 2048, xml_safe=False) + b"\r\nEND:VCALENDAR\r\n",
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
            vtimezone(
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


def xml_attacks(cases: Cases) -> None:
    """XML-level attacks on the multiget answer (remote only; a client's PUT carries no XML)."""
    add = cases.add
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
