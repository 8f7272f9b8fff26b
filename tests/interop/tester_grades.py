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
