"""A corpus of hostile calendar objects, and what calmirror must do with each.

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

The fake CalDAV server that serves them verbatim: `corpus_server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from tests import hostile_bombs, hostile_texts
from tests.hostile_items import Case, Cases, cal, vevent

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
    cases = Cases()
    hostile_texts.identity(cases)
    hostile_texts.line_structure(cases)
    hostile_texts.dates_and_zones(cases)
    hostile_texts.size_and_depth(cases)
    hostile_bombs.recurrence_bombs(cases)
    hostile_bombs.not_icalendar(cases)
    hostile_bombs.xml_attacks(cases)
    return [
        replace(x, kind="must-count", expect_busy=MUST_COUNT[x.name]) if x.name in MUST_COUNT else x
        for x in cases.found
    ]


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


def iter_local_cases() -> Iterator[Case]:
    """The cases a client can write (everything but the XML-level attacks)."""
    return (case for case in CORPUS if case.xml in ("text", "raw"))
