"""The Week page and its JSON: the form's three fields, then `week_for` over the daemon's sources.

The page, its JSON and `calmirror week` all come from `week.build_week`, so they cannot
disagree; this module only reads the form and picks the template.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from calmirror.availability import slots
from calmirror.errors import UserError
from calmirror.web import blocks
from calmirror.web.data import source_labels, week_for
from calmirror.web.http import Request, Response
from calmirror.web.week import DATE_HINT, BadDate, Week, parse_day, to_json

if TYPE_CHECKING:
    from calmirror.web.app import WebApp

log = logging.getLogger("calmirror.web")
HOURS = tuple(range(24))  # the labels of the timeline's gutter, one per hour


def colours(app: WebApp, request: Request) -> Response:
    """Each source's colour as a class: the CSP allows no inline style, and colours come from iCloud."""
    labels = source_labels(app.backend.state, app.settings())
    rules = [f".src-{i} {{ --c: {label.color}; }}" for i, label in enumerate(labels.values())]
    return Response(body="\n".join(rules).encode(), content_type="text/css; charset=utf-8")


def _query(app: WebApp, request: Request) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The form as typed, as parsed, and an error per field that did not parse."""
    zone = app.settings().availability.zone
    given = {
        "start": request.arg("start", "today"),
        "slot": request.arg("slot", "30m"),
        "within": request.arg("within", "09:00-17:00"),
    }
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        parsed["first"] = parse_day(given["start"], dt.datetime.now(zone).date())
    except BadDate:
        errors["start"] = DATE_HINT
    for key, parse in (("slot", slots.parse_length), ("within", slots.parse_within)):
        try:
            parsed[key] = parse(given[key])
        except UserError as error:
            errors[key] = error.message
    return given, parsed, errors


def _week(app: WebApp, parsed: dict[str, Any]) -> Week:
    return week_for(
        app.backend.busy,
        app.backend.state,
        app.settings(),
        parsed["first"],
        slot=parsed["slot"],
        hours=parsed["within"],
    )


def week(app: WebApp, request: Request) -> Response:
    given, parsed, errors = _query(app, request)
    if errors:
        return app.render(request, "week.html", HTTPStatus.BAD_REQUEST, week=None, given=given, errors=errors)
    started = time.perf_counter()
    shown = _week(app, parsed)
    shift = {
        "prev": (shown.first - dt.timedelta(days=7)).isoformat(),
        "next": (shown.first + dt.timedelta(days=7)).isoformat(),
    }
    response = app.render(
        request,
        "week.html",
        week=shown,
        given=given,
        errors={},
        classes={name: f"src-{i}" for i, name in enumerate(shown.labels)},
        shift=shift,
        zone=str(shown.zone),
        hours=HOURS,
        timeline=blocks.timeline,
    )
    log.debug("week page in %.1f ms", (time.perf_counter() - started) * 1000)
    return response


def week_json(app: WebApp, request: Request) -> Response:
    _given, parsed, errors = _query(app, request)
    if errors:
        return Response(HTTPStatus.BAD_REQUEST, json.dumps({"errors": errors}).encode(), "application/json")
    return Response(body=json.dumps(to_json(_week(app, parsed))).encode(), content_type="application/json")
