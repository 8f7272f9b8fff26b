"""Time-range queries on a mirror from the index give Radicale's answers, over real HTTP.

Two servers on the same store folder: calmirror's `LocalServer` with the time-range index,
and Radicale's own `serve()` with the same storage settings (so both read the same item
cache) but its plain storage. Every calendar-query goes to both; the hrefs, their order,
the ETags and the calendar-data must be identical. Items and queries are generated
(Hypothesis, derandomized): single, all-day and floating events, events without DTEND or
with DURATION, weekly and daily series (open, COUNT, UNTIL) with EXDATEs and moved or
cancelled instances, zones with daylight saving; windows open at either end or both, and
filters that are not a plain window (text-match, prop-filter, VTODO, expand,
limit-recurrence-set, a window on VCALENDAR).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import radicale.config
import radicale.server
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.local import LocalServer, LocalStore, range_answer, range_query
from calmirror.local import server as local_server
from calmirror.local.radicale_config import build_configuration
from calmirror.local.store_lock import lock_for
from calmirror.state.ranges import RangeIndex
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import stamp, vcalendar, vtimezone_for
from tests.contract.servers import free_port, wait_accepting

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
MIRROR = f"/{USER}/icloud-work/"
BASE = dt.datetime(2026, 11, 2, 0, 0)  # a Monday near the machine's "now" and the index's recorded span


@dataclass
class Pair:
    indexed: str
    plain: str
    store: LocalStore
    index: RangeIndex
    server: LocalServer
    http: requests.Session

    def both(self, body: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
        """Both servers' answers; a status other than 207 (Radicale 3.9 answers 500 to `expand`
        on a floating series) must be the same on both and reads as one pseudo-response."""
        answers = []
        bodies: list[bytes] = []
        types: list[str] = []
        for base in (self.indexed, self.plain):
            answer = self.http.request(
                "REPORT",
                base + MIRROR.lstrip("/"),
                data=body.encode(),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                timeout=60,
            )
            if answer.status_code == 207:
                answers.append(responses(answer.content))
                bodies.append(answer.content)  # decoded: Radicale compresses, the index's answer does not
                types.append(answer.headers.get("Content-Type", ""))
            else:
                answers.append([("status", str(answer.status_code))])
        if len(bodies) == 2:  # the same bytes, not only the same parsed responses
            assert bodies[0] == bodies[1] and types[0] == types[1], body
        return answers[0], answers[1]


def responses(body: bytes) -> list[tuple[str, ...]]:
    """Each response as (href, status, etag, calendar-data), in the answer's order."""
    found = []
    for response in ET.fromstring(body).findall(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        status = response.findtext(f"{DAV}propstat/{DAV}status") or response.findtext(f"{DAV}status") or ""
        etag = response.findtext(f".//{DAV}getetag") or ""
        data = response.findtext(f".//{CALDAV}calendar-data") or ""
        found.append((href, status, etag, data))
    return found


def quick_errors(*args: Any, **kwargs: Any) -> radicale.config.Configuration:
    """calmirror's configuration without Radicale's one-second pause before a 500."""
    configuration = build_configuration(*args, **kwargs)
    configuration.update({"server": {"delay_on_error": 0}}, "test")
    return configuration


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    # Trust stamps at once, so the same store is queried through both the checked and the
    # trusted path (the rewrites here always make new files, so every stamp changes).
    monkeypatch.setattr(range_query, "RACY_NS", 0)
    monkeypatch.setattr(local_server, "build_configuration", quick_errors)
    store_dir = tmp_path / "store"
    index = RangeIndex(tmp_path / "ranges.db")
    server = LocalServer(store_dir, port=0, username=USER, password=PASSWORD, range_store=index)
    server.start()
    store = LocalStore(store_dir, USER)
    store.ensure_mirror("work", "Work", None)
    port = free_port()
    configuration = quick_errors(store_dir, port=port, auth_type="none")
    shutdown, shutdown_other = socket.socketpair()
    thread = threading.Thread(target=radicale.server.serve, args=(configuration, shutdown_other), daemon=True)
    thread.start()
    try:
        wait_accepting(port)
        with requests.Session() as http:
            http.auth = (USER, PASSWORD)
            yield Pair(server.url, f"http://127.0.0.1:{port}/", store, index, server, http)
    finally:
        shutdown.close()
        thread.join(10)
        shutdown_other.close()
        server.stop()
        index.close()


# --- generated items --------------------------------------------------------------------

ZONES = st.sampled_from(["UTC", None, "Europe/Berlin", "America/New_York"])
WHEN = st.builds(
    lambda days, quarter: BASE + dt.timedelta(days=days, minutes=15 * quarter), st.integers(-60, 60), st.integers(0, 95)
)
LENGTH = st.sampled_from(
    [dt.timedelta(0), dt.timedelta(minutes=30), dt.timedelta(hours=2), dt.timedelta(days=1, hours=3)]
)


@st.composite
def items(draw: st.DrawFn, n: int) -> tuple[list[str], str]:
    """One resource: head lines (VTIMEZONEs) and VEVENTs, as text."""
    zone = draw(ZONES)
    uid = f"item-{n}@test"
    summary = draw(st.sampled_from(["Standup", "Dentist", "Review", "Lunch"]))
    start = draw(WHEN)
    allday = draw(st.booleans()) and draw(st.booleans())
    first: dt.datetime | dt.date = start.date() if allday else start
    ending = draw(st.sampled_from(["dtend", "dtend", "none", "duration"]))
    length = draw(LENGTH)
    if allday:
        length = dt.timedelta(days=max(1, length.days + 1))
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"SUMMARY:{summary}", f"DTSTART{stamp(first, zone)}"]
    if ending == "dtend":
        lines.append(f"DTEND{stamp(first + length, zone)}")
    elif ending == "duration":
        lines.append(f"DURATION:PT{int(length.total_seconds())}S" if not allday else f"DURATION:P{length.days}D")
    vevents = [lines]
    rule = draw(st.sampled_from([None, "WEEKLY", "WEEKLY", "DAILY"]))
    if rule is not None:
        limit = draw(st.sampled_from(["", ";COUNT=5", ";COUNT=40", ";UNTIL=20270115T000000Z"]))
        lines.append(f"RRULE:FREQ={rule}{limit}")
        step = dt.timedelta(weeks=1) if rule == "WEEKLY" else dt.timedelta(days=1)
        instances = draw(st.lists(st.integers(1, 12), max_size=3, unique=True))
        for k in instances[:1]:
            lines.append(f"EXDATE{stamp(first + k * step, zone)}")
        for k in instances[1:]:
            original = first + k * step
            moved = original + draw(
                st.sampled_from([dt.timedelta(hours=2), dt.timedelta(days=-20), dt.timedelta(days=30)])
            )
            if allday:
                moved = original + dt.timedelta(days=draw(st.sampled_from([-20, 1, 30])))
            override = [
                f"UID:{uid}",
                "DTSTAMP:20261101T000000Z",
                f"SUMMARY:{summary} (moved)",
                f"RECURRENCE-ID{stamp(original, zone)}",
                f"DTSTART{stamp(moved, zone)}",
            ]
            if ending == "dtend":
                override.append(f"DTEND{stamp(moved + length, zone)}")
            vevents.append(override)
    return vevents, zone or ""


