"""The Outbox and health page: what waits for iCloud or failed, with why, and a retry button."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from calmirror import status
from calmirror.availability import engine
from calmirror.local.layout import APPOINTMENTS
from calmirror.web import actions
from calmirror.web.connection_page import health_line
from calmirror.web.http import Request, Response, redirect

if TYPE_CHECKING:
    from calmirror.web.app import WebApp

TITLES_SHOWN = 200  # each title is one read of the local store; a longer outbox shows UIDs only


def outbox(app: WebApp, request: Request) -> Response:
    data = status.gather(app.backend.home, app.settings(), app.backend.state)
    rows = app.backend.state.outbox()
    return app.render(
        request,
        "outbox.html",
        status=data,
        rows=rows,
        titles=_titles(app, [r.uid for r in rows]),
        health=health_line(data["connection"]),
        when=_when,
    )


def retry(app: WebApp, request: Request) -> Response:
    actions.retry_failed(app.backend)
    return redirect(app.base + "outbox?done=retried")


def _titles(app: WebApp, uids: list[str]) -> dict[str, str]:
    """Each waiting appointment's title, read from the local store (the outbox keeps UIDs only)."""
    titles: dict[str, str] = {}
    for uid in uids[:TITLES_SHOWN]:
        appointment = app.backend.state.appointment(uid)
        text = None
        if appointment is not None and appointment.local_href:
            text = app.backend.busy.store.item(APPOINTMENTS, appointment.local_href)
        try:
            events = engine.parse_calendar(text).walk("VEVENT") if text else []
        except engine.CalendarParseError:
            events = []
        if events:
            titles[uid] = str(events[0].get("SUMMARY", ""))
    return titles


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"
