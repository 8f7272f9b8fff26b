"""The Connection page: the account's state, connect, reconnect and disconnect."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from calmirror import status
from calmirror.config import ICLOUD_SERVER
from calmirror.web import actions
from calmirror.web.http import Request, Response, redirect

if TYPE_CHECKING:
    from calmirror.web.app import WebApp


def connection(
    app: WebApp, request: Request, errors: dict[str, str] | None = None, apple_id: str = "", server: str = ""
) -> Response:
    settings = app.settings()
    data = status.gather(app.backend.home, settings, app.backend.state)
    return app.render(
        request,
        "connection.html",
        HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK,
        status=data,
        health=health_line(data["connection"]),
        accounts=[(a, health_line(a["connection"])) for a in data["accounts"]],
        errors=errors or {},
        apple_id=apple_id,
        server=server or settings.icloud.server or ICLOUD_SERVER,
    )


def connect(app: WebApp, request: Request) -> Response:
    apple_id, server = request.field("apple_id").strip(), request.field("server").strip() or ICLOUD_SERVER
    password = request.field("password").strip()
    errors = actions.connect(app.backend, apple_id, password, server)
    if errors:
        return connection(app, request, errors, apple_id, server)
    return redirect(app.base + "calendars?done=connected")


def reconnect(app: WebApp, request: Request) -> Response:
    errors = actions.reconnect(app.backend, request.field("new_password").strip())
    if errors:
        return connection(app, request, errors)
    return redirect(app.base + "connection?done=reconnected")


def disconnect(app: WebApp, request: Request) -> Response:
    actions.disconnect(app.backend)
    return redirect(app.base + "connection?done=disconnected")


def health_line(connection: dict[str, Any]) -> tuple[str, str]:
    """(kind, words) for the connection state: ok, waiting until …, password refused."""
    state = connection.get("state")
    if state == "ok":
        return "ok", "Connected: iCloud answers."
    if state == "auth_failed":
        return "bad", "Password refused: iCloud no longer accepts the app-specific password. Reconnect below."
    if state == "unreachable":
        until = float(connection.get("not_before") or 0)
        if until > time.time():
            return "wait", f"Waiting until {time.strftime('%H:%M:%S', time.localtime(until))}: iCloud asked to wait."
        return "wait", "iCloud is not answering; retrying."
    if state == "not connected":
        return "none", "Not connected."
    return "none", "Not checked yet."