@st.composite
def calendars(draw: st.DrawFn) -> list[tuple[str, str]]:
    count = draw(st.integers(1, 10))
    found = []
    for n in range(count):
        vevents, zone = draw(items(n))
        head = vtimezone_for(zone) if zone not in ("", "UTC") else []
        found.append((f"item-{n}.ics", vcalendar(*vevents, head=head)))
    return found


# --- generated queries ------------------------------------------------------------------


def _utc(moment: dt.datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%S}Z"


WINDOW = st.tuples(
    st.one_of(st.none(), WHEN),
    st.sampled_from([dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(weeks=1), dt.timedelta(weeks=9)]),
    st.booleans(),
)


def time_range(window: tuple[dt.datetime | None, dt.timedelta, bool]) -> str:
    start, length, open_end = window
    attrs = ""
    if start is not None:
        attrs += f' start="{_utc(start)}"'
        if not open_end:
            attrs += f' end="{_utc(start + length)}"'
    elif not open_end:
        attrs += f' end="{_utc(BASE + length)}"'
    return f"<c:time-range{attrs}/>"


def query(filter_xml: str, data: str = "<c:calendar-data/>", etag: str = "<d:getetag/>") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop>{etag}{data}</d:prop><c:filter>{filter_xml}</c:filter></c:calendar-query>"
    )


