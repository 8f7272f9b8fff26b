"""python-caldav as a library client of the real daemon: discover, read mirrors, book, and be refused on a mirror.

python-caldav comes with the interop extra (`pip install -e '.[interop]'`), not with calmirror:
where it is installed this round trip runs in the normal suite (a few seconds: one daemon and
one emulator serve the whole module; each test looks only at the writes it caused), elsewhere
the module is skipped.
Everything goes through the library's public API, as a CRM or booking page would use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calmirror.emulator import Emulator
from tests.helpers import APP_PASSWORD, APPLE_ID, Running, connected_home, daemon_running, wait_for
from tests.interop.conftest import emulator_writes

caldav = pytest.importorskip("caldav", reason="python-caldav is in the interop extra: pip install -e '.[interop]'")
from caldav.elements import dav  # noqa: E402 (only once caldav is known to be there)
from caldav.lib import error  # noqa: E402

Writes = Callable[[], list[tuple[str, str, int]]]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(apple_id=APPLE_ID, password=APP_PASSWORD, seed="sample") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, emu: Emulator) -> Iterator[Running]:
    root: Path = tmp_path_factory.mktemp("calmirror")
    with daemon_running(connected_home(root, emu, conflicts=("Work", "Home"))) as run:
        yield run


@pytest.fixture
def principal(running: Running) -> Iterator[caldav.Principal]:
    # auth_type="basic" saves the unauthenticated probe, which Radicale answers 401 after a
    # deliberate one-second delay; a client without it works too, one second slower.
    with caldav.DAVClient(
        url=running.url, username=running.auth[0], password=running.auth[1], auth_type="basic", timeout=30
    ) as client:
        yield client.principal()


@pytest.fixture
def new_writes(emu: Emulator) -> Iterator[Writes]:
    """A callable: the write requests iCloud (the emulator) received since the test started."""
    already = len(emulator_writes(emu))
    yield lambda: emulator_writes(emu)[already:]


def by_name(principal: caldav.Principal) -> dict[str, caldav.Calendar]:
    return {str(c.url).rstrip("/").rsplit("/", 1)[-1]: c for c in principal.calendars()}


def uids(texts: list[str]) -> set[str]:
    found = set()
    for text in texts:
        for line in text.replace("\r\n ", "").splitlines():
            if line.startswith("UID:"):
                found.add(line[4:].strip())
    return found


def remote(emu: Emulator, cal: str) -> list[str]:
    return list(emu.items(emu.calendar_id(cal)).values())


def privileges(calendar: caldav.Calendar) -> set[str]:
    props = calendar.get_properties([dav.CurrentUserPrivilegeSet()], parse_props=False)
    element = props["{DAV:}current-user-privilege-set"]
    return {child.tag.split("}")[-1] for privilege in element for child in privilege}


def test_discovery_lists_appointments_blocked_and_read_only_mirrors(principal: caldav.Principal) -> None:
    calendars = by_name(principal)
    assert set(calendars) == {"appointments", "blocked", "icloud-work", "icloud-home", "busy"}
    assert calendars["appointments"].get_display_name() == "Appointments"
    assert calendars["icloud-home"].get_display_name() == "iCloud · Home"
    for writable in ("appointments", "blocked"):
        assert "write" in privileges(calendars[writable]) or "write-content" in privileges(calendars[writable])
    for mirror in ("icloud-work", "icloud-home", "busy"):  # busy/: every source's busy time, read-only
        granted = privileges(calendars[mirror])
        assert "read" in granted
        assert not granted & {"write", "write-content", "write-properties", "bind", "unbind", "all"}


def test_mirrored_events_are_listed_and_searchable(principal: caldav.Principal, emu: Emulator) -> None:
    home = by_name(principal)["icloud-home"]
    assert uids([e.data for e in home.events()]) == uids(remote(emu, "Home"))
    found = home.search(
        start=datetime(2026, 12, 1, tzinfo=UTC), end=datetime(2026, 12, 10, tzinfo=UTC), event=True, expand=True
    )
    summaries = {str(e.icalendar_component["summary"]) for e in found}
    assert {"Dentist – Dr. Łukasiewicz", "Mum's birthday 🎂", "Piano lesson 🎹"} <= summaries


def test_appointment_round_trip_reaches_the_linked_icloud_calendar(
    principal: caldav.Principal, emu: Emulator, new_writes: Writes
) -> None:
    appointments = by_name(principal)["appointments"]
    created = appointments.add_event(
        dtstart=datetime(2026, 12, 3, 10, tzinfo=UTC),
        dtend=datetime(2026, 12, 3, 11, tzinfo=UTC),
        summary="Booked via python-caldav",
        uid="caldav-lib-appt-1",
    )

    def in_work(text: str) -> bool:
        return any("UID:caldav-lib-appt-1" in b and text in b for b in remote(emu, "Work"))

    assert wait_for(lambda: in_work("Booked via python-caldav"), 5)
    assert not any("caldav-lib-appt-1" in b for b in remote(emu, "Home"))

    event = appointments.get_event_by_uid("caldav-lib-appt-1")
    event.icalendar_component["summary"] = "Moved via python-caldav"
    event.save()
    assert wait_for(lambda: in_work("Moved via python-caldav"), 5)
    assert len([b for b in remote(emu, "Work") if "caldav-lib-appt-1" in b]) == 1

    created.delete()
    assert wait_for(lambda: not any("caldav-lib-appt-1" in b for b in remote(emu, "Work")), 5)
    writes = [(method, status) for method, _, status in new_writes()]
    assert writes == [("PUT", 201), ("PUT", 204), ("DELETE", 204)] or writes == [
        ("PUT", 201),
        ("PUT", 204),
        ("DELETE", 200),
    ]


def test_changing_a_mirror_is_refused_and_nothing_reaches_icloud(
    principal: caldav.Principal, emu: Emulator, new_writes: Writes
) -> None:
    home = by_name(principal)["icloud-home"]
    before = {str(e.url): e.data for e in home.events()}
    dentist = next(e for e in home.events() if "Dentist" in e.data)
    dentist.icalendar_component["summary"] = "Changed through a mirror"
    with pytest.raises(error.AuthorizationError):
        dentist.save()
    with pytest.raises(error.AuthorizationError):
        dentist.delete()
    with pytest.raises(error.AuthorizationError):
        home.add_event(
            dtstart=datetime(2026, 12, 3, 12, tzinfo=UTC),
            dtend=datetime(2026, 12, 3, 13, tzinfo=UTC),
            summary="New on a mirror",
            uid="caldav-lib-on-mirror",
        )
    with pytest.raises(error.DAVError):
        home.set_properties([dav.DisplayName("Renamed mirror")])

    assert {str(e.url): e.data for e in home.events()} == before
    assert home.get_display_name() == "iCloud · Home"
    assert new_writes() == []
    assert not any(
        "Changed through a mirror" in b or "caldav-lib-on-mirror" in b
        for cal in ("Home", "Work")
        for b in remote(emu, cal)
    )
