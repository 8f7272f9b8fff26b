"""The Calendars page: every iCloud calendar with its role; link, conflicts and privacy in one form."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from calmirror.web import actions
from calmirror.web.http import Request, Response, redirect

if TYPE_CHECKING:
    from calmirror.web.app import WebApp


def calendars(
    app: WebApp, request: Request, errors: dict[str, str] | None = None, form: actions.Choice | None = None
) -> Response:
    settings = app.settings()
    state = app.backend.state
    rows = state.calendars()
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
        mirrors={m.calendar_id: m for m in state.mirrors()},
        choice=choice,
        errors=errors or {},
    )


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
