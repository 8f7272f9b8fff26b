"""Busy and free time from iCloud's exact text: recurrence, busy rules, zones, slots and the guard.

The engine (`engine`) and everything under it are pure: calendars in, intervals out. Only
`sources` reads the local store, and only `guard` talks to the local server's write path.

- The pure engine: `engine` (busy and free over parsed calendars), `rules` (whether an
  occurrence blocks time), `recurrence` (VEVENTs into bounded series), `library_series`
  (recurring-ical-events adapted), `rrule_bounds` (rule arithmetic proportional to the
  window), `expansion` (which series to walk for a window), `durations` (how long an
  occurrence lasts), `instants` (UTC instants of start and end values), `zones` (which zone
  a TZID means), `lenient` (busy time from objects icalendar refuses whole), `compiled`
  (what compiling yields), `index` (memos for many windows), `intervals` (half-open UTC
  intervals), `slots` (free slots and what users type to ask for them).
- The busy index: `spans` (what it stores for one resource), `simple_event` (a plain
  single event's entry read from its lines, declining to the full parse), `busy_upkeep` (keeping it
  current), `sources` (answers from it), `blocks` (merged busy time kept per week),
  `far_years` and `far_checks` (past its horizon).
- What others see: `busy_calendar` (the read-only `busy/` calendar), `guard` (the
  double-booking guard and the free-busy answer).
"""
