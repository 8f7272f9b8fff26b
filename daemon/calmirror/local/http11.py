"""HTTP/1.1 persistent connections for the local server's WSGI stack.

Why: Radicale's request handler (and wsgiref's) answers one request per connection over
HTTP/1.0. Measured at 10,000 mirrored events, a 30-day free-busy REPORT costs the daemon
~0.3 ms in its WSGI app and ~1.5 ms more through HTTP, most of that a new TCP connection
and a new thread per request (accept, thread start, socket set-up and tear-down on both
ends). A booking page or a CalDAV client asking again and again should pay that once.

A connection is kept only when it is certainly clean, else closed after the answer:

- the request is HTTP/1.1 without `Connection: close` (HTTP/1.0 clients get one request
  per connection, as before) and has no Transfer-Encoding and at most one Content-Length
  (else where its body ends is in doubt);
- the application read no more than the Content-Length, and what it left unread (a 401
  for an anonymous PUT, say) is drained if small, or the connection closed;
- the answer had a Content-Length that matches the bytes sent (or was a 204/304 with no
  body); anything else (an error half-way, a streamed body) ends with the close.

Everything per request (the Host check, authentication, the middleware) runs per request
as before: a connection carries no login or state from one request to the next.
Responses go out in one write (a buffered socket file, flushed per chunk) with TCP_NODELAY,
so Nagle's algorithm and delayed ACKs never hold a small answer back on a kept connection.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, cast
from wsgiref.headers import Headers

import radicale.server

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger("calmirror.local")

MAX_DRAIN_BYTES = 64 * 1024  # an unread body up to this is read away to keep the connection
IDLE_TIMEOUT_S = 15.0  # a kept connection with no next request for this long is closed
NO_BODY_STATUSES = frozenset({204, 304})


class Body(io.RawIOBase):
    """The request body as `wsgi.input`: at most Content-Length bytes, counted, so the
    next request on the connection starts exactly where this one's body ended."""

    def __init__(self, stream: io.BufferedIOBase, length: int) -> None:
        super().__init__()
        self._stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._within(size, self._stream.read)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        return self._within(size, self._stream.readline)

    def _within(self, size: int | None, reader: Callable[[int], bytes]) -> bytes:
        """`reader` of the stream, never past the body's end."""
        limit = self.remaining if size is None or size < 0 else min(size, self.remaining)
        if limit <= 0:
            return b""
        data = reader(limit)
        self.remaining -= len(data)
        return data

    def drain(self) -> bool:
        """Read away what the application left; False when too much is left (close instead)."""
        if self.remaining > MAX_DRAIN_BYTES:
            return False
        while self.remaining > 0:
            if not self.read(min(self.remaining, 65536)):
                return False
        return True


class ServerHandler(radicale.server.ServerHandler):
    """wsgiref's handler speaking HTTP/1.1; says `Connection: close` when the connection
    will not be kept, and notes whether the answer left it clean."""

    http_version = "1.1"
    reusable = False
    keep = False  # the request allows keeping the connection (set by `RequestHandler`)
    body: Body | None = None
    # wsgiref's state, not in its type stubs
    status: str | None
    headers: Headers | None
    headers_sent: bool
    bytes_sent: int
    environ: dict[str, Any] | None

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        headers = self.headers
        if headers is None:
            return
        unread = self.body is not None and self.body.remaining > MAX_DRAIN_BYTES
        unbounded = "Content-Length" not in headers and self._code() not in NO_BODY_STATUSES
        if not self.keep or unread or unbounded:  # unbounded: the body ends with the connection
            headers["Connection"] = "close"

    def close(self) -> None:
        self.reusable = self._clean()
        super().close()

    def _code(self) -> int:
        try:
            return int(str(self.status).split(" ", 1)[0])
        except ValueError:
            return 0

    def _clean(self) -> bool:
        headers = self.headers
        if not self.headers_sent or headers is None or headers.get("Connection", "").lower() == "close":
            return False
        length = headers.get("Content-Length")
        if length is None:
            return self._code() in NO_BODY_STATUSES and self.bytes_sent == 0
        if self.environ is not None and self.environ.get("REQUEST_METHOD") == "HEAD":
            return self.bytes_sent == 0  # the length is the GET's; no body follows
        return length.isdigit() and int(length) == int(self.bytes_sent)