#: Property lists of plain queries: the two written without Radicale's tree in either order
#: or alone, and two that Radicale answers (another property; calendar-data subsetting).
PROPS = st.sampled_from(
    [
        ("<d:getetag/>", "<c:calendar-data/>"),
        ("<d:getetag/>", "<c:calendar-data/>"),
        ("<c:calendar-data/>", "<d:getetag/>"),
        ("<d:getetag/>", ""),
        ("", "<c:calendar-data/>"),
        ("<d:getetag/><d:getcontenttype/>", "<c:calendar-data/>"),
        ("<d:getetag/>", '<c:calendar-data><c:comp name="VCALENDAR"/></c:calendar-data>'),
    ]
)


def event_filter(inner: str) -> str:
    return f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">{inner}</c:comp-filter></c:comp-filter>'


@st.composite
def queries(draw: st.DrawFn) -> str:
    window = time_range(draw(WINDOW))
    shape = draw(
        st.sampled_from(["plain", "plain", "plain", "text", "prop", "todo", "expand", "limit", "calendar", "lower"])
    )
    if shape == "plain":
        etag, data = draw(PROPS)
        return query(event_filter(window), data, etag)
    if shape == "lower":
        return query(
            f'<c:comp-filter name="vcalendar"><c:comp-filter name="vevent">{window}</c:comp-filter></c:comp-filter>'
        )
    if shape == "text":
        text = draw(st.sampled_from(["moved", "Standup", "nothing"]))
        match = (
            '<c:prop-filter name="SUMMARY">'
            f'<c:text-match collation="i;ascii-casemap">{text}</c:text-match></c:prop-filter>'
        )
        return query(event_filter(window + match))
    if shape == "prop":
        return query(event_filter(window + '<c:prop-filter name="DTEND"><c:is-not-defined/></c:prop-filter>'))
    if shape == "todo":
        return query(
            f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO">{window}</c:comp-filter></c:comp-filter>'
        )
    if shape == "calendar":
        return query(f'<c:comp-filter name="VCALENDAR">{window}</c:comp-filter>')
    start = BASE + dt.timedelta(days=draw(st.integers(-30, 30)))
    span = f'start="{_utc(start)}" end="{_utc(start + dt.timedelta(days=10))}"'
    element = "expand" if shape == "expand" else "limit-recurrence-set"
    return query(event_filter(f"<c:time-range {span}/>"), f"<c:calendar-data><c:{element} {span}/></c:calendar-data>")


def test_generated_queries_answer_as_radicale(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    used = {"index": 0, "recorded": 0, "rendered": 0}
    from_index, record = range_query.IndexedCollection._from_index, range_query.IndexedCollection._record
    render = range_answer._render

    def counted_render(*args: Any) -> Any:
        used["rendered"] += 1
        return render(*args)

    def counted_from_index(self: range_query.IndexedCollection, *args: Any) -> Any:
        used["index"] += 1
        return from_index(self, *args)

    def counted_record(self: range_query.IndexedCollection, *args: Any) -> Any:
        used["recorded"] += 1
        return record(self, *args)

    monkeypatch.setattr(range_query.IndexedCollection, "_from_index", counted_from_index)
    monkeypatch.setattr(range_query.IndexedCollection, "_record", counted_record)
    monkeypatch.setattr(range_answer, "_render", counted_render)

    @settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calendars(), st.lists(queries(), min_size=3, max_size=6))
    def check(resources: list[tuple[str, str]], bodies: list[str]) -> None:
        refused = pair.store.apply_mirror("work", resources, [href for href in written if href not in dict(resources)])
        assert refused == []
        written[:] = [href for href, _ in resources]
        for body in bodies:
            indexed, plain = pair.both(body)
            assert indexed == plain, body

    check()
    # The index answered most queries, and decided series from their recorded occurrences;
    # the plain ones were written without Radicale's XML tree (`range_answer`).
    assert used["index"] > 50 and used["recorded"] > 5 and used["rendered"] > 30, used


def week(start: str = "20261130T000000Z", end: str = "20261207T000000Z") -> str:
    return query(event_filter(f'<c:time-range start="{start}" end="{end}"/>'))


def single(uid: str, start: dt.datetime, summary: str = "Call") -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"SUMMARY:{summary}"]
    lines += [f"DTSTART{stamp(start, 'UTC')}", f"DTEND{stamp(start + dt.timedelta(hours=1), 'UTC')}"]
    return vcalendar(lines)


def weekly(uid: str) -> str:
    lines = [f"UID:{uid}", "DTSTAMP:20261101T000000Z", "SUMMARY:Weekly", "RRULE:FREQ=WEEKLY"]
    lines += [f"DTSTART{stamp(dt.datetime(2026, 1, 5, 9), 'UTC')}", f"DTEND{stamp(dt.datetime(2026, 1, 5, 10), 'UTC')}"]
    return vcalendar(lines)


