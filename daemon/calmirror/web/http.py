"""Requests, answers, sessions and CSRF tokens for the page, on plain WSGI.

Why these rules:
- The page shows a calendar and can change what is mirrored and where appointments go, so
  every answer forbids framing (clickjacking), caching (the next user of a shared browser) and
  anything but our own stylesheets (CSP: no script at all, no inline style).
- A session cookie is `HttpOnly; SameSite=Strict` and lives in memory only: a restart logs
  everyone out, which for one local user is a feature. HTTP Basic with the CalDAV login works
  too, for scripts and `calmirror week`.
- Every POST carries a token bound to the session (an HMAC under a secret made at start), so
  another site cannot make the browser post a form here even when the cookie would be sent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

COOKIE = "calmirror_session"
COOKIE_PATH = "/.calmirror/"
SESSION_S = 12 * 3600
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


class FormTooLarge(Exception):
    pass


@dataclass
class Request:
    environ: Environ
    path: str  # below the prefix, without a leading slash: "week", "calendars", ""
    method: str
    query: dict[str, list[str]]
    form: dict[str, list[str]] = field(default_factory=dict)
    session: str | None = None  # the session id when logged in by cookie; "basic" for HTTP Basic

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name) or [default]
        return values[0]

    def field(self, name: str) -> str:
        values = self.form.get(name) or [""]
        return values[0]

    def fields(self, name: str) -> list[str]:
        return list(self.form.get(name) or [])

    @property
    def cookie(self) -> str | None:
        raw = str(self.environ.get("HTTP_COOKIE", ""))
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = jar.get(COOKIE)
        return morsel.value if morsel is not None else None


def parse_request(environ: Environ, prefix: str) -> Request:
    path = str(environ.get("PATH_INFO", ""))[len(prefix) :].strip("/")
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True, max_num_fields=50)
    request = Request(environ, path, method, query)
    if method == "POST":
        request.form = _read_form(environ)
    return request


def _read_form(environ: Environ) -> dict[str, list[str]]:
    raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
    length = int(raw) if raw.isdigit() else 0
    if length > MAX_FORM_BYTES:
        raise FormTooLarge
    kind = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    body = environ["wsgi.input"].read(length) if length else b""
    if kind != "application/x-www-form-urlencoded":
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)


@dataclass
class Response:
    status: HTTPStatus = HTTPStatus.OK
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def send(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *SECURITY_HEADERS,
            *self.headers,
        ]
        start_response(f"{self.status.value} {self.status.phrase}", headers)
        return [self.body]


def text(status: HTTPStatus, line: str) -> Response:
    return Response(status, (line.rstrip("\n") + "\n").encode(), "text/plain; charset=utf-8")


def redirect(location: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(HTTPStatus.SEE_OTHER, b"", headers=[("Location", location), *headers])


class Sessions:
    """Logged-in browsers, in memory; tokens are random and expire."""

    def __init__(self, lifetime: float = SESSION_S) -> None:
        self.lifetime = lifetime
        self._secret = secrets.token_bytes(32)
        self._live: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._live = {t: until for t, until in self._live.items() if until > now}
            self._live[token] = now + self.lifetime
        return token

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            until = self._live.get(token)
        return until is not None and until > time.monotonic()

    def close(self, token: str | None) -> None:
        with self._lock:
            self._live.pop(token or "", None)

    def csrf(self, session: str) -> str:
        return hmac.new(self._secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(session), token)


def session_cookie(token: str) -> tuple[str, str]:
    return ("Set-Cookie", f"{COOKIE}={token}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict")


def cleared_cookie() -> tuple[str, str]:
    return ("Set-Cookie", f"{COOKIE}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0")


def errors_of(pairs: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in pairs.items() if v}
