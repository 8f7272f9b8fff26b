"""The local CalDAV server: Radicale behind our middleware, on a threaded WSGI server.

Radicale's own `serve()` cannot take middleware, does not report a port chosen as 0 and
has no ready signal, and its `ParallelHTTPServer` leaks a socketpair per request outside
its own loop. So this module binds the socket itself (port 0 works, "address in use" is
known at once), runs `wsgiref` with one thread per connection using Radicale's request
handler made to keep HTTP/1.1 connections (`http11`: a new connection and thread per
request were most of a quick REPORT's time), and polls until Radicale answers before
`start()` returns.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import socketserver
import threading
import time
import wsgiref.simple_server
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import radicale.app
import radicale.storage

from calmirror.errors import LocalServerError
from calmirror.local import expand, layout, radicale_errors, range_answer, uid_cache
from calmirror.local.answers import StartResponse
from calmirror.local.auth import AuthFactory, Credentials
from calmirror.local.errors import AddressInUse, NonLoopbackHost
from calmirror.local.fairness import gate_for
from calmirror.local.http11 import ConnectionTracker, RequestHandler
from calmirror.local.items import Limits
from calmirror.local.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    Environ,
    FreeBusy,
    Guard,
    Middleware,
    OnChange,
    WSGIApp,
)
from calmirror.local.radicale_config import build_configuration
from calmirror.local.range_query import IndexedStorage, RangeStore, storage_type, warm
from calmirror.local.store import LocalStore
from calmirror.web.front import front

expand.install()  # RFC 4791's expand in place of Radicale's (floating series, RDATEs)
radicale_errors.install()  # one line per 500, saying what failed

log = logging.getLogger("calmirror.local")

Request = socket.socket | tuple[bytes, socket.socket]  # what socketserver hands a handler

READY_TIMEOUT_S = 10.0


class _ThreadedWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    """One thread per connection; requests in flight counted, so `stop()` can wait for them."""

    daemon_threads = True
    request_queue_size = 128  # a burst of clients connecting at once must queue, not be refused
    block_on_close = False

    def __init__(self, address: tuple[str, int], family: int, request_timeout: float) -> None:
        self.address_family = family
        self._request_timeout = request_timeout
        self.connections = ConnectionTracker()
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Skip HTTPServer.server_bind: its getfqdn() can wait on DNS, and the name is unused.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def get_request(self) -> tuple[socket.socket, Any]:
        request, client_address = super().get_request()
        request.settimeout(self._request_timeout)
        return request, client_address

    def process_request(self, request: Request, client_address: tuple[str, int]) -> None:
        self.connections.opened(_socket_of(request))
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.closed(_socket_of(request))
            raise

    def process_request_thread(self, request: Request, client_address: tuple[str, int]) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.closed(_socket_of(request))

    def request_started(self, connection: socket.socket) -> bool:
        return self.connections.request_started(connection)

    def request_finished(self, connection: socket.socket) -> bool:
        return self.connections.request_finished(connection)

    def wait_idle(self, timeout: float) -> bool:
        self.connections.stop()
        return self.connections.wait_idle(timeout)

    def handle_error(self, request: Request, client_address: tuple[str, int]) -> None:
        log.debug("request from %s failed", client_address, exc_info=True)


def _socket_of(request: Request) -> socket.socket:
    return request[1] if isinstance(request, tuple) else request


def _indexed_report(storage: radicale.storage.BaseStorage, path: str, root: ET.Element, limit: int) -> bytes | None:
    """A calendar-query on a mirror answered from the index (`range_answer`), else None."""
    query = range_answer.plain_query(root)
    return None if query is None else range_answer.answer(storage, path, query, limit)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost6"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _resolve(host: str, port: int) -> tuple[int, tuple[str, int]]:
    if host.lower() == "localhost":
        return socket.AF_INET, ("127.0.0.1", port)
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    except OSError as error:
        raise LocalServerError(f"cannot resolve listen address {host!r}: {error}") from error
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _not_started(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return []


class LocalServer:
    """Radicale on loopback for the one local user. Set the callables before or after start."""

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 5232,
        allow_non_loopback: bool = False,
        username: str,
        password: str,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        on_change: OnChange | None = None,
        guard: Guard | None = None,
        freebusy: FreeBusy | None = None,
        request_timeout: float = 30.0,
        range_store: RangeStore | None = None,
    ) -> None:
        if not is_loopback(host) and not allow_non_loopback:
            raise NonLoopbackHost(host)
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.username = username
        self.credentials = Credentials(username, password)
        self.request_timeout = request_timeout
        self.range_store = range_store  # time-range queries on mirrors from this index (`range_query`)
        self._middleware = Middleware(
            _not_started,
            self.credentials,
            max_body_bytes=max_body_bytes,
            on_change=on_change,
            guard=guard,
            freebusy=freebusy,
            fairness=gate_for(self.store_dir),
        )
        self.web: WSGIApp | None = None  # the page under /.calmirror/, set by the daemon
        self._storage: radicale.storage.BaseStorage | None = None
        self._httpd: _ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # The daemon wires these after construction; they take effect for the next request.
    @property
    def on_change(self) -> OnChange | None:
        return self._middleware.on_change

    @on_change.setter
    def on_change(self, value: OnChange | None) -> None:
        self._middleware.on_change = value

    @property
    def guard(self) -> Guard | None:
        return self._middleware.guard

    @guard.setter
    def guard(self, value: Guard | None) -> None:
        self._middleware.guard = value

    @property
    def bookings_one_at_a_time(self) -> Callable[[], bool]:
        """Whether appointments are written one at a time from the guard's check on (`middleware`)."""
        return self._middleware.bookings_one_at_a_time

    @bookings_one_at_a_time.setter
    def bookings_one_at_a_time(self, value: Callable[[], bool]) -> None:
        self._middleware.bookings_one_at_a_time = value

    @property
    def freebusy(self) -> FreeBusy | None:
        return self._middleware.freebusy

    @freebusy.setter
    def freebusy(self, value: FreeBusy | None) -> None:
        self._middleware.freebusy = value

    def warm_ranges(self, collection: str, should_stop: Callable[[], bool]) -> int:
        """Warm the time-range index of one mirror (`range_query.warm`); 0 without an index."""
        storage = self._storage
        if not isinstance(storage, IndexedStorage) or not layout.is_mirror(collection):
            return 0
        gate = gate_for(self.store_dir)
        return warm(storage, f"/{self.username}/{collection}/", gate.before_reading, should_stop)

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> str:
        """Bind, make sure the base collections exist, serve; returns the base URL."""
        if self._httpd is not None:
            return self.url
        family, address = _resolve(self.host, self.port)
        httpd = self._bind(family, address)
        try:
            bound_host, bound_port = str(httpd.server_address[0]), int(httpd.server_address[1])
            shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
            self._prepare_radicale(bound_port)
            httpd.set_app(front(self._middleware, lambda: self.web, self.host, bound_host, bound_port))
            thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="calmirror-http", daemon=True
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
            self.url = f"http://{shown}:{bound_port}/"
            self._wait_until_answering((bound_host, bound_port), family)
        except BaseException:
            self.stop(timeout=1.0)
            httpd.server_close()
            raise
        log.info("local calendar server listening on %s", self.url)
        return self.url

    def _bind(self, family: int, address: tuple[str, int]) -> _ThreadedWSGIServer:
        try:
            return _ThreadedWSGIServer(address, family, self.request_timeout)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise AddressInUse(self.host, self.port) from error
            raise LocalServerError(f"cannot listen on {self.host}:{self.port}: {error.strerror or error}") from error

    def _prepare_radicale(self, port: int) -> None:
        radicale_log = logging.getLogger("radicale")
        if radicale_log.level == logging.NOTSET:
            radicale_log.setLevel(logging.WARNING)  # Radicale logs every request at INFO
        LocalStore(self.store_dir, self.username).ensure_base()
        configuration = build_configuration(
            self.store_dir,
            host=self.host,
            port=port,
            auth_type=AuthFactory(self.credentials),
            storage_type=uid_cache.storage_type() if self.range_store is None else storage_type(self.range_store),
        )
        try:
            self._middleware.app = radicale.app.Application(configuration)
            storage = radicale.storage.load(configuration)  # the same flock as the app's and LocalStore's
        except (OSError, RuntimeError, ValueError) as error:
            raise LocalServerError(f"Radicale cannot start on {self.store_dir}: {error}") from error
        self._middleware.read_lock = lambda: storage.acquire_lock("r", "calmirror")
        if self.range_store is not None:
            limit = configuration.get("reporting", "max_expand_occurrence")
            self._middleware.report = lambda path, root: _indexed_report(storage, path, root, limit)
        self._storage = storage
        self._middleware.limits = Limits.of(configuration)

    def _wait_until_answering(self, address: tuple[str, int], family: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    probe.settimeout(2.0)
                    probe.connect(address)
                    probe.sendall(b"OPTIONS / HTTP/1.0\r\n\r\n")
                    if probe.recv(5) == b"HTTP/":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LocalServerError(f"the local calendar server on {self.url} did not answer")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (up to `timeout` s), close."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        deadline = time.monotonic() + timeout
        httpd.shutdown()
        httpd.server_close()
        if not httpd.wait_idle(max(0.0, deadline - time.monotonic())):
            log.warning("stopped the local calendar server with requests still running")
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = self._thread = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
