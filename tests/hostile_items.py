"""What hostile corpus items are made of: the `Case` each is, the iCalendar text builders the
cases are written with, and the `Cases` every group of cases (`hostile_texts`, `hostile_bombs`)
adds to. The corpus itself, and what each field of a `Case` means: `hostile_corpus`."""

from __future__ import annotations

import random
from dataclasses import dataclass

CRLF = "\r\n"
HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile corpus//EN\r\n"
TAIL = "END:VCALENDAR\r\n"


def vevent(
    uid: str | None,
    *,
    summary: str = "Hostile",
    start: str = "DTSTART:20270301T100000Z",
    end: str | None = "DTEND:20270301T110000Z",
    extra: str = "",
    uid_line: str | None = None,
) -> str:
    lines = ["BEGIN:VEVENT"]
    if uid_line is not None:
        lines.append(uid_line)
    elif uid is not None:
        lines.append(f"UID:{uid}")
    lines += ["DTSTAMP:20270101T000000Z", start]
    if end:
        lines.append(end)
    lines.append(f"SUMMARY:{summary}")
    body = CRLF.join(lines) + CRLF + extra + "END:VEVENT\r\n"
    return body


def cal(*components: str, head: str = HEAD, tail: str = TAIL) -> str:
    return head + "".join(components) + tail


def fold(line: str, width: int = 74) -> str:
    """RFC 5545 folding of one long content line."""
    parts = [line[:width]] + [" " + line[i : i + width - 1] for i in range(width, len(line), width - 1)]
    return CRLF.join(parts) + CRLF


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    remote: str  # "skip" | "keep"
    local: str  # "refused" | "quarantined" | "pushed"
    reason: str = ""  # a fragment of the skip reason (remote), case-insensitive
    xml: str = "text"
    uid: str | None = None  # the UID a client would see, when there is one
    why: str = ""
    busy: str | None = None  # the remote outcome in a busy-only mirror, when it differs
    kind: str = "hostile"  # "hostile" | "must-count"
    expect_busy: tuple[tuple[str, str], ...] = ()  # for "must-count": UTC busy in BUSY_WINDOW

    def remote_in(self, details: str) -> str:
        """A busy-only mirror rebuilds each event from its times alone (icalendar, lenient), so
        some items Radicale refuses verbatim come out as clean busy blocks."""
        return self.busy if details == "busy" and self.busy else self.remote

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def garbage(seed: int, size: int, xml_safe: bool) -> bytes:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    if xml_safe:  # characters XML 1.0 can carry: no C0 controls but tab/newline, no invalid UTF-8
        text = data.decode("latin-1")
        text = "".join(ch if (ch >= " " or ch in "\t\n") and ch != "\x7f" else "?" for ch in text)
        return text.encode("utf-8")
    return data


def nested(depth: int) -> str:
    opens = "".join(f"BEGIN:X-NEST{n % 7}\r\n" for n in range(depth))
    closes = "".join(f"END:X-NEST{n % 7}\r\n" for n in reversed(range(depth)))
    return opens + closes


def vtimezone(tzid: str, inner: str) -> str:
    return f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n{inner}END:VTIMEZONE\r\n"


class Cases:
    """The corpus being built: each group of cases (`hostile_texts`, `hostile_bombs`) adds to it."""

    def __init__(self) -> None:
        self.found: list[Case] = []

    def add(
        self,
        name: str,
        text: str | bytes,
        remote: str,
        local: str,
        reason: str = "",
        *,
        xml: str = "text",
        uid: str | None = None,
        why: str = "",
        busy: str | None = None,
    ) -> None:
        body = text.encode("utf-8") if isinstance(text, str) else text
        self.found.append(
            Case(name, body, remote, local, reason, xml, uid if uid is not None else f"hostile-{name}", why, busy)
        )
