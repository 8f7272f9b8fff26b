"""feeds add|list|remove|poll|privacy: subscribed ICS feeds (inbound) whose events block your time.

`feed` (singular) is the other direction: the busy-time feed calmirror publishes.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from calmirror import control
from calmirror.cli.context import Ctx, age, console, ctx_of, print_json
from calmirror.errors import UserError
from calmirror.local.layout import feed_id, mirror_name
from calmirror.model import FeedRow

if TYPE_CHECKING:
    from calmirror.feeds import FeedPoller, FeedReport

app = typer.Typer(
    help="Inbound: ICS feeds you subscribe to (webcal/https), mirrored read-only; their events block your time. "
    "To publish your own busy times as a feed (outbound), see `calmirror feed`.",
    short_help="Inbound: subscribe to ICS feeds whose events block your time (see `feed` to publish one).",
    no_args_is_help=True,
)


def poller(c: Ctx) -> FeedPoller:
    from calmirror import credentials
    from calmirror.feeds import FeedPoller
    from calmirror.local.store import LocalStore

    store = LocalStore(c.home.store_dir, credentials.local_account(c.home).username)
    store.ensure_base()
    return FeedPoller(c.state, store, c.settings)


def _find(c: Ctx, name: str) -> FeedRow:
    from calmirror.feed_choices import find_feed

    return find_feed(c.state, name)


def _daemon_running(c: Ctx) -> bool:
    return control.read_pid(c.home.pid_file) is not None


@app.command()
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="webcal://, https:// (or http:// with --allow-http) URL of an ICS feed.")],
    name: Annotated[str | None, typer.Option("--name", help="Short name; the mirror is feed-NAME/.")] = None,
    interval: Annotated[str, typer.Option("--interval", help="How often to poll: 15m, 1h, 90s.")] = "15m",
    privacy: Annotated[str, typer.Option("--privacy", help="full: copy everything; busy: only busy times.")] = "full",
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Accept a plain http:// URL.")] = False,
) -> None:
    """Subscribe to an ICS feed: mirror it into feed-NAME/ and count its busy time."""
    from calmirror.feed_choices import new_feed
    from calmirror.feeds import describe_interval

    c = ctx_of(ctx)
    feed = new_feed(c.state, url, name, interval, privacy, allow_http)
    chosen, seconds = feed.name, feed.interval
    c.state.add_feed(feed, feed_id(chosen))
    if _daemon_running(c):
        control.signal_daemon(c.home.pid_file, signal.SIGHUP)
        polled = _first_poll_by_daemon(c, chosen, c.settings.feeds.timeout + 5)
        if polled is None:
            console.print(f"Subscribed {chosen} -> {mirror_name(feed_id(chosen))}/; the running daemon fetches it now.")
            return
        mirror = c.state.mirror(feed_id(chosen))
        error, events = polled.last_error, (mirror.item_count or 0) if mirror else 0
    else:
        p = poller(c)
        try:
            report = p.poll(feed, trial=True)  # a failure is this command's one error line
        finally:
            p.close()
        error, events = report.error, report.events
    if error:
        _unsubscribe(c, feed)
        raise UserError(f"{error}; not subscribed")
    console.print(
        f"Subscribed {chosen} -> {mirror_name(feed_id(chosen))}/: {events} event(s), "
        f"polled every {describe_interval(seconds)}"
    )


def _first_poll_by_daemon(c: Ctx, name: str, wait_s: float) -> FeedRow | None:
    """The feed once the daemon, signalled, has fetched it (None when it has not within `wait_s`).
    A mistyped URL was subscribed without a word while a daemon ran, which is most of the time;
    without one the command's own trial fetch refused it."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        polled = c.state.feed(name)
        if polled is None or polled.last_poll is not None:
            return polled
        time.sleep(0.2)
    return None


def _unsubscribe(c: Ctx, feed: FeedRow) -> None:
    p = poller(c)
    try:
        p.remove(feed)
    finally:
        p.close()
    control.signal_daemon(c.home.pid_file, signal.SIGHUP)  # a running daemon drops its mirror


