"""Hostile corpus cases about what an item's text says: identity, line structure, dates and
time zones, size and depth (`hostile_corpus` gathers them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.hostile_items import CRLF, HEAD, TAIL, Cases, cal, fold, nested, vevent, vtimezone


def identity(cases: Cases) -> None:
    """UIDs: missing, empty, two, path-like, huge, and calmirror's own marker."""
    add = cases.add
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


def line_structure(cases: Cases) -> None:
    """Content lines: folding, line endings, NULs, control characters, encodings."""
    add = cases.add
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


def dates_and_zones(cases: Cases) -> None:
    """Dates and time zones a reader can get wrong or not place at all."""
    add = cases.add
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
            vtimezone("Empty/Zone", ""),
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


def size_and_depth(cases: Cases) -> None:
    """Items huge in bytes, properties, components or nesting."""
    add = cases.add
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
        cal(vevent("hostile-nested-500", extra=nested(500))),
        "skip",
        "refused",
        "recursion",
        busy="keep",
        why="500 nested components inside a VEVENT",
    )
    add(
        "nested-5000",
        cal(vevent("hostile-nested-5000", extra=nested(5000))),
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
