"""Availability through the running daemon: the free-busy REPORT agrees with the CLI, and the
double-booking guard rejects or warns."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import requests

from calmirror.availability.engine import merge
from calmirror.availability.sources import from_vfreebusy
from calmirror.emulator import Emulator
from tests.helpers import APPLE_ID, Running, busy_json, connected_home, event, start_daemon, status_json, wait_for

FREEBUSY = (
    '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20261201T000000Z" end="20261215T000000Z"/></C:free-busy-query>'
)


def daemon_with(tmp_path: Path, emu: Emulator, guard: str) -> Running:
    home = connected_home(
        tmp_path, emu, conflicts=("Work", "Home"), extra_config=f'\n[availability]\nguard = "{guard}"\n'
    )
    return start_daemon(home)


def report_busy(run: Running, collection: str) -> list[tuple[datetime, datetime]]:
    answer = requests.request(
        "REPORT",
        run.href(collection, ""),
        data=FREEBUSY,
        auth=run.auth,
        timeout=30,
        headers={"Depth": "1", "Content-Type": "application/xml"},
    )
    assert answer.status_code == 200, answer.text[:300]
    return from_vfreebusy(answer.content)


def test_free_busy_report_agrees_with_the_cli(tmp_path: Path, emu: Emulator) -> None:
    run = daemon_with(tmp_path, emu, "off")
    try:
        assert (
            run.put(
                "a.ics", event("appt-fb", "Client call", start="20261203T090000Z", end="20261203T100000Z")
            ).status_code
            == 201
        )
        cli = busy_json(run.home.data_dir, "--no-daemon")  # the engine in a fresh process, not the server
        assert busy_json(run.home.data_dir) == cli  # and the CLI asking the running daemon
        assert cli, "the sample calendars have busy time in the first half of December"
        assert (datetime(2026, 12, 3, 9, tzinfo=UTC), datetime(2026, 12, 3, 10, tzinfo=UTC)) in cli
        assert report_busy(run, "busy") == cli
    finally:
        run.stop()


def test_free_busy_answers_for_the_collection_it_is_sent_to(tmp_path: Path, emu: Emulator) -> None:
    """RFC 4791 §7.10: each calendar's own busy time; `busy/` has all of it together."""
    run = daemon_with(tmp_path, emu, "off")
    appointment = (datetime(2026, 12, 3, 9, tzinfo=UTC), datetime(2026, 12, 3, 10, tzinfo=UTC))
    blocked = (datetime(2026, 12, 4, 12, tzinfo=UTC), datetime(2026, 12, 4, 13, tzinfo=UTC))
    try:
        assert run.put("a.ics", event("appt-own", "Call", start="20261203T090000Z", end="20261203T100000Z")).ok
        lunch = event("blocked-own", "Lunch", start="20261204T120000Z", end="20261204T130000Z")
        assert run.put("b.ics", lunch, collection="blocked").ok
        combined = busy_json(run.home.data_dir, "--no-daemon")
        assert report_busy(run, "busy") == combined
        assert report_busy(run, "appointments") == [appointment]
        assert report_busy(run, "blocked") == [blocked]
        work, home = report_busy(run, "icloud-work"), report_busy(run, "icloud-home")
        assert work and home and work != home
        assert blocked not in work and blocked not in home
        assert work != combined and home != combined  # one mirror alone is not everything
        assert merge([appointment, blocked, *work, *home]) == combined
    finally:
        run.stop()


def test_guard_reject_answers_409_with_a_reason(tmp_path: Path, emu: Emulator) -> None:
    run = daemon_with(tmp_path, emu, "reject")
    try:
        # Work's partner check-in is busy 2026-12-08 16:00-17:00Z
        clash = run.put("clash.ics", event("clash-1", "Overlaps", start="20261208T163000Z", end="20261208T170000Z"))
        assert clash.status_code == 409 and "busy" in clash.text
        assert (
            run.put(
                "free.ics", event("free-1", "Free time", start="20261208T180000Z", end="20261208T183000Z")
            ).status_code
            == 201
        )
        assert requests.get(run.href("appointments", "clash.ics"), auth=run.auth, timeout=10).status_code == 404
        assert wait_for(lambda: any("UID:free-1" in b for b in emu.items(emu.calendar_id("Work")).values()), 3)
        assert not any("UID:clash-1" in b for b in emu.items(emu.calendar_id("Work")).values())
    finally:
        run.stop()


