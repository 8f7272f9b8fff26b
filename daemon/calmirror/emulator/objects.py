"""Calendar objects as iCloud keeps them: the client's exact text, whatever Radicale thinks.

iCloud stores valid iCalendar that Radicale refuses (overrides without a master,
COUNT=1000000000, RDATE;VALUE=PERIOD) and serves it back unchanged apart from line
endings (ICLOUD.md). Radicale stays the emulator's storage, so that sync tokens, ETags
and the UID index keep coming from one place: an object Radicale refuses is stored
inside an *envelope*, a small event Radicale accepts that carries the exact text in
base64 under the same UID. The layer opens envelopes wherever text leaves the store
(GET, calendar-data in REPORTs, the iCloud-side read helpers), so no client ever sees
one. The envelope spans 1970 to 2100, so time-range queries never leave the object out.

What iCloud itself refuses is decided here from the text, not from vobject: something
that is not an iCalendar object at all (400) and an event with a start but no end (404).

Bytes that are not UTF-8 (an old client's Windows-1252) are held too, in an envelope, and
served as they are: a GET's body has them, and so has a multiget's calendar-data, which is
then no longer well-formed XML (what a server pasting stored bytes into XML answers).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import radicale.item as radicale_item

from calmirror.raw_text import exact_bytes, from_bytes

MAX_RRULE_OCCURRENCE = 100_000
ENVELOPE_PROPERTY = "X-CALMIRROR-EMULATOR-EXACT-TEXT"
_ENVELOPE_MARK = (ENVELOPE_PROPERTY + ":").encode()
_ENVELOPE_VALUE = re.compile(re.escape(_ENVELOPE_MARK) + rb"([A-Za-z0-9+/=]*)")
_CALENDAR_DATA = re.compile(rb"(<(?:[\w-]+:)?calendar-data\b[^>]*>)([^<]*)(</(?:[\w-]+:)?calendar-data>)")
_COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")
_ENVELOPE_SPAN = {"VEVENT": "DTEND", "VTODO": "DUE"}
_DATE_VALUE = re.compile(r"\d{8}(T\d{6}Z?)?")
_COUNT = re.compile(r"^RRULE[;:].*?\bCOUNT=(\d{1,20})", re.MULTILINE | re.IGNORECASE)
_DATE_PROPERTIES = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID")


class InvalidObject(ValueError):
    """A body that is not one iCalendar object (a PUT answers 400)."""


@dataclass(frozen=True)
class ObjectShape:
    """What iCloud's own checks look at, read from the text itself."""

    component: str  # VEVENT, VTODO or VJOURNAL
    uid: str
    event_without_end: bool  # a VEVENT with DTSTART and neither DTEND nor DURATION


def normalize(text: str) -> str:
    """CRLF line endings and a final line break: the only change iCloud makes (ICLOUD.md 25)."""
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return normalized if normalized.endswith("\r\n") else normalized + "\r\n"


def read_shape(text: str) -> ObjectShape:
    """Check that ``text`` is one calendar object resource, without interpreting values.

    One VCALENDAR; its components of one kind, all with the same non-empty UID (RFC 4791
    4.1); date properties that look like dates. Raises InvalidObject otherwise.
    """
    lines = _unfolded(text.removeprefix("\ufeff"))  # (a byte-order mark some exporters write is no content)
    if not lines or lines[0].upper() != "BEGIN:VCALENDAR" or lines[-1].upper() != "END:VCALENDAR":
        raise InvalidObject("not an iCalendar object (no VCALENDAR around it)")
    stack: list[str] = []
    kinds: set[str] = set()
    uids: set[str] = set()
    without_end = False
    props: set[str] = set()
    for index, line in enumerate(lines):
        name, colon, value = line.partition(":")
        if not colon:
            raise InvalidObject(f"line {index + 1} is not a content line")
        prop = name.split(";", 1)[0].upper()
        if prop == "BEGIN":
            stack.append(value.strip().upper())
            if len(stack) == 2:
                props = set()
            continue
        if prop == "END":
            if not stack or stack.pop() != value.strip().upper():
                raise InvalidObject(f"END:{value} does not close the open component")
            if not stack and index != len(lines) - 1:
                raise InvalidObject("text after END:VCALENDAR")
            if len(stack) == 1 and value.strip().upper() == "VEVENT":
                without_end = without_end or ("DTSTART" in props and not props & {"DTEND", "DURATION"})
            continue
        if len(stack) == 2 and stack[1] in _COMPONENTS:
            kinds.add(stack[1])
            props.add(prop)
            if prop == "UID":
                uids.add(value.strip())
            elif prop in _DATE_PROPERTIES and not _DATE_VALUE.fullmatch(value.strip()):
                raise InvalidObject(f"{prop} {value!r} is not a date or date-time")
    if stack:
        raise InvalidObject(f"BEGIN:{stack[-1]} is never closed")
    if len(kinds) != 1:
        raise InvalidObject("no calendar component" if not kinds else "more than one kind of component")
    if len(uids) != 1 or "" in uids:
        raise InvalidObject("components without one shared UID")
    return ObjectShape(kinds.pop(), uids.pop(), without_end)