def hrefs(found: list[tuple[str, ...]]) -> list[str]:
    return sorted(entry[0].rsplit("/", 1)[-1] for entry in found)


def test_an_item_changed_behind_the_index_is_answered_as_radicale(pair: Pair) -> None:
    """The crash window: a file changed after its row was written (same name, same size, its
    mtime put back) and a file deleted with its row left behind."""
    inside, outside = dt.datetime(2026, 12, 2, 9), dt.datetime(2026, 12, 20, 9)
    pair.store.apply_mirror(
        "work", [("a.ics", single("a", inside)), ("b.ics", single("b", inside)), ("w.ics", weekly("w"))], []
    )
    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["a.ics", "b.ics", "w.ics"]

    folder = pair.store.collection_dir("icloud-work")
    before = (folder / "a.ics").stat()
    moved = single("a", outside)
    assert len(moved) == before.st_size
    (folder / "a.ics.new").write_text(moved, newline="")
    (folder / "a.ics.new").replace(folder / "a.ics")
    os.utime(folder / "a.ics", ns=(before.st_atime_ns, before.st_mtime_ns))
    (folder / "b.ics").unlink()

    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["w.ics"]
    indexed, plain = pair.both(week("20261218T000000Z", "20261225T000000Z"))
    assert indexed == plain and hrefs(indexed) == ["a.ics", "w.ics"]


def test_a_lost_or_broken_index_is_rebuilt(pair: Pair, tmp_path: Path) -> None:
    pair.store.apply_mirror("work", [("a.ics", single("a", dt.datetime(2026, 12, 2, 9))), ("w.ics", weekly("w"))], [])
    first, _ = pair.both(week())
    pair.index.forget("icloud-work")
    again, plain = pair.both(week())
    assert again == first == plain and hrefs(again) == ["a.ics", "w.ics"]

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    fresh = RangeIndex(broken)  # moved aside and started afresh instead of failing
    try:
        assert fresh.stamps("icloud-work") == {}
    finally:
        fresh.close()


def test_occurrences_are_recorded_once_per_item_version(pair: Pair) -> None:
    """The weekly series spans the week: its occurrences decide it from the second query on,
    and a new version of it (moved to another weekday) is decided from its own."""
    pair.store.apply_mirror("work", [("w.ics", weekly("w"))], [])
    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["w.ics"]
    window = [
        int(dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()),
        int(dt.datetime(2026, 12, 7, tzinfo=dt.UTC).timestamp()),
    ]
    (candidate,) = pair.index.candidates("icloud-work", "VEVENT", *window)
    assert candidate.href == "w.ics" and not candidate.easy and candidate.decided is True

    skipping = weekly("w").replace("RRULE:FREQ=WEEKLY", "RRULE:FREQ=WEEKLY;INTERVAL=2")
    pair.store.apply_mirror("work", [("w.ics", skipping)], [])
    # Every other Monday from 5 January: not in the week of 30 November, in the next one.
    for start, end, expected in (
        ("20261130T000000Z", "20261207T000000Z", []),
        ("20261207T000000Z", "20261214T000000Z", ["w.ics"]),
    ):
        indexed, plain = pair.both(week(start, end))
        assert indexed == plain and hrefs(indexed) == expected
    (candidate,) = pair.index.candidates("icloud-work", "VEVENT", *window)
    assert candidate.decided is False


def test_warming_records_the_series_before_any_query(pair: Pair) -> None:
    pair.store.apply_mirror("work", [("w.ics", weekly("w")), ("a.ics", single("a", dt.datetime(2026, 12, 2, 9)))], [])
    assert pair.server.warm_ranges("icloud-work", lambda: False) == 1  # the series; the single event needs none
    assert pair.server.warm_ranges("icloud-work", lambda: False) == 0  # nothing new
    assert pair.server.warm_ranges("appointments", lambda: False) == 0  # only mirrors have an index
    window = [
        int(dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()),
        int(dt.datetime(2026, 12, 7, tzinfo=dt.UTC).timestamp()),
    ]
    decided = {c.href: (c.easy, c.decided) for c in pair.index.candidates("icloud-work", "VEVENT", *window)}
    assert decided == {"w.ics": (False, True), "a.ics": (True, None)}
    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["a.ics", "w.ics"]


