"""Time-range queries on a mirror from the index give Radicale's answers, over real HTTP, where
the index could go wrong: an item changed or deleted behind it, a lost or broken index, a
series recorded once per version, warming before any query and beside a writer, a removed
mirror, and how often a settled folder is listed and read. The two servers: `range_pair`;
generated items and queries: `test_range_query_generated`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from calmirror.local import range_query
from calmirror.local.store_lock import lock_for
from calmirror.state.ranges import RangeIndex
from calmirror.testing.ical import stamp, vcalendar
from tests.integration.range_pair import Pair, event_filter, query


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
