"""RFC 7529 SKIP=BACKWARD written as a plain rule (`availability.skip`): the same occurrences
as RFC 7529's own reading, worked out here day by day, for every start on a day some months
lack; busy time and the mirror's copy read it so."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability import engine as av
from calmirror.availability.skip import backward_as_setpos
from calmirror.compat_scales import gregorian
from tests import icloud_shapes

UTC = dt.UTC


def rfc7529_backward(start: dt.datetime, freq: str, count: int) -> list[dt.datetime]:
    """Each period's day, or the period's month's last day when that month lacks it."""
    out = []
    for n in range(count):
        months = n if freq == "MONTHLY" else 12 * n
        year, month = divmod(start.month - 1 + months, 12)
        last = calendar.monthrange(start.year + year, month + 1)[1]
        out.append(start.replace(year=start.year + year, month=month + 1, day=min(start.day, last)))
    return out


@given(
    st.integers(2020, 2030),
    st.integers(1, 12),
    st.integers(29, 31),
    st.sampled_from(["MONTHLY", "YEARLY"]),
    st.integers(1, 30),
)
def test_the_plain_rule_walks_what_skip_backward_means(year: int, month: int, day: int, freq: str, count: int) -> None:
    if day > calendar.monthrange(year, month)[1]:
        return  # DTSTART itself must exist
    start = dt.datetime(year, month, day, 9, 0)
    parts = backward_as_setpos({"FREQ": [freq], "COUNT": [count]}, start)
    assert parts is not None
    rule = ";".join(f"{k}={','.join(str(v) for v in vs)}" for k, vs in parts.items())
    assert list(rrulestr(rule, dtstart=start)) == rfc7529_backward(start, freq, count)
    # the copy writes the same rule from the text
    written = gregorian(f"RSCALE=GREGORIAN;FREQ={freq};SKIP=BACKWARD;COUNT={count}", start)
    assert list(rrulestr(written, dtstart=start)) == rfc7529_backward(start, freq, count)


def test_skip_forward_still_leaves_the_moved_occurrence_out() -> None:
    """SKIP=FORWARD would move 31 February to 1 March: no plain rule says that, so it is left
    out (not counted) and COUNT runs on, as before."""
    forward = icloud_shapes.RSCALE_GREGORIAN_SKIP.replace("SKIP=BACKWARD", "SKIP=FORWARD")
    window = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 12, 1, tzinfo=UTC))
    found = av.busy_occurrences([av.Source("s", [av.parse_calendar(forward)])], *window, av.Rules(ZoneInfo("UTC")))
    assert [o.start.date() for o in found] == [
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 31),
        dt.date(2027, 3, 31),
        dt.date(2027, 5, 31),
    ]
