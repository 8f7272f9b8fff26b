"""One line saying why a write was refused and what to do, in place of Radicale's bare text.

Radicale refuses a bad write with a generic body ("Bad Request", "Access to the requested
resource forbidden.") and logs the reason where the client never sees it. A person
looking at their calendar app's error, or a CRM developer reading a response, needs the
reason. Only Radicale's plain-text answers are replaced: a `DAV:error` body (a UID
already used in the calendar) is a machine-readable precondition CalDAV clients act on,
and stays as it is. The status code never changes.

The reason for a 400 on a PUT is found again by running Radicale's own checks on the
body (`read_components`, `check_and_sanitize_items`, `Item.prepare`): this runs only for
a write already refused, so it costs nothing on the normal path. Radicale logged its
reason when it refused; what its checks log again while they run here is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from radicale import item as radicale_item

from calmirror.local import layout
from calmirror.local.items import Limits

_WHERE = "PUT events into appointments/ (pushed to iCloud) or blocked/ (kept local)"
_REREAD = "fetch it again (GET or PROPFIND) and retry with its current ETag"
_LIMIT = 200


def explain(method: str, status: int, parts: list[str], headers: Mapping[str, str], body: bytes, limits: Limits) -> str:
    """The line for a write `method` on the path `parts` that Radicale answered `status`."""
    if method == "PUT":
        reason = _put(status, parts, headers, body, limits)
    elif method == "DELETE":
        reason = _delete(status, parts)
    elif method in ("MKCOL", "MKCALENDAR"):
        reason = "new calendars cannot be created; calmirror serves appointments/, blocked/ and the iCloud mirrors"
    elif method == "PROPPATCH":
        reason = _proppatch(status)
    else:  # MOVE, COPY
        reason = _move(method, status)
    return _one_line(reason)


def _put(status: int, parts: list[str], headers: Mapping[str, str], body: bytes, limits: Limits) -> str:
    if status == 400:
        return f"not stored: {diagnose(body, limits)}"
    if status == 403:
        if _names_a_writable_calendar(parts):
            return f"a whole calendar cannot be uploaded; {_WHERE}, one event per URL"
        return f"nothing can be written at {_shown(parts)}; {_WHERE}"
    if status == 409:
        return f"the calendar {'/'.join(parts[:-1])}/ does not exist; {_WHERE}"
    if status == 412:
        if len(body) > limits.max_resource_size:
            return f"the event is larger than the limit of {limits.max_resource_size} bytes; make it smaller"
        if headers.get("if-none-match", "").strip() == "*":
            return (
                "an event already exists at this URL (If-None-Match: *); choose another name, or update it "
                "with its ETag"
            )
        return f"the event changed or was deleted since you read it (If-Match did not match); {_REREAD}"
    return _fallback(status)


def _delete(status: int, parts: list[str]) -> str:
    if status == 403:
        if _names_a_writable_calendar(parts):
            return "a whole calendar cannot be deleted; DELETE its events one by one"
        return f"nothing can be deleted at {_shown(parts)}; only events in appointments/ and blocked/ can be"
    if status == 404:
        return "there is no event at this URL; it may have been deleted already"
    if status == 412:
        return f"the event changed since you read it (If-Match did not match); {_REREAD}"
    return _fallback(status)


def _proppatch(status: int) -> str:
    if status == 403:
        return "these properties cannot be changed here; only a calendar's name, colour and description can"
    return _fallback(status)


def _move(method: str, status: int) -> str:
    if method == "COPY":
        return "COPY is not supported; GET the event and PUT it under the new URL"
    if status == 403:
        return "the event cannot be moved there; events can move only between appointments/ and blocked/"
    if status == 409:
        return "the destination calendar does not exist, or already holds an event with this UID"
    if status == 412:
        return "an event already exists at the destination (Overwrite: F); choose another name"
    return _fallback(status)


def _names_a_writable_calendar(parts: list[str]) -> bool:
    return len(parts) == 2 and parts[1] in layout.WRITABLE


def _shown(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def _fallback(status: int) -> str:
    return f"refused ({status}); {_WHERE}"


class _RepeatsDropped(logging.Filter):
    """Drops the `radicale` logger's records of a thread while it diagnoses (`_quietly`)."""

    def __init__(self) -> None:
        super().__init__()
        self.diagnosing = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.diagnosing, "on", False)


_REPEATS = _RepeatsDropped()
logging.getLogger("radicale").addFilter(_REPEATS)


@contextmanager
def _quietly() -> Iterator[None]:
    _REPEATS.diagnosing.on = True
    try:
        yield
    finally:
        _REPEATS.diagnosing.on = False


def diagnose(body: bytes, limits: Limits) -> str:
    """Why Radicale would not store `body` as one calendar object: its own checks, run again."""
    with _quietly():
        return _diagnose(body, limits)


def _diagnose(body: bytes, limits: Limits) -> str:
    if len(body) > limits.max_resource_size:
        return f"the event is larger than the limit of {limits.max_resource_size} bytes"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8 text; send iCalendar (text/calendar) encoded as UTF-8"
    try:
        components = radicale_item.read_components(text)
    except Exception as error:  # vobject raises many kinds; each one means "cannot parse"
        return f"not valid iCalendar ({error})"
    try:
        radicale_item.check_and_sanitize_items(
            components, is_collection=False, tag="VCALENDAR", max_vevent_rrule_occurrence=limits.max_rrule_occurrence
        )
        item = radicale_item.Item(collection_path="calmirror", vobject_item=components[0])
        item.prepare()
    except Exception as error:
        return f"{error}; send one VCALENDAR holding one event (with its overrides) and a UID"
    return "Radicale could not store this event; send one VCALENDAR holding one event with a UID"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LIMIT else text[: _LIMIT - 1] + "…"


def read_only(path: str | None) -> str | None:
    """Why a write to `path` is refused, when it is in a calendar only calmirror writes."""
    parts = layout.split_path(path) if path is not None else []
    if len(parts) < 2:
        return None
    if layout.is_mirror(parts[1]):
        return (
            "mirrored iCloud calendars are read-only; change the event in iCloud, "
            "or PUT appointments into appointments/"
        )
    if parts[1] == layout.BUSY:
        return (
            "busy/ is calmirror's read-only summary of all busy time; PUT appointments into "
            "appointments/ or blocked time into blocked/"
        )
    return None
