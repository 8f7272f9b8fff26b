"""Subscribed ICS feeds against a real HTTP publisher on loopback, a real local store and
real SQLite: conditional GET, gzip, redirects, limits, the emptied-feed rail, the request
budget, and busy time counted like an iCloud mirror's."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calmirror import config, credentials
from calmirror.availability.sources import BusySources
from calmirror.errors import FeedError, FeedRedirectRefused, FeedTooLarge, FeedURLRefused, Unavailable, Unreachable
from calmirror.feeds import FeedPoller
from calmirror.home import Home
from calmirror.local.layout import feed_id, mirror_name
from calmirror.local.store import LocalStore
from calmirror.model import FeedRow
from calmirror.remote.feed import FeedFetcher, normalise_url
from calmirror.state import State
from calmirror.testing.feed_server import FeedServer, feed_text

ROTA = [
    ("shift-1", "20261202T090000Z", "20261202T120000Z"),
    ("shift-2", "20261203T130000Z", "20261203T170000Z"),
    ("shift-3", "20261204T080000Z", "20261204T100000Z"),
]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


Parts = tuple[State, LocalStore, config.Settings]


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    home = Home(config_file=tmp_path / "config.toml", data_dir=tmp_path)
    home.ensure()
    state = State(home.state_db)
    store = LocalStore(home.store_dir, credentials.local_account(home).username)
    store.ensure_base()
    yield state, store, config.Settings(file=home.config_file)
    state.close()


def subscribe(state: State, url: str, name: str = "rota", privacy: str = "full") -> FeedRow:
    feed = FeedRow(name, normalise_url(url, allow_http=True), name, 900.0, privacy, allow_http=True)
    state.add_feed(feed, feed_id(name))
    return feed


def fresh(state: State, name: str = "rota") -> FeedRow:
    feed = state.feed(name)
    assert feed is not None
    return feed


def local_texts(store: LocalStore, name: str = "rota") -> dict[str, str]:
    return dict(store.items(mirror_name(feed_id(name))))


# --- the fetcher alone -------------------------------------------------------------------


def two_feeds(server: FeedServer, parts: Parts) -> FeedPoller:
    """Feeds `rota` (ROTA) and `other` (its first event), subscribed and polled once."""
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    server.publish("/other.ics", feed_text(ROTA[:1]))
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=0.0)
    poller.poll(subscribe(state, server.url("/other.ics"), name="other"), now=0.0)
    return poller


def test_conditional_get_with_etag_and_last_modified(server: FeedServer) -> None:
    server.publish("/rota.ics", feed_text(ROTA))
    server.publish("/lm.ics", feed_text(ROTA), etag=False)
    fetcher = FeedFetcher()
    first = fetcher.fetch(server.url("/rota.ics"), allow_http=True)
    assert first.body is not None and "shift-2" in first.body and first.etag
    again = fetcher.fetch(server.url("/rota.ics"), etag=first.etag, allow_http=True)
    assert again.body is None and again.requests == 1
    assert server.requests_to("/rota.ics")[-1].headers["If-None-Match"] == first.etag
    by_date = fetcher.fetch(server.url("/lm.ics"), allow_http=True)
    assert by_date.etag is None and by_date.last_modified
    unchanged = fetcher.fetch(server.url("/lm.ics"), last_modified=by_date.last_modified, allow_http=True)
    assert unchanged.body is None
    assert server.requests_to("/lm.ics")[-1].status == 304


def test_gzip_is_asked_for_and_decoded(server: FeedServer) -> None:
    text = feed_text(ROTA * 50)
    server.publish("/rota.ics", text, gzip=True)
    got = FeedFetcher().fetch(server.url("/rota.ics"), allow_http=True)
    assert got.body == text
    assert got.size < len(text.encode()) / 3  # the compressed bytes went over the wire
    assert "gzip" in server.requests_to("/rota.ics")[0].headers["Accept-Encoding"]


def test_schemes_webcal_http_and_file(server: FeedServer) -> None:
    assert normalise_url("webcal://example.com/a.ics", allow_http=False) == "https://example.com/a.ics"
    with pytest.raises(FeedURLRefused, match="--allow-http"):
        normalise_url("http://example.com/a.ics", allow_http=False)
    for url in ("file:///etc/passwd", "ftp://example.com/a.ics", "data:text/calendar,x"):
        with pytest.raises(FeedURLRefused):
            normalise_url(url, allow_http=True)


def test_redirects_followed_within_http_at_most_five(server: FeedServer) -> None:
    server.publish("/final.ics", feed_text(ROTA))
    for i in range(5):
        server.redirect(f"/hop{i}", f"/hop{i + 1}" if i < 4 else "/final.ics", status=301 if i % 2 else 302)
    got = FeedFetcher().fetch(server.url("/hop0"), allow_http=True)
    assert got.body is not None and got.requests == 6
    server.redirect("/six", "/hop0")
    with pytest.raises(FeedRedirectRefused, match="more than 5"):
        FeedFetcher().fetch(server.url("/six"), allow_http=True)
    server.redirect("/to-file", "file:///etc/passwd")
    with pytest.raises(FeedRedirectRefused, match="only http") as refused:
        FeedFetcher().fetch(server.url("/to-file"), allow_http=True)
    assert "passwd" not in refused.value.message


def test_credentials_go_only_to_the_feeds_own_host(server: FeedServer) -> None:
    with FeedServer() as other:
        other.publish("/moved.ics", feed_text(ROTA))
        server.publish("/private.ics", feed_text(ROTA), auth=("ann", "s3cret"))
        server.redirect("/old.ics", "/private.ics")
        server.redirect("/away.ics", other.url("/moved.ics"))
        got = FeedFetcher().fetch(server.url("/old.ics", userinfo="ann:s3cret"), allow_http=True)
        assert got.body is not None and "shift-1" in got.body
        assert server.requests_to("/private.ics")[0].headers["Authorization"].startswith("Basic ")
        moved = FeedFetcher().fetch(server.url("/away.ics", userinfo="ann:s3cret"), allow_http=True)
        assert moved.body is not None
        assert "Authorization" in server.requests_to("/away.ics")[0].headers
        assert "Authorization" not in other.requests_to("/moved.ics")[0].headers
        with pytest.raises(FeedError, match="401; the publisher wants a user name and password"):
            FeedFetcher().fetch(server.url("/private.ics", userinfo="ann:wrong"), allow_http=True)


def test_503_with_retry_after(server: FeedServer) -> None:
    server.fail("/rota.ics", 503, retry_after="1800")
    with pytest.raises(Unavailable) as busy:
        FeedFetcher().fetch(server.url("/rota.ics"), allow_http=True)
    assert busy.value.retry_after == 1800 and busy.value.status == 503


def test_size_limit_as_sent_and_once_decompressed(server: FeedServer) -> None:
    big = feed_text(ROTA) + "X" * (30 * 1024 * 1024)  # a 30 MB feed
    server.publish("/big.ics", big)
    with pytest.raises(FeedTooLarge) as too_large:
        FeedFetcher().fetch(server.url("/big.ics"), allow_http=True)
    assert too_large.value.limit_bytes == 20 * 1024 * 1024
    # A gzip bomb: 30 MB of zeros in a few tens of kilobytes.
    server.publish("/bomb.ics", b"\0" * (30 * 1024 * 1024), gzip=True)
    assert len(gzip.compress(b"\0" * (30 * 1024 * 1024), compresslevel=1)) < 1024 * 1024
    with pytest.raises(FeedTooLarge):
        FeedFetcher().fetch(server.url("/bomb.ics"), allow_http=True)
    small = FeedFetcher(max_bytes=1000)
    server.publish("/rota.ics", feed_text(ROTA * 20))
    with pytest.raises(FeedTooLarge):
        small.fetch(server.url("/rota.ics"), allow_http=True)


# --- polling into the local store ----------------------------------------------------------


def test_first_poll_mirrors_the_feed_read_only_by_uid(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    feed = subscribe(state, server.url("/rota.ics"))
    poller = FeedPoller(state, store, settings)
    report = poller.poll(feed, now=1000.0)
    assert (report.outcome, report.added, report.requests) == ("changed", 3, 1)
    texts = local_texts(store)
    assert len(texts) == 3 and all("X-CALMIRROR" in t for t in texts.values())
    assert all("METHOD:" not in t for t in texts.values())
    row = state.mirror(feed_id("rota"))
    assert row is not None and row.item_count == 3 and row.slug == "feed:rota"
    # the exact text of each resource is kept for busy time
    kept = state.mirror_texts(feed_id("rota"))
    assert any("UID:shift-2" in t and "SUMMARY:Shift shift-2" in t for t in kept.values())
    assert fresh(state).next_poll == 1000.0 + 900.0


def test_unchanged_feed_costs_one_request_and_writes_nothing(server: FeedServer, parts: Parts) -> None:
    """The request budget: an unchanged feed is one conditional GET answered 304, and the local
    store and the mirror tables are not touched."""
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA), gzip=True)
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    before_log = len(server.requests_to())
    collection = mirror_name(feed_id("rota"))
    token = store.changes(collection, None).token
    generation = state.mirror(feed_id("rota")).generation  # type: ignore[union-attr]
    files = {p.name: p.stat().st_mtime_ns for p in store.collection_dir(collection).iterdir()}
    report = poller.poll(fresh(state), now=2000.0)
    assert (report.outcome, report.requests) == ("unchanged", 1)
    assert len(server.requests_to()) == before_log + 1 and server.requests_to()[-1].status == 304
    assert store.changes(collection, token).changed == []
    assert state.mirror(feed_id("rota")).generation == generation  # type: ignore[union-attr]
    assert {p.name: p.stat().st_mtime_ns for p in store.collection_dir(collection).iterdir()} == files
    assert fresh(state).requests == 2


def test_a_feed_that_changes_one_event_rewrites_one(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    collection = mirror_name(feed_id("rota"))
    token = store.changes(collection, None).token
    moved = [
        ROTA[0],
        ("shift-2", "20261203T150000Z", "20261203T190000Z"),
        ("shift-4", "20261205T080000Z", "20261205T090000Z"),
    ]
    server.change("/rota.ics", feed_text(moved))
    report = poller.poll(fresh(state), now=2000.0)
    assert (report.added, report.updated, report.deleted) == (1, 1, 1)
    change = store.changes(collection, token)
    changed, full = change.changed, change.full
    assert not full and sorted(changed) == ["shift-2.ics", "shift-3.ics", "shift-4.ics"]
    assert "T150000Z" in local_texts(store)["shift-2.ics"]


def test_an_emptied_feed_keeps_its_mirror_until_accepted(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    server.change("/rota.ics", feed_text([]))
    report = poller.poll(fresh(state), now=2000.0)
    assert report.outcome == "held" and "--accept-empty" in report.summary()
    assert len(local_texts(store)) == 3 and fresh(state).held_empty
    again = poller.poll(fresh(state), now=3000.0)  # still held, fetched without validators
    assert again.outcome == "held" and "If-None-Match" not in server.requests_to()[-1].headers
    accepted = poller.poll(fresh(state), accept_empty=True, now=4000.0)
    assert accepted.outcome == "changed" and accepted.deleted == 3
    assert local_texts(store) == {} and not fresh(state).held_empty


def test_503_keeps_the_mirror_and_waits_retry_after(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    server.fail("/rota.ics", 503, retry_after="7200")
    report = poller.poll(fresh(state), now=2000.0)
    assert report.outcome == "failed" and "503" in (report.error or "")
    assert fresh(state).next_poll == 2000.0 + 7200 and len(local_texts(store)) == 3
    assert poller.due(2000.0 + 3600) == []


def test_cache_control_max_age_is_a_floor_on_the_interval(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA), max_age=3600)
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    assert fresh(state).next_poll == 1000.0 + 3600


def test_busy_privacy_and_busy_time_count_like_a_mirror(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    poller = FeedPoller(state, store, settings)
    poller.poll(subscribe(state, server.url("/rota.ics"), privacy="busy"), now=1000.0)
    assert not any("SUMMARY:Shift" in t for t in local_texts(store).values())
    busy = BusySources(store, state, settings)
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    expected = [
        (datetime(2026, 12, 2, 9, tzinfo=UTC), datetime(2026, 12, 2, 12, tzinfo=UTC)),
        (datetime(2026, 12, 3, 13, tzinfo=UTC), datetime(2026, 12, 3, 17, tzinfo=UTC)),
        (datetime(2026, 12, 4, 8, tzinfo=UTC), datetime(2026, 12, 4, 10, tzinfo=UTC)),
    ]
    assert busy.busy(start, end) == expected
    assert busy.busy_in(mirror_name(feed_id("rota")), start, end) == expected


def test_a_slow_publisher_is_cut_off_by_the_timeout(server: FeedServer) -> None:
    server.publish("/late.ics", feed_text(ROTA), delay=3.0)
    with pytest.raises(Unreachable, match="timed out"):
        FeedFetcher(timeout=1.0).fetch(server.url("/late.ics"), allow_http=True)
    server.publish("/trickle.ics", feed_text(ROTA * 40), trickle=0.2)  # each piece in time, the whole not
    with pytest.raises(FeedError, match="longer than 1 s"):
        FeedFetcher(timeout=1.0).fetch(server.url("/trickle.ics"), allow_http=True)


def test_disconnecting_icloud_keeps_feeds(server: FeedServer, parts: Parts) -> None:
    state, store, settings = parts
    server.publish("/rota.ics", feed_text(ROTA))
    FeedPoller(state, store, settings).poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    state.forget_account()
    assert fresh(state).name == "rota" and state.mirror(feed_id("rota")).item_count == 3  # type: ignore[union-attr]
    assert len(state.mirror_texts(feed_id("rota"))) == 3


def test_what_the_store_refuses_gets_a_compatible_copy_and_still_counts(server: FeedServer, parts: Parts) -> None:
    """Two overrides without their master (an invitation to single occurrences) and a period RDATE:
    Radicale refuses both verbatim; the feed's mirror holds compatible copies, busy time comes
    from the feed's exact text."""
    state, store, settings = parts
    orphan = "".join(
        f"BEGIN:VEVENT\r\nUID:orphan\r\nRECURRENCE-ID:2026120{day}T090000Z\r\nDTSTART:2026120{day}T090000Z\r\n"
        f"DTEND:2026120{day}T100000Z\r\nSUMMARY:one of a series\r\nEND:VEVENT\r\n"
        for day in (7, 8)
    )
    periods = (
        "BEGIN:VEVENT\r\nUID:periods\r\nDTSTART:20261205T080000Z\r\nDTEND:20261205T083000Z\r\n"
        "RDATE;VALUE=PERIOD:20261206T140000Z/20261206T160000Z\r\nSUMMARY:periods\r\nEND:VEVENT\r\n"
    )
    server.publish("/rota.ics", feed_text(ROTA[:1], extra=orphan + periods))
    FeedPoller(state, store, settings).poll(subscribe(state, server.url("/rota.ics")), now=1000.0)
    counts = state.copy_counts(feed_id("rota"))
    assert sum(counts["compatible"].values()) == 2 and sum(counts["exact"].values()) == 1
    assert len(local_texts(store)) == 3
    busy = BusySources(store, state, settings).busy(
        datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    )
    assert (datetime(2026, 12, 7, 9, tzinfo=UTC), datetime(2026, 12, 7, 10, tzinfo=UTC)) in busy
    assert (datetime(2026, 12, 6, 14, tzinfo=UTC), datetime(2026, 12, 6, 16, tzinfo=UTC)) in busy


