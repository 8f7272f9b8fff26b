"""Every shape Radicale cannot take verbatim reaches local clients, at the right time.

iCloud (the emulator, which keeps such objects byte for byte) holds a master-less
invitation, a daily COUNT=1000000000 reminder, RDATE periods and two different
`Customized Time Zone` definitions. The real daemon mirrors them into the real local
server; time-range calendar-query REPORTs over HTTP must find each one exactly in the
windows where iCloud's own text says it is busy, and status counts them honestly.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import requests

from calmirror import status as status_mod
from calmirror.compat import COMPAT_MARKER, COPY_OF, horizon_for
from calmirror.emulator import Emulator
from tests.helpers import Running, connected_home, daemon_running, engine_for, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "icloud"
SHAPES = {
    "invitation": "Work/invitation-two-occurrences-no-master-berlin.ics",
    "vitamins": "Home/vitamins-daily-count-1e9-reminder-berlin.ics",
    "workshop": "Work/workshop-rdate-periods-berlin.ics",
    "plus3": "Work/exchange-customized-tz-plus3.ics",
    "eastern": "Work/exchange-customized-tz-us-eastern.ics",
}
# (window start, window end) in UTC -> the shapes a client must find there, from the
# fixtures README (worked out by hand), and nothing else of these shapes.
WINDOWS = [
    ("20261203T141000Z", "20261203T142000Z", {"invitation"}),
    ("20261217T141000Z", "20261217T142000Z", set()),  # the occurrence that moved away
    ("20261223T084000Z", "20261223T085000Z", {"invitation"}),  # ...to here
    ("20270601T060100Z", "20270601T060200Z", {"vitamins"}),  # a day far into "forever" (CEST)
    ("20261202T140000Z", "20261202T141000Z", {"workshop"}),  # inside a 3-hour period
    ("20261204T163000Z", "20261204T164000Z", {"workshop"}),  # the UTC period
    ("20261209T071000Z", "20261209T072000Z", {"plus3"}),  # +03:00
    ("20261209T101000Z", "20261209T102000Z", set()),  # where a UTC reading would put it
    ("20270316T131000Z", "20270316T132000Z", {"eastern"}),  # US daylight time, its own rules
    ("20270316T061000Z", "20270316T062000Z", set()),  # where the +03:00 definition would put it
]
UIDS = {
    name: re.search(r"^UID:(.*?)\r?$", (FIXTURES / path).read_text(encoding="utf-8"), re.M).group(1)  # type: ignore[union-attr]
    for name, path in SHAPES.items()
}
QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:filter>'
    "</C:calendar-query>"
)


def found(run: Running, start: str, end: str) -> set[str]:
    answer = requests.request(
        "REPORT",
        run.collection_url("icloud-shapes"),
        data=QUERY.format(start=start, end=end),
        auth=run.auth,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=30,
    )
    assert answer.status_code == 207, answer.text[:500]
    return {name for name, uid in UIDS.items() if f"UID:{uid}" in answer.text.replace("\r\n ", "")}


def test_each_shape_is_found_by_time_range_queries_exactly_where_icloud_says(tmp_path: Path, emu: Emulator) -> None:
    cal_id = emu.create_calendar("Shapes")
    for name, path in SHAPES.items():
        emu.put_item(cal_id, f"{name}.ics", (FIXTURES / path).read_text(encoding="utf-8"))
    home = connected_home(tmp_path, emu, linked=None, conflicts=("Shapes",))
    with daemon_running(home) as run:
        state = run.state()
        try:
            assert wait_for(lambda: len(state.mirror_texts(cal_id)) == len(SHAPES), 60), "not mirrored"
            local = run.daemon.engine.store.items("icloud-shapes")
            assert len(local) == len(SHAPES)  # every shape reaches local clients
            for text in local.values():
                assert f"{COMPAT_MARKER}:" in text and f"{COPY_OF}:" in text.replace("\r\n ", "")
            for start, end, expected in WINDOWS:
                assert found(run, start, end) == expected, (start, end)
            texts = {href.rsplit("/", 1)[-1]: text for href, text in state.mirror_texts(cal_id).items()}
            for name, path in SHAPES.items():  # the exact text is kept, byte for byte (CRLF as served)
                assert texts[f"{name}.ics"] == (FIXTURES / path).read_bytes().decode().replace("\r\n", "\n").replace(
                    "\n", "\r\n"
                )
            mirror = next(
                m for m in status_mod.gather(home, run.daemon.settings, state)["mirrors"] if m["id"] == cal_id
            )
        finally:
            state.close()
    assert mirror["copies"] == {"exact": 0, "compatible": 5, "withheld": 0, "unreadable": 0}
    reasons = " ".join(mirror["copy_reasons"]["compatible"])
    for words in ("master added", "RDATE periods", "bounded by UNTIL", "time zones renamed"):
        assert words in reasons
    assert not mirror["availability_incomplete"]
    json.dumps(mirror)  # status --json can print it


def test_copies_bounded_at_an_older_horizon_are_derived_again_without_asking_icloud(
    tmp_path: Path, emu: Emulator
) -> None:
    cal_id = emu.create_calendar("Shapes")
    emu.put_item(cal_id, "vitamins.ics", (FIXTURES / SHAPES["vitamins"]).read_text(encoding="utf-8"))
    home = connected_home(tmp_path, emu, linked=None, conflicts=("Shapes",))
    engine = engine_for(home)
    try:
        client = engine.client()
        try:
            engine.mirror_pass(client)
            (entry,) = engine.state.mirror_items(cal_id).values()
            assert entry.copy == "compatible" and entry.horizon == horizon_for(date.today()).isoformat()
            with engine.state.transaction() as db:  # as if derived years ago
                db.execute("UPDATE mirror_items SET horizon = '2020-01-01'")
            engine.store.apply_mirror("shapes", [], [entry.local_href])  # an old copy's bytes gone too
            emu.clear_requests()
            engine.mirror_pass(client)
        finally:
            client.close()
        (again,) = engine.state.mirror_items(cal_id).values()
        assert again.horizon == entry.horizon and again.etag == entry.etag
        assert [r.method for r in emu.requests if cal_id in r.path] == ["REPORT"]  # no multiget: from the kept text
        text = engine.store.items("icloud-shapes")[entry.local_href]
        assert f"UNTIL={int(entry.horizon[:4]) - 1}1231" in text.replace("\r\n ", "")
    finally:
        engine.state.close()
