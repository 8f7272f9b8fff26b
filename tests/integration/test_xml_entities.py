"""XML with a DOCTYPE or entities, one of the security promises (`test_security.py`): refused
by the local server (400, for every XML method, before or after the login) and by the client
(a multistatus from "iCloud" carrying one is never parsed with it, nothing external is
fetched, nothing is stored)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from calmirror import config_edit, credentials
from calmirror.account import connect
from calmirror.errors import BadRemoteData
from calmirror.home import Home
from calmirror.state import State
from tests.corpus_server import XXE_DTD, CorpusServer, FakeCalendar
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, engine_for
from tests.hostile_corpus import good_event

# --- XML with external entities -----------------------------------------------------------------

XXE_BODIES = {
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&xxe;</d:displayname></d:prop>'
        "</d:propfind>"
    ),
    "external DTD": (
        '<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">'
        '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>'
    ),
    "parameter entity": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
        '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/></d:prop></d:propfind>'
    ),
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(9))
        + ']><d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&j;</d:displayname></d:prop>'
        "</d:propfind>"
    ),
}


def test_the_local_server_refuses_xml_entities_for_every_xml_method(running: Running) -> None:
    base = f"{running.url}{running.auth[0]}/"
    passwd = Path("/etc/passwd").read_text(errors="replace").splitlines()[0]
    targets = (
        ("PROPFIND", base),
        ("PROPFIND", base + "icloud-home/"),
        ("REPORT", base + "appointments/"),
        ("PROPPATCH", base + "appointments/"),
        ("MKCALENDAR", base + "new/"),
        ("MKCOL", base + "new/"),
    )
    jobs = [
        (kind, method, target, login)
        for kind in XXE_BODIES
        for method, target in targets
        for login in (running.auth, None)
    ]

    def attempt(
        job: tuple[str, str, str, tuple[str, str] | None],
    ) -> tuple[tuple[str, str, str, bool], int, str, float]:
        kind, method, target, login = job
        started = time.monotonic()
        answer = requests.request(method, target, data=XXE_BODIES[kind], auth=login, headers={"Depth": "0"}, timeout=30)
        return (kind, method, target, login is None), answer.status_code, answer.text, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=24) as pool:  # the anonymous ones each wait ~1 s for their 401
        results = list(pool.map(attempt, jobs))
    for (kind, method, target, anonymous), code, text, took in results:
        assert code == (401 if anonymous else 400), (kind, method, target, anonymous, code)
        assert passwd not in text and "aaaaaaaaaaaaaaaaaaaa" not in text
        assert anonymous or took < 2, (kind, method, took)


def test_the_client_refuses_xml_entities_in_discovery_and_in_a_sync_answer(tmp_path: Path) -> None:
    calendar = FakeCalendar("XXE", "XXE", {f"x{n}.ics": good_event(n) for n in range(3)}, evil_listing="doctype")
    with CorpusServer(APPLE_ID, APP_PASSWORD, [calendar]) as server:
        home = Home(config_file=tmp_path / "config.toml", data_dir=tmp_path)
        home.ensure()
        original = server._resp

        def evil_discovery(href: str, props: str, status: str = "200 OK") -> str:
            return original(href, props.replace("</d:href>", "&xxe;</d:href>"), status)

        from calmirror import config

        state = State(home.state_db)
        try:
            server._resp = evil_discovery  # type: ignore[method-assign]
            server._ms = lambda inner, prolog="", extra="", _ms=server._ms: (  # type: ignore[method-assign]
                _ms(inner, prolog=XXE_DTD.format(base=server.url), extra=extra)
            )
            with pytest.raises(BadRemoteData, match="DOCTYPE"):
                connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD, server.url)
            assert state.account() is None
            assert not (home.secrets_dir / credentials.ICLOUD_FILE).exists()  # nothing stored on failure
            del server._resp, server._ms  # honest discovery, hostile sync answer
            connect(home, config.load(home.config_file), state, APPLE_ID, APP_PASSWORD, server.url)
        finally:
            state.close()
        config_edit.set_conflicts(home.config_file, ["XXE"])
        engine = engine_for(home)
        client = engine.client()
        try:
            report = engine.mirror_pass(client)[0]
        finally:
            client.close()
            engine.state.close()
        assert report.error and "DOCTYPE" in report.error
        assert not [path for _, path in server.requests if "evil.dtd" in path]
