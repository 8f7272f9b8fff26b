"""The emulator holds what iCloud holds: objects Radicale refuses are stored and served
exactly (CRLF aside) through GET, PROPFIND, calendar-multiget and sync-collection, while
iCloud's own refusals stay (ICLOUD.md 20, 21, and 400 for what is not iCalendar)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from calmirror.emulator import Emulator
from calmirror.emulator.store import InvalidObject
from calmirror.errors import NotFound, RemoteError
from calmirror.remote import ICloudClient
from tests.helpers import APP_PASSWORD, APPLE_ID
from tests.icloud_shapes import CUSTOM_ZONE_BERLIN_LIKE, CUSTOM_ZONE_NEW_YORK_LIKE, OVERRIDES_WITHOUT_MASTER, SHAPES
from tests.wild_shapes import PUT_REFUSED


@pytest.fixture
def client(emu: Emulator) -> Iterator[ICloudClient]:
    with ICloudClient(emu.url, APPLE_ID, APP_PASSWORD) as remote:
        remote.discover()
        yield remote


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _read_back_everywhere(emu: Emulator, client: ICloudClient, cal_id: str, names: dict[str, str]) -> None:
    """Each name's text equals `names[name]` through all four routes, with one ETag."""
    cal_url = emu.calendar_url(cal_id)
    path = emu.store.calendar_path(cal_id)
    changes = client.sync(cal_url, None)
    fetched, missing = client.fetch(cal_url, [cal_url + name for name in names])
    assert missing == []
    by_href = {item.href: item for item in fetched}
    for name, text in names.items():
        href = cal_url + name
        got = client.get(path + name)
        assert got.body == text, name
        assert by_href[href].body == text, name
        etag = emu.item_etag(cal_id, name)
        assert got.etag == by_href[href].etag == changes.changed[href] == etag
        raw = requests.request(
            "PROPFIND",
            href,
            data='<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
            headers={"Depth": "0", "Content-Type": "application/xml"},
            auth=(APPLE_ID, APP_PASSWORD),
            timeout=10,
        )
        assert raw.status_code == 207 and etag in raw.text
        assert emu.items(cal_id)[path + name] == text


def test_icloud_side_shapes_are_kept_exactly(emu: Emulator, client: ICloudClient) -> None:
    work = emu.calendar_id("Work")
    names = {}
    for shape, text in SHAPES.items():
        emu.put_item(work, f"{shape}.ics", _lf(text))  # stored with CRLF, as iCloud does
        names[f"{shape}.ics"] = text
    _read_back_everywhere(emu, client, work, names)


def test_shapes_put_over_http_are_kept_exactly_and_updated_by_etag(emu: Emulator, client: ICloudClient) -> None:
    home = emu.calendar_id("Home")
    path = emu.store.calendar_path(home)
    names = {}
    for shape, text in SHAPES.items():
        if shape in PUT_REFUSED:  # as iCloud: neither DTEND nor DURATION
            with pytest.raises(NotFound):
                client.create(path + f"{shape}.ics", text)
            continue
        etag = client.create(path + f"{shape}.ics", text)
        assert etag == emu.item_etag(home, f"{shape}.ics")
        names[f"{shape}.ics"] = text
    _read_back_everywhere(emu, client, home, names)
    token = client.sync(emu.calendar_url(home), None).token

    changed = OVERRIDES_WITHOUT_MASTER.replace("Standup (moved", "Standup (moved again")
    old = emu.item_etag(home, "overrides-without-master.ics")
    new = client.update(path + "overrides-without-master.ics", changed, old)
    assert new != old
    later = client.sync(emu.calendar_url(home), token)
    assert list(later.changed) == [emu.calendar_url(home) + "overrides-without-master.ics"]
    assert later.changed[emu.calendar_url(home) + "overrides-without-master.ics"] == new
    assert client.get(path + "overrides-without-master.ics").body == changed

    client.delete(path + "overrides-without-master.ics", new)
    gone = client.sync(emu.calendar_url(home), later.token)
    assert gone.deleted == [emu.calendar_url(home) + "overrides-without-master.ics"]


def test_one_zone_name_with_two_definitions_keeps_both(emu: Emulator, client: ICloudClient) -> None:
    work = emu.calendar_id("Work")
    emu.put_item(work, "berlin.ics", CUSTOM_ZONE_BERLIN_LIKE)
    emu.put_item(work, "new-york.ics", CUSTOM_ZONE_NEW_YORK_LIKE)
    path = emu.store.calendar_path(work)
    assert "TZOFFSETTO:+0100" in client.get(path + "berlin.ics").body
    assert "TZOFFSETTO:-0500" in client.get(path + "new-york.ics").body


def test_icloud_refusals_stay(emu: Emulator, client: ICloudClient) -> None:
    home = emu.store.calendar_path(emu.calendar_id("Home"))
    no_end = OVERRIDES_WITHOUT_MASTER.replace("DTEND:20261215T120000Z\r\n", "")
    with pytest.raises(RemoteError) as caught:
        client.create(home + "no-end.ics", no_end)
    assert caught.value.status == 404

    with pytest.raises(RemoteError) as caught:
        client.create(home + "garbage.ics", "this is not a calendar\r\n")
    assert caught.value.status == 400

    mixed_uids = OVERRIDES_WITHOUT_MASTER.replace("UID:series-owned-by-someone-else@example.org", "UID:other", 1)
    with pytest.raises(RemoteError) as caught:
        client.create(home + "mixed.ics", mixed_uids)
    assert caught.value.status == 400

    client.create(home + "first.ics", OVERRIDES_WITHOUT_MASTER)
    work = emu.store.calendar_path(emu.calendar_id("Work"))
    with pytest.raises(RemoteError) as caught:
        client.create(work + "second.ics", OVERRIDES_WITHOUT_MASTER)
    assert caught.value.status == 403


def test_icloud_side_helpers_refuse_what_is_not_icalendar_unless_told(emu: Emulator, client: ICloudClient) -> None:
    work = emu.calendar_id("Work")
    with pytest.raises(InvalidObject):
        emu.put_item(work, "junk.ics", "\x00\x01 not a calendar")
    emu.put_item(work, "junk.ics", "not a calendar at all\r\n", unchecked=True)
    got = client.get(emu.store.calendar_path(work) + "junk.ics")
    assert got.body == "not a calendar at all\r\n"
