"""Kept HTTP/1.1 connections to the local server: every request is still checked on its own.

A connection carries no login, no Host decision and no leftover body bytes from one request
to the next; anything that could leave it unclean closes it.
"""

from __future__ import annotations

import base64
import http.client
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calmirror.local import LocalServer, http11
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import event

FREEBUSY = (
    b'<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b'<C:time-range start="20261201T000000Z" end="20261231T000000Z"/></C:free-busy-query>'
)
ANSWER = "BEGIN:VCALENDAR\r\nBEGIN:VFREEBUSY\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


RIGHT = basic(USER, PASSWORD)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    srv = LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD)
    srv.freebusy = lambda path, start, end: ANSWER
    srv.start()
    yield srv
    srv.stop()


def address(server: LocalServer) -> tuple[str, int]:
    host, port = server.url.rstrip("/").removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def connect(server: LocalServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(*address(server), timeout=10)


def report(
    conn: http.client.HTTPConnection, authorization: str | None = RIGHT, **headers: str
) -> http.client.HTTPResponse:
    sent = {"Depth": "1", "Content-Type": "application/xml", **headers}
    if authorization is not None:
        sent["Authorization"] = authorization
    conn.request("REPORT", f"/{USER}/busy/", FREEBUSY, sent)
    return conn.getresponse()


def test_many_requests_share_one_connection(server: LocalServer) -> None:
    conn = connect(server)
    first = report(conn)
    assert first.status == 200 and first.read().decode() == ANSWER
    assert not first.will_close
    sock = conn.sock
    for _ in range(5):
        again = report(conn)
        assert again.status == 200 and again.read().decode() == ANSWER
    assert conn.sock is sock  # never reconnected
    conn.close()


def test_every_request_on_a_kept_connection_is_authenticated(server: LocalServer) -> None:
    conn = connect(server)
    first = report(conn)
    assert first.status == 200 and b"VFREEBUSY" in first.read()
    answers = []
    for authorization in (None, basic(USER, "wrong"), basic("eve", PASSWORD), RIGHT):
        answer = report(conn, authorization)
        body = answer.read()
        answers.append(answer.status)
        if answer.status == 401:
            assert b"VFREEBUSY" not in body  # no busy time without the password
        if answer.will_close:
            conn = connect(server)
    assert answers == [401, 401, 401, 200]
    conn.close()


def test_every_request_on_a_kept_connection_has_its_host_checked(server: LocalServer) -> None:
    conn = connect(server)
    first = report(conn)
    first.read()
    assert first.status == 200
    rebound = report(conn, Host="attacker.example")
    assert rebound.status == 421 and b"VFREEBUSY" not in rebound.read()
    conn.close()


def raw_exchange(server: LocalServer, data: bytes, wait_s: float = 3.0) -> bytes:
    """Send `data` on one connection and read until the server closes it or goes quiet."""
    with socket.create_connection(address(server), timeout=wait_s) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def test_an_unread_body_is_never_taken_for_the_next_request(server: LocalServer) -> None:
    """An anonymous PUT is answered 401 by Radicale without reading its body; the body (here
    shaped like a request of its own) must not be answered as one."""
    host = "{}:{}".format(*address(server))
    smuggled = f"GET /{USER}/appointments/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: {RIGHT}\r\n\r\n".encode()
    put = (
        f"PUT /{USER}/appointments/x.ics HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/calendar\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n"
    ).encode() + smuggled
    follow = f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    received = raw_exchange(server, put + follow)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"401", b"200"], received[:600]


