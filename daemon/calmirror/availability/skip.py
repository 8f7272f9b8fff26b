"""RFC 7529 `SKIP=BACKWARD` on a Gregorian rule, as a plain RFC 5545 rule with the same
occurrences.

Apple Calendar writes `RRULE:RSCALE=GREGORIAN;FREQ=MONTHLY;SKIP=BACKWARD` for "every month on
the 31st, or its last day" and `FREQ=YEARLY;SKIP=BACKWARD` on 29 February for "every year, on
the 28th when there is no 29th". dateutil knows no SKIP and omits the months that lack the day,
so busy time left those occurrences out and a COUNT ran on past them (RFC 7529: a moved
occurrence counts). When each period (a month; a year of one month) holds one occurrence, the
day SKIP=BACKWARD lands on is the last existing day of 28..D: `BYMONTHDAY=28,...,D;BYSETPOS=-1`,
which every RFC 5545 reader walks, busy time and the local server alike. Other shapes (several
days or months per period, BYDAY, several times a day) and SKIP=FORWARD, which moves into the
next month, are left as they were: those occurrences stay out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_NOT_ONE_PER_PERIOD = ("BYSETPOS", "BYDAY", "BYYEARDAY", "BYWEEKNO", "BYHOUR", "BYMINUTE", "BYSECOND")


def backward_as_setpos(parts: dict[str, list[Any]], start: dt.date) -> dict[str, list[Any]] | None:
    """`parts` (upper-case keys, RSCALE and SKIP already dropped) of a rule whose SKIP was
    BACKWARD, written so a plain reader moves what SKIP moves; None when nothing changes."""
    freq = str(parts.get("FREQ", [""])[0]).strip().upper()
    if freq not in ("MONTHLY", "YEARLY") or any(key in parts for key in _NOT_ONE_PER_PERIOD):
        return None
    try:
        days = [int(str(day)) for day in parts.get("BYMONTHDAY", [start.day])]
        months = [int(str(month)) for month in parts.get("BYMONTH", [start.month])]
    except ValueError:
        return None
    if len(days) != 1 or not 29 <= days[0] <= 31 or (freq == "YEARLY" and len(months) != 1):
        return None
    moved = {**parts, "BYMONTHDAY": list(range(28, days[0] + 1)), "BYSETPOS": [-1]}
    if freq == "YEARLY":
        moved["BYMONTH"] = months
    return moved


def is_backward(parts: dict[str, list[Any]]) -> bool:
    """(icalendar parses SKIP into an enum, `vSkip.BACKWARD`; text gives the plain word)"""
    return any(str(getattr(value, "value", value)).strip().upper() == "BACKWARD" for value in parts.get("SKIP", []))
