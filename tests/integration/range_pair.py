"""Two servers on one store folder, for comparing time-range answers: calmirror's `LocalServer`
with the time-range index, and Radicale's own `serve()` with the same storage settings (so
both read the same item cache) but its plain storage (`pair` in conftest), and the
calendar-query bodies sent to both."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import radicale.config
import radicale.server
import requests

from calmirror.local import LocalServer, LocalStore, range_query
from calmirror.local import server as local_server
from calmirror.local.radicale_config import build_configuration
from calmirror.state.ranges import RangeIndex
from calmirror.testing import LOCAL_PASSWORD as PASSWORD
from calmirror.testing import LOCAL_USER as USER
from tests.contract.servers import free_port, wait_accepting

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
MIRROR = f"/{USER}/icloud-work/"
BASE = dt.datetime(2026, 11, 2, 0, 0)  # a Monday near the machine's "now" and the index's recorded span


@dataclass
class Pair:
    indexed: str
    plain: str
    store: LocalStore
    index: RangeIndex
    server: LocalServer
    http: requests.Session

    def both(self, body: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
        """Both servers' answers; a status other than 207 (Radicale 3.9 answers 500 to `expand`
        on a floating series) must be the same on both and reads as one pseudo-response."""
        answers = []
        bodies: list[bytes] = []
        types: list[str] = []
        for base in (self.indexed, self.plain):
            answer = self.http.request(
                "REPORT",
                base + MIRROR.lstrip("/"),
                data=body.encode(),
                headers={"Depth": "1", "Content-Type": "application/xml"},
                timeout=60,
            )
            if answer.status_code == 207:
                answers.append(responses(answer.content))
                bodies.append(answer.content)  # decoded: Radicale compresses, the index's answer does not
                types.append(answer.headers.get("Content-Type", ""))
            else:
                answers.append([("status", str(answer.status_code))])
        if len(bodies) == 2:  # the same bytes, not only the same parsed responses
            assert bodies[0] == bodies[1] and types[0] == types[1], body
        return answers[0], answers[1]


def responses(body: bytes) -> list[tuple[str, ...]]:
    """Each response as (href, status, etag, calendar-data), in the answer's order."""
    found = []
    for response in ET.fromstring(body).findall(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        status = response.findtext(f"{DAV}propstat/{DAV}status") or response.findtext(f"{DAV}status") or ""
        etag = response.findtext(f".//{DAV}getetag") or ""
        data = response.findtext(f".//{CALDAV}calendar-data") or ""
        found.append((href, status, etag, data))
    return found


def quick_errors(*args: Any, **kwargs: Any) -> radicale.config.Configuration:
    """calmirror's configuration without Radicale's one-second pause before a 500."""
    configuration = build_configuration(*args, **kwargs)
    configuration.update({"server": {"delay_on_error": 0}}, "test")
    return configuration


@contextmanager
def served_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    """calmirror's `LocalServer` with the time-range index and Radicale's own `serve()` on one
    store folder, with a Work mirror and a signed-in session."""
    # Trust stamps at once, so the same store is queried through both the checked and the
    # trusted path (the rewrites here always make new files, so every stamp changes).
    monkeypatch.setattr(range_query, "RACY_NS", 0)
    monkeypatch.setattr(local_server, "build_configuration", quick_errors)
    store_dir = tmp_path / "store"
    index = RangeIndex(tmp_path / "ranges.db")
    server = LocalServer(store_dir, port=0, username=USER, password=PASSWORD, range_store=index)
    server.start()
    store = LocalStore(store_dir, USER)
    store.ensure_mirror("work", "Work", None)
    port = free_port()
    configuration = quick_errors(store_dir, port=port, auth_type="none")
    shutdown, shutdown_other = socket.socketpair()
    thread = threading.Thread(target=radicale.server.serve, args=(configuration, shutdown_other), daemon=True)
    thread.start()
    try:
        wait_accepting(port)
        with requests.Session() as http:
            http.auth = (USER, PASSWORD)
            yield Pair(server.url, f"http://127.0.0.1:{port}/", store, index, server, http)
    finally:
        shutdown.close()
        thread.join(10)
        shutdown_other.close()
        server.stop()
        index.close()


def query(filter_xml: str, data: str = "<c:calendar-data/>", etag: str = "<d:getetag/>") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop>{etag}{data}</d:prop><c:filter>{filter_xml}</c:filter></c:calendar-query>"
    )


def event_filter(inner: str) -> str:
    return f'<c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">{inner}</c:comp-filter></c:comp-filter>'
