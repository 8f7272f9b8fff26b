"""The push planner: what iCloud needs for one local appointment."""

from __future__ import annotations

from typing import Any

from calmirror.model import Appointment
from calmirror.plan import plan_push
from calmirror.transform import MARKER

LINKED = "https://p01-caldav.example/1/calendars/WORK/"
EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//crm//EN\r\nBEGIN:VEVENT\r\nUID:appt-1\r\n"
    "DTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\n{extra}"
    "SUMMARY:Consultation\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def appt(**kw: object) -> Appointment:
    base: dict[str, Any] = {
        "uid": "appt-1",
        "local_href": "a.ics",
        "local_etag": "h1",
        "remote_calendar": LINKED,
        "remote_href": LINKED + "appt-1.ics",
        "remote_etag": '"e1"',
        "pushed_etag": "h0",
    }
    return Appointment(**(base | kw))


def test_new_appointment_is_created_at_a_url_derived_from_its_uid() -> None:
    action = plan_push(
        "appt-1",
        EVENT.format(extra=""),
        "h1",
        appt(remote_href=None, remote_etag=None, pushed_etag=None),
        LINKED,
        "delete",
    )
    assert action.kind == "create" and action.href == LINKED + "appt-1.ics"


def test_edit_updates_with_the_stored_etag_in_the_original_calendar() -> None:
    action = plan_push("appt-1", EVENT.format(extra=""), "h1", appt(), "https://other/cal/", "delete")
    assert (action.kind, action.href, action.etag) == ("update", LINKED + "appt-1.ics", '"e1"')


def test_unchanged_content_needs_nothing() -> None:
    assert plan_push("appt-1", EVENT.format(extra=""), "h0", appt(), LINKED, "delete").kind == "nothing"


def test_local_delete_deletes_or_cancels_remotely() -> None:
    assert plan_push("appt-1", None, None, appt(), LINKED, "delete").kind == "delete"
    cancel = plan_push("appt-1", None, None, appt(), LINKED, "mark-cancelled")
    assert cancel.kind == "cancel" and cancel.body is None and cancel.forget_after


def test_delete_of_a_never_pushed_appointment_is_forgotten() -> None:
    assert plan_push("appt-1", None, None, appt(remote_href=None), LINKED, "delete").kind == "forget"


def test_status_cancelled_follows_the_cancel_mode() -> None:
    text = EVENT.format(extra="STATUS:CANCELLED\r\n")
    assert plan_push("appt-1", text, "h1", appt(), LINKED, "delete").kind == "delete"
    marked = plan_push("appt-1", text, "h1", appt(), LINKED, "mark-cancelled")
    assert marked.kind == "update" and "STATUS:CANCELLED" in (marked.body or "")


def test_mirrored_events_are_never_pushed() -> None:
    text = EVENT.format(extra=f"{MARKER}:home\r\n")
    assert plan_push("appt-1", text, "h1", None, LINKED, "delete").kind == "refuse"


def test_without_a_linked_calendar_new_appointments_wait_with_a_reason() -> None:
    action = plan_push("appt-1", EVENT.format(extra=""), "h1", None, None, "delete")
    assert action.kind == "refuse" and "calmirror link" in action.reason


def test_a_create_whose_answer_was_lost_is_created_again_at_the_same_href() -> None:
    """The href is recorded before the PUT; with no ETag back, the next try creates again
    there (a 412 then means our own copy landed and is overwritten), never an update."""
    unconfirmed = appt(remote_etag=None, pushed_etag=None)
    action = plan_push("appt-1", EVENT.format(extra=""), "h1", unconfirmed, LINKED + "elsewhere/", "delete")
    assert (action.kind, action.href) == ("create", LINKED + "appt-1.ics")


def test_a_deletion_after_a_lost_create_answer_deletes_the_copy_it_may_have_left() -> None:
    unconfirmed = appt(remote_etag=None, pushed_etag=None)
    action = plan_push("appt-1", None, None, unconfirmed, LINKED, "delete")
    assert (action.kind, action.href, action.etag, action.forget_after) == (
        "delete",
        LINKED + "appt-1.ics",
        None,
        True,
    )