def test_guard_warn_accepts_and_status_reports_it(tmp_path: Path, emu: Emulator) -> None:
    run = daemon_with(tmp_path, emu, "warn")
    try:
        answer = run.put(
            "clash.ics", event("clash-2", "Double booked", start="20261208T160000Z", end="20261208T163000Z")
        )
        assert answer.status_code == 201
        status = status_json(run.home)
        assert [w["uid"] for w in status["guard"]["warnings"]] == ["clash-2"]
    finally:
        run.stop()


def test_a_restarted_daemon_guards_its_first_put_without_parsing_the_mirrors(tmp_path: Path, emu: Emulator) -> None:
    """The busy index survives the restart: the guard parses the candidate only, so the first
    PUT is answered at once instead of after every mirrored event is read again."""
    from calmirror.availability import spans

    run = daemon_with(tmp_path, emu, "reject")
    run.stop()
    before = spans.parsed
    run = start_daemon(run.home)
    try:
        clash = run.put("clash.ics", event("clash-3", "Overlaps", start="20261208T163000Z", end="20261208T170000Z"))
        assert clash.status_code == 409 and "busy" in clash.text
        free = run.put("free.ics", event("free-3", "Free time", start="20261208T180000Z", end="20261208T183000Z"))
        assert free.status_code == 201
        assert spans.parsed - before <= 1  # at most the new appointment's own entry; no mirrored event
        again = run.put(
            "again.ics", event("clash-4", "Overlaps mine", start="20261208T181500Z", end="20261208T190000Z")
        )
        assert again.status_code == 409  # the appointment just written counts at once
    finally:
        run.stop()


def _freebusy_lines(url: str, auth: tuple[str, str], query: str = FREEBUSY) -> list[str]:
    """The FREEBUSY lines of a free-busy REPORT's answer, unfolded, as `FBTYPE=KIND:PERIOD`."""
    answer = requests.request(
        "REPORT", url, data=query, auth=auth, timeout=30, headers={"Depth": "1", "Content-Type": "application/xml"}
    )
    assert answer.status_code == 200, answer.text[:300]
    text = re.sub(r"\r?\n[ \t]", "", answer.text)
    return re.findall(r"^FREEBUSY;(FBTYPE=[A-Z-]+:[0-9TZ/]+)\r?$", text, re.MULTILINE)


#: The plain shapes both servers read alike: STATUS alone decides (Radicale reads no PARTSTAT).
PLAIN = {
    "confirmed.ics": event(
        "fb-confirmed", start="20261202T090000Z", end="20261202T100000Z", extra="STATUS:CONFIRMED\r\n"
    ),
    "tentative.ics": event(
        "fb-tentative", start="20261202T110000Z", end="20261202T120000Z", extra="STATUS:TENTATIVE\r\n"
    ),
    "plain.ics": event("fb-plain", start="20261202T130000Z", end="20261202T140000Z"),
    "tentative-later.ics": event(
        "fb-tentative-2", start="20261203T150000Z", end="20261203T160000Z", extra="STATUS:TENTATIVE\r\n"
    ),
}


