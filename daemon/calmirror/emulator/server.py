"""Threaded HTTP listeners for the front and partition hosts, with faults and a log.

wsgiref plus ThreadingMixIn: one thread per connection, HTTP/1.0, connection closed
after each answer. Faults are applied here, before the WSGI layer, because resetting
a connection or cutting a body short needs the socket itself.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse

if TYPE_CHECKING:
    from _typeshed import OptExcInfo

from calmirror.emulator.faults import Fault, Faults

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int  # 0: connection reset without an answer
    host: str  # "front" | "partition"
    request_bytes: int
    response_bytes: int
    duration_s: float
    time: float  # wall-clock start, seconds since the epoch


class RequestLog:
    """Every request answered, in order.

    A request changes the store inside the app, and its entry can only be written once the
    app has answered (the status is known then). A reader who has just seen the change (the
    event is in iCloud now) could otherwise miss the request that made it: a snapshot waits
    for the app calls running when it is taken to finish (bounded, for one that never does).
    Requests that never reach the app (injected faults, delays) change nothing and are not
    waited for."""

    PATIENCE_S = 10.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: list[LoggedRequest] = []
        self._running: set[int] = set()
        self._next = 0

    def begin(self) -> int:
        """An app call starts: its token for `end`, once its entry is added and its answer sent."""
        with self._cond:
            token = self._next
            self._next += 1
            self._running.add(token)
            return token

    def end(self, token: int) -> None:
        with self._cond:
            self._running.discard(token)
            self._cond.notify_all()

    def add(self, entry: LoggedRequest) -> None:
        with self._cond:
            self._entries.append(entry)

    def snapshot(self) -> list[LoggedRequest]:
        with self._cond:
            waiting = set(self._running)
            self._cond.wait_for(lambda: not (waiting & self._running), timeout=self.PATIENCE_S)
            return list(self._entries)

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()


@dataclass
class ListenerContext:
    app: WSGIApp
    host_label: str
    faults: Faults
    log: RequestLog


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ListenerContext, family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.context = context
        super().__init__(address, _Handler)
        self.set_app(context.app)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall
        # for seconds on machines without a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class _Handler(WSGIRequestHandler):
    server: ThreadingWSGIServer

    def log_message(self, format: str, *args: object) -> None:
        return None

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        context = self.server.context
        started, wall = time.monotonic(), time.time()
        path = urlsplit(self.path).path

        def log(status: int, request_bytes: int, response_bytes: int) -> None:
            # Logged before the answer leaves, so a client that has its answer
            # always finds the entry.
            context.log.add(
                LoggedRequest(
                    self.command,
                    path,
                    status,
                    context.host_label,
                    request_bytes,
                    response_bytes,
                    time.monotonic() - started,
                    wall,
                )
            )

        armed = context.faults.take(self.command, path)
        if armed.delay is not None:
            time.sleep(armed.delay.seconds)
        if armed.terminal is not None and armed.terminal.kind == "reset":
            log(0, 0, 0)
            self._reset_connection()
        elif armed.terminal is not None:
            self._send_failure(armed.terminal, len(self._drain_body()), log)
        else:
            self._run_app(context.app, int(self.headers.get("Content-Length") or 0), log)

    def _run_app(self, app: WSGIApp, request_bytes: int, log: Callable[[int, int, int], None]) -> None:
        def logging_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            seen = {"status": 0}

            def recording_start_response(
                status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
            ) -> Callable[[bytes], object]:
                seen["status"] = int(status.split(" ", 1)[0])
                return start_response(status, headers, exc_info)

            chunks = list(app(environ, recording_start_response))
            log(seen["status"], request_bytes, sum(len(chunk) for chunk in chunks))
            return chunks

        handler = ServerHandler(
            self.rfile, cast(IO[bytes], self.wfile), self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref reads it; typeshed omits it
        token = self.server.context.log.begin()
        try:
            handler.run(logging_app)
        finally:
            self.server.context.log.end(token)

    def _drain_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_failure(self, fault: Fault, request_bytes: int, log: Callable[[int, int, int], None]) -> None:
        """An HTML error page like Apple's edge servers send; optionally cut off midway."""
        body = (
            f"<html><head><title>{fault.status}</title></head><body><h1>{fault.status} "
            "Service Unavailable</h1><p>The server is temporarily unable to service your "
            "request. Please try again later.</p></body></html>\n"
        ).encode()
        head = [
            f"HTTP/1.1 {fault.status} {'Service Unavailable' if fault.status == 503 else 'Error'}",
            "Content-Type: text/html; charset=utf-8",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if fault.retry_after is not None:
            head.append(f"Retry-After: {fault.retry_after}")
        sent = body[: len(body) // 3] if fault.truncate_body else body
        log(fault.status, request_bytes, len(sent))
        with contextlib.suppress(OSError):
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
            self.wfile.flush()

    def _reset_connection(self) -> None:
        """Close with SO_LINGER 0 so the peer gets an RST instead of an answer."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                stream.close()
        with contextlib.suppress(OSError):
            self.connection.close()


class Listener:
    """One or more bound sockets serving the same context in background threads."""

    def __init__(self) -> None:
        self._servers: list[ThreadingWSGIServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._servers[0].server_address[1])

    def retarget(self, app: WSGIApp, label: str) -> None:
        """Answer every later request with `app` instead (a partition host the account left),
        logged under `label`."""
        for server in self._servers:
            server.context.app = app
            server.context.host_label = label

    def bind(self, host: str, port: int, context: ListenerContext, family: int = socket.AF_INET) -> int:
        server = ThreadingWSGIServer((host, port), context, family)
        self._servers.append(server)
        return int(server.server_address[1])

    def start(self, name: str) -> None:
        for index, server in enumerate(self._servers):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        started = bool(self._threads)
        for server in self._servers:
            if started:  # shutdown() waits forever on a server that never served
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()


PartitionFate = Literal["closed", "redirect", "gone"]


def elsewhere(new_base: str, fate: PartitionFate) -> WSGIApp:
    """What a partition host says once the account lives on `new_base`: a 301 to the same
    path there, or 404 for everything."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with contextlib.suppress(Exception):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length > 0:
                environ["wsgi.input"].read(length)
        if fate == "redirect":
            location = new_base.rstrip("/") + str(environ.get("PATH_INFO") or "/")
            start_response("301 Moved Permanently", [("Location", location), ("Content-Length", "0")])
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    return app


def localhost_families() -> list[int]:
    """Address families `localhost` resolves to here (IPv6 first if the resolver says so)."""
    families: list[int] = []
    with contextlib.suppress(OSError):
        for family, *_ in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM):
            if family in (socket.AF_INET, socket.AF_INET6) and family not in families:
                families.append(family)
    return families or [socket.AF_INET]
