"""The local web page under `/.calmirror/`: connection, calendars, the week, outbox and health.

Server-rendered with Jinja2 (autoescape on) and no JavaScript. Reads go through the owners
(the state database, `BusySources`, `status.gather`); forms go through `actions`, which are the
CLI's own steps. Logged in with the local CalDAV account (a session cookie, or HTTP Basic).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2

from calmirror import config, status
from calmirror.availability import engine, slots
from calmirror.availability.sources import BusySources
from calmirror.config import ICLOUD_SERVER, Settings
from calmirror.errors import ConfigError, UserError
from calmirror.home import Home
from calmirror.local.auth import Credentials
from calmirror.local.layout import APPOINTMENTS
from calmirror.state import State
from calmirror.web import actions, blocks, feed
from calmirror.web.data import source_labels, week_for
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
from calmirror.web.week import DATE_HINT, BadDate, parse_day, to_json

if TYPE_CHECKING:  # the daemon imports this module
    from calmirror.daemon import Daemon

log = logging.getLogger("calmirror.web")
BASE = PREFIX + "/"
LOGIN_DELAY_S = 0.5  # a wrong login waits, against guessing (Radicale waits too)
DONE = {  # what a finished action says; only these keys are ever shown, never text from the URL
    "connected": "Connected. Choose the linked and conflict calendars below.",
    "reconnected": "The new password works; syncing resumes.",
    "disconnected": "Disconnected. Local appointments are untouched.",
    "calendars": "Saved. Mirrors follow within a few seconds.",
    "refreshed": "Calendar list refreshed from iCloud.",
    "retried": "Failed appointments are queued again.",
}


class WebApp:
    def __init__(self, backend: actions.Backend, credentials: Credentials) -> None:
        self.backend, self.credentials = backend, credentials
        self.sessions = Sessions()
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("calmirror.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.css = resources.files("calmirror.web").joinpath("static/style.css").read_bytes()
        self.routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", ""): self.home_page,
            ("GET", "style.css"): lambda r: Response(body=self.css, content_type="text/css; charset=utf-8"),
            ("GET", "colours.css"): self.colours,
            ("GET", "week"): self.week,
            ("GET", "week.json"): self.week_json,
            ("GET", "calendars"): self.calendars,
            ("POST", "calendars"): self.calendars_post,
            ("POST", "calendars/refresh"): self.calendars_refresh,
            ("GET", "connection"): self.connection,
            ("POST", "connection/connect"): self.connect,
            ("POST", "connection/reconnect"): self.reconnect,
            ("POST", "connection/disconnect"): self.disconnect,
            ("GET", "outbox"): self.outbox,
            ("POST", "outbox/retry"): self.retry,
            ("POST", "logout"): self.logout,
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

    def colours(self, request: Request) -> Response:
        labels = source_labels(self.backend.state, self.settings())
        rules = [f".src-{i} {{ --c: {label.color}; }}" for i, label in enumerate(labels.values())]
        return Response(body="\n".join(rules).encode(), content_type="text/css; charset=utf-8")

    def _week_query(self, request: Request) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
        zone = self.settings().availability.zone
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

    def week(self, request: Request) -> Response:
        given, parsed, errors = self._week_query(request)
        if errors:
            return self.render(request, "week.html", HTTPStatus.BAD_REQUEST, week=None, given=given, errors=errors)
        started = time.perf_counter()
        settings = self.settings()
        week = week_for(
            self.backend.busy,
            self.backend.state,
            settings,
            parsed["first"],
            slot=parsed["slot"],
            hours=parsed["within"],
        )
        classes = {name: f"src-{i}" for i, name in enumerate(week.labels)}
        shift = {
            "prev": (week.first - dt.timedelta(days=7)).isoformat(),
            "next": (week.first + dt.timedelta(days=7)).isoformat(),
        }
        response = self.render(
            request,
            "week.html",
            week=week,
            given=given,
            errors={},
            classes=classes,
            shift=shift,
            zone=str(week.zone),
            timeline=blocks.timeline,
        )
        log.debug("week page in %.1f ms", (time.perf_counter() - started) * 1000)
        return response

    def week_json(self, request: Request) -> Response:
        _given, parsed, errors = self._week_query(request)
        if errors:
            return Response(HTTPStatus.BAD_REQUEST, json.dumps({"errors": errors}).encode(), "application/json")
        week = week_for(
            self.backend.busy,
            self.backend.state,
            self.settings(),
            parsed["first"],
            slot=parsed["slot"],
            hours=parsed["within"],
        )
        return Response(body=json.dumps(to_json(week)).encode(), content_type="application/json")

    def calendars(
        self, request: Request, errors: dict[str, str] | None = None, form: actions.Choice | None = None
    ) -> Response:
        settings = self.settings()
        rows = self.backend.state.calendars()
        mirrors = {m.calendar_id: m for m in self.backend.state.mirrors()}
        choice = form or actions.Choice(
            settings.icloud.linked or "",
            tuple(settings.icloud.conflicts),
            {c.id: settings.calendar(c.id).details for c in rows},
        )
        return self.render(
            request,
            "calendars.html",
            HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK,
            connected=self.backend.state.account() is not None,
            calendars=rows,
            mirrors=mirrors,
            choice=choice,
            errors=errors or {},
        )

    def calendars_post(self, request: Request) -> Response:
        ids = [c.id for c in self.backend.state.calendars()]
        choice = actions.Choice(
            linked=request.field("linked"),
            conflicts=tuple(dict.fromkeys(request.fields("conflict"))),
            details={i: request.field(f"details-{i}") for i in ids if f"details-{i}" in request.form},
        )
        errors = actions.choose_calendars(self.backend, choice)
        if errors:
            return self.calendars(request, errors, choice)
        return redirect(BASE + "calendars?done=calendars")

    def calendars_refresh(self, request: Request) -> Response:
        errors = actions.refresh_calendars(self.backend)
        if errors:
            return self.calendars(request, errors)
        return redirect(BASE + "calendars?done=refreshed")

    def connection(
        self, request: Request, errors: dict[str, str] | None = None, apple_id: str = "", server: str = ""
    ) -> Response:
        settings = self.settings()
        data = status.gather(self.backend.home, settings, self.backend.state)
        return self.render(
            request,
            "connection.html",
            HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK,
            status=data,
            health=_health_line(data["connection"]),
            errors=errors or {},
            apple_id=apple_id,
            server=server or settings.icloud.server or ICLOUD_SERVER,
        )

    def connect(self, request: Request) -> Response:
        apple_id, server = request.field("apple_id").strip(), request.field("server").strip() or ICLOUD_SERVER
        password = request.field("password").strip()
        errors = actions.connect(self.backend, apple_id, password, server)
        if errors:
            return self.connection(request, errors, apple_id, server)
        return redirect(BASE + "calendars?done=connected")

    def reconnect(self, request: Request) -> Response:
        errors = actions.reconnect(self.backend, request.field("new_password").strip())
        if errors:
            return self.connection(request, errors)
        return redirect(BASE + "connection?done=reconnected")

    def disconnect(self, request: Request) -> Response:
        actions.disconnect(self.backend)
        return redirect(BASE + "connection?done=disconnected")

    def outbox(self, request: Request) -> Response:
        settings = self.settings()
        data = status.gather(self.backend.home, settings, self.backend.state)
        return self.render(
            request,
            "outbox.html",
            status=data,
            rows=self.backend.state.outbox(),
            titles=self._titles([r.uid for r in self.backend.state.outbox()]),
            health=_health_line(data["connection"]),
            when=_when,
        )

    def _titles(self, uids: list[str]) -> dict[str, str]:
        """Each waiting appointment's title, read from the local store (the outbox keeps UIDs only)."""
        titles: dict[str, str] = {}
        for uid in uids[:200]:
            appointment = self.backend.state.appointment(uid)
            text = None
            if appointment is not None and appointment.local_href:
                text = self.backend.busy.store.item(APPOINTMENTS, appointment.local_href)
            try:
                events = engine.parse_calendar(text).walk("VEVENT") if text else []
            except engine.CalendarParseError:
                events = []
            if events:
                titles[uid] = str(events[0].get("SUMMARY", ""))
        return titles

    def retry(self, request: Request) -> Response:
        actions.retry_failed(self.backend)
        return redirect(BASE + "outbox?done=retried")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


def _health_line(connection: dict[str, Any]) -> tuple[str, str]:
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


def page_for(daemon: Daemon) -> WebApp:
    """The page for a daemon whose server, state and busy sources exist."""
    return WebApp(DaemonBackend(daemon), daemon.server.credentials)
