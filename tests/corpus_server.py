"""A fake CalDAV server that serves hostile corpus items verbatim (`hostile_corpus`).

It answers only what calmirror's client sends: discovery (PROPFIND on /, the principal and
the home), sync-collection and calendar-multiget REPORTs. It records every request so a test
can prove an external DTD was never fetched.
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from tests.hostile_corpus import CORPUS, good_event
from tests.hostile_items import Case

DSID = "424242"
XXE_DTD = '<!DOCTYPE d:multistatus [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY ext SYSTEM "{base}evil.dtd">]>'
LAUGHS = (
    '<!DOCTYPE d:multistatus [<!ENTITY l0 "ha">'
    + "".join(f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
    + "]>"
)


@dataclass
class FakeCalendar:
    cal_id: str
    name: str
    items: dict[str, Case | str] = field(default_factory=dict)  # file name -> Case or plain text
    # "doctype" | "laughs" | "cut" | "short": the sync answer itself is hostile ("short": the
    # connection closes before the Content-Length it announced)
    evil_listing: str | None = None


class CorpusServer:
    """A tiny CalDAV server on 127.0.0.1:0 that serves hostile items exactly as given."""

    def __init__(self, apple_id: str, password: str, calendars: list[FakeCalendar]) -> None:
        self.apple_id, self.password = apple_id, password
        self.calendars = {c.cal_id: c for c in calendars}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _any(self) -> None:
                server._handle(self)

            do_PROPFIND = do_REPORT = do_GET = do_PUT = do_DELETE = do_OPTIONS = _any

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> CorpusServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def home_path(self) -> str:
        return f"/{DSID}/calendars/"

    # --- dispatch --------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append((h.command, path))
        expected = "Basic " + base64.b64encode(f"{self.apple_id}:{self.password}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            self._send(h, 401, b"", headers={"WWW-Authenticate": 'Basic realm="fake"'})
            return
        if h.command == "PROPFIND" and path in ("/", "/.well-known/caldav"):
            self._send(
                h,
                207,
                self._ms(
                    self._resp(
                        path,
                        f"<d:current-user-principal><d:href>/{DSID}/principal/</d:href></d:current-user-principal>",
                    )
                ),
            )
        elif h.command == "PROPFIND" and path == f"/{DSID}/principal/":
            home = self.url.rstrip("/") + self.home_path
            self._send(
                h,
                207,
                self._ms(self._resp(path, f"<c:calendar-home-set><d:href>{home}</d:href></c:calendar-home-set>")),
            )
        elif h.command == "PROPFIND" and path == self.home_path:
            self._send(h, 207, self._listing())
        elif h.command == "REPORT" and path.startswith(self.home_path):
            cal_id = path[len(self.home_path) :].strip("/")
            calendar = self.calendars.get(cal_id)
            if calendar is None:
                self._send(h, 404, b"")
            elif b"sync-collection" in body:
                answer = self._sync(calendar, body)
                short = calendar.evil_listing == "short" and b"<d:sync-token>t1</d:sync-token>" not in body
                self._send(h, 207, answer, declared=len(answer) + 4096 if short else None)
            else:
                self._send(h, 207, self._multiget(calendar, body))
        else:
            self._send(h, 403, b"")

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: dict[str, str] | None = None,
        declared: int | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/xml; charset=utf-8")
        h.send_header("Content-Length", str(declared if declared is not None else len(payload)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        with contextlib.suppress(OSError):
            h.wfile.write(payload)

    # --- bodies ----------------------------------------------------------------------------

    NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'

    def _ms(self, inner: str | bytes, prolog: str = "", extra: str = "") -> bytes:
        inner_b = inner.encode() if isinstance(inner, str) else inner
        return (
            f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}<d:multistatus {self.NS}>'.encode()
            + inner_b
            + f"{extra}</d:multistatus>".encode()
        )

    @staticmethod
    def _resp(href: str, props: str, status: str = "200 OK") -> str:
        return (
            f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop>{props}</d:prop>"
            f"<d:status>HTTP/1.1 {status}</d:status></d:propstat></d:response>"
        )

    def _listing(self) -> bytes:
        parts = [self._resp(self.home_path, "<d:resourcetype><d:collection/></d:resourcetype>")]
        for calendar in self.calendars.values():
            props = (
                "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype>"
                f"<d:displayname>{escape(calendar.name)}</d:displayname>"
                '<c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>'
                "<d:current-user-privilege-set><d:privilege><d:read/></d:privilege></d:current-user-privilege-set>"
                "<cs:getctag>t1</cs:getctag><d:sync-token>t1</d:sync-token>"
            )
            parts.append(self._resp(f"{self.home_path}{calendar.cal_id}/", props))
        return self._ms("".join(parts))

    @staticmethod
    def _etag(name: str) -> str:
        return f'"{abs(hash(name)) % 10**8:08d}"'

    def _sync(self, calendar: FakeCalendar, body: bytes) -> bytes:
        base = f"{self.home_path}{calendar.cal_id}/"
        if b"<d:sync-token>t1</d:sync-token>" in body:  # nothing changed since
            return self._ms("", extra="<d:sync-token>t1</d:sync-token>")
        rows = "".join(self._resp(base + name, f"<d:getetag>{self._etag(name)}</d:getetag>") for name in calendar.items)
        if calendar.evil_listing == "doctype":
            return self._ms(rows, prolog=XXE_DTD.format(base=self.url), extra="<d:sync-token>&xxe;&ext;</d:sync-token>")
        if calendar.evil_listing == "laughs":
            return self._ms(rows, prolog=LAUGHS, extra="<d:sync-token>&l9;</d:sync-token>")
        answer = self._ms(rows, extra="<d:sync-token>t1</d:sync-token>")
        if calendar.evil_listing == "cut":
            return answer[: len(answer) // 2]
        return answer

    def _multiget(self, calendar: FakeCalendar, body: bytes) -> bytes:
        base = f"{self.home_path}{calendar.cal_id}/"
        wanted = [chunk.split(b"</d:href>", 1)[0].decode() for chunk in body.split(b"<d:href>")[1:]]
        kinds: set[str] = set()
        parts: list[bytes] = []
        for href in wanted:
            name = href[len(base) :] if href.startswith(base) else href.rsplit("/", 1)[-1]
            from urllib.parse import unquote

            item = calendar.items.get(unquote(name))
            if item is None:
                parts.append(
                    f"<d:response><d:href>{escape(href)}</d:href><d:status>HTTP/1.1 404 Not Found"
                    "</d:status></d:response>".encode()
                )
                continue
            case = item if isinstance(item, Case) else None
            raw = case.body if case else item.encode()  # type: ignore[union-attr]
            kind = case.xml if case else "text"
            kinds.add(kind)
            if kind == "raw":
                data = raw
            elif kind in ("doctype", "laughs"):
                data = escape(raw.decode()).replace("@@XXE@@", "&xxe;" if kind == "doctype" else "&l9;").encode()
            elif kind == "deep":
                data = ("<x>" * 10_000 + escape(raw.decode()) + "</x>" * 10_000).encode()
            else:
                data = escape(raw.decode("utf-8")).encode()
            parts.append(
                f"<d:response><d:href>{escape(href)}</d:href><d:propstat><d:prop><d:getetag>"
                f"{self._etag(unquote(name))}</d:getetag><c:calendar-data>".encode()
                + data
                + b"</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
                b"</d:response>"
            )
        answer = self._ms(
            b"".join(parts),
            prolog=XXE_DTD.format(base=self.url) if "doctype" in kinds else LAUGHS if "laughs" in kinds else "",
        )
        if "cut" in kinds:
            return answer[: len(answer) // 2]
        return answer


def corpus_calendar(
    cal_id: str = "HOSTILE", name: str = "Hostile", good: int = 20, only: Callable[[Case], bool] = lambda case: True
) -> FakeCalendar:
    """One calendar with every corpus item (under `<name>.ics`) and `good` ordinary events."""
    items: dict[str, Case | str] = {f"{case.name}.ics": case for case in CORPUS if only(case)}
    items.update({f"good-{n}.ics": good_event(n) for n in range(good)})
    return FakeCalendar(cal_id, name, items)