def _unfolded(text: str) -> list[str]:
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return lines


def prepare_item(text: str, collection_path: str) -> radicale_item.Item:
    """A Radicale item holding ``text`` exactly (CRLF aside): itself when Radicale accepts
    it, else an envelope. Raises InvalidObject when it is not a calendar object at all."""
    normalized = normalize(text)
    if not _over_occurrence_limit(normalized):  # else Radicale logs an ERROR for each refusal
        try:
            return _radicale_item(normalized, collection_path)
        except InvalidObject:
            pass
    shape = read_shape(normalized)
    return _radicale_item(envelope(normalized, shape), collection_path)


def _over_occurrence_limit(text: str) -> bool:
    return any(int(count) > MAX_RRULE_OCCURRENCE for count in _COUNT.findall(text))


def prepare_unchecked(text: str, name: str, collection_path: str) -> radicale_item.Item:
    """Like `prepare_item`, but keeps even bytes that are not iCalendar (iCloud-side only:
    data that got into an account some other way, for tests of unreadable objects)."""
    normalized = normalize(text)
    try:
        return prepare_item(normalized, collection_path)
    except InvalidObject:
        shape = ObjectShape("VEVENT", f"calmirror-emulator-unreadable-{name}", False)
        return _radicale_item(envelope(normalized, shape), collection_path)


def _radicale_item(normalized: str, collection_path: str) -> radicale_item.Item:
    try:
        components = radicale_item.read_components(normalized)
        radicale_item.check_and_sanitize_items(
            components, max_vevent_rrule_occurrence=MAX_RRULE_OCCURRENCE, tag="VCALENDAR"
        )
        item = radicale_item.Item(
            collection_path=collection_path.strip("/"), vobject_item=components[0], text=normalized
        )
        item.prepare()
    except Exception as exc:  # vobject raises its own ParseError family besides ValueError & co.
        raise InvalidObject(str(exc)) from exc
    return item


def event_without_end(item: radicale_item.Item) -> bool:
    """A VEVENT with DTSTART but neither DTEND nor DURATION, which iCloud answers 404."""
    text = item.serialize()
    if ENVELOPE_PROPERTY in text:
        return read_shape(opened(text)).event_without_end
    for component in item.vobject_item.getChildren():
        if component.name != "VEVENT":
            continue
        contents = component.contents
        if "dtstart" in contents and not {"dtend", "duration"} & set(contents):
            return True
    return False


def envelope(normalized: str, shape: ObjectShape) -> str:
    encoded = base64.b64encode(exact_bytes(normalized)).decode("ascii")
    span = _ENVELOPE_SPAN.get(shape.component)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calmirror//emulator envelope//EN",
        f"BEGIN:{shape.component}",
        f"UID:{_escape_uid(shape.uid)}",
        "DTSTAMP:19700101T000000Z",
        "DTSTART:19700101T000000Z",
        *([f"{span}:21000101T000000Z"] if span else []),
        f"{ENVELOPE_PROPERTY}:{encoded}",
        f"END:{shape.component}",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def _escape_uid(uid: str) -> str:
    return uid.replace("\r", "").replace("\n", "")


def opened(text: str) -> str:
    """The exact text an item stands for: itself, or what its envelope carries."""
    if ENVELOPE_PROPERTY not in text:
        return text
    match = _ENVELOPE_VALUE.search(exact_bytes(text))
    return text if match is None else _decode(match.group(1))


def opened_bytes(body: bytes) -> bytes:
    """`opened` for a GET body."""
    if _ENVELOPE_MARK not in body:
        return body
    match = _ENVELOPE_VALUE.search(body)
    return body if match is None else exact_bytes(_decode(match.group(1)))


def open_calendar_data(body: bytes) -> bytes:
    """Every envelope in a multistatus's calendar-data replaced by the text it carries.

    The check for the marker keeps answers without envelopes (nearly all) at one scan.
    """
    if _ENVELOPE_MARK not in body:
        return body

    def replace(match: re.Match[bytes]) -> bytes:
        inner = match.group(2)
        value = _ENVELOPE_VALUE.search(inner)
        if value is None:
            return match.group(0)
        exact = exact_bytes(_decode(value.group(1)))  # (bytes that are not UTF-8 too, as they are)
        escaped = exact.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
        return match.group(1) + escaped + match.group(3)

    return _CALENDAR_DATA.sub(replace, body)


def _decode(value: bytes) -> str:
    try:
        return from_bytes(base64.b64decode(value, validate=True))
    except binascii.Error:
        return ""
