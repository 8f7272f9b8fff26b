"""The compatible copies' first looks run on every mirrored resource, so three of their steps
were made cheaper: `name_of` with its pattern compiled once, `Event.top` upper-casing only a
line's head, `start_left_out` kept per (start, rule). Each must answer exactly as the plain
version did, for any text (characters whose upper case is longer than they are included)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from calmirror import compat_series
from calmirror.ical_lines import Event, name_of
from calmirror.testing.corpus import generate_events

# Characters whose upper case is two or three characters, or that upper-case into ASCII.
ODD = "ßŉǰΐΰﬀﬁﬂﬃﬄﬅﬆıſǅ"
heads = st.sampled_from(["BEGIN:", "END:", "begin:", "End:", "BEGIN;", "END", "BEGI", "DTSTART;", "RRULE:", ""])
lines = st.builds(
    lambda head, rest: head + rest,
    heads,
    st.text(st.sampled_from(list(ODD + "BEGINDbeginde:;=\"'VALARM ")), max_size=12) | st.text(max_size=10),
)


def plain_name_of(line: str) -> str:
    return re.split(r"[;:]", line, maxsplit=1)[0].upper()


def plain_top(event: Event) -> list[tuple[int, str]]:
    out, depth = [], 0
    for index, line in enumerate(event.lines):
        upper = line.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 0:
            out.append((index, line))
    return out


@given(lines)
def test_name_of_answers_as_before(line: str) -> None:
    assert name_of(line) == plain_name_of(line)


@given(st.lists(lines, max_size=12))
def test_top_answers_as_before(event_lines: list[str]) -> None:
    event = Event(event_lines)
    assert event.top() == plain_top(event)
    for name in ("DTSTART", "RRULE", "BEGIN", "END"):
        assert event.get(name) == next((line for _, line in plain_top(event) if plain_name_of(line) == name), None)


def test_top_and_name_of_answer_as_before_for_corpus_events() -> None:
    for _name, text in generate_events(300, seed=3):
        body = text.replace("\r\n", "\n").split("\n")
        assert [name_of(line) for line in body] == [plain_name_of(line) for line in body]
        assert Event(body).top() == plain_top(Event(body))


rules = st.sampled_from(
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "FREQ=WEEKLY;BYDAY=TH",
        "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3",
        "FREQ=DAILY;BYHOUR=25",
        "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2",
        "nonsense",
    ]
)
starts = st.sampled_from(["20260827T103000", "19810329T020000", "20240229", "20250131T000000Z", "x"])


@given(starts, rules)
def test_start_left_out_kept_answers_as_computed(start: str, rule: str) -> None:
    computed = compat_series.start_left_out.__wrapped__(start, rule)
    assert compat_series.start_left_out(start, rule) == computed
    assert compat_series.start_left_out(start, rule) == computed  # the second time, from the memo
