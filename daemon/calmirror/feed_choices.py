"""What `calmirror feeds add` and `feeds privacy` accept, and the words they refuse with.

The CLI and the page's feed forms both call these, so a URL, name, interval or privacy is
refused alike in both, in the same words. Each check stands alone (the page shows each
refusal next to its own field); `new_feed` runs them in the CLI's order.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from calmirror.errors import UserError
from calmirror.feeds import parse_interval
from calmirror.local.layout import feed_id, is_valid_slug
from calmirror.model import FeedRow
from calmirror.remote.feed import normalise_url, shown_url
from calmirror.state import State

PRIVACY = ("full", "busy")


def find_feed(state: State, name: str) -> FeedRow:
    feed = state.feed(name)
    if feed is None:
        known = ", ".join(f.name for f in state.feeds()) or "none yet; `calmirror feeds add URL`"
        raise UserError(f"{name}: no such feed (feeds: {known})")
    return feed


def check_privacy(privacy: str, what: str = "--privacy") -> None:
    if privacy not in PRIVACY:
        raise UserError(f"{what} must be 'full' or 'busy', not {privacy!r}")


def check_interval(text: str) -> float:
    """Seconds between polls, from `15m`, `1h`, `90s`; at least a minute."""
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise UserError(f"--interval {exc}") from None


def check_url(state: State, url: str, allow_http: bool) -> str:
    """The URL as it will be fetched (webcal -> https), refused when its scheme is not one
    calmirror fetches or it is subscribed already."""
    target = normalise_url(url, allow_http=allow_http)
    if any(f.url == target for f in state.feeds()):
        raise UserError(f"{shown_url(target)} is already subscribed")
    return target


def default_name(url: str, taken: set[str]) -> str:
    from calmirror.mirror_collections import slugify

    parts = urlsplit(url)
    stem = parts.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".ics") or (parts.hostname or "feed")
    return slugify(stem, taken, parts.hostname or "feed")


def check_name(state: State, name: str | None, target: str) -> str:
    """The feed's short name: the one given, else one made from the URL."""
    taken = {f.name for f in state.feeds()}
    chosen = name if name is not None else default_name(target, taken)
    if not is_valid_slug(feed_id(chosen)):
        raise UserError(f"--name {chosen!r}: use letters, digits, '.', '_' or '-' (up to 100)")
    if chosen in taken:
        raise UserError(f"a feed named {chosen!r} exists; choose another --name")
    return chosen


def new_feed(state: State, url: str, name: str | None, interval: str, privacy: str, allow_http: bool) -> FeedRow:
    """A feed to subscribe to, checked as `feeds add` checks it (not stored yet)."""
    check_privacy(privacy)
    seconds = check_interval(interval)
    target = check_url(state, url, allow_http)
    chosen = check_name(state, name, target)
    return FeedRow(chosen, target, name or chosen, seconds, privacy, allow_http)


def set_privacy(state: State, feed: FeedRow, details: str) -> bool:
    """`feeds privacy`: store the new privacy and have the next poll fetch the whole feed
    (no validators) and rewrite each object (no ETags). False when it was already so."""
    check_privacy(details, "privacy")
    if feed.privacy == details:
        return False
    name = feed.name
    state.refetch_mirror(feed_id(name))
    state.update_feed(name, privacy=details, etag=None, last_modified=None, digest=None, next_poll=0.0)
    return True
