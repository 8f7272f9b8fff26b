"""The pure feed splitter and diff: one resource per UID with the zones it names, the feed's
own bytes kept, and a diff that turns what is stored into what the feed says."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from calmirror.availability import engine
from calmirror.feedsplit import diff_feed, etag_of, resource_name, split_feed

ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)
OTHER_ZONE = ZONE.replace("Europe/Berlin", "America/New_York")


def vevent(uid: str, day: int, *, tz: str | None = None, rid: int | None = None, summary: str = "x") -> str:
    when = f";TZID={tz}" if tz else ""
    z = "" if tz else "Z"
    lines = ["BEGIN:VEVENT", f"UID:{uid}"]
    if rid is not None:
        lines.append(f"RECURRENCE-ID{when}:202612{rid:02d}T100000{z}")
    lines += [
        f"DTSTART{when}:202612{day:02d}T100000{z}",
        f"DTEND{when}:202612{day:02d}T110000{z}",
        f"SUMMARY:{summary}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT5M",
        "END:VALARM",
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


def calendar(*parts: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:Rota\r\n"
        + "".join(parts)
        + "END:VCALENDAR\r\n"
    )


def test_master_and_overrides_travel_together_with_their_zone() -> None:
    text = calendar(
        ZONE,
        OTHER_ZONE,
        vevent("a", 1, tz="Europe/Berlin"),
        vevent("b", 2),
        "BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n",
        vevent("a", 3, tz="Europe/Berlin", rid=2),
    )
    split = split_feed(text)
    assert sorted(split.resources) == ["a.ics", "b.ics"] and split.ignored == 1
    a = split.resources["a.ics"]
    assert a.count("BEGIN:VEVENT") == 2 and "TZID:Europe/Berlin" in a and "New_York" not in a
    assert "METHOD" not in a and "X-WR-CALNAME" not in a and a.count("BEGIN:VALARM") == 2
    assert "VTIMEZONE" not in split.resources["b.ics"]
    for body in split.resources.values():
        engine.parse_calendar(body)  # each resource is a calendar on its own


def test_folded_uid_and_quoted_tzid_are_read_unfolded() -> None:
    event = (
        'BEGIN:VEVENT\r\nUID:long-\r\n uid@example.org\r\nDTSTART;TZID="Europe/Berlin":20261201T100000\r\n'
        'DTEND;TZID="Europe/Berlin":20261201T110000\r\nEND:VEVENT\r\n'
    )
    split = split_feed(calendar(ZONE, event))
    assert list(split.uids.values()) == ["long-uid@example.org"]
    assert "TZID:Europe/Berlin" in split.resources["long-uid@example.org.ics"]


def test_events_without_uid_get_a_stable_one_and_junk_is_no_calendar() -> None:
    event = "BEGIN:VEVENT\r\nDTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nEND:VEVENT\r\n"
    once, twice = split_feed(calendar(event)), split_feed(calendar(event))
    assert once.resources == twice.resources and len(once.resources) == 1
    assert split_feed("<html>not a feed</html>").calendars == 0


def test_unsafe_uids_get_hashed_names() -> None:
    assert resource_name("abc@example.org") == "abc@example.org.ics"
    assert resource_name("../../etc").endswith(".ics") and "/" not in resource_name("../../etc")
    assert resource_name("a/b") != resource_name("a:b")


uids = st.sampled_from([f"u{i}" for i in range(8)] + ["weird uid/ü", "x@y.z"])
events = st.lists(st.tuples(uids, st.integers(1, 28), st.booleans(), st.sampled_from(["a", "b"])), max_size=14)


def feed_of(items: list[tuple[str, int, bool, str]]) -> str:
    parts = [ZONE]
    for uid, day, zoned, summary in items:
        parts.append(vevent(uid, day, tz="Europe/Berlin" if zoned else None, summary=summary))
    return calendar(*parts)


@given(events)
def test_split_is_one_resource_per_uid_keeping_every_event(items: list[tuple[str, int, bool, str]]) -> None:
    split = split_feed(feed_of(items))
    assert set(split.uids.values()) == {uid for uid, *_ in items}
    assert sum(r.count("BEGIN:VEVENT") for r in split.resources.values()) == len(items)
    for name, body in split.resources.items():
        assert body.count(f"UID:{split.uids[name]}\r\n") == body.count("BEGIN:VEVENT")
        assert ("BEGIN:VTIMEZONE" in body) == (";TZID=Europe/Berlin" in body)
    assert split_feed(feed_of(items)).resources == split.resources  # deterministic


@given(events, events)
def test_diff_turns_what_is_stored_into_the_feed(before: list, after: list) -> None:  # type: ignore[type-arg]
    old = split_feed(feed_of(before)).resources
    new = split_feed(feed_of(after)).resources
    known = {name: etag_of(text) for name, text in old.items()}
    diff = diff_feed(known, new)
    applied = {name: etag for name, etag in known.items() if name not in diff.removed}
    applied.update(diff.new)
    applied.update(diff.changed)
    assert applied == {name: etag_of(text) for name, text in new.items()}
    assert not set(diff.new) & set(known) and set(diff.changed) <= set(known)
    assert diff.unchanged == sum(1 for n, t in new.items() if known.get(n) == etag_of(t))
    assert diff.empty == (old == new)
