"""A small ICS feed publisher on 127.0.0.1:0 for tests and benchmarks.

It answers the way real publishers do (ETag, Last-Modified, 304, gzip, Cache-Control,
redirects, 503 with Retry-After, Basic auth) and logs every request it gets, so a test can
count requests per poll and see which headers reached which host.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import gzip
import hashlib
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Route:
    body: bytes = b""
    etag: bool = True
    last_modified: bool = True
    gzip: bool = False
    max_age: int | None = None
    status: int = 200
    location: str | None = None
    retry_after: str | None = None
    auth: tuple[str, str] | None = None
    delay: float = 0.0  # seconds before the answer starts
    trickle: float = 0.0  # seconds between 1 KB pieces of the body
    modified_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    status: int


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                server._answer(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                # A client that gave up (a feed timeout, a closed keep-alive) is no error of the
                # publisher's; anything else is printed as before.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)  # type: ignore[arg-type]

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, *, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    # --- what it serves --------------------------------------------------------------------

    def publish(self, path: str, body: str | bytes, **options: object) -> Route:
        data = body.encode() if isinstance(body, str) else body
        route = Route(body=data, **options)  # type: ignore[arg-type]
        with self._lock:
            self.routes[path] = route
        return route

    def change(self, path: str, body: str | bytes) -> None:
        """New bytes at `path`, keeping how it is served; a new Last-Modified a second on."""
        with self._lock:
            route = self.routes[path]
            route.body = body.encode() if isinstance(body, str) else body
            route.modified_at = max(time.time(), route.modified_at + 1)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        with self._lock:
            self.routes[path] = Route(status=status, location=location)

    def fail(self, path: str, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self.routes[path] = Route(status=status, retry_after=retry_after)

    def requests_to(self, path: str | None = None) -> list[Logged]:
        with self._lock:
            return [r for r in self.log if path is None or urlsplit(r.path).path == path]

    # --- answering -------------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler) -> int:
        with self._lock:
            route = self.routes.get(urlsplit(h.path).path)
        if route is None:
            return self._send(h, 404, b"not found", {})
        if route.delay:
            time.sleep(route.delay)
        if route.auth is not None:
            expected = "Basic " + base64.b64encode(f"{route.auth[0]}:{route.auth[1]}".encode()).decode()
            if h.headers.get("Authorization") != expected:
                return self._send(h, 401, b"", {"WWW-Authenticate": 'Basic realm="feed"'})
        if route.location is not None:
            return self._send(h, route.status, b"", {"Location": route.location})
        if route.status != 200:
            extra = {"Retry-After": route.retry_after} if route.retry_after else {}
            return self._send(h, route.status, b"busy", extra)
        headers: dict[str, str] = {"Content-Type": "text/calendar; charset=utf-8"}
        etag = '"' + hashlib.sha1(route.body).hexdigest() + '"'
        modified = email.utils.formatdate(route.modified_at, usegmt=True)
        if route.etag:
            headers["ETag"] = etag
        if route.last_modified:
            headers["Last-Modified"] = modified
        if route.max_age is not None:
            headers["Cache-Control"] = f"max-age={route.max_age}"
        if route.etag and h.headers.get("If-None-Match") == etag:
            return self._send(h, 304, b"", headers)
        if not route.etag and route.last_modified and h.headers.get("If-Modified-Since") == modified:
            return self._send(h, 304, b"", headers)
        data = route.body
        if route.gzip and "gzip" in (h.headers.get("Accept-Encoding") or ""):
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return self._send(h, 200, data, headers)

    def _send(self, h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> int:
        # Logged before the answer leaves, so a client that has its answer finds it in the log.
        with self._lock:
            self.log.append(Logged("GET", h.path, dict(h.headers.items()), status))
            trickle = self.routes[urlsplit(h.path).path].trickle if urlsplit(h.path).path in self.routes else 0.0
        h.send_response(status)
        for key, value in headers.items():
            h.send_header(key, value)
        if status != 304:
            h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if status != 304 and data:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if not trickle:
                    h.wfile.write(data)
                for start in range(0, len(data), 1024) if trickle else ():
                    h.wfile.write(data[start : start + 1024])
                    h.wfile.flush()
                    time.sleep(trickle)
        return status


def feed_text(events: list[tuple[str, str, str]], *, extra: str = "") -> str:
    """A VCALENDAR of (uid, start, end) events in UTC basic format, as a publisher sends it."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calmirror tests//feed//EN", "METHOD:PUBLISH"]
    for uid, start, end in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART:{start}",
            f"DTEND:{end}",
            f"SUMMARY:Shift {uid}",
            "END:VEVENT",
        ]
    return "\r\n".join(lines) + "\r\n" + extra + "END:VCALENDAR\r\n"
