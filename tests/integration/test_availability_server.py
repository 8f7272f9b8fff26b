"""Availability through the running daemon: the free-busy REPORT agrees with the CLI, and the
double-booking guard rejects or warns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import requests

from calmirror.availability.engine import merge
from calmirror.availability.sources import from_vfreebusy
from calmirror.emulator import Emulator
from tests.helpers import Running, busy_json, connected_home, event, start_daemon, status_json, wait_for

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
