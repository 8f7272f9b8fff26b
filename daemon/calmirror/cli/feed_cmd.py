"""feed enable|disable|rotate|url: the busy-only ICS feed calmirror publishes (outbound).

Not to be confused with `feeds` (plural), the ICS feeds calmirror subscribes to (inbound);
both names come from the issues that asked for them, so each one's help names the other.
"""

from __future__ import annotations

import typer

from calmirror.cli.context import Ctx, console, ctx_of
from calmirror.errors import UserError

app = typer.Typer(
    help="Outbound: the ICS feed calmirror publishes of your busy times (no titles) at an unguessable local URL, "
    "for tools that read one; off until enabled. To subscribe to someone else's feed (inbound), "
    "see `calmirror feeds`.",
    short_help="Outbound: publish your busy times as an ICS feed (see `feeds` to subscribe to one).",
    no_args_is_help=True,
)


def _url(c: Ctx, token: str) -> str:
    from calmirror.web import feed

    base = c.state.get_meta("local_url") or f"http://{c.settings.server.host}:{c.settings.server.port}/"
    return feed.url(base, token)


@app.command()
def enable(ctx: typer.Context) -> None:
    """Turn the feed on and print its URL (the same URL as before if it was on)."""
    from calmirror.web import feed

    c = ctx_of(ctx)
    console.print(_url(c, feed.enable(c.state)))


@app.command()
def disable(ctx: typer.Context) -> None:
    """Turn the feed off; its URL answers 404 at once."""
    from calmirror.web import feed

    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made
    console.print("The feed is off." if feed.disable(c.state) else "The feed was already off.")


@app.command()
def rotate(ctx: typer.Context) -> None:
    """Give the feed a new URL; the old one answers 404 at once."""
    from calmirror.web import feed

    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made
    console.print(_url(c, feed.rotate(c.state)))


@app.command()
def url(ctx: typer.Context) -> None:
    """Print the feed's URL."""
    from calmirror.web import feed

    c = ctx_of(ctx)
    c.require_home()  # a mistyped --home is said, never made and answered from
    token = feed.token(c.state)
    if token is None:
        raise UserError("the feed is off; `calmirror feed enable` turns it on")
    console.print(_url(c, token))
