"""recurring-ical-events' classes, adapted: lazy capped rule walks and distinct wall-time ids.

The library builds a whole window's occurrences in lists and lets dateutil cache every
period it walked; the classes here walk lazily and stop at `MAX_OCCURRENCES` per rule and
query (raising `CapReached`, which `availability.expansion` turns into one approximate busy
stretch), and `OneOffSeries` keeps dateutil from caching a walk that will not be repeated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import icalendar
import recurring_ical_events.adapters.component as _ric_adapters
import recurring_ical_events.series.rrule as _ric_rrule
from dateutil.rrule import rrulestr as dateutil_rrulestr
from recurring_ical_events import EventAdapter, Occurrence, Series
from recurring_ical_events.constants import NEGATIVE_RRULE_COUNT_REGEX
from recurring_ical_events.util import compare_greater, convert_to_datetime, to_recurrence_ids

from calmirror.availability.durations import length_of
from calmirror.availability.instants import Time
from calmirror.availability.rules import EventInfo

MAX_OCCURRENCES = 5_000  # per rule per query; the library spends ~15 us on each


def recurrence_ids(time: Time) -> tuple[Any, ...]:
    """recurring-ical-events' recurrence ids, with the wall-time form kept apart from the UTC one.

    The library identifies an occurrence, an EXDATE and a RECURRENCE-ID by (UTC as naive,
    wall time as naive) and matches on any common member, so a UTC time could match another
    occurrence's wall time: in Berlin, a series at 10:00 and 11:00 whose 11:00 instance
    is moved (RECURRENCE-ID 11:00, i.e. 10:00 UTC) also replaced the 10:00 instance, and an
    EXDATE 11:00 also removed it. Busy time was lost. Tagging the wall form keeps UTC
    matching UTC and wall time matching wall time. (calmirror is the library's only user
    in the process; availability imports it nowhere else.)
    """
    ids = to_recurrence_ids(time)
    return (ids[0], ("wall", ids[1])) if len(ids) == 2 else ids


_ric_rrule.to_recurrence_ids = recurrence_ids
_ric_adapters.to_recurrence_ids = recurrence_ids


class CapReached(Exception):
    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at)
        self.at = at


class Adapter(EventAdapter):  # type: ignore[misc]  # the library ships no types
    """The library's VEVENT adapter, carrying our busy summary of the component."""

    def __init__(self, component: icalendar.Component, info: EventInfo) -> None:
        super().__init__(component)
        self.component = component
        self.info = info
        self.length = length_of(component)  # for `durations.rfc_end`


class _Occurrence(Occurrence):  # type: ignore[misc]  # the library ships no types
    def __init__(self, adapter: Adapter, start: Time | None = None, end: Time | None = None) -> None:
        super().__init__(adapter, start, end)
        self.adapter = adapter


class _BoundedRules(Series.RecurrenceRules):  # type: ignore[misc]  # the library ships no types
    """Lazy, capped rule walking; the library's version builds whole-window lists."""

    cache = True

    def rrulestr(self, rule_string: str) -> Any:
        rule_string = NEGATIVE_RRULE_COUNT_REGEX.sub("", rule_string)
        # The library reads `string` and `until` off the rule, attributes dateutil's types lack.
        rule: Any = dateutil_rrulestr(rule_string, dtstart=self.start, cache=self.cache)
        rule.string = rule_string
        rule.until = self._get_rrule_until(rule)
        return rule

    def rrule_between(self, span_start: Time, span_stop: Time) -> Iterator[Time]:
        first = convert_to_datetime(span_start, self.tzinfo)
        last = convert_to_datetime(span_stop, self.tzinfo)
        for rule in self.rrules:
            for n, start in enumerate(rule.xafter(first, inc=True)):
                if start > last:
                    break
                if n >= MAX_OCCURRENCES:
                    raise CapReached(start)
                if rule.until is None or not compare_greater(start, rule.until):
                    yield start


class _UncachedRules(_BoundedRules):
    cache = False


class CachedSeries(Series):  # type: ignore[misc]  # the library ships no types
    RecurrenceRules = _BoundedRules

    def occurrence(self, adapter: Adapter, start: Time | None = None, end: Time | None = None) -> Occurrence:
        return _Occurrence(adapter, start, end)


class OneOffSeries(CachedSeries):
    """For rebased or dense series: dateutil must not keep what it walked."""

    RecurrenceRules = _UncachedRules
