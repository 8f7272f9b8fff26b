"""WSGI middleware in front of Radicale: the rules Radicale cannot express.

- Mirrors and `busy/` are read-only for clients. The rights plugin already says so; refusing
  here too means no write method ever reaches Radicale's code for them, whatever its rights
  logic does with a request shape nobody tested (MOVE, COPY, MKCOL on a new name).
- A PROPPATCH of a protected property is refused before Radicale sees it: Radicale 3.9
  half-applies a resourcetype change and leaves the calendar unusable (RADICALE.md).
- Request bodies are bounded (Radicale enforces `max_content_length` only in its own
  server) and XML bodies are parsed without DTDs or entities.
- Three optional callables plug the daemon in: `guard` may refuse a new appointment (409),
  `freebusy` answers free-busy-query REPORTs, `on_change` is nudged after a change to
  `appointments` or `blocked`. They may be set or replaced at any time.
- A PROPFIND runs wholly under Radicale's shared store lock (`read_lock`): Radicale 3.9
  releases the lock before it builds the answer (reading every item's file for its ETag),
  so a write in between (a client's DELETE, a mirror batch) made the answer a 500.
  Radicale takes the same shared lock again inside; a second shared `flock` is granted at
  once on Linux even while a writer waits, so the nesting cannot deadlock. Held that long,
  back-to-back reads left writes no gap, so writes announce themselves and long reads let
  the writes that came first go first (`fairness`). A GET or REPORT on a calendar only
  calmirror writes takes no store lock at all (`store_lock.unlocked_reads`).
- A write Radicale refuses with its bare text ("Bad Request") gets one line saying why
  and what to do instead, with the same status (`refusals`). Every answer given here
  instead of Radicale's is built in `answers`.

Everything that answers instead of Radicale runs only for an authenticated request: an
anonymous one goes straight to Radicale, which answers 401 (with its delay against
password guessing), so a guard reason or a busy time never leaks to someone without the
password.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from radicale import pathutils

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from _typeshed import OptExcInfo

from calmirror.local import davxml, layout, refusals, suspect
from calmirror.local.answers import RadicaleAnswer, Refusal, StartResponse, respond, respond_refusal
from calmirror.local.auth import Credentials
from calmirror.local.fairness import WritersFirst
from calmirror.local.items import Limits
from calmirror.local.rights import collection_rights
from calmirror.local.store_lock import lane_of_request, unlocked_reads

log = logging.getLogger("calmirror.local")

Environ = dict[str, Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
OnChange = Callable[[str], None]
Guard = Callable[[str, bytes], "str | None"]
FreeBusy = Callable[[str, datetime, datetime], str]
ReadLock = Callable[[], AbstractContextManager[object]]
Report = Callable[[str, "ET.Element"], "bytes | None"]  # (collection path, parsed body) -> a 207 body

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
WRITE_METHODS = frozenset({"PUT", "DELETE", "PROPPATCH", "MKCOL", "MKCALENDAR", "MOVE", "COPY"})
XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCOL", "MKCALENDAR"})
CHANGE_METHODS = frozenset({"PUT", "DELETE", "MOVE"})
LONG_READ_METHODS = frozenset({"PROPFIND", "REPORT"})  # hold the shared store lock while building the answer
UNLOCKED_READ_METHODS = frozenset({"GET", "HEAD", "REPORT"})  # on a read-only calendar: no store lock
_XML_HEADERS = (("Content-Type", "text/xml; charset=utf-8"),)  # as Radicale answers a REPORT
# We are never behind a reverse proxy; these would let a client change how Radicale
# maps the URL to a collection, and so differ from what the checks here looked at.
_PROXY_HEADERS = (
    "HTTP_X_SCRIPT_NAME",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_SERVER",
    "HTTP_X_REMOTE_ADDR",
    "HTTP_X_REMOTE_USER",
)


class Middleware:
    def __init__(
        self,
        app: WSGIApp,
        credentials: Credentials,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        on_change: OnChange | None = None,
        guard: Guard | None = None,
        freebusy: FreeBusy | None = None,
        read_lock: ReadLock | None = None,
        limits: Limits | None = None,
        fairness: WritersFirst | None = None,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.max_body_bytes = max_body_bytes
        self.on_change = on_change
        self.guard = guard
        self.freebusy = freebusy
        self.read_lock = read_lock  # Radicale's shared store lock, held around a whole PROPFIND
        self.limits = limits or Limits()  # Radicale's per-object limits, for the reason of a refused PUT
        self.fairness = fairness or WritersFirst()  # shared with the store's other writers (`fairness`)
        self.report: Report | None = None  # answers some REPORTs instead of Radicale
        self.bookings_one_at_a_time: Callable[[], bool] = lambda: False  # the guard refuses double bookings
        self._bookings = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        for header in _PROXY_HEADERS:
            environ.pop(header, None)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            length = self._checked_length(environ)
            if not self.credentials.check_basic_header(environ.get("HTTP_AUTHORIZATION", "")):
                # Radicale must see exactly what the checks here saw: no login it might
                # still accept through a different decoding.
                environ.pop("HTTP_AUTHORIZATION", None)
                return self.app(environ, start_response)
            return self._authenticated(method, environ, start_response, length)
        except Refusal as refusal:
            return respond_refusal(start_response, refusal)

    # --- checks ---------------------------------------------------------------------------

    def _checked_length(self, environ: Environ) -> int:
        encoding = str(environ.get("HTTP_TRANSFER_ENCODING", "")).strip().lower()
        if encoding and encoding != "identity":
            raise Refusal(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        raw = str(environ.get("CONTENT_LENGTH") or "0").strip()
        if not raw.isdigit():
            raise Refusal(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        length = int(raw)
        if length > self.max_body_bytes:
            limit_mb = self.max_body_bytes / (1024 * 1024)
            raise Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request body ({length} bytes) is over the limit of {limit_mb:g} MB; "
                "raise server.max_body_mb in config.toml to accept it",
            )
        return length

    def _authenticated(
        self, method: str, environ: Environ, start_response: StartResponse, length: int
    ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        destination = _destination_path(environ) if method in ("MOVE", "COPY") else None
        if method in WRITE_METHODS:
            for target in (path, destination):
                read_only = refusals.read_only(target)
                if read_only is not None:
                    raise Refusal(HTTPStatus.FORBIDDEN, read_only, needs_write=target)
        body = _read_body(environ, length) if length else b""
        if method in XML_METHODS and body.strip():
            answer = self._xml_request(method, path, body, start_response)
            if answer is not None:
                return answer
        own = self._own_collection(path)
        if method == "PROPPATCH" and own is not None and own not in layout.WRITABLE and not layout.is_read_only(own):
            raise Refusal(HTTPStatus.NOT_FOUND, f"there is no calendar {own}/ to change")
        with self._booking_turn(method, own, destination):
            if method == "PUT" and layout.is_item_path(path) and own in layout.WRITABLE:
                found = suspect.check(body, own, self.limits.max_rrule_occurrence)
                if found is not None:
                    log.info("refused a write into %s/: %s", own, found.reason)
                    raise Refusal(HTTPStatus.FORBIDDEN, found.reason, condition=found.condition)
                if own == layout.APPOINTMENTS:
                    self._check_guard(body)
            if method == "MOVE" and destination is not None:
                self._check_move_guard(environ, path, destination)
            reply = self._radicale(method, environ)
            refused = reply.plain_refusal if method in WRITE_METHODS else None
            if refused is not None:
                conditions = {"if-none-match": str(environ.get("HTTP_IF_NONE_MATCH", ""))}
                reason = refusals.explain(method, refused, layout.split_path(path), conditions, body, self.limits)
                return respond(start_response, refused, reason)
            start_response(reply.status_line, reply.headers)
            touched = {self._own_collection(path), self._own_collection(destination)}
            if method in CHANGE_METHODS and reply.code // 100 == 2:
                for collection in sorted(layout.WRITABLE):
                    if collection in touched:
                        self._notify_change(collection)
            return reply.body

    def _booking_turn(self, method: str, own: str | None, destination: str | None) -> AbstractContextManager[object]:
        """While the guard refuses double bookings, one booking at a time from its check until
        the busy index has heard of it: the guard asks the index, which learns of a booking only
        once it is written, so two checks side by side both found one slot free and both were
        written. A warning-only guard lets them run side by side (a late warning is all a race
        costs there)."""
        booking = (method == "PUT" and own == layout.APPOINTMENTS) or (
            method == "MOVE" and self._own_collection(destination) == layout.APPOINTMENTS
        )
        if not booking or self.guard is None or not self.bookings_one_at_a_time():
            return contextlib.nullcontext()
        return self._bookings

    def _radicale(self, method: str, environ: Environ) -> RadicaleAnswer:
        """Radicale's answer in full; a PROPFIND's is built under the shared store lock."""
        captured: list[Any] = []
        written: list[bytes] = []

        def capture(
            status_line: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            captured[:] = [status_line, list(headers)]
            return written.append

        with self._turn(method, environ), self._store_lock(method):
            chunks = self.app(environ, capture)
            try:
                body = written + list(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        return RadicaleAnswer(captured[0], captured[1], body)

    def _turn(self, method: str, environ: Environ) -> AbstractContextManager[object]:
        """Writes announce themselves; long reads let announced writes go first (`fairness`);
        a read of a calendar only calmirror writes takes no store lock (`store_lock`)."""
        path = str(environ.get("PATH_INFO", ""))
        if method in WRITE_METHODS:
            # A write of one item takes its collection's lane under the shared store lock: it
            # waits for no reader, so readers need not wait for it (`store_lock`).
            return self.fairness.writing() if lane_of_request(method, path) is None else contextlib.nullcontext()
        own = self._own_collection(path)
        if method in UNLOCKED_READ_METHODS and own is not None and layout.is_read_only(own):
            return unlocked_reads()
        if method in LONG_READ_METHODS:
            self.fairness.before_reading()
        return contextlib.nullcontext()

    def _store_lock(self, method: str) -> AbstractContextManager[object]:
        """The shared store lock for a PROPFIND (see the module docstring), else nothing."""
        if method != "PROPFIND" or self.read_lock is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(self.read_lock())
        except (OSError, RuntimeError):
            log.exception("cannot take the calendar store's lock")
            raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "the calendar store cannot be read just now; retry") from None
        return stack

    def _xml_request(
        self, method: str, path: str, body: bytes, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        try:
            root = davxml.parse(body)
            if method == "PROPPATCH" and davxml.protected_properties_touched(root):
                raise Refusal(HTTPStatus.FORBIDDEN, "resourcetype and the component set cannot be changed")
            if method == "REPORT" and self.freebusy is not None:
                query = davxml.free_busy_query(root)
                if query is not None and self._readable_calendar(path):
                    return self._answer_freebusy(path, query, start_response)
            if method == "REPORT" and self.report is not None and self._readable_calendar(path):
                answer = self.report(path, root)  # a query the index answers (`range_answer`), else None
                if answer is not None:
                    start_response("207 Multi-Status", [*_XML_HEADERS, ("Content-Length", str(len(answer)))])
                    return [answer]
        except davxml.XMLRefused as refused:
            raise Refusal(HTTPStatus.BAD_REQUEST, refused.reason) from None
        return None

    # --- the daemon's callables -----------------------------------------------------------

    def _check_guard(self, body: bytes) -> None:
        guard = self.guard
        if guard is None:
            return
        try:
            reason = guard(layout.APPOINTMENTS, body)
        except Exception:  # a broken guard must not stop the user from saving: fail open
            log.exception("the appointment guard failed; the write goes ahead")
            return
        if reason:
            raise Refusal(HTTPStatus.CONFLICT, reason)

    def _check_move_guard(self, environ: Environ, path: str, destination: str) -> None:
        """A MOVE into `appointments` from elsewhere creates an appointment: guard it too."""
        if self.guard is None or self._own_collection(destination) != layout.APPOINTMENTS:
            return
        if self._own_collection(path) == layout.APPOINTMENTS or not layout.is_item_path(path):
            return
        body = self._fetch(environ, path)
        if body is not None:
            self._check_guard(body)

    def _fetch(self, environ: Environ, path: str) -> bytes | None:
        """GET `path` through Radicale with the caller's credentials (and rights)."""
        inner = dict(environ)
        inner.update(REQUEST_METHOD="GET", PATH_INFO=path, CONTENT_LENGTH="0", QUERY_STRING="")
        inner["wsgi.input"] = io.BytesIO(b"")
        inner.pop("HTTP_ACCEPT_ENCODING", None)
        status: list[str] = []
        chunks = self.app(inner, lambda line, headers, exc_info=None: status.append(line))
        return b"".join(chunks) if status and status[0].startswith("200") else None

    def _answer_freebusy(
        self, path: str, query: davxml.FreeBusyQuery, start_response: StartResponse
    ) -> Iterable[bytes]:
        freebusy = self.freebusy
        assert freebusy is not None
        try:
            text = freebusy(pathutils.sanitize_path(path), query.start, query.end)
        except Exception:
            log.exception("the free-busy callable failed")
            raise Refusal(HTTPStatus.INTERNAL_SERVER_ERROR, "free-busy lookup failed") from None
        return respond(start_response, HTTPStatus.OK, text, content_type="text/calendar; charset=utf-8")

    def _notify_change(self, collection: str) -> None:
        on_change = self.on_change
        if on_change is None:
            return
        try:
            on_change(collection)
        except Exception:  # never into the request: the change is saved already
            log.exception("on_change callback failed")

    # --- paths ----------------------------------------------------------------------------

    def _own_collection(self, path: str | None) -> str | None:
        """The collection name when `path` is inside the local user's own tree."""
        if path is None:
            return None
        parts = layout.split_path(path)
        if len(parts) >= 2 and parts[0] == self.credentials.username:
            return parts[1]
        return None

    def _readable_calendar(self, path: str) -> bool:
        parts = layout.split_path(path)
        return len(parts) == 2 and parts[0] == self.credentials.username and "r" in collection_rights(parts[1])


def _destination_path(environ: Environ) -> str | None:
    """The Destination header's path, decoded the way Radicale's MOVE decodes it."""
    raw = str(environ.get("HTTP_DESTINATION", ""))
    return urlparse(unquote(raw)).path if raw else None


def _read_body(environ: Environ, length: int) -> bytes:
    """Read the whole body and put it back, so Radicale reads the same bytes."""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)
