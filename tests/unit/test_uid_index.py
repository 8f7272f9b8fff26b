"""The UID index in shard logs: what a later process reads equals what was written, it reads
only the shards a batch names, and a log that no longer matches its stamp is never trusted."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmirror.local import uid_index
from calmirror.local.uid_index import SHARDS, StaleUids, UidIndex, shard_of

HREFS = [f"e{i}.ics" for i in range(12)]
UIDS = [f"u{i}" for i in range(6)]


class Collection:
    """A folder standing in for a collection: each write touches it, as writing items does."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "items"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = root / "cache" / uid_index.LOG_NAME
        self.items: dict[str, str] = {}
        self.full_reads = 0
        self.writes = 0

    def read_all(self) -> Iterable[tuple[str, str]]:
        self.full_reads += 1
        return list(self.items.items())

    def touch(self) -> None:
        self.writes += 1
        marker = self.folder / f"w{self.writes}"
        marker.write_text("")
        stamp = self.folder.stat().st_mtime_ns + self.writes  # the folder's stamp moves with every write
        os.utime(self.folder, ns=(stamp, stamp))


def write(index: UidIndex, coll: Collection, upserts: dict[str, str], removed: list[str]) -> None:
    """What `LocalStore._write_checked` does around the files, without refusals (the model
    below keeps UIDs unique)."""
    index.current("work", coll.folder, coll.log, coll.read_all)
    for href in removed:
        coll.items.pop(href, None)
    coll.items.update(upserts)
    coll.touch()
    index.written("work", coll.folder, coll.log, upserts, removed)


def owners(items: dict[str, str]) -> dict[str, str]:
    return {uid: href for href, uid in items.items()}


