"""The Calendars page: every account's calendars with their role (link, conflicts and privacy in
one form), and the subscribed feeds (add, privacy, remove)."""

from __future__ import annotations

import time
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from calmirror import calendar_choice
from calmirror.model import PRIMARY_SPELLING, CalendarRow, account_of
from calmirror.remote.feed import shown_url
from calmirror.web import actions, feed_actions
from calmirror.web.http import Request, Response, redirect

if TYPE_CHECKING:
    from calmirror.web.app import WebApp


def spelled(calendars: list[CalendarRow], several: bool) -> dict[str, str]:
    """Calendar id -> the name the CLI takes for it: `Team` with one account; with more,
    `work/Team` in a named account and `default/Team` in the first."""
    if not several:
        return {c.id: c.name for c in calendars}
    return {c.id: calendar_choice.address(c) if account_of(c.id) else f"{PRIMARY_SPELLING}/{c.name}" for c in calendars}


def calendars(
    app: WebApp,
    request: Request,
    errors: dict[str, str] | None = None,
    form: actions.Choice | None = None,
    feed_form: feed_actions.FeedForm | None = None,
) -> Response:
    settings = app.settings()
    state = app.backend.state
    rows = state.calendars()
    several = len(state.accounts()) > 1
    choice = form or actions.Choice(
        settings.icloud.linked or "",
        tuple(settings.icloud.conflicts),
        {c.id: settings.calendar(c.id).details for c in rows},
    )
    return app.render(
        request,
        "calendars.html",
        HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK,
        connected=state.account() is not None,
        calendars=rows,
        spelled=spelled(rows, several),
        several=several,
        mirrors={m.calendar_id: m for m in state.mirrors()},
        choice=choice,
        feeds=feed_rows(app),
        feed_form=feed_form or feed_actions.FeedForm(),
        errors=errors or {},
    )


def feed_rows(app: WebApp) -> list[dict[str, Any]]:
    """Each feed as `feeds list` shows it: the URL without any password, events, last poll."""
    from calmirror.feeds import describe_interval
    from calmirror.local.layout import feed_id, mirror_name

    state, now = app.backend.state, time.time()
    rows = []
    for feed in state.feeds():
        mirror = state.mirror(feed_id(feed.name))
        rows.append(
            {
                "name": feed.name,
                "url": shown_url(feed.url),
                "collection": mirror_name(feed_id(feed.name)),
                "privacy": feed.privacy,
                "every": describe_interval(feed.interval),
                "last_poll": "never" if not feed.last_poll else f"{max(0.0, now - feed.last_poll):.0f} s ago",
                "events": mirror.item_count if mirror and mirror.item_count else 0,
                "problem": "emptied: the mirror is kept" if feed.held_empty else (feed.last_error or ""),
            }
        )
    return rows


def save(app: WebApp, request: Request) -> Response:
    ids = [c.id for c in app.backend.state.calendars()]
    choice = actions.Choice(
        linked=request.field("linked"),
        conflicts=tuple(dict.fromkeys(request.fields("conflict"))),
        details={i: request.field(f"details-{i}") for i in ids if f"details-{i}" in request.form},
    )
    errors = actions.choose_calendars(app.backend, choice)
    if errors:
        return calendars(app, request, errors, choice)
    return redirect(app.base + "calendars?done=calendars")


def refresh(app: WebApp, request: Request) -> Response:
    errors = actions.refresh_calendars(app.backend)
    if errors:
        return calendars(app, request, errors)
    return redirect(app.base + "calendars?done=refreshed")


def add_feed(app: WebApp, request: Request) -> Response:
    form = feed_actions.FeedForm(
        url=request.field("feed_url").strip(),
        name=request.field("feed_name").strip(),
        interval=request.field("feed_interval").strip() or "15m",
        privacy=request.field("feed_privacy") or "full",
        allow_http=request.field("feed_allow_http") == "yes",
    )
    errors = feed_actions.add(app.backend, form)
    if errors:
        # Shown again without any user:password@ part: a secret is never rendered back.
        return calendars(app, request, errors, feed_form=replace(form, url=shown_url(form.url)))
    return redirect(app.base + "calendars?done=feed-added")


def feed_privacy(app: WebApp, request: Request) -> Response:
    name = request.field("feed")
    errors = feed_actions.privacy(app.backend, name, request.field("privacy"))
    if errors:
        return calendars(app, request, errors)
    return redirect(app.base + "calendars?done=feed-privacy")


def remove_feed(app: WebApp, request: Request) -> Response:
    errors = feed_actions.remove(app.backend, request.field("feed"))
    if errors:
        return calendars(app, request, errors)
    return redirect(app.base + "calendars?done=feed-removed")
