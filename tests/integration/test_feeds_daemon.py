"""A subscribed feed through the real daemon: it is polled, mirrored into feed-<name>/, and its
busy time is counted by availability, the free-busy REPORT and the double-booking guard."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from calmirror.availability.sources import from_vfreebusy
from calmirror.home import Home
from calmirror.local.layout import feed_id
from calmirror.model import FeedRow
from calmirror.state import State
from calmirror.testing.feed_server import FeedServer, feed_text
from tests.helpers import busy_json, event, start_daemon, status_json, wait_for

ROTA = [("shift-1", "20261202T090000Z", "20261202T120000Z"), ("shift-2", "20261203T130000Z", "20261203T170000Z")]
SHIFTS = [
    (datetime(2026, 12, 2, 9, tzinfo=UTC), datetime(2026, 12, 2, 12, tzinfo=UTC)),
    (datetime(2026, 12, 3, 13, tzinfo=UTC), datetime(2026, 12, 3, 17, tzinfo=UTC)),
]
SHIFT_3 = (datetime(2026, 12, 4, 8, tzinfo=UTC), datetime(2026, 12, 4, 10, tzinfo=UTC))
FREEBUSY = (
    '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20261201T000000Z" end="20261208T000000Z"/></C:free-busy-query>'
)


def test_feed_blocks_time_through_the_running_daemon(tmp_path: Path) -> None:
    home = Home(config_file=tmp_path / "home" / "config.toml", data_dir=tmp_path / "home")
    home.ensure()
    home.config_file.write_text('[server]\nport = 0\n\n[availability]\nguard = "reject"\n')
    with FeedServer() as server:
        server.publish("/rota.ics", feed_text(ROTA))
        state = State(home.state_db)
        url = server.url("/rota.ics")
        state.add_feed(FeedRow("rota", url, "Rota", 900.0, "full", allow_http=True), feed_id("rota"))
        state.close()
        run = start_daemon(home)
        try:
            assert wait_for(
                lambda: (run.state().mirror(feed_id("rota")) or object()).__dict__.get("item_count") == 2, 20
            )
            listing = requests.request(
                "PROPFIND", run.collection_url("feed-rota"), auth=run.auth, headers={"Depth": "1"}, timeout=10
            )
            assert listing.status_code == 207 and "shift-1.ics" in listing.text
            assert (
                run.put(
                    "x.ics", event("x", "Mine", start="20261202T100000Z", end="20261202T110000Z"), "feed-rota"
                ).status_code
                == 403
            )
            answer = requests.request(
                "REPORT",
                run.collection_url("feed-rota"),
                data=FREEBUSY,
                auth=run.auth,
                timeout=30,
                headers={"Depth": "1", "Content-Type": "application/xml"},
            )
            assert answer.status_code == 200 and from_vfreebusy(answer.content) == SHIFTS
            busy = busy_json(home, end="2026-12-08T00:00")
            assert busy == SHIFTS
            clash = run.put("c.ics", event("clash", "Clash", start="20261203T150000Z", end="20261203T160000Z"))
            assert clash.status_code == 409 and "busy" in clash.text
            assert (
                run.put("ok.ics", event("ok", "Fine", start="20261203T180000Z", end="20261203T190000Z")).status_code
                == 201
            )
            mirrors = {m["id"]: m for m in status_json(home)["mirrors"]}
            assert mirrors["feed:rota"]["local_collection"] == "feed-rota" and mirrors["feed:rota"]["kind"] == "feed"
            assert mirrors["feed:rota"]["name"] == "Rota" and mirrors["feed:rota"]["copies"]["exact"] == 2
            assert len(server.requests_to("/rota.ics")) == 1  # one poll so far: the interval is 15 minutes
            # The idle pass, as the daemon makes it when the feed is due: one request, a 304, nothing written.
            watch = run.state()
            generation = watch.mirror(feed_id("rota")).generation  # type: ignore[union-attr]
            watch.update_feed("rota", next_poll=0.0)
            run.daemon.feeds_wake.set()
            assert wait_for(lambda: len(server.requests_to("/rota.ics")) == 2, 20)
            assert server.requests_to("/rota.ics")[-1].status == 304
            assert wait_for(lambda: (watch.feed("rota") or object()).__dict__.get("next_poll", 0) > 0, 10)
            assert watch.mirror(feed_id("rota")).generation == generation  # type: ignore[union-attr]
            assert len(server.requests_to("/rota.ics")) == 2
            watch.close()
        finally:
            run.stop()


def test_a_hanging_feed_does_not_hold_up_the_others(tmp_path: Path) -> None:
    """Feeds are fetched by a pool: one publisher that answers only after the feed timeout
    holds one worker, while another feed is polled at its own interval and its change mirrored."""
    home = Home(config_file=tmp_path / "home" / "config.toml", data_dir=tmp_path / "home")
    home.ensure()
    home.config_file.write_text("[server]\nport = 0\n\n[feeds]\ntimeout = 15\n")
    with FeedServer() as server:
        server.publish("/slow.ics", feed_text(ROTA), delay=60.0)  # hangs past the timeout
        server.publish("/rota.ics", feed_text(ROTA))
        state = State(home.state_db)
        # Named to come first: polled one after the other, the hanging one would hold up the rota.
        state.add_feed(FeedRow("a-slow", server.url("/slow.ics"), "Slow", 900.0, "full", True), feed_id("a-slow"))
        state.add_feed(FeedRow("rota", server.url("/rota.ics"), "Rota", 2.0, "full", True), feed_id("rota"))
        run = start_daemon(home)
        try:
            assert wait_for(lambda: (state.mirror(feed_id("rota")) or object()).__dict__.get("item_count") == 2, 20)
            server.change("/rota.ics", feed_text([*ROTA, ("shift-3", "20261204T080000Z", "20261204T100000Z")]))
            changed_at = time.monotonic()

            def mirrored() -> bool:
                return "shift-3" in {e.uid for e in state.mirror_items(feed_id("rota")).values()}

            assert wait_for(mirrored, 20)
            seen_after = time.monotonic() - changed_at
            slow = state.feed("a-slow")
            assert slow is not None and slow.last_poll is None, "the hanging feed was not still being fetched"
            assert seen_after < 2.0 + 8.0  # within its 2 s interval, plus a loaded machine's slack
            assert len(server.requests_to("/rota.ics")) >= 2
            # The hanging one ends at its own timeout: an error of its own, its own next poll.
            assert wait_for(lambda: (state.feed("a-slow") or slow).last_error is not None, 40)
            ended = state.feed("a-slow")
            assert ended is not None and ended.last_poll is not None and ended.next_poll >= ended.last_poll + 900.0
            assert (state.feed("rota") or slow).last_error is None
            assert busy_json(home, end="2026-12-08T00:00") == [*SHIFTS, SHIFT_3]
        finally:
            run.stop()
            state.close()