class RequestHandler(radicale.server.RequestHandler):
    """Radicale's request handler (its environ, its quiet logging), with persistent
    connections as the module docstring says."""

    protocol_version = "HTTP/1.1"
    rbufsize = -1
    wbufsize = -1  # buffered: status line, headers and a one-chunk body leave in one send
    server: Any

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._request_timeout = self.connection.gettimeout()

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue` (curl sends it with a body): the interim answer must leave
        at once, not wait in the buffered socket file while the client waits for it."""
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def handle(self) -> None:
        self.close_connection = True
        first = True
        while True:
            if not self._next_request_line(first):
                return
            first = False
            if not self.server.request_started(self.connection):
                return  # the server is stopping: this request was not started, the client may retry
            try:
                self._handle_request()
            finally:
                kept = self.server.request_finished(self.connection)
            if self.close_connection or not kept:
                return

    def _next_request_line(self, first: bool) -> bool:
        """Read the next request line; False when the connection is done with."""
        if not first:
            self.connection.settimeout(min(IDLE_TIMEOUT_S, self._request_timeout or IDLE_TIMEOUT_S))
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            return False  # an idle kept connection timed out or was shut down
        finally:
            if not first:
                with contextlib.suppress(OSError):
                    self.connection.settimeout(self._request_timeout)
        return bool(self.raw_requestline)

    def _handle_request(self) -> None:
        self.close_connection = True
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return  # an error answer is sent and the connection closes
        keep = self.request_version == "HTTP/1.1" and not self.close_connection
        keep = keep and "Transfer-Encoding" not in self.headers
        keep = keep and len(self.headers.get_all("Content-Length") or ()) <= 1  # two lengths: whose body?
        raw = str(self.headers.get("Content-Length") or "0").strip()
        length = int(raw) if raw.isdigit() else 0
        keep = keep and raw.isdigit()
        body = Body(self.rfile, length)
        handler = ServerHandler(body, cast("IO[bytes]", self.wfile), self.get_stderr(), self.get_environ())
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref logs through it
        handler.keep, handler.body = keep, body
        handler.run(self.server.get_app())
        with contextlib.suppress(OSError):
            self.wfile.flush()
        self.close_connection = not (keep and handler.reusable and body.drain())


class ConnectionTracker:
    """The server's requests in flight and its idle kept connections, so that a stop lets
    running requests finish (as with one request per connection) and ends idle ones at once.
    A connection counts as in flight from its accept until its first answer is sent."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._busy: dict[socket.socket, bool] = {}  # open connections: True while a request runs
        self._active = 0
        self._stopping = False

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._busy[connection] = True
            self._active += 1

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            if self._busy.pop(connection, False):
                self._active -= 1
                self._lock.notify_all()

    def request_started(self, connection: socket.socket) -> bool:
        """False when the server is stopping: the request is not started."""
        with self._lock:
            if self._busy.get(connection, True):
                return True
            if self._stopping:
                return False
            self._busy[connection] = True
            self._active += 1
            return True

    def request_finished(self, connection: socket.socket) -> bool:
        """False when the server is stopping: the connection is not kept."""
        with self._lock:
            if self._busy.get(connection, False):
                self._busy[connection] = False
                self._active -= 1
                self._lock.notify_all()
            return not self._stopping

    def stop(self) -> None:
        """No new request on a kept connection; idle ones are shut down so their threads end."""
        with self._lock:
            self._stopping = True
            idle = [c for c, busy in self._busy.items() if not busy]
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._active == 0, timeout)
