"""A TZID without a VTIMEZONE must not move other objects' recurring events across DST:
vobject registers its resolution for the whole process, and pytz's (its default) keeps
DTSTART's offset through dateutil's rule walk. Run in a fresh process, as the registration
is process-wide."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import datetime as dt
import calmirror.local.items  # installs vobject_speed, as every module letting Radicale parse does
import vobject
from radicale.item import filter as radicale_filter
from calmirror.testing import ical

def starts(text):
    seen = []
    def visit(start, _end, is_recurrence):
        seen.append(start.astimezone(dt.UTC))
        return not is_recurrence and start.astimezone(dt.UTC).year > 2027
    radicale_filter.visit_time_ranges(vobject.readOne(text), "VEVENT", visit, lambda _s: False)
    return sorted(seen)

bare = ical.vcalendar(["UID:bare", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20261210T100000",
                       "DURATION:PT1H", "RRULE:FREQ=DAILY;COUNT=3"])
defined = ical.vcalendar(["UID:defined", "DTSTAMP:20261101T000000Z", "DTSTART;TZID=Europe/Berlin:20270326T073000",
                          "DURATION:PT30M", "RRULE:FREQ=DAILY;COUNT=4"], head=ical.VTIMEZONES["Europe/Berlin"])
first = starts(bare)  # the zone registered from a TZID alone
print([t.strftime("%m-%d %H:%M") for t in first + starts(defined)])
"""


def test_a_zone_named_without_vtimezone_keeps_daylight_saving_for_every_object() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    december = ["12-10 09:00", "12-11 09:00", "12-12 09:00"]  # 10:00 CET
    march = ["03-26 06:30", "03-27 06:30", "03-28 05:30", "03-29 05:30"]  # 07:30 CET, then CEST from 28 March
    assert done.stdout.split("\n")[0] == str([*december, *march])
