"""What caldav-server-tester grades differently on calmirror than on plain Radicale, and why:
the expected differences `test_server_tester.py` allows and its report explains."""

from __future__ import annotations

NO_MKCALENDAR = "calmirror lets no client create or delete a calendar (MKCALENDAR/MKCOL/DELETE answer 403)"
_NEEDS_SCRATCH = "needs a calendar the tester creates, which calmirror does not allow: not probed"
#: Features whose grade through calmirror differs from plain Radicale on purpose, and why.
BY_DESIGN: dict[str, str] = {
    "create-calendar": NO_MKCALENDAR,
    "create-calendar.set-displayname": _NEEDS_SCRATCH,
    "create-calendar.stable-url": _NEEDS_SCRATCH,
    "create-calendar.with-supported-component-types": _NEEDS_SCRATCH,
    "delete-calendar": _NEEDS_SCRATCH,
    "delete-calendar.free-namespace": _NEEDS_SCRATCH,
    "synchronous-write.create-calendar": _NEEDS_SCRATCH,
    "synchronous-write.delete-calendar": _NEEDS_SCRATCH,
    "url.encode-at.literal.collection": _NEEDS_SCRATCH,
    "url.encode-at.identity": "its calendar-path half " + _NEEDS_SCRATCH,
    "save.duplicate-uid.cross-calendar": "needs a second calendar the tester creates: not probed "
    "(iCloud refuses one UID in two calendars anyway)",
}
EVENTS_ONLY_REASON = (
    "blocked/ holds events only, as it advertises (supported-calendar-component-set VEVENT): a VTODO or "
    "VJOURNAL is refused with 403 supported-calendar-component; plain Radicale advertises it and stores them anyway"
)
_NEEDS_TASKS = "needs the tester's VTODO fixtures, which an events-only calendar refuses: not probed"
#: Features graded differently because `blocked/` takes events only (plain Radicale does not
#: enforce the component set it advertises); the tester grades a refused VTODO save "ungraceful".
EVENTS_ONLY: dict[str, str] = {
    "save-load.todo": EVENTS_ONLY_REASON,
    "save-load.todo.mixed-calendar": EVENTS_ONLY_REASON,
    "save-load.journal": EVENTS_ONLY_REASON,
    "save-load.journal.mixed-calendar": EVENTS_ONLY_REASON,
    "search.time-range.todo": EVENTS_ONLY_REASON,
    **dict.fromkeys(
        (
            "save-load.todo.recurrences",
            "save-load.todo.recurrences.count",
            "save-load.todo.uncomplete",
            "search.recurrences.expanded.todo",
            "search.recurrences.includes-implicit.todo",
            "search.recurrences.includes-implicit.todo.pending",
            "search.time-range.todo.no-dtstart",
            "search.time-range.todo.no-dtstart.no-due",
            "search.time-range.todo.old-dates",
            "search.time-range.todo.strict",
            # the tester probes open time ranges only once its VTODO time-range search worked
            "search.time-range.open.end",
            "search.time-range.open.start",
            "search.time-range.open.start.duration",
        ),
        _NEEDS_TASKS,
    ),
}
BY_DESIGN.update(EVENTS_ONLY)

#: Regressions against plain Radicale, reported to the lead; remove an entry once fixed.
KNOWN_BUGS: dict[str, str] = {}

#: Features graded unsupported or unknown on plain Radicale and calmirror alike, as a client
#: meets them: why, and what calmirror does instead (each checked against the running server).
BOTH_SHORT: dict[str, str] = {
    "well-known": "the tester skips this check on localhost; calmirror answers GET and PROPFIND of "
    "`/.well-known/caldav` (with or without the login) with 301 to `/`, whose `current-user-principal` "
    "is `/calmirror/`, so RFC 6764 discovery works",
    "url.encode-at.literal.principal": "the local login (`calmirror`) has no '@', so its principal path "
    "has none to probe",
    "principal-search": "Radicale answers no principal-property-search (all three graded together); "
    "calmirror serves one user, whose principal `current-user-principal` names",
    "scheduling": "no RFC 6638 scheduling inbox or outbox: a client's ATTENDEE lines are stored as written "
    "and an appointment reaches the linked iCloud calendar as its text",
    "sync-token.limit": "Radicale ignores DAV:limit in sync-collection and answers every change at once "
    "(both graded together)",
    "create-calendar.auto": "a calendar that does not exist is not made by using it; calmirror's "
    "calendars all exist from its start",
    "search.text.comp-type-optional": "a prop-filter directly under the VCALENDAR comp-filter filters the "
    "calendar's own properties and matches no event (the RFC-reasonable reading; python-caldav then "
    "queries per component)",
}
#: What a client's `expand` (RFC 4791 §9.6.5) gets that the tester's fixtures (UTC and zoned
#: times only) do not probe; `local/expand.py`, `tests/integration/test_expand.py`.
EXPAND_NOTES = (
    "Plain Radicale 3.9 answers an expanding calendar-query with 500 for a whole calendar holding one "
    "floating recurring event; calmirror answers it, the instances floating",
    "Plain Radicale leaves the RDATEs of a series without an RRULE unexpanded (the first instance comes back "
    "carrying the RDATE list); calmirror expands them, so compatible copies (RDATE periods, overrides "
    "without a master, a rule written out as RDATEs) show every occurrence busy time counts",
    "calmirror returns single zoned events in UTC without VTIMEZONE, and keeps an override moved into the "
    "window from outside it",
    "Expanding a rule of one occurrence a second over more than about 11 days passes Radicale's limit of "
    "1,000,000 instances per REPORT and answers 400 for that query (a day's window answers); "
    "the limit protects the server and is kept",
)