def test_warming_a_mirror_never_waits_on_the_store_lock(pair: Pair) -> None:
    """The first check of a large mirror reads every item: under a shared store lock it kept
    client PUTs waiting for over a minute at 100,000 events."""
    pair.store.apply_mirror("work", [("w.ics", weekly("w"))], [])
    warmed: list[int] = []
    with lock_for(pair.store.store_dir).hold("w"):  # a client's write in progress
        warming = threading.Thread(target=lambda: warmed.append(pair.server.warm_ranges("icloud-work", lambda: False)))
        warming.start()
        warming.join(30)
        assert warmed == [1]  # recorded the series while the write lock was held


def test_rows_of_a_removed_mirror_are_forgotten(pair: Pair) -> None:
    pair.store.apply_mirror("work", [("a.ics", single("a", dt.datetime(2026, 12, 2, 9)))], [])
    pair.both(week())
    assert set(pair.index.stamps("icloud-work")) == {"a.ics"}
    pair.index.keep_only({"icloud-work", "icloud-home"})
    assert set(pair.index.stamps("icloud-work")) == {"a.ics"}
    pair.store.delete_mirror("work")
    assert pair.server.warm_ranges("icloud-work", lambda: False) == 0
    assert pair.index.stamps("icloud-work") == {}

    pair.store.ensure_mirror("work", "Work", None)
    pair.store.apply_mirror("work", [("b.ics", single("b", dt.datetime(2026, 12, 3, 9)))], [])
    pair.both(week())
    pair.index.keep_only({"icloud-home"})
    assert pair.index.stamps("icloud-work") == {}


def test_a_settled_folder_is_listed_again_only_when_an_item_is_renamed_into_place_or_removed(pair: Pair) -> None:
    """The last listing of a settled mirror folder is used again, and any write calmirror makes
    (an item renamed into place, one removed) moves the folder's stamp, so it is seen."""
    pair.store.apply_mirror("work", [("a.ics", single("a", dt.datetime(2026, 12, 2, 9))), ("w.ics", weekly("w"))], [])
    folder = pair.store.collection_dir("icloud-work")
    old = 1_600_000_000_000_000_000

    def settle() -> None:
        for path in (*folder.iterdir(), folder):
            if not path.name.startswith("."):
                os.utime(path, ns=(old, old))

    settle()
    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["a.ics", "w.ics"]
    assert str(folder) in range_query._listings  # kept: the folder had settled
    pair.store.apply_mirror("work", [("b.ics", single("b", dt.datetime(2026, 12, 3, 9)))], ["a.ics"])
    indexed, plain = pair.both(week())
    assert indexed == plain and sorted(hrefs(indexed)) == ["b.ics", "w.ics"]
    settle()
    pair.both(week())
    (folder / "w.ics").unlink()  # removed behind calmirror's back: the folder's stamp moves too
    indexed, plain = pair.both(week())
    assert indexed == plain and hrefs(indexed) == ["b.ics"]


def test_a_settled_mirror_is_checked_once_and_its_items_read_once_per_file(pair: Pair) -> None:
    """Queries of a mirror nothing was written to since skip the check of every row and reuse
    the items they read; an item renamed into place is a new file, so it is read and answered."""
    pair.store.apply_mirror("work", [("a.ics", single("a", dt.datetime(2026, 12, 2, 9))), ("w.ics", weekly("w"))], [])
    folder = pair.store.collection_dir("icloud-work")
    old = 1_600_000_000_000_000_000
    for path in (*folder.iterdir(), folder):
        if not path.name.startswith("."):
            os.utime(path, ns=(old, old))
    checks: list[str] = []
    stamps = pair.index.stamps

    def counted(collection: str) -> dict[str, tuple[tuple[int, int, int, int], bool]]:
        checks.append(collection)
        return stamps(collection)

    pair.index.stamps = counted  # type: ignore[method-assign]
    first, plain = pair.both(week())
    assert first == plain and hrefs(first) == ["a.ics", "w.ics"]
    assert pair.both(week()) == (first, plain)
    assert checks == ["icloud-work"]  # the second query checked nothing
    assert (str(folder), "a.ics") in range_query._items

    pair.store.apply_mirror("work", [("a.ics", single("a", dt.datetime(2026, 12, 2, 9), summary="Moved"))], [])
    indexed, plain = pair.both(week())
    assert indexed == plain and "SUMMARY:Moved" in {h.rsplit("/", 1)[-1]: d for h, _s, _e, d in indexed}["a.ics"]
    assert checks == ["icloud-work", "icloud-work"]
