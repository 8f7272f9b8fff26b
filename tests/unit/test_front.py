"""The Host check in front of the page and CalDAV: which Host values name this server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from calmirror.web.front import Front, HostCheck, front, own_hosts


def _ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"caldav"]


def _ask(app: Any, host: str | None, path: str = "/") -> tuple[str, bytes]:
    seen: list[str] = []
    environ: dict[str, Any] = {"PATH_INFO": path}
    if host is not None:
        environ["HTTP_HOST"] = host
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], body


def test_own_addresses_pass_and_others_are_refused_with_one_line() -> None:
    app = front(_ok, lambda: None, "127.0.0.1", "127.0.0.1", 5232)
    for host in ("127.0.0.1:5232", "localhost:5232", "LOCALHOST:5232", None):
        assert _ask(app, host)[0] == "200 OK"
    for host in ("evil.example:5232", "127.0.0.1:5233", "127.0.0.1", "localhost", "127.0.0.2:5232", ""):
        status, body = _ask(app, host)
        assert status.startswith("421") and body.count(b"\n") == 1 and b"127.0.0.1:5232" in body


def test_ipv6_in_either_spelling_and_ip_literals_on_a_wildcard_bind() -> None:
    assert {"[::1]:5232", "::1:5232", "localhost:5232"} <= own_hosts("::1", "::1", 5232)
    wildcard = front(_ok, lambda: None, "0.0.0.0", "0.0.0.0", 5232)
    assert _ask(wildcard, "192.168.1.20:5232")[0] == "200 OK"
    assert _ask(wildcard, "rebound.example:5232")[0].startswith("421")
    assert _ask(wildcard, "192.168.1.20:80")[0].startswith("421")
    loopback = HostCheck(_ok, own_hosts("127.0.0.1", "127.0.0.1", 5232), 5232)
    assert not loopback.allowed("192.168.1.20:5232")


def test_the_page_prefix_goes_to_the_page_and_the_rest_to_caldav() -> None:
    def page(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"page"]

    routed = Front(_ok, lambda: page)
    assert _ask(routed, None, "/.calmirror/week")[1] == b"page"
    assert _ask(routed, None, "/.calmirror")[1] == b"page"
    assert _ask(routed, None, "/.calmirrorx/")[1] == b"caldav"
    assert _ask(routed, None, "/user/appointments/")[1] == b"caldav"
    assert _ask(Front(_ok, lambda: None), None, "/.calmirror/week")[1] == b"caldav"
