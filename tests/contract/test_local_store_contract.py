"""The local-store contract: what the mirror and the push path rely on `LocalStore` for.

Against a real Radicale store in `tmp_path`: a mirror is created once, written in batches,
read back byte for byte, reports its changes since a token, loses what is deleted, and keeps
an item's ETag exactly as long as its text is unchanged (also across a reopen, since the
daemon opens the store anew after a restart).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calmirror.local import CollectionMissing, LocalStore, layout
from calmirror.testing import LOCAL_USER as USER
from calmirror.testing.ical import APPLE_PRODID, vcalendar, vtimezone_for
from tests.helpers import event

FIXTURES = Path(__file__).parent.parent / "fixtures" / "icloud"
WORK = layout.mirror_name("work")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    local = LocalStore(tmp_path / "store", USER)
    local.ensure_base()
    local.ensure_mirror("work", "Work", "#1BADF8FF")
    return local


def apple_event(uid: str) -> str:
    """Apple's shape: a VTIMEZONE, wall times, an X-APPLE property and an unfolded long line."""
    return vcalendar(
        [
            f"UID:{uid}",
            "DTSTAMP:20261101T000000Z",
            "DTSTART;TZID=Europe/Berlin:20261201T100000",
            "DTEND;TZID=Europe/Berlin:20261201T110000",
            "SUMMARY:Caf\u00e9 \u2603 " + "long " * 40,
            "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        ],
        head=vtimezone_for("Europe/Berlin"),
        prodid=APPLE_PRODID,
    )


#: Valid iCloud shapes Radicale refuses verbatim (master-less overrides, COUNT over its limit,
#: RDATE;VALUE=PERIOD): the mirror stores compatible copies of these, not the exact text.
RADICALE_REFUSES = frozenset(
    {
        "invitation-two-occurrences-no-master-berlin.ics",
        "vitamins-daily-count-1e9-reminder-berlin.ics",
        "workshop-rdate-periods-berlin.ics",
    }
)


def fixture_items() -> list[tuple[str, str]]:
    """Every sample iCloud object Radicale stores, its bytes untouched (CRLF or not, folded as Apple folds)."""
    return [
        (path.name, path.read_bytes().decode("utf-8"))
        for path in sorted(FIXTURES.glob("*/*.ics"))
        if path.name not in RADICALE_REFUSES
    ]


# --- mirrors exist once --------------------------------------------------------------------------


def test_base_collections_and_a_mirror_exist_after_ensuring_them(store: LocalStore) -> None:
    assert store.items(layout.APPOINTMENTS) == {}
    assert store.items(layout.BLOCKED) == {}
    assert store.list_mirrors() == ["work"]
    store.ensure_mirror("work", "Work renamed", None)  # again: the same mirror, not a second one
    store.ensure_base()
    assert store.list_mirrors() == ["work"]
    assert store.items(WORK) == {}


def test_a_deleted_mirror_is_gone_with_its_items(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", event("a"))], [])
    store.delete_mirror("work")
    assert store.list_mirrors() == []
    with pytest.raises(CollectionMissing):
        store.items(WORK)
    store.delete_mirror("work")  # deleting what is not there is no error
    store.ensure_mirror("work", "Work", None)
    assert store.items(WORK) == {}


# --- what is written is read back exactly --------------------------------------------------------


def test_items_are_read_back_byte_for_byte(store: LocalStore) -> None:
    written = [("plain.ics", event("plain")), ("apple.ics", apple_event("apple")), *fixture_items()]
    assert store.apply_mirror("work", written, []) == []
    assert store.items(WORK) == dict(written)
    assert store.item(WORK, "apple.ics") == apple_event("apple")
    assert store.items_named(WORK, ["plain.ics", "never.ics"]) == {"plain.ics": event("plain"), "never.ics": None}
    assert store.item(WORK, "never.ics") is None
    assert store.mirror_item_names("work") == {name for name, _ in written}


summaries = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=",;\\"), min_size=1, max_size=80
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(summaries, min_size=1, max_size=5))
def test_any_summary_text_survives_a_write_exactly(store: LocalStore, texts: list[str]) -> None:
    written = [(f"s{index}.ics", event(f"s{index}", summary=text)) for index, text in enumerate(texts)]
    assert store.apply_mirror("work", written, []) == []
    assert store.items_named(WORK, [name for name, _ in written]) == dict(written)