def test_a_large_unread_body_closes_the_connection(server: LocalServer) -> None:
    host = "{}:{}".format(*address(server))
    body = b"x" * (http11.MAX_DRAIN_BYTES + 10)
    put = (
        f"PUT /{USER}/appointments/x.ics HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/calendar\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    received = raw_exchange(server, put + f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert received.startswith(b"HTTP/1.1 401") and received.count(b"HTTP/1.1 ") == 1
    assert b"\r\nConnection: close\r\n" in received  # the client is told, not left to find out


def test_http_1_0_and_connection_close_get_one_answer_per_connection(server: LocalServer) -> None:
    host = "{}:{}".format(*address(server))
    for request in (
        f"OPTIONS / HTTP/1.0\r\nHost: {host}\r\n\r\n",
        f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
    ):
        twice = (request * 2).encode()
        received = raw_exchange(server, twice)
        assert received.count(b" 200 ") == 1, received[:300]


def test_a_chunked_body_is_refused_and_the_connection_closed(server: LocalServer) -> None:
    host = "{}:{}".format(*address(server))
    chunked = (
        f"PUT /{USER}/appointments/x.ics HTTP/1.1\r\nHost: {host}\r\nAuthorization: {RIGHT}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\n\r\n"
    ).encode()
    received = raw_exchange(server, chunked)
    assert received.startswith(b"HTTP/1.1 411") and received.count(b"HTTP/1.1 ") == 1
    assert b"\r\nConnection: close\r\n" in received


def test_two_content_lengths_close_the_connection(server: LocalServer) -> None:
    host = "{}:{}".format(*address(server))
    smuggled = f"GET /{USER}/appointments/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: {RIGHT}\r\n\r\n".encode()
    request = (
        f"REPORT /{USER}/busy/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: {RIGHT}\r\n"
        f"Content-Type: application/xml\r\nContent-Length: {len(FREEBUSY)}\r\n"
        f"Content-Length: {len(FREEBUSY) + len(smuggled)}\r\n\r\n"
    ).encode()
    received = raw_exchange(server, request + FREEBUSY + smuggled)
    assert received.count(b"HTTP/1.1 ") == 1 and b"\r\nConnection: close\r\n" in received, received[:400]


def test_a_put_head_and_get_on_one_connection(server: LocalServer) -> None:
    conn = connect(server)
    headers = {"Authorization": RIGHT, "Content-Type": "text/calendar"}
    conn.request("PUT", f"/{USER}/appointments/kept.ics", event("kept@local", "Kept").encode(), headers)
    created = conn.getresponse()
    created.read()
    assert created.status == 201
    conn.request("HEAD", f"/{USER}/appointments/kept.ics", headers={"Authorization": RIGHT})
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b"" and not head.will_close
    sock = conn.sock
    conn.request("GET", f"/{USER}/appointments/kept.ics", headers={"Authorization": RIGHT})
    got = conn.getresponse()
    assert got.status == 200 and b"kept@local" in got.read()
    assert conn.sock is sock
    conn.close()


def test_an_idle_kept_connection_is_closed_after_a_while(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http11, "IDLE_TIMEOUT_S", 0.3)
    with socket.create_connection(address(server), timeout=5) as sock:
        host = "{}:{}".format(*address(server))
        sock.sendall(f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        time.sleep(1.0)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200") and received.count(b"HTTP/1.1 ") == 1


def test_stop_does_not_wait_for_idle_kept_connections(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "store", port=0, username=USER, password=PASSWORD)
    srv.start()
    conn = connect(srv)
    conn.request("OPTIONS", "/")
    conn.getresponse().read()
    began = time.perf_counter()
    srv.stop(timeout=10)
    assert time.perf_counter() - began < 2
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("OPTIONS", "/")
        conn.getresponse()
    conn.close()


def test_expect_100_continue_is_answered_before_the_body(server: LocalServer) -> None:
    host = "{}:{}".format(*address(server))
    body = event("expect@local", "Expect").encode()
    head = (
        f"PUT /{USER}/appointments/expect.ics HTTP/1.1\r\nHost: {host}\r\nAuthorization: {RIGHT}\r\n"
        f"Content-Type: text/calendar\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(address(server), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n")  # before any body was sent
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 201")