def test_free_busy_reports_tentative_time_as_busy_tentative(tmp_path: Path, emu: Emulator) -> None:
    """RFC 4791 §7.10 / RFC 5545 §3.2.9: tentative time is FBTYPE=BUSY-TENTATIVE, per collection
    and on `busy/`; where firm and tentative busy time overlap, BUSY wins for that stretch. For
    the plain shapes the answer is Radicale's own free-busy answer for the same events."""
    from tests.contract.servers import radicale_server

    run = daemon_with(tmp_path, emu, "off")
    me = APPLE_ID
    invited = (
        "ORGANIZER:mailto:boss@example.net\r\n"
        f"ATTENDEE;PARTSTAT=TENTATIVE:mailto:{me}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:boss@example.net\r\n"
    )
    others = {
        "partstat.ics": event("fb-partstat", start="20261204T090000Z", end="20261204T100000Z", extra=invited),
        "cdo.ics": event(
            "fb-cdo", start="20261204T110000Z", end="20261204T120000Z", extra="X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\n"
        ),
        # tentative 14:00-17:00 under a firm 15:00-16:00: BUSY-TENTATIVE before and after only
        "wide.ics": event("fb-wide", start="20261205T140000Z", end="20261205T170000Z", extra="STATUS:TENTATIVE\r\n"),
        "firm.ics": event("fb-firm", start="20261205T150000Z", end="20261205T160000Z"),
    }
    try:
        for name, text in PLAIN.items():
            assert run.put(name, text).status_code == 201
        (tmp_path / "plain").mkdir()
        with radicale_server(tmp_path / "plain") as plain:
            url = plain.new_calendar("Plain")
            for name, text in PLAIN.items():
                answer = requests.put(
                    url + name,
                    data=text.encode(),
                    auth=(plain.username, plain.password),
                    headers={"Content-Type": "text/calendar"},
                    timeout=10,
                )
                assert answer.status_code == 201, answer.text
            radicale_says = _freebusy_lines(url, (plain.username, plain.password))
        ours = _freebusy_lines(run.collection_url("appointments"), run.auth)
        assert ours == [
            "FBTYPE=BUSY:20261202T090000Z/20261202T100000Z",
            "FBTYPE=BUSY-TENTATIVE:20261202T110000Z/20261202T120000Z",
            "FBTYPE=BUSY:20261202T130000Z/20261202T140000Z",
            "FBTYPE=BUSY-TENTATIVE:20261203T150000Z/20261203T160000Z",
        ]
        assert sorted(ours) == sorted(radicale_says)

        for name, text in others.items():
            assert run.put(name, text).status_code == 201
        ours = _freebusy_lines(run.collection_url("appointments"), run.auth)
        assert ours[4:] == [
            "FBTYPE=BUSY-TENTATIVE:20261204T090000Z/20261204T100000Z",  # the user's own PARTSTAT
            "FBTYPE=BUSY-TENTATIVE:20261204T110000Z/20261204T120000Z",  # Outlook's BUSYSTATUS
            "FBTYPE=BUSY-TENTATIVE:20261205T140000Z/20261205T150000Z",
            "FBTYPE=BUSY:20261205T150000Z/20261205T160000Z",
            "FBTYPE=BUSY-TENTATIVE:20261205T160000Z/20261205T170000Z",
        ]
        on_busy = _freebusy_lines(run.collection_url("busy"), run.auth)
        assert set(ours) <= set(on_busy)  # `busy/`: every source, each kind kept
        assert any(line.startswith("FBTYPE=BUSY:") for line in set(on_busy) - set(ours))  # the mirrors' events
        # availability and the guard are unchanged: tentative time blocks (tentative_busy = true)
        # availability and the guard are unchanged: tentative time blocks (tentative_busy = true),
        # whether the CLI asks the daemon (which reads both kinds) or the index itself
        cli = busy_json(run.home.data_dir, "--no-daemon")
        assert report_busy(run, "busy") == cli == busy_json(run.home.data_dir)
        assert (datetime(2026, 12, 5, 14, tzinfo=UTC), datetime(2026, 12, 5, 17, tzinfo=UTC)) in cli
    finally:
        run.stop()


def test_free_busy_reports_out_of_office_as_busy_unavailable(tmp_path: Path, emu: Emulator) -> None:
    """RFC 5545 3.2.9: Outlook's out of office (X-MICROSOFT-CDO-BUSYSTATUS:OOF) is
    FBTYPE=BUSY-UNAVAILABLE, inside the busy index's horizon and past it (2029); where it
    overlaps firm busy time that stretch says so too. availability counts it busy, as before."""
    run = daemon_with(tmp_path, emu, "off")
    oof = "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n"
    try:
        assert run.put("away.ics", event("fb-away", start="20261207T090000Z", end="20261207T120000Z", extra=oof)).ok
        assert run.put("call.ics", event("fb-call", start="20261207T110000Z", end="20261207T130000Z")).ok
        assert run.put("far.ics", event("fb-far", start="20290604T090000Z", end="20290604T100000Z", extra=oof)).ok
        lines = [line for line in _freebusy_lines(run.collection_url("appointments"), run.auth) if "20261207" in line]
        assert lines == [
            "FBTYPE=BUSY-UNAVAILABLE:20261207T090000Z/20261207T120000Z",
            "FBTYPE=BUSY:20261207T120000Z/20261207T130000Z",
        ]
        far = FREEBUSY.replace("20261201T000000Z", "20290601T000000Z").replace("20261215T000000Z", "20290610T000000Z")
        assert _freebusy_lines(run.collection_url("busy"), run.auth, far) == [
            "FBTYPE=BUSY-UNAVAILABLE:20290604T090000Z/20290604T100000Z"
        ]
        away = (datetime(2026, 12, 7, 9, tzinfo=UTC), datetime(2026, 12, 7, 13, tzinfo=UTC))
        cli = busy_json(run.home.data_dir, "--no-daemon")
        assert any(a <= away[0] and away[1] <= b for a, b in cli)
        assert report_busy(run, "busy") == cli
    finally:
        run.stop()
