"""Who "me" is comes from iCloud too: the principal's calendar-user-address-set names every
address the user is invited under (aliases at icloud.com, me.com or a custom domain), often
not the Apple ID. An invitation the user declined under such an alias leaves the time free
(the CLI, the daemon's free-busy, a busy-only mirror), one accepted under it is busy, and
`status`/`doctor` show the addresses. Real emulator, real daemon, the CLI in child processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from calmirror import config, config_edit
from calmirror.availability.sources import from_vfreebusy
from calmirror.emulator import Emulator
from calmirror.home import Home
from calmirror.state import State
from tests.conftest import Cli
from tests.helpers import (
    APP_PASSWORD,
    APPLE_ID,
    busy_json,
    connected_home,
    daemon_running,
    engine_for,
    event,
    status_json,
)

ALIAS = "robin.alias@icloud.com"
CUSTOM = "Robin@Custom.Example"  # iCloud keeps the case a custom domain was typed in
FREEBUSY = (
    '<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<C:time-range start="20261201T000000Z" end="20261215T000000Z"/></C:free-busy-query>'
)


def invitation(uid: str, day: int, attendee: str, partstat: str) -> str:
    lines = (
        "ORGANIZER;CN=Sam:mailto:sam@elsewhere.example\r\n"
        f"ATTENDEE;CN=Robin;CUTYPE=INDIVIDUAL;PARTSTAT={partstat};ROLE=REQ-PARTICIPANT:mailto:{attendee}\r\n"
        "ATTENDEE;CN=Sam;PARTSTAT=ACCEPTED:mailto:sam@elsewhere.example\r\n"
    )
    return event(
        uid, f"Invitation {uid}", start=f"202612{day:02d}T100000Z", end=f"202612{day:02d}T110000Z", extra=lines
    )


def at(day: int) -> tuple[datetime, datetime]:
    return datetime(2026, 12, day, 10, tzinfo=UTC), datetime(2026, 12, day, 11, tzinfo=UTC)


@pytest.fixture
def aliased() -> Iterator[Emulator]:
    with Emulator(
        apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty", addresses=(ALIAS, f"mailto:{CUSTOM}", "tel:+15551234")
    ) as emulator:
        yield emulator


def invite(emu: Emulator) -> None:
    home_id = emu.calendar_id("Home")
    emu.put_item(home_id, "declined-alias.ics", invitation("declined-alias", 2, ALIAS.upper(), "DECLINED"))
    emu.put_item(home_id, "declined-custom.ics", invitation("declined-custom", 3, CUSTOM.lower(), "DECLINED"))
    emu.put_item(home_id, "accepted-alias.ics", invitation("accepted-alias", 4, ALIAS, "ACCEPTED"))
    emu.put_item(home_id, "declined-stranger.ics", invitation("declined-stranger", 7, "other@x.example", "DECLINED"))


def mirror_once(home: Home) -> None:
    engine = engine_for(home)
    client = engine.client()
    try:
        reports = engine.mirror_pass(client)
        assert all(r.error is None for r in reports), [r.error for r in reports]
    finally:
        client.close()
        engine.state.close()


def test_declined_under_an_alias_only_icloud_names_is_free(tmp_path: Path, aliased: Emulator) -> None:
    home = connected_home(tmp_path, aliased, conflicts=("Home",))
    invite(aliased)
    mirror_once(home)
    expected = [at(4), at(7)]  # accepted under the alias; a stranger's "declined" says nothing of yours
    assert busy_json(home, "--no-daemon") == expected
    with daemon_running(home) as run:
        assert busy_json(home) == expected  # the CLI asking the daemon
        answer = requests.request(
            "REPORT",
            run.href("busy", ""),
            data=FREEBUSY,
            auth=run.auth,
            timeout=30,
            headers={"Depth": "1", "Content-Type": "application/xml"},
        )
        assert answer.status_code == 200
        assert from_vfreebusy(answer.content) == expected
    shown = status_json(home)
    (acct,) = shown["accounts"]
    assert acct["addresses"] == [APPLE_ID, ALIAS, CUSTOM.lower(), "tel:+15551234"]  # not the principal's path
    assert shown["me"] == sorted([APPLE_ID, ALIAS, CUSTOM.lower(), "tel:+15551234"])
    text = Cli(home.data_dir)("status").stdout
    assert f"Invitations to you: {', '.join(shown['me'])}" in text
    doctor = Cli(home.data_dir)("doctor", "--json")
    icloud = {c["check"]: c for c in json.loads(doctor.stdout)}["iCloud"]
    assert icloud["ok"] and ALIAS in icloud["detail"] and CUSTOM.lower() in icloud["detail"]
    assert APP_PASSWORD not in json.dumps(shown) + doctor.stdout + doctor.stderr


def test_an_alias_added_in_icloud_frees_time_already_mirrored(tmp_path: Path) -> None:
    """The alias arrives after the invitation was mirrored: a reconnect reads it, and both the
    busy index and the busy-only copy of the mirror (which baked in who declined) follow."""
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="empty") as emu:
        home = connected_home(tmp_path, emu, conflicts=("Home",))
        home_id = emu.calendar_id("Home")
        config_edit.set_calendar_details(home.config_file, home_id, "busy")
        invite(emu)
        mirror_once(home)
        assert busy_json(home, "--no-daemon") == [at(2), at(3), at(4), at(7)]
        emu.set_addresses((ALIAS, CUSTOM))
        reconnected = Cli(home.data_dir)("connect", "--again")
        assert reconnected.returncode == 0, reconnected.stderr
        assert busy_json(home, "--no-daemon") == [at(4), at(7)]
        mirror_once(home)
        engine = engine_for(home)
        try:
            copies = engine.store.items("icloud-home")
            declined = [body for body in copies.values() if "20261202T100000Z" in body]
            assert len(declined) == 1 and "TRANSP:TRANSPARENT" in declined[0]
            accepted = [body for body in copies.values() if "20261204T100000Z" in body]
            assert len(accepted) == 1 and "TRANSPARENT" not in accepted[0]
        finally:
            engine.state.close()


def test_a_home_that_never_read_the_addresses_reads_them_at_its_next_pass(tmp_path: Path, aliased: Emulator) -> None:
    home = connected_home(tmp_path, aliased, conflicts=("Home",))
    state = State(home.state_db)
    state.forget_addresses()  # as a home connected before calmirror read them
    assert ALIAS not in state.my_addresses()
    invite(aliased)
    mirror_once(home)
    assert ALIAS in state.my_addresses() and state.addresses_read_at() is not None
    state.close()
    assert busy_json(home, "--no-daemon") == [at(4), at(7)]
    assert config.load(home.config_file).availability.aliases == ()  # nothing typed into the config


def test_a_refused_read_of_the_addresses_fails_no_pass_and_waits_a_day(tmp_path: Path, aliased: Emulator) -> None:
    home = connected_home(tmp_path, aliased, conflicts=("Home",))
    state = State(home.state_db)
    state.forget_addresses()
    aliased.faults.fail(count=5, status=403, retry_after=None, method="PROPFIND", path_contains="/principal/")
    invite(aliased)
    mirror_once(home)  # the calendar is mirrored all the same
    assert aliased.faults.pending() == 4 and state.addresses() == ()
    aliased.clear_requests()
    mirror_once(home)
    assert not [r for r in aliased.requests if "/principal/" in r.path]  # not asked again at every pass
    state.close()
