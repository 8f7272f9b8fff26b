"""The front of the local server: the Host check, then the page or CalDAV.

DNS rebinding: a web page on attacker.example can make its name resolve to 127.0.0.1 and
then talk to this server from the user's own browser, which sends `Host: attacker.example`.
So every request, CalDAV included, must name this server's own address. A request with no
Host header at all (HTTP/1.0 tools, the readiness probe) cannot come from a browser and
passes. An IP literal cannot be rebound, so on a wildcard bind (`allow_non_loopback`) any
IP literal with our port passes too.

Kept free of heavy imports: the local server imports it, the page is loaded only when served.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

PREFIX = "/.calmirror"


def _bracketed(host: str) -> str:
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def own_hosts(configured: str, bound: str, port: int) -> frozenset[str]:
    """Every `Host` value that names this server: the configured and bound addresses and
    `localhost` (a name browsers never resolve through DNS), with the port."""
    names = {_bracketed(configured).lower(), _bracketed(bound).lower(), "localhost"}
    names |= {name.strip("[]") for name in names}  # some clients (urllib3 2) send `::1:5232` unbracketed
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return frozenset(hosts)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _ip_literal_with_port(value: str, port: int) -> bool:
    host, sep, given = value.rpartition(":")
    if not sep or given != str(port):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class HostCheck:
    """Refuses (421, one line) a request whose Host header is not this server's own address."""

    def __init__(self, app: WSGIApp, hosts: frozenset[str], port: int, *, wildcard: bool = False) -> None:
        self.app, self.hosts, self.port, self.wildcard = app, hosts, port, wildcard
        shown = sorted(h for h in hosts if not h.startswith("localhost"))
        self.refusal = (
            f"refused: this server answers only to its own address ({', '.join(shown) or 'localhost'}); "
            "open it by that address\n"
        ).encode()

    def allowed(self, host: str | None) -> bool:
        if host is None:
            return True
        value = host.strip().lower()
        if value in self.hosts:
            return True
        return self.wildcard and _ip_literal_with_port(value, self.port)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.allowed(environ.get("HTTP_HOST")):
            return self.app(environ, start_response)
        start_response(
            "421 Misdirected Request",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(self.refusal))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [self.refusal]


class Front:
    """`/.calmirror/…` goes to the page (when the daemon has one), everything else to CalDAV."""

    def __init__(self, caldav: WSGIApp, page: Callable[[], WSGIApp | None]) -> None:
        self.caldav, self.page = caldav, page

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        page = self.page()
        if page is not None and (path == PREFIX or path.startswith(PREFIX + "/")):
            return page(environ, start_response)
        return self.caldav(environ, start_response)


def front(caldav: WSGIApp, page: Callable[[], WSGIApp | None], configured: str, bound: str, port: int) -> WSGIApp:
    """What the local server serves: the Host check in front of the page and CalDAV."""
    return HostCheck(Front(caldav, page), own_hosts(configured, bound, port), port, wildcard=_is_wildcard(bound))
