"""`busy/` through the running daemon over real HTTP: every merged busy block of every source,
without titles, kept up to date after a mirror pass and a local write, syncable, read-only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import icalendar
import requests

from calmirror.availability.busy_calendar import horizon
from calmirror.emulator import Emulator
from tests.helpers import Running, busy_json, event, wait_for
from tests.integration.test_availability_server import daemon_with, report_busy

NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)  # the sample calendars are busy in December 2026
WINDOW = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 15, tzinfo=UTC))  # what busy_json asks by default
DAV = "{DAV:}"
SYNC = (
    '<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
    "<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
    "<D:prop><D:getetag/></D:prop></D:sync-collection>"
)

Block = tuple[datetime, datetime]


def busy_texts(run: Running) -> dict[str, str]:
    """Every item of busy/, listed and fetched the way a client does (sync-collection, GET)."""
    _, hrefs = sync(run, "")
    texts = {}
    for href in hrefs:
        answer = requests.get(run.url.rstrip("/") + href, auth=run.auth, timeout=10)
        if answer.status_code == 200:
            texts[href] = answer.text
    return texts


def settled_texts(run: Running) -> dict[str, str]:
    """busy/ once it stopped changing: its first refresh may run on the real clock before the
    test's clock is set, and the mirrors' first passes add blocks after it."""
    seen: list[dict[str, str]] = [{}]

    def unchanged() -> bool:
        now = busy_texts(run)
        same = bool(now) and now == seen[-1]
        seen.append(now)
        return same

    assert wait_for(unchanged, 60, every=1.0)
    return seen[-1]


def blocks(run: Running) -> list[Block]:
    found = []
    for text in busy_texts(run).values():
        for component in icalendar.Calendar.from_ical(text).walk("VEVENT"):
            found.append((component["DTSTART"].dt, component["DTEND"].dt))
    return sorted(found)


def clipped(found: list[Block], window: Block = WINDOW) -> list[Block]:
    return [(max(s, window[0]), min(e, window[1])) for s, e in found if s < window[1] and e > window[0]]


def sync(run: Running, token: str) -> tuple[str, list[str]]:
    """One sync-collection REPORT on busy/: the new token and the hrefs reported."""
    answer = requests.request(
        "REPORT",
        run.collection_url("busy"),
        data=SYNC.format(token=token),
        auth=run.auth,
        timeout=10,
        headers={"Depth": "1", "Content-Type": "application/xml"},
    )
    assert answer.status_code == 207, answer.text[:300]
    root = ElementTree.fromstring(answer.content)
    hrefs = [str(r.findtext(f"{DAV}href")) for r in root.findall(f"{DAV}response")]
    return str(root.findtext(f"{DAV}sync-token")), hrefs


def started(tmp_path: Path, emu: Emulator) -> Running:
    run = daemon_with(tmp_path, emu, "off")
    run.daemon.busy_calendar.clock = lambda: NOW
    run.daemon.busy_calendar.mark_changed()
    return run


def test_busy_holds_the_merged_blocks_without_titles_and_follows_changes(tmp_path: Path, emu: Emulator) -> None:
    run = started(tmp_path, emu)
    try:
        combined = busy_json(run.home.data_dir, "--no-daemon")
        assert combined
        assert wait_for(lambda: clipped(blocks(run)) == combined, 30)
        texts = busy_texts(run)
        assert all("SUMMARY:Busy\r\n" in text for text in texts.values())
        summaries = {
            str(c.get("SUMMARY")) for text in texts.values() for c in icalendar.Calendar.from_ical(text).walk("VEVENT")
        }
        assert summaries == {"Busy"}
        assert len({c for text in texts.values() for c in text.splitlines() if c.startswith("UID:")}) == len(texts)
        start, end = horizon(NOW)
        assert all(start <= s and e <= end for s, e in blocks(run))
        assert report_busy(run, "busy") == combined
        token, _ = sync(run, "")

        # a local write into blocked/ at a free time
        lunch = (datetime(2026, 12, 4, 12, tzinfo=UTC), datetime(2026, 12, 4, 13, tzinfo=UTC))
        assert not clipped(combined, lunch)
        put = run.put(
            "lunch.ics", event("lunch-1", "Lunch", start="20261204T120000Z", end="20261204T130000Z"), "blocked"
        )
        assert put.status_code == 201
        assert wait_for(lambda: lunch in blocks(run), 30)
        token, changed = sync(run, token)
        assert [h.rsplit("/", 1)[-1] for h in changed] == ["busy-20261204T120000Z-20261204T130000Z.ics"]

        # an appointment right after it: the two merge into one block, the old one goes
        call = run.put("call.ics", event("call-1", "Call", start="20261204T130000Z", end="20261204T140000Z"))
        assert call.status_code == 201
        merged = (lunch[0], datetime(2026, 12, 4, 14, tzinfo=UTC))
        assert wait_for(lambda: merged in blocks(run) and lunch not in blocks(run), 30)
        token, changed = sync(run, token)
        assert sorted(h.rsplit("/", 1)[-1] for h in changed) == [
            "busy-20261204T120000Z-20261204T130000Z.ics",  # reported gone
            "busy-20261204T120000Z-20261204T140000Z.ics",
        ]

        # a change in iCloud reaches busy/ after a mirror pass
        work = emu.calendar_id("Work")
        emu.put_item(work, "late.ics", event("late-1", "Late review", start="20261210T200000Z", end="20261210T210000Z"))
        run.daemon.mirror_wake.set()
        late = (datetime(2026, 12, 10, 20, tzinfo=UTC), datetime(2026, 12, 10, 21, tzinfo=UTC))
        assert wait_for(lambda: late in blocks(run), 30)
        assert late in report_busy(run, "busy") and late in report_busy(run, "icloud-work")
        assert late not in report_busy(run, "icloud-home")
        assert clipped(blocks(run)) == report_busy(run, "busy")
    finally:
        run.stop()


def test_clients_cannot_write_into_busy(tmp_path: Path, emu: Emulator) -> None:
    run = started(tmp_path, emu)
    try:
        before = settled_texts(run)
        mine = run.put("mine.ics", event("mine-1", "Mine", start="20261202T080000Z", end="20261202T090000Z"), "busy")
        assert mine.status_code == 403 and "read-only" in mine.text
        some = next(iter(before)).rsplit("/", 1)[-1]
        assert run.delete(some, "busy").status_code == 403
        assert busy_texts(run) == before
    finally:
        run.stop()