def test_a_failing_feed_backs_off_on_its_own_and_starts_again_when_it_answers(server: FeedServer, parts: Parts) -> None:
    state = parts[0]
    poller = two_feeds(server, parts)
    server.fail("/rota.ics", 500)
    waits = []
    for now in (1000.0, 5000.0, 9000.0, 20000.0):
        assert poller.poll(fresh(state), now=now).outcome == "failed"
        waits.append(fresh(state).next_poll - now)
    assert waits == [900.0, 1800.0, 3600.0, 7200.0]  # doubled for each failure in a row
    assert poller.poll(fresh(state, "other"), now=20000.0).outcome == "unchanged"
    assert fresh(state, "other").next_poll == 20000.0 + 900.0  # the other feed keeps its own interval
    server.fail("/rota.ics", 503, retry_after="30000")  # a Retry-After beyond the backoff is a floor
    poller.poll(fresh(state), now=30000.0)
    assert fresh(state).next_poll == 30000.0 + 30000.0
    server.publish("/rota.ics", feed_text(ROTA))
    assert poller.poll(fresh(state), now=70000.0).outcome == "unchanged"
    assert fresh(state).next_poll == 70000.0 + 900.0
    server.fail("/rota.ics", 500)
    poller.poll(fresh(state), now=80000.0)
    assert fresh(state).next_poll == 80000.0 + 900.0  # counted again from the interval


