"""The Connection page: every account's state, connect (the first or a further one), reconnect and disconnect."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from calmirror import status
from calmirror.config import ICLOUD_SERVER
from calmirror.model import PRIMARY_SPELLING
from calmirror.web import actions
from calmirror.web.http import Request, Response, redirect

if TYPE_CHECKING:
    from calmirror.web.app import WebApp


def connection(
    app: WebApp,
    request: Request,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    about: str = "",
) -> Response:
    """Every account with its health, reconnect and disconnect; the connect form (the first
    account, or a further one under a name). `about`: the account a failed form was for."""
    settings = app.settings()
    data = status.gather(app.backend.home, settings, app.backend.state)
    typed = typed or {}
    accounts = [
        {
            **a,
            "health": health_line(a["connection"], a["name"] == PRIMARY_SPELLING or _at_icloud(a["server"])),
            "field": _field(a["name"]),
        }
        for a in data["accounts"]
    ]
    return app.render(
        request,
        "connection.html",
        HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK,
        status=data,
        accounts=accounts,
        errors=errors or {},
        about=about,
        account_name=typed.get("name", ""),
        apple_id=typed.get("apple_id", ""),
        server=typed.get("server") or (settings.icloud.server if not accounts else "") or ICLOUD_SERVER,
    )


def _at_icloud(host: str) -> bool:
    bare = host.rpartition("@")[2].split(":")[0].lower()
    return bare == "icloud.com" or bare.endswith(".icloud.com")


def _field(label: str) -> str:
    """The id of an account's reconnect field: the first account's is plain `new_password`."""
    return "new_password" if label == PRIMARY_SPELLING else f"new_password-{label}"


def connect(app: WebApp, request: Request) -> Response:
    typed = {
        "name": request.field("name").strip(),
        "apple_id": request.field("apple_id").strip(),
        "server": request.field("server").strip() or ICLOUD_SERVER,
    }
    password = request.field("password").strip()
    errors = actions.connect(app.backend, typed["apple_id"], password, typed["server"], typed["name"])
    if errors:
        return connection(app, request, errors, typed)
    return redirect(app.base + "calendars?done=connected")


def reconnect(app: WebApp, request: Request) -> Response:
    label = request.field("account") or PRIMARY_SPELLING
    errors = actions.reconnect(app.backend, request.field("new_password").strip(), label)
    if errors:
        return connection(app, request, errors, about=label)
    return redirect(app.base + "connection?done=reconnected")


def disconnect(app: WebApp, request: Request) -> Response:
    label = request.field("account") or PRIMARY_SPELLING
    _, errors = actions.disconnect(app.backend, label)
    if errors:
        return connection(app, request, errors, about=label)
    return redirect(
        app.base + ("connection?done=disconnected" if label == PRIMARY_SPELLING else "connection?done=removed")
    )


def health_line(connection: dict[str, Any], icloud: bool = True) -> tuple[str, str]:
    """(kind, words) for an account's state: ok, waiting until …, password refused."""
    server = "iCloud" if icloud else "The server"
    state = connection.get("state")
    if state == "ok":
        return "ok", f"Connected: {server} answers."
    if state == "auth_failed":
        return "bad", f"Password refused: {server} no longer accepts the password. Reconnect below."
    if state == "unreachable":
        until = float(connection.get("not_before") or 0)
        if until > time.time():
            return "wait", f"Waiting until {time.strftime('%H:%M:%S', time.localtime(until))}: {server} asked to wait."
        return "wait", f"{server} is not answering; retrying."
    if state == "not connected":
        return "none", "Not connected."
    return "none", "Not checked yet."
