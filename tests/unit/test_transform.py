"""Mirror copies and iCloud-bound bodies, on the iCloud-shaped fixtures."""

from __future__ import annotations

from pathlib import Path

import icalendar
import pytest

from calmirror.errors import BadItem
from calmirror.transform import (
    MARKER,
    busy_only,
    check_event_resource,
    extract_uid,
    has_marker,
    icloud_body,
    is_cancelled,
    local_name,
    mark_mirrored,
    mirror_copy,
    remote_name,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "icloud"
ME = frozenset({"me@example.com"})


def fixture(name: str) -> str:
    return next(FIXTURES.glob(f"*/{name}")).read_bytes().decode("utf-8")  # keep CRLF


def test_full_copy_is_exact_apart_from_one_marker_line_per_vevent() -> None:
    text = fixture("team-sync-weekly-ny-dst-exdate-moved.ics")
    uid, copy = mirror_copy(text, "x.ics", "work", "full", ME)
    assert uid == extract_uid(text)
    assert copy.count(f"{MARKER}:work") == text.count("BEGIN:VEVENT") == 2  # master + moved override
    assert copy.replace(f"{MARKER}:work\r\n", "") == text
    assert has_marker(copy) and not has_marker(text)


def test_busy_copy_keeps_time_and_drops_everything_personal() -> None:
    text = fixture("quarterly-planning-long-description-unicode.ics")
    _, copy = mirror_copy(text, "x.ics", "work", "busy", ME)
    event = next(iter(icalendar.Calendar.from_ical(copy).walk("VEVENT")))
    assert str(event["SUMMARY"]) == "Busy"
    for dropped in ("DESCRIPTION", "LOCATION", "URL", "ATTENDEE", "ORGANIZER", "X-APPLE-STRUCTURED-LOCATION"):
        assert dropped not in event
    assert not event.subcomponents  # alarms gone
    original = next(iter(icalendar.Calendar.from_ical(text).walk("VEVENT")))
    assert event["DTSTART"].dt == original["DTSTART"].dt
    assert "VTIMEZONE" in copy


def test_busy_copy_of_a_declined_invitation_stays_free() -> None:
    copy = busy_only(fixture("vendor-pitch-declined-berlin.ics"), "x.ics", ME)
    event = next(iter(icalendar.Calendar.from_ical(copy).walk("VEVENT")))
    assert str(event["TRANSP"]) == "TRANSPARENT"
    assert "ATTENDEE" not in event


def test_busy_copy_keeps_recurrence_status_and_overrides() -> None:
    text = fixture("swimming-saturdays-cancelled-instance.ics")
    cal = icalendar.Calendar.from_ical(busy_only(text, "x.ics", ME))
    events = list(cal.walk("VEVENT"))
    assert len(events) == 2 and "RRULE" in events[0]
    assert any(str(e.get("STATUS")) == "CANCELLED" and "RECURRENCE-ID" in e for e in events)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("garbage\x00\x01", "binary data, not iCalendar"),
        ("<html>nope</html>", "not an iCalendar object"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "no VEVENT"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "no UID"),
    ],
)
def test_bad_items_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(BadItem) as caught:
        check_event_resource(text, "https://h/x.ics")
    assert caught.value.reason == reason


def test_folded_uid_is_read_whole() -> None:
    text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:abc\r\n def\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    assert extract_uid(text) == "abcdef"


def test_names_are_stable_and_safe() -> None:
    assert local_name("https://h/1/calendars/work/ABC-1.ics") == "ABC-1.ics"
    weird = local_name("https://h/1/calendars/work/a%20b%2F..%2Fc.ics")
    assert (
        weird.endswith(".ics")
        and "/" not in weird
        and weird == local_name("https://h/1/calendars/work/a%20b%2F..%2Fc.ics")
    )
    assert remote_name("8B1F-22@example.com") == "8B1F-22@example.com.ics"
    assert "/" not in remote_name("a/b c") and remote_name("a/b c") == remote_name("a/b c")


def test_icloud_body_adds_dtend_schedule_agent_and_drops_method() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//crm//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        "UID:appt-1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20261201T100000\r\n"
        "SUMMARY:Consultation\r\nATTENDEE;CN=Client:mailto:client@example.org\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    out = icloud_body(text, "a.ics")
    cal = icalendar.Calendar.from_ical(out)
    event = next(iter(cal.walk("VEVENT")))
    assert "METHOD" not in cal
    assert event["DTEND"].dt == event["DTSTART"].dt
    assert event["ATTENDEE"].params["SCHEDULE-AGENT"] == "CLIENT"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]


def test_icloud_body_all_day_without_end_gets_one_day() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//crm//EN\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART;VALUE=DATE:20261201\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    event = next(iter(icalendar.Calendar.from_ical(icloud_body(text, "d.ics")).walk("VEVENT")))
    assert (event["DTEND"].dt - event["DTSTART"].dt).days == 1


def test_cancelled_means_every_master_cancelled() -> None:
    assert is_cancelled(fixture("budget-review-status-cancelled-ny.ics"))
    assert not is_cancelled(fixture("swimming-saturdays-cancelled-instance.ics"))  # only one instance


def test_marker_goes_into_every_vevent_of_lf_text_too() -> None:
    text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nEND:VCALENDAR\n"
    assert mark_mirrored(text, "home").count(f"{MARKER}:home\n") == 1
