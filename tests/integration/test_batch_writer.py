"""The mirror's batch writer against a real store: a failed write stops the batches behind it,
whether worker processes check them or the writer's own thread does."""

from __future__ import annotations

from pathlib import Path

import pytest

from calmirror.local import LocalStore
from calmirror.local.check_pool import CheckPool
from calmirror.local.writer import Batch, BatchWriter
from calmirror.testing import LOCAL_USER
from calmirror.testing.ical import event

BATCHES = [Batch([(f"{kind}{n}.ics", event(f"uid-{kind}{n}")) for n in range(20)], []) for kind in "abc"]


@pytest.mark.parametrize("pooled", [True, False])
def test_a_failed_write_stops_the_batches_behind_it(tmp_path: Path, pooled: bool) -> None:
    store = LocalStore(tmp_path / "store", LOCAL_USER)
    store.ensure_base()
    store.ensure_mirror("work", "Work", None)
    pool = CheckPool(store.limits) if pooled else None
    writer = BatchWriter(store, "missing-mirror", pool, depth=len(BATCHES))
    try:
        with pytest.raises(Exception):  # noqa: B017 (the store's own error, whatever it is)
            for batch in BATCHES:
                list(writer.submit(batch))
            list(writer.drain())
        assert list(writer.settle()) == []
    finally:
        writer.close()
        if pool is not None:
            pool.close()
    assert store.mirror_item_names("work") == set()


def _busy_rows(texts: dict[str, str]) -> dict[str, object]:
    """What the busy index would store for `texts` (a module-level function: a side job)."""
    from zoneinfo import ZoneInfo

    from calmirror.availability import engine, spans

    return spans.index_texts(texts, engine.Rules(tz=ZoneInfo("Europe/Berlin")), (0, 2_000_000_000_000_000))


def _fails(texts: dict[str, str]) -> object:
    raise ValueError("a side job that fails")


def test_a_check_worker_does_the_side_job_and_a_failing_one_costs_nothing(tmp_path: Path) -> None:
    """The busy-index entries a worker computes beside its check equal those computed here;
    a side job that fails hands back None and the batch is written all the same."""
    store = LocalStore(tmp_path / "store", LOCAL_USER)
    store.ensure_base()
    store.ensure_mirror("work", "Work", None)
    texts = dict(BATCHES[0].writes)
    with CheckPool(store.limits) as pool:
        writer = BatchWriter(store, "work", pool)
        try:
            batches = [
                Batch(BATCHES[0].writes, [], side=(_busy_rows, (texts,))),
                Batch(BATCHES[1].writes, [], side=(_fails, (texts,))),
            ]
            written = [w for batch in batches for w in writer.submit(batch)] + list(writer.drain())
        finally:
            writer.close()
    assert written[0].side == _busy_rows(texts)
    assert written[0].side and all(entry.spans for entry in written[0].side.values())  # type: ignore[attr-defined]
    assert written[1].side is None
    assert len(store.mirror_item_names("work")) == 40
