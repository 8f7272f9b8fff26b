"""The remote contract: what calmirror needs of `ICloudClient`, on every CalDAV server it may face.

The same tests run over the iCloud emulator, a plain Radicale and Xandikos (see `servers.py`).
Passing on servers nobody here wrote is what backs "any CalDAV server can stand in for
iCloud". Where a server legitimately differs, the test says so by name through `Quirks`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from calmirror.errors import AuthFailed, InvalidSyncToken, NotFound, PreconditionFailed
from calmirror.remote import ICloudClient
from tests.contract.servers import Server
from tests.helpers import event


def item(calendar: str, uid: str) -> str:
    return f"{calendar}{uid}.ics"


def host(url: str) -> str:
    return urlsplit(url).netloc


# --- discovery and listing ---------------------------------------------------------------------


def test_discovery_finds_the_principal_and_a_home(server: Server, client: ICloudClient) -> None:
    account = client.discover()
    assert host(account.principal_url) == host(server.url)
    assert account.home_url.endswith("/")
    if server.quirks.home_on_other_host:  # iCloud: the home set names the partition host
        assert host(account.home_url) != host(server.url)
    else:
        assert host(account.home_url) == host(server.url)


def test_listing_names_the_new_calendar_and_never_the_home_itself(client: ICloudClient, calendar: str) -> None:
    account = client.discover()
    listed = {cal.url: cal for cal in client.list_calendars(account.home_url)}
    assert calendar in listed
    made = listed[calendar]
    assert "VEVENT" in made.components
    assert made.writable
    assert account.home_url not in listed
    assert all(url.startswith(account.home_url) for url in listed)


# --- sync --------------------------------------------------------------------------------------


def test_sync_from_scratch_lists_every_item_with_its_etag(client: ICloudClient, calendar: str) -> None:
    client.discover()
    etags = {item(calendar, uid): client.create(item(calendar, uid), event(uid)) for uid in ("a", "b", "c")}
    changes = client.sync(calendar, None)
    assert changes.full
    assert not changes.truncated
    assert changes.changed == etags  # the ETag from PUT is the one later listed (ICLOUD.md #14)
    assert changes.deleted == []
    assert changes.token


def test_sync_with_a_token_reports_exactly_what_changed_since(client: ICloudClient, calendar: str) -> None:
    client.discover()
    kept, edited, gone, added = (item(calendar, uid) for uid in ("kept", "edited", "gone", "added"))
    etags = {href: client.create(href, event(href.rsplit("/", 1)[-1][:-4])) for href in (kept, edited, gone)}
    before = client.sync(calendar, None)

    new_etag = client.update(edited, event("edited", summary="Moved"), etags[edited])
    client.delete(gone, etags[gone])
    added_etag = client.create(added, event("added"))
    after = client.sync(calendar, before.token)

    assert not after.full
    assert after.changed == {edited: new_etag, added: added_etag}
    assert after.deleted == [gone]
    assert after.token != before.token
    assert client.sync(calendar, after.token).changed == {}


def test_an_unknown_sync_token_is_a_typed_error(server: Server, client: ICloudClient, calendar: str) -> None:
    client.discover()
    client.create(item(calendar, "x"), event("x"))
    real = client.sync(calendar, None).token
    # A token of the server's own shape that it never issued: what an expired one looks like.
    stale = real[:-8] + ("A" if real[-8] != "A" else "B") * 8
    with pytest.raises(InvalidSyncToken):
        client.sync(calendar, stale)
    assert client.sync(calendar, None).changed.keys() == {item(calendar, "x")}


# --- fetch -------------------------------------------------------------------------------------


def test_multiget_returns_bodies_and_names_a_vanished_href(client: ICloudClient, calendar: str) -> None:
    client.discover()
    etags = {item(calendar, uid): client.create(item(calendar, uid), event(uid, summary=f"S-{uid}")) for uid in "pq"}
    vanished = item(calendar, "vanished")
    client.delete(vanished, client.create(vanished, event("vanished")))

    fetched, missing = client.fetch(calendar, [*etags, vanished], batch=2)

    assert {got.href: got.etag for got in fetched} == etags
    for got in fetched:
        uid = got.href.rsplit("/", 1)[-1][:-4]
        assert f"UID:{uid}\r\n" in got.body
        assert f"SUMMARY:S-{uid}\r\n" in got.body
    assert missing == [vanished]


# --- conditional writes ------------------------------------------------------------------------


def test_create_never_overwrites(client: ICloudClient, calendar: str) -> None:
    client.discover()
    href = item(calendar, "once")
    etag = client.create(href, event("once", summary="First"))
    with pytest.raises(PreconditionFailed) as raised:
        client.create(href, event("once", summary="Second"))
    assert raised.value.status == 412
    got = client.get(href)
    assert "SUMMARY:First" in got.body
    assert got.etag == etag


def test_update_needs_the_current_etag(client: ICloudClient, calendar: str) -> None:
    client.discover()
    href = item(calendar, "edit")
    first = client.create(href, event("edit", summary="One"))
    second = client.update(href, event("edit", summary="Two"), first)
    assert second != first
    with pytest.raises(PreconditionFailed):
        client.update(href, event("edit", summary="Three"), first)
    got = client.get(href)
    assert "SUMMARY:Two" in got.body
    assert got.etag == second


def test_update_of_a_deleted_item_fails_its_precondition(client: ICloudClient, calendar: str) -> None:
    client.discover()
    href = item(calendar, "gone")
    etag = client.create(href, event("gone"))
    client.delete(href, etag)
    with pytest.raises(PreconditionFailed):
        client.update(href, event("gone", summary="Back?"), etag)
    with pytest.raises(NotFound):
        client.get(href)


def test_delete_is_conditional_and_a_second_delete_is_not_found(client: ICloudClient, calendar: str) -> None:
    client.discover()
    href = item(calendar, "del")
    first = client.create(href, event("del", summary="One"))
    current = client.update(href, event("del", summary="Two"), first)
    with pytest.raises(PreconditionFailed):
        client.delete(href, first)
    assert "SUMMARY:Two" in client.get(href).body
    client.delete(href, current)
    with pytest.raises(NotFound) as raised:
        client.delete(href, None)
    assert raised.value.status == 404
    assert client.sync(calendar, None).changed == {}


# --- typed errors ------------------------------------------------------------------------------


def test_a_wrong_password_is_auth_failed_without_the_secret(server: Server) -> None:
    with (
        ICloudClient(server.url, server.username, "wrong-wrong-wrong-wrong") as remote,
        pytest.raises(AuthFailed) as raised,
    ):
        remote.discover()
    assert raised.value.status == 401
    assert "wrong-wrong" not in str(raised.value)
    assert server.password not in str(raised.value)


def test_a_missing_item_is_not_found(client: ICloudClient, calendar: str) -> None:
    client.discover()
    with pytest.raises(NotFound) as raised:
        client.get(item(calendar, "never-written"))
    assert raised.value.status == 404


def test_the_ctag_moves_with_every_write(client: ICloudClient, calendar: str) -> None:
    client.discover()
    before = client.get_ctag(calendar)
    assert before
    client.create(item(calendar, "ctag"), event("ctag"))  # UIDs differ across tests: iCloud refuses one UID twice
    after = client.get_ctag(calendar)
    assert after
    assert after != before
    assert client.get_ctag(calendar) == after  # reading changes nothing


def test_a_missing_calendar_is_not_found(client: ICloudClient, calendar: str) -> None:
    client.discover()
    gone = calendar.rstrip("/") + "-never-made/"
    with pytest.raises(NotFound):
        client.sync(gone, None)