def _row(c: Ctx, feed: FeedRow, now: float) -> dict[str, Any]:
    from calmirror.remote.feed import shown_url

    mirror = c.state.mirror(feed_id(feed.name))
    return {
        "name": feed.name,
        "url": shown_url(feed.url),
        "local_collection": mirror_name(feed_id(feed.name)),
        "interval_s": feed.interval,
        "privacy": feed.privacy,
        "events": mirror.item_count if mirror else 0,
        "last_poll": feed.last_poll,
        "next_poll_in_s": round(max(0.0, feed.next_poll - now), 1),
        "held_empty": feed.held_empty,
        "last_error": feed.last_error,
        "requests": feed.requests,
    }


@app.command("list")
def list_(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Every subscribed feed: URL (without any password), events, last poll, errors."""
    from calmirror.feeds import describe_interval

    c = ctx_of(ctx)
    c.require_home()
    now = time.time()
    rows = [_row(c, feed, now) for feed in c.state.feeds()]
    if json_out:
        print_json({"feeds": rows})
        return
    if not rows:
        console.print("No feeds; `calmirror feeds add URL` subscribes to one.")
        return
    table = Table("name", "events", "every", "privacy", "last poll", "problem")
    table.add_column("url", overflow="fold")
    for r in rows:
        polled = age(now - r["last_poll"]) if r["last_poll"] else "never"
        problem = "emptied: kept" if r["held_empty"] else (r["last_error"] or "")
        table.add_row(
            r["name"], str(r["events"]), describe_interval(r["interval_s"]), r["privacy"], polled, problem, r["url"]
        )
    console.print(table)


@app.command()
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The feed's short name.")]) -> None:
    """Unsubscribe: the feed's mirror and everything kept of it go."""
    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made
    feed = _find(c, name)
    p = poller(c)
    p.remove(feed)
    p.close()
    control.signal_daemon(c.home.pid_file, signal.SIGHUP)
    console.print(f"Removed feed {name} and {mirror_name(feed_id(name))}/.")


@app.command()
def privacy(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The feed's short name.")],
    details: Annotated[str, typer.Argument(help="full: copy everything; busy: only busy times.")],
) -> None:
    """Copy everything of a feed, or only its busy times; its mirror is rewritten at the next poll."""
    from calmirror.feed_choices import check_privacy, set_privacy

    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made
    check_privacy(details, "privacy")
    if not set_privacy(c.state, _find(c, name), details):
        console.print(f"Feed {name} is already {details}.")
        return
    if _daemon_running(c):
        control.signal_daemon(c.home.pid_file, signal.SIGHUP)
        console.print(f"Feed {name}: {details}; the running daemon rewrites {mirror_name(feed_id(name))}/ now.")
        return
    report = poll_all(c, [name], frozenset())[0]
    if report.error:
        raise UserError(f"{report.error}; the privacy is set and applied at the next poll")
    console.print(f"Feed {name}: {details}; {report.updated} event(s) rewritten.")


def poll_all(c: Ctx, names: list[str], accept_empty: frozenset[str]) -> list[FeedReport]:
    """Poll the named feeds, or every feed not waiting out a failure (Retry-After)."""
    now = time.time()
    chosen = [_find(c, n) for n in names] or [
        f for f in c.state.feeds() if not (f.last_error and f.next_poll > now) or f.name in accept_empty
    ]
    if not chosen:
        return []
    p = poller(c)
    try:
        return p.poll_many(chosen, accept_empty=accept_empty, now=now)  # at once: a hanging publisher holds one
    finally:
        p.close()


@app.command()
def poll(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Feeds to poll (default: all).")] = None,
    accept_empty: Annotated[
        bool, typer.Option("--accept-empty", help="Apply a feed that now lists no events: empty its mirror.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Poll feeds now (one conditional GET each)."""
    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made
    if accept_empty and not names:
        raise UserError("--accept-empty needs the feed's name: `calmirror feeds poll NAME --accept-empty`")
    reports = poll_all(c, names or [], frozenset(names or []) if accept_empty else frozenset())
    if json_out:
        print_json({"feeds": [r.__dict__ for r in reports]})
    else:
        for r in reports:
            console.print(r.summary())
    if any(r.error for r in reports):
        raise typer.Exit(4)