writes = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(HREFS), st.sampled_from(UIDS), max_size=4),
        st.lists(st.sampled_from(HREFS), max_size=3),
        st.booleans(),  # a new process before this write
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps=writes, tail_max=st.sampled_from([1, 4, 9, uid_index.TAIL_MAX]))
def test_a_later_process_reads_what_was_written(
    tmp_path_factory: pytest.TempPathFactory, steps: list, tail_max: int
) -> None:
    """Whatever the tail's size: written to the shards at every write, every few, or never."""
    coll = Collection(tmp_path_factory.mktemp("uids"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(uid_index, "TAIL_MAX", tail_max)
        patch.setattr(uid_index, "_MIN_COMPACT", 3)
        replay(coll, steps)


def replay(coll: Collection, steps: list) -> None:
    index = UidIndex()
    for upserts, removed, restart in steps:
        # UIDs stay unique, as the batch plan keeps them: a step that would share one is left out
        after = {h: u for h, u in coll.items.items() if h not in removed} | upserts
        if len(set(after.values())) != len(after):
            continue
        if restart:
            index = UidIndex()
        write(index, coll, upserts, removed)
    for found in (index, UidIndex()):  # this process's and a later one's
        uids = found.current("work", coll.folder, coll.log, coll.read_all)
        assert dict(uids.uid_of) == coll.items
        assert dict(uids.owner_of) == owners(coll.items)
    assert coll.full_reads <= 1  # only the very first look, on an empty log


def test_a_fresh_process_reads_only_the_shards_of_its_batch(tmp_path: Path) -> None:
    coll = Collection(tmp_path)
    write(UidIndex(), coll, {f"e{i}.ics": f"u{i}" for i in range(uid_index.TAIL_MAX)}, [])  # past the tail
    write(UidIndex(), coll, {"e1.ics": "v1"}, ["e2.ics"])  # in the tail
    assert (uid_index._shard_dir(coll.log) / f"h{shard_of('e7.ics'):02d}").stat().st_size > 0
    fresh = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert fresh.uid_of.get("e7.ics") == "u7"
    assert fresh.owner_of.get("u7") == "e7.ics"
    assert fresh.owner_of.get("nobody") is None
    assert set(fresh.uid_of.shards) == {shard_of("e7.ics")}
    assert set(fresh.owner_of.shards) == {shard_of("u7"), shard_of("nobody")}
    assert len(fresh.uid_of.shards) < SHARDS and coll.full_reads == 1
    assert fresh.uid_of.get("e1.ics") == "v1" and "e2.ics" not in fresh.uid_of
    assert fresh.owner_of.get("u1") is None and fresh.owner_of.get("v1") == "e1.ics"


def test_the_single_log_of_an_earlier_version_is_turned_into_shards(tmp_path: Path) -> None:
    coll = Collection(tmp_path)
    coll.items = {"a.ics": "ua", "b.ics": "ub"}
    coll.touch()
    stamp = (coll.folder.stat().st_ino, coll.folder.stat().st_mtime_ns)
    coll.log.parent.mkdir(parents=True)
    with coll.log.open("wb") as sink:
        pickle.dump(({"a.ics": "ua", "c.ics": "uc"}, [], (0, 0)), sink)
        pickle.dump(({"b.ics": "ub"}, ["c.ics"], stamp), sink)
    found = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert dict(found.uid_of) == coll.items and coll.full_reads == 0
    assert not coll.log.exists()
    again = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert dict(again.owner_of) == {"ua": "a.ics", "ub": "b.ics"} and coll.full_reads == 0


def test_a_folder_changed_behind_the_logs_is_read_again(tmp_path: Path) -> None:
    coll = Collection(tmp_path)
    write(UidIndex(), coll, {"a.ics": "ua"}, [])
    coll.items["stranger.ics"] = "taken"
    coll.touch()  # another program wrote, no log entry
    found = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert found.owner_of.get("taken") == "stranger.ics" and coll.full_reads == 2


def test_a_shard_cut_short_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard log shorter than the tail says (lost in a crash) means reading the items."""
    monkeypatch.setattr(uid_index, "TAIL_MAX", 10)
    coll = Collection(tmp_path)
    write(UidIndex(), coll, {f"e{i}.ics": f"u{i}" for i in range(50)}, [])
    write(UidIndex(), coll, {"e1.ics": "v1"}, [])
    shard = uid_index._shard_dir(coll.log) / f"h{shard_of('e1.ics'):02d}"
    shard.write_bytes(shard.read_bytes()[:-5])
    found = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert found.uid_of.get("e1.ics") == "v1" and coll.full_reads == 2


def test_a_shard_that_does_not_read_raises_for_the_store_to_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same length, other bytes: found only when the shard is read, as `StaleUids`."""
    monkeypatch.setattr(uid_index, "TAIL_MAX", 10)
    coll = Collection(tmp_path)
    write(UidIndex(), coll, {f"e{i}.ics": f"u{i}" for i in range(50)}, [])
    shard = uid_index._shard_dir(coll.log) / f"h{shard_of('e1.ics'):02d}"
    shard.write_bytes(b"\0" * shard.stat().st_size)
    index = UidIndex()
    found = index.current("work", coll.folder, coll.log, coll.read_all)
    with pytest.raises(StaleUids):
        found.uid_of.get("e1.ics")
    index.forget("work", coll.log)
    again = index.current("work", coll.folder, coll.log, coll.read_all)
    assert again.uid_of.get("e1.ics") == "u1" and coll.full_reads == 2


def test_a_fold_cut_off_before_its_tail_is_written_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the tail's changes reached their shards but before the tail was written
    again, with the folder's stamp unchanged (a write within one tick of its clock): the shards
    are longer than the tail says, so a later process reads the items."""
    monkeypatch.setattr(uid_index, "TAIL_MAX", 10)
    coll = Collection(tmp_path)
    write(UidIndex(), coll, {f"e{i}.ics": f"u{i}" for i in range(30)}, [])
    write(UidIndex(), coll, {"e1.ics": "v1"}, ["e2.ics"])  # in the tail

    def crash(folder: Path, entry: uid_index.Uids) -> None:
        raise OSError("power cut")

    entry = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert entry.tail_h == {"e1.ics": "v1", "e2.ics": None}
    monkeypatch.setattr(uid_index, "_write_tail", crash)
    with pytest.raises(OSError, match="power cut"):
        uid_index._fold(uid_index._shard_dir(coll.log), entry)
    monkeypatch.undo()
    found = UidIndex().current("work", coll.folder, coll.log, coll.read_all)
    assert coll.full_reads == 2
    assert dict(found.uid_of) == coll.items