def test_a_restart_goes_on_backing_off_a_failing_feed(server: FeedServer, parts: Parts) -> None:
    """The failures in a row are in the state database: a daemon started again waits as long
    as the one before would have, instead of polling the failing publisher at its interval."""
    state, store, settings = parts
    subscribe(state, server.url("/rota.ics"))
    server.fail("/rota.ics", 500)
    FeedPoller(state, store, settings).poll(fresh(state), now=1000.0)
    FeedPoller(state, store, settings).poll(fresh(state), now=2000.0)
    assert fresh(state).next_poll == 2000.0 + 1800.0
    again = State(state.path)  # the next process, with its own connection and a new poller
    try:
        assert again.feed_failures("rota") == 2
        FeedPoller(again, store, settings).poll(fresh(again), now=5000.0)
        assert fresh(again).next_poll == 5000.0 + 3600.0  # the third failure in a row, not the first
        server.publish("/rota.ics", feed_text(ROTA))
        assert FeedPoller(again, store, settings).poll(fresh(again), now=9000.0).outcome == "changed"
        assert again.feed_failures("rota") == 0 and fresh(again).next_poll == 9000.0 + 900.0
        server.fail("/rota.ics", 500)
        FeedPoller(again, store, settings).poll(fresh(again), now=10000.0)
        assert again.feed_failures("rota") == 1
        again.forget_feed("rota", feed_id("rota"))
        assert again.feed_failures("rota") == 0  # a feed subscribed again under the name starts afresh
    finally:
        again.close()


def test_what_is_left_of_an_unsubscribed_feed_is_pruned(server: FeedServer, parts: Parts) -> None:
    """A poll writing a feed's mirror while another process removed the feed leaves a mirror
    without a feed; the daemon's loop prunes it (and nothing of a subscribed feed)."""
    state, store, settings = parts
    poller = two_feeds(server, parts)
    state.forget_feed("rota", feed_id("rota"))  # the feed's row only: its mirror is left behind
    assert state.mirror(feed_id("rota")) is not None and local_texts(store)
    assert poller.prune_unsubscribed() == [feed_id("rota")]
    assert state.mirror(feed_id("rota")) is None and not state.mirror_items(feed_id("rota"))
    assert store.list_mirrors() == [feed_id("other")] and len(local_texts(store, "other")) == 1
    assert BusySources(store, state, settings).busy(
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    )
    assert poller.prune_unsubscribed() == []
