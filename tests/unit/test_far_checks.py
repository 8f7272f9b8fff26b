"""Guard checks past the busy index's horizon: in mode "warn" the client's PUT does not wait
for them, the warning still comes, and a newer version of the appointment wins."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC

import icalendar

from calmirror.availability.far_checks import FarChecks
from calmirror.availability.guard import GUARD_WAIT_S, make_guard
from calmirror.availability.sources import BusySources
from calmirror.local.layout import APPOINTMENTS
from tests.unit.test_busy_index import Clock, mirror_write, world

SERIES_START = dt.datetime(2027, 3, 1, 10, tzinfo=UTC)  # a Monday, weekly without end
SERIES = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:standup\r\n"
    "DTSTAMP:20270101T000000Z\r\nDTSTART:20270301T100000Z\r\nDTEND:20270301T110000Z\r\n"
    "RRULE:FREQ=WEEKLY\r\nSUMMARY:Stand-up\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def booking(uid: str, start: dt.datetime) -> bytes:
    end = start + dt.timedelta(minutes=30)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
        f"DTSTAMP:20270101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
        "SUMMARY:Booked\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


FAR = SERIES_START + dt.timedelta(weeks=260, minutes=15)  # five years on: past the horizon, in a stand-up
NEAR_FREE = SERIES_START + dt.timedelta(weeks=2, hours=3)


def warned(busy: BusySources) -> list[str]:
    return [row["uid"] for row in busy.state.guard_warnings()]


@contextmanager
def guarded(mode: str) -> Iterator[tuple[BusySources, Callable[[str, bytes], str | None], FarChecks]]:
    """A weekly stand-up without end in the mirror, and the daemon's guard in `mode`."""
    with world("UTC", Clock(SERIES_START)) as busy:
        busy.upkeep.ensure()
        mirror_write(busy, {"standup.ics": SERIES})
        far = FarChecks()
        try:
            yield busy, make_guard(busy, busy.state, lambda: mode, far=far), far
        finally:
            far.close()


def test_a_far_booking_is_answered_at_once_and_warned_about_after() -> None:
    with guarded("warn") as (busy, guard, far):
        held = threading.Event()
        far.submit(held.wait)  # the far-check thread busy with an earlier check
        assert busy.candidate(icalendar.Calendar.from_ical(booking("b", FAR))).far
        assert not busy.candidate(icalendar.Calendar.from_ical(booking("c", NEAR_FREE))).far
        assert guard(APPOINTMENTS, booking("b", FAR)) is None  # answered without the check
        assert warned(busy) == []
        held.set()
        assert far.flush()
        assert warned(busy) == ["b"]


def test_a_newer_version_decided_meanwhile_wins_over_a_far_check() -> None:
    with guarded("warn") as (busy, guard, far):
        held = threading.Event()
        far.submit(held.wait)
        assert guard(APPOINTMENTS, booking("b", FAR)) is None  # queued behind the held check
        assert guard(APPOINTMENTS, booking("b", NEAR_FREE)) is None  # moved to a free time: decided now
        held.set()
        assert far.flush()
        assert warned(busy) == []  # the far clash was about the older version


def test_reject_mode_still_checks_a_far_booking_before_the_write() -> None:
    with guarded("reject") as (_busy, guard, _far):
        reason = guard(APPOINTMENTS, booking("b", FAR))
        assert reason is not None and reason.startswith("overlaps busy time")
        assert guard(APPOINTMENTS, booking("c", NEAR_FREE)) is None


def test_a_far_check_waits_for_an_index_being_built_instead_of_skipping() -> None:
    """Nobody waits for a far check, so it is not given up after GUARD_WAIT_S like a check in
    the request (a rebuild at start takes minutes at 100,000 events): its warning still comes."""
    with guarded("warn") as (busy, guard, far):
        assert busy.upkeep.lock.acquire(timeout=10)  # a rebuild of the index in progress
        try:
            assert guard(APPOINTMENTS, booking("b", FAR)) is None
            assert not far.flush(timeout=GUARD_WAIT_S + 1)  # past the request's wait: still waiting
        finally:
            busy.upkeep.lock.release()
        assert far.flush()
        assert warned(busy) == ["b"]


def owed(busy: BusySources) -> list[str]:
    return [uid for uid, _ in busy.state.far_checks_owed()]


def test_a_far_check_is_owed_in_the_state_from_its_booking_until_it_is_done() -> None:
    """A crash (no clean stop) must not lose the warning: the booking is recorded when its
    check is queued, and a start after the crash checks it again."""
    with guarded("warn") as (busy, guard, far):
        held = threading.Event()
        far.submit(held.wait)
        assert guard(APPOINTMENTS, booking("b", FAR)) is None
        assert owed(busy) == ["b"]  # durable before the check ran: a crash here loses nothing
        restarted = FarChecks()  # the next start, after a crash, on the same state
        make_guard(busy, busy.state, lambda: "warn", far=restarted)
        try:
            restarted.resume(busy.state.far_checks_owed())
            assert restarted.flush()
            assert warned(busy) == ["b"]
        finally:
            restarted.close()
        held.set()
        assert far.flush()
        assert owed(busy) == []  # done: nothing left for the next start


def test_a_booking_left_while_the_guard_is_off_is_no_longer_owed() -> None:
    with guarded("off") as (busy, _guard, far):
        busy.state.leave_far_checks([("b", booking("b", FAR))])
        far.resume(busy.state.far_checks_owed())
        assert far.flush()
        assert owed(busy) == [] and warned(busy) == []
