"""What the page's feed forms do: `feeds add`, `feeds privacy` and `feeds remove`.

The checks and their words are `feed_choices`', the ones the CLI calls, each refusal under
its own field. The page lives in the daemon, so it does what the CLI does when a daemon runs:
store the change and wake the feed loop, which fetches at once (its answer, or its error,
then shows in the list).
"""

from __future__ import annotations

from dataclasses import dataclass

from calmirror import feed_choices
from calmirror.cli.errors import message_for
from calmirror.errors import CalmirrorError
from calmirror.local.layout import feed_id
from calmirror.web.actions import Backend, Errors, _refusal
from calmirror.web.http import errors_of

PLACEHOLDER_URL = "https://feed.invalid/"  # names a default when the URL itself is refused


@dataclass(frozen=True)
class FeedForm:
    url: str = ""
    name: str = ""
    interval: str = "15m"
    privacy: str = "full"
    allow_http: bool = False


def add(backend: Backend, form: FeedForm) -> Errors:
    state = backend.state
    target = PLACEHOLDER_URL
    try:
        target = feed_choices.check_url(state, form.url, form.allow_http)
        url_error = None
    except CalmirrorError as error:
        url_error = message_for(error)
    errors = errors_of(
        {
            "feed_url": url_error,
            "feed_name": _refusal(feed_choices.check_name, state, form.name or None, target),
            "feed_interval": _refusal(feed_choices.check_interval, form.interval),
            "feed_privacy": _refusal(feed_choices.check_privacy, form.privacy),
        }
    )
    if errors:
        return errors
    feed = feed_choices.new_feed(state, form.url, form.name or None, form.interval, form.privacy, form.allow_http)
    state.add_feed(feed, feed_id(feed.name))
    backend.wake_feeds()
    return {}


def privacy(backend: Backend, name: str, details: str) -> Errors:
    problem = _refusal(feed_choices.check_privacy, details, "privacy")
    if problem:
        return {f"feed-privacy-{name}": problem}
    try:
        feed = feed_choices.find_feed(backend.state, name)
    except CalmirrorError as error:
        return {"feeds": message_for(error)}
    if feed_choices.set_privacy(backend.state, feed, details):
        backend.wake_feeds()
    return {}


def remove(backend: Backend, name: str) -> Errors:
    try:
        feed = feed_choices.find_feed(backend.state, name)
    except CalmirrorError as error:
        return {"feeds": message_for(error)}
    backend.feeds.remove(feed)
    return {}