def test_a_second_item_with_a_kept_uid_is_refused_and_not_stored(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", event("same"))], [])
    refused = store.apply_mirror("work", [("b.ics", event("same")), ("c.ics", event("other"))], [])
    assert [href for href, _ in refused] == ["b.ics"]
    assert "same" in refused[0][1]
    assert set(store.items(WORK)) == {"a.ics", "c.ics"}


# --- deletes -------------------------------------------------------------------------------------


def test_deleted_items_are_gone_and_unknown_deletes_are_harmless(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", event("a")), ("b.ics", event("b"))], [])
    assert store.apply_mirror("work", [], ["a.ics", "never.ics"]) == []
    assert store.items(WORK) == {"b.ics": event("b")}
    assert set(store.etags(WORK)) == {"b.ics"}


def test_a_uid_is_free_again_once_its_item_is_deleted(store: LocalStore) -> None:
    store.apply_mirror("work", [("old.ics", event("moving"))], [])
    assert store.apply_mirror("work", [("new.ics", event("moving"))], ["old.ics"]) == []
    assert store.items(WORK) == {"new.ics": event("moving")}


# --- changes since a token -----------------------------------------------------------------------


def test_changes_since_a_token_name_exactly_the_touched_hrefs(store: LocalStore) -> None:
    store.apply_mirror("work", [(f"{uid}.ics", event(uid)) for uid in "abc"], [])
    start = store.changes(WORK, None)
    assert start.full
    assert sorted(start.changed) == ["a.ics", "b.ics", "c.ics"]

    store.apply_mirror("work", [("a.ics", event("a", summary="Moved")), ("d.ics", event("d"))], ["b.ics"])
    since = store.changes(WORK, start.token)

    assert not since.full
    assert sorted(since.changed) == ["a.ics", "b.ics", "d.ics"]  # b.ics: deleted
    assert since.token != start.token
    assert store.changes(WORK, since.token).changed == []


def test_an_unusable_token_gives_a_full_listing(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", event("a"))], [])
    for token in ("garbage", "http://radicale.org/ns/sync/" + "0" * 64):
        listing = store.changes(WORK, token)
        assert listing.full
        assert listing.changed == ["a.ics"]


def test_changes_work_on_the_client_collections_too(store: LocalStore) -> None:
    start = store.changes(layout.APPOINTMENTS, None)
    assert start.full
    assert start.changed == []
    assert store.changes(layout.APPOINTMENTS, start.token) == start._replace(full=False)


# --- ETags ---------------------------------------------------------------------------------------


def test_etags_change_exactly_when_the_text_changes(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", event("a")), ("b.ics", event("b"))], [])
    first = store.etags(WORK)
    assert len(set(first.values())) == 2
    token = store.changes(WORK, None).token

    store.apply_mirror("work", [("a.ics", event("a"))], [])  # the same text again
    assert store.etags(WORK) == first
    assert store.changes(WORK, token).changed == []  # and nobody is told of a change

    store.apply_mirror("work", [("a.ics", event("a", summary="Other"))], [])
    second = store.etags(WORK)
    assert second["b.ics"] == first["b.ics"]
    assert second["a.ics"] != first["a.ics"]
    assert store.mirror_hrefs("work") == second


def test_etags_and_tokens_survive_reopening_the_store(store: LocalStore) -> None:
    store.apply_mirror("work", [("a.ics", apple_event("a"))], [])
    etags = store.etags(WORK)
    token = store.changes(WORK, None).token
    reopened = LocalStore(store.store_dir, USER)
    assert reopened.etags(WORK) == etags
    assert reopened.changes(WORK, token).changed == []
    assert not reopened.changes(WORK, token).full
