"""The local web page under `/.calmirror/`: connection, calendars, the week, outbox and health.

Server-rendered with Jinja2 (autoescape on) and no JavaScript. Reads go through the owners
(the state database, `BusySources`, `status.gather`); forms go through `actions`, which are the
CLI's own steps. Logged in with the local CalDAV account (a session cookie, or HTTP Basic).
This module is what every page shares (routing, login, CSRF, rendering); each page lives in
its own `*_page` module as functions of this app and the request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from typing import TYPE_CHECKING

import jinja2

from calmirror import config
from calmirror.availability.sources import BusySources
from calmirror.config import Settings
from calmirror.errors import ConfigError
from calmirror.home import Home
from calmirror.local.auth import Credentials
from calmirror.state import State
from calmirror.web import actions, calendars_page, connection_page, feed, outbox_page, week_page
from calmirror.web.front import PREFIX
from calmirror.web.http import (
    Environ,
    FormTooLarge,
    Request,
    Response,
    Sessions,
    StartResponse,
    cleared_cookie,
    parse_request,
    redirect,
    session_cookie,
    text,
)

if TYPE_CHECKING:  # the daemon imports this module
    from calmirror.daemon import Daemon
    from calmirror.feeds import FeedPoller

log = logging.getLogger("calmirror.web")
BASE = PREFIX + "/"
LOGIN_DELAY_S = 0.5  # a wrong login waits, against guessing (Radicale waits too)
DONE = {  # what a finished action says; only these keys are ever shown, never text from the URL
    "connected": "Connected. Choose the linked and conflict calendars below.",
    "reconnected": "The new password works; syncing resumes.",
    "disconnected": "Disconnected. Local appointments are untouched.",
    "removed": "Account removed; its mirrors go within a few seconds. Local appointments are untouched.",
    "calendars": "Saved. Mirrors follow within a few seconds.",
    "refreshed": "Calendar lists refreshed from every account.",
    "retried": "Failed appointments are queued again.",
    "feed-added": "Subscribed. The feed is fetched now; its events and any problem show below.",
    "feed-privacy": "Saved. The feed's mirror is rewritten now.",
    "feed-removed": "Unsubscribed: the feed's mirror is gone.",
}


class WebApp:
    def __init__(self, backend: actions.Backend, credentials: Credentials) -> None:
        self.backend, self.credentials = backend, credentials
        self.base = BASE
        self.sessions = Sessions()
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("calmirror.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.css = resources.files("calmirror.web").joinpath("static/style.css").read_bytes()
        pages: dict[tuple[str, str], Callable[[WebApp, Request], Response]] = {
            ("GET", "colours.css"): week_page.colours,
            ("GET", "week"): week_page.week,
            ("GET", "week.json"): week_page.week_json,
            ("GET", "calendars"): calendars_page.calendars,
            ("POST", "calendars"): calendars_page.save,
            ("POST", "calendars/refresh"): calendars_page.refresh,
            ("POST", "feeds/add"): calendars_page.add_feed,
            ("POST", "feeds/privacy"): calendars_page.feed_privacy,
            ("POST", "feeds/remove"): calendars_page.remove_feed,
            ("GET", "connection"): connection_page.connection,
            ("POST", "connection/connect"): connection_page.connect,
            ("POST", "connection/reconnect"): connection_page.reconnect,
            ("POST", "connection/disconnect"): connection_page.disconnect,
            ("GET", "outbox"): outbox_page.outbox,
            ("POST", "outbox/retry"): outbox_page.retry,
        }
        self.routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", ""): self.home_page,
            ("GET", "style.css"): lambda r: Response(body=self.css, content_type="text/css; charset=utf-8"),
            ("POST", "logout"): self.logout,
            **{key: functools.partial(page, self) for key, page in pages.items()},
        }

    # --- the WSGI entry ------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = parse_request(environ, PREFIX)
            response = self.handle(request)
        except FormTooLarge:
            response = text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the form is too large")
        except Exception:
            log.exception("the page failed")
            response = text(HTTPStatus.INTERNAL_SERVER_ERROR, "the page failed; the daemon's log says why")
        return response.send(start_response)

    def handle(self, request: Request) -> Response:
        if request.path == "login":
            return self.login(request)
        if request.path.startswith(feed.PATH) and request.method == "GET":
            return self.feed(request)  # the unguessable URL is its own key: no login
        if request.path == "style.css" and request.method == "GET":
            return self.routes[("GET", "style.css")](request)
        request.session = self._who(request)
        if request.session is None:
            if request.method == "GET" and not request.path.endswith(".json"):
                return redirect(BASE + "login")
            return text(HTTPStatus.UNAUTHORIZED, "log in first (the local account of `calmirror local-account`)")
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            known = any(path == request.path for _, path in self.routes)
            return text(HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND, "no such page")
        if request.method == "POST" and not self.sessions.csrf_ok(request.session, request.field("csrf")):
            return text(
                HTTPStatus.FORBIDDEN, "refused: the form had no valid CSRF token; reload the page and try again"
            )
        return handler(request)

    def _who(self, request: Request) -> str | None:
        header = str(request.environ.get("HTTP_AUTHORIZATION", ""))
        if header and self.credentials.check_basic_header(header):
            return "basic"
        token = request.cookie
        return token if self.sessions.valid(token) else None

    # --- rendering -----------------------------------------------------------------------

    def render(self, request: Request, name: str, code: HTTPStatus = HTTPStatus.OK, **values: object) -> Response:
        done = DONE.get(request.arg("done"))
        page = self.templates.get_template(name).render(
            base=BASE,
            csrf=self.sessions.csrf(request.session or "login"),
            logged_in=request.session is not None,
            done=done,
            current=request.path,
            **values,
        )
        return Response(code, page.encode("utf-8"))

    def settings(self) -> Settings:
        return self.backend.settings()

    def feed(self, request: Request) -> Response:
        name = request.path[len(feed.PATH) :]
        if not name.endswith(".ics") or not feed.matches(self.backend.state, name[: -len(".ics")]):
            return text(HTTPStatus.NOT_FOUND, "no such page")
        now = dt.datetime.now(dt.UTC)
        start, end = feed.window(now)
        body = feed.render(self.backend.busy.busy(start, end), now)
        return Response(body=body.encode(), content_type="text/calendar; charset=utf-8")

    # --- login ---------------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", errors={}, username="")
        if request.method != "POST":
            return text(HTTPStatus.METHOD_NOT_ALLOWED, "no such page")
        if not self.sessions.csrf_ok("login", request.field("csrf")):
            return text(
                HTTPStatus.FORBIDDEN, "refused: the form had no valid CSRF token; reload the page and try again"
            )
        username, password = request.field("username"), request.field("password")
        errors = {}
        if not username:
            errors["username"] = "enter the username `calmirror local-account` shows"
        if not password:
            errors["password"] = "enter the password `calmirror local-account` shows"
        if not errors and not self.credentials.check(username, password):
            time.sleep(LOGIN_DELAY_S)
            errors["password"] = "wrong username or password; `calmirror local-account` shows them"
        if errors:
            return self.render(request, "login.html", HTTPStatus.UNAUTHORIZED, errors=errors, username=username)
        return redirect(BASE, [session_cookie(self.sessions.open())])

    def logout(self, request: Request) -> Response:
        self.sessions.close(request.cookie)
        return redirect(BASE + "login", [cleared_cookie()])

    # --- pages ---------------------------------------------------------------------------

    def home_page(self, request: Request) -> Response:
        return redirect(BASE + ("week" if self.backend.state.account() else "connection"))


class DaemonBackend:
    """The page's view of a running daemon: its state, busy cache and wake-ups. Settings are
    read from the file on each request so a page right after a change shows it, while the
    daemon takes the same file up at its next reload."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.home: Home = daemon.home
        self.state: State = daemon.state
        self.busy: BusySources = daemon.busy

    def settings(self) -> Settings:
        try:
            return config.load(self.home.config_file)
        except ConfigError:
            return self.daemon.settings

    def reload(self) -> None:
        self.daemon.reload_requested.set()

    def wake_push(self) -> None:
        self.daemon.push_wake.set()

    def wake_feeds(self) -> None:
        self.daemon.feeds_wake.set()

    @property
    def feeds(self) -> FeedPoller:
        return self.daemon.feeds  # made after the page: read when a form needs it


def page_for(daemon: Daemon) -> WebApp:
    """The page for a daemon whose server, state and busy sources exist."""
    return WebApp(DaemonBackend(daemon), daemon.server.credentials)
