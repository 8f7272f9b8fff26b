"""A small line-level model of one iCalendar resource: its calendar properties, time zones,
events and other components as unfolded content lines, rendered back folded.

The compatible copies (`compat`) change a resource line by line, leaving every property they
do not touch exactly as iCloud sent it; a parse into icalendar objects and back would
reorder and re-encode what it does not need to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: A TZID parameter in a line's head: group 1 `;TZID=`, group 2 the name, quoted or not.
TZID_PARAM = re.compile(r'(;TZID=)("[^"]*"|[^;:]*)', re.IGNORECASE)


def unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", text)


_NAME_END = re.compile(r"[;:]")


def name_of(line: str) -> str:
    """The property's name, upper-cased. Asked of every line several times per resource by
    the compatible copies' first looks (a pattern compiled once: `re.split` looked its
    pattern up in the module's cache on each of them)."""
    return _NAME_END.split(line, maxsplit=1)[0].upper()


def value_of(line: str) -> str:
    return split(line)[1]


def split(line: str) -> tuple[str, str]:
    """(name and parameters, value): the first colon outside a quoted parameter."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:index], line[index + 1 :]
    raise ValueError(f"no colon in {line[:40]!r}")


def params_of(line: str) -> str:
    """The parameters of a property line, with their leading `;`, or ''."""
    head = split(line)[0]
    return head[len(head.split(";", 1)[0]) :]


@dataclass
class Event:
    lines: list[str]  # unfolded, without BEGIN/END, nested components kept as lines

    def top(self) -> list[tuple[int, str]]:
        """(index, line) of the event's own properties (not those of a nested VALARM)."""
        out, depth = [], 0
        for index, line in enumerate(self.lines):
            # Only the head is upper-cased: str.upper maps character by character, so the
            # first six characters of the whole line's upper case are those of its first six's.
            head = line[:6].upper()
            if head.startswith("BEGIN:"):
                depth += 1
            elif head.startswith("END:"):
                depth -= 1
            elif depth == 0:
                out.append((index, line))
        return out

    def get(self, name: str) -> str | None:
        return next((line for _, line in self.top() if name_of(line) == name), None)

    def all(self, name: str) -> list[str]:
        return [line for _, line in self.top() if name_of(line) == name]

    def without(self, *names: str) -> list[str]:
        """Own properties other than `names`, nested components dropped."""
        return [line for _, line in self.top() if name_of(line) not in names]


@dataclass
class Resource:
    head: list[str]  # VCALENDAR properties
    timezones: list[list[str]]  # VTIMEZONE blocks, BEGIN/END included
    events: list[Event]
    others: list[list[str]] = field(default_factory=list)  # any other component, kept

    @classmethod
    def parse(cls, text: str) -> Resource:
        lines = [line for line in unfold(text.lstrip("\ufeff")).splitlines() if line.strip()]
        if not lines or lines[0].upper() != "BEGIN:VCALENDAR" or lines[-1].upper() != "END:VCALENDAR":
            raise ValueError("not one VCALENDAR")
        resource = cls([], [], [])
        block: list[str] | None = None
        depth = 0
        for line in lines[1:-1]:
            upper = line.upper()
            if block is None:
                if upper.startswith("BEGIN:"):
                    block, depth = [line], 1
                else:
                    resource.head.append(line)
                continue
            block.append(line)
            if upper.startswith("BEGIN:"):
                depth += 1
            elif upper.startswith("END:"):
                depth -= 1
                if depth == 0:
                    kind = block[0].upper()
                    if kind == "BEGIN:VEVENT":
                        resource.events.append(Event(block[1:-1]))
                    elif kind == "BEGIN:VTIMEZONE":
                        resource.timezones.append(block)
                    else:
                        resource.others.append(block)
                    block = None
        if block is not None or not resource.events:
            raise ValueError("unterminated component or no VEVENT")
        for line in resource.head + [line for event in resource.events for line in event.lines]:
            split(line)  # every content line has its colon
        return resource

    def render(self) -> str:
        lines = ["BEGIN:VCALENDAR", *self.head]
        for block in self.timezones:
            lines.extend(block)
        for event in self.events:
            lines.extend(["BEGIN:VEVENT", *event.lines, "END:VEVENT"])
        for block in self.others:
            lines.extend(block)
        lines.append("END:VCALENDAR")
        return "".join(fold(line) + "\r\n" for line in lines)


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str, width: int = 75) -> str:
    """RFC 5545 folding at 75 octets, never inside a UTF-8 sequence."""
    data = line.encode("utf-8")
    if len(data) <= width:
        return line
    parts, start, limit = [], 0, width
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start, limit = end, width - 1
    return "\r\n ".join(parts)
