"""What a subscribed ICS feed costs: the first fetch, an unchanged poll, a changed event.

The shared corpus (`--events N` iCloud-shaped resources: singles, weekly series with
overrides, all-day events, their VTIMEZONEs) is published as ONE VCALENDAR by a loopback
publisher with ETag, Last-Modified and gzip, and polled by the daemon's `FeedPoller` into a
real local store and state database. Requests are counted from the publisher's own request
log. Also timed: a 200 with the same bytes (a publisher without validators) and one event
changed. No peer subscribes into a CalDAV store, so the figures stand alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import common

from calmirror import config, credentials
from calmirror.feeds import FeedPoller
from calmirror.home import Home
from calmirror.local.layout import feed_id, mirror_name
from calmirror.local.store import LocalStore
from calmirror.model import FeedRow
from calmirror.state import State
from calmirror.testing.feed_server import FeedServer


def feed_of(resources: list[tuple[str, str]]) -> str:
    """One VCALENDAR holding every resource's components (zones repeated as publishers do)."""
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calmirror bench//feed//EN", "METHOD:PUBLISH"]
    for _, text in resources:
        depth = 0
        for line in text.replace("\r\n", "\n").split("\n"):
            upper = line.upper()
            if upper.startswith("BEGIN:"):
                depth += 1
                if depth >= 2:
                    out.append(line)
            elif upper.startswith("END:"):
                if depth >= 2:
                    out.append(line)
                depth -= 1
            elif depth >= 2 and line:
                out.append(line)
    return "\r\n".join(out) + "\r\nEND:VCALENDAR\r\n"


def run(events: int) -> dict[str, object]:
    resources = common.generate_events(events, 5545, weekly_share=0.15)
    body = feed_of(resources)
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as server:
        root = Path(tmp)
        home = Home(config_file=root / "config.toml", data_dir=root)
        home.ensure()
        state = State(home.state_db)
        store = LocalStore(home.store_dir, credentials.local_account(home).username)
        store.ensure_base()
        server.publish("/feed.ics", body, gzip=True)
        feed = FeedRow("bench", server.url("/feed.ics"), "Bench", 900.0, "full", allow_http=True)
        state.add_feed(feed, feed_id("bench"))
        poller = FeedPoller(state, store, config.Settings(file=home.config_file))
        timings: dict[str, dict[str, object]] = {}

        def poll(label: str, **kw: bool) -> None:
            before = len(server.requests_to())
            current = state.feed("bench")
            assert current is not None
            t0 = time.perf_counter()
            report = poller.poll(current, now=time.time(), **kw)
            took = time.perf_counter() - t0
            log = server.requests_to()[before:]
            timings[label] = {
                "seconds": round(took, 3),
                "requests": len(log),
                "statuses": [r.status for r in log],
                "outcome": report.outcome,
                "added": report.added,
                "updated": report.updated,
                "deleted": report.deleted,
            }

        poll("first fetch")
        mirrored = state.mirror(feed_id("bench"))
        collection = mirror_name(feed_id("bench"))
        token = store.changes(collection, None).token
        poll("unchanged poll (304)")
        idle_writes = store.changes(collection, token).changed
        server.publish("/feed.ics", body, gzip=True, etag=False, last_modified=False)  # no validators: 200 again
        poll("unchanged poll, no validators (200, same bytes)")
        first_uid = next(line for line in body.split("\r\n") if line.startswith("UID:"))
        changed = body.replace("SUMMARY:", "SUMMARY:moved ", 1) if first_uid else body
        server.publish("/feed.ics", changed, gzip=True)
        poll("one event changed (200)")
        poller.close()
        state.close()
        return {
            "events": events,
            "feed_bytes": len(body.encode()),
            "mirrored_resources": mirrored.item_count if mirrored else 0,
            "local_items_changed_by_unchanged_poll": len(idle_writes),
            "polls": timings,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.events)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"feed of {result['events']:,} resources, {int(result['feed_bytes']) / 1e6:.1f} MB "
        f"-> {result['mirrored_resources']} mirrored"
    )
    polls = result["polls"]
    assert isinstance(polls, dict)
    for label, row in polls.items():
        print(
            f"  {label:48} {row['seconds']:>8.3f} s  {row['requests']} request(s) {row['statuses']}  {row['outcome']}"
        )
    print(f"  local items written by the unchanged poll: {result['local_items_changed_by_unchanged_poll']}")


if __name__ == "__main__":
    main()
